// The dialer against a real Squid on loopback: CONNECT 200 (and the access.log line), 407 with
// and without Basic credentials, NTLM (ntlm_fake_auth) and Negotiate (a test KDC), port rules
// (403), an unreachable upstream, failover from a dead proxy, and connections NTLM or Negotiate
// authenticated for requests in absolute form. The relay (and a plain-http app on the same
// address) is named relay.ferry.test, a name only Squid resolves (its hosts_file).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { createDialer, fixedRoutes, RoutesExhaustedError, requestAuthorizationFor, type ForwardDecision, type ProxyRoute } from '../../src/egress/dial/index.js';
import { connectPinnedTls } from '../../src/egress/tls.js';
import { DialError } from '../../src/shared/errors.js';
import type { DialTrace, Route } from '../../src/egress/types.js';
import { startSquid, type SquidInstance } from '../harness/squid.js';
import { kdcUnavailable, startKdc, type Kdc } from '../harness/kdc.js';
import { startTlsEchoServer, type TlsEchoServer } from '../harness/tls-server.js';
import { freePort } from '../harness/processes.js';

const RELAY = 'relay.ferry.test';
let relay: TlsEchoServer;
let open: SquidInstance;
let auth: SquidInstance;
let deniedPort: number;
let closedPort: number;
let deadProxyPort: number;
/** A plain-http app behind the proxies (requests in absolute form); what it saw, in order. */
let app: http.Server;
let appPort: number;
const appSaw: string[] = [];

before(async () => {
  relay = await startTlsEchoServer({ hostnames: [RELAY] });
  app = http.createServer((req, res) => {
    appSaw.push(`${req.method} ${req.url}`);
    res.end(`app saw ${req.method} ${req.url}`);
  });
  appPort = await new Promise((resolve) => app.listen(0, '127.0.0.1', () => resolve((app.address() as net.AddressInfo).port)));
  deniedPort = await freePort();
  closedPort = await freePort();
  deadProxyPort = await freePort();
  const hosts = { [RELAY]: '127.0.0.1' };
  open = await startSquid({ mode: 'open', hosts, denyPorts: [deniedPort] });
  auth = await startSquid({ mode: 'auth', hosts, users: { alice: 's3cret-pw' } });
});

after(async () => {
  app?.closeAllConnections();
  await Promise.allSettled([open?.stop(), auth?.stop(), relay?.stop(), new Promise((resolve) => app?.close(resolve))]);
});

function proxy(instance: SquidInstance, extra: Partial<Route> = {}): Route {
  return { kind: 'PROXY', host: instance.host, port: instance.port, ...extra } as Route;
}

async function echo(socket: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
    socket.once('error', reject);
    socket.write(text);
  });
}

async function pinnedEcho(socket: Duplex, text: string): Promise<string> {
  const secure = await connectPinnedTls(socket, { servername: RELAY, caPem: relay.ca.certPem, target: `${RELAY}:${relay.port}` });
  try {
    return await echo(secure, text);
  } finally {
    secure.destroy();
  }
}

/** A GET in absolute form on a connection to a proxy, as the forward agent sends it (no credentials). */
/** A GET in absolute form, with the Proxy-Authorization the connection asks for (as `send` writes it). */
function absoluteGet(socket: Duplex, path: string): Promise<string> {
  const lastLeg = requestAuthorizationFor(socket);
  return new Promise((resolve, reject) => {
    let answer = '';
    const onData = (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      const end = answer.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *(\d+)/i.exec(answer);
      if (end >= 0 && length && answer.length >= end + 4 + Number(length[1])) {
        socket.off('data', onData);
        resolve(`${answer.slice(0, answer.indexOf('\r\n'))} | ${answer.slice(end + 4)}`);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET http://${RELAY}:${appPort}${path} HTTP/1.1\r\nHost: ${RELAY}:${appPort}\r\n${lastLeg ? `Proxy-Authorization: ${lastLeg}\r\n` : ''}\r\n`);
  });
}

const forwardTo = (route: Route): ForwardDecision => ({ routes: [route as ProxyRoute], provenance: { source: 'config', detail: 'test' } });

async function rejection(promise: Promise<unknown>): Promise<DialError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DialError, `expected a DialError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the dial to fail');
}

test('CONNECT through an open Squid: tunnel works, trace and access.log show it', async () => {
  const traces: DialTrace[] = [];
  const dialer = createDialer({ resolver: fixedRoutes([proxy(open)], 'config'), onTrace: (t) => traces.push(t) });
  const result = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
  assert.equal(await pinnedEcho(result.socket, 'hello relay'), 'hello relay');
  assert.equal(traces.length, 1);
  const trace = traces[0] as DialTrace;
  assert.equal(trace.outcome, 'ok');
  assert.equal(trace.connectStatus, 200);
  assert.equal(trace.route, `PROXY 127.0.0.1:${open.port}`);
  assert.equal(trace.proxy, `http://127.0.0.1:${open.port}`);
  assert.equal(trace.source, 'config');
  assert.equal(trace.target, `${RELAY}:${relay.port}`);
  assert.equal(typeof trace.tcpMs, 'number');
  await open.waitForAccessLog((line) => line.includes(`CONNECT ${RELAY}:${relay.port}`) && line.includes('TCP_TUNNEL/200'));
});

