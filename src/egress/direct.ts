// DIRECT dialing: a plain TCP connection with TCP_NODELAY, failures classified once into the
// taxonomy (dns, connect-refused, connect-timeout). The route-walking dialer builds on this.
import net from 'node:net';
import { DialError, type DialFailureClass } from '../shared/errors.js';
import type { Dialer, DialRequest, DialResult, DialTrace } from './types.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export function connectTcp(host: string, port: number, timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS, signal?: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 });
    const target = `${host}:${port}`;
    const fail = (error: DialError) => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new DialError('connect-timeout', `no answer from ${target} within ${timeoutMs} ms (SYN unanswered)`, { target, phase: 'tcp', timeoutMs, elapsedMs: Date.now() - started })), timeoutMs);
    const onAbort = () => fail(new DialError('connect-timeout', `connecting to ${target} was cancelled`, { target, phase: 'tcp', elapsedMs: Date.now() - started }));
    signal?.addEventListener('abort', onAbort, { once: true });
    const onError = (error: NodeJS.ErrnoException) => fail(classifySocketError(error, target, Date.now() - started));
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      cleanup();
      resolve(socket);
    });
  });
}

/** Maps a socket error code to its taxonomy class. */
export function classifySocketError(error: NodeJS.ErrnoException, target: string, elapsedMs?: number, proxy?: string): DialError {
  const byCode: Record<string, DialFailureClass> = {
    ENOTFOUND: 'dns', EAI_AGAIN: 'dns', EAI_NONAME: 'dns', EAI_FAIL: 'dns',
    ECONNREFUSED: 'connect-refused', ECONNRESET: 'connect-refused', EHOSTUNREACH: 'connect-timeout',
    ENETUNREACH: 'connect-timeout', ETIMEDOUT: 'connect-timeout',
  };
  const errorClass = byCode[error.code ?? ''] ?? 'connect-refused';
  const what = { dns: 'does not resolve', 'connect-refused': 'refused the connection', 'connect-timeout': 'did not answer' }[errorClass as 'dns'] ?? 'failed';
  const subject = errorClass === 'dns' ? target.replace(/:\d+$/, '') : target;
  return new DialError(errorClass, `${subject} ${what} (${error.code ?? error.message})`, { target, phase: errorClass === 'dns' ? 'resolve' : 'tcp', elapsedMs, proxy }, { cause: error });
}

/** A Dialer that always connects directly (no proxy). */
export function createDirectDialer(timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): Dialer {
  return {
    async dial(request: DialRequest): Promise<DialResult> {
      const started = Date.now();
      const trace: DialTrace = { time: new Date().toISOString(), caller: request.caller, target: `${request.host}:${request.port}`, route: 'DIRECT', source: 'direct', outcome: 'ok' };
      try {
        const socket = await connectTcp(request.host, request.port, request.timeoutMs ?? timeoutMs, request.signal);
        trace.tcpMs = Date.now() - started;
        return { socket, route: { kind: 'DIRECT' }, traces: [trace] };
      } catch (error) {
        if (error instanceof DialError) Object.assign(error, { traces: [{ ...trace, outcome: 'error', errorClass: error.errorClass, message: error.message }] });
        throw error;
      }
    },
  };
}
