// The handshakes with an (already connected) HTTP or HTTPS proxy: HTTP CONNECT, and the
// authentication of a connection for requests in absolute form. The request, the strict answer
// parse, the authentication legs on the same connection, and the classification of the answer.
// Nothing but the handshake's own requests is ever written before the proxy accepted.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { DialError, type DialPhase } from '../../shared/errors.js';
import { ConnectResponseParser, challengeSchemes, headerValues, type ConnectResponseHead } from './connect-response.js';
import type { ProxyAuthenticator } from './proxy-auth.js';
import { PrefixedTunnel } from './tunnel-socket.js';

export interface HttpConnectOptions {
  /** Host and port to tunnel to, exactly as the proxy should resolve them. */
  host: string;
  port: number;
  target: string;
  /** Redacted proxy URL, for errors. */
  proxy: string;
  authenticator?: ProxyAuthenticator;
  timeoutMs: number;
  now: () => number;
  userAgent?: string;
}

export interface HttpConnectResult {
  socket: Duplex;
  statusCode: number;
}

/**
 * The target goes into a request line: a name with spaces, CR/LF or URL syntax is a caller bug
 * (or an injection attempt), never something to send.
 */
export function assertValidTargetHost(host: string): void {
  if (!/^[A-Za-z0-9._~%:[\]-]+$/.test(host)) throw new TypeError(`invalid target host ${JSON.stringify(host.slice(0, 80))}`);
}

/** Bounds the number of 407 round trips of a multi-leg scheme (NTLM needs two). */
const MAX_AUTH_LEGS = 4;
/** A 407 body larger than this is not drained for another leg; the connection is given up. */
const MAX_DRAINED_BODY_BYTES = 64 * 1024;

/**
 * One request of a proxy handshake: CONNECT (a tunnel) or HEAD in absolute form (an authenticated
 * connection for requests in absolute form). `accepts` says which answer ends the handshake.
 */
interface HandshakeExchange {
  /** For messages: "CONNECT app:443", "HEAD http://app/x". */
  what: string;
  request(authorization: string | undefined): string;
  /** The answer that ends the handshake (other answers than 407 are refusals). */
  accepts(statusCode: number): boolean;
  /** Answers carry no body whatever their Content-Length says (HEAD). */
  bodiless: boolean;
  /**
   * The authenticator's finishing value is not sent with this exchange's request: the handshake
   * ends there and returns it, for the connection's first real request to carry.
   */
  handsOverLastLeg?: boolean;
}

/** A handshake that ended by handing its last leg over (see HandshakeExchange.handsOverLastLeg). */
interface HandedOver {
  lastLeg: string;
}

export async function httpConnect(socket: net.Socket, options: HttpConnectOptions): Promise<HttpConnectResult> {
  const authority = authorityOf(options);
  const head = await proxyHandshake(socket, options, {
    what: `CONNECT ${options.target}`,
    request: (authorization) =>
      `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n` +
      (authorization ? `Proxy-Authorization: ${authorization}\r\n` : '') +
      `User-Agent: ${options.userAgent ?? 'ferry'}\r\n\r\n`,
    accepts: (statusCode) => statusCode === 200,
    bodiless: false,
  }) as ConnectResponseHead;
  return { socket: head.rest.length > 0 ? new PrefixedTunnel(socket, head.rest) : socket, statusCode: 200 };
}

/**
 * Prepares a connection to an HTTP proxy for requests in absolute form, with a connection scheme
 * (NTLM, Negotiate), as browsers and curl do: the legs before the last one go with `HEAD <url>`
 * (safe, no body to hold back or replay), which the proxy answers with its 407 itself; the last
 * leg (NTLM's AUTHENTICATE, a Kerberos ticket) is returned, for the connection's first real
 * request to carry. So the app sees only real requests, and the proxy serves the connection's
 * later ones as the authenticated user. A HEAD the proxy answers with anything but 407 (a URL it
 * lets through without authentication) ends the handshake: the connection needs nothing more.
 */
export async function authenticateForwardConnection(socket: net.Socket, options: HttpConnectOptions & { url: URL }): Promise<string | undefined> {
  const { url } = options;
  const authority = authorityOf(options);
  const head = await proxyHandshake(socket, options, {
    what: `HEAD ${url.origin}${url.pathname}`,
    request: (authorization) =>
      `HEAD ${url.href} HTTP/1.1\r\nHost: ${authority}\r\n` +
      (authorization ? `Proxy-Authorization: ${authorization}\r\n` : '') +
      `User-Agent: ${options.userAgent ?? 'ferry'}\r\n\r\n`,
    accepts: (statusCode) => statusCode !== 407,
    bodiless: true,
    handsOverLastLeg: true,
  });
  if ('lastLeg' in head) return head.lastLeg;
  if (head.rest.length > 0) {
    socket.destroy();
    throw new DialError('proxy-refused', `the proxy ${options.proxy} sent more than one answer to HEAD ${url.origin}${url.pathname}`, {
      target: options.target, proxy: options.proxy, phase: 'proxy-auth', elapsedMs: 0,
    });
  }
  return undefined;
}

