import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareVersions, generateReleaseKeyPair, isReleaseVersion, publicKeyId, releaseSigningMessage, signRelease, verifyRelease } from './release-signing.js';

const meta = { version: '1.2.3', channel: 'stable', sha256: 'ab'.repeat(32), size: 1234 };

test('a signature verifies with the publisher key and names it', () => {
  const pair = generateReleaseKeyPair();
  const { signature, keyId } = signRelease(meta, pair.privateKeyPem);
  assert.equal(keyId, publicKeyId(pair.publicKeyPem));
  assert.equal(verifyRelease(meta, signature, [pair.publicKeyPem]), keyId);
  // Any pinned key may match, in any order.
  assert.equal(verifyRelease(meta, signature, [generateReleaseKeyPair().publicKeyPem, pair.publicKeyPem]), keyId);
});

test('the signature binds bytes, size, version and channel', () => {
  const pair = generateReleaseKeyPair();
  const { signature } = signRelease(meta, pair.privateKeyPem);
  for (const changed of [{ sha256: 'cd'.repeat(32) }, { size: 1235 }, { version: '1.2.4' }, { channel: 'beta' }]) {
    assert.equal(verifyRelease({ ...meta, ...changed }, signature, [pair.publicKeyPem]), undefined, JSON.stringify(changed));
  }
});

test('unsigned, malformed or foreign signatures are refused', () => {
  const pair = generateReleaseKeyPair();
  const foreign = signRelease(meta, generateReleaseKeyPair().privateKeyPem).signature;
  assert.equal(verifyRelease(meta, '', [pair.publicKeyPem]), undefined);
  assert.equal(verifyRelease(meta, 'bm90IGEgc2lnbmF0dXJl', [pair.publicKeyPem]), undefined);
  assert.equal(verifyRelease(meta, foreign, [pair.publicKeyPem]), undefined);
  assert.equal(verifyRelease(meta, foreign, []), undefined);
});

test('the signed message is the documented text', () => {
  assert.equal(releaseSigningMessage(meta).toString(), `ferry-release-v1\nversion=1.2.3\nchannel=stable\nsize=1234\nsha256=${'ab'.repeat(32)}\n`);
});

test('release versions follow semantic-version order', () => {
  assert.ok(isReleaseVersion('1.0.0') && isReleaseVersion('2.0.0-rc.1'));
  assert.ok(!isReleaseVersion('v1.0.0') && !isReleaseVersion('1.0') && !isReleaseVersion('1.0.0+build'));
  const sorted = ['1.10.0', '1.2.0', '1.2.0-rc.2', '1.2.0-rc.10', '1.2.0-beta', '0.9.9', '1.2.0-rc'].sort(compareVersions);
  assert.deepEqual(sorted, ['0.9.9', '1.2.0-beta', '1.2.0-rc', '1.2.0-rc.2', '1.2.0-rc.10', '1.2.0', '1.10.0']);
  assert.equal(compareVersions('1.0.0', '1.0.0'), 0);
  assert.throws(() => compareVersions('1.0', '1.0.0'), TypeError);
});
