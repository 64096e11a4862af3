// The connector's two HTTP/1.1 paths to a DIRECT plain-http app end to end, with real relay and
// connector processes and a scripted app on a raw socket, so the answers can take every framing
// HTTP/1.1 has: chunked with trailers, HEAD, 1xx, a body that ends with the connection, a
// malformed head, an answer cut short.
// - the head splice (src/connector/head-splice.ts, HTTP/1.1 users): what the user gets must be
//   exactly what the app sent, heads rewritten; and one user connection keeps one app connection;
// - the app client (src/connector/app-client.ts, HTTP/2 users: a tunnel stream per request): the
//   answer arrives de-framed, and app connections are reused between requests.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { FerryStack, http2Exchange, rawExchange, type Http2Answer } from '../harness/ferry-stack.js';
import { sleep } from '../harness/processes.js';

interface SeenRequest {
  connection: number;
  head: string;
  bodyLength: number;
}

/** An app that records each request and answers from a script chosen by the path. */
async function startScriptedApp(): Promise<{ port: number; seen: SeenRequest[]; close(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const id = ++connections;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = Buffer.alloc(0);
    // Bytes not yet joined to `buffer`: joining and searching all of it on every read made an
    // 8 MiB upload quadratic, and the app too slow for its timeout when reads came in small pieces.
    let parts: Buffer[] = [];
    let partsLength = 0;
    let tail = '';
    /** The message in progress has its head: what completes it. */
    let awaiting: { chunked: boolean; bodyEnd: number } | undefined;
    let busy = false;
    const next = async (): Promise<void> => {
      if (busy) return;
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buffer.toString('latin1', 0, end);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      const chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
      let bodyEnd = end + 4 + length;
      awaiting = { chunked, bodyEnd };
      if (chunked) {
        const last = buffer.indexOf('\r\n0\r\n\r\n', end);
        if (last === -1 && !buffer.subarray(end + 4).toString().startsWith('0\r\n\r\n')) return;
        bodyEnd = last === -1 ? end + 9 : last + 7;
      }
      if (buffer.length < bodyEnd) return;
      awaiting = undefined;
      const body = buffer.subarray(end + 4, bodyEnd);
      buffer = buffer.subarray(bodyEnd);
      busy = true;
      if (closeOnNextRequest.delete(id)) {
        // As an app whose keep-alive timeout ends just as the next request comes.
        return void socket.destroy();
      }
      const bodyLength = chunked ? Buffer.from(body.toString('latin1').replace(/(^|\r\n)[0-9a-f]+\r\n/gi, '').replace(/\r\n$/, ''), 'latin1').length : body.length;
      seen.push({ connection: id, head: `${head}\r\n`, bodyLength });
      await answer(socket, `${head}\r\n`, bodyLength, id);
      busy = false;
      void next();
    };
    let slowed = false;
    socket.on('data', (chunk: Buffer) => {
      parts.push(chunk);
      partsLength += chunk.length;
      tail = (tail + chunk.toString('latin1', Math.max(0, chunk.length - 8))).slice(-8);
      const complete = !awaiting || (awaiting.chunked ? tail.includes('0\r\n\r\n') : buffer.length + partsLength >= awaiting.bodyEnd);
      if (!complete) return;
      buffer = Buffer.concat([buffer, ...parts]);
      parts = [];
      partsLength = 0;
      if (!slowed && buffer.includes('/slow-reader')) {
        // As a busy app: it stops reading for a while, so the sender's writes back up.
        slowed = true;
        socket.pause();
        setTimeout(() => socket.resume(), 500);
      }
      void next();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 20));
/** Connections that close, unanswered, when their next request arrives (set by /arm). */
const closeOnNextRequest = new Set<number>();

async function answer(socket: net.Socket, head: string, bodyLength: number, connection: number): Promise<void> {
  const [method, target] = head.split(' ');
  const write = async (...parts: string[]) => {
    for (const part of parts) {
      socket.write(part, 'latin1');
      await pause(); // separate TCP segments, so the splice sees the answer in pieces
    }
  };
  switch (new URL(target, 'http://app').pathname.replace(/^\/int\//, '/')) {
    case '/chunked':
      return write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 999\r\nTrailer: X-Trailer\r\n\r\n5\r\nhel', 'lo\r\n6;x=y\r\n world\r\n', '0\r\nX-Trailer: t\r\n\r\n');
    case '/head':
      return write(`HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-Method: ${method}\r\n\r\n`);
    case '/interim':
      return write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    case '/until-close':
      await write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall ', 'of it');
      return void socket.end();
    case '/garbage':
      return write('HTTP/1.1 200 OK\r\nBad Header\r\n\r\n');
    case '/cut':
      await write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
      return void socket.destroy();
    case '/bad-chunks':
      return write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', 'zz\r\n');
    case '/arm':
      closeOnNextRequest.add(connection);
      return write('HTTP/1.1 204 No Content\r\n\r\n');
    case '/windows-auth':
      return write('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n');
    case '/cookies':
      return write('HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n');
    case '/never':
      return new Promise(() => undefined); // holds the connection until the test closes it
    case '/location':
      return write(`HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:${(socket.address() as net.AddressInfo).port}/int/next\r\nContent-Length: 0\r\n\r\n`);
    default: {
      const body = JSON.stringify({ head, bodyLength, connection });
      return write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: keep-alive, X-App-Hop\r\nX-App-Hop: secret\r\n\r\n${body}`);
    }
  }
}

const execFileAsync = promisify(execFile);
/** A loopback port nothing listens on (just closed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
function hasCurl(): boolean {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The user's side: raw answers, split into messages by the test's own expectations. */
const request = (method: string, path: string, host: string, extra = '') => `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;

describe('head splice (connection streams to a DIRECT plain-http app)', () => {
  const stack = new FerryStack();
  let scripted: Awaited<ReturnType<typeof startScriptedApp>>;
  let ca: Buffer;
  let app: string;
  let prefixed: string;
  const send = (raw: string, host = 'app.localhost') => rawExchange(stack.relay.ports.user, raw, { ca, servername: host });

  before(async () => {
    scripted = await startScriptedApp();
    await stack.startRelay();
    ca = readFileSync(stack.relay.caFile);
    const port = stack.relay.ports.user;
    app = `app.localhost:${port}`;
    prefixed = `other.localhost:${port}`;
    for (const args of [
      ['raw', '--external', `https://app.localhost:${port}`, '--internal', `http://127.0.0.1:${scripted.port}`, '--timeout', '2s'],
      ['pre', '--external', `https://other.localhost:${port}`, '--internal', `http://127.0.0.1:${scripted.port}/int/`],
      ['dead', '--external', `https://dead.localhost:${port}`, '--internal', `http://127.0.0.1:${await closedPort()}`],
    ]) {
      const added = await stack.relay.cli(['relay', 'app', 'add', ...args]);
      assert.equal(added.code, 0, added.stderr);
    }
    const registered = await stack.registerConnector({ name: 'c1' });
    assert.equal(registered.run.code, 0, registered.run.stderr);
    stack.startConnector(registered.configFile);
    await stack.waitForTunnels(2);
  });

  after(async () => {
    await stack.stop();
    await scripted.close();
  });

  it('passes a chunked answer through as sent (trailers kept, Content-Length dropped) and keeps one app connection', async () => {
    scripted.seen.length = 0;
    const raw = await send(request('GET', '/chunked', app) + request('GET', '/echo?x=1', app, 'X-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Port: 8443\r\nConnection: close, X-User-Hop\r\nX-User-Hop: drop\r\n'));
    const chunkedBody = '5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n';
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
    const firstHead = raw.slice(0, raw.indexOf('\r\n\r\n'));
    assert.match(firstHead, /Transfer-Encoding: chunked/);
    assert.doesNotMatch(firstHead, /Content-Length/i);
    assert.ok(raw.includes(`\r\n\r\n${chunkedBody}HTTP/1.1 200 OK\r\n`), raw);
    const second = raw.slice(raw.lastIndexOf('HTTP/1.1 200 OK'));
    assert.match(second, /\r\nconnection: close\r\n/i);
    assert.doesNotMatch(second, /X-App-Hop/i, 'a field the app named in Connection is dropped');
    const echoed = JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4)) as SeenRequest;
    assert.match(echoed.head, /^GET \/echo\?x=1 HTTP\/1\.1\r\n/);
    assert.match(echoed.head, new RegExp(`\\r\\nhost: 127\\.0\\.0\\.1:${scripted.port}\\r\\n`));
    assert.match(echoed.head, /\r\nx-forwarded-for: 10\.9\.9\.9, 127\.0\.0\.1\r\n/);
    assert.match(echoed.head, new RegExp(`\\r\\nx-forwarded-host: ${app}\\r\\n`));
    assert.match(echoed.head, /\r\nx-forwarded-proto: https\r\n/);
    assert.match(echoed.head, /\r\nX-Forwarded-Port: 8443\r\n/, 'other X-Forwarded-* fields pass');
    assert.doesNotMatch(echoed.head, /X-User-Hop|Connection:/i);
    assert.deepEqual(scripted.seen.map((r) => r.connection), [echoed.connection, echoed.connection], 'both requests on one app connection');
  });

  it('sends no body where there is none (HEAD, 1xx) and maps the internal path prefix both ways', async () => {
    const raw = await send(request('HEAD', '/head', app) + request('GET', '/interim', app, 'Connection: close\r\n'));
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\nContent-Length: 1234\r\nX-Method: HEAD\r\n\r\nHTTP\/1\.1 103 Early Hints\r\nLink: <\/a\.css>; rel=preload\r\n\r\nHTTP\/1\.1 200 OK\r\nContent-Length: 2\r\nconnection: close\r\n\r\nok$/);
    const location = await send(request('GET', '/location', prefixed, 'Connection: close\r\n'), 'other.localhost');
    assert.match(location, new RegExp(`^HTTP/1\\.1 302 Found\\r\\nLocation: https://${prefixed}/next\\r\\n`));
    assert.match(scripted.seen.at(-1)!.head, /^GET \/int\/location HTTP\/1\.1/);
  });

  it('ends the user connection with an answer that ends with the app connection', async () => {
    const raw = await send(request('GET', '/until-close', app) + request('GET', '/echo', app));
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/plain\r\nconnection: close\r\n\r\nall of it$/);
  });

  it('carries a Content-Length upload as bytes, and hands a chunked one to Node\'s server', async () => {
    const body = 'x'.repeat(300_000);
    const raw = await send(request('POST', '/echo', app, `Content-Length: ${body.length}\r\n`) + body + request('POST', '/echo', app, 'Transfer-Encoding: chunked\r\nConnection: close\r\n') + '3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n');
    const lengths = [...raw.matchAll(/"bodyLength":(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(lengths, [300_000, 7]);
  });

  it('answers a malformed app answer with the 502 page and cuts an answer the app cut', async () => {
    const garbage = await send(request('GET', '/garbage', app, 'Accept: application/json\r\n'));
    assert.match(garbage, /^HTTP\/1\.1 502 /);
    assert.match(garbage, /"code":"backend-unreachable"/);
    const cut = await send(request('GET', '/cut', app));
    assert.match(cut, /^HTTP\/1\.1 200 OK\r\nContent-Length: 100\r\n\r\npartial$/);
  });

  it('cuts an answer whose chunked framing goes bad, and goes on serving', async () => {
    const bad = await send(request('GET', '/bad-chunks', app));
    assert.match(bad, /^HTTP\/1\.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n$/);
    assert.match(await send(request('GET', '/echo', app, 'Connection: close\r\n')), /^HTTP\/1\.1 200 OK\r\n/, 'the connector is still there');
  });

  it('answers an app that does not answer with the 504 page after the app\'s timeout', async () => {
    const raw = await send(request('GET', '/never', app, 'Accept: application/json\r\n'));
    assert.match(raw, /^HTTP\/1\.1 504 /);
    assert.match(raw, /"code":"backend-timeout"/);
  });

  /** One request on its own user connection, which the user ends once the answer is in. */
  const once = (path: string) => new Promise<string>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: stack.relay.ports.user, ca, servername: 'app.localhost', ALPNProtocols: ['http/1.1'] });
    let raw = '';
    socket.once('secureConnect', () => socket.write(request('GET', path, app)));
    socket.on('data', (chunk: Buffer) => {
      raw += chunk.toString('latin1');
      const length = Number(/Content-Length: (\d+)/.exec(raw)?.[1]);
      const bodyAt = raw.indexOf('\r\n\r\n') + 4;
      if (bodyAt > 3 && raw.length - bodyAt >= length) {
        socket.end();
        setTimeout(() => resolve(raw), 300); // the user's end reaches the connector
      }
    });
    socket.on('error', reject);
  });
  const echoedBy = (raw: string) => (JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as SeenRequest).connection;

  it('a new user connection takes the app connection an earlier one left between answers', async () => {
    const first = echoedBy(await once('/echo'));
    const second = echoedBy(await once('/echo'));
    assert.equal(second, first, 'the second user connection reused the first one\'s app connection');
  });

  it('a user\'s Connection: close ends the user connection only: the app connection serves the next user', async () => {
    const raw = await send(request('GET', '/echo', app, 'Connection: close\r\n'));
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n/);
    assert.doesNotMatch(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).head as string, /connection: close/i, 'Connection is hop-by-hop');
    await sleep(300); // the user's close reaches the connector
    const next = echoedBy(await once('/echo'));
    assert.equal(next, echoedBy(raw), 'the next user connection reused the app connection');
  });

  it('never hands an app connection that saw NTLM or Negotiate to another user connection', async () => {
    scripted.seen.length = 0;
    assert.match(await once('/windows-auth'), /^HTTP\/1\.1 401 /);
    const challengedOn = scripted.seen[0].connection;
    const next = echoedBy(await once('/echo'));
    assert.notEqual(next, challengedOn, 'the connection Windows authentication may bind stayed with its user');
  });

  it('sends a GET once more on a new app connection when a kept-alive one closes unanswered, but not a POST', async () => {
    const raw = await send(request('GET', '/arm', app) + request('GET', '/echo', app, 'Connection: close\r\n'));
    assert.match(raw, /^HTTP\/1\.1 204 No Content\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    const armedOn = scripted.seen.find((r) => r.head.startsWith('GET /arm'))!.connection;
    const echoed = JSON.parse(raw.slice(raw.lastIndexOf('\r\n\r\n') + 4)) as SeenRequest;
    assert.notEqual(echoed.connection, armedOn, 'answered on a new app connection');
    const post = await send(request('GET', '/arm', app) + request('POST', '/echo', app, 'Content-Length: 2\r\nAccept: application/json\r\n') + 'hi');
    assert.match(post, /HTTP\/1\.1 502 /, 'a POST is not sent twice');
  });

  it('leaves smuggling shapes (Content-Length with Transfer-Encoding) to Node\'s server, which refuses them', async () => {
    const raw = await send(request('POST', '/echo', app, 'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n') + '0\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 400 /);
  });

  describe('app client (HTTP/2 users: their sessions run on the connector)', () => {
    // A session per app, named by its server name, as a browser opens them.
    const sessions = new Map<string, http2.ClientHttp2Session>();
    const sessionFor = (host: string) => {
      const name = host.replace(/:\d+$/, '');
      let session = sessions.get(name);
      if (!session) sessions.set(name, (session = http2.connect(`https://127.0.0.1:${stack.relay.ports.user}`, { ca, servername: name })));
      return session;
    };
    const h2 = (path: string, options: { method?: string; host?: string; headers?: http2.OutgoingHttpHeaders; body?: string } = {}) =>
      http2Exchange(sessionFor(options.host ?? app), { ':method': options.method ?? 'GET', ':path': path, ':authority': options.host ?? app, ...options.headers }, options.body);
    const echoed = (answer: Http2Answer) => JSON.parse(answer.body) as SeenRequest;

    after(() => {
      for (const session of sessions.values()) session.close();
    });

    it('takes the chunked framing off (trailers and Content-Length dropped) and reuses the app connection', async () => {
      const chunked = await h2('/chunked');
      assert.equal(chunked.status, 200);
      assert.equal(chunked.body, 'hello world');
      assert.equal(chunked.headers['content-length'], undefined);
      assert.equal(chunked.headers['x-trailer'], undefined);
      const first = await h2('/echo?x=1', { headers: { 'x-forwarded-for': '10.9.9.9' } });
      const second = await h2('/echo');
      const seen = echoed(first);
      assert.match(seen.head, /^GET \/echo\?x=1 HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\n/);
      assert.match(seen.head, /\r\nx-forwarded-for: 10\.9\.9\.9, 127\.0\.0\.1\r\n/);
      assert.match(seen.head, /\r\nx-forwarded-proto: https\r\n/);
      assert.doesNotMatch(seen.head, /content-length|transfer-encoding/i, 'a GET without a body announces none');
      assert.equal(first.headers['x-app-hop'], undefined, 'a field the app named in Connection is dropped');
      assert.equal(echoed(second).connection, seen.connection, 'the second request took the first one\'s app connection');
    });

    it('keeps HEAD\'s Content-Length without a body, skips a 1xx, keeps repeated fields, rewrites Location', async () => {
      const head = await h2('/head', { method: 'HEAD' });
      assert.deepEqual([head.status, head.headers['content-length'], head.headers['x-method'], head.body], [200, '1234', 'HEAD', '']);
      const interim = await h2('/interim');
      assert.deepEqual([interim.status, interim.body], [200, 'ok']);
      const cookies = await h2('/cookies');
      assert.deepEqual(cookies.headers['set-cookie'], ['a=1', 'b=2']);
      const location = await h2('/location', { host: prefixed });
      assert.equal(location.headers.location, `https://${prefixed}/next`);
      assert.match(scripted.seen.at(-1)!.head, /^GET \/int\/location HTTP\/1\.1/);
    });

    it('ends an answer with the app connection, which is then not reused', async () => {
      scripted.seen.length = 0;
      const untilClose = await h2('/until-close');
      assert.deepEqual([untilClose.status, untilClose.body, untilClose.reset], [200, 'all of it', false]);
      const next = echoed(await h2('/echo'));
      assert.notEqual(next.connection, scripted.seen[0].connection);
    });

    it('sends an upload with its Content-Length, or chunked when it has none', async () => {
      const body = 'x'.repeat(300_000);
      const sized = echoed(await h2('/echo', { method: 'POST', body, headers: { 'content-length': body.length } }));
      assert.equal(sized.bodyLength, 300_000);
      assert.match(sized.head, /\r\ncontent-length: 300000\r\n/);
      const streamed = echoed(await h2('/echo', { method: 'POST', body: 'abcdefg' }));
      assert.equal(streamed.bodyLength, 7);
      assert.match(streamed.head, /\r\ntransfer-encoding: chunked\r\n/);
      const empty = echoed(await h2('/echo', { method: 'POST' }));
      assert.match(empty.head, /\r\ncontent-length: 0\r\n/);
    });

    it('keeps a chunked upload\'s framing when the app reads slowly (writes back up)', async () => {
      const body = 'y'.repeat(8 << 20);
      const answer = await h2('/slow-reader', { method: 'POST', body });
      assert.equal(answer.status, 200, answer.body);
      assert.equal(echoed(answer).bodyLength, body.length);
    });

    it('answers a malformed answer with 502 and resets an answer the app cut', async () => {
      const garbage = await h2('/garbage', { headers: { accept: 'application/json' } });
      assert.equal(garbage.status, 502);
      assert.match(garbage.body, /"code":"backend-unreachable"/);
      const cut = await h2('/cut');
      assert.equal(cut.status, 200);
      assert.ok(cut.reset, 'the user sees the answer cut, not a complete short one');
      assert.equal(cut.body, 'partial');
    });

    it('answers an app that does not answer with the 504 page after the app\'s timeout, and the session goes on', async () => {
      const silent = await h2('/never', { headers: { accept: 'application/json' } });
      assert.equal(silent.status, 504);
      assert.match(silent.body, /"code":"backend-timeout"/);
      assert.equal((await h2('/echo')).status, 200);
    });

    it('answers an app that refuses the connection with the 502 page naming the class', async () => {
      const refused = await h2('/', { host: `dead.localhost:${stack.relay.ports.user}`, headers: { accept: 'application/json' } });
      assert.equal(refused.status, 502);
      assert.match(refused.body, /"code":"backend-unreachable"/);
      assert.match(refused.body, /connect-refused/);
    });

    it('resets an answer whose chunked framing goes bad', async () => {
      const bad = await h2('/bad-chunks');
      assert.deepEqual([bad.status, bad.body, bad.reset], [200, 'hello', true]);
      assert.equal((await h2('/echo')).status, 200);
    });

    it('sends a GET once more when a reused app connection closes unanswered, but not a POST', async () => {
      assert.equal((await h2('/arm')).status, 204);
      const armedOn = scripted.seen.at(-1)!.connection;
      const again = await h2('/echo');
      assert.equal(again.status, 200);
      assert.notEqual(echoed(again).connection, armedOn, 'answered on a new app connection');
      assert.equal((await h2('/arm')).status, 204);
      const post = await h2('/echo', { method: 'POST', body: 'hi', headers: { 'content-length': 2, accept: 'application/json' } });
      assert.equal(post.status, 502, 'a POST is not sent twice');
    });

    it('sends an HTTP/2 user to HTTP/1.1 for NTLM or Negotiate, and never reuses that app connection', async () => {
      const challenged = await h2('/windows-auth');
      assert.equal(challenged.rstCode, http2.constants.NGHTTP2_HTTP_1_1_REQUIRED, 'RST_STREAM HTTP_1_1_REQUIRED, as IIS sends');
      assert.equal(challenged.status, 0, 'no 401 over HTTP/2');
      const challengedOn = scripted.seen.at(-1)!.connection;
      assert.notEqual(echoed(await h2('/echo')).connection, challengedOn);
    });

    it('curl retries such a request over HTTP/1.1 and gets the challenge there', { skip: hasCurl() ? false : 'curl is not installed' }, async () => {
      const port = stack.relay.ports.user;
      const { stdout } = await execFileAsync('curl', ['--http2', '-s', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', '--cacert', stack.relay.caFile, '--resolve', `app.localhost:${port}:127.0.0.1`, `https://app.localhost:${port}/windows-auth`]);
      assert.equal(stdout, '1.1 401');
    });
  });
});
