// HTTP/1.1 user connections as one tunnel stream each (issue 7's "one tunnel stream per user
// connection"), end to end with the real relay and connector processes: what a user and the app see
// must be what the per-request path gives (headers, pages, WebSocket), plus what only a connection
// stream does: requests of one connection stay on it (pipelining in order; another app's Host gets
// 421), passthrough apps get the bytes unchanged, and a draining relay closes idle connections.
// HTTP/2 users whose TLS server name names an app get the same: the connector runs their session.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import tls from 'node:tls';
import { FerryStack, rawExchange as exchange, userRequest, type ManagedProcess } from '../harness/ferry-stack.js';
import { freePort, waitFor } from '../harness/processes.js';
import { startSampleBackend, type SampleBackend } from '../../src/demo/sample-backend.js';

const get = (path: string, host: string, last = false) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;

describe('connection streams (HTTP/1.1 users, and HTTP/2 users by server name)', () => {
  const stack = new FerryStack();
  let backend: SampleBackend;
  let ca: Buffer;
  let plainPort: number;
  let app: string;
  let other: string;
  let connector: ManagedProcess;

  before(async () => {
    backend = await startSampleBackend();
    await stack.startRelay({}, { userPlain: true });
    plainPort = stack.relay.ports.userPlain!;
    ca = readFileSync(stack.relay.caFile);
    const port = stack.relay.ports.user;
    app = `app.localhost:${port}`;
    other = `other.localhost:${port}`;
    for (const args of [
      ['app', '--external', `https://app.localhost:${port}`, '--internal', backend.url],
      ['other', '--external', `https://other.localhost:${port}`, '--internal', backend.url],
      ['plainapp', '--external', `http://app.localhost:${plainPort}`, '--internal', backend.url],
      ['passthru', '--external', `https://slow.localhost:${port}`, '--internal', backend.url, '--passthrough'],
      ['deadpass', '--external', `https://dead.localhost:${port}`, '--internal', `http://127.0.0.1:${await freePort()}`, '--passthrough'],
    ]) {
      const added = await stack.relay.cli(['relay', 'app', 'add', ...args]);
      assert.equal(added.code, 0, added.stderr);
    }
    const registered = await stack.registerConnector({ name: 'c1' });
    assert.equal(registered.run.code, 0, registered.run.stderr);
    connector = stack.startConnector(registered.configFile);
    await stack.waitForTunnels(2);
  });

  after(async () => {
    await stack.stop();
    await backend.close();
  });

  it('answers pipelined requests of one connection in order, with the proxy headers', async () => {
    const raw = await exchange(stack.relay.ports.user, get('/hello', app) + get('/headers?n=2', app) + get('/hello', app, true), { ca, servername: 'app.localhost' });
    const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '200', '200']);
    const seen = JSON.parse(/\{"method".*\}/.exec(raw)![0]) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/headers?n=2');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-host'], app);
    assert.equal(seen.headers.host, new URL(backend.url).host);
    assert.ok(raw.indexOf('hello\n') < raw.indexOf('"method"'), 'answers in request order');
  });

  it('answers another app\'s Host on the same connection with 421 and closes it', async () => {
    const raw = await exchange(stack.relay.ports.user, get('/hello', app) + `GET /hello HTTP/1.1\r\nHost: ${other}\r\nAccept: application/json\r\n\r\n`, { ca, servername: 'app.localhost' });
    assert.match(raw, /^HTTP\/1\.1 200/);
    assert.match(raw, /HTTP\/1\.1 421/);
    assert.match(raw, /"code":"misdirected"/);
    // A connection of its own serves the other app.
    const res = await userRequest(stack.relay, 'other.localhost', '/hello');
    assert.equal(res.status, 200);
  });

  it('carries uploads and large downloads', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    const up = await userRequest(stack.relay, 'app.localhost', '/upload', { method: 'POST', body });
    assert.equal(up.status, 200);
    assert.deepEqual(JSON.parse(up.body), { received: body.length });
    const down = await userRequest(stack.relay, 'app.localhost', `/bytes?n=${5 * 1024 * 1024}`);
    assert.equal(down.status, 200);
    assert.equal(down.body.length, 5 * 1024 * 1024);
  });

  it('serves the plain-HTTP listener the same way (X-Forwarded-Proto http)', async () => {
    const raw = await exchange(plainPort, get('/headers', `app.localhost:${plainPort}`, true), { plain: true });
    assert.match(raw, /^HTTP\/1\.1 200/);
    const seen = JSON.parse(/\{"method".*\}/.exec(raw)![0]) as { headers: Record<string, string> };
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
  });

  it('leaves a garbled first request to the per-request server (400), and an unknown host gets the 404 page', async () => {
    const garbled = await exchange(stack.relay.ports.user, 'NOT AN HTTP REQUEST\r\n\r\n', { ca, servername: 'app.localhost' });
    assert.match(garbled, /^HTTP\/1\.1 400/);
    const unknown = await userRequest(stack.relay, 'lonely.localhost', '/');
    assert.equal(unknown.status, 404);
  });

  it('HTTP/2 users: the connector serves a session whose server name names an app; another host on it gets 421', async () => {
    const h2Get = (session: http2.ClientHttp2Session, authority: string, path = '/headers') => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':path': path, ':authority': authority, accept: 'application/json' });
      let status = 0;
      let body = '';
      stream.setEncoding('utf8');
      stream.on('response', (headers) => { status = Number(headers[':status']); });
      stream.on('data', (chunk: string) => { body += chunk; });
      stream.on('end', () => resolve({ status, body }));
      stream.on('error', reject);
    });
    // Server name app.localhost: one connection stream, the connector runs the session.
    const named = http2.connect(`https://127.0.0.1:${stack.relay.ports.user}`, { ca, servername: 'app.localhost' });
    try {
      const answers = await Promise.all([h2Get(named, app), h2Get(named, app, '/hello'), h2Get(named, app)]);
      assert.deepEqual(answers.map((a) => a.status), [200, 200, 200]);
      const seen = JSON.parse(answers[0].body) as { headers: Record<string, string> };
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      assert.equal(seen.headers['x-forwarded-host'], app);
      // A browser may send another app's requests on this connection (the certificate names both):
      // 421 Misdirected Request sends it to a connection of that app's own (RFC 9113 §9.1.2).
      const misdirected = await h2Get(named, other);
      assert.equal(misdirected.status, 421, misdirected.body);
      assert.equal((await h2Get(named, app, '/hello')).body, 'hello\n', 'the session goes on after a 421');
    } finally {
      named.close();
    }
    // A passthrough app's HTTP/2 users too, with the usual rules (its app speaks HTTP/1.1).
    const passthrough = http2.connect(`https://127.0.0.1:${stack.relay.ports.user}`, { ca, servername: 'slow.localhost' });
    try {
      const seen = await h2Get(passthrough, `slow.localhost:${stack.relay.ports.user}`);
      assert.equal((JSON.parse(seen.body) as { headers: Record<string, string> }).headers['x-forwarded-for'], '127.0.0.1');
      assert.equal((await h2Get(passthrough, app)).status, 421, 'the connector serves the session');
    } finally {
      passthrough.close();
    }
    // No server name (an address): the relay's own HTTP/2 server, a tunnel stream per request,
    // which routes each request by its :authority.
    const unnamed = http2.connect(`https://127.0.0.1:${stack.relay.ports.user}`, { ca, checkServerIdentity: () => undefined });
    try {
      assert.equal((await h2Get(unnamed, app)).status, 200);
      assert.equal((await h2Get(unnamed, other)).status, 200);
    } finally {
      unnamed.close();
    }
  });

  it('passthrough: the app gets the bytes as the user sent them', async () => {
    const port = stack.relay.ports.user;
    const raw = await exchange(port, get('/headers', `slow.localhost:${port}`, true), { ca, servername: 'slow.localhost' });
    assert.match(raw, /^HTTP\/1\.1 200/);
    const seen = JSON.parse(/\{"method".*\}/.exec(raw)![0]) as { headers: Record<string, string> };
    assert.equal(seen.headers.host, `slow.localhost:${port}`, 'the Host is not rewritten');
    assert.equal(seen.headers['x-forwarded-for'], undefined, 'no header is added');
  });

  it('passthrough to an app that is down: the 502 page names the failure', async () => {
    const res = await userRequest(stack.relay, 'dead.localhost', '/', { headers: { accept: 'application/json' } });
    assert.equal(res.status, 502);
    assert.match(res.body, /connect-refused/);
  });

  it('a relay shutting down closes idle kept-alive connections instead of waiting for them', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port: stack.relay.ports.user, ca, servername: 'app.localhost', ALPNProtocols: ['http/1.1'] });
    let answered = '';
    socket.on('data', (chunk: Buffer) => { answered += chunk.toString('latin1'); });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    socket.write(get('/hello', app));
    await waitFor(() => (answered.includes('hello\n') ? true : undefined), 10_000, 'the first answer');
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => undefined);
    // And an idle HTTP/2 session the connector serves: the browser is told GOAWAY.
    const session = http2.connect(`https://127.0.0.1:${stack.relay.ports.user}`, { ca, servername: 'app.localhost' });
    session.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      const stream = session.request({ ':path': '/hello', ':authority': app });
      stream.on('error', reject);
      stream.resume();
      stream.on('end', resolve);
    });
    const toldGoaway = new Promise((resolve) => session.once('goaway', resolve));
    const sessionClosed = new Promise((resolve) => session.once('close', resolve));
    const started = Date.now();
    await stack.relay.stop(20_000);
    await Promise.all([closed, toldGoaway, sessionClosed]);
    assert.ok(Date.now() - started < 10_000, `the relay waited ${Date.now() - started} ms for an idle connection; connector: ${connector.log().split('\n').filter((l) => l.includes('GOAWAY')).join('\n')}`);
    await stack.relay.restart();
    await stack.waitForTunnels(2, 20_000);
  });
});
