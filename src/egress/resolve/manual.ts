// The manual rule for one destination (doc §4.2, §5, §6): loopback, no address, bypassonlocal with
// the primary-domain IsLocal rule, the bypass list, the per-scheme table. Pure.
import { isIP } from 'node:net';
import type { Route } from '../types.js';
import type { EffectiveProxy } from './effective.js';

export interface LocalFacts {
  /** The machine's primary DNS suffix (IPGlobalProperties.DomainName), lower case, no trailing dot. */
  dnsDomain?: string;
  /** This machine's interface addresses. */
  localAddresses: string[];
}

export interface ManualDecision {
  route: Route;
  reason: string;
  /** The setting that decided, when a config file did. */
  origin?: { file: string; line: number };
}

/** The host as the URL holds it, without IPv6 brackets. */
export function bareHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}

/** Uri.IsLoopback: localhost, loopback, 127.0.0.0/8, ::1 (and the IPv4-mapped form). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h === 'localhost' || h === 'loopback' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h) || /^::ffff:7f[0-9a-f]{2}:/.test(h);
  return false;
}

/** doc §5, WebProxy.IsLocal (the reference source, not the documentation note). */
export function isLocalHost(host: string, facts: LocalFacts): boolean {
  if (isIP(host)) return isLoopbackHost(host) || facts.localAddresses.some((a) => a.toLowerCase() === host.toLowerCase());
  const dot = host.indexOf('.');
  if (dot === -1) return true;
  if (!facts.dnsDomain) return false;
  return host.slice(dot).toLowerCase() === `.${facts.dnsDomain.toLowerCase().replace(/\.$/, '')}`;
}

/** The string .NET matches bypass regexes against: `scheme://host[:port]`, port only when not default. */
export function bypassTarget(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

function schemeOf(url: URL): 'http' | 'https' | undefined {
  if (url.protocol === 'http:' || url.protocol === 'ws:') return 'http';
  if (url.protocol === 'https:' || url.protocol === 'wss:') return 'https';
  return undefined;
}

/** doc §4.2: DIRECT when any rule holds, else the proxy. */
export function decideManual(effective: EffectiveProxy, url: URL, facts: LocalFacts): ManualDecision {
  const host = bareHost(url);
  if (isLoopbackHost(host)) return { route: { kind: 'DIRECT' }, reason: 'loopback destination' };
  const perSchemeEntry = effective.perScheme ? effective.perScheme[schemeOf(url) ?? 'https'] : undefined;
  const hasAnyAddress = Boolean(effective.address) || Boolean(effective.perScheme?.http || effective.perScheme?.https);
  if (!hasAnyAddress) {
    return { route: { kind: 'DIRECT' }, reason: effective.source === 'system' || effective.perScheme ? 'no proxy address: HTTPS_PROXY, HTTP_PROXY and ALL_PROXY are not set' : 'no proxy address configured' };
  }
  if (effective.bypassOnLocal && isLocalHost(host, facts)) {
    return { route: { kind: 'DIRECT' }, origin: effective.layer?.origins.bypassOnLocal, reason: `${effective.layer?.origins.bypassOnLocal ? `${effective.layer.origins.bypassOnLocal.file}:${effective.layer.origins.bypassOnLocal.line} ` : ''}bypassonlocal: ${host} is local (${host.includes('.') && !isIP(host) ? `in the primary domain ${facts.dnsDomain}` : isIP(host) ? 'a local address' : 'a name without a dot'})` };
  }
  const target = bypassTarget(url);
  const hit = effective.bypass.find((rule) => rule.matches(target, host));
  if (hit) return { route: { kind: 'DIRECT' }, reason: `${hit.describe} matches ${target}`, origin: hit.origin };
  if (effective.address) return { route: effective.address.route, reason: effective.address.describe, origin: effective.address.origin };
  if (!perSchemeEntry) return { route: { kind: 'DIRECT' }, reason: `no system proxy for ${url.protocol.slice(0, -1)} destinations` };
  return { route: perSchemeEntry.route, reason: perSchemeEntry.describe };
}
