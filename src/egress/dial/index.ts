// src/egress/dial — the Dialer: resolves the ordered route list for a target, walks it (DIRECT,
// HTTP CONNECT, HTTPS proxy, SOCKS5/4), fails over, remembers failed proxies and the last good
// route, and records one DialTrace per attempt. May import src/shared, ../types and config types.
//
// Failover policy (README, "Failover"):
// - any DialError on a route moves on to the next route;
// - a proxy that itself failed (DNS, TCP, its TLS, no/invalid answer to CONNECT) is skipped for
//   `proxySkipMs` (tried last, not dropped) — a proxy that ANSWERED (407, 403, 502) is healthy;
// - the route that last worked for a target is tried first next time;
// - when all fail, the error thrown is the one that got furthest (an answer from a proxy beats an
//   unreachable proxy beats a DNS failure); on a tie, the earliest attempt's. It carries every
//   attempt's DialError and trace.
import { readFileSync } from 'node:fs';
import tls, { type TLSSocket } from 'node:tls';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { ConfigError, DialError, type DialPhase } from '../../shared/errors.js';
import { silentLogger, type Logger } from '../../shared/log.js';
import { redact } from '../../shared/redact.js';
import type { DialRequest, DialResult, DialTrace, Dialer, ProxyResolver, Route, RouteDecision } from '../types.js';
import type { ConfiguredProxyCredentials } from '../../config/proxy-settings.js';
import { assertValidTargetHost, authenticateForwardConnection, httpConnect, setRequestAuthorization } from './http-connect.js';
import { createProxyAuthenticator, type ProxyAuthenticator, type ProxyCredentials } from './proxy-auth.js';
import { RouteHealth, formatHostPort, routeKey } from './route-health.js';
import { socksConnect } from './socks.js';
import { connectPinnedTls, type PinnedTlsOptions } from '../tls.js';
import { classifySocketError, connectTcp } from './tcp.js';

export {
  AnyProxyAuthenticator, basicCredentials, BasicProxyAuthenticator, createProxyAuthenticator, NegotiateProxyAuthenticator, NtlmProxyAuthenticator, PROXY_AUTH_SCHEMES,
  type ProxyAuthenticator, type ProxyAuthScheme, type ProxyCredentials,
} from './proxy-auth.js';
export { RouteHealth, routeKey } from './route-health.js';
export { classifySocketError } from './tcp.js';
export { requestAuthorizationFor } from './http-connect.js';

export type ProxyRoute = Exclude<Route, { kind: 'DIRECT' }>;

export interface DialerOptions {
  /** Where routes come from; without one every target is dialed DIRECT. */
  resolver?: ProxyResolver;
  /** Credentials for a proxy when the route itself carries none (e.g. from a secrets file). */
  credentials?: (proxy: ProxyRoute) => ProxyCredentials | undefined;
  /** Builds the authenticator for a proxy; default: by the credentials' scheme (Basic unless set), none without credentials. */
  authenticator?: (proxy: ProxyRoute, credentials: ProxyCredentials | undefined) => ProxyAuthenticator | undefined;
  /** Per-phase time limit of one attempt (TCP connect, proxy TLS, CONNECT answer). Default 10 s. */
  connectTimeoutMs?: number;
  /** How long a failed proxy is skipped. Default 60 s. */
  proxySkipMs?: number;
  /** Trust for HTTPS proxies' own certificates (PEM); default: the system roots. */
  proxyCaPem?: string;
  /** Name lookup for DIRECT targets and proxy hosts (e.g. configured DNS servers); default: the system's. */
  lookup?: net.LookupFunction;
  onTrace?: (trace: DialTrace) => void;
  logger?: Logger;
  /** Milliseconds clock, injectable for tests. */
  now?: () => number;
}

