// The connector's HTTP/1.1 client for plain-http apps reached DIRECT, for requests that arrive
// whole: an HTTP/2 user's request (a tunnel stream each), or one that Node's server read off a
// connection stream. And the idle app connections it shares with the head splice, which speaks
// the same HTTP/1.1 to the same apps.
// Built on the head splice's strict parser (shared/http1-heads.ts) rather than undici's Pool: with
// 10,000 long-polls open through one connector, undici's Client, parser and request objects held
// ~3 KB of the ~6.4 KB of heap each open request cost. Here an open request is one object and its
// app connection's socket.
// May import: shared/, ./egress.js and ../egress/types.js types, node:net and node:stream types.
import type net from 'node:net';
import type { Readable } from 'node:stream';
import type { BackendRequester } from './egress.js';
import type { DialResult } from '../egress/types.js';
import { isConnectionAuth } from '../shared/wire.js';
import { headEnd, MAX_HEAD_BYTES, parseHead, readResponseHead, ResponseBody } from '../shared/http1-heads.js';
import { youngGcAfter } from '../shared/bulk-pipe.js';

/** A request for the app; `headers` are end-to-end ones with `host` set (no framing fields needed). */
export interface AppRequest {
  method: string;
  /** Origin-form target. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Readable | null;
}

/**
 * Where an app's answer goes: `head` false means the answer is no longer wanted (the request is
 * cancelled); `write` false means "pause the app until `onDrain`".
 */
export interface AnswerSink {
  head(status: number, headers: Record<string, string | string[]>): boolean;
  write(chunk: Buffer): boolean;
  onDrain(resume: () => void): void;
  end(): void;
  fail(error: NodeJS.ErrnoException): void;
  /** At the request body's end: was it cut (a reset tunnel stream) rather than complete? */
  bodyCut?(): boolean;
}

/** Methods sent once more when a reused app connection closes before any answer (RFC 9110 §9.2.2). */
export const SAFE_TO_REPLAY = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Methods whose empty body is announced (as Node's and undici's clients do). */
const LENGTH_EVEN_IF_EMPTY = new Set(['POST', 'PUT', 'PATCH']);
const LINE_BREAK = /[\r\n\0]/;

function protocolError(message: string, code = 'EPROTO'): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

export class AppClient {
  readonly idle = new IdleAppConnections();

  constructor(private readonly requester: Pick<BackendRequester, 'connect' | 'isDirectHttp'>) {}

  /** A URL of an app this client serves: plain http, reached DIRECT. */
  serves(url: URL): boolean {
    return this.requester.isDirectHttp(url);
  }

  /** Sends `request` to the app at `origin`; the answer goes to `sink`. `cancel()` stops it. */
  dispatch(origin: URL, request: AppRequest, sink: AnswerSink): { cancel(): void } {
    const exchange = new AppExchange(this, origin, request, sink);
    exchange.start();
    return exchange;
  }

  /** @internal for AppExchange */
  connect(origin: URL): Promise<DialResult> {
    return this.requester.connect(origin);
  }

  /** @internal the idle connections' key for an app's URL, made once per URL object. */
  keyOf(url: URL): string {
    let key = this.keys.get(url);
    if (key === undefined) this.keys.set(url, (key = url.origin));
    return key;
  }
  private readonly keys = new WeakMap<URL, string>();

  close(): void {
    this.idle.close();
  }
}

/**
 * One request and its answer, on one app connection (a parked one if any, else a new one). The
 * connection goes back to the idle ones when both messages were complete and the app keeps it.
 */
class AppExchange {
  private socket: net.Socket | undefined;
  private reused = false;
  private replayed = false;
  private done = false;
  /** Any byte of an answer came: the request reached the app. */
  private answered = false;
  private bodySent: boolean;
  private keepAlive = true;
  private pending: Buffer | undefined;
  /** The final answer's body, from its head on. */
  private response: ResponseBody | undefined;
  /** The body's data to the sink, made when the answer's head came. */
  private toSink: ((data: Buffer) => void) | undefined;

  constructor(private readonly client: AppClient, private readonly origin: URL, private readonly request: AppRequest, private readonly sink: AnswerSink) {
    this.bodySent = request.body === null;
  }

  start(): void {
    const parked = this.client.idle.take(this.client.keyOf(this.origin));
    if (parked) {
      this.reused = true;
      this.send(parked);
    } else {
      this.dialAndSend();
    }
  }

  cancel(): void {
    if (this.done) return;
    this.finish(false);
  }

  private dialAndSend(): void {
    this.client.connect(this.origin).then(({ socket }) => {
      if (this.done) return void socket.destroy();
      this.send(socket as net.Socket);
    }, (error: NodeJS.ErrnoException) => this.fail(error));
  }

