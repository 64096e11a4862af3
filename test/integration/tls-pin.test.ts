// The relay TLS pin with real TLS: a TLS-inspecting Squid (ssl-bump) is reported as
// tls-interception naming the bump CA, a wrong CA likewise, an expired certificate as tls, a
// refused client certificate as relay-rejected; and nothing reaches the relay over a bad channel.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { createDialer, fixedRoutes, RoutesExhaustedError } from '../../src/egress/dial/index.js';
import { connectPinnedTls } from '../../src/egress/tls.js';
import { startSquid, type SquidInstance } from '../harness/squid.js';
import { createTestCa, startTlsEchoServer, type TestCa, type TlsEchoServer } from '../harness/tls-server.js';
import { failure } from '../harness/expect-dial-error.js';

const RELAY = 'relay.ferry.test';
let relay: TlsEchoServer;
let mtlsRelay: TlsEchoServer;
let expiredRelay: TlsEchoServer;
let clientCa: TestCa;
let bump: SquidInstance;

before(async () => {
  relay = await startTlsEchoServer({ hostnames: [RELAY] });
  clientCa = await createTestCa('Ferry Test Connector CA');
  mtlsRelay = await startTlsEchoServer({ hostnames: [RELAY], clientCaPem: clientCa.certPem });
  expiredRelay = await startTlsEchoServer({ hostnames: [RELAY], leafNotAfter: new Date(Date.now() - 30_000) });
  bump = await startSquid({ mode: 'bump', hosts: { [RELAY]: '127.0.0.1' }, upstreamCaPem: relay.ca.certPem, bumpCaSubject: '/CN=Corp Inspection CA/O=Corp IT' });
});

after(async () => {
  await Promise.allSettled([bump?.stop(), relay?.stop(), mtlsRelay?.stop(), expiredRelay?.stop()]);
});

function direct(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function echo(socket: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
    socket.once('error', reject);
    socket.write(text);
  });
}