export interface EgressDialer extends Dialer {
  /**
   * Dials and completes TLS pinned to `tls.caPem` as part of each attempt, so a route whose TLS
   * fails (e.g. a TLS-inspecting proxy: tls-interception) fails over to the next route like any
   * other failure; `relay-rejected` stops the walk at once (no route can fix it). The trace's
   * `tlsMs` is this handshake.
   */
  dialTls(request: DialRequest, tls: Omit<PinnedTlsOptions, 'target' | 'proxy'>): Promise<DialResult & { socket: TLSSocket }>;
  /**
   * A connection to the first of the decision's proxies (plain HTTP proxies) that accepts one, for
   * requests sent to it in absolute form: no CONNECT; with NTLM or Negotiate credentials, a
   * connection whose requests must carry `requestAuthorizationFor(socket)` when it gives one (the
   * handshake's last leg on the first; Basic on each, when `any` met a Basic-only proxy). The list
   * is walked like any route list (the proxy that last worked for this target first, recently
   * failed ones last, each failure marked), with a trace per attempt; `request` names the app the
   * request is for.
   */
  dialForwardProxy(request: DialRequest, decision: ForwardDecision): Promise<DialResult>;
  /** The failover bookkeeping (exposed for doctor output and tests). */
  readonly health: RouteHealth;
}

/** The proxies a request in absolute form may go to (their credentials as resolved with them). */
export type ForwardDecision = RouteDecision & { routes: ProxyRoute[] };

/** A DialError thrown when every route failed: the most relevant failure plus all attempts. */
export class RoutesExhaustedError extends DialError {
  readonly attempts: DialError[];
  readonly traces: DialTrace[];

  constructor(chosen: DialError, attempts: DialError[], traces: DialTrace[]) {
    const others = attempts.length > 1 ? ` (${attempts.length} routes tried: ${traces.map((t) => `${t.route} → ${t.errorClass ?? 'ok'}`).join('; ')})` : '';
    super(chosen.errorClass, `${chosen.message}${others}`, chosen.fields, {
      fix: chosen.fix,
      retryable: chosen.retryable,
      permanent: chosen.permanent,
      cause: chosen,
    });
    this.attempts = attempts;
    this.traces = traces;
  }
}

/** A resolver that always answers the same list (tests, `--proxy` flags, fixed configs). */
export function fixedRoutes(routes: Route[], source = 'config', detail = 'fixed route list'): ProxyResolver {
  return { resolve: async () => ({ routes, provenance: { source, detail } }) };
}

const DIRECT_DECISION: RouteDecision = { routes: [{ kind: 'DIRECT' }], provenance: { source: 'default', detail: 'no proxy resolver: direct' } };

