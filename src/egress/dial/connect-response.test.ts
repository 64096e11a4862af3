import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectResponseParser, challengeFor, challengeSchemes, headerValues } from './connect-response.js';

function feed(parser: ConnectResponseParser, ...chunks: string[]) {
  let result = parser.push(Buffer.alloc(0));
  for (const chunk of chunks) result = parser.push(Buffer.from(chunk, 'latin1'));
  return result;
}

test('a 200 head split over many chunks completes, and bytes after it are kept', () => {
  const parser = new ConnectResponseParser();
  const head = 'HTTP/1.1 200 Connection established\r\nVia: 1.1 squid\r\n\r';
  const result = feed(parser, ...head.split(''), '\n\x16\x03\x01extra');
  assert.equal(result.kind, 'complete');
  if (result.kind !== 'complete') return;
  assert.equal(result.head.statusCode, 200);
  assert.equal(result.head.statusText, 'Connection established');
  assert.equal(result.head.httpVersion, '1.1');
  assert.deepEqual(headerValues(result.head, 'VIA'), ['1.1 squid']);
  assert.equal(result.head.rest.toString('latin1'), '\x16\x03\x01extra');
});

test('rest holds every byte after the blank line when they arrive in the same chunk', () => {
  const parser = new ConnectResponseParser();
  const result = parser.push(Buffer.from('HTTP/1.0 200 OK\r\n\r\nABC'));
  assert.equal(result.kind, 'complete');
  if (result.kind === 'complete') assert.equal(result.head.rest.toString(), 'ABC');
});

test('incomplete until the blank line arrives', () => {
  const parser = new ConnectResponseParser();
  assert.equal(parser.push(Buffer.from('HTTP/1.1 407 Proxy Authentication Required\r\n')).kind, 'incomplete');
  const result = parser.push(Buffer.from('Proxy-Authenticate: Basic realm="corp"\r\n\r\n'));
  assert.equal(result.kind, 'complete');
  if (result.kind === 'complete') assert.equal(result.head.statusCode, 407);
});

test('an oversized head is invalid, not buffered forever', () => {
  const parser = new ConnectResponseParser(64);
  const result = feed(parser, 'HTTP/1.1 200 OK\r\n', `X-Big: ${'a'.repeat(100)}\r\n`);
  assert.equal(result.kind, 'invalid');
});

test('a non-HTTP answer is invalid as soon as the first bytes show it', () => {
  const parser = new ConnectResponseParser();
  const result = parser.push(Buffer.from('SSH-2.0-OpenSSH\r\n'));
  assert.equal(result.kind, 'invalid');
});

test('malformed status lines, folded headers and bad names are invalid', () => {
  for (const text of [
    'HTTP/1.1 20 OK\r\n\r\n',
    'HTTP/2 200 OK\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: a\r\n  folded\r\n\r\n',
    'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n',
    'HTTP/1.1 200 OK\r\nnocolon\r\n\r\n',
  ]) {
    assert.equal(new ConnectResponseParser().push(Buffer.from(text)).kind, 'invalid', text);
  }
});

test('a status line without a reason phrase is accepted', () => {
  const result = new ConnectResponseParser().push(Buffer.from('HTTP/1.1 502\r\n\r\n'));
  assert.equal(result.kind, 'complete');
  if (result.kind === 'complete') assert.equal(result.head.statusText, '');
});

test('challengeSchemes reads several headers and comma-joined challenges', () => {
  assert.deepEqual(challengeSchemes(['Basic realm="corp, proxy"']), ['Basic']);
  assert.deepEqual(challengeSchemes(['Negotiate', 'NTLM', 'basic realm="x"']), ['Negotiate', 'NTLM', 'Basic']);
  assert.deepEqual(challengeSchemes(['Digest realm="x", qop="auth", nonce="n", Basic realm="x"']), ['Digest', 'Basic']);
  assert.deepEqual(challengeSchemes([]), []);
});

test('challengeFor returns the token following a scheme', () => {
  assert.equal(challengeFor(['NTLM TlRMTVNTUAACAAAA'], 'ntlm'), 'TlRMTVNTUAACAAAA');
  assert.equal(challengeFor(['Basic realm="x"'], 'NTLM'), undefined);
});
