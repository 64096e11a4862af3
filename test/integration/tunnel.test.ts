// The foundation end to end, with real processes: relay and connectors spawned from the built CLI,
// real one-time tokens, mTLS, the reverse HTTP/2 tunnel, and the sample backend.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { FerryStack, http2Exchange, rawExchange, userRequest, type ManagedProcess } from '../harness/ferry-stack.js';
import { waitFor, sleep } from '../harness/processes.js';
import { startSampleBackend, type SampleBackend } from '../../src/demo/sample-backend.js';
import { decodeToken } from '../../src/shared/token.js';

describe('relay + connector + tunnel', () => {
  const stack = new FerryStack();
  let backend: SampleBackend;
  let first: ManagedProcess;
  let firstConfig: string;

  before(async () => {
    backend = await startSampleBackend();
    await stack.startRelay();
    const added = await stack.relay.cli(['relay', 'app', 'add', 'app', '--external', `https://app.localhost:${stack.relay.ports.user}`, '--internal', backend.url]);
    assert.equal(added.code, 0, added.stderr);
    const registered = await stack.registerConnector({ name: 'c1' });
    assert.equal(registered.run.code, 0, registered.run.stderr);
    firstConfig = registered.configFile;
    first = stack.startConnector(firstConfig);
    await stack.waitForTunnels(2);
  });

  after(async () => {
    await stack.stop();
    await backend.close();
  });

  it('carries a request to the backend and the answer back, with proxy headers', async () => {
    const res = await userRequest(stack.relay, 'app.localhost', '/headers?x=1');
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/headers?x=1');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-host'], `app.localhost:${stack.relay.ports.user}`);
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers.host, new URL(backend.url).host, 'the backend sees its own host name');
  });

  it('removes hop-by-hop headers and rewrites an internal Location', async () => {
    const res = await userRequest(stack.relay, 'app.localhost', '/headers', { headers: { connection: 'x-secret-hop', 'x-secret-hop': 'drop me', 'keep-alive': 'timeout=5' } });
    const seen = JSON.parse(res.body) as { headers: Record<string, string> };
    assert.equal(seen.headers['x-secret-hop'], undefined);
    assert.equal(seen.headers['keep-alive'], undefined);
    const redirect = await userRequest(stack.relay, 'app.localhost', '/redirect');
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.location, `https://app.localhost:${stack.relay.ports.user}/hello`);
  });

  it('echoes over a WebSocket (extended CONNECT on the tunnel)', async () => {
    // *.localhost does not resolve through getaddrinfo here: dial 127.0.0.1 and name the host.
    const ws = new WebSocket(`wss://127.0.0.1:${stack.relay.ports.user}/echo`, {
      ca: readFileSync(stack.relay.caFile), headers: { host: `app.localhost:${stack.relay.ports.user}` }, servername: 'app.localhost',
    } as WebSocket.ClientOptions);
    const echoed = await new Promise<string>((resolve, reject) => {
      ws.on('open', () => ws.send('over the tunnel'));
      ws.on('message', (data) => resolve(String(data)));
      ws.on('error', reject);
    });
    ws.close();
    assert.equal(echoed, 'over the tunnel');
  });

  it('an HTTP/2 upload the backend answers early ends cleanly, and later uploads still work', async () => {
    const body = Buffer.alloc(8 << 20, 7);
    const session = http2.connect(`https://127.0.0.1:${stack.relay.ports.user}`, { ca: readFileSync(stack.relay.caFile), servername: 'app.localhost' });
    try {
      const post = async (path: string) => {
        const answer = await http2Exchange(session, { ':method': 'POST', ':path': path, ':authority': `app.localhost:${stack.relay.ports.user}` }, body, 10_000);
        assert.equal(answer.reset, false, `${path}: the stream was reset`);
        return { status: answer.status, text: answer.body };
      };
      for (let round = 0; round < 3; round++) {
        const early = await post('/early');
        assert.deepEqual(early, { status: 200, text: 'early\n' });
        const upload = await post('/upload');
        assert.equal(upload.status, 200, upload.text);
        assert.deepEqual(JSON.parse(upload.text), { received: body.length });
      }
    } finally {
      session.close();
    }
  });

  it('carries a GET\'s body to the app, from HTTP/2 and HTTP/1.1 users alike (a search API\'s query)', async () => {
    const session = http2.connect(`https://127.0.0.1:${stack.relay.ports.user}`, { ca: readFileSync(stack.relay.caFile), servername: 'app.localhost' });
    try {
      const query = JSON.stringify({ query: { match: { title: 'ferry' } } });
      const viaHttp2 = await http2Exchange(session, { ':method': 'GET', ':path': '/upload', ':authority': `app.localhost:${stack.relay.ports.user}` }, query);
      assert.equal(viaHttp2.body, JSON.stringify({ received: query.length }));
      const viaHttp1 = await rawExchange(stack.relay.ports.user, `GET /upload HTTP/1.1\r\nhost: app.localhost:${stack.relay.ports.user}\r\ncontent-length: ${query.length}\r\nconnection: close\r\n\r\n${query}`, { ca: readFileSync(stack.relay.caFile), servername: 'app.localhost' });
      assert.match(viaHttp1, new RegExp(`\\{"received":${query.length}\\}$`));
      const noBody = await http2Exchange(session, { ':method': 'GET', ':path': '/upload', ':authority': `app.localhost:${stack.relay.ports.user}` });
      assert.equal(noBody.body, JSON.stringify({ received: 0 }));
    } finally {
      session.close();
    }
  });

  it('keeps a path that looks like an authority (//host:port/...) a path on the published app', async () => {
    // Another server on the connector's network that no app publishes: it must see nothing.
    let reached = 0;
    const other = http.createServer((_req, res) => { reached++; res.end('other\n'); });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const path = `//127.0.0.1:${(other.address() as AddressInfo).port}/secret`;
    const session = http2.connect(`https://127.0.0.1:${stack.relay.ports.user}`, { ca: readFileSync(stack.relay.caFile), servername: 'app.localhost' });
    try {
      // An HTTP/2 user (a tunnel stream per request).
      const viaHttp2 = await http2Exchange(session, { ':path': path, ':authority': `app.localhost:${stack.relay.ports.user}` });
      assert.notEqual(viaHttp2.body, 'other\n');
      // An HTTP/1.1 user whose request Node's server reads (a chunked upload: not the head splice's).
      const viaHttp1 = await rawExchange(stack.relay.ports.user, `POST ${path} HTTP/1.1\r\nhost: app.localhost:${stack.relay.ports.user}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\n`, { ca: readFileSync(stack.relay.caFile), servername: 'app.localhost' });
      assert.match(viaHttp1, /^HTTP\/1\.1 \d{3} /);
      assert.doesNotMatch(viaHttp1, /other/);
      assert.equal(reached, 0, 'the connector sent a user request to a host no app publishes');
    } finally {
      session.close();
      other.close();
    }
  });

  it('shows the connector online with its version and address', async () => {
    const run = await stack.relay.cli(['relay', 'connectors', 'list', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const { connectors } = JSON.parse(run.stdout) as { connectors: { name: string; online: boolean; version: string; remoteAddress: string }[] };
    const c1 = connectors.find((c) => c.name === 'c1');
    assert.ok(c1?.online);
    assert.equal(c1.version, '0.1.0');
    assert.equal(c1.remoteAddress, '127.0.0.1');
  });

  it('answers each error page: unknown host 404, backend refused 502, backend timeout 504, no connector 502', async () => {
    const unknown = await userRequest(stack.relay, 'other.localhost', '/', { headers: { accept: 'application/json' } });
    assert.equal(unknown.status, 404);
    assert.equal((JSON.parse(unknown.body) as { error: { code: string } }).error.code, 'unknown-host');
    const html = await userRequest(stack.relay, 'other.localhost', '/', { headers: { accept: 'text/html' } });
    assert.match(String(html.headers['content-type']), /text\/html/);
    assert.match(html.body, /No application is published/);

    const port = stack.relay.ports.user;
    await stack.relay.cli(['relay', 'app', 'add', 'dead', '--external', `https://dead.localhost:${port}`, '--internal', 'http://127.0.0.1:9']);
    await stack.relay.cli(['relay', 'app', 'add', 'slow', '--external', `https://slow.localhost:${port}`, '--internal', backend.url, '--timeout', '1s']);
    await stack.relay.cli(['relay', 'app', 'add', 'lonely', '--external', `https://lonely.localhost:${port}`, '--internal', backend.url, '--group', 'nobody']);
    await sleep(700); // the relay picks up app changes within 500 ms

    const refused = await userRequest(stack.relay, 'dead.localhost', '/', { headers: { accept: 'application/json' } });
    assert.equal(refused.status, 502);
    const refusedBody = JSON.parse(refused.body) as { error: { code: string; class: string } };
    assert.equal(refusedBody.error.code, 'backend-unreachable');
    assert.equal(refusedBody.error.class, 'connect-refused');

    const slow = await userRequest(stack.relay, 'slow.localhost', '/slow?ms=5000', { headers: { accept: 'application/json' } });
    assert.equal(slow.status, 504);
    assert.equal((JSON.parse(slow.body) as { error: { code: string } }).error.code, 'backend-timeout');

    const lonely = await userRequest(stack.relay, 'lonely.localhost', '/', { headers: { accept: 'application/json' } });
    assert.equal(lonely.status, 502);
    const lonelyBody = JSON.parse(lonely.body) as { error: { code: string; detail: string } };
    assert.equal(lonelyBody.error.code, 'no-connector');
    assert.match(lonelyBody.error.detail, /"nobody"/);
  });

  it('spreads load over two connectors and keeps serving when one is killed', async () => {
    const second = await stack.registerConnector({ name: 'c2' });
    assert.equal(second.run.code, 0, second.run.stderr);
    const c2 = stack.startConnector(second.configFile);
    await stack.waitForTunnels(4);
    // A failed request says what the relay saw (CI logs are all there is to go on).
    const hello = (when: string) => userRequest(stack.relay, 'app.localhost', '/hello').catch((error: Error) => {
      throw new Error(`${when}: ${error.message}\nrelay log:\n${stack.relay.log().split('\n').slice(-30).join('\n')}`);
    });
    const results = await Promise.all(Array.from({ length: 40 }, () => hello('before the kill')));
    assert.ok(results.every((r) => r.status === 200));
    first.child.kill('SIGKILL');
    let failures = 0;
    for (let i = 0; i < 60; i++) {
      const res = await hello(`request ${i} after the kill`);
      if (res.status !== 200) failures++;
    }
    // Requests already on the killed tunnel may fail; once the relay saw the tunnel go, none may.
    await stack.waitForTunnels(2);
    const later = await Promise.all(Array.from({ length: 40 }, () => hello('once the tunnels were gone')));
    assert.deepEqual(later.map((r) => r.status), later.map(() => 200));
    assert.ok(failures <= 2, `${failures} requests failed right after the kill`);
    first = c2;
  });

  it('reconnects by itself after a relay restart', async () => {
    await stack.relay.restart();
    await stack.waitForTunnels(2, 20_000);
    const res = await userRequest(stack.relay, 'app.localhost', '/hello');
    assert.equal(res.status, 200);
    assert.equal(res.body, 'hello\n');
  });

  it('finishes a request in flight when the relay shuts down gracefully', async () => {
    const pending = userRequest(stack.relay, 'app.localhost', '/slow?ms=1500');
    await sleep(300);
    const stopping = stack.relay.stop(10_000);
    const res = await pending;
    await stopping;
    assert.equal(res.status, 200);
    assert.equal(res.body, 'late\n');
    await stack.relay.restart();
    await stack.waitForTunnels(2, 20_000);
  });

  it('closes a removed connector\'s tunnels at once and refuses it afterwards', async () => {
    const run = await stack.relay.cli(['relay', 'connectors', 'remove', 'c2']);
    assert.equal(run.code, 0, run.stderr);
    const code = first.child.exitCode ?? await new Promise<number | null>((resolve) => first.child.once('exit', (c) => resolve(c)));
    assert.equal(code, 1, 'the connector stops: a removed connector must not retry forever');
    assert.match(first.log(), /relay refused this connector/);
    assert.match(first.log(), /re-register the connector/);
    const res = await userRequest(stack.relay, 'app.localhost', '/hello', { headers: { accept: 'application/json' } });
    assert.equal(res.status, 502);
  });
});

