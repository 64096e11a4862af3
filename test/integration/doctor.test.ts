// `ferry doctor` against real parts: a relay and a registered connector (real processes), real
// Squids (open, Basic auth, a denied port, ssl-bump), a PAC list whose first proxy is dead, and an
// iptables DROP rule on the relay's tunnel port. For each scenario the doctor must name the right
// class and fix, in the text checklist and in the JSON document, and exit with the right code.
// The relay is dialed as relay.ferry.test, a name only Squid resolves (its hosts_file).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { FerryStack } from '../harness/ferry-stack.js';
import { runFerry, type CliRun } from '../harness/ferry-cli.js';
import { cleanupOnExit, freePort } from '../harness/processes.js';
import { startSquid, type SquidInstance } from '../harness/squid.js';
import { startDnsmasq, type DnsmasqHandle } from '../harness/dnsmasq.js';
import { startWpadServer, type WpadServer } from '../harness/wpad-server.js';

const RELAY = 'relay.ferry.test';
const isRoot = process.getuid?.() === 0;

interface JsonCheck { id: string; status: string; target: string; details: string; fix: string | null; errorClass: string | null }
interface JsonReport { status: string; checks: JsonCheck[] }

interface Expectation {
  /** Check id (exact) or prefix ending in '*'. */
  id: string;
  status: string;
  errorClass?: string | null;
  details?: RegExp;
  fix?: RegExp;
}

interface Scenario {
  name: string;
  /** Connector config (merged over the registered one's stateDir). */
  config: () => Record<string, unknown>;
  exitCode: number;
  expect: Expectation[];
  needsRoot?: boolean;
  /** Needs the wpad.dat server on port 80 (WPAD always fetches port 80). */
  needsWpad?: boolean;
  before?: () => void;
  after?: () => void;
}

