// One request of an HTTP/2 user's session that the connector runs (connection-stream.ts,
// serveHttp2), for an app the app client serves (plain http, reached DIRECT): the user's stream is
// the app client's sink, one object per request, as the tunnel path's TunnelStreamAnswer. Node's
// compatibility request and response objects and a closure per event held ~2.7 KB more per open
// request (10,000 long-polls: a fresh connector +126 MB against +97-100 with a stream per request).
// The rules are the published app's, as everywhere: Host check (421), X-Forwarded-*, path prefix,
// Location rewrite, 502/504 pages; HTTP/2 specifics as in forwardRequest (HTTP_1_1_REQUIRED for
// NTLM/Negotiate, an unneeded upload drained, a cut answer reset).
// May import: shared/, ./app-client.js types, ./backend.js (StreamAnswer, classifyBackendFailure).
import http2, { type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { endToEndHeaders, isConnectionAuth } from '../shared/wire.js';
import { renderUserError, userErrors, type UserError } from '../shared/error-page.js';
import { addForwardedHeaders, appTarget, joinPath, normalizeHost, rewriteLocation, type PublishedApp } from '../shared/published-app.js';
import type { Logger } from '../shared/log.js';
import type { AppClient } from './app-client.js';
import { classifyBackendFailure, StreamAnswer } from './backend.js';
import { drainUnneededUpload } from '../shared/http2-users.js';

const { NGHTTP2_HTTP_1_1_REQUIRED } = http2.constants;

export interface UserStreamFacts {
  app: PublishedApp;
  clientAddress: string;
  userProto: 'http' | 'https';
}

export function serveUserStream(facts: UserStreamFacts, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, appClient: AppClient, logger: Logger): void {
  const { app } = facts;
  const host = String(headers[':authority'] ?? headers.host ?? '');
  const accept = typeof headers.accept === 'string' ? headers.accept : undefined;
  if (normalizeHost(host) !== normalizeHost(app.externalUrl.host)) return respondPage(stream, userErrors.misdirected(host, app.externalUrl.host), accept);
  // NTLM and Negotiate authenticate a connection: HTTP/1.1 for them (see forwardRequest).
  if (isConnectionAuth(headers.authorization)) return void stream.close(NGHTTP2_HTTP_1_1_REQUIRED);
  const requestHeaders = endToEndHeaders(headers);
  addForwardedHeaders(requestHeaders, headers['x-forwarded-for'], facts.clientAddress, host, facts.userProto);
  requestHeaders.host = app.internalUrl.host;
  const url = appTarget(app.internalUrl, joinPath(app, String(headers[':path'] ?? '/')));
  const answer = new UserStreamAnswer(stream, app, accept, logger);
  answer.exchange = appClient.dispatch(app.internalUrl, {
    method: String(headers[':method']),
    path: `${url.pathname}${url.search}`,
    headers: requestHeaders,
    body: stream.endAfterHeaders ? null : stream,
  }, answer);
  stream.on('error', ignore);
  stream.on('close', onUserStreamClose);
}

function ignore(): void {}

// Shared listeners, the answer a property of the stream: no closure per open request.
const ANSWER = Symbol('ferry.userStreamAnswer');
type AnsweredStream = ServerHttp2Stream & { [ANSWER]?: UserStreamAnswer };
function onUserStreamClose(this: AnsweredStream): void {
  this[ANSWER]?.closed();
}
function onTimeout(answer: UserStreamAnswer): void {
  answer.timedOut();
}

/** The user's stream as the app client's sink; a failure is the user error page. */
class UserStreamAnswer extends StreamAnswer {
  private answered = false;
  private readonly timer: NodeJS.Timeout;

  constructor(stream: ServerHttp2Stream, private readonly app: PublishedApp, private readonly accept: string | undefined, logger: Logger) {
    super(stream, logger);
    (stream as AnsweredStream)[ANSWER] = this;
    this.timer = setTimeout(onTimeout, app.timeoutMs, this);
    this.timer.unref();
  }

  head(status: number, headers: Record<string, string | string[] | undefined>): boolean {
    if (this.answered || this.stream.destroyed) return false;
    this.answered = true;
    clearTimeout(this.timer);
    if (status === 401 && isConnectionAuth(headers['www-authenticate'])) {
      this.stream.close(NGHTTP2_HTTP_1_1_REQUIRED);
      return false;
    }
    const out = endToEndHeaders(headers);
    rewriteLocation(out, this.app);
    return this.respond({ ':status': status, ...out });
  }

  override end(): void {
    super.end();
    // An answer before the whole upload: the rest is drained (see shared/http2-users.ts).
    if (!this.stream.endAfterHeaders && !this.stream.readableEnded) drainUnneededUpload(this.stream, this.stream);
  }

  fail(error: NodeJS.ErrnoException): void {
    this.complete = true;
    clearTimeout(this.timer);
    const { stream } = this;
    if (stream.destroyed) return;
    // An answer that began and cannot finish: reset (not close(code), see cutAnswer in backend.ts).
    if (this.answered) return void stream.destroy(new Error('the app\'s answer was cut short'));
    this.answered = true;
    const errorClass = classifyBackendFailure(error);
    this.logger.warn({ app: this.app.name, backend: this.app.internalUrl.origin, errorClass, code: error.code }, 'backend request failed');
    respondPage(stream, userErrors.backendUnreachable(errorClass, `${this.app.internalUrl.host}: ${error.code ?? error.message}`), this.accept, errorClass);
  }

  timedOut(): void {
    if (this.answered) return;
    this.answered = true;
    this.exchange?.cancel();
    respondPage(this.stream, userErrors.backendTimeout(this.app.timeoutMs), this.accept);
  }

  closed(): void {
    clearTimeout(this.timer);
    if (!this.complete) this.exchange?.cancel();
  }
}

/** The user error page as this stream's answer. */
function respondPage(stream: ServerHttp2Stream, error: UserError, accept: string | undefined, errorClass?: string): void {
  if (stream.destroyed) return;
  if (stream.headersSent) return void stream.destroy(new Error('the answer could not be completed'));
  const page = renderUserError(error, accept, errorClass);
  stream.respond({ ':status': error.status, ...page.headers, 'content-length': Buffer.byteLength(page.body) });
  stream.end(page.body);
}
