// What registration leaves in the connector's state folder: the identity (certificate and key,
// mode 0600), the pinned relay CA, and where the relay can be reached.
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../shared/errors.js';

export interface ConnectorState {
  connectorId: string;
  name: string;
  group: string;
  registrationUrl: string;
  tunnelAddresses: string[];
  publicAddresses: string[];
  caFingerprint: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}

const files = (dir: string) => ({
  meta: path.join(dir, 'registration.json'),
  ca: path.join(dir, 'relay-ca.pem'),
  cert: path.join(dir, 'connector.pem'),
  key: path.join(dir, 'connector.key'),
});

export function saveConnectorState(dir: string, state: ConnectorState): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = files(dir);
  writeAtomic(f.key, state.keyPem, 0o600);
  // The certificate is public, but DESIGN.md keeps the connector's identity files 0600 together.
  writeAtomic(f.cert, state.certPem, 0o600);
  writeAtomic(f.ca, state.caPem, 0o644);
  const { caPem: _ca, certPem: _cert, keyPem: _key, ...meta } = state;
  writeAtomic(f.meta, `${JSON.stringify(meta, null, 2)}\n`, 0o600);
}

export function loadConnectorState(dir: string): ConnectorState {
  const f = files(dir);
  if (!existsSync(f.meta)) {
    throw new ConfigError(`this connector is not registered (no ${f.meta})`, {
      file: f.meta, fix: 'run "ferry connector register --token TOKEN" with a token from "ferry relay token create"',
    });
  }
  const meta = JSON.parse(readFileSync(f.meta, 'utf8')) as Omit<ConnectorState, 'caPem' | 'certPem' | 'keyPem'>;
  return { ...meta, caPem: readFileSync(f.ca, 'utf8'), certPem: readFileSync(f.cert, 'utf8'), keyPem: readFileSync(f.key, 'utf8') };
}

/** Writes via a temporary file and rename, so a crash never leaves half a key behind. */
function writeAtomic(file: string, text: string, mode: number): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode });
  renameSync(temp, file);
}
