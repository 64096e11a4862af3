// Connector releases: what a publisher signs and how a signature is checked, shared by the relay
// (`ferry release publish`) and the updater. The signature is Ed25519 over a small canonical text
// that binds the SHA-256 of the release file's bytes to its version and channel, so a valid file
// cannot be replayed as another version or onto another channel.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

export const RELEASE_SIGNATURE_CONTEXT = 'ferry-release-v1';

export interface ReleaseMetadata {
  version: string;
  channel: string;
  /** Hex SHA-256 of the release file. */
  sha256: string;
  size: number;
}

/** The exact bytes that are signed (documented in README, "Connector updates"). */
export function releaseSigningMessage(meta: ReleaseMetadata): Buffer {
  return Buffer.from(`${RELEASE_SIGNATURE_CONTEXT}\nversion=${meta.version}\nchannel=${meta.channel}\nsize=${meta.size}\nsha256=${meta.sha256}\n`, 'utf8');
}

export function generateReleaseKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** Short, stable name of a public key: the first 16 hex digits of SHA-256 over its DER (SPKI). */
export function publicKeyId(key: KeyObject | string): string {
  const object = typeof key === 'string' ? createPublicKey(key) : key;
  return createHash('sha256').update(object.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

export function signRelease(meta: ReleaseMetadata, privateKeyPem: string): { signature: string; keyId: string } {
  const privateKey = createPrivateKey(privateKeyPem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('the release signing key must be an Ed25519 key');
  const signature = sign(null, releaseSigningMessage(meta), privateKey).toString('base64');
  return { signature, keyId: publicKeyId(createPublicKey(privateKey)) };
}

/** The id of the pinned key that verifies the signature, or undefined when none does. */
export function verifyRelease(meta: ReleaseMetadata, signatureBase64: string, publicKeysPem: string[]): string | undefined {
  if (!signatureBase64) return undefined;
  const signature = Buffer.from(signatureBase64, 'base64');
  if (signature.length !== 64) return undefined;
  const message = releaseSigningMessage(meta);
  for (const pem of publicKeysPem) {
    const key = createPublicKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') continue;
    if (verify(null, message, key, signature)) return publicKeyId(key);
  }
  return undefined;
}

const VERSION = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$/;

/** Release versions are semantic versions: MAJOR.MINOR.PATCH[-PRERELEASE] (no build metadata). */
export function isReleaseVersion(text: string): boolean {
  return VERSION.test(text);
}

/** Semantic-version order: negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const x = VERSION.exec(a);
  const y = VERSION.exec(b);
  if (!x || !y) throw new TypeError(`not a release version: ${x ? b : a}`);
  for (let i = 1; i <= 3; i++) {
    const diff = Number(x[i]) - Number(y[i]);
    if (diff !== 0) return diff;
  }
  const [pa, pb] = [x[4], y[4]];
  if (pa === pb) return 0;
  if (pa === undefined) return 1; // 1.0.0 > 1.0.0-rc.1
  if (pb === undefined) return -1;
  const [ia, ib] = [pa.split('.'), pb.split('.')];
  for (let i = 0; i < Math.max(ia.length, ib.length); i++) {
    const [sa, sb] = [ia[i], ib[i]];
    if (sa === undefined) return -1;
    if (sb === undefined) return 1;
    const [na, nb] = [/^\d+$/.test(sa), /^\d+$/.test(sb)];
    if (na && nb && Number(sa) !== Number(sb)) return Number(sa) - Number(sb);
    if (na !== nb) return na ? -1 : 1;
    if (sa !== sb) return sa < sb ? -1 : 1;
  }
  return 0;
}
