// NTLM (MS-NLMP) for proxy authentication: the NEGOTIATE message, a strict reading of the proxy's
// CHALLENGE, and the AUTHENTICATE message with an NTLMv2 response. NTLMv2 only: NTLMv1 and LM
// responses are broken and refused by current Windows domains (LmCompatibilityLevel 3 and up).
// Written here rather than taken from npm: the maintained clients draw the client challenge from
// Math.random, build the message in a fixed 1 KiB buffer and read the challenge without bounds.
// MD4 (for the NT hash) comes from js-md4: OpenSSL 3 no longer gives it to Node's crypto.
import { createHmac, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

const md4 = createRequire(import.meta.url)('js-md4') as { arrayBuffer(message: Uint8Array): ArrayBuffer };

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');

/** NegotiateFlags bits (MS-NLMP 2.2.2.5) this client uses. */
export const NTLM_FLAGS = {
  UNICODE: 0x00000001,
  OEM: 0x00000002,
  REQUEST_TARGET: 0x00000004,
  NTLM: 0x00000200,
  ALWAYS_SIGN: 0x00008000,
  EXTENDED_SESSION_SECURITY: 0x00080000,
  TARGET_INFO: 0x00800000,
} as const;

const NEGOTIATE_FLAGS = NTLM_FLAGS.UNICODE | NTLM_FLAGS.OEM | NTLM_FLAGS.REQUEST_TARGET | NTLM_FLAGS.NTLM
  | NTLM_FLAGS.ALWAYS_SIGN | NTLM_FLAGS.EXTENDED_SESSION_SECURITY;

/** AV_PAIR ids (MS-NLMP 2.2.2.1) the client reads. */
const MSV_AV_EOL = 0;
const MSV_AV_TIMESTAMP = 7;

/** Difference between the Windows FILETIME epoch (1601) and the Unix epoch, in milliseconds. */
const FILETIME_EPOCH_OFFSET_MS = 11_644_473_600_000n;

/** A CHALLENGE message that is not one: the proxy is broken, or not speaking NTLM. */
export class NtlmMessageError extends Error {
  constructor(message: string) {
    super(`malformed NTLM challenge from the proxy: ${message}`);
    this.name = 'NtlmMessageError';
  }
}

export interface NtlmChallenge {
  flags: number;
  serverChallenge: Buffer;
  /** The TargetInfo AV pairs as sent (they go back inside the NTLMv2 response). */
  targetInfo: Buffer;
  /** MsvAvTimestamp from TargetInfo, when the server sent one (8 bytes, FILETIME). */
  timestamp?: Buffer;
}

export interface NtlmIdentity {
  user: string;
  /** The NetBIOS or DNS domain; '' when the user name carries none. */
  domain: string;
  password: string;
}

/**
 * "DOMAIN\user" gives the domain and the user; anything else ("user", "user@corp.example") is the
 * user as written with no domain (a UPN carries its own realm).
 */
export function ntlmIdentity(username: string, password: string): NtlmIdentity {
  const slash = username.indexOf('\\');
  return slash > 0 ? { domain: username.slice(0, slash), user: username.slice(slash + 1), password } : { domain: '', user: username, password };
}

/** The NEGOTIATE message (type 1): flags only, no domain or workstation (nothing to disclose). */
export function negotiateMessage(): Buffer {
  const message = Buffer.alloc(32);
  SIGNATURE.copy(message, 0);
  message.writeUInt32LE(1, 8);
  message.writeUInt32LE(NEGOTIATE_FLAGS, 12);
  return message;
}

/** Reads a CHALLENGE message (type 2); every offset is checked against the message. */
export function parseChallengeMessage(message: Buffer): NtlmChallenge {
  if (message.length < 32) throw new NtlmMessageError(`${message.length} bytes, at least 32 expected`);
  if (!message.subarray(0, 8).equals(SIGNATURE)) throw new NtlmMessageError('no NTLMSSP signature');
  const type = message.readUInt32LE(8);
  if (type !== 2) throw new NtlmMessageError(`message type ${type}, 2 expected`);
  const flags = message.readUInt32LE(20);
  const serverChallenge = Buffer.from(message.subarray(24, 32));
  let targetInfo: Buffer = Buffer.alloc(0);
  if (flags & NTLM_FLAGS.TARGET_INFO) {
    if (message.length < 48) throw new NtlmMessageError('TargetInfo announced but its fields are missing');
    targetInfo = Buffer.from(payload(message, 40, 'TargetInfo'));
  }
  return { flags, serverChallenge, targetInfo, ...timestampOf(targetInfo) };
}

/** A payload field (length, allocated length, offset) of `message`, checked. */
function payload(message: Buffer, at: number, name: string): Buffer {
  const length = message.readUInt16LE(at);
  const offset = message.readUInt32LE(at + 4);
  if (length === 0) return Buffer.alloc(0);
  if (offset + length > message.length) throw new NtlmMessageError(`${name} (${length} bytes at ${offset}) runs past the message (${message.length} bytes)`);
  return message.subarray(offset, offset + length);
}

/** Walks the AV pairs (they must end with MsvAvEOL inside the field) and finds MsvAvTimestamp. */
function timestampOf(targetInfo: Buffer): { timestamp?: Buffer } {
  if (targetInfo.length === 0) return {};
  let timestamp: Buffer | undefined;
  for (let at = 0; ;) {
    if (at + 4 > targetInfo.length) throw new NtlmMessageError('TargetInfo does not end with MsvAvEOL');
    const id = targetInfo.readUInt16LE(at);
    const length = targetInfo.readUInt16LE(at + 2);
    if (at + 4 + length > targetInfo.length) throw new NtlmMessageError(`TargetInfo pair ${id} runs past the field`);
    if (id === MSV_AV_EOL) break;
    if (id === MSV_AV_TIMESTAMP && length === 8) timestamp = Buffer.from(targetInfo.subarray(at + 4, at + 12));
    at += 4 + length;
  }
  return timestamp ? { timestamp } : {};
}

/** The NT hash: MD4 of the UTF-16LE password (MS-NLMP 3.3.1). */
export function ntHash(password: string): Buffer {
  return Buffer.from(md4.arrayBuffer(Buffer.from(password, 'utf16le')));
}

/** NTOWFv2 (MS-NLMP 3.3.2): HMAC-MD5 keyed with the NT hash over UPPER(user) + domain, UTF-16LE. */
export function ntowfv2(identity: NtlmIdentity): Buffer {
  return hmacMd5(ntHash(identity.password), Buffer.from(identity.user.toUpperCase() + identity.domain, 'utf16le'));
}

export interface NtlmV2Responses {
  lmChallengeResponse: Buffer;
  ntChallengeResponse: Buffer;
  sessionBaseKey: Buffer;
}

/**
 * The NTLMv2 responses (MS-NLMP 3.3.2). `time` is the FILETIME to put in the blob: the server's
 * MsvAvTimestamp when it sent one (the LMv2 response is then all zeros, 3.1.5.1.2), else now.
 */
export function ntlmV2Responses(identity: NtlmIdentity, challenge: NtlmChallenge, clientChallenge: Buffer, time: Buffer): NtlmV2Responses {
  const key = ntowfv2(identity);
  const temp = Buffer.concat([
    Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]), time, clientChallenge, Buffer.alloc(4), challenge.targetInfo, Buffer.alloc(4),
  ]);
  const ntProof = hmacMd5(key, Buffer.concat([challenge.serverChallenge, temp]));
  const lmChallengeResponse = challenge.timestamp
    ? Buffer.alloc(24)
    : Buffer.concat([hmacMd5(key, Buffer.concat([challenge.serverChallenge, clientChallenge])), clientChallenge]);
  return { lmChallengeResponse, ntChallengeResponse: Buffer.concat([ntProof, temp]), sessionBaseKey: hmacMd5(key, ntProof) };
}

