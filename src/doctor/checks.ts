// The doctor's probes, in the order an operator would check the path by hand. Each probe uses the
// production parts (the proxy resolver, the egress dialer, the pinned TLS handshake, the tunnel
// session code, the backend requester), never a copy of them, so what the doctor sees is what the
// connector sees. Severity is decided by ./severity.ts alone.
import { X509Certificate } from 'node:crypto';
import dns from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { proxySourcesOf } from '../config/proxy-settings.js';
import { loadConnectorConfig, type ConnectorConfig } from '../connector/config.js';
import { loadConnectorState, type ConnectorState } from '../connector/state.js';
import { serveTunnelOnce } from '../connector/session.js';
import { serveBackendStream } from '../connector/backend.js';
import { AppClient } from '../connector/app-client.js';
import { createConnectorEgress, lookupVia, type BackendRequester, type ConnectorEgress } from '../connector/egress.js';
import { createDialer, proxyLabel, type DialerOptions, type EgressDialer, type ProxyRoute } from '../egress/dial/index.js';
import { connectTcp, classifySocketError } from '../egress/dial/tcp.js';
import { formatHostPort } from '../egress/dial/route-health.js';
import { createEgressAgent, proxyAnswerError } from '../egress/http.js';
import { formatRoute } from '../egress/pac/index.js';
import { createProxyResolver, loadProxyResolverOptions, DEFAULT_MACHINE_CONFIG, type ManagedProxyResolver } from '../egress/resolve/index.js';
import type { Caller, DialTrace, ProxyResolver, Route, RouteDecision } from '../egress/types.js';
import { ConfigError, DialError, FerryError, describeError, type DialFailureClass } from '../shared/errors.js';
import { silentLogger } from '../shared/log.js';
import { redact } from '../shared/redact.js';
import { TUNNEL_ALPN } from '../shared/wire.js';
import { connectStatusMeaning } from './analyze.js';
import { fixFor, severity, summarize, type Need } from './severity.js';
import { splitHostPort } from './rules.js';
import type { CheckResult, DoctorReport } from './types.js';

export interface DoctorOptions {
  /** connector.yaml (or a .NET .config); default: the built-in defaults. */
  configFile?: string;
  /** The updater's own proxy settings file; without it the updater's route comes from the machine-wide file. */
  updaterConfigFile?: string;
  /** Internal app URLs to test from here (the connector does not know the published apps). */
  backends?: string[];
  /** Per-probe time limit; default the config's directTimeoutMs (5 s). */
  timeoutMs?: number;
  /** Progress messages for long checks (the CLI writes them to stderr). */
  progress?: (message: string) => void;
  /** Every dial attempt the probes made (the trace format of `connector run --trace`). */
  onTrace?: (trace: DialTrace) => void;
  /** Warn when the client certificate expires within this many days (default 14). */
  expiryWarnDays?: number;
}

export interface DoctorRun {
  report: DoctorReport;
  /** True when the configuration could not be used at all (exit code 2). */
  configError: boolean;
}

/** One place the connector reaches, with how much the configuration depends on it. */
interface Endpoint {
  name: 'registration' | 'tunnel-tcp' | 'tunnel-https' | 'updates';
  host: string;
  port: number;
  url: URL;
  caller: Caller;
  /** Reached through the resolver (proxy routes) or always direct (transport tcp). */
  routed: boolean;
  need: Need;
  alpn: string[];
  decision?: RouteDecision;
}

