// HTTP(S) over the egress dialer, for registration, certificate renewal, updater downloads and
// backend requests. An http.Agent whose createConnection dials through the Dialer (so the
// resolved route, failover and traces apply) and, for https, adds TLS pinned to the relay CA
// (or verified against the system roots when no CA is given).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { basicCredentials, createDialer, credentialsFromDecision, proxyLabel, RoutesExhaustedError, requestAuthorizationFor, type DialerOptions, type EgressDialer, type ForwardDecision, type ProxyCredentials, type ProxyRoute } from './dial/index.js';
import { challengeSchemes } from './dial/connect-response.js';
import { formatHostPort, routeKey } from './dial/route-health.js';
import { connectVerifiedTls } from './tls.js';
import type { Caller, Dialer, DialResult, ProxyResolver, Provenance, Route, RouteDecision } from './types.js';
import { DialError } from '../shared/errors.js';
import { isConnectionAuth } from '../shared/wire.js';

export interface EgressTlsOptions {
  /** Trust only this CA (PEM); absent: the system roots. */
  caPem?: string;
  /** CA certificates (PEM) trusted besides Node's built-in roots (and NODE_EXTRA_CA_CERTS). */
  trustAlso?: string;
  /** What to do about a certificate from an untrusted issuer, reached directly (for the log line). */
  untrustedIssuerFix?: string;
  certPem?: string;
  keyPem?: string;
  alpn?: string[];
}

export interface EgressAgentOptions {
  dialer: Dialer;
  caller: Caller;
  /** Present: the agent speaks https (TLS over the dialed route). */
  tls?: EgressTlsOptions;
  keepAlive?: boolean;
  /** At most this many connections at once (default: no limit). */
  maxSockets?: number;
  timeoutMs?: number;
}

/** An Agent for `http.request` (no `tls`) or `https.request` (with `tls`) that dials through Ferry's egress. */
export function createEgressAgent(options: EgressAgentOptions): http.Agent {
  return new EgressAgent(options);
}

class EgressAgent extends http.Agent {
  private readonly egress: EgressAgentOptions;
  /** With `tls.trustAlso`: the roots plus those CAs, built once (not per connection). */
  private readonly secureContext: tls.SecureContext | undefined;

  constructor(options: EgressAgentOptions) {
    super({ keepAlive: options.keepAlive ?? true, ...(options.maxSockets ? { maxSockets: options.maxSockets } : {}) });
    this.egress = options;
    this.secureContext = options.tls?.trustAlso ? trustingAlso(options.tls.trustAlso) : undefined;
    // ClientRequest refuses an agent whose protocol differs from the request's.
    (this as unknown as { protocol: string; defaultPort: number }).protocol = options.tls ? 'https:' : 'http:';
    (this as unknown as { protocol: string; defaultPort: number }).defaultPort = options.tls ? 443 : 80;
  }

