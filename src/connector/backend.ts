// Serves one tunnel stream: forwards it to the internal app named by the relay and streams the
// answer back. A plain-http app reached DIRECT goes through the app client (app-client.ts, also
// used by connection streams); others through the egress requester (plan, then send). Bodies flow
// both ways under the tunnel's HTTP/2 flow control, so it paces the backend. Backend failures
// become a classified `ferry-error` answer that the relay renders. WebSocket streams (extended
// CONNECT) become an HTTP/1.1 Upgrade to the backend, then raw bytes.
import type http from 'node:http';
import http2, { type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { endToEndHeaders, FERRY_HEADERS, type BackendFailureClass } from '../shared/wire.js';
import { appTarget } from '../shared/published-app.js';
import { DialError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { describePlan } from '../egress/http.js';
import type { BackendRequester } from './egress.js';
import type { AnswerSink, AppClient } from './app-client.js';
import { countMovedChunk } from '../shared/bulk-pipe.js';

const { NGHTTP2_CANCEL } = http2.constants;

export function serveBackendStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, requester: BackendRequester, appClient: AppClient, logger: Logger): void {
  const internal = internalUrlOf(String(headers[FERRY_HEADERS.internalUrl]));
  if (!internal) return failStream(stream, 'bad-internal-url', 'the relay sent no usable internal URL');
  const isWebSocket = headers[':method'] === 'CONNECT' && headers[':protocol'] === 'websocket';
  const requestHeaders = endToEndHeaders(headers);
  requestHeaders.host = internal.host;
  const target = appTarget(internal, String(headers[':path'] ?? '/'));
  const app = String(headers[FERRY_HEADERS.app] ?? '');
  if (!isWebSocket && appClient.serves(target)) {
    // Synchronous, and nothing keeps the stream's header object: an open request (a long-poll)
    // holds only what it needs.
    const answer = new TunnelStreamAnswer(stream, app, internal, logger);
    answer.exchange = appClient.dispatch(internal, {
      method: String(headers[':method']),
      path: `${target.pathname}${target.search}`,
      headers: requestHeaders,
      body: stream.endAfterHeaders ? null : stream,
    }, answer);
    // A reset stream ends the app's request rather than letting it finish with a truncated body.
    stream.on('error', ignore);
    stream.on('close', onAnsweredStreamClose);
    return;
  }
  forwardPlanned(stream, { method: String(headers[':method']), isWebSocket, headers: requestHeaders, target, internal, app }, requester, logger).catch((error: Error) => {
    logger.warn({ err: error }, 'backend request could not be planned');
    failStream(stream, error instanceof DialError ? classifyBackendFailure(error) : 'bad-internal-url', error.message);
  });
}

function ignore(): void {}

/**
 * The internal URL the relay named, parsed once per distinct value (a few apps, many requests);
 * the URL objects are shared and never changed. Undefined when unusable.
 */
function internalUrlOf(value: string): URL | undefined {
  let url = internalUrls.get(value);
  if (url) return url;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (internalUrls.size >= 1024) internalUrls.clear();
  internalUrls.set(value, url);
  return url;
}
const internalUrls = new Map<string, URL>();

// Shared listener, the answer a property of the stream: no closure per open request.
const ANSWER = Symbol('ferry.tunnelStreamAnswer');
function onAnsweredStreamClose(this: ServerHttp2Stream & { [ANSWER]?: TunnelStreamAnswer }): void {
  const answer = this[ANSWER];
  if (answer && !answer.complete) answer.exchange?.cancel();
}

interface TunnelRequest {
  method: string;
  isWebSocket: boolean;
  headers: Record<string, string | string[] | undefined>;
  target: URL;
  internal: URL;
  app: string;
}

/** Through the egress's plan (https apps, the backend proxy, WebSockets): Node's http.request. */
async function forwardPlanned(stream: ServerHttp2Stream, tunnelRequest: TunnelRequest, requester: BackendRequester, logger: Logger): Promise<void> {
  const { isWebSocket, internal, app } = tunnelRequest;
  const base = {
    method: isWebSocket ? 'GET' : tunnelRequest.method,
    headers: isWebSocket ? { ...tunnelRequest.headers, connection: 'Upgrade', upgrade: 'websocket' } : tunnelRequest.headers,
  };
  const writeBody = (request: http.ClientRequest): void => {
    // Not pipe's own end: a tunnel stream reset by the relay (the user went away, or the answer
    // was complete before the upload) also ends the readable side, and ending the backend
    // request then would send a truncated body on a keep-alive socket that the next request reuses.
    stream.pipe(request, { end: false });
    stream.once('end', () => {
      if (stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) exchange.destroy();
      else request.end();
    });
  };
  // A request whose HEADERS ended the stream has no body.
  const body = isWebSocket ? 'upgrade' : stream.endAfterHeaders ? 'none' : writeBody;
  const failed = (error: NodeJS.ErrnoException) => {
    if (stream.headersSent) {
      cutAnswer(stream);
      return;
    }
    const errorClass = classifyBackendFailure(error);
    logger.warn({ app, backend: internal.origin, errorClass, code: error.code, ...(error instanceof DialError ? { reason: error.message } : {}) }, 'backend request failed');
    failStream(stream, errorClass, `${internal.host}: ${error.code ?? error.message}`);
  };
  const plan = await requester.plan(tunnelRequest.target, base);
  if (stream.destroyed) return;
  const exchange = requester.send(plan, { url: tunnelRequest.target, base }, body, {
    response: (response) => {
      if (stream.destroyed) return response.destroy();
      try {
        stream.respond({ ':status': response.statusCode ?? 502, ...endToEndHeaders(response.headers) });
      } catch (error) {
        logger.debug({ err: error }, 'could not send response headers on the tunnel');
        return response.destroy();
      }
      response.on('data', countMovedChunk).pipe(stream);
      response.on('error', () => cutAnswer(stream));
    },
    upgrade: (response, socket, head) => {
      const out = endToEndHeaders(response.headers);
      stream.respond({ ':status': 200, ...out });
      if (head.length) stream.write(head);
      socket.pipe(stream);
      stream.pipe(socket);
      socket.on('error', () => stream.close(NGHTTP2_CANCEL));
      socket.on('close', () => { if (!stream.closed) stream.close(); });
      stream.on('close', () => socket.destroy());
    },
    error: failed,
    retried: (next) => logger.info({ app, backend: internal.origin, via: describePlan(next) }, 'no proxy of the list took a connection: the request goes by the next route'),
  });
  stream.on('close', () => {
    if (!exchange.request.destroyed && !exchange.request.writableFinished) exchange.destroy();
  });
  stream.on('error', () => exchange.destroy());
}

/**
 * An HTTP/2 stream as the sink of the app client's answer: the stream's flow control paces the
 * app. One object per request (an open long-poll holds only this), for a tunnel stream here and
 * for an HTTP/2 user's stream on a session the connector runs (http2-user-stream.ts).
 */
export abstract class StreamAnswer implements AnswerSink {
  complete = false;
  exchange: { cancel(): void } | undefined;

  constructor(protected readonly stream: ServerHttp2Stream, protected readonly logger: Logger) {}

  /** The stream was reset (its user went away, or the answer came before the whole upload). */
  bodyCut(): boolean {
    const { rstCode } = this.stream;
    return rstCode !== undefined && rstCode !== http2.constants.NGHTTP2_NO_ERROR;
  }

  abstract head(status: number, headers: Record<string, string | string[] | undefined>): boolean;
  abstract fail(error: NodeJS.ErrnoException): void;

  /** Sends the answer's head; false when the stream cannot take it any more. */
  protected respond(headers: http2.OutgoingHttpHeaders): boolean {
    if (this.stream.destroyed) return false;
    try {
      this.stream.respond(headers);
      return true;
    } catch (error) {
      this.logger.debug({ err: error }, 'could not send the answer\'s head on the stream');
      return false;
    }
  }

  write(chunk: Buffer): boolean {
    return this.stream.write(chunk);
  }

  onDrain(resume: () => void): void {
    this.stream.on('drain', resume);
  }

  end(): void {
    this.complete = true;
    this.stream.end();
  }
}

/** A tunnel stream as the sink of the app client; a failure is a `ferry-error` answer the relay renders. */
class TunnelStreamAnswer extends StreamAnswer {
  constructor(stream: ServerHttp2Stream, private readonly app: string, private readonly internal: URL, logger: Logger) {
    super(stream, logger);
    (stream as ServerHttp2Stream & { [ANSWER]?: TunnelStreamAnswer })[ANSWER] = this;
  }

  head(status: number, headers: Record<string, string | string[] | undefined>): boolean {
    return this.respond({ ':status': status, ...endToEndHeaders(headers) });
  }

  fail(error: NodeJS.ErrnoException): void {
    this.complete = true;
    const { stream, internal } = this;
    if (stream.destroyed) return;
    if (stream.headersSent) return cutAnswer(stream);
    const errorClass = classifyBackendFailure(error);
    this.logger.warn({ app: this.app, backend: internal.origin, errorClass, code: error.code }, 'backend request failed');
    failStream(stream, errorClass, `${internal.host}: ${error.code ?? error.message}`);
  }
}

/** The failure class a backend error is reported under (a dial error keeps its own class). */
export function classifyBackendFailure(error: NodeJS.ErrnoException): BackendFailureClass {
  if (error instanceof DialError) return error.errorClass as BackendFailureClass;
  switch (error.code) {
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'dns';
    case 'ECONNREFUSED': return 'connect-refused';
    case 'ETIMEDOUT': case 'EHOSTUNREACH': case 'ENETUNREACH': return 'connect-timeout';
    case 'ECONNRESET': case 'EPIPE': return 'reset';
    default: return /CERT|SSL|TLS/.test(error.code ?? '') ? 'tls' : 'reset';
  }
}

/**
 * An answer that began and cannot finish: RST_STREAM INTERNAL_ERROR, which the relay passes on
 * as a reset of the user's stream. Not `stream.close(code)`: Node ends the stream's writable side
 * first, and a peer that already ended its own side then sees a clean end, a truncated body
 * passed off as complete (checked: rstCode 0 at the peer).
 */
function cutAnswer(stream: ServerHttp2Stream): void {
  if (!stream.destroyed) stream.destroy(new Error('the app\'s answer was cut short'));
}

function failStream(stream: ServerHttp2Stream, errorClass: BackendFailureClass, detail: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': 502, [FERRY_HEADERS.error]: errorClass, [FERRY_HEADERS.errorDetail]: detail.replace(/[^\x20-\x7e]/g, '?') }, { endStream: true });
}