export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorRun> {
  const started = new Date().toISOString();
  const checks: CheckResult[] = [];
  const progress = options.progress ?? (() => undefined);
  const add = (check: CheckResult) => {
    checks.push(check);
    return check;
  };
  const finish = (configError: boolean): DoctorRun => ({ report: summarize(checks, started, options.configFile), configError });

  // 1. Configuration layers.
  let config: ConnectorConfig;
  let egress: ConnectorEgress;
  let updaterResolver: ManagedProxyResolver | undefined;
  try {
    const loaded = loadConnectorConfig(options.configFile);
    // The connector's own egress (resolver, dialers, backend requester), with the probe time limit
    // and without its trace file: the doctor's probes are not the connector's traffic.
    config = { ...loaded, trace: undefined, directTimeoutMs: options.timeoutMs ?? loaded.directTimeoutMs };
    egress = await createConnectorEgress(config, silentLogger, options.onTrace);
    const machineFile = config.machineConfig ?? DEFAULT_MACHINE_CONFIG;
    const machine = await loadProxyResolverOptions({ machine: machineFile });
    const updaterSources = options.updaterConfigFile ? proxySourcesOf(options.updaterConfigFile) : undefined;
    if (updaterSources) updaterResolver = createProxyResolver(await loadProxyResolverOptions({ updater: updaterSources.proxySettingsFile, machine: updaterSources.machineConfig ?? machineFile }));
    const layers = [
      `connector config ${config.file ?? '(defaults)'}`,
      ...(config.proxySettingsFile && config.proxySettingsFile !== config.file ? [`proxy settings ${config.proxySettingsFile}`] : []),
      ...(updaterSources ? [`updater settings ${updaterSources.proxySettingsFile}`] : []),
      `machine config ${machineFile}${machine.machine ? '' : ' (absent)'}`,
    ];
    add({ id: 'config', status: 'pass', target: config.file ?? '(defaults)', details: `parsed: ${layers.join(', ')}; transport ${config.transport}` });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    add({ id: 'config', status: 'fail', target: error.file ? `${error.file}${error.line ? `:${error.line}` : ''}` : options.configFile ?? '(defaults)', details: error.message, fix: error.fix ?? 'correct the file' });
    return finish(true);
  }

  const resolver = egress.resolver;
  try {
    const timeoutMs = config.directTimeoutMs;
    // 2. Registration state (identity, pinned CA, where the relay is).
    let state: ConnectorState;
    try {
      state = loadConnectorState(config.stateDir);
      add({ id: 'registration', status: 'pass', target: config.stateDir, details: `registered as ${state.name} (${state.connectorId}), group ${state.group}` });
    } catch (error) {
      const message = error instanceof FerryError ? error.message : describeError(error);
      add({ id: 'registration', status: 'fail', target: config.stateDir, details: message, fix: (error as FerryError).fix ?? 'register the connector' });
      return finish(false);
    }

    const lookup = config.dnsServers?.length ? lookupVia(config.dnsServers) : undefined;
    // Same settings as the connector's dialers, for the probes that walk one route at a time.
    const probeOptions: DialerOptions = { connectTimeoutMs: timeoutMs, ...(options.onTrace ? { onTrace: options.onTrace } : {}), ...(lookup ? { lookup } : {}) };
    const { routed, direct } = egress;
    const updaterDialer: EgressDialer = updaterResolver ? createDialer({ ...probeOptions, resolver: updaterResolver }) : routed;

    // 3. The relay endpoints and their effective routes, with provenance.
    const endpoints = relayEndpoints(config, state);
    for (const endpoint of endpoints) {
      if (!endpoint.routed) {
        add({ id: `route:${endpoint.name}`, status: endpoint.need === 'informational' ? 'skip' : 'pass', target: formatHostPort(endpoint.host, endpoint.port), details: `DIRECT (transport ${config.transport}: the tunnel port is dialed straight, never through a proxy)${endpoint.need === 'informational' ? '; not used with this transport' : ''}` });
        continue;
      }
      try {
        endpoint.decision = await (endpoint.caller === 'updater' && updaterResolver ? updaterResolver : resolver).resolve(endpoint.url, endpoint.caller);
        add({ id: `route:${endpoint.name}`, status: 'pass', target: endpoint.url.href, details: describeDecision(endpoint.decision, endpoint.caller) });
      } catch (error) {
        add({ id: `route:${endpoint.name}`, status: severity({ ok: false }, endpoint.need), target: endpoint.url.href, details: `no route: ${describeError(error)}`, fix: (error as FerryError).fix ?? 'check the proxy settings' });
      }
    }
    const decided = endpoints.filter((e) => e.decision);
    // The tunnel endpoint the transport never uses is not probed below (only listed as a route).
    const used = endpoints.filter((e) => !(e.need === 'informational' && e.name.startsWith('tunnel')));

    // 4. WPAD and PAC, as far as the decisions used them.
    const wpad = decided.map((e) => e.decision!.provenance).find((p) => p.wpad);
    if (!wpad) {
      add({ id: 'wpad', status: 'skip', target: '-', details: `auto-detection not used (effective proxy: ${resolver.effective('connector').basis})` });
    } else {
      const tried = wpad.wpad!.tried.join(', ') || '(no names: no DNS domain)';
      add(wpad.wpad!.url
        ? { id: 'wpad', status: 'pass', target: wpad.wpad!.url, details: `names tried: ${tried}; script served by ${wpad.wpad!.url}` }
        : { id: 'wpad', status: 'warn', target: tried, details: `names tried: ${tried}; none answered with a wpad.dat`, fix: 'publish wpad.<domain> in DNS with a wpad.dat, or configure the proxy explicitly', errorClass: 'dns' });
    }
    const pacEndpoints = decided.filter((e) => e.decision!.provenance.pacResult !== undefined);
    if (pacEndpoints.length === 0) {
      const scripted = decided.find((e) => ['pac', 'wpad'].includes(e.decision!.provenance.source));
      add(scripted
        ? { id: 'pac', status: 'warn', target: scripted.url.href, details: `the script gave no result: ${scripted.decision!.provenance.detail}`, fix: 'check the PAC script (ferry pac eval --pac FILE URL)' }
        : { id: 'pac', status: 'skip', target: '-', details: 'no PAC script in use' });
    } else {
      for (const e of pacEndpoints) add({ id: `pac:${e.name}`, status: 'pass', target: e.url.href, details: `FindProxyForURL returned "${e.decision!.provenance.pacResult}"` });
    }

    // 5. DNS: directly reached targets must resolve here; proxies too; names only the proxy reaches are information.
    const lookups = new Map<string, Need>();
    const note = (host: string, need: Need) => lookups.set(host, stronger(lookups.get(host), need));
    for (const e of used) {
      const routes = e.routed ? e.decision?.routes ?? [] : [{ kind: 'DIRECT' } as Route];
      routes.forEach((route, index) => {
        const need = routes.length > 1 && index > 0 ? 'alternative' : e.need;
        // DIRECT as a late fail-over entry behind proxies: the proxies are the path, a name that
        // does not resolve here is information.
        if (route.kind === 'DIRECT') note(e.host, index > 0 ? 'informational' : need);
        else note(route.host, need);
      });
      if (e.routed && !routes.some((r) => r.kind === 'DIRECT')) note(e.host, 'informational');
    }
    for (const [host, need] of lookups) {
      if (isIP(host.replace(/^\[|\]$/g, ''))) continue;
      try {
        const found = await lookupAll(host, lookup);
        add({ id: `dns:${host}`, status: 'pass', target: host, details: `resolves to ${found.map((a) => a.address).join(', ')}` });
      } catch (error) {
        const errorClass = classifySocketError((error as NodeJS.ErrnoException).code);
        const status = severity({ ok: false, errorClass }, need);
        add(need === 'informational'
          ? { id: `dns:${host}`, status, target: host, details: `does not resolve here (${(error as NodeJS.ErrnoException).code}); reached through the proxy, which resolves it` }
          : { id: `dns:${host}`, status, target: host, details: `does not resolve (${(error as NodeJS.ErrnoException).code})`, fix: fixFor('dns', host), errorClass });
      }
    }

    // 6. TCP to each proxy and each direct target.
    const tcpTargets = new Map<string, { host: string; port: number; need: Need; role: string }>();
    for (const e of used) {
      const routes = e.routed ? e.decision?.routes ?? [] : [{ kind: 'DIRECT' } as Route];
      routes.forEach((route, index) => {
        const need: Need = route.kind === 'DIRECT' && index > 0 ? 'informational' : routes.length > 1 && e.need === 'required' ? 'alternative' : e.need;
        const [host, port, role] = route.kind === 'DIRECT' ? [e.host, e.port, `direct target (${e.name})`] : [route.host, route.port, `proxy ${proxyLabel(route)}`];
        const key = formatHostPort(host, port);
        const known = tcpTargets.get(key);
        tcpTargets.set(key, { host, port, need: stronger(known?.need, need), role: known ? known.role : role });
      });
    }
    for (const [key, target] of tcpTargets) {
      progress(`TCP ${key}…`);
      try {
        const { socket, tcpMs } = await connectTcp({ host: target.host, port: target.port, timeoutMs, target: key, now: Date.now, ...(lookup ? { lookup } : {}) });
        socket.destroy();
        add({ id: `tcp:${key}`, status: 'pass', target: key, details: `${target.role}: connected in ${tcpMs} ms` });
      } catch (error) {
        if (!(error instanceof DialError)) throw error;
        add({ id: `tcp:${key}`, status: severity({ ok: false, errorClass: error.errorClass }, target.need), target: key, details: `${target.role}: ${redact(error.message)}`, fix: fixFor(error.errorClass, key), errorClass: error.errorClass });
      }
    }

    // 7. CONNECT through each proxy of each route list (one route at a time, production dialer).
    const connectsDone = new Set<string>();
    for (const e of used) {
      const routes = e.decision?.routes ?? [];
      const proxies = routes.filter((r): r is ProxyRoute => r.kind !== 'DIRECT');
      for (const proxy of proxies) {
        const label = proxyLabel(proxy);
        const target = formatHostPort(e.host, e.port);
        if (connectsDone.has(`${label} ${target}`)) continue;
        connectsDone.add(`${label} ${target}`);
        const need: Need = routes.length > 1 ? 'alternative' : e.need;
        progress(`CONNECT ${target} via ${label}…`);
        // The decision with only this proxy left, so its credentials and provenance still apply.
        const decision = e.decision!;
        const onlyThis: ProxyResolver = { resolve: async () => ({ ...decision, routes: [proxy] }) };
        const one = createDialer({ ...probeOptions, resolver: onlyThis });
        try {
          const { socket, traces } = await one.dial({ host: e.host, port: e.port, caller: e.caller, url: e.url });
          socket.destroy();
          const status = traces.at(-1)?.connectStatus ?? 200;
          add({ id: `connect:${e.name}:${label}`, status: 'pass', target, details: `CONNECT through ${label} answered ${status} (${connectStatusMeaning(status)})` });
        } catch (error) {
          if (!(error instanceof DialError)) throw error;
          add({ id: `connect:${e.name}:${label}`, status: severity({ ok: false, errorClass: error.errorClass }, need), target, details: describeConnectFailure(error, label), fix: fixFor(error.errorClass, error.errorClass === 'proxy-refused' ? target : formatHostPort(proxy.host, proxy.port)), errorClass: error.errorClass });
        }
      }
    }

    // 8. TLS to each relay endpoint over its real route, pinned to the relay CA (no client certificate).
    for (const e of used) {
      if (e.name === 'updates' && e.decision && registrationDecisionMatches(endpoints, e)) continue;
      const target = formatHostPort(e.host, e.port);
      progress(`TLS ${target}…`);
      const dialer = e.name === 'updates' ? updaterDialer : e.routed ? routed : direct;
      try {
        const { socket: secure, traces } = await dialer.dialTls({ host: e.host, port: e.port, caller: e.caller, url: e.url, timeoutMs }, { servername: e.host, caPem: state.caPem, alpn: e.alpn, timeoutMs });
        const via = traces.at(-1)?.proxy;
        const certificate = secure.getPeerCertificate(false);
        secure.destroy();
        add({ id: `tls:${e.name}`, status: 'pass', target, details: `${secure.getProtocol() ?? 'TLS'} via ${via ?? 'DIRECT'}; certificate ${certificate.subject?.CN ?? '?'} chains to the pinned relay CA` });
      } catch (error) {
        if (!(error instanceof DialError)) throw error;
        if (error.fields.phase !== 'tls') {
          add({ id: `tls:${e.name}`, status: 'skip', target, details: `not reached (${error.errorClass}; see the checks above)` });
          continue;
        }
        add({ id: `tls:${e.name}`, status: severity({ ok: false, errorClass: error.errorClass }, e.need), target, details: redact(error.message), fix: error.fix ?? fixFor(error.errorClass), errorClass: error.errorClass });
      }
    }

    // 9. The client certificate: present and valid here, and still accepted by the relay.
    const registration = endpoints.find((e) => e.name === 'registration')!;
    add(certificateValidity(state, options.expiryWarnDays ?? 14));
    progress('client certificate with the relay…');
    add(await certificateAccepted(routed, registration, state, timeoutMs));

    // 10. Clock skew against the relay (HTTP Date header of the public CA endpoint).
    add(await clockSkew(routed, registration, state, timeoutMs));

    // 11. Tunnel establishment over each transport, with the production session code.
    const tunnelChecks: CheckResult[] = [];
    for (const e of endpoints.filter((x) => x.name === 'tunnel-tcp' || x.name === 'tunnel-https')) {
      const transport = e.name === 'tunnel-tcp' ? 'tcp' : 'https';
      if (e.need === 'informational') {
        add({ id: `tunnel:${transport}`, status: 'skip', target: formatHostPort(e.host, e.port), details: `transport ${config.transport} does not use ${transport}` });
        continue;
      }
      progress(`tunnel over ${transport} to ${formatHostPort(e.host, e.port)}…`);
      tunnelChecks.push(add(await tunnelCheck(e.routed ? routed : direct, egress.backend, e, transport, state, config, timeoutMs)));
    }
    // With `auto`, each transport alone is an alternative; when neither works the connector cannot work.
    if (config.transport === 'auto' && tunnelChecks.length > 0 && tunnelChecks.every((c) => c.status !== 'pass')) {
      for (const c of tunnelChecks) c.status = 'fail';
    }

    // 12. Backends.
    if (!options.backends?.length) {
      add({ id: 'backend', status: 'skip', target: '-', details: 'the connector does not know the published apps; pass --backend URL to test one from here' });
    } else {
      for (const raw of options.backends) add(await backendCheck(egress.backend, raw, timeoutMs, config.useDefaultProxyForBackendRequests));
    }
    return finish(false);
  } finally {
    egress.close();
    updaterResolver?.close();
  }
}

