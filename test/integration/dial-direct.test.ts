// DIRECT dialing and its classes with real parts: a closed port (connect-refused), a name a real
// dnsmasq answers NXDOMAIN for (dns), an iptables DROP rule on a loopback port (connect-timeout,
// SYN unanswered), and failover from a blackholed proxy to DIRECT.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { createDialer, fixedRoutes, RoutesExhaustedError } from '../../src/egress/dial/index.js';
import type { Route } from '../../src/egress/types.js';
import { startDnsmasq, type DnsmasqHandle } from '../harness/dnsmasq.js';
import { cleanupOnExit, freePort } from '../harness/processes.js';
import { failure } from '../harness/expect-dial-error.js';

const isRoot = process.getuid?.() === 0;
let echoServer: net.Server;
let echoPort: number;
let closedPort: number;
let blackholePort: number;
let dnsmasq: DnsmasqHandle;
let dropRule: string[] | undefined;
let forgetDropRule: (() => void) | undefined;

before(async () => {
  echoServer = net.createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echoServer.listen(0, '127.0.0.1', resolve));
  echoPort = (echoServer.address() as net.AddressInfo).port;
  closedPort = await freePort();
  blackholePort = await freePort();
  dnsmasq = await startDnsmasq({ records: { 'relay.ferry.test': '127.0.0.1' }, address: '127.0.0.1', port: await freePort() });
  if (isRoot) {
    dropRule = ['INPUT', '-i', 'lo', '-p', 'tcp', '--dport', String(blackholePort), '-j', 'DROP', '-m', 'comment', '--comment', 'ferry-test-blackhole'];
    const rule = dropRule;
    execFileSync('iptables', ['-I', ...rule]);
    // Removed even when the run is killed half way.
    forgetDropRule = cleanupOnExit(() => execFileSync('iptables', ['-D', ...rule]));
  }
});

after(async () => {
  if (dropRule) {
    execFileSync('iptables', ['-D', ...dropRule]);
    forgetDropRule?.();
  }
  await Promise.allSettled([dnsmasq?.stop(), new Promise((resolve) => echoServer?.close(resolve))]);
});

test('no resolver: DIRECT; the socket reaches the target', async () => {
  const dialer = createDialer();
  const result = await dialer.dial({ host: '127.0.0.1', port: echoPort, caller: 'backend' });
  assert.equal(result.route.kind, 'DIRECT');
  assert.equal(result.traces[0]?.route, 'DIRECT');
  assert.equal(result.traces[0]?.source, 'default');
  const reply = await new Promise<string>((resolve) => {
    result.socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
    result.socket.write('ping');
  });
  assert.equal(reply, 'ping');
  result.socket.destroy();
});

test('a closed port: connect-refused, phase tcp', async () => {
  const error = await failure(createDialer().dial({ host: '127.0.0.1', port: closedPort, caller: 'connector' }));
  assert.equal(error.errorClass, 'connect-refused');
  assert.equal(error.fields.phase, 'tcp');
  assert.equal(error.fields.target, `127.0.0.1:${closedPort}`);
  assert.equal(error.fields.proxy, undefined);
});

test('a name the DNS server does not know: dns; a known one connects', async () => {
  const dialer = createDialer({ lookup: dnsmasq.lookup });
  const error = await failure(dialer.dial({ host: 'nowhere.ferry.test', port: echoPort, caller: 'connector' }));
  assert.equal(error.errorClass, 'dns');
  assert.equal(error.fields.phase, 'resolve');
  assert.match(error.message, /nowhere\.ferry\.test/);
  const ok = await dialer.dial({ host: 'relay.ferry.test', port: echoPort, caller: 'connector' });
  ok.socket.destroy();
});

test('SYN dropped by a firewall rule: connect-timeout after the configured time', { skip: isRoot ? false : 'needs root for iptables' }, async () => {
  const started = Date.now();
  const error = await failure(createDialer({ connectTimeoutMs: 400 }).dial({ host: '127.0.0.1', port: blackholePort, caller: 'connector' }));
  assert.equal(error.errorClass, 'connect-timeout');
  assert.equal(error.fields.timeoutMs, 400);
  assert.ok(Date.now() - started >= 380);
  assert.ok(Date.now() - started < 3_000);
});

test('a blackholed proxy first, then DIRECT: failover, proxy skipped next time', { skip: isRoot ? false : 'needs root for iptables' }, async () => {
  const blackholed: Route = { kind: 'PROXY', host: '127.0.0.1', port: blackholePort };
  const dialer = createDialer({ resolver: fixedRoutes([blackholed, { kind: 'DIRECT' }], 'pac'), connectTimeoutMs: 300 });
  const first = await dialer.dial({ host: '127.0.0.1', port: echoPort, caller: 'connector' });
  first.socket.destroy();
  assert.deepEqual(first.traces.map((t) => [t.route, t.errorClass ?? 'ok']), [[`PROXY 127.0.0.1:${blackholePort}`, 'connect-timeout'], ['DIRECT', 'ok']]);
  assert.equal(dialer.health.skipped(blackholed), true);
  const second = await dialer.dial({ host: '127.0.0.1', port: echoPort, caller: 'connector' });
  second.socket.destroy();
  assert.deepEqual(second.traces.map((t) => t.route), ['DIRECT']);
});

test('an aborted signal stops the walk', async () => {
  const controller = new AbortController();
  controller.abort(new Error('shutting down'));
  await assert.rejects(createDialer().dial({ host: '127.0.0.1', port: echoPort, caller: 'connector', signal: controller.signal }), /shutting down/);
});

test('every route refused: RoutesExhaustedError lists them; the first is the one reported on a tie', async () => {
  const error = await failure(
    createDialer({ resolver: fixedRoutes([{ kind: 'PROXY', host: '127.0.0.1', port: closedPort }, { kind: 'DIRECT' }]) }).dial({
      host: '127.0.0.1',
      port: closedPort,
      caller: 'connector',
    }),
  );
  assert.ok(error instanceof RoutesExhaustedError);
  assert.equal(error.errorClass, 'connect-refused');
  assert.equal(error.fields.proxy, `http://127.0.0.1:${closedPort}`);
  assert.equal(error.traces.length, 2);
});
