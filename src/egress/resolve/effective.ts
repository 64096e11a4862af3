// From settings layers to one effective proxy object per caller: doc §1 (all-or-nothing override by
// the service file over the machine-wide file) and §3 (DefaultProxySectionInternal, verbatim logic).
// Pure: no I/O, so every branch is table-tested.
import type { ProxySettingsLayer, SettingOrigin } from '../../config/proxy-settings.js';
import type { Route } from '../types.js';
import type { SystemProxy } from './system-env.js';

export interface ProxyAddress {
  route: Exclude<Route, { kind: 'DIRECT' }>;
  describe: string;
  origin?: SettingOrigin;
}

export interface BypassRule {
  describe: string;
  origin?: SettingOrigin;
  /** `target` = `scheme://host[:port]` for config regexes; `host` for NO_PROXY rules. */
  matches(target: string, host: string): boolean;
}

/** What .NET's WebProxy would hold after the section was applied. */
export interface EffectiveProxy {
  /** 'direct': no proxy object at all (enabled=false, or usesystemdefault=false alone). */
  mode: 'direct' | 'webproxy';
  /** The layer that decided, or undefined when neither file defines a section (system default). */
  layer?: ProxySettingsLayer;
  source: 'config' | 'machine-config' | 'system';
  /** The sentence saying why this object looks the way it does, with file:line. */
  basis: string;
  file?: string;
  line?: number;
  autoDetect: boolean;
  scriptLocation?: string;
  /** The manual rule (doc §4.2): a single address, or the system's per-scheme table. */
  address?: ProxyAddress;
  perScheme?: SystemProxy['perScheme'];
  bypassOnLocal: boolean;
  bypass: BypassRule[];
  /** Settings that were written but have no effect, and why. */
  notes: string[];
}

const DEFAULT_PORT: Record<string, { kind: ProxyAddress['route']['kind']; port: number }> = {
  'http:': { kind: 'PROXY', port: 80 },
  'https:': { kind: 'HTTPS', port: 443 },
  'socks4:': { kind: 'SOCKS4', port: 1080 },
  'socks5:': { kind: 'SOCKS5', port: 1080 },
};

/** Turns a validated config address (`http://host[:port]`) into a route. */
export function addressToRoute(address: string): ProxyAddress['route'] {
  const url = new URL(address);
  const scheme = DEFAULT_PORT[url.protocol] ?? DEFAULT_PORT['http:']!;
  return { kind: scheme.kind, host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port ? Number(url.port) : scheme.port };
}

const where = (origin: SettingOrigin | undefined): string => (origin ? `${origin.file}:${origin.line}` : '');

/** doc §1: the service file's section wins entirely; without one, the machine-wide file's section. */
export function chooseLayer(service: ProxySettingsLayer | undefined, machine: ProxySettingsLayer | undefined): ProxySettingsLayer | undefined {
  if (service?.defined) return service;
  if (machine?.defined) return machine;
  return undefined;
}

function systemBypass(system: SystemProxy): BypassRule[] {
  return system.noProxy.map((rule) => ({
    describe: `NO_PROXY entry "${rule.entry}"`,
    matches: (_target: string, host: string) => rule.matches(host),
  }));
}

