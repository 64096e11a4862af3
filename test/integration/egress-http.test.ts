// HTTP(S) over the egress dialer through a real Squid: an https request pinned to the relay CA
// via CONNECT, backend requests in absolute form through the proxy when enabled, DIRECT when not,
// and a TLS-inspecting Squid surfacing as tls-interception on the request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import { createDialer, fixedRoutes } from '../../src/egress/dial/index.js';
import { createBackendRequester, createEgressAgent, proxyAnswerError } from '../../src/egress/http.js';
import { DialError } from '../../src/shared/errors.js';
import type { DialTrace, Route } from '../../src/egress/types.js';
import { freePort } from '../harness/processes.js';
import { startSquid, type SquidInstance } from '../harness/squid.js';
import { createTestCa, type TestCa } from '../harness/tls-server.js';

const RELAY = 'relay.ferry.test';
const BACKEND = 'app.ferry.test';
let ca: TestCa;
let relayServer: https.Server;
let relayPort: number;
let backendServer: http.Server;
let backendPort: number;
let squid: SquidInstance;
let bump: SquidInstance;

function listen(server: http.Server | https.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

before(async () => {
  ca = await createTestCa();
  const leaf = await ca.issue({ commonName: RELAY, dnsNames: [RELAY] });
  relayServer = https.createServer({ cert: leaf.certPem + ca.certPem, key: leaf.keyPem }, (req, res) => res.end(`relay saw ${req.method} ${req.url}`));
  relayPort = await listen(relayServer);
  backendServer = http.createServer((req, res) => res.end(`backend saw ${req.url} host=${req.headers.host} auth=${req.headers['proxy-authorization'] ?? '-'}`));
  backendPort = await listen(backendServer);
  const hosts = { [RELAY]: '127.0.0.1', [BACKEND]: '127.0.0.1' };
  squid = await startSquid({ mode: 'open', hosts });
  bump = await startSquid({ mode: 'bump', hosts, upstreamCaPem: ca.certPem });
});

after(async () => {
  relayServer?.closeAllConnections();
  backendServer?.closeAllConnections();
  await Promise.allSettled([squid?.stop(), bump?.stop(), new Promise((r) => relayServer?.close(r)), new Promise((r) => backendServer?.close(r))]);
});

function fetchText(module: typeof http | typeof https, options: http.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = module.request(options, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

const viaSquid = (): Route => ({ kind: 'PROXY', host: squid.host, port: squid.port });

test('https.request with the egress agent: CONNECT through Squid, TLS pinned to the relay CA', async () => {
  const agent = createEgressAgent({ dialer: createDialer({ resolver: fixedRoutes([viaSquid()]) }), caller: 'connector', tls: { caPem: ca.certPem } });
  const { status, body } = await fetchText(https, { host: RELAY, port: relayPort, path: '/register', method: 'POST', agent });
  assert.equal(status, 200);
  assert.equal(body, 'relay saw POST /register');
  agent.destroy();
  await squid.waitForAccessLog((line) => line.includes(`CONNECT ${RELAY}:${relayPort}`) && line.includes('TCP_TUNNEL/200'));
});

test('through a TLS-inspecting Squid the request fails with tls-interception', async () => {
  const agent = createEgressAgent({
    dialer: createDialer({ resolver: fixedRoutes([{ kind: 'PROXY', host: bump.host, port: bump.port }]) }),
    caller: 'connector',
    tls: { caPem: ca.certPem },
  });
  const error = await fetchText(https, { host: RELAY, port: relayPort, path: '/', agent }).then(
    () => assert.fail('expected tls-interception'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof DialError);
  assert.equal(error.errorClass, 'tls-interception');
  assert.match(error.fields.observedIssuer ?? '', /Corp Inspection CA/);
  agent.destroy();
});

test('registration-style request: an intercepting proxy first, then a clean one: the request succeeds via the second', async () => {
  const agent = createEgressAgent({
    dialer: createDialer({ resolver: fixedRoutes([{ kind: 'PROXY', host: bump.host, port: bump.port }, viaSquid()]) }),
    caller: 'connector',
    tls: { caPem: ca.certPem },
  });
  const { body } = await fetchText(https, { host: RELAY, port: relayPort, path: '/renew', method: 'POST', agent });
  assert.equal(body, 'relay saw POST /renew');
  agent.destroy();
});

test('backend requests with useProxy: absolute-form GET through Squid (Basic header when configured)', async () => {
  const requester = createBackendRequester({ useProxy: true, resolver: fixedRoutes([{ ...viaSquid(), username: 'bob', password: 'pw' } as Route], 'config') });
  const plan = await requester.plan(new URL(`http://${BACKEND}:${backendPort}/orders?id=7`));
  assert.equal(plan.via, 'forward-proxy');
  assert.equal(plan.options.path, `http://${BACKEND}:${backendPort}/orders?id=7`);
  assert.equal((plan.options.headers as Record<string, string>)['proxy-authorization'], `Basic ${Buffer.from('bob:pw').toString('base64')}`);
  const { status, body } = await fetchText(http, plan.options);
  assert.equal(status, 200);
  // Squid forwards the request to the backend (it does not pass Proxy-Authorization on).
  assert.equal(body, `backend saw /orders?id=7 host=${BACKEND}:${backendPort} auth=-`);
  // Squid logs URLs without the query (strip_query_terms).
  await squid.waitForAccessLog((line) => line.includes(`GET http://${BACKEND}:${backendPort}/orders`) && line.includes('TCP_MISS/200')).catch((e: Error) => assert.fail(`${e.message}: ${squid.accessLog().join('\n')}`));
});

test('absolute-form backend requests fail over across the list: a dead proxy first, then Squid', async () => {
  const dead = await freePort();
  const traces: DialTrace[] = [];
  const requester = createBackendRequester({
    useProxy: true, resolver: fixedRoutes([{ kind: 'PROXY', host: '127.0.0.1', port: dead }, viaSquid()], 'pac'), dialer: { onTrace: (t) => traces.push(t) },
  });
  const first = await requester.plan(new URL(`http://${BACKEND}:${backendPort}/failover-1`));
  assert.equal(first.via, 'forward-proxy');
  assert.equal(first.options.port, dead, 'the list\'s first proxy is planned');
  const { status, body } = await fetchText(http, first.options);
  assert.equal(status, 200);
  assert.match(body, /^backend saw \/failover-1 host=/);
  assert.deepEqual(traces.map((t) => [t.route, t.outcome, t.errorClass ?? '', t.target]), [
    [`PROXY 127.0.0.1:${dead}`, 'error', 'connect-refused', `${BACKEND}:${backendPort}`],
    [`PROXY 127.0.0.1:${squid.port}`, 'ok', '', `${BACKEND}:${backendPort}`],
  ]);
  await squid.waitForAccessLog((line) => line.includes(`GET http://${BACKEND}:${backendPort}/failover-1`));
  // The dead proxy is now skipped: the next request is planned to Squid straight away.
  const second = await requester.plan(new URL(`http://${BACKEND}:${backendPort}/failover-2`));
  assert.equal(second.options.port, squid.port);
  assert.equal((await fetchText(http, second.options)).status, 200);
  requester.close();
});

test('planAfterFailure: when no proxy of the list took a connection, the next route (DIRECT) for the same request; none when the list has no other', async () => {
  const dead = await freePort();
  const requester = (routes: Route[]) => createBackendRequester({ useProxy: true, resolver: fixedRoutes(routes, 'pac') });
  const url = new URL(`http://${BACKEND}:${backendPort}/fallback`);
  // BACKEND is a name only Squid knows: DIRECT reaches the app by address, as a DNS server would answer.
  const direct = new URL(`http://127.0.0.1:${backendPort}/fallback`);
  const withDirect = requester([{ kind: 'PROXY', host: '127.0.0.1', port: dead }, { kind: 'DIRECT' }]);
  const first = await withDirect.plan(direct);
  assert.equal(first.via, 'forward-proxy');
  const error = await fetchText(http, first.options).then(() => assert.fail('the dead proxy took the request'), (e: unknown) => e);
  const next = await withDirect.planAfterFailure(first, error, direct);
  assert.equal(next?.via, 'direct');
  assert.equal((await fetchText(http, next!.options)).body, `backend saw /fallback host=127.0.0.1:${backendPort} auth=-`);
  assert.equal(await withDirect.planAfterFailure(first, new Error('not a dial failure'), direct), undefined);
  const proxiesOnly = requester([{ kind: 'PROXY', host: '127.0.0.1', port: dead }]);
  const only = await proxiesOnly.plan(url);
  const failed = await fetchText(http, only.options).then(() => assert.fail('the dead proxy took the request'), (e: unknown) => e);
  assert.equal(await proxiesOnly.planAfterFailure(only, failed, url), undefined, 'nothing else to try: the same dead proxy is not tried again');
  withDirect.close();
  proxiesOnly.close();
});

test('absolute-form backend requests take the configured proxy.credentials (Basic in each request; never an NTLM password in Basic)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-creds-'));
  const passwordFile = path.join(dir, 'proxy.password');
  writeFileSync(passwordFile, 'carol-pw\n', { mode: 0o600 });
  const requester = (scheme?: 'ntlm') => createBackendRequester({
    useProxy: true,
    resolver: { resolve: async () => ({ routes: [viaSquid()], provenance: { source: 'config', detail: 'test' }, proxyCredentials: { username: 'carol', passwordFile, ...(scheme ? { scheme } : {}) } }) },
  });
  const basic = await requester().plan(new URL(`http://${BACKEND}:${backendPort}/with-creds`));
  assert.equal((basic.options.headers as Record<string, string>)['proxy-authorization'], `Basic ${Buffer.from('carol:carol-pw').toString('base64')}`);
  assert.equal((await fetchText(http, basic.options)).status, 200);
  const ntlm = await requester('ntlm').plan(new URL(`http://${BACKEND}:${backendPort}/with-creds`));
  assert.equal((ntlm.options.headers as Record<string, string>)['proxy-authorization'], undefined);
  rmSync(dir, { recursive: true, force: true });
});

/** A request sent the way the connector sends them (requester.send), answered as status and body. */
function sendText(requester: ReturnType<typeof createBackendRequester>, plan: Awaited<ReturnType<ReturnType<typeof createBackendRequester>['plan']>>, url: URL): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    requester.send(plan, { url, base: {} }, 'none', {
      response: (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => { body += chunk; });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      },
      error: reject,
    });
  });
}

