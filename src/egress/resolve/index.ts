// src/egress/resolve — the one proxy resolver ("how do I reach URL X?") for the connector, the updater,
// the backend requests and the doctor. Imports src/config (settings layers), src/shared, ../pac,
// ../wpad and ../types; never the services or the CLI.
//
// Decision order for one URL and caller (DESIGN.md "Proxy resolution", /work/shared/dotnet-defaultproxy.md):
//   0. loopback destinations: always DIRECT;
//   1. the caller's layer (backend: its own, else the connector's) if it defines a proxy section, else
//      the machine-wide layer, else nothing (system default) — all-or-nothing (doc §1);
//   2. that layer becomes one effective proxy object (doc §3, ./effective.ts);
//   3. script first (WPAD when auto-detection applies, else scriptLocation): its routes, then the manual
//      rule as the final fail-over entry; a script error means DIRECT for that request, a discovery or
//      download failure leaves the manual rule alone (doc §7);
//   4. the manual rule (doc §4.2, ./manual.ts).
// Decisions are cached per caller and host (bounded, with a TTL) and dropped when a WPAD script changes
// or invalidate() is called after a config reload; a scriptLocation script is fetched once per WPAD
// TTL (a failed fetch retried after the negative TTL), not per decision.
import { createHash } from 'node:crypto';
import { loadOptionalProxySettingsFile, loadProxySettingsFile, type ConfiguredProxyCredentials, type ProxySettingsLayer } from '../../config/proxy-settings.js';
import { createPacEngine, formatRoute, PacDecisionCache, PacError, parsePacResult, type PacEngine, type PacLimits } from '../pac/index.js';
import type { Caller, Provenance, ProxyResolver, Route, RouteDecision } from '../types.js';
import { createLookup, DEFAULT_WPAD_NEGATIVE_TTL_MS, DEFAULT_WPAD_TTL_MS, fetchScriptLocation, WpadDiscovery, type WpadOptions, type WpadResult, type WpadSource } from '../wpad/index.js';
import { buildEffectiveProxy, chooseLayer, type EffectiveProxy } from './effective.js';
import { machineAddresses, readLocalDnsDomain } from './local-facts.js';
import { bareHost, decideManual, isLoopbackHost, type LocalFacts } from './manual.js';
import { readSystemProxy } from './system-env.js';

export { buildEffectiveProxy, chooseLayer, type EffectiveProxy } from './effective.js';
export { bypassTarget, decideManual, isLocalHost, isLoopbackHost, type LocalFacts } from './manual.js';
export { parseResolvConfDomain, readLocalDnsDomain, machineAddresses } from './local-facts.js';
export { readSystemProxy, parseNoProxyEntry, type SystemProxy } from './system-env.js';

/** The machine-wide settings file (the analogue of .NET's machine.config). */
export const DEFAULT_MACHINE_CONFIG = '/etc/ferry/machine.config';

export interface ResolverWpadSettings {
  /** DNS suffix to walk (default: the layer's wpad.domainSuffix, then dnsDomain). */
  domainSuffix?: string;
  dnsServers?: string[];
  /** wpad.dat port (default 80). */
  port?: number;
  ttlMs?: number;
  negativeTtlMs?: number;
  timeoutMs?: number;
  maxBytes?: number;
  /** Re-run discovery in the background every so many ms (unset: only when the cached answer expires). */
  recheckMs?: number;
}

export interface ProxyResolverOptions {
  /** The services' own layers; `backend` falls back to `connector` when absent. */
  layers?: Partial<Record<Caller, ProxySettingsLayer>>;
  /** The machine-wide layer, if its file exists. */
  machine?: ProxySettingsLayer;
  /** The environment holding HTTPS_PROXY & co. (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** The machine's primary DNS domain (IsLocal, default WPAD suffix). */
  dnsDomain?: string;
  /** The machine's addresses (IsLocal for IP literals, PAC myIpAddress). */
  localAddresses?: string[];
  wpad?: ResolverWpadSettings;
  pacLimits?: PacLimits;
  cache?: { maxEntries?: number; ttlMs?: number };
  /** Injectable parts, for tests. */
  deps?: {
    createPacEngine?: typeof createPacEngine;
    createWpadDiscovery?: (options: WpadOptions) => WpadSource;
    fetchScript?: (location: string) => Promise<string>;
    now?: () => Date;
  };
}

