// One HTTP/1.1 user connection arrives as one CONNECT stream (CONNECTOR_FEATURES.connectionStreams):
// the relay only moves its bytes, so the per-request work happens here, once.
// - mode http: each request goes to the app with the rules of a published app (Host check,
//   X-Forwarded-*, path prefix, Location rewrite, timeout → 504, backend failure → 502 page),
//   exactly as the relay applies them per stream: through the head splice (head-splice.ts) for an
//   app reached DIRECT over plain http, else, and from any request the splice does not take, by
//   Node's HTTP/1.1 server reading the requests off the stream;
// - mode passthrough: the stream is spliced to a byte stream to the app (bytes only).
// An HTTP/2 user connection (CONNECTOR_FEATURES.http2ConnectionStreams, FERRY_HEADERS.userProtocol
// h2) gets an HTTP/2 session of Node's on the stream. Its requests take the lean per-stream path
// (http2-user-stream.ts) for an app the app client serves, else the way Node's HTTP/1.1 server's
// do, with what HTTP/2 changes (no connection-bound authentication: HTTP_1_1_REQUIRED).
// One HTTP server per tunnel session, so a relay's GOAWAY drains only that session's connections.
import type net from 'node:net';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type ServerHttp2Session, type ServerHttp2Stream, type IncomingHttpHeaders, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { Duplex } from 'node:stream';
import { endToEndHeaders, FERRY_HEADERS, isConnectionAuth, switchingProtocolsHead, type BackendFailureClass } from '../shared/wire.js';
import { rawUserError, sendUserError, userErrors, type UserError } from '../shared/error-page.js';
import { addForwardedHeaders, appTarget, joinPath, normalizeHost, rewriteLocation, type PublishedApp } from '../shared/published-app.js';
import type { Logger } from '../shared/log.js';
import type { BackendRequester } from './egress.js';
import { describePlan, type BackendAgents } from '../egress/http.js';
import { classifyBackendFailure } from './backend.js';
import { HeadSplice } from './head-splice.js';
import type { AppClient } from './app-client.js';
import { bulkPipe } from '../shared/bulk-pipe.js';
import { requestHasBody } from '../shared/http1-heads.js';
import { stopUnneededUpload, USER_HTTP2_SETTINGS } from '../shared/http2-users.js';
import { serveUserStream } from './http2-user-stream.js';

const { NGHTTP2_CANCEL, NGHTTP2_HTTP_1_1_REQUIRED } = http2.constants;

type UserRequest = IncomingMessage | Http2ServerRequest;
type UserResponse = ServerResponse | Http2ServerResponse;

/** What the relay told the connector about the connection (its CONNECT headers). */
interface ConnectionFacts {
  app: PublishedApp;
  clientAddress: string;
  userProto: 'http' | 'https';
  /**
   * App connections of this user connection alone, from its first request with NTLM or Negotiate
   * credentials on (Windows authentication authenticates the app connection): the handshake and
   * the requests after it stay on one app connection that no other user's request takes. Its
   * requests go one at a time (`turn`: the previous one's answer is over), since an agent opens a
   * connection per request while its connections are still being dialed, whatever its maxSockets.
   */
  bound?: { agents: BackendAgents; turn: Promise<void> };
}

interface SessionServer {
  server: http.Server;
  draining: boolean;
  /** Connections of this session and whether a request is in progress on each. */
  busy: Map<Duplex, boolean>;
  /** Connections the head splice serves. */
  splices: Set<HeadSplice>;
  /** HTTP/2 user sessions. */
  http2Sessions: Set<ServerHttp2Session>;
}

