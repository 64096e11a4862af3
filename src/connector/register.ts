// `ferry connector register`: key pair + CSR, the relay CA checked against the token's fingerprint
// BEFORE the one-time secret is sent, then certificate and key stored with mode 0600.
import { createKeyAndCsr } from '../shared/pki.js';
import { decodeToken } from '../shared/token.js';
import { FerryError } from '../shared/errors.js';
import type { Dialer } from '../egress/types.js';
import type { RegistrationResponse } from '../shared/wire.js';
import { fetchPinnedRelayCa, relayCall } from './relay-client.js';
import { saveConnectorState, type ConnectorState } from './state.js';

/** What to do about each refusal, as README's error table says (the CLI prints it as `fix:`). */
const REGISTRATION_FIX: Record<string, string> = {
  'token-unknown': 'create a new token with "ferry relay token create" on that relay and register again',
  'token-used': 'create a new token with "ferry relay token create" (tokens are one-time) and register again',
  'token-expired': 'create a new token with "ferry relay token create" (or a longer --ttl) and register again',
  'bad-request': 'use the same Ferry version on the connector and the relay',
  'bad-csr': 'use the same Ferry version on the connector and the relay',
};

export async function registerConnector(options: { token: string; name: string; stateDir: string; dialer: Dialer; relayHost?: string }): Promise<ConnectorState> {
  const token = decodeToken(options.token);
  const relayUrl = new URL(token.relayUrl);
  if (options.relayHost) relayUrl.hostname = options.relayHost;

  const caPem = await fetchPinnedRelayCa(options.dialer, relayUrl, token.caFingerprint);

  const { keyPem, csrPem } = await createKeyAndCsr(options.name);
  const answer = await relayCall<RegistrationResponse | { error: { code: string; message: string } }>(options.dialer, new URL('/v1/register', relayUrl), {
    method: 'POST', body: { secret: token.secret, csrPem, name: options.name }, tls: { caPem },
  });
  if (answer.status !== 200 || !('certPem' in answer.body)) {
    const error = 'error' in (answer.body ?? {}) ? (answer.body as { error: { code: string; message: string } }).error : { code: 'unknown', message: answer.text.slice(0, 200) };
    throw new FerryError(`ERR_REGISTRATION_${error.code.toUpperCase().replace(/-/g, '_')}`, `the relay refused the registration: ${error.message}`, {
      permanent: true, fix: REGISTRATION_FIX[error.code] ?? 'check the relay\'s log for the refused registration',
    });
  }
  const body = answer.body;
  const state: ConnectorState = {
    connectorId: body.connectorId, name: body.name, group: body.group, registrationUrl: relayUrl.origin,
    tunnelAddresses: body.tunnelAddresses, publicAddresses: body.publicAddresses,
    caFingerprint: token.caFingerprint, caPem, certPem: body.certPem, keyPem,
  };
  saveConnectorState(options.stateDir, state);
  return state;
}
