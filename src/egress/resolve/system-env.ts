// The Linux "system proxy settings" (the analogue of the service account's WinINet settings, doc §10):
// HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY, upper or lower case, with curl's conventions:
// lowercase wins over uppercase, an empty value is unset, a proxy without a scheme is http://, a proxy
// without a port uses 1080 (443 for https://), NO_PROXY is a comma list of host suffixes, IP
// addresses and CIDR blocks, and `*` alone bypasses everything.
// Deliberate difference from curl: uppercase HTTP_PROXY is honoured too (curl ignores it only to
// protect CGI programs from the "httpoxy" header injection, which does not apply to a service).
import { BlockList, isIP } from 'node:net';
import type { Route } from '../types.js';

export interface SystemProxyEntry {
  route: Exclude<Route, { kind: 'DIRECT' }>;
  /** e.g. `HTTPS_PROXY=http://proxy:3128` (credentials redacted). */
  describe: string;
}

export interface NoProxyRule {
  entry: string;
  matches(host: string): boolean;
}

export interface SystemProxy {
  /** Per-scheme proxies: `http` serves http:/ws:, `https` serves https:/wss:. */
  perScheme: { http?: SystemProxyEntry; https?: SystemProxyEntry };
  noProxy: NoProxyRule[];
  /** The NO_PROXY text as found (for provenance). */
  noProxyText?: string;
  /** Problems found while reading the environment (ignored entries), for provenance notes. */
  warnings: string[];
}

function envValue(env: NodeJS.ProcessEnv, name: string): { name: string; value: string } | undefined {
  for (const candidate of [name.toLowerCase(), name.toUpperCase()]) {
    const value = env[candidate]?.trim();
    if (value) return { name: candidate, value };
  }
  return undefined;
}

const KIND_FOR_SCHEME: Record<string, { kind: SystemProxyEntry['route']['kind']; port: number }> = {
  'http:': { kind: 'PROXY', port: 1080 },
  'https:': { kind: 'HTTPS', port: 443 },
  'socks4:': { kind: 'SOCKS4', port: 1080 },
  'socks4a:': { kind: 'SOCKS4', port: 1080 },
  'socks5:': { kind: 'SOCKS5', port: 1080 },
  'socks5h:': { kind: 'SOCKS5', port: 1080 },
};

/** Parses a curl-style proxy value (`proxy:3128`, `http://u:p@proxy`, `socks5h://proxy:1080`). */
export function parseEnvProxy(name: string, value: string): SystemProxyEntry | string {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${name} is not a valid proxy URL; ignored`;
  }
  const scheme = KIND_FOR_SCHEME[url.protocol];
  if (!scheme || !url.hostname) return `${name} uses an unsupported proxy scheme ${url.protocol}; ignored`;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const route: SystemProxyEntry['route'] = { kind: scheme.kind, host, port: url.port ? Number(url.port) : scheme.port };
  if (url.username) route.username = decodeURIComponent(url.username);
  if (url.password) route.password = decodeURIComponent(url.password);
  const shown = `${url.protocol}//${url.username ? `${url.username}${url.password ? ':***' : ''}@` : ''}${url.host}`;
  return { route, describe: `${name}=${shown}` };
}

/** One NO_PROXY entry: host suffix (leading dot optional), IP address, or CIDR block. */
export function parseNoProxyEntry(raw: string): NoProxyRule | undefined {
  const entry = raw.trim().toLowerCase();
  if (!entry) return undefined;
  if (entry === '*') return { entry, matches: () => true };
  const cidr = /^\[?([0-9a-f:.]+)\]?\/(\d{1,3})$/.exec(entry);
  if (cidr && isIP(cidr[1]!)) {
    const family = isIP(cidr[1]!) === 4 ? 'ipv4' : 'ipv6';
    const list = new BlockList();
    try {
      list.addSubnet(cidr[1]!, Number(cidr[2]), family);
    } catch {
      return undefined;
    }
    return { entry, matches: (host) => isIP(host) !== 0 && list.check(host, isIP(host) === 4 ? 'ipv4' : 'ipv6') };
  }
  const bare = entry.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare)) return { entry, matches: (host) => host.toLowerCase() === bare };
  const domain = bare.replace(/^\*?\./, '').replace(/\.$/, '');
  return { entry, matches: (host) => {
    const h = host.toLowerCase().replace(/\.$/, '');
    return h === domain || h.endsWith(`.${domain}`);
  } };
}

/** Reads the system proxy settings from an environment. */
export function readSystemProxy(env: NodeJS.ProcessEnv): SystemProxy {
  const system: SystemProxy = { perScheme: {}, noProxy: [], warnings: [] };
  const all = envValue(env, 'ALL_PROXY');
  for (const [scheme, name] of [['http', 'HTTP_PROXY'], ['https', 'HTTPS_PROXY']] as const) {
    const found = envValue(env, name) ?? all;
    if (!found) continue;
    const parsed = parseEnvProxy(found.name, found.value);
    if (typeof parsed === 'string') system.warnings.push(parsed);
    else system.perScheme[scheme] = parsed;
  }
  const noProxy = envValue(env, 'NO_PROXY');
  if (noProxy) {
    system.noProxyText = `${noProxy.name}=${noProxy.value}`;
    for (const raw of noProxy.value.split(/[,\s]+/)) {
      const rule = parseNoProxyEntry(raw);
      if (rule) system.noProxy.push(rule);
    }
  }
  return system;
}
