// One tunnel, one attempt: dial the relay (through the egress seam), TLS with the client
// certificate and the pinned relay CA, then serve HTTP/2 on that socket with the roles reversed.
// It never retries; it resolves once the tunnel is over and says how it went, so the supervisor
// alone decides whether and when to try again.
import http2, { type ServerHttp2Session, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type tls from 'node:tls';
import { DialError, FerryError } from '../shared/errors.js';
import { CONTROL_PATHS, TUNNEL_ALPN, type ConnectorHello, type RejectedNotice } from '../shared/wire.js';
import type { Logger } from '../shared/log.js';
import type { EgressDialer } from '../egress/dial/index.js';
import type { ConnectorState } from './state.js';

/**
 * The version this connector reports in its hello: FERRY_CONNECTOR_VERSION, else the version in the
 * package.json of the install root this code runs from (dist/src/connector → ../../..), which is
 * what the updater installs into versions/<version>/ and waits to see reported.
 */
export const CONNECTOR_VERSION = process.env.FERRY_CONNECTOR_VERSION ?? packageVersion() ?? '0.1.0';

function packageVersion(): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

export interface SessionTarget {
  /** host:port to dial. */
  host: string;
  port: number;
  /** Name the relay certificate must carry. */
  servername: string;
  transport: 'tcp' | 'https';
}

export interface SessionOptions {
  dialer: EgressDialer;
  state: ConnectorState;
  target: SessionTarget;
  logger: Logger;
  pingIntervalMs: number;
  connectTimeoutMs: number;
  onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void;
  /** CONNECTOR_FEATURES this connector's onStream serves, announced in the hello. */
  features?: string[];
  /** Called once the relay has said hello: the tunnel carries traffic from now on. */
  onUp?(): void;
  signal: AbortSignal;
}

export interface SessionOutcome {
  /** The tunnel was established (TLS done and the relay said hello). */
  connected: boolean;
  durationMs: number;
  error?: Error;
  /** The relay sent GOAWAY: the old tunnel finishes its streams by itself; reconnect now. */
  draining?: boolean;
}

export const TUNNEL_SETTINGS = { initialWindowSize: 4 << 20, enableConnectProtocol: true, maxConcurrentStreams: 20_000 };

export async function serveTunnelOnce(options: SessionOptions): Promise<SessionOutcome> {
  const started = Date.now();
  let secure: tls.TLSSocket;
  try {
    // Pinned TLS runs inside each route attempt, so an intercepting proxy fails over to the next route.
    const dialed = await options.dialer.dialTls({
      host: options.target.host, port: options.target.port, caller: 'connector',
      url: new URL(`https://${formatHost(options.target.host)}:${options.target.port}/`),
      timeoutMs: options.connectTimeoutMs, signal: options.signal,
    }, {
      servername: options.target.servername,
      caPem: options.state.caPem,
      certPem: options.state.certPem,
      keyPem: options.state.keyPem,
      alpn: [TUNNEL_ALPN],
      timeoutMs: options.connectTimeoutMs,
    });
    secure = dialed.socket;
    secure.setNoDelay(true);
  } catch (error) {
    return { connected: false, durationMs: Date.now() - started, error: error as Error };
  }
  return serveOn(secure, options, started);
}

function serveOn(socket: tls.TLSSocket, options: SessionOptions, started: number): Promise<SessionOutcome> {
  const { logger } = options;
  return new Promise((resolvePromise) => {
    let settled = false;
    const resolve = (outcome: SessionOutcome) => {
      if (settled) return;
      settled = true;
      resolvePromise(outcome);
    };
    const settle = resolve;
    let connected = false;
    let rejection: Error | undefined;
    let failure: Error | undefined;
    const server = http2.createServer({ settings: TUNNEL_SETTINGS });
    let session: ServerHttp2Session | undefined;
    server.once('session', (s: ServerHttp2Session) => { session = s; });
    server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      const path = headers[':path'];
      if (path === CONTROL_PATHS.hello) {
        const hello: ConnectorHello = { connectorId: options.state.connectorId, version: CONNECTOR_VERSION, hostname: os.hostname(), features: options.features ?? [] };
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify(hello));
        if (!connected) {
          connected = true;
          options.onUp?.();
        }
        return;
      }
      if (path === CONTROL_PATHS.rejected) {
        readNotice(stream).then((notice) => {
          rejection = new DialError('relay-rejected', `the relay refused this connector: ${notice.message}`, { target: `${options.target.host}:${options.target.port}`, phase: 'handshake' });
          session?.destroy();
        });
        return;
      }
      options.onStream(stream, headers);
    });
    server.emit('connection', socket);
    if (!session) {
      resolve({ connected: false, durationMs: Date.now() - started, error: new FerryError('ERR_TUNNEL_SETUP', 'could not start HTTP/2 on the tunnel') });
      return;
    }
    const s: ServerHttp2Session = session;
    s.once('connect', () => s.setLocalWindowSize(16 << 20));
    s.on('error', (error) => { failure = error; });
    // GOAWAY: the relay is draining. Streams in flight finish on this session on their own; the
    // attempt is over now so the supervisor can open a replacement tunnel without waiting.
    s.on('goaway', () => settle({ connected, durationMs: Date.now() - started, draining: true }));
    const ping = setInterval(() => {
      if (s.closed || s.destroyed) return;
      const timer = setTimeout(() => {
        failure = new FerryError('ERR_TUNNEL_PING', `the relay did not answer PING within ${options.pingIntervalMs} ms`, { retryable: true });
        s.destroy();
      }, options.pingIntervalMs);
      timer.unref();
      s.ping((error) => {
        clearTimeout(timer);
        if (error && !s.destroyed) s.destroy();
      });
    }, options.pingIntervalMs);
    const onAbort = () => s.close();
    options.signal.addEventListener('abort', onAbort, { once: true });
    s.once('close', () => {
      clearInterval(ping);
      options.signal.removeEventListener('abort', onAbort);
      const error = rejection ?? failure ?? (options.signal.aborted ? undefined : new FerryError('ERR_TUNNEL_CLOSED', 'the relay closed the tunnel', { retryable: true }));
      if (!rejection && !connected) logger.debug('tunnel closed before the relay said hello');
      resolve({ connected: connected || !!rejection, durationMs: Date.now() - started, error });
    });
  });
}

async function readNotice(stream: ServerHttp2Stream): Promise<RejectedNotice> {
  let text = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream) {
    text += chunk as string;
    if (text.length > 8192) break;
  }
  stream.respond({ ':status': 204 }, { endStream: true });
  try {
    return JSON.parse(text) as RejectedNotice;
  } catch {
    return { reason: 'unknown', message: 'no reason given' };
  }
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