test('407 without credentials: proxy-auth-required naming the Basic scheme, nothing tunnelled', async () => {
  const dialer = createDialer({ resolver: fixedRoutes([proxy(auth)]) });
  const error = await rejection(dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' }));
  assert.equal(error.errorClass, 'proxy-auth-required');
  assert.equal(error.fields.statusCode, 407);
  assert.deepEqual(error.fields.schemes, ['Basic']);
  assert.equal(error.fields.phase, 'proxy-auth');
  assert.equal(error.fields.proxy, `http://127.0.0.1:${auth.port}`);
  assert.match(error.message, /schemes offered: Basic/);
  assert.ok(error instanceof RoutesExhaustedError);
  assert.equal(error.traces[0]?.connectStatus, 407);
  await auth.waitForAccessLog((line) => line.includes('TCP_DENIED/407') && line.includes(`CONNECT ${RELAY}:${relay.port}`));
});

test('Basic credentials from the route: tunnel works; the password is in no trace, error or log line', async () => {
  const traces: DialTrace[] = [];
  const dialer = createDialer({ resolver: fixedRoutes([proxy(auth, { username: 'alice', password: 's3cret-pw' })]), onTrace: (t) => traces.push(t) });
  const result = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
  assert.equal(await pinnedEcho(result.socket, 'authed'), 'authed');
  assert.equal(traces[0]?.proxy, `http://alice@127.0.0.1:${auth.port}`);
  assert.ok(!JSON.stringify(traces).includes('s3cret'));
  const line = await auth.waitForAccessLog((l) => l.includes('TCP_TUNNEL/200') && l.includes(' alice '));
  assert.ok(line.includes(`CONNECT ${RELAY}:${relay.port}`));
});

test('Basic credentials from the per-proxy lookup; wrong ones → proxy-auth-required "refused"', async () => {
  const good = createDialer({ resolver: fixedRoutes([proxy(auth)]), credentials: () => ({ username: 'alice', password: 's3cret-pw' }) });
  const ok = await good.dial({ host: RELAY, port: relay.port, caller: 'updater' });
  ok.socket.destroy();
  const bad = createDialer({ resolver: fixedRoutes([proxy(auth)]), credentials: () => ({ username: 'alice', password: 'wrong-pw' }) });
  const error = await rejection(bad.dial({ host: RELAY, port: relay.port, caller: 'updater' }));
  assert.equal(error.errorClass, 'proxy-auth-required');
  assert.match(error.message, /refused the configured Basic credentials/);
  assert.ok(!error.message.includes('wrong-pw') && !JSON.stringify(error.fields).includes('wrong-pw'));
});

test('a port the proxy forbids: proxy-refused 403', async () => {
  const dialer = createDialer({ resolver: fixedRoutes([proxy(open)]) });
  const error = await rejection(dialer.dial({ host: RELAY, port: deniedPort, caller: 'connector' }));
  assert.equal(error.errorClass, 'proxy-refused');
  assert.equal(error.fields.statusCode, 403);
  assert.equal(error.fields.phase, 'proxy-connect');
  assert.equal(error.fields.target, `${RELAY}:${deniedPort}`);
  await open.waitForAccessLog((line) => line.includes('TCP_DENIED/403') && line.includes(`CONNECT ${RELAY}:${deniedPort}`));
});

test('an upstream Squid cannot reach: proxy-refused with the status Squid answered (503)', async () => {
  const dialer = createDialer({ resolver: fixedRoutes([proxy(open)]) });
  const error = await rejection(dialer.dial({ host: RELAY, port: closedPort, caller: 'connector' }));
  assert.equal(error.errorClass, 'proxy-refused');
  assert.equal(error.fields.statusCode, 503);
  assert.equal(error.fields.statusText, 'Service Unavailable');
  // A proxy that answers stays in rotation.
  assert.equal(dialer.health.skipped(proxy(open)), false);
});

test('failover: a dead first proxy, then Squid; the dead one is skipped next time, retried after the skip window', async () => {
  const clock = { t: 1_000_000 };
  const routes = [{ kind: 'PROXY', host: '127.0.0.1', port: deadProxyPort } as Route, proxy(open)];
  const dialer = createDialer({ resolver: fixedRoutes(routes, 'pac'), now: () => clock.t, proxySkipMs: 60_000 });

  const first = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
  assert.equal(await pinnedEcho(first.socket, 'one'), 'one');
  assert.deepEqual(first.traces.map((t) => [t.route, t.outcome, t.errorClass]), [
    [`PROXY 127.0.0.1:${deadProxyPort}`, 'error', 'connect-refused'],
    [`PROXY 127.0.0.1:${open.port}`, 'ok', undefined],
  ]);
  assert.equal(first.traces[0]?.source, 'pac');

  const second = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
  second.socket.destroy();
  assert.deepEqual(second.traces.map((t) => t.route), [`PROXY 127.0.0.1:${open.port}`]);

  // Another target: the dead proxy is still skipped (it is the proxy that failed, not the target).
  const other = await dialer.dial({ host: RELAY, port: deniedPort, caller: 'connector' }).catch((e: RoutesExhaustedError) => e);
  assert.ok(other instanceof RoutesExhaustedError);
  assert.equal(other.traces[0]?.route, `PROXY 127.0.0.1:${open.port}`);
  assert.equal(other.errorClass, 'proxy-refused');

  clock.t += 60_001;
  const third = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
  third.socket.destroy();
  // The last good route goes first; the dead proxy is back in the list (tried after it when needed).
  assert.deepEqual(third.traces.map((t) => t.route), [`PROXY 127.0.0.1:${open.port}`]);
  assert.equal(dialer.health.skipped(routes[0] as Route), false);
});

test('last route that worked goes first: a 407 proxy then an open one', async () => {
  const dialer = createDialer({ resolver: fixedRoutes([proxy(auth), proxy(open)]) });
  const first = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
  first.socket.destroy();
  assert.deepEqual(first.traces.map((t) => t.errorClass ?? 'ok'), ['proxy-auth-required', 'ok']);
  const second = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
  second.socket.destroy();
  assert.deepEqual(second.traces.map((t) => t.route), [`PROXY 127.0.0.1:${open.port}`]);
});

test('all routes fail: the most relevant error (the proxy that answered) with every attempt', async () => {
  const dialer = createDialer({ resolver: fixedRoutes([{ kind: 'PROXY', host: '127.0.0.1', port: deadProxyPort }, proxy(auth)]) });
  const error = await rejection(dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' }));
  assert.ok(error instanceof RoutesExhaustedError);
  assert.equal(error.errorClass, 'proxy-auth-required');
  assert.equal(error.attempts.length, 2);
  assert.deepEqual(error.traces.map((t) => t.errorClass), ['connect-refused', 'proxy-auth-required']);
  assert.equal(error.attempts[0]?.fields.phase, 'tcp');
  assert.equal(error.attempts[0]?.fields.proxy, `http://127.0.0.1:${deadProxyPort}`);
});

describe('NTLM proxy authentication (Squid with ntlm_fake_auth)', () => {
  let ntlm: SquidInstance;
  before(async () => {
    ntlm = await startSquid({ mode: 'ntlm', hosts: { [RELAY]: '127.0.0.1' } });
  });
  after(async () => {
    await ntlm?.stop();
  });

  test('scheme ntlm: NEGOTIATE, CHALLENGE, AUTHENTICATE on one connection; Squid sees DOMAIN\\user; no secret anywhere', async () => {
    const traces: DialTrace[] = [];
    const dialer = createDialer({ resolver: fixedRoutes([proxy(ntlm)]), credentials: () => ({ username: 'CORP\\alice', password: 'nt-s3cret', scheme: 'ntlm' }), onTrace: (t) => traces.push(t) });
    const result = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
    assert.equal(await pinnedEcho(result.socket, 'over ntlm'), 'over ntlm');
    assert.equal(traces[0]?.connectStatus, 200);
    assert.ok(!JSON.stringify(traces).includes('nt-s3cret'));
    const line = await ntlm.waitForAccessLog((l) => l.includes('TCP_TUNNEL/200') && l.includes(`CONNECT ${RELAY}:${relay.port}`));
    assert.match(line, / CORP\\{1,2}alice /, 'Squid logs the user and domain the AUTHENTICATE message carries (escaping the backslash)');
  });

  test('scheme any: no credentials until the 407, then NTLM because Squid offers it', async () => {
    const dialer = createDialer({ resolver: fixedRoutes([proxy(ntlm)]), credentials: () => ({ username: 'bob', password: 'pw', scheme: 'any' }) });
    const result = await dialer.dial({ host: RELAY, port: relay.port, caller: 'updater' });
    assert.equal(await pinnedEcho(result.socket, 'any'), 'any');
    await ntlm.waitForAccessLog((l) => l.includes('TCP_TUNNEL/200') && / bob /.test(l));
  });

  test('scheme any against a Basic-only proxy: Basic after the 407', async () => {
    const dialer = createDialer({ resolver: fixedRoutes([proxy(auth)]), credentials: () => ({ username: 'alice', password: 's3cret-pw', scheme: 'any' }) });
    const result = await dialer.dial({ host: RELAY, port: relay.port, caller: 'updater' });
    assert.equal(await pinnedEcho(result.socket, 'basic after 407'), 'basic after 407');
  });

  test('absolute form, scheme ntlm: the first request carries AUTHENTICATE (the app sees no HEAD), the next ones nothing', async () => {
    const traces: DialTrace[] = [];
    const dialer = createDialer({ credentials: () => ({ username: 'CORP\\alice', password: 'nt-s3cret', scheme: 'ntlm' }), onTrace: (t) => traces.push(t) });
    const before = appSaw.length;
    const { socket } = await dialer.dialForwardProxy({ host: RELAY, port: appPort, caller: 'backend', url: new URL(`http://${RELAY}:${appPort}/orders`) }, forwardTo(proxy(ntlm)));
    try {
      assert.equal(await absoluteGet(socket, '/orders/1'), 'HTTP/1.1 200 OK | app saw GET /orders/1');
      assert.equal(await absoluteGet(socket, '/orders/2'), 'HTTP/1.1 200 OK | app saw GET /orders/2');
    } finally {
      socket.destroy();
    }
    assert.deepEqual(appSaw.slice(before), ['GET /orders/1', 'GET /orders/2'], 'the app saw the requests only: the HEAD with NEGOTIATE got the proxy\'s 407');
    await ntlm.waitForAccessLog((l) => l.includes('TCP_DENIED/407') && l.includes(`HEAD http://${RELAY}:${appPort}/orders`));
    const line = await ntlm.waitForAccessLog((l) => l.includes(`GET http://${RELAY}:${appPort}/orders/2`));
    assert.match(line, /TCP_MISS\/200 .* CORP\\{1,2}alice /, 'Squid served the request as the NTLM user');
    assert.ok(!JSON.stringify(traces).includes('nt-s3cret'));
  });

  test('absolute form, scheme any: NTLM when the proxy offers it; Basic on every request when it offers only Basic', async () => {
    const any = (instance: SquidInstance) => createDialer({ credentials: () => ({ username: 'alice', password: 's3cret-pw', scheme: 'any' }) })
      .dialForwardProxy({ host: RELAY, port: appPort, caller: 'backend', url: new URL(`http://${RELAY}:${appPort}/any`) }, forwardTo(proxy(instance)));
    const { socket } = await any(ntlm);
    assert.equal(await absoluteGet(socket, '/any/1'), 'HTTP/1.1 200 OK | app saw GET /any/1');
    assert.equal(requestAuthorizationFor(socket), undefined, 'NTLM: only the first request carries anything');
    socket.destroy();
    const basic = await any(auth);
    try {
      assert.equal(await absoluteGet(basic.socket, '/any/2'), 'HTTP/1.1 200 OK | app saw GET /any/2');
      assert.equal(await absoluteGet(basic.socket, '/any/3'), 'HTTP/1.1 200 OK | app saw GET /any/3', 'Basic went with the second request too');
    } finally {
      basic.socket.destroy();
    }
    await auth.waitForAccessLog((l) => l.includes(`GET http://${RELAY}:${appPort}/any/3`) && / alice /.test(l));
  });

  test('the wrong scheme configured: the error names what the proxy offers and the setting to change', async () => {
    const basicToNtlm = createDialer({ resolver: fixedRoutes([proxy(ntlm)]), credentials: () => ({ username: 'alice', password: 'pw-basic' }) });
    const first = await rejection(basicToNtlm.dial({ host: RELAY, port: relay.port, caller: 'connector' }));
    assert.equal(first.errorClass, 'proxy-auth-required');
    assert.match(first.message, /asks for NTLM .* not Basic .*set proxy\.credentials\.scheme to ntlm/);
    const ntlmToBasic = createDialer({ resolver: fixedRoutes([proxy(auth)]), credentials: () => ({ username: 'alice', password: 's3cret-pw', scheme: 'ntlm' }) });
    const second = await rejection(ntlmToBasic.dial({ host: RELAY, port: relay.port, caller: 'connector' }));
    assert.equal(second.errorClass, 'proxy-auth-required');
    assert.match(second.message, /asks for Basic .* not NTLM .*scheme to basic/);
    assert.ok(!`${first.message}${second.message}`.includes('s3cret') && !first.message.includes('pw-basic'));
  });
});

describe('Negotiate (Kerberos) proxy authentication (a test KDC, Squid with negotiate_kerberos_auth)', { skip: kdcUnavailable() }, () => {
  const PROXY_NAME = 'proxy.ferry.test';
  let kdc: Kdc;
  let kerberos: SquidInstance;
  let connectorKeytab: string;
  // The proxy is named by the host of its service principal (Kerberos has no ticket for an
  // address); only this test's lookup knows the name.
  const lookup = ((host: string, options: unknown, callback: (error: Error | null, address: string | { address: string; family: number }[], family?: number) => void) => {
    if (host !== PROXY_NAME) return callback(Object.assign(new Error(`unknown host ${host}`), { code: 'ENOTFOUND' }), '', 4);
    return (options as { all?: boolean }).all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
  }) as unknown as net.LookupFunction;
  const saved = { config: process.env.KRB5_CONFIG, cache: process.env.KRB5CCNAME, keytab: process.env.KRB5_CLIENT_KTNAME };

  before(async () => {
    kdc = await startKdc();
    const servicePrincipal = `HTTP/${PROXY_NAME}@${kdc.realm}`;
    kerberos = await startSquid({ mode: 'negotiate', hosts: { [RELAY]: '127.0.0.1' }, kerberos: { configFile: kdc.configFile, keytab: kdc.keytabFor(servicePrincipal), servicePrincipal } });
    connectorKeytab = kdc.keytabFor('svc-ferry');
    // GSSAPI reads its settings from the environment of this process (as the connector's from its unit).
    process.env.KRB5_CONFIG = kdc.configFile;
    process.env.KRB5CCNAME = 'MEMORY:ferry-test';
  });
  after(async () => {
    for (const [name, value] of [['KRB5_CONFIG', saved.config], ['KRB5CCNAME', saved.cache], ['KRB5_CLIENT_KTNAME', saved.keytab]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await Promise.allSettled([kerberos?.stop(), kdc?.stop()]);
  });

  const route = (): Route => ({ kind: 'PROXY', host: PROXY_NAME, port: kerberos.port });

  test('scheme negotiate with a keytab: a ticket for HTTP/proxy, the tunnel works, Squid logs the principal', async () => {
    const dialer = createDialer({ resolver: fixedRoutes([route()]), lookup, credentials: () => ({ username: '', password: '', scheme: 'negotiate', keytab: connectorKeytab }) });
    const result = await dialer.dial({ host: RELAY, port: relay.port, caller: 'connector' });
    assert.equal(await pinnedEcho(result.socket, 'over kerberos'), 'over kerberos');
    const line = await kerberos.waitForAccessLog((l) => l.includes('TCP_TUNNEL/200') && l.includes(`CONNECT ${RELAY}:${relay.port}`));
    assert.match(line, new RegExp(` svc-ferry@${kdc.realm} `));
  });

  test('only when asked (useDefaultCredentials): no ticket for an open proxy, one after the 407 of one that asks', async () => {
    const asked = createDialer({ resolver: fixedRoutes([route()]), lookup, credentials: () => ({ username: '', password: '', scheme: 'negotiate', onlyWhenAsked: true, keytab: connectorKeytab }) });
    const result = await asked.dial({ host: RELAY, port: relay.port, caller: 'connector' });
    assert.equal(await pinnedEcho(result.socket, 'asked'), 'asked');
    await kerberos.waitForAccessLog((l) => l.includes('TCP_DENIED/407') && l.includes(`CONNECT ${RELAY}:${relay.port}`));
    // An open proxy never asks: no Kerberos identity is needed (an empty cache, no keytab).
    delete process.env.KRB5_CLIENT_KTNAME;
    process.env.KRB5CCNAME = 'MEMORY:ferry-test-never-asked';
    const neverAsked = createDialer({ resolver: fixedRoutes([proxy(open)]), credentials: () => ({ username: '', password: '', scheme: 'negotiate', onlyWhenAsked: true }) });
    const direct = await neverAsked.dial({ host: RELAY, port: relay.port, caller: 'connector' });
    assert.equal(await pinnedEcho(direct.socket, 'open'), 'open');
  });

  test('absolute form, scheme negotiate: a ticket authenticates the connection; Squid serves its requests as the principal', async () => {
    process.env.KRB5CCNAME = 'MEMORY:ferry-test-forward';
    const dialer = createDialer({ lookup, credentials: () => ({ username: '', password: '', scheme: 'negotiate', keytab: connectorKeytab }) });
    const before = appSaw.length;
    const { socket } = await dialer.dialForwardProxy({ host: RELAY, port: appPort, caller: 'backend', url: new URL(`http://${RELAY}:${appPort}/kerberos`) }, forwardTo(route()));
    try {
      assert.equal(await absoluteGet(socket, '/kerberos/1'), 'HTTP/1.1 200 OK | app saw GET /kerberos/1');
      assert.equal(await absoluteGet(socket, '/kerberos/2'), 'HTTP/1.1 200 OK | app saw GET /kerberos/2');
    } finally {
      socket.destroy();
    }
    assert.deepEqual(appSaw.slice(before), ['GET /kerberos/1', 'GET /kerberos/2'], 'the ticket went with the first request: no handshake request at all');
    const line = await kerberos.waitForAccessLog((l) => l.includes(`GET http://${RELAY}:${appPort}/kerberos/1`));
    assert.match(line, new RegExp(`TCP_MISS/200 .* svc-ferry@${kdc.realm} `));
  });

  test('without Kerberos credentials, or to a proxy named by address: proxy-auth-required saying why', async () => {
    delete process.env.KRB5_CLIENT_KTNAME;
    process.env.KRB5CCNAME = 'MEMORY:ferry-test-empty';
    const noIdentity = createDialer({ resolver: fixedRoutes([route()]), lookup, credentials: () => ({ username: '', password: '', scheme: 'negotiate' }) });
    const first = await rejection(noIdentity.dial({ host: RELAY, port: relay.port, caller: 'connector' }));
    assert.equal(first.errorClass, 'proxy-auth-required');
    assert.match(first.message, /could not produce Negotiate credentials .*no Kerberos ticket for HTTP@proxy\.ferry\.test/);
    const byAddress = createDialer({ resolver: fixedRoutes([{ kind: 'PROXY', host: '127.0.0.1', port: kerberos.port }]), credentials: () => ({ username: '', password: '', scheme: 'negotiate', keytab: connectorKeytab }) });
    const second = await rejection(byAddress.dial({ host: RELAY, port: relay.port, caller: 'connector' }));
    assert.equal(second.errorClass, 'proxy-auth-required');
    assert.match(second.message, /no Kerberos ticket for HTTP@127\.0\.0\.1.*host of its HTTP\/ service principal/);
  });
});
