// HTTPS calls from the connector to the relay's registration API (register, renew), made over the
// egress seam so they follow the same route (and proxy) as the tunnel, with TLS that trusts only the
// pinned relay CA.
import https from 'node:https';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { DialError, FerryError } from '../shared/errors.js';
import { createEgressAgent } from '../egress/http.js';
import { describeIssuer } from '../egress/tls.js';
import type { Dialer } from '../egress/types.js';

export interface RelayCallTls {
  caPem: string;
  certPem?: string;
  keyPem?: string;
}

export async function relayCall<T>(dialer: Dialer, url: URL, options: { method: 'GET' | 'POST'; body?: unknown; tls: RelayCallTls; timeoutMs?: number }): Promise<{ status: number; body: T; text: string }> {
  const agent = createEgressAgent({ dialer, caller: 'connector', tls: options.tls, keepAlive: false, timeoutMs: options.timeoutMs ?? 15_000 });
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: options.method,
      agent,
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

/**
 * Finds the relay CA named by the token's fingerprint in the chain the relay presents, before any
 * secret is sent. Nothing is written on this connection: it is a TLS handshake and a look at the
 * chain. A chain without that CA means the token is for another relay or a proxy inspects TLS.
 */
export async function fetchPinnedRelayCa(dialer: Dialer, url: URL, fingerprint: string, timeoutMs = 15_000): Promise<string> {
  const port = Number(url.port || 443);
  const target = `${url.hostname}:${port}`;
  const dialed = await dialer.dial({ host: url.hostname, port, caller: 'connector', url, timeoutMs });
  const proxy = dialed.traces.at(-1)?.proxy;
  const socket = tls.connect({ socket: dialed.socket, servername: /^[\d.]+$|:/.test(url.hostname) ? undefined : url.hostname, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new DialError('tls', `TLS handshake with ${target} timed out`, { target, phase: 'tls', ...(proxy ? { proxy } : {}) })), timeoutMs);
      socket.once('secureConnect', () => { clearTimeout(timer); resolve(); });
      socket.once('error', (error) => { clearTimeout(timer); reject(new DialError('tls', `TLS handshake with ${target} failed: ${error.message}`, { target, phase: 'tls', ...(proxy ? { proxy } : {}) }, { cause: error })); });
    });
    const leaf = socket.getPeerCertificate(true);
    for (let cert: tls.DetailedPeerCertificate | undefined = leaf, depth = 0; cert?.raw && depth < 8; depth++) {
      if (cert.fingerprint256.replace(/:/g, '').toLowerCase() === fingerprint) {
        return new X509Certificate(cert.raw).toString();
      }
      cert = cert.issuerCertificate === cert ? undefined : cert.issuerCertificate;
    }
    const issuer = describeIssuer(leaf);
    throw new DialError('tls-interception',
      `the relay at ${target} presented a certificate chain without the CA named in the token (presented issuer: ${issuer}); nothing was sent`,
      { target, phase: 'tls', observedIssuer: issuer, ...(proxy ? { proxy } : {}) },
      { fix: "check that the token was created by this relay; if a proxy inspects TLS, exempt the relay's hosts from inspection" });
  } finally {
    socket.destroy();
  }
}
