import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeToken, encodeToken, hashSecret, newTokenSecret, type TokenPayload } from './token.js';
import { UsageError } from './errors.js';

const payload: TokenPayload = {
  relayUrl: 'https://localhost:8445',
  caFingerprint: 'a'.repeat(64),
  secret: newTokenSecret(),
};

function rejectsWithUsage(token: string, pattern: RegExp): void {
  assert.throws(
    () => decodeToken(token),
    (error: unknown) => {
      assert.ok(error instanceof UsageError, `expected UsageError, got ${String(error)}`);
      assert.equal(error.code, 'ERR_USAGE');
      assert.match(error.message, pattern);
      assert.match(error.fix ?? '', /ferry relay token create/);
      return true;
    },
  );
}

describe('registration tokens', () => {
  it('round-trips and is URL/shell safe', () => {
    const token = encodeToken(payload);
    assert.match(token, /^ferry1\.[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeToken(token), payload);
    assert.deepEqual(decodeToken(`  ${token}\n`), payload);
  });

  it('makes 32-byte random secrets', () => {
    const a = newTokenSecret();
    assert.equal(Buffer.from(a, 'base64url').length, 32);
    assert.notEqual(a, newTokenSecret());
  });

  it('hashes secrets to sha256 hex', () => {
    assert.equal(hashSecret('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('refuses garbage with a UsageError and a fix', () => {
    rejectsWithUsage('', /not a Ferry token/);
    rejectsWithUsage('hello', /not a Ferry token/);
    rejectsWithUsage('ferry1.!!!', /damaged/);
    rejectsWithUsage('ferry1.' + Buffer.from('{"u":').toString('base64url'), /damaged/);
    rejectsWithUsage('ferry1.' + Buffer.from('42').toString('base64url'), /damaged/);
    const token = encodeToken(payload);
    rejectsWithUsage(token.slice(0, token.length - 10), /damaged/);
  });

  it('refuses tokens with bad fields', () => {
    rejectsWithUsage(encodeToken({ ...payload, relayUrl: 'http://localhost:8445' }), /relay URL/);
    rejectsWithUsage(encodeToken({ ...payload, relayUrl: 'not a url' }), /relay URL/);
    rejectsWithUsage(encodeToken({ ...payload, caFingerprint: 'AB:CD' }), /fingerprint/);
    rejectsWithUsage(encodeToken({ ...payload, secret: 'short' }), /secret/);
  });
});
