// The fast path of a connection stream (mode http, an app reached DIRECT over plain http): one
// backend connection per user connection, and only the *heads* are read and rewritten, with the
// rules of a published app (Host check, hop-by-hop fields, X-Forwarded-*, path prefix, Location,
// timeout → 504, failure → 502); bodies go through as bytes in their own framing. Node's HTTP
// server and client objects per request cost the connector most of its CPU per small GET.
// A request it does not take — anything but an origin-form HTTP/1.1 request for the app's host
// whose body, if any, has one Content-Length (so: chunked uploads, Upgrade, Expect, a malformed or
// oversized head) — hands the connection, from that request on, to Node's HTTP server
// (connection-stream.ts), which applies the same rules per request and answers the errors.
// May import: shared/, ./app-client.js (the idle app connections), node:net types.
import type net from 'node:net';
import http2, { type ServerHttp2Stream } from 'node:http2';
import { forwardedFor, joinPath, normalizeHost, rewrittenLocation, type PublishedApp } from '../shared/published-app.js';
import { rawUserPage, userErrors, type UserError } from '../shared/error-page.js';
import { isConnectionAuth, isHopByHop } from '../shared/wire.js';
import type { Logger } from '../shared/log.js';
import { writeOrPause } from '../shared/bulk-pipe.js';
import {
  connectionTokens, contentLength, fieldValues, headEnd, MAX_HEAD_BYTES, parseHead, readResponseHead, ResponseBody,
  type Head,
} from '../shared/http1-heads.js';
import { SAFE_TO_REPLAY, type IdleAppConnections } from './app-client.js';

const { NGHTTP2_CANCEL } = http2.constants;
/** Set by the splice (X-Forwarded-For is appended to, as addForwardedHeaders does). */
const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);

export interface SpliceOptions {
  app: PublishedApp;
  clientAddress: string;
  userProto: 'http' | 'https';
  /** A new connection to the app (the egress dialer, DIRECT). */
  dial(): Promise<net.Socket>;
  /** Idle app connections left by earlier user connections. */
  idle: IdleAppConnections;
  /** Takes the connection over from the request whose bytes are `pending` (`ended`: the user's side already ended). */
  handOver(pending: Buffer | undefined, ended: boolean): void;
  classify(error: NodeJS.ErrnoException): string;
  logger: Logger;
  /** Between requests, how long an idle connection stays open (as Node's keepAliveTimeout). */
  idleMs: number;
}

/** One request on its way: what the response needs to know about it. */
interface Exchange {
  method: string;
  accept: string | undefined;
  /** Request body bytes still to forward. */
  bodyLeft: number;
  /** The user connection ends after this answer: the user asked, or the splice must (draining, early answer). */
  close: boolean;
  /**
   * The app connection may serve another request after this answer: the app keeps it alive and
   * read the whole request body. Apart from `close`, so that a user's `Connection: close` (a
   * hop-by-hop matter of the user's connection) does not cost the next user a new app connection.
   */
  appReusable?: boolean;
  responseStarted: boolean;
  /** Any byte of an answer (a 1xx included) came: the request reached the app. */
  appAnswered: boolean;
  /**
   * The request's bytes, kept while it may be sent again: a GET, HEAD or OPTIONS without a body
   * sent on a reused app connection, which the app may have closed just as the request went out.
   */
  replay?: Buffer;
  /** The final answer's body, from its head on. */
  body?: ResponseBody;
}

