// Names the issuer of a peer certificate for error messages (e.g. the TLS-inspection CA that was
// presented instead of the pinned relay CA).
import type { PeerCertificate } from 'node:tls';

export function issuerName(certificate: PeerCertificate | Record<string, never> | undefined): string | undefined {
  if (!certificate || !('issuer' in certificate) || !certificate.issuer) return undefined;
  const pick = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
  return pick(certificate.issuer.CN) ?? pick(certificate.issuer.O);
}
