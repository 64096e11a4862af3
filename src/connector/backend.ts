// Serves one tunnel stream: forwards it to the internal app named by the relay and streams the
// answer back. Bodies are piped in both directions, so the tunnel's HTTP/2 flow control paces the
// backend. Backend failures become a classified `ferry-error` answer that the relay renders.
// WebSocket streams (extended CONNECT) become an HTTP/1.1 Upgrade to the backend, then raw bytes.
import http, { type IncomingMessage, type ClientRequest } from 'node:http';
import https from 'node:https';
import http2, { type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { util, type Pool } from 'undici';
import { endToEndHeaders, FERRY_HEADERS, type BackendFailureClass } from '../shared/wire.js';
import { DialError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { BackendRequester } from './egress.js';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;

export function serveBackendStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, requester: BackendRequester, logger: Logger): void {
  forward(stream, headers, requester, logger).catch((error: Error) => {
    logger.warn({ err: error }, 'backend request could not be planned');
    failStream(stream, error instanceof DialError ? classifyBackendFailure(error) : 'bad-internal-url', error.message);
  });
}

async function forward(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, requester: BackendRequester, logger: Logger): Promise<void> {
  let internal: URL;
  try {
    internal = new URL(String(headers[FERRY_HEADERS.internalUrl]));
    if (internal.protocol !== 'http:' && internal.protocol !== 'https:') throw new Error('scheme');
  } catch {
    return failStream(stream, 'bad-internal-url', 'the relay sent no usable internal URL');
  }
  const isWebSocket = headers[':method'] === 'CONNECT' && headers[':protocol'] === 'websocket';
  const requestHeaders = endToEndHeaders(headers);
  const path = String(headers[':path'] ?? '/');
  const target = new URL(path, internal.origin);
  const pool = isWebSocket ? undefined : requester.directPool(target);
  if (pool) return dispatchToStream(pool, stream, headers, { ...requestHeaders, host: internal.host }, target, internal, logger);
  // The egress plans the request: direct, or through the backend proxy when enabled.
  const plan = await requester.plan(target, {
    method: isWebSocket ? 'GET' : String(headers[':method']),
    headers: isWebSocket
      ? { ...requestHeaders, host: internal.host, connection: 'Upgrade', upgrade: 'websocket' }
      : { ...requestHeaders, host: internal.host },
  });
  if (stream.destroyed) return;
  const client = plan.protocol === 'https:' ? https : http;
  const request: ClientRequest = client.request(plan.options);
  request.setNoDelay?.(true);

  request.on('response', (response: IncomingMessage) => {
    if (stream.destroyed) return response.destroy();
    try {
      stream.respond({ ':status': response.statusCode ?? 502, ...endToEndHeaders(response.headers) });
    } catch (error) {
      logger.debug({ err: error }, 'could not send response headers on the tunnel');
      return response.destroy();
    }
    response.pipe(stream);
    response.on('error', () => stream.close(NGHTTP2_INTERNAL_ERROR));
  });
  request.on('upgrade', (response: IncomingMessage, socket: Duplex, head: Buffer) => {
    const out = endToEndHeaders(response.headers);
    stream.respond({ ':status': 200, ...out });
    if (head.length) stream.write(head);
    socket.pipe(stream);
    stream.pipe(socket);
    socket.on('error', () => stream.close(NGHTTP2_CANCEL));
    socket.on('close', () => { if (!stream.closed) stream.close(); });
    stream.on('close', () => socket.destroy());
  });
  request.on('error', (error: NodeJS.ErrnoException) => {
    if (stream.headersSent) {
      stream.close(NGHTTP2_INTERNAL_ERROR);
      return;
    }
    const errorClass = classifyBackendFailure(error);
    logger.warn({ app: headers[FERRY_HEADERS.app], backend: internal.origin, errorClass, code: error.code }, 'backend request failed');
    failStream(stream, errorClass, `${internal.host}: ${error.code ?? error.message}`);
  });
  stream.on('close', () => {
    if (!request.destroyed && !request.writableFinished) request.destroy();
  });
  stream.on('error', () => request.destroy());
  if (isWebSocket) {
    request.flushHeaders();
  } else {
    // Not pipe's own end: a tunnel stream reset by the relay (the user went away, or the answer was
    // complete before the upload) also ends the readable side, and ending the backend request then
    // would send a truncated body on a keep-alive socket that the next request reuses.
    stream.pipe(request, { end: false });
    stream.once('end', () => {
      if (stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) request.destroy();
      else request.end();
    });
  }
}

/**
 * Where a backend answer goes, for `dispatchToApp`: `head` false means the answer is no longer
 * wanted (the request is cancelled); `write` false means "pause the app until `onDrain`".
 */
export interface AnswerSink {
  head(status: number, headers: Record<string, string | string[] | undefined>): boolean;
  write(chunk: Buffer): boolean;
  onDrain(resume: () => void): void;
  end(): void;
  fail(error: NodeJS.ErrnoException): void;
}

/**
 * One request to a DIRECT plain-http app through its undici pool, the answer written straight into
 * `sink`: no body stream, no AbortController, no ClientRequest per request (at 10,000 open requests
 * http.request kept ~7 KB of objects each). Returns the cancel function (stops the app's request).
 */
export function dispatchToApp(pool: Pool, request: { method: string; path: string; headers: Record<string, string | string[] | undefined>; body: Readable | null }, sink: AnswerSink): () => void {
  let abort: ((error: Error) => void) | undefined;
  let cancelled = false;
  const cancel = () => {
    cancelled = true;
    abort?.(new Error('cancelled'));
  };
  // undici refuses Expect (Node's server, or the relay, answered 100-continue already).
  delete request.headers.expect;
  pool.dispatch(request, {
    onConnect: (abortRequest: (error?: Error) => void) => {
      abort = abortRequest;
      if (cancelled) cancel();
    },
    onHeaders: (statusCode: number, rawHeaders: Buffer[], resume: () => void) => {
      if (!sink.head(statusCode, util.parseHeaders(rawHeaders))) {
        cancel();
        return false;
      }
      sink.onDrain(resume);
      return true;
    },
    onData: (chunk: Buffer) => sink.write(chunk),
    onComplete: () => sink.end(),
    onError: (error: NodeJS.ErrnoException) => sink.fail(error),
  });
  return cancel;
}

/** A tunnel stream's request through `dispatchToApp`; the stream's flow control paces the app. */
function dispatchToStream(pool: Pool, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, requestHeaders: Record<string, string | string[] | undefined>, target: URL, internal: URL, logger: Logger): void {
  let complete = false;
  const cancel = dispatchToApp(pool, {
    method: String(headers[':method']),
    path: `${target.pathname}${target.search}`,
    headers: requestHeaders,
    // Not the stream itself: undici destroys a body stream when it ends, and this one still has to
    // carry the answer.
    body: stream.endAfterHeaders ? null : stream.pipe(new PassThrough()),
  }, {
    head: (status, responseHeaders) => {
      if (stream.destroyed) return false;
      try {
        stream.respond({ ':status': status, ...endToEndHeaders(responseHeaders) });
        return true;
      } catch (error) {
        logger.debug({ err: error }, 'could not send response headers on the tunnel');
        return false;
      }
    },
    write: (chunk) => stream.write(chunk),
    onDrain: (resume) => stream.on('drain', resume),
    end: () => {
      complete = true;
      stream.end();
    },
    fail: (error) => {
      complete = true;
      if (stream.destroyed) return;
      if (stream.headersSent) return stream.close(NGHTTP2_INTERNAL_ERROR);
      const errorClass = classifyBackendFailure(error);
      logger.warn({ app: headers[FERRY_HEADERS.app], backend: internal.origin, errorClass, code: error.code }, 'backend request failed');
      failStream(stream, errorClass, `${internal.host}: ${error.code ?? error.message}`);
    },
  });
  // Reset by the relay (the user went away, or the answer came before the whole upload): the app's
  // request stops, rather than ending with a truncated body on a keep-alive connection.
  // undici destroys a body it stops reading (an answer that came before the whole upload) with an
  // error; that is the stream's end here, not news.
  stream.on('error', () => undefined);
  stream.on('close', () => { if (!complete) cancel(); });
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

function failStream(stream: ServerHttp2Stream, errorClass: BackendFailureClass, detail: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': 502, [FERRY_HEADERS.error]: errorClass, [FERRY_HEADERS.errorDetail]: detail.replace(/[^\x20-\x7e]/g, '?') }, { endStream: true });
}
