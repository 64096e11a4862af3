// The CONNECT exchange against scripted proxies on loopback: bytes after the 200 head are kept,
// a multi-leg scheme runs its legs on one connection, garbage and silence are classified.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createDialer, fixedRoutes, type ProxyAuthenticator } from './index.js';
import { DialError } from '../../shared/errors.js';

const servers: net.Server[] = [];
after(() => {
  for (const server of servers) server.close();
});

/** A proxy that answers each CONNECT head it receives with the next scripted answer. */
async function scriptedProxy(answers: Array<string | null>, seen: string[] = []): Promise<number> {
  const server = net.createServer((socket) => {
    let buffered = '';
    let index = 0;
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      while (buffered.includes('\r\n\r\n')) {
        const end = buffered.indexOf('\r\n\r\n');
        seen.push(buffered.slice(0, end));
        buffered = buffered.slice(end + 4);
        const answer = answers[index++];
        if (answer === null || answer === undefined) continue; // stay silent
        socket.write(answer);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

const route = (port: number) => fixedRoutes([{ kind: 'PROXY', host: '127.0.0.1', port }]);

test('bytes the proxy sent right after the 200 head reach the caller first', async () => {
  const port = await scriptedProxy(['HTTP/1.1 200 Connection established\r\n\r\nEARLY-BYTES']);
  const { socket } = await createDialer({ resolver: route(port) }).dial({ host: 'relay.ferry.test', port: 443, caller: 'connector' });
  const first = await new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString())));
  assert.equal(first, 'EARLY-BYTES');
  socket.destroy();
});

test('the CONNECT request names the target in authority form with a Host header', async () => {
  const seen: string[] = [];
  const port = await scriptedProxy(['HTTP/1.1 200 OK\r\n\r\n'], seen);
  const { socket } = await createDialer({ resolver: route(port) }).dial({ host: '2001:db8::1', port: 8443, caller: 'connector' });
  socket.destroy();
  assert.match(seen[0] ?? '', /^CONNECT \[2001:db8::1\]:8443 HTTP\/1\.1\r\nHost: \[2001:db8::1\]:8443\r\n/);
  assert.doesNotMatch(seen[0] ?? '', /Proxy-Authorization/);
});

test('a two-leg scheme runs both legs on the same connection (the NTLM seam)', async () => {
  const seen: string[] = [];
  const port = await scriptedProxy(
    [
      'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM CHALLENGE-2\r\nContent-Length: 5\r\n\r\nabcde',
      'HTTP/1.1 200 Connection established\r\n\r\n',
    ],
    seen,
  );
  const legs: string[][] = [];
  const fakeNtlm: ProxyAuthenticator = {
    scheme: 'NTLM',
    initial: () => undefined,
    respond: (challenges) => {
      legs.push(challenges);
      return legs.length === 1 ? 'NTLM TYPE-1' : 'NTLM TYPE-3';
    },
  };
  const dialer = createDialer({ resolver: route(port), authenticator: () => fakeNtlm });
  const { socket } = await dialer.dial({ host: 'relay.ferry.test', port: 443, caller: 'connector' });
  socket.destroy();
  assert.deepEqual(legs, [['NTLM'], ['NTLM CHALLENGE-2']]);
  assert.equal(seen.length, 3);
  assert.doesNotMatch(seen[0] ?? '', /Proxy-Authorization/);
  assert.match(seen[1] ?? '', /Proxy-Authorization: NTLM TYPE-1/);
  assert.match(seen[2] ?? '', /Proxy-Authorization: NTLM TYPE-3/);
});

test('Basic is sent preemptively and never appears in the error when refused', async () => {
  const seen: string[] = [];
  const port = await scriptedProxy(['HTTP/1.1 407 Nope\r\nProxy-Authenticate: Basic realm="x"\r\nProxy-Authenticate: Negotiate\r\n\r\n'], seen);
  const dialer = createDialer({ resolver: fixedRoutes([{ kind: 'PROXY', host: '127.0.0.1', port, username: 'carol', password: 'hunter2' }]) });
  const error = await dialer.dial({ host: 'relay.ferry.test', port: 443, caller: 'connector' }).catch((e: DialError) => e);
  assert.ok(error instanceof DialError);
  assert.equal(error.errorClass, 'proxy-auth-required');
  assert.deepEqual(error.fields.schemes, ['Basic', 'Negotiate']);
  assert.match(seen[0] ?? '', new RegExp(`Proxy-Authorization: Basic ${Buffer.from('carol:hunter2').toString('base64')}`));
  const text = JSON.stringify({ message: error.message, fields: error.fields });
  assert.ok(!text.includes('hunter2') && !text.includes(Buffer.from('carol:hunter2').toString('base64')));
});

test('NTLM: a proxy that offers only Negotiate, a malformed CHALLENGE, a close mid-handshake: each error says which', async () => {
  const dial = async (answers: Array<string | null>, scheme: 'ntlm' | 'any', close = false) => {
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      let index = 0;
      socket.on('data', (chunk) => {
        if (!chunk.toString('latin1').includes('\r\n\r\n')) return;
        const answer = answers[index++];
        if (answer) socket.write(answer);
        if (close) socket.end();
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const dialer = createDialer({ resolver: route(port), credentials: () => ({ username: 'CORP\\dave', password: 'pw-ntlm', scheme }) });
    const error = await dialer.dial({ host: 'relay.ferry.test', port: 443, caller: 'connector' }).catch((e: DialError) => e);
    assert.ok(error instanceof DialError);
    assert.equal(error.errorClass, 'proxy-auth-required', error.message);
    assert.ok(!error.message.includes('pw-ntlm'));
    return error.message;
  };
  const negotiateOnly = 'HTTP/1.1 407 Auth\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n';
  assert.match(await dial([negotiateOnly], 'any'), /asks for Negotiate .*not NTLM or Basic .*scheme to negotiate, with the service's Kerberos keytab/);
  assert.match(await dial([negotiateOnly], 'ntlm'), /asks for Negotiate .*not NTLM/);
  const badChallenge = `HTTP/1.1 407 Auth\r\nProxy-Authenticate: NTLM ${Buffer.from('NTLMSSP\0short').toString('base64')}\r\nContent-Length: 0\r\n\r\n`;
  assert.match(await dial([badChallenge], 'ntlm'), /sent an NTLM challenge Ferry cannot use .*malformed NTLM challenge/);
  const challenge = Buffer.alloc(32);
  Buffer.from('NTLMSSP\0', 'latin1').copy(challenge);
  challenge.writeUInt32LE(2, 8);
  const closing = `HTTP/1.1 407 Auth\r\nProxy-Authenticate: NTLM ${challenge.toString('base64')}\r\nContent-Length: 0\r\n\r\n`;
  assert.match(await dial([closing.replace('Content-Length: 0', 'Connection: close\r\nContent-Length: 0')], 'ntlm', true), /closed the connection after its 407 during the NTLM handshake/);
  // AUTHENTICATE sent, and the proxy still says 407 with a bare NTLM: the credentials were refused.
  assert.match(await dial([closing, 'HTTP/1.1 407 Auth\r\nProxy-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n'], 'ntlm'), /refused the configured NTLM credentials/);
});

test('a non-HTTP answer is proxy-refused and the proxy is skipped; silence is connect-timeout', async () => {
  const garbage = await scriptedProxy(['SSH-2.0-OpenSSH_9\r\n\r\n']);
  const dialer = createDialer({ resolver: route(garbage) });
  const error = await dialer.dial({ host: 'relay.ferry.test', port: 443, caller: 'connector' }).catch((e: DialError) => e);
  assert.ok(error instanceof DialError);
  assert.equal(error.errorClass, 'proxy-refused');
  assert.match(error.message, /invalid answer/);
  assert.equal(dialer.health.skipped({ kind: 'PROXY', host: '127.0.0.1', port: garbage }), true);

  const silent = await scriptedProxy([null]);
  const quiet = await createDialer({ resolver: route(silent), connectTimeoutMs: 200 })
    .dial({ host: 'relay.ferry.test', port: 443, caller: 'connector' })
    .catch((e: DialError) => e);
  assert.ok(quiet instanceof DialError);
  assert.equal(quiet.errorClass, 'connect-timeout');
  assert.equal(quiet.fields.phase, 'proxy-connect');
});

test('a target host with CR/LF is refused before anything is written to the proxy', async () => {
  const seen: string[] = [];
  const port = await scriptedProxy(['HTTP/1.1 200 OK\r\n\r\n'], seen);
  await assert.rejects(
    createDialer({ resolver: route(port) }).dial({ host: 'relay.ferry.test\r\nX-Evil: 1', port: 443, caller: 'connector' }),
    (error: unknown) => error instanceof TypeError && /invalid target host/.test(error.message),
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(seen, []);
});

test('a dialer without a resolver refuses such a host with a rejection too, never a throw', async () => {
  let promise: Promise<unknown> | undefined;
  assert.doesNotThrow(() => { promise = createDialer().dial({ host: 'app.internal\r\nX-Evil: 1', port: 80, caller: 'backend' }); });
  await assert.rejects(promise!, (error: unknown) => error instanceof TypeError && /invalid target host/.test(error.message));
});