const REQUEST_AUTHORIZATION = Symbol('ferry.forwardProxyRequestAuthorization');

interface AuthorizationHolder {
  [REQUEST_AUTHORIZATION]?: { value: string; everyRequest: boolean };
}

/**
 * Leaves on a forward-proxy connection the Proxy-Authorization its requests must carry: the
 * handshake's last leg for its first request only (NTLM, Negotiate), or Basic for every request
 * (`any` met a proxy that offers only Basic, which authenticates requests, not connections).
 */
export function setRequestAuthorization(socket: Duplex, value: string, options: { everyRequest: boolean }): void {
  (socket as Duplex & AuthorizationHolder)[REQUEST_AUTHORIZATION] = { value, everyRequest: options.everyRequest };
}

/** The Proxy-Authorization the next request on this connection must carry, if any (a first-request one is taken). */
export function requestAuthorizationFor(socket: Duplex): string | undefined {
  const holder = socket as Duplex & AuthorizationHolder;
  const held = holder[REQUEST_AUTHORIZATION];
  if (held && !held.everyRequest) holder[REQUEST_AUTHORIZATION] = undefined;
  return held?.value;
}

function authorityOf(options: HttpConnectOptions): string {
  return options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
}

/**
 * Sends `exchange`'s request, answering 407s with the authenticator's next leg on the same
 * connection, until the proxy accepts; returns the accepting answer's head (`rest`: the bytes after
 * it), or with `handsOverLastLeg` the authenticator's finishing value, unsent. Every failure
 * destroys the socket and is a classified DialError.
 */
async function proxyHandshake(socket: net.Socket, options: HttpConnectOptions, exchange: HandshakeExchange): Promise<ConnectResponseHead | HandedOver> {
  const started = options.now();
  try {
    assertValidTargetHost(options.host);
  } catch (error) {
    socket.destroy();
    throw error;
  }
  const { what } = exchange;
  const reader = new ProxyAnswerReader(socket);
  let authorization: string | undefined;
  try {
    try {
      authorization = await options.authenticator?.initial();
    } catch (error) {
      // Nothing was sent yet: the credentials themselves could not be made (e.g. no Kerberos ticket).
      throw new DialError('proxy-auth-required', `could not produce ${options.authenticator!.scheme} credentials for the proxy ${options.proxy} (${what}): ${(error as Error).message}`, {
        ...fields('proxy-auth'),
      });
    }
    for (let leg = 0; leg < MAX_AUTH_LEGS; leg += 1) {
      if (exchange.handsOverLastLeg && authorization !== undefined && options.authenticator?.finished) {
        if (reader.detach().length > 0) throw new DialError('proxy-refused', `the proxy ${options.proxy} sent bytes after its 407 to ${what}`, fields('proxy-auth'));
        return { lastLeg: authorization };
      }
      socket.write(exchange.request(authorization));
      const head = await reader.readHead(options.timeoutMs, what, () => fields('proxy-connect'));
      if (exchange.accepts(head.statusCode)) {
        const rest = reader.detach();
        return { ...head, rest };
      }
      if (head.statusCode === 407) {
        const challenges = headerValues(head, 'proxy-authenticate');
        const schemes = challengeSchemes(challenges);
        const offered = schemes.length > 0 ? schemes.join(', ') : 'none named';
        const authFailure = (message: string) => new DialError('proxy-auth-required', message, {
          ...fields('proxy-auth'),
          statusCode: 407,
          statusText: head.statusText,
          schemes,
        });
        const authenticator = options.authenticator;
        let next: string | undefined;
        try {
          next = await authenticator?.respond(challenges);
        } catch (error) {
          throw authFailure(`the proxy ${options.proxy} sent an ${authenticator!.scheme} challenge Ferry cannot use for ${what}: ${(error as Error).message}`);
        }
        if (next !== undefined) {
          if (await reader.drainBodyForReuse(head, exchange.bodiless, options.timeoutMs)) {
            authorization = next;
            continue;
          }
          throw authFailure(`the proxy ${options.proxy} closed the connection after its 407 during the ${authenticator!.scheme} handshake for ${what} (every leg must use one connection); allow persistent connections for authentication on the proxy`);
        }
        if (!authenticator) {
          throw authFailure(`the proxy ${options.proxy} requires authentication for ${what} (407; schemes offered: ${offered}) and no proxy credentials are configured`);
        }
        if (!schemes.some((scheme) => (authenticator.speaks ?? [authenticator.scheme]).includes(scheme))) {
          throw authFailure(`the proxy ${options.proxy} asks for ${offered} for ${what}, not ${authenticator.scheme} (407)${schemeAdvice(schemes)}`);
        }
        throw authFailure(`the proxy ${options.proxy} refused the configured ${authenticator.scheme} credentials for ${what} (407; schemes offered: ${offered})`);
      }
      throw new DialError(
        'proxy-refused',
        `the proxy ${options.proxy} answered ${what} with ${head.statusCode}${head.statusText ? ` ${head.statusText}` : ''}`,
        { ...fields('proxy-connect'), statusCode: head.statusCode, statusText: head.statusText },
      );
    }
    throw new DialError('proxy-auth-required', `the proxy ${options.proxy} kept asking for authentication after ${MAX_AUTH_LEGS} attempts (${what})`, {
      ...fields('proxy-auth'),
      statusCode: 407,
    });
  } catch (error) {
    reader.detach();
    socket.destroy();
    throw error;
  }

  function fields(phase: DialPhase) {
    return { target: options.target, proxy: options.proxy, phase, elapsedMs: options.now() - started };
  }
}

