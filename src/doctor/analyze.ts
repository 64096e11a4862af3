// `ferry doctor --analyze TRACE`: reads a connection trace (one DialTrace JSON object per line, as
// written by `ferry connector run --trace`) the way the seed reads a packet capture: which TCP
// connections were never answered, what proxies answered to CONNECT, which TLS handshakes failed,
// and which route finally worked. Pure: text in, summary out.
import { DIAL_FAILURE_CLASSES, type DialFailureClass } from '../shared/errors.js';
import { redact } from '../shared/redact.js';
import type { DialTrace } from '../egress/types.js';
import { fixFor } from './severity.js';

export interface DestinationCount {
  /** host:port the packets went to (the proxy for proxied routes, else the target). */
  destination: string;
  count: number;
  first: string;
  last: string;
  /** Targets that were being reached through it. */
  targets: string[];
}

export interface TraceSummary {
  attempts: number;
  succeeded: number;
  failed: number;
  /** Line numbers (1-based) that were not a trace record. */
  malformedLines: number[];
  from?: string;
  to?: string;
  /** connect-timeout at the TCP step: SYN sent, nothing came back (the firewall signature). */
  unansweredTcp: DestinationCount[];
  /** connect-refused at the TCP step: RST (nothing listens). */
  refusedTcp: DestinationCount[];
  dnsFailures: DestinationCount[];
  /** Answers to CONNECT, by status code. */
  connectAnswers: { status: number; meaning: string; count: number; proxies: string[]; targets: string[] }[];
  /** TLS-level failures (tls, tls-interception, relay-rejected) with one sample message each. */
  tlsFailures: { errorClass: DialFailureClass; target: string; count: number; sample: string }[];
  /** Per caller+target: the route of the last successful attempt, or none. */
  outcomes: { caller: string; target: string; workingRoute?: string; lastSuccess?: string; attempts: number; failures: number }[];
  /** One fix line per problem class seen, most severe first. */
  fixes: string[];
}

/** What a proxy's answer to CONNECT means for the operator. */
export function connectStatusMeaning(status: number): string {
  if (status === 200) return 'tunnel established';
  if (status === 407) return 'proxy authentication required';
  if (status === 403) return 'refused by the proxy policy (host or port not allowed)';
  if (status === 502) return 'the proxy could not reach the target (bad gateway)';
  if (status === 503) return 'the proxy could not reach the target or is unavailable';
  if (status === 504) return 'the proxy timed out reaching the target';
  if (status === 400 || status === 405) return 'the proxy does not accept CONNECT here';
  if (status >= 200 && status < 300) return 'tunnel established (unusual status)';
  return 'refused by the proxy';
}

/** Parses trace text leniently: unknown fields are kept out, broken lines counted, never thrown. */
export function parseTrace(text: string): { traces: DialTrace[]; malformedLines: number[] } {
  const traces: DialTrace[] = [];
  const malformedLines: number[] = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    try {
      const value = JSON.parse(line) as Partial<DialTrace>;
      if (typeof value !== 'object' || value === null || typeof value.target !== 'string' || (value.outcome !== 'ok' && value.outcome !== 'error')) {
        malformedLines.push(index + 1);
        return;
      }
      traces.push({
        time: typeof value.time === 'string' ? value.time : '',
        caller: value.caller ?? 'connector',
        target: value.target,
        route: typeof value.route === 'string' ? value.route : 'DIRECT',
        ...(typeof value.proxy === 'string' ? { proxy: value.proxy } : {}),
        source: typeof value.source === 'string' ? value.source : '',
        ...(typeof value.tcpMs === 'number' ? { tcpMs: value.tcpMs } : {}),
        ...(typeof value.connectStatus === 'number' ? { connectStatus: value.connectStatus } : {}),
        ...(typeof value.tlsMs === 'number' ? { tlsMs: value.tlsMs } : {}),
        outcome: value.outcome,
        ...(typeof value.errorClass === 'string' ? { errorClass: value.errorClass } : {}),
        ...(typeof value.message === 'string' ? { message: value.message } : {}),
      });
    } catch {
      malformedLines.push(index + 1);
    }
  });
  return { traces, malformedLines };
}

/** Where the packets of an attempt went: the proxy's host:port for proxied routes, else the target. */
function destinationOf(trace: DialTrace): string {
  // Route keys are `DIRECT` or `PROXY host:port` (routeKey in src/egress/dial).
  const space = trace.route.indexOf(' ');
  return trace.route !== 'DIRECT' && space > 0 ? trace.route.slice(space + 1) : trace.target;
}

const SEVERITY_ORDER: DialFailureClass[] = ['relay-rejected', 'tls-interception', 'proxy-auth-required', 'proxy-refused', 'connect-timeout', 'dns', 'connect-refused', 'tls'];