test('absolute-form backend requests through an NTLM proxy: the first carries AUTHENTICATE (no HEAD reaches the app), the next ones nothing', async () => {
  const ntlm = await startSquid({ mode: 'ntlm', hosts: { [BACKEND]: '127.0.0.1' } });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-ntlm-'));
  try {
    const passwordFile = path.join(dir, 'proxy.password');
    writeFileSync(passwordFile, 'nt-pw\n', { mode: 0o600 });
    const requester = createBackendRequester({
      useProxy: true,
      resolver: { resolve: async () => ({ routes: [{ kind: 'PROXY', host: ntlm.host, port: ntlm.port }], provenance: { source: 'config', detail: 'test' }, proxyCredentials: { username: 'CORP\\dave', passwordFile, scheme: 'ntlm' } }) },
    });
    for (const id of [1, 2]) {
      const url = new URL(`http://${BACKEND}:${backendPort}/ntlm-${id}`);
      const plan = await requester.plan(url);
      assert.equal((plan.options.headers as Record<string, string>)['proxy-authorization'], undefined);
      const { status, body } = await sendText(requester, plan, url);
      assert.equal(status, 200);
      assert.match(body, new RegExp(`^backend saw /ntlm-${id} `));
    }
    const lines = ntlm.accessLog();
    const heads = lines.filter((line) => line.includes(' HEAD '));
    assert.equal(heads.length, 1, `one HEAD, with NEGOTIATE, which the proxy answered itself: ${lines.join('\n')}`);
    assert.match(heads[0], /TCP_DENIED\/407/);
    await ntlm.waitForAccessLog((line) => line.includes(`GET http://${BACKEND}:${backendPort}/ntlm-2`) && / CORP\\{1,2}dave /.test(line));
    requester.close();
  } finally {
    await ntlm.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a 407 to an absolute-form request is the proxy\'s: proxyAnswerError turns it into proxy-auth-required (never the app\'s answer)', async () => {
  const basicOnly = await startSquid({ mode: 'auth', hosts: { [BACKEND]: '127.0.0.1' }, users: { alice: 'pw' } });
  try {
    const requester = createBackendRequester({ useProxy: true, resolver: fixedRoutes([{ kind: 'PROXY', host: basicOnly.host, port: basicOnly.port }]) });
    const plan = await requester.plan(new URL(`http://${BACKEND}:${backendPort}/needs-auth`));
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => http.request(plan.options, resolve).on('error', reject).end());
    response.resume();
    assert.equal(response.statusCode, 407);
    const error = proxyAnswerError(plan, response);
    assert.ok(error instanceof DialError);
    assert.equal(error.errorClass, 'proxy-auth-required');
    assert.deepEqual(error.fields.schemes, ['Basic']);
    assert.match(error.message, new RegExp(`the proxy http://127\\.0\\.0\\.1:${basicOnly.port} asks for authentication for http://${BACKEND}:${backendPort}/needs-auth \\(407; schemes offered: Basic\\)`));
    // Any other answer, and a 407 reached directly (the app's own), is the app's.
    const direct = createBackendRequester({ useProxy: false });
    const directPlan = await direct.plan(new URL(`http://127.0.0.1:${backendPort}/x`));
    assert.equal(proxyAnswerError(directPlan, Object.assign(Object.create(http.IncomingMessage.prototype) as http.IncomingMessage, { statusCode: 407, headersDistinct: {} })), undefined);
    requester.close();
    direct.close();
  } finally {
    await basicOnly.stop();
  }
});

test('backend requests without useProxy go DIRECT: Squid sees nothing', async () => {
  const requester = createBackendRequester({ useProxy: false, resolver: fixedRoutes([viaSquid()]) });
  const plan = await requester.plan(new URL(`http://127.0.0.1:${backendPort}/direct-only`));
  assert.equal(plan.via, 'direct');
  const { body } = await fetchText(http, plan.options);
  assert.match(body, /^backend saw \/direct-only/);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(!squid.accessLog().some((line) => line.includes('direct-only')));
});

test('https backend with useProxy: CONNECT tunnel through Squid', async () => {
  const requester = createBackendRequester({ useProxy: true, resolver: fixedRoutes([viaSquid()]), backendCaPem: ca.certPem });
  const plan = await requester.plan(new URL(`https://${RELAY}:${relayPort}/b`));
  assert.equal(plan.via, 'tunnel');
  const { body } = await fetchText(https, plan.options);
  assert.equal(body, 'relay saw GET /b');
});

test('a backend request with NTLM or Negotiate credentials never leaves its connection to another request', async () => {
  // As IIS with Windows authentication: credentials authenticate the connection they came on, and
  // a later request on that connection is served as the same user.
  const leaf = await ca.issue({ commonName: BACKEND, dnsNames: [BACKEND] });
  const users = new WeakMap<object, string>();
  const windowsApp = https.createServer({ cert: leaf.certPem + ca.certPem, key: leaf.keyPem }, (req, res) => {
    const credentials = /^NTLM (\w+)$/.exec(req.headers.authorization ?? '');
    if (credentials) users.set(req.socket, credentials[1]);
    const user = users.get(req.socket);
    res.writeHead(user ? 200 : 401, user ? {} : { 'www-authenticate': 'NTLM' });
    res.end(user ? `hello ${user}` : 'who are you?');
  });
  const port = await listen(windowsApp);
  try {
    const requester = createBackendRequester({ useProxy: false, backendCaPem: ca.certPem, dialer: { lookup: (_host, _options, callback) => callback(null, [{ address: '127.0.0.1', family: 4 }]) } });
    const url = new URL(`https://${BACKEND}:${port}/`);
    const alice = await fetchText(https, (await requester.plan(url, { headers: { authorization: 'NTLM alice' } })).options);
    assert.deepEqual(alice, { status: 200, body: 'hello alice' });
    const bob = await fetchText(https, (await requester.plan(url, { headers: {} })).options);
    assert.deepEqual(bob, { status: 401, body: 'who are you?' }, 'a request without credentials was served as the user of a reused connection');
    requester.close();
  } finally {
    windowsApp.closeAllConnections();
    await new Promise((resolve) => windowsApp.close(resolve));
  }
});

