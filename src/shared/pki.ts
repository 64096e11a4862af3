// The relay's small certificate authority: a CA, the relay's server certificate, connector key pairs
// and CSRs, and the signing of those CSRs into client certificates. Everything is ECDSA P-256 with
// SHA-256 and travels as PEM (keys as unencrypted PKCS#8), because node:tls takes PEM directly and the
// state folders store files. Built on @peculiar/x509 over node's WebCrypto; node's own
// crypto.X509Certificate only parses.
//
// Why the relay ignores the CSR's subject: the connector chooses nothing about its identity. The relay
// names it (the connector id) so that a token holder cannot ask for a certificate that impersonates
// another connector.

import { X509Certificate as NodeX509Certificate, createHash, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { FerryError } from './errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface KeyPairPem {
  certPem: string;
  /** Unencrypted PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). */
  keyPem: string;
}

export interface CertificateInfo {
  subjectCn: string;
  issuerCn: string;
  notBefore: Date;
  notAfter: Date;
  /** Lowercase hex SHA-256 of the DER, no colons (see fingerprintSha256). */
  fingerprint: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Back-dating notBefore tolerates a few minutes of clock skew between relay and connector. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const EC_KEY: webcrypto.EcKeyGenParams & webcrypto.EcKeyImportParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** Makes a self-signed CA certificate and its key. */
export async function createCa(commonName: string, validityDays = 3650): Promise<KeyPairPem> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: nameOf(commonName),
    keys,
    signingAlgorithm: SIGNING,
    ...validity(validityDays),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

/**
 * Issues a TLS server certificate signed by `ca`. Each hostname becomes a SAN: an IP address SAN when it
 * is an IPv4/IPv6 literal (brackets allowed, e.g. "[::1]"), a DNS SAN otherwise. The first name is the CN.
 */
export async function issueServerCert(ca: KeyPairPem, hostnames: string[], validityDays = 825): Promise<KeyPairPem> {
  if (hostnames.length === 0) {
    throw new FerryError('ERR_PKI_NO_HOSTNAMES', 'a server certificate needs at least one hostname', {
      fix: 'pass the host names and IP addresses clients use to reach the relay',
      permanent: true,
    });
  }
  const keys = await generateKeys();
  const names = hostnames.map((raw): x509.JsonGeneralName => {
    const host = raw.trim().replace(/^\[(.*)\]$/, '$1');
    return isIP(host) ? { type: 'ip', value: host } : { type: 'dns', value: host.toLowerCase() };
  });
  const certPem = await signWithCa(ca, {
    subjectCn: names[0]!.value,
    publicKey: keys.publicKey,
    validityDays,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  });
  return { certPem, keyPem: await exportKeyPem(keys.privateKey) };
}

/** Makes a fresh key pair and a CSR for it (the connector side of registration). */
export async function createKeyAndCsr(commonName: string): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateKeys();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: nameOf(commonName),
    keys,
    signingAlgorithm: SIGNING,
  });
  return { keyPem: await exportKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}

/** A CSR whose self-signature verified: the requester holds the key. */
export interface VerifiedCsr {
  readonly publicKey: x509.PublicKey;
}

/**
 * Reads a CSR and verifies its self-signature (proof that the requester holds the key), so a
 * caller can refuse a bad one before it spends anything on it (registration: the one-time token).
 */
export async function verifyCsr(csrPem: string): Promise<VerifiedCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (cause) {
    throw invalidCsr('the certificate signing request is not a readable PEM CSR', cause);
  }
  let valid: boolean;
  try {
    valid = await csr.verify();
  } catch (cause) {
    throw invalidCsr('the certificate signing request uses an unsupported key or signature algorithm', cause);
  }
  if (!valid) throw invalidCsr('the signature of the certificate signing request does not verify');
  return { publicKey: csr.publicKey };
}

/**
 * Signs a connector's CSR (PEM, verified here, or verified already) into a client certificate
 * (clientAuth); its subject and any requested extensions are ignored.
 */
export async function signCsr(
  ca: KeyPairPem,
  request: string | VerifiedCsr,
  options: { commonName: string; validityDays: number },
): Promise<string> {
  const csr = typeof request === 'string' ? await verifyCsr(request) : request;
  return signWithCa(ca, {
    subjectCn: options.commonName,
    publicKey: csr.publicKey,
    validityDays: options.validityDays,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
}

/** Lowercase hex SHA-256 over the DER of the (first) certificate in `certPem`, without colons. */
export function fingerprintSha256(certPem: string): string {
  return createHash('sha256').update(parseNode(certPem).raw).digest('hex');
}

export function certificateInfo(certPem: string): CertificateInfo {
  const node = parseNode(certPem);
  const cert = new x509.X509Certificate(node.raw);
  return {
    subjectCn: cert.subjectName.getField('CN')[0] ?? '',
    issuerCn: cert.issuerName.getField('CN')[0] ?? '',
    notBefore: new Date(node.validFrom),
    notAfter: new Date(node.validTo),
    fingerprint: createHash('sha256').update(node.raw).digest('hex'),
  };
}

// ---------------------------------------------------------------------------------------------------

interface SignRequest {
  subjectCn: string;
  publicKey: x509.PublicKeyType;
  validityDays: number;
  extensions: x509.Extension[];
}

async function signWithCa(ca: KeyPairPem, request: SignRequest): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const signingKey = await importKeyPem(ca.keyPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: nameOf(request.subjectCn),
    // The issuer must equal the CA's subject byte for byte for chain building, so reuse the parsed Name.
    issuer: caCert.subjectName,
    publicKey: request.publicKey,
    signingKey,
    signingAlgorithm: SIGNING,
    ...validity(request.validityDays),
    extensions: [
      ...request.extensions,
      await x509.SubjectKeyIdentifierExtension.create(request.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return cert.toString('pem');
}

function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importKeyPem(keyPem: string): Promise<webcrypto.CryptoKey> {
  try {
    const der = x509.PemConverter.decode(keyPem)[0];
    if (!der) throw new Error('no PEM block');
    return await webcrypto.subtle.importKey('pkcs8', der, EC_KEY, false, ['sign']);
  } catch (cause) {
    throw new FerryError('ERR_PKI_KEY', 'the CA private key is not a PKCS#8 PEM ECDSA P-256 key', {
      cause,
      fix: "restore the relay's CA key file, or delete the relay's PKI folder to make a new CA (connectors must then re-register)",
      permanent: true,
    });
  }
}

function parseNode(certPem: string): NodeX509Certificate {
  try {
    return new NodeX509Certificate(certPem);
  } catch (cause) {
    throw new FerryError('ERR_PKI_CERT', 'the certificate is not a readable PEM X.509 certificate', {
      cause,
      fix: 'check that the file holds a "-----BEGIN CERTIFICATE-----" block',
      permanent: true,
    });
  }
}

function invalidCsr(message: string, cause?: unknown): FerryError {
  return new FerryError('ERR_CSR_INVALID', message, {
    cause,
    fix: 'run `ferry connector register` again; it makes a new key and CSR',
    permanent: true,
  });
}

/** A JSON name avoids string-DN escaping: a CN may contain commas or equals signs. */
function nameOf(commonName: string): x509.JsonName {
  return [{ CN: [commonName] }];
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: new Date(now + days * DAY_MS) };
}

/** 16 random bytes, high bit cleared so the DER INTEGER stays positive, never zero. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** Joins PEM blocks into one chain (leaf first), whatever their trailing newlines. */
export function pemChain(...blocks: string[]): string {
  return `${blocks.map((block) => block.trim()).filter(Boolean).join('\n')}\n`;
}
