import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeTrace, connectStatusMeaning, renderTraceSummary } from './analyze.js';

const line = (fields: Record<string, unknown>) => JSON.stringify({ caller: 'connector', source: 'config', ...fields });

// A capture-like story: direct SYNs to the tunnel port dropped, the first proxy dead, the second
// proxy asks for auth, then (credentials configured) the CONNECT works.
const TRACE = [
  line({ time: '2026-01-01T10:00:00.000Z', target: 'relay.example:8444', route: 'DIRECT', outcome: 'error', errorClass: 'connect-timeout', message: 'no answer (SYN unanswered)' }),
  line({ time: '2026-01-01T10:00:05.000Z', target: 'relay.example:8444', route: 'DIRECT', outcome: 'error', errorClass: 'connect-timeout', message: 'no answer (SYN unanswered)' }),
  line({ time: '2026-01-01T10:00:06.000Z', target: 'relay.example:443', route: 'PROXY dead.corp:3128', proxy: 'http://dead.corp:3128', outcome: 'error', errorClass: 'connect-timeout' }),
  line({ time: '2026-01-01T10:00:07.000Z', target: 'relay.example:443', route: 'PROXY proxy.corp:8080', proxy: 'http://bob@proxy.corp:8080', tcpMs: 2, connectStatus: 407, outcome: 'error', errorClass: 'proxy-auth-required' }),
  line({ time: '2026-01-01T10:00:08.000Z', target: 'relay.example:443', route: 'PROXY proxy.corp:8080', proxy: 'http://proxy.corp:8080', tcpMs: 2, connectStatus: 200, outcome: 'ok' }),
  line({ time: '2026-01-01T10:00:09.000Z', target: 'relay.example:443', route: 'PROXY proxy.corp:8080', proxy: 'http://proxy.corp:8080', tcpMs: 2, connectStatus: 200, outcome: 'error', errorClass: 'tls-interception', message: 'issued by "CN=Corp Inspection CA"' }),
  'not json at all',
  line({ time: '2026-01-01T10:00:10.000Z', target: 'other:443', route: 'DIRECT', outcome: 'error', errorClass: 'dns' }),
  '',
].join('\n');

test('unanswered TCP connections are grouped by where the SYN went (proxy host for proxied routes)', () => {
  const summary = analyzeTrace(TRACE);
  assert.deepEqual(summary.unansweredTcp.map((d) => [d.destination, d.count]), [['relay.example:8444', 2], ['dead.corp:3128', 1]]);
  assert.deepEqual(summary.unansweredTcp[1]!.targets, ['relay.example:443']);
  assert.equal(summary.unansweredTcp[0]!.first, '2026-01-01T10:00:00.000Z');
  assert.equal(summary.unansweredTcp[0]!.last, '2026-01-01T10:00:05.000Z');
});

test('CONNECT answers are counted by status with their meaning; user names in proxies are kept, no passwords', () => {
  const summary = analyzeTrace(TRACE);
  assert.deepEqual(summary.connectAnswers.map((a) => [a.status, a.count]), [[200, 2], [407, 1]]);
  assert.equal(summary.connectAnswers[1]!.meaning, 'proxy authentication required');
  assert.deepEqual(summary.connectAnswers[1]!.proxies, ['http://bob@proxy.corp:8080']);
});

test('TLS failures, DNS failures, malformed lines and the route that finally worked', () => {
  const summary = analyzeTrace(TRACE);
  assert.equal(summary.attempts, 7);
  assert.equal(summary.succeeded, 1);
  assert.deepEqual(summary.malformedLines, [7]);
  assert.deepEqual(summary.tlsFailures.map((f) => [f.errorClass, f.target, f.count]), [['tls-interception', 'relay.example:443', 1]]);
  assert.deepEqual(summary.dnsFailures.map((d) => d.destination), ['other:443']);
  const relay443 = summary.outcomes.find((o) => o.target === 'relay.example:443');
  assert.equal(relay443?.workingRoute, 'PROXY proxy.corp:8080');
  const relay8444 = summary.outcomes.find((o) => o.target === 'relay.example:8444');
  assert.equal(relay8444?.workingRoute, undefined);
  assert.equal(relay8444?.failures, 2);
});

test('fixes are listed most severe first and name the dropped destination', () => {
  const summary = analyzeTrace(TRACE);
  assert.equal(summary.fixes[0]!.split(':')[0], 'tls-interception');
  const timeout = summary.fixes.find((f) => f.startsWith('connect-timeout'));
  assert.match(timeout ?? '', /SYN unanswered: a firewall drops traffic to relay\.example:8444/);
});

test('a CONNECT that failed after TCP is not counted as an unanswered SYN', () => {
  const summary = analyzeTrace(line({ time: 't', target: 'r:443', route: 'PROXY p:1', tcpMs: 1, outcome: 'error', errorClass: 'connect-timeout' }));
  assert.deepEqual(summary.unansweredTcp, []);
});

test('the text rendering has every section and says when nothing worked', () => {
  const text = renderTraceSummary(analyzeTrace(TRACE));
  for (const heading of ['Unanswered TCP connections', 'CONNECT answers by status', 'TLS failures', 'Which route finally worked', 'What to fix']) assert.match(text, new RegExp(heading));
  assert.match(text, /relay\.example:8444: nothing worked/);
  assert.match(text, /407 proxy authentication required/);
  assert.doesNotMatch(renderTraceSummary(analyzeTrace('')), /undefined/);
});

test('status meanings', () => {
  assert.equal(connectStatusMeaning(403), 'refused by the proxy policy (host or port not allowed)');
  assert.match(connectStatusMeaning(502), /bad gateway/);
});
