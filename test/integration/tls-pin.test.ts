// The relay TLS pin with real TLS: a TLS-inspecting Squid (ssl-bump) is reported as
// tls-interception naming the bump CA, a wrong CA likewise, an expired certificate as tls, a
// refused client certificate as relay-rejected; and nothing reaches the relay over a bad channel.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { createDialer, fixedRoutes } from '../../src/egress/dial/index.js';
import { connectPinnedTls } from '../../src/egress/tls.js';
import { DialError } from '../../src/shared/errors.js';
import { startSquid, type SquidInstance } from '../harness/squid.js';
import { createTestCa, startTlsEchoServer, type TestCa, type TlsEchoServer } from '../harness/tls-server.js';

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

async function failure(promise: Promise<unknown>): Promise<DialError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DialError, `expected a DialError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected failure');
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
