// Carries one user request (HTTP/1.1 or HTTP/2) down a tunnel as one HTTP/2 stream and the answer
// back, streaming both ways: bodies are piped, so HTTP/2 flow control (not a buffer) paces a slow
// browser or a slow backend. WebSocket upgrades become RFC 8441 extended CONNECT streams.
import http2, { type IncomingHttpHeaders as H2Headers, type ClientHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse, IncomingHttpHeaders } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { endToEndHeaders, FERRY_HEADERS, isConnectionAuth, switchingProtocolsHead } from '../shared/wire.js';
import { requestHasBody } from '../shared/http1-heads.js';
import type { Logger } from '../shared/log.js';
import { rawUserError, sendUserError, userErrors, type UserError } from '../shared/error-page.js';
import type { Tunnel, TunnelRegistry } from './tunnel-registry.js';
import { addForwardedHeaders, joinPath, rewriteLocation, type PublishedApp } from '../shared/published-app.js';
import { countMovedChunk } from '../shared/bulk-pipe.js';
import { stopUnneededUpload } from '../shared/http2-users.js';

export type { PublishedApp };

export interface ForwardContext {
  findApp(host: string): PublishedApp | undefined;
  tunnels: TunnelRegistry;
  logger: Logger;
  isDraining(): boolean;
  /** Counts requests in flight, so a graceful shutdown can wait for them. */
  inflight: { count: number };
}

type UserRequest = IncomingMessage | Http2ServerRequest;
type UserResponse = ServerResponse | Http2ServerResponse;

const { NGHTTP2_CANCEL, NGHTTP2_HTTP_1_1_REQUIRED } = http2.constants;

export function hostOf(headers: IncomingHttpHeaders | H2Headers): string {
  return String(headers[':authority'] ?? headers.host ?? '').toLowerCase();
}

/** Handles one ordinary user request. */
export function forwardRequest(ctx: ForwardContext, req: UserRequest, res: UserResponse, userProto: 'http' | 'https'): void {
  const host = hostOf(req.headers);
  const accept = req.headers.accept;
  const app = ctx.findApp(host);
  if (!app) return sendUserError(res, userErrors.unknownHost(host), accept);
  if (ctx.isDraining()) return sendUserError(res, userErrors.draining(), accept);
  const tunnel = ctx.tunnels.pick(app.group);
  if (!tunnel) return sendUserError(res, userErrors.noConnector(app.group), accept);

  const headers = tunnelRequestHeaders(req, app, host, userProto);
  // A body follows when the user's message says so, whatever the method (a GET may carry one:
  // Elasticsearch's search API does): an HTTP/2 stream not ended with its headers, an HTTP/1.1
  // request with a Transfer-Encoding or a Content-Length above 0. Without one the tunnel stream
  // ends with its headers too, and the app is told `content-length: 0` (or nothing) rather than
  // an empty chunked body.
  const hasBody = 'stream' in req ? !req.stream.endAfterHeaders : requestHasBody(req.headers);
  let stream: ClientHttp2Stream;
  try {
    stream = tunnel.session.request(headers, { endStream: !hasBody });
  } catch (error) {
    ctx.logger.warn({ err: error, tunnel: tunnel.id }, 'tunnel refused a new stream');
    return sendUserError(res, userErrors.connectorLost(), accept);
  }
  track(ctx, tunnel, stream);

  let answered = false;
  const timer = setTimeout(() => {
    if (answered) return;
    answered = true;
    stream.close(NGHTTP2_CANCEL);
    sendUserError(res, userErrors.backendTimeout(app.timeoutMs), accept);
  }, app.timeoutMs);
  timer.unref();

  if (hasBody) req.on('data', countMovedChunk).pipe(stream);
  stream.on('response', (responseHeaders) => {
    clearTimeout(timer);
    if (answered) return;
    answered = true;
    const status = Number(responseHeaders[':status']);
    const failure = responseHeaders[FERRY_HEADERS.error];
    if (failure) {
      stream.resume();
      const detail = String(responseHeaders[FERRY_HEADERS.errorDetail] ?? '');
      return sendUserError(res, userErrors.backendUnreachable(String(failure), detail), accept, String(failure));
    }
    if (status === 401 && 'stream' in req && isConnectionAuth(responseHeaders['www-authenticate'])) {
      // NTLM/Negotiate over HTTP/2 cannot work (it authenticates a connection, and an HTTP/2
      // connection carries many users' requests to many app connections): as IIS does, the user
      // is told to use HTTP/1.1 (RST_STREAM HTTP_1_1_REQUIRED), and browsers and curl retry the
      // request over HTTP/1.1, where the connector keeps the app connection with the user.
      stream.close(NGHTTP2_CANCEL);
      (res as Http2ServerResponse).stream.close(NGHTTP2_HTTP_1_1_REQUIRED);
      return;
    }
    const out = endToEndHeaders(responseHeaders);
    rewriteLocation(out, app);
    res.writeHead(status, out as Record<string, string | string[]>);
    stream.on('data', countMovedChunk).pipe(res as NodeJS.WritableStream);
    if (hasBody && 'stream' in req) {
      stream.once('end', () => stopUnneededUpload(req, res as Http2ServerResponse, () => {
        req.unpipe(stream);
        if (!stream.closed) stream.close(NGHTTP2_CANCEL);
      }));
    }
  });
  stream.on('error', (error) => {
    clearTimeout(timer);
    if (!answered) {
      answered = true;
      ctx.logger.warn({ err: error, app: app.name, tunnel: tunnel.id }, 'tunnel stream failed before the answer');
      sendUserError(res, userErrors.connectorLost(), accept);
    } else {
      res.destroy(error);
    }
  });
  // A tunnel that goes away closes its streams with CANCEL, which Node reports with 'close' only.
  stream.on('close', () => {
    clearTimeout(timer);
    if (answered) return;
    answered = true;
    ctx.logger.warn({ app: app.name, tunnel: tunnel.id, rstCode: stream.rstCode }, 'tunnel stream closed before the answer');
    sendUserError(res, userErrors.connectorLost(), accept);
  });
  // The user went away: stop the backend work too.
  // A response that finished normally leaves the stream to close by itself: an RST_STREAM for every
  // completed request trips nghttp2's reset-rate limit (the "rapid reset" defence), and the
  // connector then ends the whole tunnel with GOAWAY INTERNAL_ERROR after ~1,000 requests.
  res.on('close', () => {
    clearTimeout(timer);
    if (!res.writableFinished && !stream.closed) stream.close(NGHTTP2_CANCEL);
  });
}

