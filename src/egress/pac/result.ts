// Strict parsing of a FindProxyForURL answer into Ferry routes.
import type { Route } from '../types.js';
import { isIPv6 } from 'node:net';
import type { ParsedPacResult } from './types.js';

/**
 * Keyword → route kind. `SOCKS` means SOCKS4 (that is what Chrome and Firefox do with a bare
 * `SOCKS host:port`; a script that wants SOCKS5 must say `SOCKS5`). `HTTP` is Chrome's synonym of PROXY.
 */
const KINDS: Record<string, Exclude<Route['kind'], 'DIRECT'>> = {
  PROXY: 'PROXY',
  HTTP: 'PROXY',
  HTTPS: 'HTTPS',
  SOCKS: 'SOCKS4',
  SOCKS4: 'SOCKS4',
  SOCKS5: 'SOCKS5',
};

const HOST_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;

/** Splits "host:port" / "[v6]:port"; returns a reason string when malformed. */
function parseHostPort(text: string): { host: string; port: number } | string {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return 'unclosed [ in IPv6 address';
    host = text.slice(1, close);
    if (!isIPv6(host)) return `"${host}" is not an IPv6 address`;
    if (text[close + 1] !== ':') return 'missing :port after the IPv6 address';
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return 'missing :port';
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return 'an IPv6 address must be written in brackets, e.g. [2001:db8::1]:8080';
    if (!HOST_NAME.test(host)) return `"${host}" is not a valid host name`;
  }
  if (!/^\d{1,5}$/.test(portText)) return `"${portText}" is not a port number`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `port ${port} is outside 1-65535`;
  return { host, port };
}

/** Parses `PROXY a:1; SOCKS5 b:2; DIRECT`. An empty (or blank) answer means DIRECT. */
export function parsePacResult(text: string): ParsedPacResult {
  const routes: Route[] = [];
  const invalid: ParsedPacResult['invalid'] = [];
  if (text.trim() === '') return { routes: [{ kind: 'DIRECT' }], invalid };
  for (const raw of text.split(';')) {
    const entry = raw.trim();
    if (entry === '') continue; // "PROXY a:1;" has a trailing separator, which browsers accept.
    const words = entry.split(/\s+/);
    const keyword = words[0].toUpperCase();
    if (keyword === 'DIRECT') {
      if (words.length === 1) routes.push({ kind: 'DIRECT' });
      else invalid.push({ entry, reason: 'DIRECT takes no host:port' });
      continue;
    }
    const kind = KINDS[keyword];
    if (!kind) {
      invalid.push({ entry, reason: `unknown keyword "${words[0]}" (expected PROXY, HTTP, HTTPS, SOCKS, SOCKS4, SOCKS5 or DIRECT)` });
      continue;
    }
    if (words.length !== 2) {
      invalid.push({ entry, reason: words.length < 2 ? `${keyword} needs host:port` : `${keyword} takes exactly one host:port` });
      continue;
    }
    const hostPort = parseHostPort(words[1]);
    if (typeof hostPort === 'string') invalid.push({ entry, reason: hostPort });
    else routes.push({ kind, host: hostPort.host, port: hostPort.port });
  }
  return { routes, invalid };
}

/** The route in PAC notation, for logs and provenance (IPv6 hosts in brackets). */
export function formatRoute(route: Route): string {
  if (route.kind === 'DIRECT') return 'DIRECT';
  const host = route.host.includes(':') ? `[${route.host}]` : route.host;
  return `${route.kind} ${host}:${route.port}`;
}
