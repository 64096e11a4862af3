// The doctor's result model (after cloudflared's prechecks: one CheckResult per probe, the fix
// shown to the operator travels with the result). Pure types; renderers and probes import these.
import type { DialFailureClass } from '../shared/errors.js';

export const CHECK_STATUSES = ['pass', 'warn', 'fail', 'skip'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

export interface CheckResult {
  /** Stable identifier: `<kind>` or `<kind>:<subject>`, e.g. `tcp:proxy.corp:8080`, `tunnel:https`. */
  id: string;
  status: CheckStatus;
  /** What was tested (host:port, file, URL). */
  target: string;
  /** One line: what happened (redacted). */
  details: string;
  /** One line: what to do about it (failures and warnings). */
  fix?: string;
  /** The taxonomy class, when a dial/TLS probe failed. */
  errorClass?: DialFailureClass;
}

export interface DoctorReport {
  /** Schema version of the JSON document (bump on incompatible change). */
  schema: 1;
  /** ISO time the run started. */
  time: string;
  config: string | undefined;
  checks: CheckResult[];
  summary: { pass: number; warn: number; fail: number; skip: number };
  /** Aggregate: 'fail' if any check failed, else 'warn' if any warned, else 'pass'. */
  status: 'pass' | 'warn' | 'fail';
}
