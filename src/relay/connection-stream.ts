// An HTTP/1.1 user connection becomes one tunnel stream (CONNECTOR_FEATURES.connectionStreams):
// the relay reads only the first request head, to learn the app from its Host, then moves bytes
// both ways; the connector reads the requests (or splices them to the app, mode passthrough).
// Per-request work on the relay (an HTTP/2 stream, header conversion, a response object per
// request) was most of its CPU per small request; this leaves TLS and byte copies.
//
// Anything unusual hands the connection, bytes read so far included, to the per-request HTTP/1.1
// server instead: an unknown host, no connector with the feature, a head too large or too slow,
// a relay that is draining, a connector that refuses the stream. That server then answers with
// the usual pages (404, 502, 503), so the fast path never changes what a user sees.
//
// An HTTP/2 user connection becomes one tunnel stream too when its TLS server name names an app
// (CONNECTOR_FEATURES.http2ConnectionStreams): the connector runs the user's HTTP/2 session. The
// relay reads nothing from it first; anything unusual goes to the relay's own HTTP/2 server.
// May import: shared/, ./forward.js and ./tunnel-registry.js types.
import http2, { type ClientHttp2Stream } from 'node:http2';
import type http from 'node:http';
import type net from 'node:net';
import type tls from 'node:tls';
import { CONNECTOR_FEATURES, FERRY_HEADERS } from '../shared/wire.js';
import { bulkPipe } from '../shared/bulk-pipe.js';
import { fieldValues, parseHead } from '../shared/http1-heads.js';
import type { ForwardContext, PublishedApp } from './forward.js';
import type { Tunnel } from './tunnel-registry.js';

const { NGHTTP2_CANCEL } = http2.constants;

/** Larger first heads (big cookies) are served per request, where Node's own limits apply. */
const MAX_FIRST_HEAD = 16 * 1024;
/** A client slower than this to send its first head is served per request (with its timeouts). */
const FIRST_HEAD_WAIT_MS = 5_000;
/** After the user closed cleanly, how long the connector gets to end the stream before a reset. */
const CLOSE_GRACE_MS = 2_000;

export interface ConnectionStreamContext extends ForwardContext {
  /** Connection streams open now (a graceful shutdown waits for them). */
  connections: { count: number };
  /** The app whose external host name is this TLS server name, when exactly one app has it. */
  findAppByServerName(serverName: string): PublishedApp | undefined;
}

/** Serves one HTTP/1.1 user connection: as a connection stream when it can, else per request. */
export function carryConnection(ctx: ConnectionStreamContext, socket: net.Socket, userProto: 'http' | 'https', perRequest: http.Server): void {
  let buffered: Buffer = Buffer.alloc(0);
  const handOver = () => {
    socket.off('data', onData);
    clearTimeout(timer);
    if (socket.destroyed) return;
    if (buffered.length) socket.unshift(buffered);
    perRequest.emit('connection', socket);
    socket.resume();
  };
  const timer = setTimeout(handOver, FIRST_HEAD_WAIT_MS);
  const onData = (chunk: Buffer) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    const end = buffered.indexOf('\r\n\r\n');
    if (end < 0 && buffered.length < MAX_FIRST_HEAD) return;
    socket.pause();
    socket.off('data', onData);
    clearTimeout(timer);
    const host = end < 0 ? undefined : hostOfFirstHead(buffered.toString('latin1', 0, end));
    const app = host === undefined || ctx.isDraining() ? undefined : ctx.findApp(host);
    const tunnel = app && ctx.tunnels.pick(app.group, CONNECTOR_FEATURES.connectionStreams);
    if (!app || !tunnel) return handOver();
    openConnectionStream(ctx, socket, app, tunnel, { userProto, first: buffered, handOver });
  };
  socket.on('data', onData);
  socket.on('error', () => clearTimeout(timer));
}

/**
 * An HTTP/2 user connection whose TLS server name (SNI) names an app, to a connector that serves
 * HTTP/2 sessions (CONNECTOR_FEATURES.http2ConnectionStreams), becomes one tunnel stream: the
 * connector runs the user's session and the relay moves bytes. Per request, the relay's stream to
 * the connector (Node's `request()` alone was a quarter of its CPU per HTTP/2 user request) and
 * the two header conversions go away. Nothing is read from the user before the connector accepts
 * the stream, so a refusal hands the untouched connection to the relay's own HTTP/2 server (and
 * so do no server name, an unknown one and a draining relay). Requests for
 * another host on the connection (a browser coalescing apps that share the certificate) get 421
 * from the connector, and the browser sends them on a connection of their own.
 */
