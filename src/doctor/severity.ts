// How a probe outcome becomes pass / warn / fail / skip, and the report's overall verdict. All
// severity rules live in this one file so that they can be read (and argued about) in one place.
import { FIX_FOR_CLASS, type DialFailureClass } from '../shared/errors.js';
import type { CheckResult, CheckStatus, DoctorReport } from './types.js';

/**
 * How much the configuration depends on what a probe tested.
 * - `required`: the connector cannot work without it (the only transport, the registration URL).
 * - `alternative`: another path can stand in (transport `auto` falls back from tcp to https; a later
 *   route in the list can replace a dead proxy). Losing it costs resilience, not function.
 * - `informational`: the connector never depends on it directly (a local DNS lookup of a name that
 *   the proxy resolves; the updater's route when no updater runs here).
 */
export type Need = 'required' | 'alternative' | 'informational';

/**
 * The one severity rule:
 * - success → pass;
 * - a failure of something `required` → fail;
 * - a failure of an `alternative` → warn (the fallback is judged by its own check);
 * - a failure of something `informational` → warn, except that a DNS failure of a name only the
 *   proxy needs to resolve is expected on locked-down networks → skip (shown, never alarming);
 * - `relay-rejected` is always fail: no transport or route can fix a refused identity.
 */
export function severity(outcome: { ok: true } | { ok: false; errorClass?: DialFailureClass }, need: Need): CheckStatus {
  if (outcome.ok) return 'pass';
  if (outcome.errorClass === 'relay-rejected') return 'fail';
  if (need === 'required') return 'fail';
  if (need === 'informational' && outcome.errorClass === 'dns') return 'skip';
  return 'warn';
}

/** The fix line for a failed class, with the host:port named when the generic text says "this host:port". */
export function fixFor(errorClass: DialFailureClass, hostPort?: string): string {
  const generic = FIX_FOR_CLASS[errorClass];
  if (!hostPort) return generic;
  if (errorClass === 'connect-timeout') return `SYN unanswered: a firewall drops traffic to ${hostPort}; allow it or route through the proxy`;
  return generic.replace('this host:port', hostPort).replace('this host', hostPort);
}

/**
 * Overall verdict and exit semantics: any fail → 'fail' (exit 1); warnings alone still exit 0 (the
 * connector works, with less margin) but the summary says so.
 */
export function summarize(checks: CheckResult[], time: string, config: string | undefined): DoctorReport {
  const summary = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const check of checks) summary[check.status] += 1;
  const status = summary.fail > 0 ? 'fail' : summary.warn > 0 ? 'warn' : 'pass';
  return { schema: 1, time, config, checks, summary, status };
}
