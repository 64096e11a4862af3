// Failover bookkeeping for route lists: which proxy failed recently (skipped for a while, then
// retried), and which route last worked for each target (tried first next time). Pure, with an
// injected clock, so the policy is tested without sockets.
import type { Route } from '../types.js';

export interface RouteHealthOptions {
  /** Milliseconds since some epoch; injectable for tests. */
  now?: () => number;
  /** How long a failed proxy is skipped before it is tried again (default 60 s). */
  skipMs?: number;
  /** Bound on remembered targets (least recently used is forgotten first). */
  maxTargets?: number;
}

/** A stable name for a route: `DIRECT` or `PROXY host:port` (never credentials). */
export function routeKey(route: Route): string {
  return route.kind === 'DIRECT' ? 'DIRECT' : `${route.kind} ${formatHostPort(route.host, route.port)}`;
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class RouteHealth {
  private readonly now: () => number;
  private readonly skipMs: number;
  private readonly maxTargets: number;
  /** route key → time until which it is skipped. */
  private readonly failedUntil = new Map<string, number>();
  /** target → key of the route that last worked (Map insertion order = LRU order). */
  private readonly lastGood = new Map<string, string>();

  constructor(options: RouteHealthOptions = {}) {
    this.now = options.now ?? Date.now;
    this.skipMs = options.skipMs ?? 60_000;
    this.maxTargets = options.maxTargets ?? 1024;
  }

  /**
   * The order in which to try `routes` for `target`: the route that last worked first, then the
   * others in list order; routes inside their skip window go last rather than being dropped, so a
   * list whose every proxy failed recently is still tried instead of failing without a packet.
   */
  order(target: string, routes: readonly Route[]): Route[] {
    const now = this.now();
    const preferred = this.lastGood.get(target);
    const healthy: Route[] = [];
    const skipped: Route[] = [];
    for (const route of routes) {
      const key = routeKey(route);
      if (this.isSkipped(key, now)) skipped.push(route);
      else if (key === preferred) healthy.unshift(route);
      else healthy.push(route);
    }
    return [...healthy, ...skipped];
  }

  /** Whether a route is inside its skip window now. */
  skipped(route: Route): boolean {
    return this.isSkipped(routeKey(route), this.now());
  }

  /** Records that the route itself (the proxy, not the target) failed. DIRECT is never skipped. */
  markFailed(route: Route): void {
    if (route.kind === 'DIRECT') return;
    this.failedUntil.set(routeKey(route), this.now() + this.skipMs);
  }

  markSucceeded(target: string, route: Route): void {
    const key = routeKey(route);
    this.failedUntil.delete(key);
    this.lastGood.delete(target);
    this.lastGood.set(target, key);
    while (this.lastGood.size > this.maxTargets) {
      const oldest = this.lastGood.keys().next();
      if (oldest.done) break;
      this.lastGood.delete(oldest.value);
    }
  }

  /** Forgets a target's preferred route, e.g. when that route later failed for it. */
  forgetTarget(target: string, route: Route): void {
    if (this.lastGood.get(target) === routeKey(route)) this.lastGood.delete(target);
  }

  private isSkipped(key: string, now: number): boolean {
    const until = this.failedUntil.get(key);
    if (until === undefined) return false;
    if (until <= now) {
      this.failedUntil.delete(key);
      return false;
    }
    return true;
  }
}
