// PAC decisions per second: uncached (a fresh host each call, evaluated by the QuickJS engine) and
// cached (the same hosts again, answered by PacDecisionCache). Bounded in time.
import { createPacEngine, PacDecisionCache, type PacEnvironment } from '../src/egress/pac/index.js';

/** A realistic corporate script: bypass list, subnet tests on literals, shell patterns, failover. */
const BENCH_PAC = `
var BYPASS = ["corp.example", "intranet.example", "example.org", "example.net", "mirror.example.com"];
function FindProxyForURL(url, host) {
  if (isPlainHostName(host) || shExpMatch(host, "*.local")) return "DIRECT";
  for (var i = 0; i < BYPASS.length; i++) if (dnsDomainIs(host, "." + BYPASS[i])) return "DIRECT";
  if (/^\\d+\\.\\d+\\.\\d+\\.\\d+$/.test(host) && isInNet(host, "10.0.0.0", "255.0.0.0")) return "DIRECT";
  if (shExpMatch(url, "https://*")) return "PROXY tls.proxy.example:8443; PROXY backup.proxy.example:8080; DIRECT";
  return "PROXY proxy.example:8080; DIRECT";
}`;

export async function benchPac(opts: { durationMs?: number } = {}): Promise<{ cachedPerSec: number; uncachedPerSec: number }> {
  const durationMs = opts.durationMs ?? 1000;
  const env: PacEnvironment = {
    resolve: async () => [],
    myAddresses: () => ['10.0.0.5'],
    now: () => new Date(),
  };
  const engine = await createPacEngine(BENCH_PAC, env, { callTimeoutMs: 1000 });
  try {
    // Warm-up: WebAssembly tiers up from its baseline compiler in the first few hundred calls.
    const warmUpStart = performance.now();
    for (let i = 0; i < 300 && performance.now() - warmUpStart < 500; i++) await engine.findProxy(`https://warm${i}.example/`, `warm${i}.example`);
    const cache = new PacDecisionCache<string>({ maxEntries: 100_000, ttlMs: 600_000 });
    const hosts: string[] = [];
    let uncached = 0;
    const uncachedStart = performance.now();
    while (performance.now() - uncachedStart < durationMs) {
      const host = `host${uncached}.bench.example`;
      hosts.push(host);
      const key = { engineSha1: engine.sha1, host, scheme: 'https' };
      await cache.getOrCompute(key, () => engine.findProxy(`https://${host}/`, host));
      uncached++;
    }
    const uncachedSeconds = (performance.now() - uncachedStart) / 1000;

    let cached = 0;
    const cachedStart = performance.now();
    while (performance.now() - cachedStart < durationMs) {
      const host = hosts[cached % hosts.length];
      await cache.getOrCompute({ engineSha1: engine.sha1, host, scheme: 'https' }, () => engine.findProxy(`https://${host}/`, host));
      cached++;
    }
    const cachedSeconds = (performance.now() - cachedStart) / 1000;
    return { cachedPerSec: Math.round(cached / cachedSeconds), uncachedPerSec: Math.round(uncached / uncachedSeconds) };
  } finally {
    engine.dispose();
  }
}

// `node dist/bench/pac.js` prints the figures.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchPac()));
}
