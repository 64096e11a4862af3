// A real TLS echo server on loopback with a throwaway CA (ECDSA P-256, made with @peculiar/x509
// over Node's WebCrypto). It counts connections and the application bytes it received, so tests
// can assert that nothing was sent over a channel that failed verification.
import tls from 'node:tls';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type KeyPair = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];
type Key = KeyPair['privateKey'];

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

export interface TestCa extends IssuedCertificate {
  commonName: string;
  issue(options: { commonName: string; dnsNames?: string[]; ips?: string[]; client?: boolean; notAfter?: Date }): Promise<IssuedCertificate>;
}

async function keyPem(key: Key): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key as unknown as webcrypto.CryptoKey));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

function generateKeys(): Promise<KeyPair> {
  return webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as unknown as Promise<KeyPair>;
}

export async function createTestCa(commonName = 'Ferry Test Relay CA'): Promise<TestCa> {
  const keys = await generateKeys();
  const now = Date.now();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${commonName}, O=Ferry Tests`,
    keys,
    signingAlgorithm: ALG,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 24 * 3600_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    commonName,
    certPem: `${caCert.toString('pem').trim()}\n`,
    keyPem: await keyPem(keys.privateKey),
    async issue(options) {
      const leafKeys = await generateKeys();
      const names = [
        ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
        ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
      ];
      const leaf = await x509.X509CertificateGenerator.create({
        subject: `CN=${options.commonName}`,
        issuer: caCert.subject,
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        signingAlgorithm: ALG,
        notBefore: new Date(now - 60_000),
        notAfter: options.notAfter ?? new Date(now + 12 * 3600_000),
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([options.client ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth]),
          ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
          await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey),
        ],
      });
      return { certPem: `${leaf.toString('pem').trim()}\n`, keyPem: await keyPem(leafKeys.privateKey) };
    },
  };
}

export interface TlsEchoServer {
  port: number;
  ca: TestCa;
  /** Application bytes received from all clients so far. */
  bytesReceived(): number;
  /** TLS handshakes completed so far. */
  handshakes(): number;
  stop(): Promise<void>;
}

export async function startTlsEchoServer(options: {
  ca?: TestCa;
  hostnames?: string[];
  /** Require a client certificate signed by this CA (PEM). */
  clientCaPem?: string;
  alpn?: string[];
  host?: string;
  /** Expiry of the server certificate (past dates make an expired one). */
  leafNotAfter?: Date;
} = {}): Promise<TlsEchoServer> {
  const ca = options.ca ?? (await createTestCa());
  const leaf = await ca.issue({ commonName: 'relay', dnsNames: options.hostnames ?? ['relay.ferry.test', 'localhost'], ips: ['127.0.0.1'], ...(options.leafNotAfter ? { notAfter: options.leafNotAfter } : {}) });
  let received = 0;
  let handshakes = 0;
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer(
    {
      cert: leaf.certPem + ca.certPem,
      key: leaf.keyPem,
      ...(options.clientCaPem ? { ca: [options.clientCaPem], requestCert: true, rejectUnauthorized: true } : {}),
      ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
    },
    (socket) => {
      handshakes += 1;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        socket.write(chunk);
      });
      socket.on('end', () => socket.end());
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('TLS server has no address');
  return {
    port: address.port,
    ca,
    bytesReceived: () => received,
    handshakes: () => handshakes,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