/** Between requests, how long a user connection stays open (Node's keepAliveTimeout, as set below). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

export function createConnectionStreams(requester: BackendRequester, appClient: AppClient, logger: Logger) {
  const facts = new WeakMap<Duplex, ConnectionFacts>();
  const servers = new WeakMap<ServerHttp2Session, SessionServer>();

  function serverFor(session: ServerHttp2Session): SessionServer {
    const existing = servers.get(session);
    if (existing) return existing;
    const entry: SessionServer = { server: http.createServer({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }), draining: false, busy: new Map(), splices: new Set(), http2Sessions: new Set() };
    // Connections are handed to it; 'listening' starts Node's headersTimeout / requestTimeout checks.
    entry.server.emit('listening');
    session.once('close', () => entry.server.close());
    entry.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket as unknown as Duplex;
      const connection = facts.get(socket);
      if (!connection) return res.destroy();
      if (entry.draining) res.shouldKeepAlive = false;
      entry.busy.set(socket, true);
      res.once('finish', () => { if (entry.busy.has(socket)) entry.busy.set(socket, false); });
      forwardRequest(connection, req, res, requester, appClient, logger);
    });
    entry.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const connection = facts.get(socket);
      if (!connection) return socket.destroy();
      forwardUpgrade(connection, req, socket, head, requester, logger);
    });
    entry.server.on('clientError', (_error, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
    // The relay is leaving this tunnel: idle connections end now, busy ones after their answer.
    // (Node's closeIdleConnections() knows only connections of a listening server.)
    session.once('goaway', () => {
      entry.draining = true;
      for (const [socket, busy] of entry.busy) if (!busy) socket.end();
      for (const headSplice of entry.splices) headSplice.drain();
      // GOAWAY to the browser: it sends new requests on a new connection; these ones finish.
      for (const userSession of entry.http2Sessions) userSession.close();
      logger.debug('relay sent GOAWAY: idle connection streams closed, busy ones close after their answer');
    });
    servers.set(session, entry);
    return entry;
  }

  /** Serves one connection stream; an unusable one is refused, and the relay then serves it per request. */
  function serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const connection = readFacts(headers);
    if (!connection) {
      stream.respond({ ':status': 400, [FERRY_HEADERS.error]: 'bad-internal-url', [FERRY_HEADERS.errorDetail]: 'the relay sent no usable app description' }, { endStream: true });
      return;
    }
    // An HTTP/2 user's requests follow the usual rules, a passthrough app's too: its app speaks
    // HTTP/1.1, so the bytes cannot go through as they are.
    const http2User = headers[FERRY_HEADERS.userProtocol] === 'h2';
    if (connection.app.mode === 'passthrough' && !http2User) return splice(stream, connection);
    stream.respond({ ':status': 200 });
    const entry = serverFor(stream.session as ServerHttp2Session);
    if (http2User) return serveHttp2(stream, connection, entry);
    const { app } = connection;
    if (!requester.isDirectHttp(app.internalUrl)) return toServer(stream, connection, entry, undefined);
    // An app reached DIRECT over plain http: the head splice, until a request it does not take.
    const headSplice = new HeadSplice(stream, {
      ...connection,
      dial: () => requester.connect(app.internalUrl).then(({ socket }) => socket as net.Socket),
      idle: appClient.idle,
      handOver: (pending, ended) => {
        entry.splices.delete(headSplice);
        toServer(stream, connection, entry, pending, ended);
      },
      classify: classifyBackendFailure,
      logger,
      idleMs: KEEP_ALIVE_TIMEOUT_MS,
    });
    if (entry.draining) return headSplice.drain();
    entry.splices.add(headSplice);
    stream.once('close', () => entry.splices.delete(headSplice));
  }

  /** Node's HTTP server reads the connection's requests (from `pending` on, when given). */
  function toServer(stream: ServerHttp2Stream, connection: ConnectionFacts, entry: SessionServer, pending: Buffer | undefined, ended = false): void {
    const socket = streamAsSocket(stream);
    if (pending) socket.unshift(pending);
    if (ended) socket.push(null);
    facts.set(socket, connection);
    entry.busy.set(socket, false);
    socket.once('close', () => {
      entry.busy.delete(socket);
      connection.bound?.agents.destroy();
    });
    entry.server.emit('connection', socket);
  }

  /** An HTTP/2 user connection: Node's HTTP/2 session on the stream, one per connection. */
  function serveHttp2(stream: ServerHttp2Stream, connection: ConnectionFacts, entry: SessionServer): void {
    const server = http2.createServer({ settings: USER_HTTP2_SETTINGS });
    // An app the app client serves (one per connection: other hosts get 421): the lean per-stream
    // path. Others (https apps, the backend proxy): Node's compatibility objects and forwardRequest.
    if (requester.isDirectHttp(connection.app.internalUrl)) server.on('stream', (userStream: ServerHttp2Stream, headers: IncomingHttpHeaders) => serveUserStream(connection, userStream, headers, appClient, logger));
    else server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => forwardRequest(connection, req, res, requester, appClient, logger));
    server.on('session', (userSession: ServerHttp2Session) => {
      entry.http2Sessions.add(userSession);
      userSession.once('close', () => entry.http2Sessions.delete(userSession));
      if (entry.draining) userSession.close();
    });
    // The stream itself is the session's socket: Node wraps it (JSStreamSocket) and writes it
    // Buffers only, so the adapter Node's HTTP/1.1 server needs (streamAsSocket) is not (one JS
    // stream layer less per read and write).
    server.emit('connection', stream);
  }

  function splice(stream: ServerHttp2Stream, connection: ConnectionFacts): void {
    const { app } = connection;
    requester.connect(app.internalUrl).then(({ socket }) => {
      if (stream.destroyed) return socket.destroy();
      stream.respond({ ':status': 200 });
      bulkPipe(socket, stream);
      bulkPipe(stream, socket);
      socket.on('error', () => stream.close(NGHTTP2_CANCEL));
      stream.on('error', () => socket.destroy());
      stream.on('close', () => socket.destroy());
    }, (error: NodeJS.ErrnoException) => {
      const errorClass = classifyBackendFailure(error);
      logger.warn({ app: app.name, backend: app.internalUrl.origin, errorClass, code: error.code }, 'passthrough connection to the app failed');
      // Refused: the relay serves the connection per request, whose answer is the 502 page.
      if (!stream.destroyed) stream.respond({ ':status': 502, [FERRY_HEADERS.error]: errorClass, [FERRY_HEADERS.errorDetail]: `${app.internalUrl.host}: ${error.code ?? error.message}`.replace(/[^\x20-\x7e]/g, '?') }, { endStream: true });
    });
  }

  return { serve };
}

