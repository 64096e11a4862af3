// An HTTPS proxy (TLS to the proxy, then CONNECT inside it) with a real Squid https_port; the
// relay TLS then runs inside that (TLS in TLS). A proxy certificate we do not trust is `tls`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createDialer, fixedRoutes } from '../../src/egress/dial/index.js';
import { connectPinnedTls } from '../../src/egress/tls.js';
import { DialError } from '../../src/shared/errors.js';
import type { Route } from '../../src/egress/types.js';
import { startSquid, type SquidInstance } from '../harness/squid.js';
import { createTestCa, startTlsEchoServer, type TestCa, type TlsEchoServer } from '../harness/tls-server.js';

const RELAY = 'relay.ferry.test';
let relay: TlsEchoServer;
let proxyCa: TestCa;
let squid: SquidInstance;

before(async () => {
  relay = await startTlsEchoServer({ hostnames: [RELAY] });
  proxyCa = await createTestCa('Corp Proxy CA');
  const proxyCert = await proxyCa.issue({ commonName: 'proxy', ips: ['127.0.0.1'], dnsNames: ['localhost'] });
  squid = await startSquid({ mode: 'open', hosts: { [RELAY]: '127.0.0.1' }, tlsListener: { certPem: proxyCert.certPem + proxyCa.certPem, keyPem: proxyCert.keyPem } });
});

after(async () => {
  await Promise.allSettled([squid?.stop(), relay?.stop()]);
});

test('HTTPS proxy: TLS to Squid, CONNECT, then the pinned relay TLS inside', async () => {
  const route: Route = { kind: 'HTTPS', host: squid.host, port: squid.port };
  const dialer = createDialer({ resolver: fixedRoutes([route]), proxyCaPem: proxyCa.certPem });
  const result = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
  const trace = result.traces[0];
  assert.equal(trace?.route, `HTTPS 127.0.0.1:${squid.port}`);
  assert.equal(trace?.proxy, `https://127.0.0.1:${squid.port}`);
  assert.equal(trace?.connectStatus, 200);
  assert.equal(typeof trace?.proxyTlsMs, 'number');
  const secure = await connectPinnedTls(result.socket, { servername: RELAY, caPem: relay.ca.certPem, target: `${RELAY}:${relay.port}` });
  const reply = await new Promise<string>((resolve) => {
    secure.once('data', (chunk: Buffer) => resolve(chunk.toString()));
    secure.write('tls-in-tls');
  });
  assert.equal(reply, 'tls-in-tls');
  secure.destroy();
  await squid.waitForAccessLog((line) => line.includes(`CONNECT ${RELAY}:${relay.port}`) && line.includes('TCP_TUNNEL/200'));
});

test('HTTPS proxy with a certificate we do not trust: tls, phase tls, proxy skipped', async () => {
  const route: Route = { kind: 'HTTPS', host: squid.host, port: squid.port };
  const dialer = createDialer({ resolver: fixedRoutes([route]), proxyCaPem: relay.ca.certPem });
  const error = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' }).catch((e: DialError) => e);
  assert.ok(error instanceof DialError);
  assert.equal(error.errorClass, 'tls');
  assert.equal(error.fields.phase, 'tls');
  assert.equal(error.fields.proxy, `https://127.0.0.1:${squid.port}`);
  assert.equal(dialer.health.skipped(route), true);
});
