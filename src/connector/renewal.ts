// Certificate renewal: when a third of the connector certificate's life is left, ask the relay
// for a new one (mTLS with the current certificate, a fresh key pair) over the same egress route
// as registration, and store it. Tunnels opened afterwards use the new identity; the relay accepts
// the previous certificate too until the next renewal, so a lost answer does not lock us out.
import { certificateInfo, createKeyAndCsr } from '../shared/pki.js';
import { FerryError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { Dialer } from '../egress/types.js';
import { relayCall } from './relay-client.js';
import { saveConnectorState, type ConnectorState } from './state.js';

/** True when less than a third of the certificate's validity remains. */
export function renewalDue(certPem: string, now = new Date()): boolean {
  const { notBefore, notAfter } = certificateInfo(certPem);
  const total = notAfter.getTime() - notBefore.getTime();
  return notAfter.getTime() - now.getTime() < total / 3;
}

export async function renewCertificate(state: ConnectorState, stateDir: string, dialer: Dialer): Promise<ConnectorState> {
  const { keyPem, csrPem } = await createKeyAndCsr(state.connectorId);
  const answer = await relayCall<{ certPem?: string; error?: { code: string; message: string } }>(dialer, new URL('/v1/renew', state.registrationUrl), {
    method: 'POST', body: { csrPem }, tls: { caPem: state.caPem, certPem: state.certPem, keyPem: state.keyPem },
  });
  if (answer.status !== 200 || !answer.body?.certPem) {
    throw new FerryError('ERR_RENEWAL_REFUSED', `the relay refused to renew the certificate: ${answer.body?.error?.message ?? answer.text.slice(0, 200)}`, {
      permanent: answer.status === 403, fix: answer.status === 403 ? 're-register the connector with a new token' : undefined,
    });
  }
  const renewed: ConnectorState = { ...state, certPem: answer.body.certPem, keyPem };
  saveConnectorState(stateDir, renewed);
  return renewed;
}

/** Checks now and then; renews when due. Returns a stop function. */
export function scheduleRenewal(options: { getState(): ConnectorState; setState(state: ConnectorState): void; stateDir: string; dialer: Dialer; logger: Logger; everyMs?: number }): () => void {
  let busy = false;
  const check = async () => {
    if (busy || !renewalDue(options.getState().certPem)) return;
    busy = true;
    try {
      const renewed = await renewCertificate(options.getState(), options.stateDir, options.dialer);
      options.setState(renewed);
      options.logger.info({ notAfter: certificateInfo(renewed.certPem).notAfter }, 'connector certificate renewed');
    } catch (error) {
      options.logger.warn({ err: error }, 'certificate renewal failed; will retry');
    } finally {
      busy = false;
    }
  };
  void check();
  const timer = setInterval(() => void check(), options.everyMs ?? 3_600_000);
  timer.unref();
  return () => clearInterval(timer);
}