describe('registration tokens', () => {
  const stack = new FerryStack();
  before(async () => { await stack.startRelay(); });
  after(async () => { await stack.stop(); });

  it('refuses a used token', async () => {
    const token = await stack.createToken();
    const ok = await stack.registerConnector({ name: 'once', token });
    assert.equal(ok.run.code, 0, ok.run.stderr);
    const again = await stack.registerConnector({ name: 'twice', token });
    assert.equal(again.run.code, 1);
    assert.match(again.run.stderr, /already used/);
    assert.match(again.run.stderr, /fix: create a new token with "ferry relay token create" \(tokens are one-time\)/);
  });

  it('refuses an expired token', async () => {
    const token = await stack.createToken('default', '1s');
    await sleep(1200);
    const late = await stack.registerConnector({ name: 'late', token });
    assert.equal(late.run.code, 1);
    assert.match(late.run.stderr, /expired/);
  });

  it('refuses a token whose CA fingerprint is not the relay\'s, before sending the secret', async () => {
    const token = await stack.createToken();
    const payload = JSON.parse(Buffer.from(token.slice('ferry1.'.length), 'base64url').toString('utf8')) as Record<string, string>;
    payload.f = 'ab'.repeat(32);
    const forged = `ferry1.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    const refused = await stack.registerConnector({ name: 'forged', token: forged });
    assert.equal(refused.run.code, 1);
    assert.match(refused.run.stderr, /without the CA named in the token.*nothing was sent/);
    // The secret was never sent, so the genuine token still works.
    const genuine = await stack.registerConnector({ name: 'genuine', token });
    assert.equal(genuine.run.code, 0, genuine.run.stderr);
  });

  it('refuses a malformed CSR (400 bad-csr) without using up the token', async () => {
    const token = await stack.createToken();
    const { relayUrl, secret } = decodeToken(token);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = https.request(`${relayUrl}/v1/register`, { method: 'POST', ca: readFileSync(stack.relay.caFile), headers: { 'content-type': 'application/json' } }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => { body += chunk; });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      request.on('error', reject);
      request.end(JSON.stringify({ secret, csrPem: '-----BEGIN CERTIFICATE REQUEST-----\nnot a csr\n-----END CERTIFICATE REQUEST-----\n', name: 'broken' }));
    });
    assert.equal(answer.status, 400, answer.body);
    assert.match(answer.body, /bad-csr/);
    const genuine = await stack.registerConnector({ name: 'after-bad-csr', token });
    assert.equal(genuine.run.code, 0, genuine.run.stderr);
  });

  it('stores the key and the certificate with mode 0600', async () => {
    const { configFile } = await stack.registerConnector({ name: 'modes' });
    const { statSync } = await import('node:fs');
    const { dirname, join } = await import('node:path');
    for (const file of ['connector.key', 'connector.pem', 'registration.json']) {
      assert.equal(statSync(join(dirname(configFile), 'modes', file)).mode & 0o777, 0o600, file);
    }
    await waitFor(() => true, 10);
  });
});