describe('ferry doctor: Squid scenarios', () => {
  const stack = new FerryStack();
  const squids: Record<'open' | 'auth' | 'deny' | 'bump', SquidInstance | undefined> = { open: undefined, auth: undefined, deny: undefined, bump: undefined };
  let deadPort: number;
  let dnsmasq: DnsmasqHandle | undefined;
  let wpad: WpadServer | undefined;
  let dropRule: string[] | undefined;
  let forgetDropRule: (() => void) | undefined;

  before(async () => {
    await stack.startRelay();
    const registered = await stack.registerConnector({ name: 'c' });
    assert.equal(registered.run.code, 0, registered.run.stderr);
    deadPort = await freePort();
    // A second connector, removed on the relay: its certificate is refused from now on.
    const removed = await stack.registerConnector({ name: 'removed' });
    assert.equal(removed.run.code, 0, removed.run.stderr);
    const remove = await stack.relay.cli(['relay', 'connectors', 'remove', 'removed']);
    assert.equal(remove.code, 0, remove.stderr);
    const hosts = { [RELAY]: '127.0.0.1' };
    const relayCa = readFileSync(stack.relay.caFile, 'utf8');
    [squids.open, squids.auth, squids.deny, squids.bump] = await Promise.all([
      startSquid({ mode: 'open', hosts }),
      startSquid({ mode: 'auth', hosts }),
      startSquid({ mode: 'open', hosts, denyPorts: [stack.relay.ports.user] }),
      startSquid({ mode: 'bump', hosts, upstreamCaPem: relayCa }),
    ]);
    // WPAD: dnsmasq answers wpad.corp.test; the wpad.dat (served on port 80 when free) names the open Squid.
    if (isRoot) {
      dnsmasq = await startDnsmasq({ address: '127.0.0.1', port: await freePort(), records: { 'wpad.corp.test': '127.0.0.1' } });
      wpad = await startWpadServer(`function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${squids.open!.port}"; }`);
    }
  });

  after(async () => {
    removeDropRule();
    await Promise.allSettled([...Object.values(squids).map((s) => s?.stop()), stack.stop(), dnsmasq?.stop(), wpad?.stop()]);
  });

  function removeDropRule() {
    if (!dropRule) return;
    try {
      execFileSync('iptables', ['-D', ...dropRule]);
    } finally {
      dropRule = undefined;
      forgetDropRule?.();
    }
  }

  const viaProxy = (squid: () => SquidInstance | undefined) => () => ({ transport: 'https', relayHost: RELAY, proxy: { address: `http://127.0.0.1:${squid()!.port}` } });

  const scenarios: Scenario[] = [
    {
      name: 'open proxy: everything passes',
      config: viaProxy(() => squids.open),
      exitCode: 0,
      expect: [
        { id: 'config', status: 'pass' },
        { id: 'route:tunnel-https', status: 'pass', details: /PROXY 127\.0\.0\.1:\d+ — for connector, from config/ },
        { id: `dns:${RELAY}`, status: 'skip', details: /reached through the proxy/ },
        { id: 'connect:tunnel-https:*', status: 'pass', details: /answered 200 \(tunnel established\)/ },
        { id: 'tls:tunnel-https', status: 'pass', details: /chains to the pinned relay CA/ },
        { id: 'client-cert', status: 'pass' },
        { id: 'client-cert:relay', status: 'pass' },
        { id: 'clock', status: 'pass' },
        { id: 'tunnel:https', status: 'pass', details: /tunnel established via http:\/\/127\.0\.0\.1/ },
        { id: 'tunnel:tcp', status: 'skip' },
      ],
    },
    {
      name: 'Basic auth, no credentials: proxy-auth-required with the offered scheme',
      config: viaProxy(() => squids.auth),
      exitCode: 1,
      expect: [
        { id: 'connect:tunnel-https:*', status: 'fail', errorClass: 'proxy-auth-required', details: /answered 407 .*offered schemes: Basic/, fix: /anonymous access .* or configure proxy credentials/ },
        { id: 'tunnel:https', status: 'fail', errorClass: 'proxy-auth-required' },
      ],
    },
    {
      name: 'port denied by the proxy: proxy-refused naming host:port',
      config: viaProxy(() => squids.deny),
      exitCode: 1,
      expect: [
        { id: 'connect:tunnel-https:*', status: 'fail', errorClass: 'proxy-refused', details: /answered 403/, fix: new RegExp(`add ${RELAY.replace(/\./g, '\\.')}:\\d+ to the proxy's outbound`) },
        { id: 'connect:registration:*', status: 'pass' },
        { id: 'tunnel:https', status: 'fail', errorClass: 'proxy-refused' },
      ],
    },
    {
      name: 'ssl-bump: tls-interception naming the inspection CA',
      config: viaProxy(() => squids.bump),
      exitCode: 1,
      expect: [
        { id: 'connect:registration:*', status: 'pass' },
        { id: 'tls:registration', status: 'fail', errorClass: 'tls-interception', details: /Corp Inspection CA/, fix: /exempt the relay's hosts from TLS inspection/ },
        { id: 'tunnel:https', status: 'fail', errorClass: 'tls-interception' },
      ],
    },
    {
      name: 'PAC list whose first proxy is dead: warning, then the second proxy works',
      config: () => {
        const pac = path.join(stack.dir, 'dead-first.pac');
        writeFileSync(pac, `function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${deadPort}; PROXY 127.0.0.1:${squids.open!.port}"; }\n`);
        return { transport: 'https', relayHost: RELAY, proxy: { scriptLocation: `file://${pac}` } };
      },
      exitCode: 0,
      expect: [
        { id: 'pac:tunnel-https', status: 'pass', details: /FindProxyForURL returned "PROXY 127\.0\.0\.1:\d+; PROXY/ },
        { id: 'tcp:127.0.0.1:DEAD', status: 'warn', errorClass: 'connect-refused', fix: /nothing listens/ },
        { id: 'connect:tunnel-https:http://127.0.0.1:DEAD', status: 'warn', errorClass: 'connect-refused' },
        { id: 'tunnel:https', status: 'pass' },
      ],
    },
    {
      name: 'firewall drops the direct path (transport tcp): SYN unanswered',
      needsRoot: true,
      config: () => ({ transport: 'tcp' }),
      before: () => addDropRule(),
      after: () => removeDropRule(),
      exitCode: 1,
      expect: [
        { id: 'tcp:localhost:TUNNEL', status: 'fail', errorClass: 'connect-timeout', fix: /SYN unanswered: a firewall drops traffic to localhost:\d+/ },
        { id: 'tunnel:tcp', status: 'fail', errorClass: 'connect-timeout', fix: /SYN unanswered: a firewall drops traffic to localhost:\d+/ },
        { id: 'tunnel:https', status: 'skip' },
      ],
    },
    {
      name: 'firewall drops the direct path (transport auto): warning, https carries the tunnel',
      needsRoot: true,
      config: () => ({ transport: 'auto' }),
      before: () => addDropRule(),
      after: () => removeDropRule(),
      exitCode: 0,
      expect: [
        { id: 'tunnel:tcp', status: 'warn', errorClass: 'connect-timeout', fix: /SYN unanswered/ },
        { id: 'tunnel:https', status: 'pass' },
      ],
    },
    {
      name: 'WPAD discovery: the names tried, the script found, its PAC result',
      needsWpad: true,
      config: () => ({ transport: 'https', relayHost: RELAY, proxy: { autoDetect: true, wpad: { domainSuffix: 'a.corp.test', dnsServers: [dnsmasq!.server] } } }),
      exitCode: 0,
      expect: [
        { id: 'wpad', status: 'pass', details: /names tried: wpad\.a\.corp\.test, wpad\.corp\.test; script served by .*wpad\.corp\.test/ },
        { id: 'pac:tunnel-https', status: 'pass', details: /FindProxyForURL returned "PROXY 127\.0\.0\.1:\d+"/ },
        { id: 'tunnel:https', status: 'pass' },
      ],
    },
    {
      name: 'connector removed on the relay: relay-rejected, re-register',
      config: () => ({ stateDir: './removed', name: 'removed', transport: 'tcp' }),
      exitCode: 1,
      expect: [
        { id: 'client-cert', status: 'pass' },
        { id: 'client-cert:relay', status: 'fail', errorClass: 'relay-rejected', fix: /re-register the connector/ },
        { id: 'tunnel:tcp', status: 'fail', errorClass: 'relay-rejected', fix: /re-register the connector/ },
      ],
    },
  ];

  function addDropRule() {
    dropRule = ['INPUT', '-i', 'lo', '-p', 'tcp', '--dport', String(stack.relay.ports.tunnel), '-j', 'DROP', '-m', 'comment', '--comment', 'ferry-test-doctor'];
    const rule = dropRule;
    execFileSync('iptables', ['-I', ...rule]);
    forgetDropRule = cleanupOnExit(() => execFileSync('iptables', ['-D', ...rule]));
  }

  let counter = 0;
  function writeConfig(extra: Record<string, unknown>): string {
    const file = path.join(stack.dir, `doctor-${++counter}.yaml`);
    writeFileSync(file, stringify({ stateDir: './c', name: 'c', directTimeoutMs: 1500, machineConfig: './no-machine.config', ...extra }));
    return file;
  }

  function resolveId(id: string): string {
    return id.replace('DEAD', String(deadPort)).replace('TUNNEL', String(stack.relay.ports.tunnel));
  }

  function find(report: JsonReport, id: string): JsonCheck | undefined {
    const wanted = resolveId(id);
    return wanted.endsWith('*') ? report.checks.find((c) => c.id.startsWith(wanted.slice(0, -1))) : report.checks.find((c) => c.id === wanted);
  }

  for (const scenario of scenarios) {
    it(scenario.name, { timeout: 120_000 }, async (t) => {
      if (scenario.needsRoot && !isRoot) return t.skip('needs root for iptables');
      if (scenario.needsWpad && wpad?.port !== 80) return t.skip(isRoot ? 'port 80 is taken: WPAD fetches wpad.dat from port 80' : 'needs root for dnsmasq and port 80');
      const file = writeConfig(scenario.config());
      scenario.before?.();
      let json: CliRun;
      let text: CliRun;
      try {
        json = await runFerry(['doctor', '--config', file, '--json'], { timeoutMs: 60_000 });
        text = await runFerry(['doctor', '--config', file], { timeoutMs: 60_000 });
      } finally {
        scenario.after?.();
      }
      const report = JSON.parse(json.stdout) as JsonReport;
      if (process.env.FERRY_TEST_SHOW) process.stderr.write(`--- ${scenario.name}\n${text.stdout}`);
      const dump = `\n${text.stdout}\n${text.stderr}`;
      assert.equal(json.code, scenario.exitCode, `json exit code${dump}`);
      assert.equal(text.code, scenario.exitCode, `text exit code${dump}`);
      for (const expected of scenario.expect) {
        const check = find(report, expected.id);
        assert.ok(check, `no check ${resolveId(expected.id)}${dump}`);
        assert.equal(check.status, expected.status, `${check.id} status${dump}`);
        if (expected.errorClass !== undefined) assert.equal(check.errorClass, expected.errorClass, `${check.id} errorClass${dump}`);
        if (expected.details) assert.match(check.details, expected.details, `${check.id} details`);
        if (expected.fix) assert.match(check.fix ?? '', expected.fix, `${check.id} fix`);
        // The same verdict in the text checklist, with the fix line right under it.
        const mark = { pass: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' }[check.status];
        const at = text.stdout.indexOf(`[${mark}] ${check.id}  `);
        assert.ok(at >= 0, `text has no line for ${check.id}${dump}`);
        if (check.errorClass) assert.ok(text.stdout.slice(at).split('\n')[0]!.endsWith(`[${check.errorClass}]`), `${check.id} class in text`);
        if (check.fix && (check.status === 'fail' || check.status === 'warn')) {
          assert.equal(text.stdout.slice(at).split('\n')[1], `       fix: ${check.fix}`);
        }
      }
    });
  }

  it('squid saw the CONNECTs of the open-proxy scenario', async () => {
    const lines = squids.open!.accessLog();
    assert.ok(lines.some((line) => line.includes(`CONNECT ${RELAY}:${stack.relay.ports.user}`) && line.includes('/200 ')), lines.join('\n'));
  });

  it('--backend: a listening app passes, a closed port fails as connect-refused', async () => {
    const app = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const closed = await freePort();
    try {
      const port = (app.address() as AddressInfo).port;
      const run = await runFerry(['doctor', '--config', writeConfig({ transport: 'tcp' }), '--json', '--backend', `http://127.0.0.1:${port}/`, '--backend', `http://127.0.0.1:${closed}/`], { timeoutMs: 60_000 });
      assert.equal(run.code, 1, run.stdout);
      const report = JSON.parse(run.stdout) as JsonReport;
      assert.equal(find(report, `backend:127.0.0.1:${port}`)?.status, 'pass');
      assert.match(find(report, `backend:127.0.0.1:${port}`)?.details ?? '', /answered HTTP 200 \(direct\)/);
      const dead = find(report, `backend:127.0.0.1:${closed}`);
      assert.equal(dead?.status, 'fail');
      assert.equal(dead?.errorClass, 'connect-refused');
    } finally {
      app.close();
    }
  });

  it('--backend through a proxy that wants credentials: proxy-auth-required, not "answered HTTP 407"', async () => {
    const app = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    try {
      const port = (app.address() as AddressInfo).port;
      // The app by a name only Squid resolves (loopback addresses are never proxied).
      const config = writeConfig({ transport: 'tcp', useDefaultProxyForBackendRequests: true, proxy: { address: `http://127.0.0.1:${squids.auth!.port}` } });
      const run = await runFerry(['doctor', '--config', config, '--json', '--backend', `http://${RELAY}:${port}/`], { timeoutMs: 60_000 });
      const report = JSON.parse(run.stdout) as JsonReport;
      const check = find(report, `backend:${RELAY}:${port}`);
      assert.equal(check?.status, 'fail', JSON.stringify(check));
      assert.equal(check?.errorClass, 'proxy-auth-required');
      assert.match(check?.details ?? '', /asks for authentication .*\(407; schemes offered: Basic\)/);
    } finally {
      app.close();
    }
  });

  it('--updater-config updater.yaml: the updater\'s route from the file its proxyConfig names', async () => {
    const settings = path.join(stack.dir, 'updater-proxy.config');
    writeFileSync(settings, `<configuration>\n  <system.net>\n    <defaultProxy>\n      <proxy proxyaddress="http://127.0.0.1:${squids.open!.port}"/>\n    </defaultProxy>\n  </system.net>\n</configuration>\n`);
    const updaterYaml = path.join(stack.dir, 'doctor-updater.yaml');
    writeFileSync(updaterYaml, 'proxyConfig: updater-proxy.config\npublisherKeys: []\n');
    // The release host by name (loopback names are never proxied).
    const run = await runFerry(['doctor', '--config', writeConfig({ transport: 'tcp', relayHost: RELAY }), '--json', '--updater-config', updaterYaml], { timeoutMs: 60_000 });
    const report = JSON.parse(run.stdout) as JsonReport;
    assert.match(find(report, 'route:updates')?.details ?? '', new RegExp(`PROXY 127\\.0\\.0\\.1:${squids.open!.port} — for updater`), JSON.stringify(find(report, 'route:updates')));
    assert.match(find(report, 'config')?.details ?? '', /updater settings .*updater-proxy\.config/);
  });

  it('a broken config is exit code 2 with file and line', async () => {
    const file = path.join(stack.dir, 'broken.yaml');
    writeFileSync(file, 'stateDir: ./c\nproxy:\n  address: proxy.corp:8080\n');
    const run = await runFerry(['doctor', '--config', file, '--json']);
    assert.equal(run.code, 2, run.stderr);
    const report = JSON.parse(run.stdout) as JsonReport;
    assert.equal(report.checks[0]!.id, 'config');
    assert.equal(report.checks[0]!.status, 'fail');
    assert.match(report.checks[0]!.target, /broken\.yaml:3/);
  });
});
