// The relay's own PKI on disk: a CA (issues connector client certificates and the relay's server
// certificates) made on first start, and a server certificate re-issued when the configured names
// change. Keys are written with mode 0600.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createCa, fingerprintSha256, issueServerCert, type KeyPairPem } from '../shared/pki.js';

export interface RelayIdentity {
  ca: KeyPairPem;
  caFingerprint: string;
  /** Server certificate for the tunnel and registration listeners (always from the relay CA). */
  server: KeyPairPem;
  /** Certificate for the user listener: the operator's when configured, else `server`. */
  user: KeyPairPem;
}

export async function ensureRelayIdentity(stateDir: string, hostnames: string[], userTls?: { certFile: string; keyFile: string }): Promise<RelayIdentity> {
  const dir = path.join(stateDir, 'pki');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await loadOrCreate(dir, 'ca', () => createCa('Ferry relay CA'));
  const namesFile = path.join(dir, 'server-names.json');
  const wanted = JSON.stringify([...hostnames].sort());
  const stale = !existsSync(namesFile) || readFileSync(namesFile, 'utf8') !== wanted;
  const server = await loadOrCreate(dir, 'server', () => issueServerCert(ca, hostnames), stale);
  if (stale) writeFileSync(namesFile, wanted);
  const user = userTls
    ? { certPem: readFileSync(userTls.certFile, 'utf8'), keyPem: readFileSync(userTls.keyFile, 'utf8') }
    : server;
  return { ca, caFingerprint: fingerprintSha256(ca.certPem), server, user };
}

async function loadOrCreate(dir: string, name: string, create: () => Promise<KeyPairPem>, forceNew = false): Promise<KeyPairPem> {
  const certFile = path.join(dir, `${name}.pem`);
  const keyFile = path.join(dir, `${name}.key`);
  if (!forceNew && existsSync(certFile) && existsSync(keyFile)) {
    return { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
  }
  const pair = await create();
  writeFileSync(keyFile, pair.keyPem, { mode: 0o600 });
  writeFileSync(certFile, pair.certPem, { mode: 0o644 });
  return pair;
}