export interface ManagedProxyResolver extends ProxyResolver {
  /** The effective proxy object for a caller (what `proxy show` and the doctor explain). */
  effective(caller: Caller): EffectiveProxy;
  /** Drops every cached decision (after a config reload). */
  invalidate(): void;
  /** Disposes PAC engines and stops WPAD re-checks. */
  close(): void;
}

interface ScriptSource {
  kind: 'wpad' | 'pac';
  key: string;
  text: string;
  describe: string;
  file?: string;
  line?: number;
}

/** useDefaultCredentials="true" with no configured credentials: the service's own Kerberos identity. */
const DEFAULT_CREDENTIALS: ConfiguredProxyCredentials = Object.freeze({ scheme: 'negotiate', onlyWhenAsked: true });

export function createProxyResolver(options: ProxyResolverOptions = {}): ManagedProxyResolver {
  const env = options.env ?? process.env;
  const system = readSystemProxy(env);
  const facts: LocalFacts = { dnsDomain: options.dnsDomain?.toLowerCase().replace(/\.$/, ''), localAddresses: options.localAddresses ?? [] };
  const createEngine = options.deps?.createPacEngine ?? createPacEngine;
  const fetchScript = options.deps?.fetchScript ?? ((location: string) => fetchScriptLocation(location, { timeoutMs: options.wpad?.timeoutMs, maxBytes: options.wpad?.maxBytes }));
  const now = options.deps?.now ?? (() => new Date());
  const decisions = new PacDecisionCache<RouteDecision>({ maxEntries: options.cache?.maxEntries ?? 1024, ttlMs: options.cache?.ttlMs ?? 60_000 });
  const engines = new Map<string, { sha1: string; engine: Promise<PacEngine> }>();
  const discoveries = new Map<string, WpadSource>();
  let generation = 0;

  const effectiveByCaller = new Map<Caller, EffectiveProxy>();
  const effective = (caller: Caller): EffectiveProxy => {
    let found = effectiveByCaller.get(caller);
    if (!found) {
      const service = caller === 'backend' ? options.layers?.backend ?? options.layers?.connector : options.layers?.[caller];
      const layer = chooseLayer(service, options.machine);
      found = buildEffectiveProxy(layer, system, layer && layer === options.machine ? 'machine-config' : 'config');
      effectiveByCaller.set(caller, found);
    }
    return found;
  };

  // scriptLocation scripts are fetched once per WPAD TTL, not per decision: a decision-cache miss
  // (each new host, and each new path of a plain-http URL) fetched the script again, inline. A
  // failed fetch is kept for the negative TTL, so a dead script server is not asked per request.
  const scripts = new Map<string, { until: number; text: Promise<string> }>();
  const scriptAt = (location: string): Promise<string> => {
    const at = now().getTime();
    const cached = scripts.get(location);
    if (cached && at < cached.until) return cached.text;
    const entry = { until: at + (options.wpad?.ttlMs ?? DEFAULT_WPAD_TTL_MS), text: fetchScript(location) };
    entry.text.catch(() => {
      entry.until = now().getTime() + (options.wpad?.negativeTtlMs ?? DEFAULT_WPAD_NEGATIVE_TTL_MS);
    });
    scripts.set(location, entry);
    return entry.text;
  };

  const invalidate = (): void => {
    generation += 1;
    decisions.clear();
    scripts.clear();
  };

  const wpadSettingsFor = (eff: EffectiveProxy): { suffix?: string; servers?: string[]; port?: number } => ({
    suffix: eff.layer?.wpad?.domainSuffix ?? options.wpad?.domainSuffix ?? facts.dnsDomain,
    servers: eff.layer?.wpad?.dnsServers ?? options.wpad?.dnsServers,
    port: eff.layer?.wpad?.port ?? options.wpad?.port,
  });

  const discoveryFor = (suffix: string, servers: string[] | undefined, port: number | undefined): WpadSource => {
    const key = `${suffix}|${(servers ?? []).join(',')}|${port ?? 80}`;
    let discovery = discoveries.get(key);
    if (!discovery) {
      const wpadOptions: WpadOptions = {
        domainSuffix: suffix,
        ...(servers ? { dnsServers: servers } : {}),
        port,
        ttlMs: options.wpad?.ttlMs,
        negativeTtlMs: options.wpad?.negativeTtlMs,
        timeoutMs: options.wpad?.timeoutMs,
        maxBytes: options.wpad?.maxBytes,
      };
      discovery = options.deps?.createWpadDiscovery?.(wpadOptions) ?? new WpadDiscovery(wpadOptions);
      discovery.onChange(invalidate);
      if (options.wpad?.recheckMs) discovery.startRechecking?.(options.wpad.recheckMs);
      discoveries.set(key, discovery);
    }
    return discovery;
  };

  const pacLookups = new Map<string, (name: string) => Promise<string[]>>();
  const engineFor = (source: ScriptSource, dnsServers: string[] | undefined): Promise<PacEngine> => {
    const sha1 = hashOf(source.text);
    const current = engines.get(source.key);
    if (current && current.sha1 === sha1) return current.engine;
    if (current) {
      void current.engine.then((old) => old.dispose(), () => undefined);
      invalidate();
    }
    const lookupKey = (dnsServers ?? []).join(',');
    let lookup = pacLookups.get(lookupKey);
    if (!lookup) pacLookups.set(lookupKey, (lookup = createLookup(dnsServers)));
    const resolveName = lookup;
    const engine = createEngine(source.text, {
      resolve: (host) => resolveName(host),
      myAddresses: () => facts.localAddresses.filter((a) => !isLoopbackHost(a)).concat(facts.localAddresses.filter((a) => isLoopbackHost(a))),
      now,
    }, options.pacLimits);
    engines.set(source.key, { sha1, engine });
    return engine;
  };

  async function decide(url: URL, caller: Caller): Promise<RouteDecision> {
    const host = bareHost(url);
    if (isLoopbackHost(host)) {
      return { routes: [{ kind: 'DIRECT' }], provenance: { source: 'loopback', detail: `${host} is a loopback destination: always DIRECT` } };
    }
    const eff = effective(caller);
    // useDefaultCredentials (as in .NET: the service account's credentials): Negotiate with the
    // service's Kerberos identity, when the proxy asks; configured credentials win.
    const credentials = eff.layer?.credentials ?? (eff.layer?.useDefaultCredentials ? DEFAULT_CREDENTIALS : undefined);
    const withCredentials = (decision: RouteDecision): RouteDecision =>
      credentials && decision.routes.some((r) => r.kind === 'PROXY' || r.kind === 'HTTPS') ? { ...decision, proxyCredentials: credentials } : decision;
    const place = eff.file ? { file: eff.file, ...(eff.line ? { line: eff.line } : {}) } : {};
    if (eff.mode === 'direct') {
      return { routes: [{ kind: 'DIRECT' }], provenance: { source: eff.source, detail: eff.basis, ...place } };
    }
    const notes = [...eff.notes];
    const manual = decideManual(eff, url, facts);

    let script: ScriptSource | undefined;
    let wpad: Provenance['wpad'];
    const { suffix, servers, port } = wpadSettingsFor(eff);
    if (eff.autoDetect) {
      if (!suffix) {
        notes.push('auto-detection (WPAD) skipped: no DNS suffix known; set proxy.wpad.domainSuffix, or a domain/search line in /etc/resolv.conf');
      } else {
        const result: WpadResult = await discoveryFor(suffix, servers, port).discover();
        wpad = { tried: result.tried };
        if (result.found) {
          wpad.url = result.url;
          script = { kind: 'wpad', key: `wpad|${result.url}`, text: result.script, describe: `WPAD ${result.name} → ${result.url}` };
        } else {
          notes.push(`WPAD found no script (tried ${result.tried.join(', ') || 'no name'}): ${result.reason}`);
        }
      }
    }
    if (!script && eff.scriptLocation) {
      const origin = eff.layer?.origins.scriptLocation;
      try {
        const text = await scriptAt(eff.scriptLocation);
        script = { kind: 'pac', key: `pac|${eff.scriptLocation}`, text, describe: `${origin ? `${origin.file}:${origin.line} ` : ''}scriptLocation ${eff.scriptLocation}`, ...(origin ? { file: origin.file, line: origin.line } : {}) };
      } catch (error) {
        notes.push(`scriptLocation ${eff.scriptLocation} could not be fetched: ${(error as Error).message}`);
      }
    }

    if (script) {
      let routes: Route[];
      let pacResult: string | undefined;
      let detail: string;
      try {
        const engine = await engineFor(script, servers);
        pacResult = await engine.findProxy(pacUrl(url), host);
        const parsed = parsePacResult(pacResult);
        for (const bad of parsed.invalid) notes.push(`PAC entry "${bad.entry}" ignored: ${bad.reason}`);
        routes = parsed.routes.length ? parsed.routes : [{ kind: 'DIRECT' }];
        detail = `${script.describe}, PAC returned "${pacResult}"`;
      } catch (error) {
        if (!(error instanceof PacError)) throw error;
        // WinHTTP maps a bad script to "completed, no proxy": DIRECT for this request (doc §7).
        routes = [{ kind: 'DIRECT' }];
        detail = `${script.describe}, PAC failed (${error.pacClass}): ${error.message} → DIRECT`;
      }
      const failover = manual.route;
      if (!routes.some((r) => formatRoute(r) === formatRoute(failover))) {
        routes = [...routes, failover];
        notes.push(`fail-over after the PAC entries: ${formatRoute(failover)} (${manual.reason})`);
      }
      const provenance: Provenance = { source: script.kind, detail, ...(script.file ? { file: script.file, line: script.line } : {}) };
      if (pacResult !== undefined) provenance.pacResult = pacResult;
      if (wpad) provenance.wpad = wpad;
      if (notes.length) provenance.notes = notes;
      return withCredentials({ routes, provenance });
    }

    const fromEnv = manual.route.kind !== 'DIRECT' && !eff.address && eff.perScheme;
    const source = fromEnv ? 'env' : eff.source === 'system' ? 'default' : eff.source;
    const origin = manual.origin ?? (eff.file ? { file: eff.file, line: eff.line } : undefined);
    const reason = manual.route.kind === 'DIRECT' && !manual.reason.includes('DIRECT') ? `${manual.reason} → DIRECT` : manual.reason;
    const detail = manual.reason === eff.basis ? eff.basis : `${eff.basis}; ${reason}`;
    const provenance: Provenance = { source, detail, ...(origin?.file ? { file: origin.file, ...(origin.line ? { line: origin.line } : {}) } : {}) };
    if (wpad) provenance.wpad = wpad;
    if (notes.length) provenance.notes = notes;
    return withCredentials({ routes: [manual.route], provenance });
  }

  return {
    effective,
    invalidate,
    async resolve(url: URL, caller: Caller): Promise<RouteDecision> {
      const key = { engineSha1: `${caller}|${generation}`, scheme: url.protocol, host: cacheHost(url) };
      const hit = decisions.get(key);
      if (hit) return structuredClone(hit);
      const decision = await decide(url, caller);
      decisions.set(key, decision);
      return structuredClone(decision);
    },
    close(): void {
      for (const discovery of discoveries.values()) discovery.stopRechecking();
      for (const { engine } of engines.values()) void engine.then((e) => e.dispose(), () => undefined);
      engines.clear();
      decisions.clear();
    },
  };
}