/** Handles an HTTP/1.1 Upgrade (WebSocket) by opening an extended CONNECT stream. */
export function forwardUpgrade(ctx: ForwardContext, req: IncomingMessage, socket: Duplex, head: Buffer, userProto: 'http' | 'https'): void {
  const host = hostOf(req.headers);
  const app = ctx.findApp(host);
  const fail = (error: UserError): void => void socket.end(rawUserError(error));
  if (String(req.headers.upgrade).toLowerCase() !== 'websocket') return fail({ ...userErrors.unknownHost(host), status: 400, title: 'Bad Request', detail: 'only WebSocket upgrades are supported' });
  if (!app) return fail(userErrors.unknownHost(host));
  const tunnel = ctx.tunnels.pick(app.group);
  if (!tunnel) return fail(userErrors.noConnector(app.group));

  const headers = tunnelRequestHeaders(req, app, host, userProto);
  headers[':method'] = 'CONNECT';
  headers[':protocol'] = 'websocket';
  for (const name of ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions']) {
    const value = req.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  let stream: ClientHttp2Stream;
  try {
    stream = tunnel.session.request(headers);
  } catch {
    return fail(userErrors.connectorLost());
  }
  track(ctx, tunnel, stream);
  stream.on('response', (responseHeaders) => {
    const status = Number(responseHeaders[':status']);
    if (status !== 200 || responseHeaders[FERRY_HEADERS.error]) {
      const detail = String(responseHeaders[FERRY_HEADERS.errorDetail] ?? `backend answered ${status}`);
      stream.close(NGHTTP2_CANCEL);
      return fail(userErrors.backendUnreachable(String(responseHeaders[FERRY_HEADERS.error] ?? 'refused-upgrade'), detail));
    }
    socket.write(switchingProtocolsHead(responseHeaders));
    if (head.length) stream.write(head);
    stream.pipe(socket);
    socket.pipe(stream);
  });
  stream.on('error', () => socket.destroy());
  stream.on('close', () => socket.destroy());
  socket.on('error', () => stream.close(NGHTTP2_CANCEL));
  socket.on('close', () => { if (!stream.closed) stream.close(NGHTTP2_CANCEL); });
}

function tunnelRequestHeaders(req: UserRequest, app: PublishedApp, host: string, userProto: 'http' | 'https'): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = endToEndHeaders(req.headers);
  addForwardedHeaders(headers, req.headers['x-forwarded-for'], req.socket.remoteAddress ?? '', host, userProto);
  headers[':method'] = req.method ?? 'GET';
  headers[':path'] = joinPath(app, req.url ?? '/');
  headers[':scheme'] = app.internalUrl.protocol.replace(':', '');
  headers[':authority'] = app.internalUrl.host;
  headers[FERRY_HEADERS.internalUrl] = app.internalUrl.origin;
  headers[FERRY_HEADERS.app] = app.name;
  return headers;
}

function track(ctx: ForwardContext, tunnel: Tunnel, stream: ClientHttp2Stream): void {
  tunnel.active++;
  ctx.inflight.count++;
  stream.once('close', () => {
    tunnel.active--;
    ctx.inflight.count--;
  });
}