function readFacts(headers: IncomingHttpHeaders): ConnectionFacts | undefined {
  try {
    const internalUrl = new URL(String(headers[FERRY_HEADERS.internalHref]));
    const externalUrl = new URL(String(headers[FERRY_HEADERS.externalUrl]));
    if (internalUrl.protocol !== 'http:' && internalUrl.protocol !== 'https:') return undefined;
    const timeoutMs = Number(headers[FERRY_HEADERS.timeoutMs]);
    const mode = headers[FERRY_HEADERS.appMode] === 'passthrough' ? 'passthrough' : 'http';
    return {
      app: { name: String(headers[FERRY_HEADERS.app] ?? ''), internalUrl, externalUrl, group: '', timeoutMs: timeoutMs > 0 ? timeoutMs : 85_000, mode },
      clientAddress: String(headers[FERRY_HEADERS.clientAddress] ?? ''),
      userProto: headers[FERRY_HEADERS.userProto] === 'http' ? 'http' : 'https',
    };
  } catch {
    return undefined;
  }
}

function forwardRequest(connection: ConnectionFacts, req: UserRequest, res: UserResponse, requester: BackendRequester, appClient: AppClient, logger: Logger): void {
  const { app } = connection;
  // An HTTP/2 user's stream (its session runs here, see serveHttp2).
  const userStream = 'stream' in req ? req.stream : undefined;
  const host = String(req.headers[':authority'] ?? req.headers.host ?? '');
  const accept = req.headers.accept;
  /** The user connection ends after this answer (HTTP/1.1; an HTTP/2 session carries on). */
  const closeAfter = () => { if ('shouldKeepAlive' in res) res.shouldKeepAlive = false; };
  /**
   * An answer cut short: the user must see it cut (a reset stream, a closed connection), not
   * complete. Not `close(code)` on a stream: Node ends its writable side first, and a user who
   * already ended theirs would see a clean end (see cutAnswer in backend.ts).
   */
  const cut = () => {
    if (userStream) userStream.destroy(new Error('the app\'s answer was cut short'));
    else res.destroy();
  };
  if (normalizeHost(host) !== normalizeHost(app.externalUrl.host)) {
    closeAfter();
    return sendUserError(res, userErrors.misdirected(host, app.externalUrl.host), accept);
  }
  // NTLM and Negotiate authenticate a connection, and an HTTP/2 connection is many users' requests
  // to many app connections: as IIS does, the user is sent to HTTP/1.1 (browsers and curl retry
  // there, where the app connection stays with the user connection).
  if (userStream && isConnectionAuth(req.headers.authorization)) return void userStream.close(NGHTTP2_HTTP_1_1_REQUIRED);
  const headers = endToEndHeaders(req.headers);
  addForwardedHeaders(headers, req.headers['x-forwarded-for'], connection.clientAddress, host, connection.userProto);
  headers.host = app.internalUrl.host;
  const url = appTarget(app.internalUrl, joinPath(app, req.url ?? '/'));
  const method = req.method ?? 'GET';

  // One answer per request, whichever comes first: the app's, the timeout's or a failure's.
  // `cancel` stops the backend request (set by the path that sends it); no AbortController per
  // request: it was 2.5% of the connector's CPU at c=64.
  let cancel: (() => void) | undefined;
  let cancelled = false;
  const stop = () => {
    cancelled = true;
    cancel?.();
  };
  let answered = false;
  const claim = (): boolean => {
    if (answered) return false;
    answered = true;
    clearTimeout(timer);
    return true;
  };
  const timer = setTimeout(() => {
    if (!claim()) return;
    closeAfter();
    sendUserError(res, userErrors.backendTimeout(app.timeoutMs), accept);
    stop(); // the app's request ends too (the app client reports no error for a cancel)
  }, app.timeoutMs);
  timer.unref();
  res.on('close', () => {
    clearTimeout(timer);
    if (!res.writableFinished) stop();
  });
  const writeHead = (status: number, responseHeaders: Record<string, string | string[] | undefined>): boolean => {
    if (!claim()) return false;
    if (userStream && status === 401 && isConnectionAuth(responseHeaders['www-authenticate'])) {
      cancelled = true;
      userStream.close(NGHTTP2_HTTP_1_1_REQUIRED);
      return false;
    }
    const out = endToEndHeaders(responseHeaders);
    rewriteLocation(out, app);
    res.writeHead(status, out as http.OutgoingHttpHeaders);
    return true;
  };
  const fail = (error: NodeJS.ErrnoException, errorClass: BackendFailureClass) => {
    // After an answer began, only an unfinished one is cut; a cancel (timeout, user gone) is not news.
    if (!claim() || cancelled) {
      if (!res.writableEnded) cut();
      return;
    }
    logger.warn({ app: app.name, backend: app.internalUrl.origin, errorClass, code: error.code, err: error }, 'backend request failed');
    closeAfter();
    sendUserError(res, userErrors.backendUnreachable(errorClass, `${app.internalUrl.host}: ${error.code ?? error.message}`), accept, errorClass);
  };

  if (!connection.bound && isConnectionAuth(req.headers.authorization)) connection.bound = { agents: requester.agentsForOneUser(), turn: Promise.resolve() };
  const bound = connection.bound;
  // An HTTP/2 stream not ended with its headers has a body, whatever its fields say.
  const hasBody = userStream ? !userStream.endAfterHeaders : requestHasBody(req.headers);
  if (userStream && hasBody) {
    // An answer that came before the whole upload: the rest is drained, not carried (the app's
    // request ended with its answer).
    res.once('finish', () => stopUnneededUpload(req as Http2ServerRequest, res as Http2ServerResponse, () => req.unpipe()));
  }
  if (appClient.serves(url) && !bound) {
    const exchange = appClient.dispatch(app.internalUrl, { method, path: `${url.pathname}${url.search}`, headers, body: hasBody ? req : null }, {
      head: writeHead,
      write: (chunk) => (res as NodeJS.WritableStream).write(chunk),
      onDrain: (resume) => res.on('drain', resume),
      end: () => void res.end(),
      fail: (error) => fail(error, classifyBackendFailure(error)),
    });
    cancel = () => exchange.cancel();
    return;
  }
  let turn: Promise<void> = Promise.resolve();
  if (bound) {
    turn = bound.turn;
    bound.turn = new Promise((resolve) => res.once('close', resolve));
  }
  const base = { method, headers };
  turn.then(() => requester.plan(url, base, bound?.agents)).then((plan) => {
    if (answered || res.destroyed) return;
    const exchange = requester.send(plan, { url, base, ...(bound ? { via: bound.agents } : {}) }, hasBody ? (request) => req.pipe(request) : 'none', {
      response: (response) => {
        if (!writeHead(response.statusCode ?? 502, response.headers)) return void response.destroy();
        response.pipe(res);
        response.on('error', cut);
      },
      error: (error) => fail(error, classifyBackendFailure(error)),
      retried: (next) => logger.info({ app: app.name, backend: app.internalUrl.origin, via: describePlan(next) }, 'no proxy of the list took a connection: the request goes by the next route'),
    });
    cancel = () => exchange.destroy();
    if (!hasBody) req.resume();
  }, (error: Error) => fail(error, 'bad-internal-url'));
}

