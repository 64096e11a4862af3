// Registration tokens: what `ferry relay token create` prints and `ferry connector register --token`
// reads. A token carries where to register (the relay's registration base URL), which CA to trust (its
// SHA-256 fingerprint, so registration is safe even through a TLS-intercepting proxy) and a one-time
// secret. The relay stores only hashSecret(secret).
//
// Format: "ferry1." + base64url(JSON {u, f, s}). The version prefix lets a later format coexist and makes
// a pasted token recognisable in support tickets; it is not a security boundary.

import { createHash, randomBytes } from 'node:crypto';
import { UsageError } from './errors.js';

export interface TokenPayload {
  /** Registration base URL, e.g. https://localhost:8445 */
  relayUrl: string;
  /** Lowercase hex SHA-256 of the relay CA certificate's DER (pki.fingerprintSha256). */
  caFingerprint: string;
  /** base64url of 32 random bytes (newTokenSecret). */
  secret: string;
}

const PREFIX = 'ferry1.';
const FIX = 'copy the whole token printed by `ferry relay token create` (it starts with "ferry1."), or create a new one';

interface CompactPayload {
  u: string;
  f: string;
  s: string;
}

export function encodeToken(payload: TokenPayload): string {
  const compact: CompactPayload = { u: payload.relayUrl, f: payload.caFingerprint, s: payload.secret };
  return PREFIX + Buffer.from(JSON.stringify(compact), 'utf8').toString('base64url');
}

/** Parses and validates a token; throws UsageError (exit code 2) on anything malformed. */
export function decodeToken(token: string): TokenPayload {
  const trimmed = token.trim();
  if (!trimmed.startsWith(PREFIX)) {
    throw new UsageError('the registration token is not a Ferry token (it should start with "ferry1.")', FIX);
  }
  const body = trimmed.slice(PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) {
    throw new UsageError('the registration token is damaged (it contains characters a token never has)', FIX);
  }
  let compact: unknown;
  try {
    compact = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw new UsageError('the registration token is damaged (it does not decode); it may have been cut short', FIX);
  }
  if (typeof compact !== 'object' || compact === null) {
    throw new UsageError('the registration token is damaged (unexpected content)', FIX);
  }
  const { u, f, s } = compact as Partial<Record<keyof CompactPayload, unknown>>;
  if (typeof u !== 'string' || !isHttpsUrl(u)) {
    throw new UsageError('the registration token does not carry a valid https:// relay URL', FIX);
  }
  if (typeof f !== 'string' || !/^[0-9a-f]{64}$/.test(f)) {
    throw new UsageError('the registration token does not carry a valid CA fingerprint', FIX);
  }
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]{32,}$/.test(s)) {
    throw new UsageError('the registration token does not carry a valid secret', FIX);
  }
  return { relayUrl: u, caFingerprint: f, secret: s };
}

/** 32 random bytes, base64url (43 characters). */
export function newTokenSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Lowercase hex SHA-256 of the secret: what the relay stores and looks up. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

function isHttpsUrl(value: string): boolean {
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
}