/** The AUTHENTICATE message (type 3) answering `challenge`, with a fresh random client challenge. */
export function authenticateMessage(identity: NtlmIdentity, challenge: NtlmChallenge, now = Date.now()): Buffer {
  const time = challenge.timestamp ?? fileTime(now);
  const { lmChallengeResponse, ntChallengeResponse } = ntlmV2Responses(identity, challenge, randomBytes(8), time);
  const unicode = (challenge.flags & NTLM_FLAGS.UNICODE) !== 0;
  const text = (value: string) => Buffer.from(value, unicode ? 'utf16le' : 'latin1');
  const flags = (unicode ? NTLM_FLAGS.UNICODE : NTLM_FLAGS.OEM) | NTLM_FLAGS.REQUEST_TARGET | NTLM_FLAGS.NTLM | NTLM_FLAGS.ALWAYS_SIGN
    | (challenge.flags & (NTLM_FLAGS.EXTENDED_SESSION_SECURITY | NTLM_FLAGS.TARGET_INFO));
  // Payload order as Windows writes it; no workstation name and no session key (HTTP needs neither).
  const fields = [lmChallengeResponse, ntChallengeResponse, text(identity.domain), text(identity.user), Buffer.alloc(0), Buffer.alloc(0)];
  const header = Buffer.alloc(64);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(3, 8);
  let offset = header.length;
  fields.forEach((field, index) => {
    const at = 12 + index * 8;
    header.writeUInt16LE(field.length, at);
    header.writeUInt16LE(field.length, at + 2);
    header.writeUInt32LE(offset, at + 4);
    offset += field.length;
  });
  header.writeUInt32LE(flags >>> 0, 60);
  return Buffer.concat([header, ...fields]);
}

/** Milliseconds since 1970 as a Windows FILETIME (100 ns units since 1601), little-endian. */
export function fileTime(unixMs: number): Buffer {
  const time = Buffer.alloc(8);
  time.writeBigUInt64LE((BigInt(Math.floor(unixMs)) + FILETIME_EPOCH_OFFSET_MS) * 10_000n);
  return time;
}

function hmacMd5(key: Buffer, data: Buffer): Buffer {
  return createHmac('md5', key).update(data).digest();
}
