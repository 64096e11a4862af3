// src/doctor — `ferry doctor` and `ferry proxy rules`: probes that test each step of the path from
// the connector to the relay and name the fix (after cloudflared's prechecks), the trace analyzer,
// and the list of destinations a proxy admin must allow. May import src/shared, src/config,
// src/egress and src/connector (to reuse the production dialers, TLS and tunnel session); never
// src/relay or src/cli.
export { runDoctor, type DoctorOptions, type DoctorRun } from './checks.js';
export { analyzeTrace, parseTrace, renderTraceSummary, connectStatusMeaning, type TraceSummary } from './analyze.js';
export { renderJson, renderText, toJsonDocument } from './render.js';
export { severity, fixFor, summarize, type Need } from './severity.js';
export { requiredDestinations, renderRulesTable, renderSquidSnippet, rulesJson, type RequiredDestination, type RulesInput } from './rules.js';
export { CHECK_STATUSES, type CheckResult, type CheckStatus, type DoctorReport } from './types.js';
