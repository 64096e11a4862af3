// A real HTTP server for wpad.dat on loopback. WPAD fetches port 80, so it binds 127.0.0.1:80 when
// free; otherwise an ephemeral port, and tests pass that port to Ferry (`--wpad-port`, wpad.port).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WpadServerRequest {
  path: string;
  host: string | undefined;
}

export interface WpadServer {
  port: number;
  requests: WpadServerRequest[];
  /** What /wpad.dat answers next. */
  script: string;
  contentType: string;
  mode: 'serve' | 'hang' | 'not-found' | 'huge';
  stop(): Promise<void>;
}

export async function startWpadServer(script: string, preferredPort = 80): Promise<WpadServer> {
  const sockets = new Set<import('node:net').Socket>();
  const state: WpadServer = {
    port: 0,
    requests: [],
    script,
    contentType: 'application/x-ns-proxy-autoconfig',
    mode: 'serve',
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    state.requests.push({ path: req.url ?? '', host: req.headers.host });
    if (req.url !== '/wpad.dat' || state.mode === 'not-found') {
      res.writeHead(404).end('not found');
      return;
    }
    if (state.mode === 'hang') return; // never answers: the client's time limit must fire
    if (state.mode === 'huge') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`// ${'x'.repeat(2 * 1024 * 1024)}\n${state.script}`);
      return;
    }
    res.writeHead(200, { 'content-type': state.contentType });
    res.end(state.script);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const listen = (port: number) => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  try {
    await listen(preferredPort);
  } catch {
    await listen(0);
  }
  state.port = (server.address() as AddressInfo).port;
  return state;
}
