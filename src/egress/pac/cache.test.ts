import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacDecisionCache } from './cache.js';

test('PacDecisionCache: hit, LRU eviction, new script sha1 misses, TTL', async () => {
  let now = 0;
  const cache = new PacDecisionCache<string>({ maxEntries: 2, ttlMs: 1000, now: () => now });
  cache.set({ engineSha1: 'a', host: 'x', scheme: 'https' }, 'PROXY p:1');
  assert.equal(cache.get({ engineSha1: 'a', host: 'X', scheme: 'HTTPS' }), 'PROXY p:1');
  assert.equal(cache.get({ engineSha1: 'b', host: 'x', scheme: 'https' }), undefined, 'another script');
  assert.equal(cache.get({ engineSha1: 'a', host: 'x', scheme: 'http' }), undefined, 'another scheme');
  cache.set({ engineSha1: 'a', host: 'y' }, 'DIRECT');
  cache.get({ engineSha1: 'a', host: 'x', scheme: 'https' }); // x is now most recent
  cache.set({ engineSha1: 'a', host: 'z' }, 'DIRECT');
  assert.equal(cache.size, 2);
  assert.equal(cache.get({ engineSha1: 'a', host: 'y' }), undefined, 'least recently used evicted');
  assert.equal(cache.get({ engineSha1: 'a', host: 'x', scheme: 'https' }), 'PROXY p:1');
  now = 5000;
  assert.equal(cache.get({ engineSha1: 'a', host: 'x', scheme: 'https' }), undefined, 'expired');
  let computed = 0;
  const compute = async () => `PROXY c:${++computed}`;
  assert.equal(await cache.getOrCompute({ engineSha1: 'a', host: 'q' }, compute), 'PROXY c:1');
  assert.equal(await cache.getOrCompute({ engineSha1: 'a', host: 'q' }, compute), 'PROXY c:1');
  cache.clear();
  assert.equal(cache.size, 0);
});