export function createDialer(options: DialerOptions = {}): EgressDialer {
  const now = options.now ?? Date.now;
  const logger = options.logger ?? silentLogger;
  const defaultTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const health = new RouteHealth({ now, skipMs: options.proxySkipMs ?? 60_000 });
  const lookupOpt = options.lookup ? { lookup: options.lookup } : {};

  function dial(request: DialRequest): Promise<DialResult> {
    return options.resolver ? walk(request) : dialDirect(request);
  }

  /**
   * Without a resolver every target is DIRECT: one attempt, no route walk and no async frames held
   * while it is in flight (a backend connection is dialed per open request). Same trace, log
   * lines and errors as a walk of the one-route list.
   */
  function dialDirect(request: DialRequest): Promise<DialResult> {
    try {
      assertValidTargetHost(request.host);
    } catch (error) {
      return Promise.reject(error); // as the walk does: a rejection, never a throw
    }
    const target = formatHostPort(request.host, request.port);
    const started = now();
    const timeoutMs = request.timeoutMs ?? defaultTimeoutMs;
    return connectTcp({ host: request.host, port: request.port, timeoutMs, target, now, ...signalOf(request), ...lookupOpt }).then(({ socket, tcpMs }) => {
      const trace = directTrace(request, target, started);
      trace.tcpMs = tcpMs;
      const traces: DialTrace[] = [];
      emit(trace, traces);
      logger.debug({ trace }, 'dial ok');
      return { socket, route: DIRECT_DECISION.routes[0] as Route, traces };
    }, (error: unknown) => {
      if (!(error instanceof DialError)) throw error;
      const trace = directTrace(request, target, started);
      trace.outcome = 'error';
      trace.errorClass = error.errorClass;
      trace.message = redact(error.message);
      const traces: DialTrace[] = [];
      emit(trace, traces);
      logger.info({ trace }, `dial attempt failed: ${trace.route} → ${error.errorClass}`);
      throw new RoutesExhaustedError(error, [error], traces);
    });
  }

  function directTrace(request: DialRequest, target: string, started: number): DialTrace {
    const { source } = DIRECT_DECISION.provenance;
    return { time: new Date(started).toISOString(), caller: request.caller, target, route: 'DIRECT', source, outcome: 'ok' };
  }

  async function dialTls(request: DialRequest, tlsOptions: Omit<PinnedTlsOptions, 'target' | 'proxy'>): Promise<DialResult & { socket: TLSSocket }> {
    const result = await walk(request, async (socket, target, trace) => {
      const started = now();
      try {
        return await connectPinnedTls(socket, {
          ...tlsOptions,
          target,
          ...(trace.proxy ? { proxy: trace.proxy } : {}),
          timeoutMs: tlsOptions.timeoutMs ?? request.timeoutMs ?? defaultTimeoutMs,
        });
      } catch (error) {
        if (error instanceof DialError) reachedTarget.add(error);
        throw error;
      } finally {
        trace.tlsMs = now() - started;
      }
    });
    return result as DialResult & { socket: TLSSocket };
  }

  function dialForwardProxy(request: DialRequest, decision: ForwardDecision): Promise<DialResult> {
    return walk(request, undefined, decision);
  }

  /**
   * Tries the routes for `request` in health order. `upgrade` completes each attempt (e.g. TLS to
   * the target); `forward` gives the routes (plain HTTP proxies) and asks for a connection to the
   * proxy itself, for requests in absolute form.
   */
  async function walk(request: DialRequest, upgrade?: (socket: Duplex, target: string, trace: DialTrace) => Promise<Duplex>, forward?: RouteDecision): Promise<DialResult> {
    assertValidTargetHost(request.host);
    const target = formatHostPort(request.host, request.port);
    const url = request.url ?? new URL(`https://${target}/`);
    const decision = forward ?? (options.resolver ? await options.resolver.resolve(url, request.caller) : DIRECT_DECISION);
    const routes = decision.routes.length > 0 ? decision.routes : DIRECT_DECISION.routes;
    const ordered = health.order(target, routes);
    const traces: DialTrace[] = [];
    const failures: DialError[] = [];
    for (const route of ordered) {
      if (request.signal?.aborted) throw request.signal.reason;
      const trace: DialTrace = {
        time: new Date(now()).toISOString(),
        caller: request.caller,
        target,
        route: routeKey(route),
        ...(route.kind === 'DIRECT' ? {} : { proxy: proxyLabel(route) }),
        source: decision.provenance.source,
        outcome: 'ok',
      };
      try {
        const tunnel = await attempt(route, request, target, trace, decision, forward !== undefined);
        const socket = upgrade ? await upgrade(tunnel, target, trace) : tunnel;
        health.markSucceeded(target, route);
        emit(trace, traces);
        logger.debug({ trace }, 'dial ok');
        return { socket, route, traces };
      } catch (error) {
        if (!(error instanceof DialError)) throw error;
        trace.outcome = 'error';
        trace.errorClass = error.errorClass;
        trace.message = redact(error.message);
        emit(trace, traces);
        failures.push(error);
        health.forgetTarget(target, route);
        if (route.kind !== 'DIRECT' && proxyItselfFailed(route, error)) health.markFailed(route);
        logger.info({ trace }, `dial attempt failed: ${trace.route} → ${error.errorClass}`);
        if (error.permanent) break;
      }
    }
    const chosen = mostRelevant(failures);
    throw new RoutesExhaustedError(chosen, failures, traces);
  }

  function emit(trace: DialTrace, traces: DialTrace[]) {
    traces.push(trace);
    try {
      options.onTrace?.(trace);
    } catch (error) {
      logger.warn({ err: error }, 'onTrace hook threw');
    }
  }

  async function attempt(route: Route, request: DialRequest, target: string, trace: DialTrace, decision: RouteDecision, toProxyItself = false): Promise<Duplex> {
    const timeoutMs = request.timeoutMs ?? defaultTimeoutMs;
    if (route.kind === 'DIRECT') {
      const { socket, tcpMs } = await connectTcp({ host: request.host, port: request.port, timeoutMs, target, now, ...signalOf(request), ...lookupOpt });
      trace.tcpMs = tcpMs;
      return socket;
    }
    const proxy = proxyLabel(route);
    const { socket, tcpMs } = await connectTcp({ host: route.host, port: route.port, timeoutMs, target, proxy, now, ...signalOf(request), ...lookupOpt });
    trace.tcpMs = tcpMs;
    const credentials = route.username !== undefined
      ? { username: route.username, password: route.password ?? '' }
      : options.credentials?.(route) ?? credentialsFromDecision(decision);
    if (toProxyItself) return authenticatedForRequests(socket, route, credentials, request, target, proxy, timeoutMs);
    if (route.kind === 'SOCKS5' || route.kind === 'SOCKS4') {
      return socksConnect(socket, {
        version: route.kind === 'SOCKS5' ? 5 : 4,
        proxyHost: route.host,
        proxyPort: route.port,
        host: request.host,
        port: request.port,
        target,
        proxy,
        timeoutMs,
        now,
        ...(credentials && credentials.scheme !== 'negotiate' ? { username: credentials.username, password: credentials.password } : {}),
      });
    }
    let proxySocket: net.Socket = socket;
    if (route.kind === 'HTTPS') {
      const started = now();
      proxySocket = await proxyTls(socket, route, target, proxy, timeoutMs);
      trace.proxyTlsMs = now() - started;
    }
    const authenticator = authenticatorFor(route, credentials);
    try {
      const tunnel = await httpConnect(proxySocket, {
        host: request.host,
        port: request.port,
        target,
        proxy,
        timeoutMs,
        now,
        ...(authenticator ? { authenticator } : {}),
      });
      trace.connectStatus = tunnel.statusCode;
      return tunnel.socket;
    } catch (error) {
      if (error instanceof DialError && error.fields.statusCode !== undefined) trace.connectStatus = error.fields.statusCode;
      throw error;
    }
  }

  function authenticatorFor(route: ProxyRoute, credentials: ProxyCredentials | undefined): ProxyAuthenticator | undefined {
    if (options.authenticator) return options.authenticator(route, credentials);
    return credentials ? createProxyAuthenticator(credentials, route.host) : undefined;
  }

  /**
   * A connection to an HTTP proxy for requests in absolute form. Configured Basic goes with each
   * request (the requester writes it); NTLM and Negotiate (and `any`) authenticate the connection
   * itself, so the handshake runs here, up to its last leg, which the connection's first request
   * carries (requestAuthorizationFor). `any` that met a proxy offering only Basic leaves Basic for
   * every request on the connection instead: the proxy asked for it.
   */
  async function authenticatedForRequests(socket: net.Socket, route: ProxyRoute, credentials: ProxyCredentials | undefined, request: DialRequest, target: string, proxy: string, timeoutMs: number): Promise<Duplex> {
    if (!credentials || (credentials.scheme ?? 'basic') === 'basic') return socket;
    const authenticator = authenticatorFor(route, credentials);
    if (!authenticator) return socket;
    const url = request.url ?? new URL(`http://${target}/`);
    const lastLeg = await authenticateForwardConnection(socket, { host: request.host, port: request.port, target, proxy, timeoutMs, now, authenticator, url });
    if (lastLeg !== undefined) setRequestAuthorization(socket, lastLeg, { everyRequest: authenticator.scheme === 'Basic' });
    // The handshake paused the socket when it stopped reading; the HTTP client reads it from here
    // as it would a fresh connection (nothing arrives before its first request).
    socket.resume();
    return socket;
  }

  function proxyTls(socket: net.Socket, route: ProxyRoute, target: string, proxy: string, timeoutMs: number): Promise<tls.TLSSocket> {
    const started = now();
    return new Promise((resolve, reject) => {
      const secure = tls.connect({
        socket,
        // `host` is what the proxy's certificate is checked against (an IP SAN for IP proxies).
        host: route.host,
        servername: isIp(route.host) ? undefined : route.host,
        ...(options.proxyCaPem ? { ca: [options.proxyCaPem] } : {}),
        ALPNProtocols: ['http/1.1'],
      } as tls.ConnectionOptions);
      const timer = setTimeout(() => fail(new DialError('connect-timeout', `the HTTPS proxy ${proxy} did not complete TLS within ${timeoutMs} ms`, fields(), {})), timeoutMs);
      function fields(): { target: string; proxy: string; phase: DialPhase; elapsedMs: number; timeoutMs: number } {
        return { target, proxy, phase: 'tls', elapsedMs: now() - started, timeoutMs };
      }
      function fail(error: DialError) {
        clearTimeout(timer);
        secure.destroy();
        reject(error);
      }
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        secure.removeAllListeners('error');
        resolve(secure);
      });
      secure.once('error', (error: NodeJS.ErrnoException) => {
        // errno codes (ECONNRESET...) are the transport; everything else (ERR_SSL_*, certificate
        // verification codes such as UNABLE_TO_VERIFY_LEAF_SIGNATURE, EPROTO) is TLS itself.
        const errorClass = error.code && /^E[A-Z]+$/.test(error.code) && error.code !== 'EPROTO' ? classifySocketError(error.code) : 'tls';
        fail(new DialError(errorClass, `TLS to the HTTPS proxy ${proxy} failed (${error.code ?? error.message})`, fields(), { cause: error }));
      });
    });
  }

  return { dial, dialTls, dialForwardProxy, health };
}