  private send(socket: net.Socket): void {
    this.socket = socket;
    socket.setNoDelay(true);
    (socket as ExchangeSocket)[EXCHANGE] = this;
    for (const [event, listener] of APP_LISTENERS) socket.on(event, listener);
    const { method, path, headers, body } = this.request;
    // nghttp2 and Node's parser refuse line breaks in fields already; a field that holds one
    // anyway would be a second request to the app, so it is checked once more here.
    let unsafe = LINE_BREAK.test(path);
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${String(headers.host)}\r\n`;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined || name === 'host' || name === 'content-length' || name === 'expect') continue;
      if (typeof value === 'string') {
        unsafe ||= LINE_BREAK.test(value);
        head += `${name}: ${value}\r\n`;
      } else {
        for (const item of value) {
          unsafe ||= LINE_BREAK.test(item);
          head += `${name}: ${item}\r\n`;
        }
      }
      if (name === 'authorization' && isConnectionAuth(value)) this.keepAlive = false;
    }
    if (unsafe || LINE_BREAK.test(String(headers.host))) return this.fail(protocolError('a request field holds a line break', 'ERR_INVALID_CHAR'));
    // The framing is this hop's: the declared length when there is one, else chunked.
    const declared = headers['content-length'];
    const length = body && typeof declared === 'string' && /^\d{1,15}$/.test(declared) ? Number(declared) : undefined;
    if (body === null) head += LENGTH_EVEN_IF_EMPTY.has(method) ? 'content-length: 0\r\n\r\n' : '\r\n';
    else head += length === undefined ? 'transfer-encoding: chunked\r\n\r\n' : `content-length: ${length}\r\n\r\n`;
    socket.write(head, 'latin1');
    if (body) this.sendBody(socket, body, length);
  }

  private sendBody(socket: net.Socket, body: Readable, length: number | undefined): void {
    let left = length ?? 0;
    body.on('data', (chunk: Buffer) => {
      if (this.done || this.socket !== socket) return;
      youngGcAfter(chunk.length);
      let written: boolean;
      if (length === undefined) {
        // An empty chunk would be the body's end ("0\r\n\r\n").
        if (chunk.length === 0) return;
        // All three, whatever each write returns (false only means "pause the source").
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        written = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else {
        // More than declared is not this request's: stop there (nghttp2 and Node's parser enforce
        // the length already; this is the last line of defence for the connection's framing).
        if (chunk.length > left) chunk = chunk.subarray(0, left);
        left -= chunk.length;
        written = socket.write(chunk);
      }
      if (!written) body.pause();
    });
    body.once('end', () => {
      if (this.done || this.socket !== socket) return;
      if (this.sink.bodyCut?.() || left > 0) {
        // A cut upload must not look complete to the app, nor may the connection serve another
        // request: it ends with this exchange.
        this.keepAlive = false;
        return;
      }
      if (length === undefined) socket.write('0\r\n\r\n', 'latin1');
      this.bodySent = true;
    });
  }

  /** @internal the app's connection drained: the upload goes on. */
  appDrained(): void {
    this.request.body?.resume();
  }

  /** @internal */
  appData(chunk: Buffer): void {
    if (this.done) return;
    this.answered = true;
    let data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    while (this.response === undefined) {
      const end = headEnd(data);
      if (end === -1) {
        if (data.length > MAX_HEAD_BYTES) return this.fail(protocolError('the app sent a response head over 16 KiB'));
        this.pending = data;
        return;
      }
      const head = parseHead(data.toString('latin1', 0, end));
      const response = head && readResponseHead(head, this.request.method);
      if (!head || !response) return this.fail(protocolError('the app sent a malformed response head'));
      data = data.subarray(end);
      if (response.status < 200) continue; // 103 Early Hints, 100 Continue: not forwarded on this path
      if (!response.keepAlive) this.keepAlive = false;
      this.response = new ResponseBody(response.framing);
      const headers: Record<string, string | string[]> = {};
      for (let i = 0; i < head.lowerNames.length; i++) {
        const name = head.lowerNames[i];
        const prior = headers[name];
        if (prior === undefined) headers[name] = head.values[i];
        else if (typeof prior === 'string') headers[name] = [prior, head.values[i]];
        else prior.push(head.values[i]);
      }
      // A Content-Length beside Transfer-Encoding does not frame the answer (RFC 9112 §6.3).
      if (response.framing.kind === 'chunked' || response.framing.kind === 'until-close') delete headers['content-length'];
      if (isConnectionAuth(headers['www-authenticate'])) this.keepAlive = false;
      if (!this.sink.head(response.status, headers)) return this.cancel();
      this.sink.onDrain(() => this.socket?.resume());
      this.toSink = (part) => {
        youngGcAfter(part.length);
        if (!this.sink.write(part)) this.socket?.pause();
      };
    }
    this.body(data);
  }

  private body(data: Buffer): void {
    const response = this.response as ResponseBody;
    let taken: number;
    try {
      taken = response.take(data, this.toSink);
    } catch (error) {
      return this.fail(protocolError(`the app's answer: ${(error as Error).message}`));
    }
    // The sink may have cancelled the exchange while taking the data (its user went away).
    if (this.done || !response.ended) return;
    // Bytes after the answer: the app is out of step, and the connection ends with this exchange.
    if (taken < data.length) this.keepAlive = false;
    this.sink.end();
    this.finish(this.bodySent);
  }