/** An HTTP/1.1 Upgrade (WebSocket) goes to the app as an Upgrade; then bytes both ways. */
function forwardUpgrade(connection: ConnectionFacts, req: IncomingMessage, socket: Duplex, head: Buffer, requester: BackendRequester, logger: Logger): void {
  const { app } = connection;
  const host = String(req.headers.host ?? '');
  const fail = (error: UserError): void => void socket.end(rawUserError(error));
  if (normalizeHost(host) !== normalizeHost(app.externalUrl.host)) return fail(userErrors.misdirected(host, app.externalUrl.host));
  if (String(req.headers.upgrade).toLowerCase() !== 'websocket') return fail({ ...userErrors.unknownHost(host), status: 400, title: 'Bad Request', detail: 'only WebSocket upgrades are supported' });
  const headers = endToEndHeaders(req.headers);
  addForwardedHeaders(headers, req.headers['x-forwarded-for'], connection.clientAddress, host, connection.userProto);
  Object.assign(headers, { host: app.internalUrl.host, connection: 'Upgrade', upgrade: 'websocket' });
  const url = appTarget(app.internalUrl, joinPath(app, req.url ?? '/'));
  const base = { method: 'GET', headers };
  requester.plan(url, base).then((plan) => {
    requester.send(plan, { url, base }, 'none', {
      upgrade: (response, backend, backendHead) => {
        socket.write(switchingProtocolsHead(response.headers));
        if (backendHead.length) socket.write(backendHead);
        if (head.length) backend.write(head);
        backend.pipe(socket);
        socket.pipe(backend);
        backend.on('error', () => socket.destroy());
        socket.on('error', () => backend.destroy());
        backend.on('close', () => socket.destroy());
        socket.on('close', () => backend.destroy());
      },
      response: (response) => {
        response.resume();
        fail(userErrors.backendUnreachable('refused-upgrade', `backend answered ${response.statusCode}`));
      },
      error: (error) => {
        const errorClass = classifyBackendFailure(error);
        logger.warn({ app: app.name, backend: app.internalUrl.origin, errorClass, code: error.code, err: error }, 'backend upgrade failed');
        fail(userErrors.backendUnreachable(errorClass, `${app.internalUrl.host}: ${error.code ?? error.message}`));
      },
    });
  }, (error: Error) => fail(userErrors.backendUnreachable('bad-internal-url', error.message)));
}