/** All addresses of a name, through the configured DNS servers when the connector has some. */
function lookupAll(host: string, lookup: ReturnType<typeof lookupVia> | undefined): Promise<{ address: string }[]> {
  if (!lookup) return dns.lookup(host, { all: true });
  return new Promise((resolve, reject) => {
    lookup(host, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses as unknown as { address: string }[])));
  });
}

/** The updates endpoint needs no TLS probe of its own when it takes exactly the registration's route. */
function registrationDecisionMatches(endpoints: Endpoint[], updates: Endpoint): boolean {
  const registration = endpoints.find((e) => e.name === 'registration');
  return !!registration?.decision && registration.decision.routes.map(formatRoute).join(';') === updates.decision!.routes.map(formatRoute).join(';');
}

function stronger(a: Need | undefined, b: Need): Need {
  const rank: Record<Need, number> = { informational: 0, alternative: 1, required: 2 };
  return a === undefined || rank[b] > rank[a] ? b : a;
}

/** The relay endpoints this configuration uses; `need` follows the transport (DESIGN.md "Transports"). */
function relayEndpoints(config: ConnectorConfig, state: ConnectorState): Endpoint[] {
  const rename = (host: string) => config.relayHost ?? host;
  const registrationUrl = new URL(state.registrationUrl);
  if (config.relayHost) registrationUrl.hostname = config.relayHost;
  const regHost = registrationUrl.hostname.replace(/^\[|\]$/g, '');
  const regPort = Number(registrationUrl.port || 443);
  const tunnel = splitHostPort(state.tunnelAddresses[0] ?? `${regHost}:8444`);
  const pub = splitHostPort(state.publicAddresses[0] ?? `${regHost}:443`);
  const tunnelHost = rename(tunnel.host);
  const publicHost = rename(pub.host);
  const need = (transport: 'tcp' | 'https'): Need => (config.transport === transport ? 'required' : config.transport === 'auto' ? 'alternative' : 'informational');
  return [
    { name: 'registration', host: regHost, port: regPort, url: registrationUrl, caller: 'connector', routed: true, need: 'required', alpn: ['http/1.1'] },
    { name: 'tunnel-tcp', host: tunnelHost, port: tunnel.port, url: new URL(`https://${formatHostPort(tunnelHost, tunnel.port)}/`), caller: 'connector', routed: false, need: need('tcp'), alpn: [TUNNEL_ALPN] },
    { name: 'tunnel-https', host: publicHost, port: pub.port, url: new URL(`https://${formatHostPort(publicHost, pub.port)}/`), caller: 'connector', routed: true, need: need('https'), alpn: [TUNNEL_ALPN] },
    // The updater fetches releases from the registration URL, with its own proxy settings.
    { name: 'updates', host: regHost, port: regPort, url: registrationUrl, caller: 'updater', routed: true, need: 'informational', alpn: ['http/1.1'] },
  ];
}

