// One TCP connection with its failure classified once, from the socket error code (never text).
import net from 'node:net';
import { DialError, type DialFailureClass, type DialPhase } from '../../shared/errors.js';

export interface TcpConnectOptions {
  host: string;
  port: number;
  timeoutMs: number;
  /** host:port the caller wants to reach (the proxy's target when `proxy` is set). */
  target: string;
  /** Redacted proxy URL when this TCP connection goes to a proxy. */
  proxy?: string;
  signal?: AbortSignal;
  now: () => number;
  /** Name lookup (default: the system's getaddrinfo). */
  lookup?: net.LookupFunction;
}

/** What `errno` codes mean for the operator. Firewalls that reject with ICMP count as timeouts' kin. */
const CLASS_FOR_CODE: Record<string, DialFailureClass> = {
  ECONNREFUSED: 'connect-refused',
  ECONNRESET: 'connect-refused',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_NONAME: 'dns',
  EAI_FAIL: 'dns',
  EAI_NODATA: 'dns',
  ETIMEDOUT: 'connect-timeout',
  EHOSTUNREACH: 'connect-timeout',
  ENETUNREACH: 'connect-timeout',
  EPERM: 'connect-timeout',
  EACCES: 'connect-timeout',
};

export function classifySocketError(code: string | undefined): DialFailureClass {
  return (code && CLASS_FOR_CODE[code]) || 'connect-refused';
}

export function connectTcp(options: TcpConnectOptions): Promise<{ socket: net.Socket; tcpMs: number }> {
  const started = options.now();
  const where = options.proxy ? `the proxy ${options.proxy} (used to reach ${options.target})` : options.target;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(options.signal.reason);
      return;
    }
    const socket = net.connect({ host: options.host, port: options.port, noDelay: true, ...(options.lookup ? { lookup: options.lookup } : {}) });
    const timer = setTimeout(() => {
      fail(new DialError('connect-timeout', `no answer from ${where} within ${options.timeoutMs} ms (SYN unanswered)`, {
        ...fields('tcp'),
        timeoutMs: options.timeoutMs,
      }));
    }, options.timeoutMs);
    const onAbort = () => fail(options.signal?.reason ?? new Error('aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });

    function fields(phase: DialPhase) {
      return { target: options.target, ...(options.proxy ? { proxy: options.proxy } : {}), phase, elapsedMs: options.now() - started };
    }
    function cleanup() {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
      socket.removeListener('connect', onConnect);
    }
    function fail(error: unknown) {
      cleanup();
      socket.on('error', () => undefined);
      socket.destroy();
      reject(error);
    }
    function onError(error: NodeJS.ErrnoException) {
      const errorClass = classifySocketError(error.code);
      const phase: DialPhase = errorClass === 'dns' ? 'resolve' : 'tcp';
      const message =
        errorClass === 'dns'
          ? `cannot resolve ${options.host} (${error.code})${options.proxy ? ` (the proxy ${options.proxy})` : ''}`
          : errorClass === 'connect-refused'
            ? `${where} refused the connection (${error.code})`
            : `cannot reach ${where} (${error.code})`;
      fail(new DialError(errorClass, message, fields(phase), { cause: error }));
    }
    function onConnect() {
      cleanup();
      resolve({ socket, tcpMs: options.now() - started });
    }
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}
