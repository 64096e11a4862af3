// HTTPS calls from the connector to the relay's registration API (register, renew), made over the
// egress seam so they follow the same proxy route as the tunnel. TLS trusts only the pinned relay
// CA, except for the one public GET of the CA itself, whose answer is checked against the
// fingerprint carried by the token before anything secret is sent.
import https from 'node:https';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { issuerName } from '../shared/cert-issuer.js';
import { DialError, FerryError } from '../shared/errors.js';
import type { Dialer } from '../egress/types.js';

export interface RelayCallTls {
  /** Pinned CA; when absent the server is not verified (only for fetching the CA). */
  caPem?: string;
  certPem?: string;
  keyPem?: string;
}

export async function relayCall<T>(dialer: Dialer, url: URL, options: { method: 'GET' | 'POST'; body?: unknown; tls: RelayCallTls; timeoutMs?: number }): Promise<{ status: number; body: T; text: string }> {
  const port = Number(url.port || 443);
  const { socket } = await dialer.dial({ host: url.hostname, port, caller: 'connector', url, timeoutMs: options.timeoutMs });
  const secure = await wrapTls(socket, url, options.tls);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: options.method,
      createConnection: () => secure,
      headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      timeout: options.timeoutMs ?? 30_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        if (String(res.headers['content-type']).includes('json')) {
          try { body = JSON.parse(text); } catch { body = undefined; }
        }
        resolve({ status: res.statusCode ?? 0, body: body as T, text });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new FerryError('ERR_RELAY_TIMEOUT', `the relay did not answer ${url.origin} in time`, { retryable: true })));
    req.on('error', reject);
    req.end(payload);
  });
}

function wrapTls(socket: Duplex, url: URL, options: RelayCallTls): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const target = `${url.hostname}:${url.port || 443}`;
    const secure = tls.connect({
      socket,
      servername: net_isIp(url.hostname) ? undefined : url.hostname,
      ca: options.caPem ? [options.caPem] : undefined,
      rejectUnauthorized: !!options.caPem,
      cert: options.certPem,
      key: options.keyPem,
      ALPNProtocols: ['http/1.1'],
      // Only the unverified CA fetch skips the name check (tls.connect needs the key absent, not undefined).
      ...(options.caPem ? {} : { checkServerIdentity: () => undefined }),
    });
    secure.once('secureConnect', () => resolve(secure));
    secure.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      const presented = secure.getPeerCertificate?.();
      const issuer = issuerName(presented);
      const chainFailure = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(error.code ?? '');
      reject(new DialError(chainFailure ? 'tls-interception' : 'tls',
        chainFailure
          ? `the certificate presented for ${target} does not chain to the relay CA pinned at registration (presented issuer: ${issuer ?? 'unknown'})`
          : `TLS handshake with ${target} failed: ${error.message}`,
        { target, phase: 'tls', observedIssuer: issuer }, { cause: error }));
    });
  });
}

function net_isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