function describeDecision(decision: RouteDecision, caller: Caller): string {
  const p = decision.provenance;
  const where = p.file ? ` (${p.file}${p.line ? `:${p.line}` : ''})` : '';
  const credentials = decision.proxyCredentials;
  const auth = !credentials ? '' : credentials.onlyWhenAsked
    ? '; useDefaultCredentials: Negotiate with the service\'s Kerberos identity when the proxy asks'
    : `; proxy credentials configured (${credentials.scheme ?? 'basic'})`;
  return redact(`${decision.routes.map(formatRoute).join('; ')} — for ${caller}, from ${p.source}${where}: ${p.detail}${auth}`);
}

function describeConnectFailure(error: DialError, label: string): string {
  const status = error.fields.statusCode;
  if (status === undefined) return `no CONNECT answer from ${label}: ${redact(error.message)}`;
  const schemes = error.fields.schemes?.length ? `; offered schemes: ${error.fields.schemes.join(', ')}` : '';
  return `CONNECT through ${label} answered ${status} (${connectStatusMeaning(status)})${schemes}`;
}

function certificateValidity(state: ConnectorState, warnDays: number): CheckResult {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(state.certPem);
  } catch {
    return { id: 'client-cert', status: 'fail', target: 'connector.pem', details: 'the client certificate in the state folder cannot be read', fix: fixFor('relay-rejected'), errorClass: 'relay-rejected' };
  }
  const now = Date.now();
  const notAfter = Date.parse(certificate.validTo);
  const notBefore = Date.parse(certificate.validFrom);
  const days = Math.floor((notAfter - now) / 86_400_000);
  const target = `CN=${certificate.subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3) ?? '?'}`;
  if (now > notAfter) return { id: 'client-cert', status: 'fail', target, details: `expired on ${certificate.validTo}`, fix: fixFor('relay-rejected'), errorClass: 'relay-rejected' };
  if (now < notBefore) return { id: 'client-cert', status: 'fail', target, details: `not valid before ${certificate.validFrom}: this machine's clock is behind`, fix: 'synchronise the system clock (NTP)', errorClass: 'tls' };
  if (days < warnDays) return { id: 'client-cert', status: 'warn', target, details: `expires in ${days} days (${certificate.validTo}) and has not been renewed yet`, fix: 'make sure the connector runs and reaches the registration URL so it can renew; else re-register' };
  return { id: 'client-cert', status: 'pass', target, details: `present, valid until ${certificate.validTo} (${days} days)` };
}

