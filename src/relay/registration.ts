// The registration API (HTTPS): hands out the relay CA (public, so the connector can check it
// against the fingerprint in its token before it sends anything secret), exchanges a one-time
// token and a CSR for a client certificate, and renews certificates over mTLS.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { certificateInfo, pemChain, signCsr, verifyCsr, type VerifiedCsr } from '../shared/pki.js';
import { hashSecret } from '../shared/token.js';
import type { Logger } from '../shared/log.js';
import type { RegistrationResponse } from '../shared/wire.js';
import type { RelayIdentity } from './identity.js';
import type { RelayStore } from './store.js';
import { authenticatedConnector, readJson, refuseCertificate, reply } from './api-http.js';

const RegisterBody = z.object({ secret: z.string().min(8), csrPem: z.string().min(50), name: z.string().min(1).max(200) });
const RenewBody = z.object({ csrPem: z.string().min(50) });

export interface RegistrationOptions {
  identity: RelayIdentity;
  store: RelayStore;
  logger: Logger;
  advertise: { tunnel: string[]; public: string[]; registrationUrl: string };
  connectorCertDays: number;
  /** Release, update go-ahead and self-status endpoints (releases.ts); returns false for other paths. */
  releases?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;
}

export function createRegistrationServer(options: RegistrationOptions): https.Server {
  const { identity, store, logger } = options;
  return https.createServer({
    cert: pemChain(identity.server.certPem, identity.ca.certPem),
    key: identity.server.keyPem,
    ca: [identity.ca.certPem],
    // Renewal authenticates with the current certificate; registration has none yet.
    requestCert: true,
    rejectUnauthorized: false,
  }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error({ err: error }, 'registration request failed');
      reply(res, 500, { error: { code: 'internal', message: 'the relay could not complete the request' } });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://relay');
    if (req.method === 'GET' && url.pathname === '/v1/ca') {
      res.writeHead(200, { 'content-type': 'application/x-pem-file' });
      res.end(identity.ca.certPem);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/v1/register') {
      const body = RegisterBody.safeParse(await readJson(req));
      if (!body.success) return reply(res, 400, { error: { code: 'bad-request', message: 'expected {secret, csrPem, name}' } });
      // The CSR first: a malformed one must not use up the one-time token.
      let csr: VerifiedCsr;
      try {
        csr = await verifyCsr(body.data.csrPem);
      } catch {
        return reply(res, 400, { error: { code: 'bad-csr', message: 'the certificate signing request is invalid' } });
      }
      const check = store.consumeToken(hashSecret(body.data.secret));
      if (!check.ok) {
        const message = {
          unknown: 'the registration token is not known to this relay',
          used: 'the registration token was already used (tokens are one-time)',
          expired: 'the registration token has expired',
        }[check.reason];
        logger.warn({ reason: check.reason, remote: req.socket.remoteAddress }, 'registration refused');
        return reply(res, 403, { error: { code: `token-${check.reason}`, message: `${message}; create a new one with "ferry relay token create"` } });
      }
      const connectorId = randomUUID();
      const certPem = await signCsr(identity.ca, csr, { commonName: connectorId, validityDays: options.connectorCertDays });
      const info = certificateInfo(certPem);
      const row = store.addConnector({ id: connectorId, name: body.data.name, group: check.group, certFingerprint: info.fingerprint, certNotAfter: info.notAfter });
      logger.info({ connectorId, name: row.name, group: row.group }, 'connector registered');
      const response: RegistrationResponse = {
        connectorId, name: row.name, group: row.group, certPem, caPem: identity.ca.certPem,
        tunnelAddresses: options.advertise.tunnel, publicAddresses: options.advertise.public, registrationUrl: options.advertise.registrationUrl,
      };
      return reply(res, 200, response);
    }
    if (req.method === 'POST' && url.pathname === '/v1/renew') {
      const connector = authenticatedConnector(store, req);
      if (!connector) return refuseCertificate(res);
      const body = RenewBody.safeParse(await readJson(req));
      if (!body.success) return reply(res, 400, { error: { code: 'bad-request', message: 'expected {csrPem}' } });
      const certPem = await signCsr(identity.ca, body.data.csrPem, { commonName: connector.id, validityDays: options.connectorCertDays });
      const info = certificateInfo(certPem);
      store.renewConnectorCert(connector.id, info.fingerprint, info.notAfter);
      logger.info({ connectorId: connector.id }, 'connector certificate renewed');
      return reply(res, 200, { certPem });
    }
    if (options.releases && await options.releases(req, res, url)) return;
    reply(res, 404, { error: { code: 'not-found', message: `no such endpoint: ${req.method} ${url.pathname}` } });
  }
}