  override createConnection(args: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    const forward = (args as ForwardArgs)[FORWARD];
    const host = (args.hostname ?? args.host ?? 'localhost').replace(/^\[(.*)\]$/, '$1');
    const port = Number(args.port ?? (this.egress.tls ? 443 : 80));
    const scheme = this.egress.tls ? 'https' : 'http';
    const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const tlsOptions = this.egress.tls;
    const timeoutMs = this.egress.timeoutMs;
    void (async () => {
      const request = {
        host,
        port,
        caller: this.egress.caller,
        url: new URL(`${scheme}://${authority}/`),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      };
      const dialer = this.egress.dialer as Partial<EgressDialer> & Dialer;
      if (forward && dialer.dialForwardProxy) {
        // An absolute-form request: a connection to the first of the proxies that takes one.
        return (await dialer.dialForwardProxy({ ...forward.app, caller: this.egress.caller, url: forward.url }, forward.decision)).socket;
      }
      // With a pinned CA and Ferry's own dialer, TLS is part of each route attempt, so an
      // intercepting proxy fails over to the next route instead of failing the request.
      if (tlsOptions?.caPem !== undefined && typeof dialer.dialTls === 'function') {
        const secured = await dialer.dialTls(request, {
          servername: host,
          caPem: tlsOptions.caPem,
          alpn: tlsOptions.alpn ?? ['http/1.1'],
          ...(tlsOptions.certPem !== undefined ? { certPem: tlsOptions.certPem } : {}),
          ...(tlsOptions.keyPem !== undefined ? { keyPem: tlsOptions.keyPem } : {}),
        });
        return secured.socket;
      }
      const dialed = await dialer.dial(request);
      if (!tlsOptions) return dialed.socket;
      const proxy = dialed.traces.at(-1)?.proxy;
      return connectVerifiedTls(dialed.socket, {
        servername: host,
        ...(this.secureContext ? { secureContext: this.secureContext } : {}),
        ...(tlsOptions.untrustedIssuerFix ? { untrustedIssuerFix: tlsOptions.untrustedIssuerFix } : {}),
        target: authority,
        alpn: tlsOptions.alpn ?? ['http/1.1'],
        ...(tlsOptions.caPem !== undefined ? { caPem: tlsOptions.caPem } : {}),
        ...(tlsOptions.certPem !== undefined ? { certPem: tlsOptions.certPem } : {}),
        ...(tlsOptions.keyPem !== undefined ? { keyPem: tlsOptions.keyPem } : {}),
        ...(proxy ? { proxy } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      });
    })().then(
      (socket) => callback?.(null, socket),
      (error: Error) => callback?.(error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/**
 * Request options of an absolute-form request carry the proxies it may go through (the planned
 * one first, then the others of the list with the same credentials) and the app it is for. An
 * http.Agent hands a request's options to createConnection, so the agent walks them there.
 */
const FORWARD = 'ferryForward';
interface ForwardArgs {
  [FORWARD]?: { app: { host: string; port: number }; url: URL; decision: ForwardDecision };
}

export interface BackendRequesterOptions {
  /** `useDefaultProxyForBackendRequests`: off by default, backends are reached DIRECT. */
  useProxy: boolean;
  /** The resolver for the `backend` caller (required when useProxy is on). */
  resolver?: ProxyResolver;
  /** Shared dialer settings (timeouts, credentials, traces). */
  dialer?: Omit<DialerOptions, 'resolver'>;
  /** CA certificates (PEM) trusted for https backends besides the built-in roots (connector.yaml appCaFile). */
  backendCaPem?: string;
}

/**
 * The agents a backend request is sent through: the requester's shared ones, or a set of its own
 * (`agentsForOneUser`) whose single connection per kind stays with one user connection.
 */
export interface BackendAgents {
  http: http.Agent;
  https: http.Agent;
  forward: http.Agent;
  destroy(): void;
}

/** What becomes of a backend request sent with the requester's `send`. */
export interface BackendExchangeHandlers {
  /** The app's answer (a proxy's 407 never comes here). */
  response(response: http.IncomingMessage): void;
  /** The app switched protocols (body 'upgrade'). */
  upgrade?(response: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  /** The request failed: a dial error, a proxy's 407 (proxy-auth-required), a reset. */
  error(error: NodeJS.ErrnoException): void;
  /** The request goes again by `next`, the list's next route (for the log). */
  retried?(next: BackendRequestPlan): void;
}

/**
 * What follows a request's head: nothing ('none': the request is ended), an Upgrade ('upgrade':
 * the head alone is sent), or a body the caller writes into `request`. Each happens once the
 * attempt has a connection (to the app, or to the proxy), so an attempt that found none leaves the
 * body unread and the request can still go by the list's next route.
 */
export type BackendRequestBody = 'none' | 'upgrade' | ((request: http.ClientRequest) => void);

/** A backend request in flight: the attempt now (a retry replaces it), and a way to stop it. */
export interface BackendExchange {
  readonly request: http.ClientRequest;
  destroy(): void;
}

export interface BackendRequestPlan {
  /** Pass to `http.request` (plan.protocol 'http:') or `https.request` ('https:'). */
  options: http.RequestOptions;
  protocol: 'http:' | 'https:';
  /** How the request travels: DIRECT, an absolute-form request to a proxy, or a tunnel. */
  via: 'direct' | 'forward-proxy' | 'tunnel';
  route: Route;
  provenance: Provenance;
}

/**
 * Plans backend requests. With the proxy on and a `PROXY` route first, a plain-http request goes
 * to the proxy in absolute form (`GET http://app.internal/x HTTP/1.1`), as browsers do; https
 * backends (and SOCKS routes) go through a CONNECT/SOCKS tunnel with failover. The absolute form
 * fails over across the list's proxies too (a proxy that takes no connection is skipped like in
 * any walk), with Basic credentials on each request, or a connection NTLM or Negotiate authenticated
 * when the dialer opened it.
 */
export function createBackendRequester(options: BackendRequesterOptions) {
  const dialerOptions = options.dialer ?? {};
  const directDialer = createDialer(dialerOptions);
  const routedDialer = options.useProxy && options.resolver ? createDialer({ ...dialerOptions, resolver: options.resolver }) : directDialer;
  const backendTls: EgressTlsOptions = {
    untrustedIssuerFix: 'add the CA that issued the app\'s certificate to appCaFile in connector.yaml',
    ...(options.backendCaPem ? { trustAlso: options.backendCaPem } : {}),
  };
  function agents(maxSockets?: number): BackendAgents {
    const set = {
      http: createEgressAgent({ dialer: routedDialer, caller: 'backend', maxSockets }),
      https: createEgressAgent({ dialer: routedDialer, caller: 'backend', maxSockets, tls: backendTls }),
      forward: createEgressAgent({ dialer: routedDialer, caller: 'backend', maxSockets }),
    };
    return { ...set, destroy: () => { for (const agent of Object.values(set)) agent.destroy(); } };
  }
  const shared = agents();

  /**
   * Agents for one user connection: one app connection each, kept alive for that user only. For
   * NTLM/Negotiate, which authenticate a connection: the handshake's legs and the requests after
   * it then go on one app connection, which no other user's request ever takes (what nginx's
   * `ntlm` directive does). The caller destroys them when the user connection ends.
   */
  function agentsForOneUser(): BackendAgents {
    return agents(1);
  }

  async function plan(url: URL, base: http.RequestOptions = {}, via: BackendAgents = shared): Promise<BackendRequestPlan> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`backend URL must be http or https: ${url.href}`);
    const given = base.headers as http.OutgoingHttpHeaders | undefined;
    if (via === shared && given && given.connection === undefined && isConnectionAuth(given.authorization as string | string[] | undefined)) {
      // NTLM and Negotiate authenticate the connection they arrive on: on a shared agent, the
      // connection would serve the next request (another user's) as this user. It closes after
      // its answer instead (a multi-leg handshake then needs agentsForOneUser).
      base = { ...base, headers: { ...given, connection: 'close' } };
    }
    const protocol = url.protocol;
    const { host, port } = endpointOf(url);
    const path = `${url.pathname}${url.search}`;
    const decision =
      options.useProxy && options.resolver
        ? await options.resolver.resolve(url, 'backend')
        : { routes: [{ kind: 'DIRECT' } as Route], provenance: { source: 'default', detail: 'useDefaultProxyForBackendRequests is off' } };
    // The proxy that last worked for this app first, recently failed ones last (as the dialer
    // walks a list); a tunnel (https, SOCKS) walks the list itself when it dials.
    const ordered = protocol === 'http:' && options.useProxy ? routedDialer.health.order(formatHostPort(host, port), decision.routes) : decision.routes;
    const first = ordered[0] ?? ({ kind: 'DIRECT' } as Route);
    if (protocol === 'http:' && first.kind === 'PROXY') {
      const credentials = credentialsOf(first, decision);
      // Proxies the request may go to instead when this one takes no connection: the next PROXY
      // routes of the list whose credentials are the same (the Proxy-Authorization is written
      // before the connection exists). A DIRECT or tunnel route after them is the next plan's.
      const proxies = ordered.filter((route): route is ProxyRoute => route.kind === 'PROXY' && sameCredentials(credentialsOf(route, decision), credentials));
      const headers: http.OutgoingHttpHeaders = { ...(base.headers as http.OutgoingHttpHeaders | undefined), host: url.host };
      // Basic goes with each request; NTLM and Negotiate (and `any`) authenticate the forward
      // agent's connection when the dialer opens it.
      if (credentials && (credentials.scheme ?? 'basic') === 'basic') {
        headers['proxy-authorization'] = basicCredentials(credentials);
      }
      return {
        protocol,
        via: 'forward-proxy',
        route: first,
        provenance: decision.provenance,
        options: {
          ...base, host: first.host, port: first.port, path: url.href, headers, agent: via.forward,
          [FORWARD]: { app: { host, port }, url, decision: { ...decision, routes: proxies } },
        } as http.RequestOptions,
      };
    }
    return {
      protocol,
      via: first.kind === 'DIRECT' ? 'direct' : 'tunnel',
      route: first,
      provenance: decision.provenance,
      options: { ...base, host, port, path, servername: host, agent: protocol === 'https:' ? via.https : via.http } as http.RequestOptions,
    };
  }

  /**
   * Sends a planned request and reports the app's answer, never a proxy's: a 407 to a request in
   * absolute form comes as a `proxy-auth-required` error (see proxyAnswerError). `body` says what
   * follows the head (BackendRequestBody). A request without a body, or whose body is not read yet,
   * goes again by the list's next route when no proxy of its list took a connection (see
   * planAfterFailure).
   */
  function send(planned: BackendRequestPlan, target: { url: URL; base: http.RequestOptions; via?: BackendAgents }, body: BackendRequestBody, handlers: BackendExchangeHandlers): BackendExchange {
    let current: http.ClientRequest;
    let stopped = false;
    const attempt = (plan: BackendRequestPlan, retried: boolean): void => {
      const request = (plan.protocol === 'https:' ? https : http).request(plan.options);
      current = request;
      request.setNoDelay?.(true);
      // The egress agent hands a request its socket only once the dial succeeded: until then,
      // nothing of the body has been read. The head is written then too: the first request on a
      // connection to an NTLM or Negotiate proxy carries the handshake's last leg.
      let bodyTaken = false;
      request.once('socket', (socket: Duplex) => {
        if (stopped) return;
        const authorization = requestAuthorizationFor(socket);
        if (authorization !== undefined) request.setHeader('proxy-authorization', authorization);
        if (body === 'none') return void request.end();
        if (body === 'upgrade') return request.flushHeaders();
        bodyTaken = true;
        body(request);
      });
      request.on('response', (response: http.IncomingMessage) => {
        const refused = proxyAnswerError(plan, response);
        if (!refused) return handlers.response(response);
        response.destroy();
        request.destroy();
        handlers.error(refused);
      });
      if (handlers.upgrade) request.on('upgrade', handlers.upgrade);
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (body === 'upgrade' || bodyTaken || retried || stopped) return handlers.error(error);
        planAfterFailure(plan, error, target.url, target.base, target.via).then((next) => {
          if (!next || stopped) return handlers.error(error);
          handlers.retried?.(next);
          attempt(next, true);
        }, () => handlers.error(error));
      });
    };
    attempt(planned, false);
    return {
      get request() {
        return current;
      },
      destroy() {
        stopped = true;
        current.destroy();
      },
    };
  }

  /**
   * After `error` ended a request planned as `planned`: the plan to send it again with, or
   * undefined. Only for a request in absolute form whose proxies all took no connection (refused,
   * SYN unanswered, no name: nothing of the request left) when its list has a route they did not
   * cover (DIRECT, a tunnel, a proxy with other credentials), which the next plan puts first now
   * that they are skipped. Without this, "PROXY a; DIRECT" failed one user request each time the
   * dead proxy's skip ran out. Only a request without a body can go again (send decides): one whose
   * body was streamed into the failed request cannot.
   */
  async function planAfterFailure(planned: BackendRequestPlan, error: unknown, url: URL, base?: http.RequestOptions, via?: BackendAgents): Promise<BackendRequestPlan | undefined> {
    if (planned.via !== 'forward-proxy' || !(error instanceof RoutesExhaustedError)) return undefined;
    if (!error.attempts.every((attempt) => attempt.fields.phase === 'resolve' || attempt.fields.phase === 'tcp')) return undefined;
    const tried = new Set(error.traces.map((trace) => trace.route));
    const next = await plan(url, base, via);
    return tried.has(routeKey(next.route)) ? undefined : next;
  }

  /** As the dialer finds them for CONNECT: the route's own, the per-proxy lookup, the configured ones. */
  function credentialsOf(route: Route, decision: RouteDecision): ProxyCredentials | undefined {
    if (route.kind === 'DIRECT') return undefined;
    if (route.username !== undefined) return { username: route.username, password: route.password ?? '' };
    return dialerOptions.credentials?.(route) ?? credentialsFromDecision(decision);
  }

  /** A plain-http app reached DIRECT (the backend proxy is off): what the fast paths serve. */
  function isDirectHttp(url: URL): boolean {
    return !options.useProxy && url.protocol === 'http:';
  }

  /**
   * A byte stream to the app at `url` (passthrough apps, the head splice, the app client): DIRECT, or a CONNECT/SOCKS tunnel through
   * the resolved proxy when useDefaultProxyForBackendRequests is on.
   */
  function connect(url: URL): Promise<DialResult> {
    return routedDialer.dial({ ...endpointOf(url), caller: 'backend', url });
  }

  return {
    plan,
    send,
    planAfterFailure,
    agentsForOneUser,
    connect,
    isDirectHttp,
    close: () => shared.destroy(),
  };
}

function sameCredentials(a: ProxyCredentials | undefined, b: ProxyCredentials | undefined): boolean {
  return a?.username === b?.username && a?.password === b?.password && (a?.scheme ?? 'basic') === (b?.scheme ?? 'basic');
}

/** Secure contexts trusting the built-in roots plus some CAs, one per set (agents come and go per user). */
const contextsTrusting = new Map<string, tls.SecureContext>();
function trustingAlso(caPem: string): tls.SecureContext {
  let context = contextsTrusting.get(caPem);
  if (!context) {
    context = tls.createSecureContext({ ca: [...tls.rootCertificates, ...extraCaCertificates(), caPem] });
    contextsTrusting.set(caPem, context);
  }
  return context;
}

/**
 * NODE_EXTRA_CA_CERTS, which Node adds to its default trust but not to a context built with `ca`:
 * kept, so appCaFile adds to what the service trusted without it.
 */
function extraCaCertificates(): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return [readFileSync(file, 'utf8')];
  } catch {
    return []; // Node itself warned at startup
  }
}

