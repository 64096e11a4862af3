// The PAC benchmark runs, stays within its time bound, and the cache is faster than the engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchPac } from '../../bench/pac.js';

test('benchPac: bounded, cached decisions outpace uncached ones', async () => {
  const started = Date.now();
  const { cachedPerSec, uncachedPerSec } = await benchPac({ durationMs: 150 });
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  assert.ok(uncachedPerSec > 10, `uncached ${uncachedPerSec}/s`);
  assert.ok(cachedPerSec > uncachedPerSec, `cached ${cachedPerSec}/s vs uncached ${uncachedPerSec}/s`);
});