interface RelayAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  sentAt: number;
  receivedAt: number;
}

/** One HTTPS request to the registration API over the production egress agent (pinned CA). */
function relayRequest(dialer: EgressDialer, endpoint: Endpoint, path: string, method: 'GET' | 'POST', tlsIdentity: { caPem: string; certPem?: string; keyPem?: string }, timeoutMs: number, body?: string): Promise<RelayAnswer> {
  const agent = createEgressAgent({ dialer, caller: 'connector', tls: tlsIdentity, keepAlive: false, timeoutMs });
  const sentAt = Date.now();
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, endpoint.url), { method, agent, timeout: timeoutMs * 2, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, sentAt, receivedAt: Date.now() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new DialError('connect-timeout', `the relay did not answer ${path} within ${timeoutMs * 2} ms`, { target: formatHostPort(endpoint.host, endpoint.port), phase: 'session' })));
    req.on('error', reject);
    req.end(body);
  }).finally(() => agent.destroy()) as Promise<RelayAnswer>;
}

/** Whether the relay still accepts this certificate, read-only: GET /v1/connectors/self over mTLS (403 when removed). */
async function certificateAccepted(dialer: EgressDialer, endpoint: Endpoint, state: ConnectorState, timeoutMs: number): Promise<CheckResult> {
  const target = endpoint.url.origin;
  try {
    const answer = await relayRequest(dialer, endpoint, '/v1/connectors/self', 'GET', { caPem: state.caPem, certPem: state.certPem, keyPem: state.keyPem }, timeoutMs);
    if (answer.status === 200) return { id: 'client-cert:relay', status: 'pass', target, details: 'the relay accepts this connector\'s certificate' };
    if (answer.status === 403) return { id: 'client-cert:relay', status: 'fail', target, details: 'the relay refuses this certificate: the connector was removed or its certificate revoked', fix: fixFor('relay-rejected'), errorClass: 'relay-rejected' };
    return { id: 'client-cert:relay', status: 'warn', target, details: `unexpected answer ${answer.status} from the registration API`, fix: 'check that the registration URL points to a Ferry relay' };
  } catch (error) {
    return unreachable('client-cert:relay', target, error);
  }
}

