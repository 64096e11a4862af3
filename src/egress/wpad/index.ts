// src/egress/wpad — WPAD discovery by DNS and PAC script fetching (the outbound fetches stay in
// src/egress). Imports node built-ins, src/shared and ./fetch only; the PAC engine is the caller's.
//
// Discovery rule: for the DNS suffix `a.b.corp.example`, look up `wpad.a.b.corp.example`, then
// `wpad.b.corp.example`, then `wpad.corp.example`, stopping while the suffix still has two labels, so
// a bare top-level domain is never tried (`wpad.example` could be anyone's host on the internet).
// A suffix of one label gives no candidate at all. The first name that resolves AND serves
// `http://wpad.<suffix>/wpad.dat` (status 200) wins; a name that resolves but does not serve moves on
// to the next. The result (found or not) is cached: a positive answer for `ttlMs`, a negative one for
// `negativeTtlMs`; `startRechecking()` refreshes it periodically so a new or changed wpad.dat is seen.
import { createHash } from 'node:crypto';
import { promises as dns } from 'node:dns';
import { httpGetText, type ScriptFetchLimits } from './fetch.js';

export { fetchScriptLocation, httpGetText, ScriptFetchError, type ScriptFetchLimits } from './fetch.js';

export interface WpadOptions extends ScriptFetchLimits {
  /** DNS suffix to walk, e.g. `corp.example.com`. */
  domainSuffix: string;
  /** DNS servers to ask (`127.0.0.53`, `10.0.0.1:5353`); default: the system resolver (getaddrinfo). */
  dnsServers?: string[];
  /** Port of the wpad.dat server (default 80; tests may override). */
  port?: number;
  dnsTimeoutMs?: number;
  ttlMs?: number;
  negativeTtlMs?: number;
  /** Injectable clock, ms. */
  now?: () => number;
  /** Injectable name lookup (default: node:dns with dnsServers). */
  lookup?: (name: string) => Promise<string[]>;
}

export type WpadResult =
  | { found: true; name: string; address: string; url: string; script: string; sha1: string; tried: string[] }
  | { found: false; tried: string[]; reason: string };

export const DEFAULT_WPAD_TTL_MS = 30 * 60_000;
export const DEFAULT_WPAD_NEGATIVE_TTL_MS = 60_000;

/** The names to try for a suffix, most specific first, never a bare TLD. */
export function wpadCandidates(domainSuffix: string): string[] {
  const labels = domainSuffix.toLowerCase().replace(/^\.+|\.+$/g, '').split('.').filter(Boolean);
  const names: string[] = [];
  for (let i = 0; labels.length - i >= 2; i += 1) names.push(`wpad.${labels.slice(i).join('.')}`);
  return names;
}

/** A name lookup that asks the given DNS servers (A then AAAA), or the system resolver. */
export function createLookup(dnsServers: string[] | undefined, timeoutMs = 2000): (name: string) => Promise<string[]> {
  if (!dnsServers?.length) {
    return async (name) => {
      try {
        return (await dns.lookup(name, { all: true })).map((entry) => entry.address);
      } catch {
        return [];
      }
    };
  }
  const resolver = new dns.Resolver({ timeout: timeoutMs, tries: 1 });
  resolver.setServers(dnsServers);
  return async (name) => {
    const v4 = await resolver.resolve4(name).catch(() => [] as string[]);
    if (v4.length) return v4;
    return resolver.resolve6(name).catch(() => [] as string[]);
  };
}

/** What the resolver needs from a discovery (WpadDiscovery, or a test double). */
export interface WpadSource {
  discover(): Promise<WpadResult>;
  onChange(listener: (result: WpadResult) => void): () => void;
  startRechecking?(intervalMs: number): void;
  stopRechecking(): void;
}

export class WpadDiscovery implements WpadSource {
  private cached: { result: WpadResult; expires: number } | undefined;
  private inFlight: Promise<WpadResult> | undefined;
  private readonly listeners = new Set<(result: WpadResult) => void>();
  private timer: NodeJS.Timeout | undefined;
  private readonly lookup: (name: string) => Promise<string[]>;
  private readonly now: () => number;

  constructor(private readonly options: WpadOptions) {
    this.lookup = options.lookup ?? createLookup(options.dnsServers, options.dnsTimeoutMs);
    this.now = options.now ?? Date.now;
  }

  /** The cached outcome while fresh, else a new discovery (concurrent callers share one). */
  discover(): Promise<WpadResult> {
    if (this.cached && this.cached.expires > this.now()) return Promise.resolve(this.cached.result);
    return this.refresh();
  }

  /** Runs discovery now, whatever the cache holds. */
  refresh(): Promise<WpadResult> {
    this.inFlight ??= this.run().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Called when the outcome changes (found/not found, or a different script). */
  onChange(listener: (result: WpadResult) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-checks periodically in the background (the timer never keeps the process alive). */
  startRechecking(intervalMs = 5 * 60_000): void {
    this.stopRechecking();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  stopRechecking(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async run(): Promise<WpadResult> {
    const result = await this.discoverOnce();
    const previous = this.cached?.result;
    const ttl = result.found ? this.options.ttlMs ?? DEFAULT_WPAD_TTL_MS : this.options.negativeTtlMs ?? DEFAULT_WPAD_NEGATIVE_TTL_MS;
    this.cached = { result, expires: this.now() + ttl };
    const key = (r: WpadResult | undefined): string => (r === undefined ? '' : r.found ? `found ${r.url} ${r.sha1}` : 'none');
    if (previous && key(previous) !== key(result)) for (const listener of this.listeners) listener(result);
    return result;
  }

  private async discoverOnce(): Promise<WpadResult> {
    const names = wpadCandidates(this.options.domainSuffix);
    const tried: string[] = [];
    const failures: string[] = [];
    if (!names.length) {
      return { found: false, tried, reason: `the DNS suffix "${this.options.domainSuffix}" has fewer than two labels: WPAD never asks a bare top-level domain` };
    }
    const port = this.options.port ?? 80;
    for (const name of names) {
      tried.push(name);
      const addresses = await this.lookup(name);
      if (!addresses.length) {
        failures.push(`${name} does not resolve`);
        continue;
      }
      const address = addresses[0]!;
      const url = `http://${name}${port === 80 ? '' : `:${port}`}/wpad.dat`;
      try {
        const script = await httpGetText({ connectHost: address, port, hostHeader: `${name}${port === 80 ? '' : `:${port}`}`, path: '/wpad.dat' }, this.options);
        const sha1 = createHash('sha1').update(script).digest('hex');
        return { found: true, name, address, url, script, sha1, tried };
      } catch (error) {
        failures.push(`${name} → ${address}: ${(error as Error).message}`);
      }
    }
    return { found: false, tried, reason: failures.join('; ') };
  }
}