export function carryHttp2Connection(ctx: ConnectionStreamContext, socket: tls.TLSSocket, perRequest: (socket: tls.TLSSocket) => void): void {
  const serverName = typeof socket.servername === 'string' ? socket.servername : undefined;
  const app = serverName && !ctx.isDraining() ? ctx.findAppByServerName(serverName) : undefined;
  const tunnel = app && ctx.tunnels.pick(app.group, CONNECTOR_FEATURES.http2ConnectionStreams);
  if (!app || !tunnel) return perRequest(socket);
  openConnectionStream(ctx, socket, app, tunnel, { userProto: 'https', userProtocol: 'h2', handOver: () => perRequest(socket) });
}

/**
 * Opens the connection stream and moves bytes once the connector accepted it (200). `first`:
 * bytes already read from the user, sent with the stream's opening. Until the 200, a refusal, an
 * error or the stream's close calls `handOver` (the connection is then served per request).
 */
function openConnectionStream(ctx: ConnectionStreamContext, socket: net.Socket, app: PublishedApp, tunnel: Tunnel, options: {
  userProto: 'http' | 'https';
  userProtocol?: 'h2';
  first?: Buffer;
  handOver: () => void;
}): void {
  let stream: ClientHttp2Stream;
  try {
    stream = tunnel.session.request({
      ':method': 'CONNECT',
      ':authority': app.internalUrl.host,
      [FERRY_HEADERS.app]: app.name,
      [FERRY_HEADERS.internalHref]: app.internalUrl.href,
      [FERRY_HEADERS.externalUrl]: app.externalUrl.href,
      [FERRY_HEADERS.clientAddress]: socket.remoteAddress ?? '',
      [FERRY_HEADERS.userProto]: options.userProto,
      [FERRY_HEADERS.timeoutMs]: String(app.timeoutMs),
      [FERRY_HEADERS.appMode]: app.mode,
      ...(options.userProtocol ? { [FERRY_HEADERS.userProtocol]: options.userProtocol } : {}),
    });
  } catch {
    return options.handOver();
  }
  tunnel.active++;
  ctx.connections.count++;
  stream.once('close', () => {
    tunnel.active--;
    ctx.connections.count--;
  });
  // The first bytes travel with the stream's opening; the answer comes after the connector's 200.
  if (options.first) stream.write(options.first);
  let carried = false;
  let refused = false;
  /** The connector refused the stream, or its tunnel went away first: serve the bytes per request. */
  const refuse = (why: string) => {
    if (carried || refused) return;
    refused = true;
    ctx.logger.debug({ app: app.name, tunnel: tunnel.id, why }, 'connection stream refused: serving the connection per request');
    if (!stream.closed) stream.close(NGHTTP2_CANCEL);
    options.handOver();
  };
  stream.once('response', (headers) => {
    if (Number(headers[':status']) !== 200) return refuse(`connector answered ${headers[':status']}`);
    carried = true;
    bulkPipe(stream, socket);
    bulkPipe(socket, stream);
    socket.resume();
  });
  stream.on('error', (error) => {
    if (!carried) return refuse(error.message);
    ctx.logger.debug({ err: error, app: app.name, tunnel: tunnel.id }, 'connection stream failed');
    socket.destroy();
  });
  stream.on('close', () => {
    if (!carried) return refuse('the stream closed first');
    // NO_ERROR: the connector is done with the connection (what it wrote is delivered first).
    if (stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) socket.destroy();
    // Not on a socket that closed already: end() would build an error to report (~4% of the
    // relay's CPU when every user connection carries one request).
    else if (!socket.destroyed) socket.end();
  });
  socket.on('close', (hadError) => {
    if (stream.closed || refused) return;
    // A clean close: the connector ends the stream by itself; a reset for each closed connection
    // would count against nghttp2's reset-rate limit on the connector.
    if (!hadError && carried) setTimeout(() => { if (!stream.closed) stream.close(NGHTTP2_CANCEL); }, CLOSE_GRACE_MS).unref();
    else stream.close(NGHTTP2_CANCEL);
  });
}

/**
 * The Host of an HTTP/1.x request head (without its blank line), for routing only; undefined for
 * anything unusual (the per-request server then answers it). The connector parses every request again.
 */
export function hostOfFirstHead(head: string): string | undefined {
  const parsed = parseHead(`${head}\r\n\r\n`);
  if (!parsed || !/^[A-Z]+ \S+ HTTP\/1\.[01]$/.test(parsed.startLine)) return undefined;
  const hosts = fieldValues(parsed, 'host');
  return hosts.length === 1 && hosts[0] ? hosts[0].toLowerCase() : undefined;
}