/** Skew between this machine and the relay; certificates and tokens are checked against both clocks. */
async function clockSkew(dialer: EgressDialer, endpoint: Endpoint, state: ConnectorState, timeoutMs: number): Promise<CheckResult> {
  const target = endpoint.url.origin;
  try {
    const answer = await relayRequest(dialer, endpoint, '/v1/ca', 'GET', { caPem: state.caPem }, timeoutMs);
    const date = Date.parse(String(answer.headers.date ?? ''));
    if (Number.isNaN(date)) return { id: 'clock', status: 'skip', target, details: 'the relay sent no Date header' };
    // The Date header has a 1 s resolution and was written somewhere between send and receive.
    const midpoint = (answer.sentAt + answer.receivedAt) / 2;
    const skewS = Math.round((midpoint - date) / 1000);
    const tolerance = Math.ceil((answer.receivedAt - answer.sentAt) / 2000) + 1;
    const magnitude = Math.max(0, Math.abs(skewS) - tolerance);
    const direction = skewS > 0 ? 'ahead of' : 'behind';
    if (magnitude >= 300) return { id: 'clock', status: 'fail', target, details: `this machine's clock is ${Math.abs(skewS)} s ${direction} the relay`, fix: 'synchronise the system clock (NTP): certificates are checked against it', errorClass: 'tls' };
    if (magnitude >= 30) return { id: 'clock', status: 'warn', target, details: `this machine's clock is ${Math.abs(skewS)} s ${direction} the relay`, fix: 'synchronise the system clock (NTP)' };
    return { id: 'clock', status: 'pass', target, details: `within ${Math.max(Math.abs(skewS), tolerance)} s of the relay` };
  } catch (error) {
    return unreachable('clock', target, error);
  }
}

