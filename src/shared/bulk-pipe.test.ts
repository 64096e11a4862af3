import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { MAX_QUEUED_BYTES, YOUNG_GC_EVERY_BYTES, writeOrPause } from './bulk-pipe.js';

test('moving bytes runs a young GC every YOUNG_GC_EVERY_BYTES, so dead Buffers never pile up to a full GC', async () => {
  const kinds: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) kinds.push((entry as unknown as { detail: { kind: number } }).detail.kind);
  });
  observer.observe({ entryTypes: ['gc'] });
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const source = { pause: () => assert.fail('a sink that keeps up never pauses its source'), resume: () => undefined };
  // 64 KiB Buffers, as a socket reads them: almost no allocation on V8's own heap, so V8 would run
  // no young GC of its own over these 3 × YOUNG_GC_EVERY_BYTES.
  for (let moved = 0; moved < 3 * YOUNG_GC_EVERY_BYTES; moved += 64 << 10) writeOrPause(sink, Buffer.allocUnsafeSlow(64 << 10), source);
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  const young = kinds.filter((kind) => kind === constants.NODE_PERFORMANCE_GC_MINOR).length;
  assert.ok(young >= 3, `young GCs: ${young} (all GCs: ${kinds.join(', ')})`);
});

test('a destination holding more than MAX_QUEUED_BYTES pauses its source until it drains', async () => {
  let finish: (() => void) | undefined;
  const slow = new Writable({ highWaterMark: 16 << 10, write: (_chunk, _encoding, done) => { finish = done; } });
  const events: string[] = [];
  const source = { pause: () => events.push('pause'), resume: () => events.push('resume') };
  writeOrPause(slow, Buffer.alloc(MAX_QUEUED_BYTES), source);
  assert.deepEqual(events, []);
  writeOrPause(slow, Buffer.alloc(1), source);
  assert.deepEqual(events, ['pause']);
  while (slow.writableLength > 0) finish!();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(events, ['pause', 'resume']);
});
