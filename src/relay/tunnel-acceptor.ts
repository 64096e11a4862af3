// Turns an authenticated TLS socket from a connector into a registered tunnel. The socket has
// passed mTLS (its certificate chains to the relay CA); here the relay checks the certificate is
// still current (not revoked, not replaced), reverses the roles (the relay becomes the HTTP/2
// client), asks the connector who it is, and registers the tunnel. A refused connector is told
// why on the tunnel before it closes, so it can stop retrying and tell its operator.
import http2, { type ClientHttp2Session } from 'node:http2';
import { randomUUID } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { CONTROL_PATHS, type ConnectorHello, type RejectedNotice } from '../shared/wire.js';
import type { Logger } from '../shared/log.js';
import type { RelayStore } from './store.js';
import type { Tunnel, TunnelRegistry } from './tunnel-registry.js';

export const TUNNEL_WINDOW = {
  /** Per-stream window: bounds what one slow stream can buffer; 4 MiB: 1 MiB left bulk transfers
   * waiting for WINDOW_UPDATE (100 MB over the plain listener: 150-205 MB/s with 1 MiB, 254-273 with 4). */
  stream: 4 << 20,
  /** Connection window: shared by all streams of a tunnel. */
  session: 16 << 20,
};

export interface TunnelAcceptorOptions {
  store: RelayStore;
  tunnels: TunnelRegistry;
  logger: Logger;
  pingIntervalMs: number;
  /** Every session, so a shutdown can drain them. */
  sessions: Set<ClientHttp2Session>;
}

export function acceptTunnel(options: TunnelAcceptorOptions, socket: TLSSocket): void {
  const { store, logger } = options;
  socket.setNoDelay(true);
  const remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
  const certificate = socket.getPeerCertificate();
  const fingerprint = (certificate?.fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
  const connector = fingerprint ? store.findConnectorByFingerprint(fingerprint) : undefined;

  const session = http2.connect('http://connector.ferry.invalid', {
    createConnection: () => socket,
    settings: { initialWindowSize: TUNNEL_WINDOW.stream, enablePush: false },
  });
  session.on('error', (error) => logger.debug({ err: error, remoteAddress }, 'tunnel session error'));
  options.sessions.add(session);
  session.once('close', () => options.sessions.delete(session));

  if (!connector || connector.revokedAt) {
    const notice: RejectedNotice = connector
      ? { reason: 'revoked', message: `connector ${connector.name} (${connector.id}) was removed from the relay` }
      : { reason: 'unknown', message: 'this certificate belongs to no registered connector' };
    logger.warn({ remoteAddress, fingerprint, reason: notice.reason }, 'refused a tunnel');
    tellRejected(session, notice);
    return;
  }

  session.once('connect', () => session.setLocalWindowSize(TUNNEL_WINDOW.session));
  const hello = session.request({ ':method': 'GET', ':path': CONTROL_PATHS.hello }, { endStream: true });
  let body = '';
  hello.setEncoding('utf8');
  hello.on('data', (chunk: string) => { if (body.length < 4096) body += chunk; });
  hello.on('error', (error) => {
    logger.warn({ err: error, remoteAddress }, 'tunnel closed before the connector said hello');
    session.destroy();
  });
  hello.on('end', () => {
    let info: ConnectorHello;
    try {
      info = JSON.parse(body) as ConnectorHello;
    } catch {
      logger.warn({ remoteAddress }, 'connector sent an unreadable hello; closing the tunnel');
      session.destroy();
      return;
    }
    const current = store.getConnector(connector.id);
    if (!current || current.revokedAt) {
      tellRejected(session, { reason: 'revoked', message: `connector ${connector.name} was removed from the relay` });
      return;
    }
    const features = new Set(Array.isArray(info.features) ? info.features.filter((f): f is string => typeof f === 'string') : []);
    const tunnel: Tunnel = { id: randomUUID().slice(0, 8), connectorId: connector.id, group: connector.group, remoteAddress, session, features, active: 0 };
    options.tunnels.add(tunnel);
    store.touchConnector(connector.id, { at: new Date(), version: String(info.version ?? ''), remoteAddress: socket.remoteAddress ?? '' });
    logger.info({ connector: connector.name, connectorId: connector.id, group: connector.group, tunnel: tunnel.id, remoteAddress, version: info.version }, 'tunnel up');
    const ping = setInterval(() => pingOrDrop(session, options.pingIntervalMs, logger, tunnel.id), options.pingIntervalMs);
    ping.unref();
    const touch = setInterval(() => store.touchConnector(connector.id, { at: new Date() }), 10_000);
    touch.unref();
    const down = () => {
      clearInterval(ping);
      clearInterval(touch);
      options.tunnels.remove(tunnel);
    };
    session.once('close', () => {
      down();
      logger.info({ connector: connector.name, tunnel: tunnel.id }, 'tunnel down');
    });
    // The connector is leaving (GOAWAY): no new streams go to it from now on.
    session.once('goaway', down);
  });
}

function tellRejected(session: ClientHttp2Session, notice: RejectedNotice): void {
  const stream = session.request({ ':method': 'POST', ':path': CONTROL_PATHS.rejected, 'content-type': 'application/json' });
  stream.on('error', () => undefined);
  stream.end(JSON.stringify(notice));
  const done = () => session.destroy();
  stream.on('close', done);
  setTimeout(done, 2000).unref();
}

/** HTTP/2 PING: a tunnel whose peer does not answer within the interval is dropped. */
function pingOrDrop(session: ClientHttp2Session, timeoutMs: number, logger: Logger, tunnelId: string): void {
  if (session.closed || session.destroyed) return;
  const timer = setTimeout(() => {
    logger.warn({ tunnel: tunnelId }, 'tunnel did not answer PING; dropping it');
    session.destroy();
  }, timeoutMs);
  timer.unref();
  session.ping((error) => {
    clearTimeout(timer);
    if (error && !session.destroyed) session.destroy();
  });
}
