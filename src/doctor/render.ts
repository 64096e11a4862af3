// Renderers for a DoctorReport: a short human checklist and the stable JSON document. Kept apart
// from the probes so the output contract can be tested without a network.
import { redact } from '../shared/redact.js';
import type { CheckResult, DoctorReport } from './types.js';

const MARK: Record<CheckResult['status'], string> = { pass: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' };

/** The checklist: one line per check, an indented `fix:` line under each warning or failure. */
export function renderText(report: DoctorReport): string {
  const lines: string[] = [`ferry doctor${report.config ? ` (${report.config})` : ''}`];
  for (const check of report.checks) {
    lines.push(`[${MARK[check.status]}] ${check.id}  ${redact(check.target)}: ${redact(check.details)}${check.errorClass ? ` [${check.errorClass}]` : ''}`);
    if (check.fix && (check.status === 'fail' || check.status === 'warn')) lines.push(`       fix: ${redact(check.fix)}`);
  }
  const { pass, warn, fail, skip } = report.summary;
  lines.push('', `${pass} passed, ${warn} warnings, ${fail} failed, ${skip} skipped: ${report.status === 'fail' ? 'the connector cannot work as configured' : report.status === 'warn' ? 'works, with warnings' : 'all good'}`);
  return `${lines.join('\n')}\n`;
}

/** The JSON document: every key always present (null when absent) so consumers can rely on the shape. */
export function toJsonDocument(report: DoctorReport): unknown {
  return {
    schema: report.schema,
    time: report.time,
    config: report.config ?? null,
    status: report.status,
    summary: report.summary,
    checks: report.checks.map((check) => ({
      id: check.id,
      status: check.status,
      target: redact(check.target),
      details: redact(check.details),
      fix: check.fix === undefined ? null : redact(check.fix),
      errorClass: check.errorClass ?? null,
    })),
  };
}

export function renderJson(report: DoctorReport): string {
  return `${JSON.stringify(toJsonDocument(report), null, 2)}\n`;
}