  /** @internal */
  appClosed(error: NodeJS.ErrnoException | undefined): void {
    if (this.done) return;
    // A body that ends with the connection ends here; anything else was cut short.
    if (this.response?.framing.kind === 'until-close' && !error) {
      this.sink.end();
      return this.finish(false);
    }
    if (this.response === undefined && !this.answered && this.reused && !this.replayed && this.request.body === null && SAFE_TO_REPLAY.has(this.request.method)) {
      // A kept-alive connection the app closed as the request went out: once more, on a new one
      // (what browsers and HTTP clients do for a request that is safe to repeat).
      this.replayed = true;
      this.reused = false;
      this.detach(true);
      return this.dialAndSend();
    }
    this.fail(error ?? protocolError('the app closed the connection', 'ECONNRESET'));
  }

  private fail(error: NodeJS.ErrnoException): void {
    if (this.done) return;
    this.finish(false);
    this.sink.fail(error);
  }

  /** The exchange is over: its connection is parked for the next request, or closed. */
  private finish(reusable: boolean): void {
    this.done = true;
    const socket = this.socket;
    if (!socket) return;
    this.detach(!(reusable && this.keepAlive));
    if (reusable && this.keepAlive) this.client.idle.give(this.client.keyOf(this.origin), socket);
  }

  private detach(destroy: boolean): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    (socket as ExchangeSocket)[EXCHANGE] = undefined;
    for (const [event, listener] of APP_LISTENERS) socket.off(event, listener);
    if (destroy) socket.destroy();
  }
}

// An app connection's listeners are these shared functions, and the exchange it serves is a
// property of the socket: no closures per open request.
const EXCHANGE = Symbol('ferry.appExchange');
type ExchangeSocket = net.Socket & { [EXCHANGE]?: AppExchange };
function onAppData(this: ExchangeSocket, chunk: Buffer): void {
  this[EXCHANGE]?.appData(chunk);
}
function onAppClosed(this: ExchangeSocket): void {
  this[EXCHANGE]?.appClosed(undefined);
}
function onAppError(this: ExchangeSocket, error: NodeJS.ErrnoException): void {
  this[EXCHANGE]?.appClosed(error);
}
function onAppDrain(this: ExchangeSocket): void {
  this[EXCHANGE]?.appDrained();
}
type SocketListener = Parameters<NodeJS.EventEmitter['on']>[1];
const APP_LISTENERS: [string, SocketListener][] = [
  ['data', onAppData], ['end', onAppClosed], ['close', onAppClosed], ['error', onAppError], ['drain', onAppDrain],
];

/**
 * App connections between requests and user connections, as nginx keeps upstream connections
 * alive: a request or a new user connection takes one instead of opening its own, so the app sees
 * few connections and skips a TCP handshake. Parked at most `idleMs` (4 s: below the 5 s
 * keep-alive timeout of Node's and Apache's servers, so an app rarely closes one just as it is
 * taken; a bodiless GET/HEAD/OPTIONS that meets one is sent again on a new connection).
 */
export class IdleAppConnections {
  private readonly parked = new Map<string, { socket: net.Socket; unpark(): void }[]>();

  constructor(private readonly maxPerApp = 128, private readonly idleMs = 4_000) {}

  take(origin: string): net.Socket | undefined {
    const entry = this.parked.get(origin)?.pop();
    entry?.unpark();
    return entry?.socket;
  }

  give(origin: string, socket: net.Socket): void {
    const list = this.parked.get(origin) ?? [];
    if (socket.destroyed || !socket.writable || list.length >= this.maxPerApp) return void socket.destroy();
    // Anything from a parked connection (bytes, its end, an error) means it is not reusable.
    const drop = () => {
      const at = list.indexOf(entry);
      if (at >= 0) list.splice(at, 1);
      entry.unpark();
      socket.destroy();
    };
    const timer = setTimeout(drop, this.idleMs);
    timer.unref();
    const entry = {
      socket,
      unpark: () => {
        clearTimeout(timer);
        socket.off('data', drop);
        socket.off('end', drop);
        socket.off('close', drop);
        socket.off('error', drop);
      },
    };
    socket.on('data', drop);
    socket.on('end', drop);
    socket.on('close', drop);
    socket.on('error', drop);
    socket.resume();
    list.push(entry);
    this.parked.set(origin, list);
  }

  close(): void {
    for (const list of this.parked.values()) for (const { socket, unpark } of list.splice(0)) {
      unpark();
      socket.destroy();
    }
  }
}