/** The proxy as logs may show it: scheme, user name (never the password), host and port. */
export function proxyLabel(route: ProxyRoute): string {
  const scheme = { PROXY: 'http', HTTPS: 'https', SOCKS5: 'socks5', SOCKS4: 'socks4' }[route.kind];
  const user = route.username ? `${encodeURIComponent(route.username)}@` : '';
  return `${scheme}://${user}${formatHostPort(route.host, route.port)}`;
}

function proxyItselfFailed(route: ProxyRoute, error: DialError): boolean {
  // The tunnel reached the target; what failed after that (its TLS) is not the proxy's health.
  if (reachedTarget.has(error)) return false;
  const phase = error.fields.phase;
  if (phase === 'resolve' || phase === 'tcp' || phase === 'tls') return true;
  if (phase !== 'proxy-connect') return false;
  if (error.errorClass === 'connect-timeout') return true;
  // An HTTP proxy that reset, closed or spoke garbage instead of answering CONNECT is not working.
  // A status code (407, 403, 502...) means it works and answered about this target: it stays in
  // rotation. SOCKS refusals carry no code we can read, so a SOCKS proxy that answered stays too.
  return (route.kind === 'PROXY' || route.kind === 'HTTPS') && error.fields.statusCode === undefined;
}

const PHASE_RANK: Partial<Record<DialPhase, number>> = { resolve: 0, tcp: 1, tls: 2, 'proxy-connect': 3, 'proxy-auth': 3 };