/** What the PAC script sees: for https/wss only the origin (as browsers do), for http the full URL. */
function pacUrl(url: URL): string {
  if (url.protocol === 'https:' || url.protocol === 'wss:') return `${url.protocol}//${url.host}/`;
  return `${url.protocol}//${url.host}${url.pathname}${url.search}`;
}

function cacheHost(url: URL): string {
  return url.protocol === 'https:' || url.protocol === 'wss:' ? url.host : `${url.host}${url.pathname}${url.search}`;
}

function hashOf(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

export interface ResolverFiles {
  /** Service config files per caller (XML .config or Ferry YAML). */
  connector?: string;
  updater?: string;
  backend?: string;
  /** Machine-wide file; default DEFAULT_MACHINE_CONFIG; a missing file means no layer; null = none. */
  machine?: string | null;
  /** Where to read the DNS domain when not configured (default /etc/resolv.conf). */
  resolvConf?: string;
}

/** Loads the files and the machine facts into resolver options (all-or-nothing: throws ConfigError). */
export async function loadProxyResolverOptions(files: ResolverFiles, base: ProxyResolverOptions = {}): Promise<ProxyResolverOptions> {
  const layers: Partial<Record<Caller, ProxySettingsLayer>> = { ...base.layers };
  for (const caller of ['connector', 'updater', 'backend'] as const) {
    const path = files[caller];
    if (path) layers[caller] = await loadProxySettingsFile(path);
  }
  const machinePath = files.machine === undefined ? DEFAULT_MACHINE_CONFIG : files.machine;
  const machine = machinePath ? await loadOptionalProxySettingsFile(machinePath) : undefined;
  const dnsDomain = base.dnsDomain ?? (await readLocalDnsDomain(files.resolvConf));
  return {
    ...base,
    layers,
    ...(machine ? { machine } : base.machine ? { machine: base.machine } : {}),
    ...(dnsDomain ? { dnsDomain } : {}),
    localAddresses: base.localAddresses ?? machineAddresses(),
  };
}
