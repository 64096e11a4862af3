// SOCKS5 routes (as a PAC's `SOCKS5 host:port` gives them): the name goes to the proxy unresolved,
// username/password from the route, refusals are proxy-refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createDialer, fixedRoutes } from '../../src/egress/dial/index.js';
import { connectPinnedTls } from '../../src/egress/tls.js';
import { DialError } from '../../src/shared/errors.js';
import { startSocks5, type Socks5Server } from '../harness/socks5.js';
import { startTlsEchoServer, type TlsEchoServer } from '../harness/tls-server.js';

const RELAY = 'relay.ferry.test';
let relay: TlsEchoServer;
let socks: Socks5Server;
let authSocks: Socks5Server;

before(async () => {
  relay = await startTlsEchoServer({ hostnames: [RELAY] });
  socks = await startSocks5({ hosts: { [RELAY]: '127.0.0.1' } });
  authSocks = await startSocks5({ hosts: { [RELAY]: '127.0.0.1' }, users: { dave: 'pw-123' } });
});

after(async () => {
  await Promise.allSettled([relay?.stop(), socks?.stop(), authSocks?.stop()]);
});

test('SOCKS5: the relay name goes to the proxy unresolved; pinned TLS works through it', async () => {
  const dialer = createDialer({ resolver: fixedRoutes([{ kind: 'SOCKS5', host: '127.0.0.1', port: socks.port }], 'pac') });
  const result = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
  assert.equal(result.traces[0]?.route, `SOCKS5 127.0.0.1:${socks.port}`);
  assert.equal(result.traces[0]?.proxy, `socks5://127.0.0.1:${socks.port}`);
  assert.deepEqual(socks.requests, [`${RELAY}:${relay.port}`]);
  const secure = await connectPinnedTls(result.socket, { servername: RELAY, caPem: relay.ca.certPem, target: `${RELAY}:${relay.port}` });
  const reply = await new Promise<string>((resolve) => {
    secure.once('data', (chunk: Buffer) => resolve(chunk.toString()));
    secure.write('via socks');
  });
  assert.equal(reply, 'via socks');
  secure.destroy();
});

test('SOCKS5 with username/password from the route', async () => {
  const dialer = createDialer({ resolver: fixedRoutes([{ kind: 'SOCKS5', host: '127.0.0.1', port: authSocks.port, username: 'dave', password: 'pw-123' }]) });
  const result = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
  result.socket.destroy();
  assert.equal(result.traces[0]?.proxy, `socks5://dave@127.0.0.1:${authSocks.port}`);
});

test('SOCKS5 refusals (unknown host, bad password) are proxy-refused without the password', async () => {
  const socksDialer = createDialer({ resolver: fixedRoutes([{ kind: 'SOCKS5', host: '127.0.0.1', port: socks.port }]) });
  const unknown = await socksDialer
    .dial({ host: 'nowhere.ferry.test', port: 443, caller: 'connector' })
    .catch((e: DialError) => e);
  assert.ok(unknown instanceof DialError);
  assert.equal(unknown.errorClass, 'proxy-refused');
  // The SOCKS proxy answered: it stays in rotation.
  assert.equal(socksDialer.health.skipped({ kind: 'SOCKS5', host: '127.0.0.1', port: socks.port }), false);
  const badPassword = await createDialer({ resolver: fixedRoutes([{ kind: 'SOCKS5', host: '127.0.0.1', port: authSocks.port, username: 'dave', password: 'nope-999' }]) })
    .dial({ host: RELAY, port: relay.port, caller: 'connector' })
    .catch((e: DialError) => e);
  assert.ok(badPassword instanceof DialError);
  assert.equal(badPassword.errorClass, 'proxy-refused');
  assert.ok(!JSON.stringify({ m: badPassword.message, f: badPassword.fields }).includes('nope-999'));
});
