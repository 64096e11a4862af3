import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteHealth, routeKey } from './route-health.js';
import type { Route } from '../types.js';

const a: Route = { kind: 'PROXY', host: 'a.corp', port: 8080 };
const b: Route = { kind: 'PROXY', host: 'b.corp', port: 8080, username: 'u', password: 'p' };
const direct: Route = { kind: 'DIRECT' };

function clock(start = 1_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

test('routes keep list order when nothing is known', () => {
  const health = new RouteHealth({ now: clock().now });
  assert.deepEqual(health.order('relay:443', [a, b, direct]).map(routeKey), ['PROXY a.corp:8080', 'PROXY b.corp:8080', 'DIRECT']);
});

test('a failed proxy goes last for skipMs, then returns to its place', () => {
  const c = clock();
  const health = new RouteHealth({ now: c.now, skipMs: 60_000 });
  health.markFailed(a);
  assert.deepEqual(health.order('relay:443', [a, b, direct]).map(routeKey), ['PROXY b.corp:8080', 'DIRECT', 'PROXY a.corp:8080']);
  assert.equal(health.skipped(a), true);
  c.t += 59_999;
  assert.equal(health.skipped(a), true);
  c.t += 1;
  assert.equal(health.skipped(a), false);
  assert.deepEqual(health.order('relay:443', [a, b, direct]).map(routeKey), ['PROXY a.corp:8080', 'PROXY b.corp:8080', 'DIRECT']);
});

test('the route that last worked for a target is tried first, for that target only', () => {
  const health = new RouteHealth({ now: clock().now });
  health.markSucceeded('relay:443', direct);
  assert.deepEqual(health.order('relay:443', [a, b, direct]).map(routeKey), ['DIRECT', 'PROXY a.corp:8080', 'PROXY b.corp:8080']);
  assert.deepEqual(health.order('other:443', [a, b, direct]).map(routeKey), ['PROXY a.corp:8080', 'PROXY b.corp:8080', 'DIRECT']);
  health.forgetTarget('relay:443', direct);
  assert.deepEqual(health.order('relay:443', [a, b, direct]).map(routeKey)[0], 'PROXY a.corp:8080');
});

test('success clears a skip; DIRECT is never skipped', () => {
  const health = new RouteHealth({ now: clock().now });
  health.markFailed(direct);
  assert.equal(health.skipped(direct), false);
  health.markFailed(b);
  health.markSucceeded('t:1', b);
  assert.equal(health.skipped(b), false);
});

test('all routes skipped: they are still all returned, in list order', () => {
  const health = new RouteHealth({ now: clock().now });
  health.markFailed(a);
  health.markFailed(b);
  assert.deepEqual(health.order('t:1', [a, b]).map(routeKey), ['PROXY a.corp:8080', 'PROXY b.corp:8080']);
});

test('remembered targets are bounded (least recently used forgotten)', () => {
  const health = new RouteHealth({ now: clock().now, maxTargets: 2 });
  health.markSucceeded('t1', direct);
  health.markSucceeded('t2', direct);
  health.markSucceeded('t3', direct);
  assert.equal(health.order('t1', [a, direct])[0], a);
  assert.equal(health.order('t3', [a, direct])[0], direct);
});

test('route keys never include credentials and bracket IPv6 hosts', () => {
  assert.equal(routeKey(b), 'PROXY b.corp:8080');
  assert.equal(routeKey({ kind: 'SOCKS5', host: '::1', port: 1080 }), 'SOCKS5 [::1]:1080');
});
