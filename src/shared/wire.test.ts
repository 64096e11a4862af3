import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { endToEndHeaders, isConnectionAuth, switchingProtocolsHead } from './wire.js';

describe('endToEndHeaders', () => {
  it('drops hop-by-hop headers, pseudo-headers, Ferry headers and those Connection names', () => {
    const out = endToEndHeaders({
      ':path': '/x', ':method': 'GET', host: 'app', connection: 'keep-alive, X-Secret-Hop', 'keep-alive': 'timeout=5',
      'x-secret-hop': 'drop me', 'transfer-encoding': 'chunked', te: 'trailers', 'ferry-internal-url': 'http://10.0.0.1/',
      'Content-Type': 'text/plain', 'set-cookie': ['a=1', 'b=2'], 'x-empty': undefined,
    });
    assert.deepEqual(out, { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] });
  });

  it('reads Connection given as several header lines', () => {
    assert.deepEqual(endToEndHeaders({ connection: ['close', 'x-a'], 'x-a': '1', 'x-b': '2' }), { 'x-b': '2' });
  });

  it('keeps everything end to end when there is no Connection header', () => {
    assert.deepEqual(endToEndHeaders({ accept: '*/*', 'x-forwarded-for': '10.1.1.1' }), { accept: '*/*', 'x-forwarded-for': '10.1.1.1' });
  });
});

describe('switchingProtocolsHead', () => {
  it('writes the 101 head with the app\'s end-to-end headers, one line per value', () => {
    const head = switchingProtocolsHead({ connection: 'upgrade', upgrade: 'websocket', 'sec-websocket-accept': 'abc', 'set-cookie': ['a=1', 'b=2'] });
    assert.equal(head, 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: abc\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n\r\n');
  });
});

describe('isConnectionAuth', () => {
  it('finds NTLM or Negotiate in a credential, a challenge or a joined list of challenges', () => {
    for (const value of ['NTLM', 'NTLM TlRMTVNTUAABAAAA', 'negotiate YIIGhgYGKwYBBQUCoII=', 'Negotiate, NTLM', 'Basic realm="x", NTLM', 'Bearer,negotiate']) {
      assert.equal(isConnectionAuth(value), true, value);
    }
    for (const value of ['Basic realm="x"', 'Bearer abc', 'NTLMv2-ish', 'Digest realm="ntlm.example"', '']) {
      assert.equal(isConnectionAuth(value), false, value);
    }
    assert.equal(isConnectionAuth(['Basic realm="x"', 'NTLM']), true, 'one of several field lines');
    assert.equal(isConnectionAuth(['Basic realm="x"']), false);
    assert.equal(isConnectionAuth(undefined), false);
  });
});
