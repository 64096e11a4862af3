// The PAC benchmark runs and reports both rates. No figure is asserted: speed is measured by
// `npm run bench`, never by a timed test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchPac } from '../../bench/pac.js';

test('benchPac runs and reports cached and uncached decisions per second', async () => {
  const { cachedPerSec, uncachedPerSec } = await benchPac({ durationMs: 150 });
  assert.ok(Number.isFinite(uncachedPerSec) && uncachedPerSec > 0, `uncached ${uncachedPerSec}/s`);
  assert.ok(Number.isFinite(cachedPerSec) && cachedPerSec > 0, `cached ${cachedPerSec}/s`);
});
