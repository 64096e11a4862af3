// NTLMv2 against the test vectors of MS-NLMP 4.2.4 (user "User", domain "Domain", password
// "Password", server challenge 0123456789abcdef, client challenge aa…aa, time 0), and the strict
// reading of CHALLENGE messages.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  authenticateMessage, fileTime, negotiateMessage, NTLM_FLAGS, ntHash, ntlmIdentity, ntlmV2Responses, ntowfv2, parseChallengeMessage,
  NtlmMessageError, type NtlmChallenge,
} from './ntlm.js';

const hex = (value: string) => Buffer.from(value.replace(/\s/g, ''), 'hex');
const identity = { user: 'User', domain: 'Domain', password: 'Password' };
/** MS-NLMP 4.2.4.3: MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server", MsvAvEOL. */
const TARGET_INFO = hex('02000c0044006f006d00610069006e00 01000c00530065007200760065007200 00000000');

/** A CHALLENGE message as a proxy sends it: header, target name, TargetInfo. */
function challengeMessage(options: { flags?: number; targetInfo?: Buffer; challenge?: Buffer } = {}): Buffer {
  const targetName = Buffer.from('Domain', 'utf16le');
  const targetInfo = options.targetInfo ?? TARGET_INFO;
  const header = Buffer.alloc(56);
  Buffer.from('NTLMSSP\0', 'latin1').copy(header, 0);
  header.writeUInt32LE(2, 8);
  header.writeUInt16LE(targetName.length, 12);
  header.writeUInt16LE(targetName.length, 14);
  header.writeUInt32LE(56, 16);
  header.writeUInt32LE(options.flags ?? (NTLM_FLAGS.UNICODE | NTLM_FLAGS.NTLM | NTLM_FLAGS.TARGET_INFO | NTLM_FLAGS.EXTENDED_SESSION_SECURITY), 20);
  (options.challenge ?? hex('0123456789abcdef')).copy(header, 24);
  header.writeUInt16LE(targetInfo.length, 40);
  header.writeUInt16LE(targetInfo.length, 42);
  header.writeUInt32LE(56 + targetName.length, 44);
  return Buffer.concat([header, targetName, targetInfo]);
}

/** The payload field of a message at `at` (length, allocated, offset). */
const field = (message: Buffer, at: number) => message.subarray(message.readUInt32LE(at + 4), message.readUInt32LE(at + 4) + message.readUInt16LE(at));

describe('NTLMv2 (MS-NLMP 4.2.4 test vectors)', () => {
  it('computes the NT hash, NTOWFv2, the LMv2 and NTLMv2 responses and the session base key', () => {
    assert.equal(ntHash('Password').toString('hex'), 'a4f49c406510bdcab6824ee7c30fd852');
    assert.equal(ntowfv2(identity).toString('hex'), '0c868a403bfd7a93a3001ef22ef02e3f');
    const challenge = parseChallengeMessage(challengeMessage());
    const responses = ntlmV2Responses(identity, challenge, hex('aaaaaaaaaaaaaaaa'), Buffer.alloc(8));
    assert.equal(responses.lmChallengeResponse.toString('hex'), '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa');
    assert.equal(responses.ntChallengeResponse.toString('hex'),
      '68cd0ab851e51c96aabc927bebef6a1c' + '01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000' + TARGET_INFO.toString('hex') + '00000000');
    assert.equal(responses.sessionBaseKey.toString('hex'), '8de40ccadbc14a82f15cb0ad0de95ca3');
  });

  it('writes an AUTHENTICATE message whose fields point at the responses, domain and user', () => {
    const challenge = parseChallengeMessage(challengeMessage());
    const message = authenticateMessage(identity, challenge, Date.UTC(2026, 10, 29));
    assert.equal(message.subarray(0, 12).toString('latin1'), 'NTLMSSP\0\x03\0\0\0');
    const nt = field(message, 20);
    assert.equal(nt.length, 16 + 28 + TARGET_INFO.length + 4);
    assert.deepEqual(nt.subarray(16 + 8, 16 + 16), fileTime(Date.UTC(2026, 10, 29)), 'the blob carries the current time');
    assert.equal(field(message, 28).toString('utf16le'), 'Domain');
    assert.equal(field(message, 36).toString('utf16le'), 'User');
    assert.equal(field(message, 44).length, 0, 'no workstation name');
    assert.equal(message.readUInt32LE(60) & NTLM_FLAGS.UNICODE, NTLM_FLAGS.UNICODE);
    // The client challenge is random: two messages differ, and each one's NTProofStr verifies.
    const again = authenticateMessage(identity, challenge, Date.UTC(2026, 10, 29));
    assert.notDeepEqual(field(again, 20), nt);
    const clientChallenge = nt.subarray(16 + 16, 16 + 24);
    const expected = ntlmV2Responses(identity, challenge, Buffer.from(clientChallenge), fileTime(Date.UTC(2026, 10, 29)));
    assert.deepEqual(nt, expected.ntChallengeResponse);
  });

  it('uses the server\'s MsvAvTimestamp and then sends an all-zero LMv2 response', () => {
    const stamp = hex('0090d336b734c301');
    const targetInfo = Buffer.concat([hex('07000800'), stamp, TARGET_INFO]);
    const challenge = parseChallengeMessage(challengeMessage({ targetInfo }));
    assert.deepEqual(challenge.timestamp, stamp);
    const message = authenticateMessage(identity, challenge);
    assert.deepEqual(field(message, 12), Buffer.alloc(24));
    assert.deepEqual(field(message, 20).subarray(24, 32), stamp);
  });

  it('speaks OEM strings to a server that did not offer Unicode', () => {
    const challenge = parseChallengeMessage(challengeMessage({ flags: NTLM_FLAGS.OEM | NTLM_FLAGS.NTLM | NTLM_FLAGS.TARGET_INFO }));
    const message = authenticateMessage(identity, challenge);
    assert.equal(field(message, 36).toString('latin1'), 'User');
    assert.equal(message.readUInt32LE(60) & (NTLM_FLAGS.UNICODE | NTLM_FLAGS.OEM), NTLM_FLAGS.OEM);
  });
});