export function analyzeTrace(text: string): TraceSummary {
  const { traces, malformedLines } = parseTrace(text);
  const unanswered = new Map<string, DestinationCount>();
  const refused = new Map<string, DestinationCount>();
  const dnsFailures = new Map<string, DestinationCount>();
  const answers = new Map<number, { status: number; meaning: string; count: number; proxies: Set<string>; targets: Set<string> }>();
  const tlsFailures = new Map<string, { errorClass: DialFailureClass; target: string; count: number; sample: string }>();
  const outcomes = new Map<string, { caller: string; target: string; workingRoute?: string; lastSuccess?: string; attempts: number; failures: number }>();
  const fixes = new Map<DialFailureClass, string>();

  const bump = (map: Map<string, DestinationCount>, trace: DialTrace) => {
    const destination = destinationOf(trace);
    const entry = map.get(destination) ?? { destination, count: 0, first: trace.time, last: trace.time, targets: [] };
    entry.count += 1;
    entry.last = trace.time;
    if (!entry.targets.includes(trace.target)) entry.targets.push(trace.target);
    map.set(destination, entry);
  };

  for (const trace of traces) {
    const key = `${trace.caller} ${trace.target}`;
    const outcome = outcomes.get(key) ?? { caller: trace.caller, target: trace.target, attempts: 0, failures: 0 };
    outcome.attempts += 1;
    if (trace.outcome === 'ok') {
      outcome.workingRoute = trace.route;
      outcome.lastSuccess = trace.time;
    } else {
      outcome.failures += 1;
    }
    outcomes.set(key, outcome);

    if (trace.connectStatus !== undefined) {
      const answer = answers.get(trace.connectStatus) ?? { status: trace.connectStatus, meaning: connectStatusMeaning(trace.connectStatus), count: 0, proxies: new Set(), targets: new Set() };
      answer.count += 1;
      if (trace.proxy) answer.proxies.add(trace.proxy);
      answer.targets.add(trace.target);
      answers.set(trace.connectStatus, answer);
    }
    if (trace.outcome !== 'error') continue;
    const errorClass = (DIAL_FAILURE_CLASSES as readonly string[]).includes(trace.errorClass ?? '') ? (trace.errorClass as DialFailureClass) : undefined;
    if (!errorClass) continue;
    // No tcpMs means the TCP step itself failed; with tcpMs, the failure came later (CONNECT, TLS).
    const atTcp = trace.tcpMs === undefined;
    if (errorClass === 'connect-timeout' && atTcp) bump(unanswered, trace);
    else if (errorClass === 'connect-refused' && atTcp) bump(refused, trace);
    else if (errorClass === 'dns') bump(dnsFailures, trace);
    else if (errorClass === 'tls' || errorClass === 'tls-interception' || errorClass === 'relay-rejected') {
      const tlsKey = `${errorClass} ${trace.target}`;
      const entry = tlsFailures.get(tlsKey) ?? { errorClass, target: trace.target, count: 0, sample: redact(trace.message ?? '') };
      entry.count += 1;
      tlsFailures.set(tlsKey, entry);
    }
    if (!fixes.has(errorClass)) fixes.set(errorClass, fixFor(errorClass, errorClass === 'connect-timeout' || errorClass === 'connect-refused' || errorClass === 'proxy-refused' ? destinationOrTarget(trace, errorClass) : undefined));
  }

  const times = traces.map((t) => t.time).filter((t) => t !== '').sort();
  const byCount = (a: DestinationCount, b: DestinationCount) => b.count - a.count || a.destination.localeCompare(b.destination);
  return {
    attempts: traces.length,
    succeeded: traces.filter((t) => t.outcome === 'ok').length,
    failed: traces.filter((t) => t.outcome === 'error').length,
    malformedLines,
    ...(times.length ? { from: times[0], to: times[times.length - 1] } : {}),
    unansweredTcp: [...unanswered.values()].sort(byCount),
    refusedTcp: [...refused.values()].sort(byCount),
    dnsFailures: [...dnsFailures.values()].sort(byCount),
    connectAnswers: [...answers.values()].sort((a, b) => a.status - b.status).map((a) => ({ ...a, proxies: [...a.proxies].map(redact), targets: [...a.targets] })),
    tlsFailures: [...tlsFailures.values()],
    outcomes: [...outcomes.values()],
    fixes: SEVERITY_ORDER.filter((c) => fixes.has(c)).map((c) => `${c}: ${fixes.get(c)}`),
  };
}

function destinationOrTarget(trace: DialTrace, errorClass: DialFailureClass): string {
  // A refused CONNECT is about the target; an unanswered SYN is about wherever the SYN went.
  return errorClass === 'proxy-refused' ? trace.target : destinationOf(trace);
}

export function renderTraceSummary(summary: TraceSummary): string {
  const lines: string[] = [
    `Trace: ${summary.attempts} dial attempts (${summary.succeeded} ok, ${summary.failed} failed)${summary.from ? `, ${summary.from} … ${summary.to}` : ''}`,
  ];
  if (summary.malformedLines.length) lines.push(`  ${summary.malformedLines.length} line(s) were not trace records (first: line ${summary.malformedLines[0]})`);
  const section = (title: string, rows: string[]) => {
    lines.push('', title);
    lines.push(...(rows.length ? rows : ['  none']));
  };
  section('Unanswered TCP connections (SYN sent, no reply: a firewall drops them):',
    summary.unansweredTcp.map((d) => `  ${d.destination}  ×${d.count}  (for ${d.targets.join(', ')}; ${d.first} … ${d.last})`));
  if (summary.refusedTcp.length) section('Refused TCP connections (RST: nothing listens):', summary.refusedTcp.map((d) => `  ${d.destination}  ×${d.count}`));
  if (summary.dnsFailures.length) section('Name lookups that failed:', summary.dnsFailures.map((d) => `  ${d.destination}  ×${d.count}`));
  section('CONNECT answers by status:',
    summary.connectAnswers.map((a) => `  ${a.status} ${a.meaning}  ×${a.count}  (proxy ${a.proxies.join(', ') || '?'} → ${a.targets.join(', ')})`));
  section('TLS failures:', summary.tlsFailures.map((f) => `  ${f.errorClass} ${f.target}  ×${f.count}: ${f.sample}`));
  section('Which route finally worked:', summary.outcomes.map((o) =>
    `  ${o.caller} → ${o.target}: ${o.workingRoute ? `${o.workingRoute} (last ok ${o.lastSuccess})` : 'nothing worked'}; ${o.attempts} attempts, ${o.failures} failed`));
  if (summary.fixes.length) section('What to fix:', summary.fixes.map((f) => `  ${f}`));
  return `${lines.join('\n')}\n`;
}
