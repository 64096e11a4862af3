// src/demo — the one-command demo: a sample internal app, and relay + connector wired on loopback.
// Imports anything but src/cli.
//
// The sample internal app: a small page, a WebSocket echo (/echo), and a few endpoints the tests and
// the benchmark use: /bytes?n= streams n bytes, /upload counts the bytes it receives, /slow?ms=
// answers late, /early answers without reading the body, /redirect points Location at its own
// (internal) URL.
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Ferry demo app</title></head>
<body><h1>Hello from the internal app</h1><p>This page lives on a private network and reached you through Ferry.</p>
<p id="ws">WebSocket: connecting…</p>
<script>const ws=new WebSocket(location.origin.replace(/^http/,'ws')+'/echo');ws.onopen=()=>ws.send('ping');ws.onmessage=(m)=>{document.getElementById('ws').textContent='WebSocket echo: '+m.data};</script>
</body></html>\n`;

const CHUNK = Buffer.alloc(64 * 1024, 'x');

export interface SampleBackend {
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startSampleBackend(port = 0, host = '127.0.0.1'): Promise<SampleBackend> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://backend');
    switch (url.pathname) {
      case '/':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(PAGE) });
        return void res.end(PAGE);
      case '/hello':
        return void res.end('hello\n');
      case '/headers':
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
      case '/bytes':
        return streamBytes(res, Number(url.searchParams.get('n') ?? 0));
      case '/upload': {
        let total = 0;
        req.on('data', (chunk: Buffer) => { total += chunk.length; });
        req.on('end', () => res.end(JSON.stringify({ received: total })));
        return;
      }
      case '/slow': {
        const timer = setTimeout(() => res.end('late\n'), Number(url.searchParams.get('ms') ?? 1000));
        res.on('close', () => clearTimeout(timer));
        return;
      }
      case '/early':
        // Answers at once without reading the request body (like a 401 or 413 would).
        res.writeHead(200, { 'content-type': 'text/plain' });
        return void res.end('early\n');
      case '/redirect':
        res.writeHead(302, { location: `http://${req.headers.host}/hello` });
        return void res.end();
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
    }
  });
  server.keepAliveTimeout = 65_000;
  const wss = new WebSocketServer({ server, path: '/echo' });
  wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
  server.listen(port, host);
  await once(server, 'listening');
  const actual = (server.address() as AddressInfo).port;
  return {
    port: actual,
    url: `http://${host}:${actual}`,
    close: async () => {
      wss.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Writes n bytes, respecting backpressure (a slow reader never makes the backend buffer it all). */
function streamBytes(res: http.ServerResponse, total: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
  let left = total;
  const pump = () => {
    while (left > 0) {
      const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= piece.length;
      if (!res.write(piece)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}