/** doc §3, applied to the chosen layer (or to none: the system default with auto-proxy). */
export function buildEffectiveProxy(layer: ProxySettingsLayer | undefined, system: SystemProxy, source: 'config' | 'machine-config'): EffectiveProxy {
  const systemWithAutoProxy = (basis: string, from?: ProxySettingsLayer): EffectiveProxy => ({
    mode: 'webproxy',
    ...(from ? { layer: from, file: from.file, line: from.origins.section?.line } : {}),
    source: from ? source : 'system',
    basis,
    autoDetect: true,
    perScheme: system.perScheme,
    bypassOnLocal: false,
    bypass: systemBypass(system),
    notes: [...system.warnings],
  });

  if (!layer) {
    return systemWithAutoProxy('no proxy section in the service or machine-wide config: system settings (environment) with auto-detection (WPAD)');
  }
  const sectionAt = where(layer.origins.section);
  const base = { layer, source, file: layer.file, line: layer.origins.section?.line, notes: [] as string[] };

  if (!layer.enabled) {
    const origin = layer.origins.enabled;
    return { ...base, line: origin?.line ?? base.line, mode: 'direct', basis: `${where(origin)} enabled=false: no proxy, every request DIRECT`, autoDetect: false, bypassOnLocal: false, bypass: [] };
  }
  const p = layer.proxy;
  const nothingElseSet = p.autoDetect === 'unspecified' && !p.scriptLocation && p.useSystemDefault !== 'true'
    && !p.address && p.bypassOnLocal === 'unspecified' && layer.bypassList.length === 0;
  if (nothingElseSet) {
    if (p.useSystemDefault === 'false') {
      const origin = layer.origins.useSystemDefault;
      return { ...base, line: origin?.line ?? base.line, mode: 'direct', basis: `${where(origin)} usesystemdefault=false and nothing else set: no proxy, every request DIRECT`, autoDetect: false, bypassOnLocal: false, bypass: [] };
    }
    return systemWithAutoProxy(`${sectionAt} proxy section sets nothing: system settings (environment) with auto-detection (WPAD)`, layer);
  }

  let effective: EffectiveProxy;
  if (p.useSystemDefault === 'true' && p.autoDetect === 'unspecified' && !p.scriptLocation) {
    // WebProxy(false): the system static proxy and bypass list, auto-proxy (WPAD/PAC) disabled.
    effective = {
      ...base,
      mode: 'webproxy',
      basis: `${where(layer.origins.useSystemDefault)} usesystemdefault=true: system proxy settings (environment) without auto-detection`,
      autoDetect: false,
      perScheme: system.perScheme,
      bypassOnLocal: false,
      bypass: systemBypass(system),
      notes: [...system.warnings],
    };
  } else {
    effective = { ...base, mode: 'webproxy', basis: `${sectionAt} proxy section`, autoDetect: false, bypassOnLocal: false, bypass: [] };
  }

  // The setters in .NET's order; bypassonlocal, proxyaddress and a bypass list each delete the script engine.
  let scriptKilledBy: string | undefined;
  if (p.autoDetect !== 'unspecified') effective.autoDetect = p.autoDetect === 'true';
  if (p.scriptLocation) effective.scriptLocation = p.scriptLocation;
  if (p.bypassOnLocal !== 'unspecified') {
    effective.bypassOnLocal = p.bypassOnLocal === 'true';
    scriptKilledBy ??= `bypassonlocal (${where(layer.origins.bypassOnLocal)})`;
  }
  if (p.address) {
    const route = addressToRoute(p.address);
    effective.address = { route, describe: `${where(layer.origins.address)} proxyaddress=${p.address}`, origin: layer.origins.address };
    delete effective.perScheme;
    scriptKilledBy ??= `proxyaddress (${where(layer.origins.address)})`;
  }
  if (layer.bypassList.length) {
    effective.bypass = layer.bypassList.map((entry) => ({
      describe: `${where(entry.origin)} bypass regex "${entry.pattern}"`,
      origin: entry.origin,
      matches: (target: string) => entry.regex.test(target),
    }));
    scriptKilledBy ??= `the bypass list (${where(layer.origins.bypassList)})`;
  }
  if (scriptKilledBy && (effective.autoDetect || effective.scriptLocation)) {
    const what = [effective.autoDetect ? 'autoDetect' : '', effective.scriptLocation ? 'scriptLocation' : ''].filter(Boolean).join(' and ');
    effective.notes.push(`${what} ignored: ${scriptKilledBy} is also set, and .NET then discards the PAC/WPAD engine; remove one of them`);
    effective.autoDetect = false;
    delete effective.scriptLocation;
  }
  if (effective.address) effective.basis = effective.address.describe;
  return effective;
}