/**
 * The stream as the socket Node's HTTP server expects. Not the stream itself: the server writes
 * its response heads as latin1 strings, and an HTTP/2 stream given those through writev corrupts
 * the first bytes (seen on Node 20); this adapter hands it Buffers only.
 */
function streamAsSocket(stream: ServerHttp2Stream): Duplex {
  // socket.setTimeout as Node's server uses it (keep-alive timeout between requests): 'timeout'
  // after that long without bytes either way.
  let idleMs = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  const touch = () => {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = idleMs > 0 ? setTimeout(() => socket.emit('timeout'), idleMs).unref() : undefined;
  };
  const socket = new Duplex({
    read() {
      stream.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      touch();
      stream.write(chunk, callback);
    },
    writev(chunks, callback) {
      touch();
      const last = chunks.length - 1;
      chunks.forEach(({ chunk }, index) => {
        if (index === last) stream.write(chunk as Buffer, callback);
        else stream.write(chunk as Buffer);
      });
    },
    final(callback) {
      stream.end(callback);
    },
    destroy(error, callback) {
      if (idleTimer) clearTimeout(idleTimer);
      if (!stream.closed) stream.close(error ? NGHTTP2_CANCEL : http2.constants.NGHTTP2_NO_ERROR);
      callback(error);
    },
  });
  stream.on('data', (chunk: Buffer) => {
    touch();
    if (!socket.push(chunk)) stream.pause();
  });
  stream.on('end', () => socket.push(null));
  stream.on('error', (error) => socket.destroy(error));
  stream.on('close', () => socket.destroy());
  // What Node's HTTP server calls on a socket; a stream has its own idle handling.
  const self = (): Duplex => socket;
  const setIdleTimeout = (ms: number, callback?: () => void): Duplex => {
    idleMs = ms;
    if (callback) socket.once('timeout', callback);
    touch();
    return socket;
  };
  Object.assign(socket, { setTimeout: setIdleTimeout, setNoDelay: self, setKeepAlive: self, remoteAddress: undefined });
  return socket;
}