describe('NTLM messages', () => {
  it('sends a 32-byte NEGOTIATE with no domain or workstation', () => {
    const message = negotiateMessage();
    assert.equal(message.length, 32);
    assert.equal(message.readUInt32LE(8), 1);
    assert.deepEqual(message.subarray(16), Buffer.alloc(16));
  });

  it('reads DOMAIN\\user; other names are the user as written', () => {
    assert.deepEqual(ntlmIdentity('CORP\\svc-ferry', 'p'), { domain: 'CORP', user: 'svc-ferry', password: 'p' });
    assert.deepEqual(ntlmIdentity('svc-ferry@corp.example', 'p'), { domain: '', user: 'svc-ferry@corp.example', password: 'p' });
  });

  it('refuses malformed CHALLENGE messages instead of reading past them', () => {
    const good = challengeMessage();
    const cases: Array<[string, Buffer]> = [
      ['short', good.subarray(0, 20)],
      ['signature', Buffer.concat([Buffer.from('NTLMSSX\0'), good.subarray(8)])],
      ['type 3', (() => { const m = Buffer.from(good); m.writeUInt32LE(3, 8); return m; })()],
      ['TargetInfo past the end', (() => { const m = Buffer.from(good); m.writeUInt32LE(good.length - 4, 44); return m; })()],
      ['TargetInfo fields missing', challengeMessage().subarray(0, 40)],
      ['AV pair past the field', challengeMessage({ targetInfo: hex('0200ff00 4400') })],
      ['no MsvAvEOL', challengeMessage({ targetInfo: hex('02000200 4400') })],
    ];
    for (const [name, message] of cases) {
      assert.throws(() => parseChallengeMessage(message), NtlmMessageError, name);
    }
    // Random bytes behind a valid signature and type: a challenge or NtlmMessageError, nothing else.
    let seed = 11;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 5000; i++) {
      const message = Buffer.from(good.subarray(0, random(good.length + 24)));
      for (let flips = random(6); flips > 0; flips--) if (message.length > 12) message[12 + random(message.length - 12)] = random(256);
      try {
        const challenge = parseChallengeMessage(message);
        authenticateMessage(identity, challenge);
      } catch (error) {
        assert.ok(error instanceof NtlmMessageError, `${(error as Error).name}: ${(error as Error).message} for ${message.toString('hex')}`);
      }
    }
    const parsed: NtlmChallenge = parseChallengeMessage(good);
    assert.equal(parsed.serverChallenge.toString('hex'), '0123456789abcdef');
  });
});
