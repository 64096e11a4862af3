// `ferry proxy rules --format squid` pasted into a REAL Squid whose policy is otherwise default-deny:
// the connector's tunnels (the Connector class, run by `ferry doctor --capture`) and the doctor's
// checks work through it, and every other destination — another port of the relay, another host —
// is refused (403, seen in Squid's access.log). Then `--analyze` reads the trace the capture wrote.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { createDialer, fixedRoutes } from '../../src/egress/dial/index.js';
import { DialError } from '../../src/shared/errors.js';
import { FerryStack } from '../harness/ferry-stack.js';
import { runFerry } from '../harness/ferry-cli.js';
import { startSquid, type SquidInstance } from '../harness/squid.js';

const RELAY = 'relay.ferry.test';
const ELSEWHERE = 'elsewhere.ferry.test';

describe('ferry proxy rules: the Squid snippet in a default-deny Squid', () => {
  const stack = new FerryStack();
  let squid: SquidInstance;
  let snippet: string;
  let configFile: string;
  let traceFile: string;

  before(async () => {
    await stack.startRelay();
    const registered = await stack.registerConnector({ name: 'c' });
    assert.equal(registered.run.code, 0, registered.run.stderr);
    const base = { stateDir: './c', name: 'c', transport: 'https', relayHost: RELAY, directTimeoutMs: 2000, machineConfig: './none.config', backoff: { initialMs: 100, maxMs: 500, healthyAfterMs: 5000 } };
    const rulesConfig = path.join(stack.dir, 'rules.yaml');
    writeFileSync(rulesConfig, stringify(base));
    const rules = await runFerry(['proxy', 'rules', '--config', rulesConfig, '--format', 'squid']);
    assert.equal(rules.code, 0, rules.stderr);
    snippet = rules.stdout;
    squid = await startSquid({ mode: 'deny', accessRules: snippet, hosts: { [RELAY]: '127.0.0.1', [ELSEWHERE]: '127.0.0.1' } });
    configFile = path.join(stack.dir, 'through-rules.yaml');
    traceFile = path.join(stack.dir, 'trace.jsonl');
    writeFileSync(configFile, stringify({ ...base, trace: './trace.jsonl', proxy: { address: `http://127.0.0.1:${squid.port}` } }));
  });

  after(async () => {
    await Promise.allSettled([squid?.stop(), stack.stop()]);
  });

  it('the snippet names exactly the relay host with the public and registration ports', () => {
    assert.match(snippet, new RegExp(`^acl ferry_dst_1 dstdomain ${RELAY.replace(/\./g, '\\.')}$`, 'm'));
    const ports = [stack.relay.ports.user, stack.relay.ports.registration].sort((a, b) => a - b);
    assert.match(snippet, new RegExp(`^acl ferry_ports_1 port ${ports.join(' ')}$`, 'm'));
    assert.doesNotMatch(snippet, /ferry_dst_2/);
  });

  it('table and JSON formats list the same destinations', async () => {
    const table = await runFerry(['proxy', 'rules', '--config', configFile]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`${RELAY.replace(/\./g, '\\.')}\\s+${stack.relay.ports.user}\\s+TCP/TLS\\s+via proxy \\(CONNECT\\)\\s+tunnel \\(transport https\\)`));
    const json = await runFerry(['proxy', 'rules', '--config', configFile, '--format', 'json']);
    const doc = JSON.parse(json.stdout) as { transport: string; destinations: { host: string; port: number; path: string }[] };
    assert.equal(doc.transport, 'https');
    assert.deepEqual(doc.destinations.map((d) => `${d.host}:${d.port}:${d.path}`).sort(), [`${RELAY}:${stack.relay.ports.registration}:proxy`, `${RELAY}:${stack.relay.ports.user}:proxy`].sort());
    const bad = await runFerry(['proxy', 'rules', '--config', configFile, '--format', 'nginx']);
    assert.equal(bad.code, 2);
  });

  it('the connector works through the rules: doctor passes and a capture brings tunnels up', async () => {
    const doctor = await runFerry(['doctor', '--config', configFile, '--json'], { timeoutMs: 60_000 });
    const report = JSON.parse(doctor.stdout) as { status: string; checks: { id: string; status: string }[] };
    assert.equal(doctor.code, 0, doctor.stdout);
    assert.equal(report.checks.find((c) => c.id === 'tunnel:https')?.status, 'pass');

    const capture = await runFerry(['doctor', '--config', configFile, '--capture', '3', '--json'], { timeoutMs: 60_000 });
    assert.equal(capture.code, 0, `${capture.stdout}\n${capture.stderr}`);
    const summary = JSON.parse(capture.stdout) as { attempts: number; connectAnswers: { status: number; count: number }[]; outcomes: { target: string; workingRoute?: string }[] };
    assert.ok(summary.attempts >= 2);
    assert.equal(summary.connectAnswers.find((a) => a.status === 200)?.count, summary.attempts);
    assert.equal(summary.outcomes.find((o) => o.target === `${RELAY}:${stack.relay.ports.user}`)?.workingRoute, `PROXY 127.0.0.1:${squid.port}`);
    assert.ok((stack.relay.log().match(/"msg":"tunnel up"/g) ?? []).length >= 2, 'the relay saw the tunnels');
    assert.ok(squid.accessLog().some((line) => line.includes(`CONNECT ${RELAY}:${stack.relay.ports.user}`) && line.includes('/200 ')));
  });

  it('every other destination is refused by the same Squid', async () => {
    const dialer = createDialer({ resolver: fixedRoutes([{ kind: 'PROXY', host: '127.0.0.1', port: squid.port }]), connectTimeoutMs: 3000 });
    for (const [host, port] of [[RELAY, stack.relay.ports.tunnel], [ELSEWHERE, stack.relay.ports.user]] as const) {
      const error = await dialer.dial({ host, port, caller: 'connector' }).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof DialError, `${host}:${port} was allowed`);
      assert.equal(error.errorClass, 'proxy-refused');
      assert.equal(error.fields.statusCode, 403);
      await squid.waitForAccessLog((line) => line.includes(`TCP_DENIED/403`) && line.includes(`CONNECT ${host}:${port}`));
    }
  });

  it('--analyze reads the trace the capture wrote', async () => {
    assert.ok(existsSync(traceFile));
    const run = await runFerry(['doctor', '--analyze', traceFile]);
    assert.equal(run.code, 0, run.stdout);
    assert.match(run.stdout, /CONNECT answers by status:\n {2}200 tunnel established/);
    assert.match(run.stdout, new RegExp(`connector → ${RELAY.replace(/\./g, '\\.')}:${stack.relay.ports.user}: PROXY 127\\.0\\.0\\.1:${squid.port}`));
    const missing = await runFerry(['doctor', '--analyze', path.join(stack.dir, 'nope.jsonl')]);
    assert.equal(missing.code, 2);
  });
});