/** The host (IPv6 without brackets) and port a backend URL names. */
function endpointOf(url: URL): { host: string; port: number } {
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) };
}

/**
 * A 407 to a request in absolute form is the proxy's answer, not the app's: passed on, it would
 * have a remote user's browser ask for the company proxy's password. The error to fail the
 * request with instead, or undefined for any other answer.
 */
export function proxyAnswerError(plan: BackendRequestPlan, response: http.IncomingMessage): DialError | undefined {
  if (plan.via !== 'forward-proxy' || response.statusCode !== 407 || plan.route.kind === 'DIRECT') return undefined;
  const proxy = proxyLabel(plan.route as ProxyRoute);
  const schemes = challengeSchemes(response.headersDistinct['proxy-authenticate'] ?? []);
  // What the request carried: Basic from the plan, or the last leg of an NTLM or Negotiate handshake.
  const carried = (response as http.IncomingMessage & { req?: http.ClientRequest }).req?.getHeader('proxy-authorization')
    ?? (plan.options.headers as http.OutgoingHttpHeaders | undefined)?.['proxy-authorization'];
  const sentScheme = carried === undefined ? undefined : String(carried).split(' ')[0];
  // The URL without its query (which may carry a token), as Squid logs it.
  const url = new URL(String(plan.options.path));
  const target = `${url.origin}${url.pathname}`;
  const offered = schemes.length > 0 ? schemes.join(', ') : 'none named';
  return new DialError('proxy-auth-required', sentScheme
    ? `the proxy ${proxy} refused the configured ${sentScheme} credentials for ${target} (407; schemes offered: ${offered})`
    : `the proxy ${proxy} asks for authentication for ${target} (407; schemes offered: ${offered}) and the request went without (no credentials configured, or a proxy that did not keep the NTLM or Negotiate connection authenticated)`, {
    target: url.host, proxy, phase: 'proxy-auth', elapsedMs: 0, statusCode: 407, schemes,
  });
}

/** For logs: where a backend request goes, never with credentials. */
export function describePlan(plan: BackendRequestPlan): string {
  return plan.route.kind === 'DIRECT' ? `${plan.via}` : `${plan.via} via ${proxyLabel(plan.route as ProxyRoute)}`;
}