export class HeadSplice {
  private pending: Buffer | undefined;
  private backend: net.Socket | undefined;
  private backendPending: Buffer | undefined;
  /** Our listeners on `backend`, removed when it goes back to the idle connections. */
  private detachBackend: (() => void) | undefined;
  /** The app connection is between answers and may serve another request (or user connection). */
  private backendReusable = false;
  /**
   * This user connection used NTLM or Negotiate: Windows authentication authenticates the app
   * connection, not the request, so no app connection of it may serve another user connection
   * (what nginx's `ntlm` directive does). Sticky: it is about the user.
   */
  private backendBound = false;
  /** While the app's connection is being opened: what goes to it once it is, in order. */
  private dialing: Buffer[] | undefined;
  private exchange: Exchange | undefined;
  private timer: NodeJS.Timeout | undefined;
  private userEnded = false;
  private draining = false;
  /** Answers completed on this connection. */
  private answered = 0;
  private done = false;
  /** The app's external host as a request's Host must name it. */
  private readonly appHost: string;
  private readonly onData = (chunk: Buffer) => this.userData(chunk);
  private readonly onEnd = () => this.userEnd();
  private readonly onClose = () => this.finish();

  constructor(private readonly stream: ServerHttp2Stream, private readonly options: SpliceOptions) {
    this.appHost = normalizeHost(options.app.externalUrl.host);
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onClose);
    stream.on('error', this.onClose);
    this.idle();
  }

  /**
   * The relay sent GOAWAY: close now if idle between requests, after the answer otherwise (a
   * connection that has not sent its first request yet gets that one answered, with close).
   */
  drain(): void {
    this.draining = true;
    if (this.exchange) this.exchange.close = true;
    else if (this.answered > 0) this.closeUser();
  }

  // User side --------------------------------------------------------------------------------

  private userData(chunk: Buffer): void {
    // After the end of our side (a close, an error page) what the user still sends is dropped,
    // not kept.
    if (this.done) return;
    const exchange = this.exchange;
    if (exchange && exchange.bodyLeft > 0) {
      const take = Math.min(exchange.bodyLeft, chunk.length);
      exchange.bodyLeft -= take;
      this.toBackend(take === chunk.length ? chunk : chunk.subarray(0, take));
      if (take === chunk.length) return;
      chunk = chunk.subarray(take);
    }
    this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    // Pipelined requests wait for the answer before; bound what waits.
    if (this.exchange && this.pending.length > MAX_HEAD_BYTES) this.stream.pause();
    if (!this.exchange) this.nextRequest();
  }

  private userEnd(): void {
    this.userEnded = true;
    if (!this.exchange) this.closeUser();
  }

  /** Reads the next request head from `pending`, if complete, and sends it on. */
  private nextRequest(): void {
    const pending = this.pending;
    if (!pending || this.done) return;
    const end = headEnd(pending);
    if (end === -1) {
      if (pending.length > MAX_HEAD_BYTES) this.giveUp();
      return;
    }
    const head = parseHead(pending.toString('latin1', 0, end));
    const request = head && this.requestHead(head);
    if (!head || !request) return this.giveUp();
    this.pending = end < pending.length ? pending.subarray(end) : undefined;
    this.stream.resume();
    clearTimeout(this.timer);
    const close = request.close || this.draining;
    this.exchange = { method: request.method, accept: fieldValues(head, 'accept')[0], bodyLeft: request.bodyLength, close, responseStarted: false, appAnswered: false };
    this.timer = setTimeout(() => this.timeout(), this.options.app.timeoutMs);
    this.timer.unref();
    let first = Buffer.from(request.head, 'latin1');
    const body = this.pending;
    if (body && request.bodyLength > 0) {
      const take = Math.min(request.bodyLength, body.length);
      first = Buffer.concat([first, body.subarray(0, take)]);
      this.exchange.bodyLeft -= take;
      this.pending = take < body.length ? body.subarray(take) : undefined;
    }
    const reused = this.toBackend(first);
    if (reused && request.bodyLength === 0 && SAFE_TO_REPLAY.has(request.method)) this.exchange.replay = first;
  }

  /** The request head for the app, or undefined when this request is not for the fast path. */
  private requestHead(head: Head): { method: string; head: string; bodyLength: number; close: boolean } | undefined {
    const { app } = this.options;
    // Origin-form targets of visible ASCII only; anything else is for Node's parser to judge.
    const line = /^([A-Z]+) (\/[\x21-\x7e]*) HTTP\/1\.1$/.exec(head.startLine);
    if (!line) return undefined;
    const hosts = fieldValues(head, 'host');
    // Most Hosts are written as the app's own (already normal): no regexps for those.
    if (hosts.length !== 1 || (hosts[0] !== this.appHost && normalizeHost(hosts[0]) !== this.appHost)) return undefined;
    const length = contentLength(head);
    if (length === 'invalid') return undefined;
    for (const name of head.lowerNames) if (name === 'transfer-encoding' || name === 'upgrade' || name === 'expect') return undefined;
    const named = connectionTokens(head);
    if (isConnectionAuth(fieldValues(head, 'authorization'))) this.backendBound = true;
    let out = `${line[1]} ${joinPath(app, line[2])} HTTP/1.1\r\nhost: ${app.internalUrl.host}\r\n`;
    for (let i = 0; i < head.names.length; i++) {
      const lower = head.lowerNames[i];
      if (isHopByHop(lower, named) || FORWARDED.has(lower)) continue;
      out += `${head.names[i]}: ${head.values[i]}\r\n`;
    }
    const prior = fieldValues(head, 'x-forwarded-for');
    out += `x-forwarded-for: ${forwardedFor(prior.length ? prior : undefined, this.options.clientAddress)}\r\n`;
    out += `x-forwarded-host: ${hosts[0]}\r\nx-forwarded-proto: ${this.options.userProto}\r\n\r\n`;
    return { method: line[1], head: out, bodyLength: length === 'none' ? 0 : length, close: named.has('close') };
  }

  /** Not for the fast path: Node's HTTP server takes the connection from this request on. */
  private giveUp(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.stream.pause();
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onClose);
    this.stream.off('error', this.onClose);
    this.releaseBackend();
    const pending = this.pending;
    this.pending = undefined;
    this.options.handOver(pending, this.userEnded);
  }

  private idle(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.closeUser(), this.options.idleMs);
    this.timer.unref();
  }

  private closeUser(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.releaseBackend();
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  private finish(): void {
    if (this.done && !this.backend) return;
    this.done = true;
    clearTimeout(this.timer);
    this.releaseBackend();
  }

  /** The app connection goes back to the idle ones when it is between answers, else it closes. */
  private releaseBackend(): void {
    const backend = this.backend;
    if (!backend) return;
    this.backend = undefined;
    this.detachBackend?.();
    if (this.backendReusable && !this.backendBound && !this.exchange && !this.backendPending) this.options.idle.give(this.options.app.internalUrl.origin, backend);
    else backend.destroy();
  }

  // Backend side -----------------------------------------------------------------------------

  /** Sends `bytes` to the app; true when they went on a connection that served an earlier request. */
  private toBackend(bytes: Buffer, fresh = false): boolean {
    this.backendReusable = false;
    if (!this.backend && !this.dialing && !fresh) {
      const parked = this.options.idle.take(this.options.app.internalUrl.origin);
      if (parked) this.attach(parked);
    }
    if (this.backend) {
      writeOrPause(this.backend, bytes, this.stream);
      return true;
    }
    // First request, or the app closed the last connection between requests: a new one. What the
    // user sends meanwhile waits in `queued`, in order.
    if (this.dialing) {
      this.dialing.push(bytes);
      return false;
    }
    const queued = [bytes];
    this.dialing = queued;
    this.stream.pause();
    this.options.dial().then((socket) => {
      this.dialing = undefined;
      if (this.done) return void socket.destroy();
      this.attach(socket);
      for (const chunk of queued) socket.write(chunk);
      this.stream.resume();
    }, (error: NodeJS.ErrnoException) => {
      this.dialing = undefined;
      this.backendFailed(error);
    });
    return false;
  }

  private attach(socket: net.Socket): void {
    this.backend = socket;
    socket.setNoDelay(true);
    const onData = (chunk: Buffer) => this.backendData(socket, chunk);
    const onEnd = () => this.backendClosed(socket);
    const onError = (error: NodeJS.ErrnoException) => this.backendFailed(error, socket);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
    this.detachBackend = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
  }

  private backendData(socket: net.Socket, chunk: Buffer): void {
    const exchange = this.exchange;
    if (socket !== this.backend || this.done) return;
    if (!exchange) {
      // Bytes with no request: the app is out of step; do not guess.
      return this.backendFailed(Object.assign(new Error('the app sent bytes with no request'), { code: 'EPROTO' }));
    }
    exchange.appAnswered = true;
    exchange.replay = undefined;
    let data = this.backendPending ? Buffer.concat([this.backendPending, chunk]) : chunk;
    this.backendPending = undefined;
    while (data.length > 0 && this.exchange) {
      if (!this.exchange.body) {
        const end = headEnd(data);
        if (end === -1) {
          if (data.length > MAX_HEAD_BYTES) return this.backendFailed(Object.assign(new Error('the app sent a response head over 16 KiB'), { code: 'EPROTO' }));
          this.backendPending = data;
          return;
        }
        const head = parseHead(data.toString('latin1', 0, end));
        const rewritten = head && this.responseHead(head);
        if (!rewritten) return this.backendFailed(Object.assign(new Error('the app sent a malformed response head'), { code: 'EPROTO' }));
        data = data.subarray(end);
        const taken = this.takeBody(data);
        if (taken === undefined) return;
        const body = data.subarray(0, taken);
        this.toUser(body.length > 0 && body.length <= 16 * 1024 ? Buffer.concat([rewritten, body]) : rewritten);
        if (body.length > 16 * 1024) this.toUser(body);
        data = data.subarray(taken);
      } else {
        const taken = this.takeBody(data);
        if (taken === undefined) return;
        if (taken) this.toUser(data.subarray(0, taken));
        data = data.subarray(taken);
      }
      if (this.exchange?.body?.ended) this.responseDone(data);
      if (data.length > 0 && this.exchange === undefined) return;
    }
  }

  /**
   * How many bytes of `data` belong to the answer's body (none before its final head); undefined
   * when its chunked framing went bad, and the answer is cut.
   */
  private takeBody(data: Buffer): number | undefined {
    const body = this.exchange?.body;
    if (!body) return 0;
    try {
      return body.take(data);
    } catch (error) {
      this.backendFailed(Object.assign(new Error(`the app's answer: ${(error as Error).message}`), { code: 'EPROTO' }));
      return undefined;
    }
  }

  /** The response head for the user; sets the exchange's body. Undefined when malformed. */
  private responseHead(head: Head): Buffer | undefined {
    const exchange = this.exchange as Exchange;
    const response = readResponseHead(head, exchange.method);
    if (!response) return undefined;
    const { status: code, framing, connection: named } = response;
    if (isConnectionAuth(fieldValues(head, 'www-authenticate'))) this.backendBound = true;
    if (code >= 200) {
      clearTimeout(this.timer);
      exchange.responseStarted = true;
      exchange.body = new ResponseBody(framing);
      // Close after this answer: the user or the app asked, HTTP/1.0 without keep-alive, a body
      // that ends with the connection, or an upload the app answered before reading it all.
      exchange.appReusable = response.keepAlive && exchange.bodyLeft === 0;
      if (!exchange.appReusable) exchange.close = true;
    }
    let out = `HTTP/1.1 ${code} ${response.reason}\r\n`;
    const framedByCoding = framing.kind === 'chunked' || (framing.kind === 'until-close' && fieldValues(head, 'transfer-encoding').length > 0);
    for (let i = 0; i < head.names.length; i++) {
      const lower = head.lowerNames[i];
      // Transfer-Encoding stays: the body goes through in its own framing. A Content-Length next
      // to it is dropped (RFC 9112 §6.3: it does not frame the message, and may mislead the next hop).
      if (lower !== 'transfer-encoding' && isHopByHop(lower, named)) continue;
      if (framedByCoding && lower === 'content-length') continue;
      const value = lower === 'location' ? rewrittenLocation(head.values[i], this.options.app) : head.values[i];
      out += `${head.names[i]}: ${value}\r\n`;
    }
    if (code >= 200 && exchange.close) out += 'connection: close\r\n';
    return Buffer.from(`${out}\r\n`, 'latin1');
  }

  /** The answer is complete: the next request, or the end of the connection. */
  private responseDone(rest: Buffer): void {
    const exchange = this.exchange as Exchange;
    this.exchange = undefined;
    this.answered++;
    // Bytes after the answer: the app is out of step, and neither connection goes on.
    this.backendReusable = rest.length === 0 && exchange.appReusable === true;
    if (rest.length > 0 || exchange.close) return this.closeUser();
    this.idle();
    // Requests the user sent before ending its side are still answered.
    if (this.pending) this.nextRequest();
    if (this.exchange) return;
    if (this.userEnded) this.closeUser();
    else this.stream.resume();
  }

  private toUser(bytes: Buffer): void {
    if (this.backend) writeOrPause(this.stream, bytes, this.backend);
    else if (!this.stream.destroyed) this.stream.write(bytes);
  }

  private backendClosed(socket: net.Socket): void {
    if (socket !== this.backend) return;
    this.backend = undefined;
    this.backendReusable = false;
    const exchange = this.exchange;
    if (!exchange || this.done) return;
    // A body that ends with the connection ends here; anything else was cut short.
    if (exchange.body?.framing.kind === 'until-close') return this.closeUser();
    this.backendFailed(Object.assign(new Error('the app closed the connection'), { code: 'ECONNRESET' }));
  }

  private backendFailed(error: NodeJS.ErrnoException, socket?: net.Socket): void {
    if (socket && socket !== this.backend) return;
    const exchange = this.exchange;
    this.backendReusable = false;
    this.backend?.destroy();
    this.backend = undefined;
    if (this.done) return;
    if (!exchange || exchange.responseStarted) {
      // Between requests nothing is lost; mid-answer all that is left is to cut it.
      if (exchange) this.cut();
      return;
    }
    const { app, logger } = this.options;
    if (exchange.replay && !exchange.appAnswered) {
      // A kept-alive connection the app closed as the request went out: once more, on a new one
      // (what browsers and HTTP clients do for a request that is safe to repeat).
      const replay = exchange.replay;
      exchange.replay = undefined;
      logger.debug({ app: app.name, code: error.code }, 'a reused app connection closed before answering: sending the request again on a new one');
      this.toBackend(replay, true);
      return;
    }
    const errorClass = this.options.classify(error);
    logger.warn({ app: app.name, backend: app.internalUrl.origin, errorClass, code: error.code, err: error }, 'backend request failed');
    this.answerError(userErrors.backendUnreachable(errorClass, `${app.internalUrl.host}: ${error.code ?? error.message}`), exchange.accept, errorClass);
  }

  private timeout(): void {
    const exchange = this.exchange;
    if (!exchange || exchange.responseStarted || this.done) return;
    this.answerError(userErrors.backendTimeout(this.options.app.timeoutMs), exchange.accept);
  }

  /** The error page, then the end of the connection (the request's body may still be on its way). */
  private answerError(error: UserError, accept: string | undefined, errorClass?: string): void {
    if (!this.stream.destroyed) this.stream.write(rawUserPage(error, accept, errorClass));
    this.exchange = undefined;
    this.closeUser();
  }

  private cut(): void {
    this.done = true;
    this.exchange = undefined;
    clearTimeout(this.timer);
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }
}