test('ssl-bump Squid: tls-interception naming the inspection CA; nothing reaches the relay', async () => {
  const dialer = createDialer({ resolver: fixedRoutes([{ kind: 'PROXY', host: bump.host, port: bump.port }]) });
  const before = relay.bytesReceived();
  const result = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
  assert.equal(result.traces[0]?.connectStatus, 200);
  const error = await failure(
    connectPinnedTls(result.socket, { servername: RELAY, caPem: relay.ca.certPem, target: `${RELAY}:${relay.port}`, proxy: result.traces[0]?.proxy as string }),
  );
  assert.equal(error.errorClass, 'tls-interception');
  assert.equal(error.fields.phase, 'tls');
  assert.match(error.fields.observedIssuer ?? '', /CN=Corp Inspection CA/);
  assert.match(error.message, /Corp Inspection CA/);
  assert.match(error.message, /Exempt the relay's hosts from TLS inspection/);
  assert.equal(error.fix, "exempt the relay's hosts from TLS inspection on the proxy");
  assert.equal(relay.bytesReceived(), before);
  await bump.waitForAccessLog((line) => line.includes(`CONNECT ${RELAY}:${relay.port}`));
});

test('direct, but the relay presents a chain from another CA: tls-interception naming that CA', async () => {
  const otherCa = await createTestCa('Some Other CA');
  const error = await failure(connectPinnedTls(await direct(relay.port), { servername: RELAY, caPem: otherCa.certPem, target: `${RELAY}:${relay.port}` }));
  assert.equal(error.errorClass, 'tls-interception');
  assert.match(error.fields.observedIssuer ?? '', /CN=Ferry Test Relay CA/);
});

test('the pinned CA and the right name: the channel works', async () => {
  const secure = await connectPinnedTls(await direct(relay.port), { servername: RELAY, caPem: relay.ca.certPem, target: `${RELAY}:${relay.port}`, alpn: ['h2'] });
  assert.equal(await echo(secure, 'pinned'), 'pinned');
  secure.destroy();
});

test('an expired relay certificate is a tls failure, not interception', async () => {
  const error = await failure(connectPinnedTls(await direct(expiredRelay.port), { servername: RELAY, caPem: expiredRelay.ca.certPem, target: `${RELAY}:${expiredRelay.port}` }));
  assert.equal(error.errorClass, 'tls');
  assert.match(error.message, /CERT_HAS_EXPIRED/);
});

test('a certificate for another name is a tls failure', async () => {
  const error = await failure(connectPinnedTls(await direct(relay.port), { servername: 'other.ferry.test', caPem: relay.ca.certPem, target: `other.ferry.test:${relay.port}` }));
  assert.equal(error.errorClass, 'tls');
});

test('mutual TLS: a client certificate the relay does not accept → relay-rejected; a good one works', async () => {
  const strangerCa = await createTestCa('Stranger CA');
  const stranger = await strangerCa.issue({ commonName: 'connector-x', client: true });
  const before = mtlsRelay.bytesReceived();
  const error = await failure(
    connectPinnedTls(await direct(mtlsRelay.port), {
      servername: RELAY,
      caPem: mtlsRelay.ca.certPem,
      certPem: stranger.certPem,
      keyPem: stranger.keyPem,
      target: `${RELAY}:${mtlsRelay.port}`,
    }),
  );
  assert.equal(error.errorClass, 'relay-rejected');
  assert.equal(error.permanent, true);
  assert.equal(mtlsRelay.bytesReceived(), before);

  const good = await clientCa.issue({ commonName: 'connector-1', client: true });
  const secure = await connectPinnedTls(await direct(mtlsRelay.port), {
    servername: RELAY,
    caPem: mtlsRelay.ca.certPem,
    certPem: good.certPem,
    keyPem: good.keyPem,
    target: `${RELAY}:${mtlsRelay.port}`,
  });
  assert.equal(await echo(secure, 'mtls'), 'mtls');
  secure.destroy();
});

test('dialTls: an intercepting proxy fails over to the next route (DIRECT); the trace names why', async () => {
  const dialer = createDialer({ resolver: fixedRoutes([{ kind: 'PROXY', host: bump.host, port: bump.port }, { kind: 'DIRECT' }], 'pac') });
  const result = await dialer.dialTls({ host: '127.0.0.1', port: relay.port, caller: 'connector' }, { servername: RELAY, caPem: relay.ca.certPem });
  assert.deepEqual(result.traces.map((t) => [t.route, t.errorClass ?? 'ok', t.connectStatus]), [
    [`PROXY 127.0.0.1:${bump.port}`, 'tls-interception', 200],
    ['DIRECT', 'ok', undefined],
  ]);
  assert.equal(typeof result.traces[1]?.tlsMs, 'number');
  assert.equal(await echo(result.socket, 'after failover'), 'after failover');
  result.socket.destroy();
  // The proxy answered CONNECT: it is not marked dead, but DIRECT now goes first for this target.
  assert.equal(dialer.health.skipped({ kind: 'PROXY', host: bump.host, port: bump.port }), false);
  const again = await dialer.dialTls({ host: '127.0.0.1', port: relay.port, caller: 'connector' }, { servername: RELAY, caPem: relay.ca.certPem });
  assert.deepEqual(again.traces.map((t) => t.route), ['DIRECT']);
  again.socket.destroy();
});

test('dialTls: interception (tunnel reached the target) outranks an unreachable proxy', async () => {
  const dialer = createDialer({ resolver: fixedRoutes([{ kind: 'PROXY', host: '127.0.0.1', port: 1 }, { kind: 'PROXY', host: bump.host, port: bump.port }]) });
  const error = await failure(dialer.dialTls({ host: '127.0.0.1', port: relay.port, caller: 'connector' }, { servername: RELAY, caPem: relay.ca.certPem }));
  assert.ok(error instanceof RoutesExhaustedError);
  assert.equal(error.errorClass, 'tls-interception');
  assert.deepEqual(error.traces.map((t) => t.errorClass), ['connect-refused', 'tls-interception']);
});

test('dialTls: relay-rejected stops the walk (no other route can fix a refused certificate)', async () => {
  const stranger = await (await createTestCa('Stranger CA 2')).issue({ commonName: 'connector-y', client: true });
  const dialer = createDialer({ resolver: fixedRoutes([{ kind: 'DIRECT' }, { kind: 'PROXY', host: bump.host, port: bump.port }]) });
  const error = await failure(
    dialer.dialTls({ host: '127.0.0.1', port: mtlsRelay.port, caller: 'connector' }, { servername: RELAY, caPem: mtlsRelay.ca.certPem, certPem: stranger.certPem, keyPem: stranger.keyPem }),
  );
  assert.equal(error.errorClass, 'relay-rejected');
  assert.ok(error instanceof RoutesExhaustedError);
  assert.equal(error.traces.length, 1);
});