/** What to configure when the proxy offers other schemes than the configured one. */
function schemeAdvice(offered: string[]): string {
  if (offered.includes('NTLM')) return ': set proxy.credentials.scheme to ntlm (or any)';
  if (offered.includes('Basic')) return ': set proxy.credentials.scheme to basic (or any)';
  if (offered.includes('Negotiate')) return ': set proxy.credentials.scheme to negotiate, with the service\'s Kerberos keytab (proxy.credentials.keytab)';
  return '';
}

/** Reads proxy answers off a socket without losing the bytes that follow them. */
class ProxyAnswerReader {
  private buffered: Buffer = Buffer.alloc(0);
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly onData = (chunk: Buffer) => {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    this.wake?.();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake?.();
  };
  private readonly onError = (error: Error) => {
    this.failure = error;
    this.wake?.();
  };

  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  async readHead(timeoutMs: number, what: string, fields: () => { target: string; proxy: string; phase: DialPhase; elapsedMs: number }): Promise<ConnectResponseHead> {
    const parser = new ConnectResponseParser();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = parser.push(this.take());
      if (result.kind === 'complete') {
        this.buffered = result.head.rest;
        return result.head;
      }
      if (result.kind === 'invalid') {
        throw new DialError('proxy-refused', `the proxy ${fields().proxy} sent an invalid answer to ${what}: ${result.reason}`, fields());
      }
      if (this.failure) {
        const code = (this.failure as NodeJS.ErrnoException).code ?? 'socket error';
        // A proxy that drops the connection during its handshake is a proxy answer, not a reason to
        // re-dial it forever (undici #3897): classify it as a refusal.
        throw new DialError('proxy-refused', `the proxy ${fields().proxy} reset the connection during ${what} (${code})`, fields(), { cause: this.failure });
      }
      if (this.ended) throw new DialError('proxy-refused', `the proxy ${fields().proxy} closed the connection without answering ${what}`, fields());
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new DialError('connect-timeout', `the proxy ${fields().proxy} did not answer ${what} within ${timeoutMs} ms`, { ...fields(), timeoutMs });
      }
      await this.waitForInput(remaining);
    }
  }

  /** Skips a 407 body so another leg can go on the same connection; false when impossible. */
  async drainBodyForReuse(head: ConnectResponseHead, bodiless: boolean, timeoutMs: number): Promise<boolean> {
    const connection = [...headerValues(head, 'connection'), ...headerValues(head, 'proxy-connection')].join(',').toLowerCase();
    if (connection.includes('close') || (head.httpVersion === '1.0' && !connection.includes('keep-alive'))) return false;
    if (bodiless) return true;
    const lengths = headerValues(head, 'content-length');
    if (headerValues(head, 'transfer-encoding').length > 0) return false;
    const length = lengths.length === 0 ? 0 : Number(lengths[0]);
    if (!Number.isSafeInteger(length) || length < 0 || length > MAX_DRAINED_BODY_BYTES) return false;
    const deadline = Date.now() + timeoutMs;
    while (this.buffered.length < length) {
      if (this.ended || this.failure) return false;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return false;
      await this.waitForInput(remaining);
    }
    this.buffered = this.buffered.subarray(length);
    return !this.ended && !this.failure;
  }

  /** Stops reading; returns bytes that arrived after the last answer (they belong to the tunnel). */
  detach(): Buffer {
    this.socket.pause();
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onEnd);
    this.socket.removeListener('close', this.onEnd);
    this.socket.removeListener('error', this.onError);
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return rest;
  }

  private take(): Buffer {
    const chunk = this.buffered;
    this.buffered = Buffer.alloc(0);
    return chunk;
  }

  private waitForInput(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.wake = done;
    });
  }
}
