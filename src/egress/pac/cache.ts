// A bounded LRU of PAC decisions. The key includes the engine's sha1, so loading a new script makes
// every old entry unreachable (and they age out); clear() drops them at once when config changes.

export interface PacDecisionKey {
  /** sha1 of the PAC script that decided (PacEngine.sha1). */
  engineSha1: string;
  host: string;
  /** URL scheme, because scripts often answer differently for http: and https:. */
  scheme?: string;
}

export class PacDecisionCache<V = string> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(options: { maxEntries?: number; ttlMs?: number; now?: () => number } = {}) {
    this.maxEntries = Math.max(1, options.maxEntries ?? 1024);
    // Scripts may depend on the clock (timeRange) and on DNS: a decision is only good for a while.
    this.ttlMs = options.ttlMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  static keyOf(key: PacDecisionKey): string {
    return `${key.engineSha1}\u0000${(key.scheme ?? '').toLowerCase()}\u0000${key.host.toLowerCase()}`;
  }

  get(key: PacDecisionKey): V | undefined {
    const k = PacDecisionCache.keyOf(key);
    const entry = this.entries.get(k);
    if (!entry) return undefined;
    this.entries.delete(k);
    if (entry.expiresAt <= this.now()) return undefined;
    this.entries.set(k, entry); // Map keeps insertion order: re-inserting marks it most recently used.
    return entry.value;
  }

  set(key: PacDecisionKey, value: V): void {
    const k = PacDecisionCache.keyOf(key);
    this.entries.delete(k);
    this.entries.set(k, { value, expiresAt: this.now() + this.ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** The cached decision, or the one `compute` gives (then cached). Errors are not cached. */
  async getOrCompute(key: PacDecisionKey, compute: () => Promise<V>): Promise<V> {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const value = await compute();
    this.set(key, value);
    return value;
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
