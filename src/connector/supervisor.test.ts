import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from './supervisor.js';

const policy = { initialMs: 500, maxMs: 30_000, healthyAfterMs: 30_000 };

describe('backoffDelay (full jitter, capped)', () => {
  it('grows exponentially with the attempt and never exceeds the cap', () => {
    assert.equal(backoffDelay(0, policy, () => 1), 500);
    assert.equal(backoffDelay(3, policy, () => 1), 4000);
    assert.equal(backoffDelay(20, policy, () => 1), 30_000);
    assert.equal(backoffDelay(1000, policy, () => 1), 30_000);
  });

  it('is jittered: never below half the initial delay, spread up to the ceiling', () => {
    assert.equal(backoffDelay(5, policy, () => 0), 250);
    const samples = Array.from({ length: 200 }, () => backoffDelay(6, policy));
    assert.ok(samples.every((d) => d >= 250 && d <= 30_000));
    assert.ok(new Set(samples).size > 50, 'delays differ between connectors');
  });
});
