// Windows authentication (NTLM, Negotiate) through Ferry to an https app, which goes through Node's
// HTTP server and the egress agents on the connector (not the head splice). The app authenticates
// the connection, as IIS does: the handshake's legs must reach it on one app connection, and no
// other user's request may ever be answered on a connection a user authenticated.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FerryStack, rawExchange } from '../harness/ferry-stack.js';
import { createTestCa } from '../harness/tls-server.js';

/** An IIS-like app: NTLM in two legs (negotiate → challenge, then authenticate) on one connection. */
async function startWindowsApp(): Promise<{ server: https.Server; port: number; caPem: string }> {
  const ca = await createTestCa('Windows app test CA');
  const leaf = await ca.issue({ commonName: '127.0.0.1', ips: ['127.0.0.1'] });
  const challenged = new WeakSet<Socket>();
  const users = new WeakMap<Socket, string>();
  const server = https.createServer({ cert: leaf.certPem + ca.certPem, key: leaf.keyPem }, (req, res) => {
    const socket = req.socket;
    const credentials = req.headers.authorization ?? '';
    if (credentials === 'NTLM negotiate') {
      challenged.add(socket);
      res.writeHead(401, { 'www-authenticate': 'NTLM challenge' });
      return res.end('challenge');
    }
    const authenticate = /^NTLM authenticate-(\w+)$/.exec(credentials);
    if (authenticate) {
      if (!challenged.has(socket)) {
        res.writeHead(401, { 'www-authenticate': 'NTLM' });
        return res.end('handshake broken: not the challenged connection');
      }
      users.set(socket, authenticate[1]);
    }
    const user = users.get(socket);
    if (!user) {
      res.writeHead(401, { 'www-authenticate': 'NTLM' });
      return res.end('who are you?');
    }
    res.end(`hello ${user}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, caPem: ca.certPem };
}

/** Status and body of each response in a raw HTTP/1.1 byte stream (Content-Length or chunked bodies). */
function answers(raw: string): { status: number; body: string }[] {
  const found: { status: number; body: string }[] = [];
  let rest = raw;
  while (rest.startsWith('HTTP/1.1 ')) {
    const headEnd = rest.indexOf('\r\n\r\n');
    const head = rest.slice(0, headEnd);
    rest = rest.slice(headEnd + 4);
    let body = '';
    if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      for (;;) {
        const lineEnd = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, lineEnd), 16);
        rest = rest.slice(lineEnd + 2);
        if (size === 0) {
          rest = rest.slice(rest.indexOf('\r\n') + 2);
          break;
        }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    } else {
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      body = rest.slice(0, length);
      rest = rest.slice(length);
    }
    found.push({ status: Number(head.slice(9, 12)), body });
  }
  return found;
}

describe('Windows authentication to an https app (HTTP/1.1 users)', () => {
  const stack = new FerryStack();
  let app: Awaited<ReturnType<typeof startWindowsApp>>;
  let host: string;
  const get = (extra = '') => `GET / HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
  const send = (raw: string) => rawExchange(stack.relay.ports.user, raw, { ca: readFileSync(stack.relay.caFile), servername: 'app.localhost' });

  before(async () => {
    app = await startWindowsApp();
    await stack.startRelay();
    host = `app.localhost:${stack.relay.ports.user}`;
    const added = await stack.relay.cli(['relay', 'app', 'add', 'win', '--external', `https://${host}`, '--internal', `https://127.0.0.1:${app.port}`]);
    assert.equal(added.code, 0, added.stderr);
    const registered = await stack.registerConnector({ name: 'c1' });
    assert.equal(registered.run.code, 0, registered.run.stderr);
    // The connector trusts the app's certificate through the system store's extra CAs.
    const caFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'ferry-win-')), 'app-ca.pem');
    writeFileSync(caFile, app.caPem);
    stack.startConnector(registered.configFile, { NODE_EXTRA_CA_CERTS: caFile });
    await stack.waitForTunnels(2);
  });

  after(async () => {
    await stack.stop();
    app.server.closeAllConnections();
    await new Promise((resolve) => app.server.close(resolve));
  });

  it('carries the two-leg handshake on one app connection and keeps it for that user connection', async () => {
    const raw = await send(get() + get('Authorization: NTLM negotiate\r\n') + get('Authorization: NTLM authenticate-alice\r\n') + get('Connection: close\r\n'));
    assert.deepEqual(answers(raw), [
      { status: 401, body: 'who are you?' },
      { status: 401, body: 'challenge' },
      { status: 200, body: 'hello alice' },
      { status: 200, body: 'hello alice' },
    ], raw);
  });

  it('never answers another user connection on an app connection a user authenticated', async () => {
    const alice = await send(get('Authorization: NTLM negotiate\r\n') + get('Authorization: NTLM authenticate-alice\r\nConnection: close\r\n'));
    assert.equal(answers(alice).at(-1)?.body, 'hello alice', alice);
    // Several fresh user connections, so any app connection left in a pool would be taken.
    for (let i = 0; i < 3; i++) {
      const other = answers(await send(get('Connection: close\r\n')));
      assert.deepEqual(other, [{ status: 401, body: 'who are you?' }]);
    }
  });
});