/** Failures that happened after a tunnel to the target was open (its TLS): the furthest stage. */
const reachedTarget = new WeakSet<DialError>();

function mostRelevant(failures: DialError[]): DialError {
  let best = failures[0] as DialError;
  for (const failure of failures.slice(1)) {
    if (rank(failure) > rank(best)) best = failure;
  }
  return best;
}

function rank(error: DialError): number {
  if (error.permanent) return 200;
  if (reachedTarget.has(error)) return 100;
  // A proxy that answered with a status says something about the target; that beats a silent one.
  const answered = error.fields.statusCode !== undefined ? 1 : 0;
  return (PHASE_RANK[error.fields.phase] ?? 0) * 2 + answered;
}

function isIp(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':');
}

function signalOf(request: DialRequest): { signal?: AbortSignal } {
  return request.signal ? { signal: request.signal } : {};
}


/**
 * Credentials the resolver attached to a decision (proxy.credentials in the service's settings):
 * the password is read from its file at dial time, so a rotated password needs no restart.
 */
export function credentialsFromDecision(decision: RouteDecision): ProxyCredentials | undefined {
  return decision.proxyCredentials ? readProxyCredentials(decision.proxyCredentials) : undefined;
}

/** Configured credentials as the authenticators take them (the password read from its file now). */
export function readProxyCredentials(configured: ConfiguredProxyCredentials): ProxyCredentials | undefined {
  if (configured.scheme === 'negotiate') {
    return {
      username: configured.username ?? '', password: '', scheme: 'negotiate',
      ...(configured.keytab ? { keytab: configured.keytab } : {}), ...(configured.onlyWhenAsked ? { onlyWhenAsked: true } : {}),
    };
  }
  if (configured.passwordFile === undefined || configured.username === undefined) return undefined;
  try {
    return {
      username: configured.username,
      password: readFileSync(configured.passwordFile, 'utf8').replace(/\r?\n$/, ''),
      ...(configured.scheme ? { scheme: configured.scheme } : {}),
    };
  } catch (error) {
    throw new ConfigError(`cannot read the proxy password file: ${(error as Error).message}`, {
      file: configured.passwordFile, fix: 'create the file with the password on one line, readable by the service (mode 0600)',
    });
  }
}