function unreachable(id: string, target: string, error: unknown): CheckResult {
  if (error instanceof DialError) return { id, status: 'skip', target, details: `the relay was not reached (${error.errorClass}; see the checks above)` };
  return { id, status: 'skip', target, details: `the relay was not reached: ${redact(describeError(error))}` };
}

/** Opens one real tunnel (the connector's session code), waits for the relay's hello, closes it. */
async function tunnelCheck(dialer: EgressDialer, backend: BackendRequester, endpoint: Endpoint, transport: 'tcp' | 'https', state: ConnectorState, config: ConnectorConfig, timeoutMs: number): Promise<CheckResult> {
  const target = formatHostPort(endpoint.host, endpoint.port);
  const abort = new AbortController();
  let up = false;
  let route = 'DIRECT';
  const tracing: EgressDialer = {
    ...dialer,
    dialTls: async (request, tlsOptions) => {
      const result = await dialer.dialTls(request, tlsOptions);
      route = result.traces.at(-1)?.proxy ? `via ${result.traces.at(-1)!.proxy}` : 'DIRECT';
      return result;
    },
  };
  const limit = setTimeout(() => abort.abort(), timeoutMs * 3);
  const appClient = new AppClient(backend);
  try {
    const outcome = await serveTunnelOnce({
      dialer: tracing,
      state,
      target: { host: endpoint.host, port: endpoint.port, servername: endpoint.host, transport },
      logger: silentLogger,
      pingIntervalMs: config.pingIntervalMs,
      connectTimeoutMs: timeoutMs,
      // A user request that arrives during the probe is served like the connector would.
      onStream: (stream, headers) => serveBackendStream(stream, headers, backend, appClient, silentLogger),
      onUp: () => {
        up = true;
        abort.abort();
      },
      signal: abort.signal,
    });
    const error = outcome.error;
    if (error instanceof DialError) {
      return { id: `tunnel:${transport}`, status: severity({ ok: false, errorClass: error.errorClass }, endpoint.need), target, details: redact(error.message), fix: error.errorClass === 'connect-timeout' ? fixFor('connect-timeout', target) : error.fix ?? fixFor(error.errorClass), errorClass: error.errorClass };
    }
    if (up) return { id: `tunnel:${transport}`, status: 'pass', target, details: `tunnel established ${route}; the relay said hello` };
    return { id: `tunnel:${transport}`, status: severity({ ok: false }, endpoint.need), target, details: error ? redact(describeError(error)) : `the relay did not say hello within ${timeoutMs * 3} ms`, fix: 'check the relay\'s log for this connector' };
  } finally {
    clearTimeout(limit);
    abort.abort();
    appClient.close();
  }
}

