// src/relay — the cloud side: user listeners, the tunnel listener, registration, the embedded
// store, tunnel choice and request forwarding. Imports src/shared and src/config; never imports
// src/connector or src/cli.
//
// Relay composes the parts and owns their lifecycle. Changes made by `ferry relay …` commands
// (apps, revocations) arrive through the shared SQLite file: the relay polls PRAGMA data_version,
// which changes only when another connection commits, so the poll costs one cheap query.
import http from 'node:http';
import http2, { type ClientHttp2Session, type Http2Server, type ServerHttp2Session } from 'node:http2';
import tls from 'node:tls';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import type { Logger } from '../shared/log.js';
import { TUNNEL_ALPN } from '../shared/wire.js';
import type { RelayConfig, HostPort } from './config.js';
import { ensureRelayIdentity, type RelayIdentity } from './identity.js';
import { pemChain } from '../shared/pki.js';
import { RelayStore } from './store.js';
import { TunnelRegistry } from './tunnel-registry.js';
import { acceptTunnel } from './tunnel-acceptor.js';
import { forwardRequest, forwardUpgrade, type PublishedApp } from './forward.js';
import { carryConnection, carryHttp2Connection, type ConnectionStreamContext } from './connection-stream.js';
import { USER_HTTP2_SETTINGS } from '../shared/http2-users.js';
import { normalizeHost } from '../shared/published-app.js';
import { createRegistrationServer } from './registration.js';
import { createReleaseEndpoints } from './releases.js';
import { parseClientHello } from './client-hello.js';

export interface RelayPorts {
  user: number;
  userPlain?: number;
  tunnel: number;
  registration: number;
}

export function relayDatabasePath(stateDir: string): string {
  return path.join(stateDir, 'relay.db');
}

export class Relay {
  readonly tunnels = new TunnelRegistry();
  private store!: RelayStore;
  private identity!: RelayIdentity;
  private apps = new Map<string, PublishedApp>();
  /** https apps by their external host name alone (a TLS server name has no port); null: more than one has it. */
  private appsByName = new Map<string, PublishedApp | null>();
  private dataVersion = -1;
  private draining = false;
  private readonly inflight = { count: 0 };
  private readonly connections = { count: 0 };
  private readonly tunnelSessions = new Set<ClientHttp2Session>();
  private readonly userSessions = new Set<ServerHttp2Session>();
  private servers: net.Server[] = [];
  private watcher: NodeJS.Timeout | undefined;

  constructor(private readonly config: RelayConfig, private readonly logger: Logger) {}

  get caFingerprint(): string {
    return this.identity.caFingerprint;
  }

