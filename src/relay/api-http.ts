// Small pieces shared by the relay's HTTPS APIs (registration, renewal, releases): JSON bodies in
// and out, and the connector authenticated by its client certificate.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ConnectorRow, RelayStore } from './store.js';

/** Reads a JSON body of at most `limit` bytes; undefined when too large or not JSON. */
export async function readJson(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

export function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The connector whose current (not revoked) certificate authenticated this mTLS request. */
export function authenticatedConnector(store: RelayStore, req: IncomingMessage): ConnectorRow | undefined {
  const socket = req.socket as TLSSocket;
  const fingerprint = (socket.getPeerCertificate?.()?.fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
  const connector = socket.authorized && fingerprint ? store.findConnectorByFingerprint(fingerprint) : undefined;
  return connector && !connector.revokedAt ? connector : undefined;
}

/** 403 `relay-rejected`: the certificate belongs to no current connector. */
export function refuseCertificate(res: ServerResponse): void {
  reply(res, 403, { error: { code: 'relay-rejected', message: 'this connector is not registered (or was removed); re-register it with a new token' } });
}