async function backendCheck(requester: BackendRequester, raw: string, timeoutMs: number, viaProxy: boolean): Promise<CheckResult> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { id: `backend:${raw}`, status: 'fail', target: raw, details: 'not an absolute http(s) URL', fix: 'pass the internal URL, e.g. --backend http://10.0.0.5:8080/' };
  }
  const id = `backend:${url.host}`;
  try {
    const plan = await requester.plan(url, { method: 'GET', timeout: timeoutMs });
    const status = await new Promise<number>((resolve, reject) => {
      const req = (plan.protocol === 'https:' ? https : http).request(plan.options, (res) => {
        res.resume();
        // A proxy's 407 says nothing about the app: it is the proxy check that fails.
        const refused = proxyAnswerError(plan, res);
        if (refused) reject(refused);
        else resolve(res.statusCode ?? 0);
      });
      req.on('timeout', () => req.destroy(new DialError('connect-timeout', `the backend ${url.host} did not answer within ${timeoutMs} ms`, { target: url.host, phase: 'session' })));
      req.on('error', reject);
      req.end();
    });
    return { id, status: 'pass', target: redact(url.href), details: `answered HTTP ${status} (${plan.via}${viaProxy ? ', backend proxy on' : ''})` };
  } catch (error) {
    const errorClass: DialFailureClass | undefined = error instanceof DialError ? error.errorClass : undefined;
    return { id, status: 'fail', target: redact(url.href), details: redact(describeError(error).split('\n')[0] ?? ''), fix: errorClass ? fixFor(errorClass, url.host) : 'check that the app runs and listens on this address', ...(errorClass ? { errorClass } : {}) };
  }
}