  async start(): Promise<RelayPorts> {
    const { config, logger } = this;
    this.identity = await ensureRelayIdentity(config.stateDir, config.hostnames, config.tls);
    this.store = RelayStore.open(relayDatabasePath(config.stateDir));
    this.refresh();
    this.watcher = setInterval(() => this.refresh(), 500);
    this.watcher.unref();

    const forward: ConnectionStreamContext = {
      findApp: (host) => this.apps.get(normalizeHost(host)),
      findAppByServerName: (serverName) => this.appsByName.get(normalizeHost(serverName)) ?? undefined,
      tunnels: this.tunnels,
      logger,
      isDraining: () => this.draining,
      inflight: this.inflight,
      connections: this.connections,
    };
    /** HTTP/1.1 users: a connection stream each when possible, else this server's per-request path. */
    const perRequestServer = (userProto: 'http' | 'https') => {
      const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => forwardRequest(forward, req, res, userProto));
      server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => forwardUpgrade(forward, req, socket, head, userProto));
      // It never listens (connections are handed to it), but Node enforces headersTimeout and
      // requestTimeout (408 to a slow-loris client) only once a server has emitted 'listening'.
      server.emit('listening');
      this.servers.push(server);
      return server;
    };
    const http1Users = (userProto: 'http' | 'https') => {
      const perRequest = perRequestServer(userProto);
      return config.connectionStreams
        ? (socket: net.Socket) => carryConnection(forward, socket, userProto, perRequest)
        : (socket: net.Socket) => perRequest.emit('connection', socket);
    };

    // Tunnels: mTLS required; only certificates issued by the relay CA get past the handshake.
    const tunnelServer = tls.createServer({
      cert: pemChain(this.identity.server.certPem, this.identity.ca.certPem),
      key: this.identity.server.keyPem,
      ca: [this.identity.ca.certPem],
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: [TUNNEL_ALPN],
    }, (socket) => acceptTunnel({ store: this.store, tunnels: this.tunnels, logger, pingIntervalMs: config.tunnelPingIntervalMs, sessions: this.tunnelSessions }, socket));
    tunnelServer.on('tlsClientError', (error, socket) => logger.warn({ err: error, remote: socket.remoteAddress }, 'tunnel TLS handshake failed'));

    // Users: HTTPS; HTTP/2 (a stream per request) or HTTP/1.1, told apart by ALPN after the handshake.
    const http2Users: Http2Server = http2.createServer({ settings: USER_HTTP2_SETTINGS }, (req, res) => forwardRequest(forward, req, res, 'https'));
    http2Users.on('session', (session: ServerHttp2Session) => {
      this.userSessions.add(session);
      session.once('close', () => this.userSessions.delete(session));
    });
    const http1OverTls = http1Users('https');
    const http2PerRequest = (socket: tls.TLSSocket) => http2Users.emit('connection', socket);
    const http2OverTls = config.connectionStreams
      ? (socket: tls.TLSSocket) => carryHttp2Connection(forward, socket, http2PerRequest)
      : http2PerRequest;
    const userServer = tls.createServer({
      cert: pemChain(this.identity.user.certPem, config.tls ? '' : this.identity.ca.certPem),
      key: this.identity.user.keyPem,
      ALPNProtocols: ['h2', 'http/1.1'],
    }, (socket: tls.TLSSocket) => {
      socket.setNoDelay(true);
      if (socket.alpnProtocol === 'h2') http2OverTls(socket);
      else http1OverTls(socket);
    });

    const registrationServer = createRegistrationServer({
      identity: this.identity, store: this.store, logger, advertise: config.advertise, connectorCertDays: config.connectorCertDays,
      releases: createReleaseEndpoints({ store: this.store, logger, liveTunnels: (id) => this.tunnels.ofConnector(id).length }),
    });

    // The public port serves users and, for connectors whose proxy allows only 443, tunnels too.
    const publicServer = net.createServer((socket) => dispatchByAlpn(socket, userServer, tunnelServer));
    const ports: RelayPorts = {
      tunnel: await listen(tunnelServer, config.listen.tunnel),
      user: await listen(publicServer, config.listen.user),
      registration: await listen(registrationServer, config.listen.registration),
    };
    this.servers.push(tunnelServer, publicServer, userServer, registrationServer);
    if (config.listen.userPlain) {
      const http1Plain = http1Users('http');
      const plain = net.createServer((socket) => {
        socket.setNoDelay(true);
        http1Plain(socket);
      });
      ports.userPlain = await listen(plain, config.listen.userPlain);
      this.servers.push(plain);
    }
    logger.info({ ports, caFingerprint: this.identity.caFingerprint, stateDir: config.stateDir }, 'relay listening');
    return ports;
  }

  /**
   * Graceful shutdown: stop accepting, send GOAWAY on every tunnel (connectors reconnect or move to
   * another relay) and user session, let requests in flight finish (up to graceMs), then close.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.draining = true;
    if (this.watcher) clearInterval(this.watcher);
    for (const server of this.servers) server.close();
    for (const session of this.userSessions) session.close();
    const deadline = Date.now() + graceMs;
    while (this.inflight.count > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // GOAWAY: connectors end idle connection streams at once and busy ones after their answer.
    for (const session of this.tunnelSessions) {
      session.goaway(http2.constants.NGHTTP2_NO_ERROR);
      session.close();
    }
    if (this.connections.count > 0) this.logger.info({ connections: this.connections.count }, 'waiting for HTTP/1.1 connections to finish their answers');
    while (this.connections.count > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const server of this.servers) (server as http.Server).closeAllConnections?.();
    await new Promise((r) => setTimeout(r, 50));
    for (const session of this.tunnelSessions) session.destroy();
    for (const session of this.userSessions) session.destroy();
    this.store?.close();
    this.logger.info('relay stopped');
  }

  /** Reloads apps and closes tunnels of revoked connectors when the database changed. */
  refresh(): void {
    const version = this.store.dataVersion();
    if (version === this.dataVersion) return;
    this.dataVersion = version;
    const apps = new Map<string, PublishedApp>();
    for (const row of this.store.listApps()) {
      apps.set(row.externalHost, { name: row.name, externalUrl: new URL(row.externalUrl), internalUrl: new URL(row.internalUrl), group: row.group, timeoutMs: row.timeoutMs, mode: row.mode });
    }
    this.apps = apps;
    const appsByName = new Map<string, PublishedApp | null>();
    for (const app of apps.values()) {
      // Only an https app can be what a TLS connection is for (an http one is served on userPlain).
      if (app.externalUrl.protocol !== 'https:') continue;
      const name = normalizeHost(app.externalUrl.hostname);
      appsByName.set(name, appsByName.has(name) ? null : app);
    }
    this.appsByName = appsByName;
    for (const tunnel of this.tunnels.all()) {
      const row = this.store.getConnector(tunnel.connectorId);
      if (!row || row.revokedAt) {
        this.logger.warn({ connectorId: tunnel.connectorId, tunnel: tunnel.id }, 'connector removed: closing its tunnel');
        this.tunnels.remove(tunnel);
        tunnel.session.destroy();
      }
    }
  }
}

/**
 * Hands a public-port connection to the tunnel server when its ClientHello offers the tunnel ALPN,
 * else to the user server. The bytes read to decide are pushed back (unshift) and replayed by the
 * TLS server, so the handshake is untouched.
 */
function dispatchByAlpn(socket: net.Socket, userServer: net.Server, tunnelServer: net.Server): void {
  socket.setNoDelay(true);
  let buffered: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), 10_000);
  const onData = (chunk: Buffer) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    const hello = parseClientHello(buffered);
    if (hello === undefined && buffered.length < 16_384) return;
    socket.off('data', onData);
    clearTimeout(timer);
    socket.pause();
    socket.unshift(buffered);
    (hello?.alpn.includes(TUNNEL_ALPN) ? tunnelServer : userServer).emit('connection', socket);
  };
  socket.on('data', onData);
  socket.on('error', () => clearTimeout(timer));
}

async function listen(server: net.Server, at: HostPort): Promise<number> {
  server.listen(at.port, at.host);
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}
