import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  certificateInfo,
  createCa,
  createKeyAndCsr,
  fingerprintSha256,
  issueServerCert,
  signCsr,
  type KeyPairPem,
} from './pki.js';
import { FerryError } from './errors.js';

interface HandshakeResult {
  serverSawAuthorized: boolean;
  serverSawPeerCn: string | undefined;
  serverError: string | undefined;
  clientAuthorized: boolean;
  clientError: string | undefined;
}

/** One real mTLS handshake on 127.0.0.1: the server requires a client certificate from `serverCa`. */
async function handshake(
  server: KeyPairPem,
  serverCa: string,
  client: KeyPairPem,
  clientCa: string,
  servername: string | undefined = 'localhost',
): Promise<HandshakeResult> {
  const result: HandshakeResult = {
    serverSawAuthorized: false,
    serverSawPeerCn: undefined,
    serverError: undefined,
    clientAuthorized: false,
    clientError: undefined,
  };
  const tlsServer = tls.createServer({
    cert: server.certPem,
    key: server.keyPem,
    ca: [serverCa],
    requestCert: true,
    rejectUnauthorized: true,
  });
  tlsServer.on('secureConnection', (socket) => {
    result.serverSawAuthorized = socket.authorized;
    const cn = socket.getPeerCertificate().subject?.CN;
    result.serverSawPeerCn = Array.isArray(cn) ? cn[0] : cn;
    socket.end('hello');
  });
  tlsServer.on('tlsClientError', (error) => {
    result.serverError = error.message;
  });
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  const { port } = tlsServer.address() as AddressInfo;
  try {
    await new Promise<void>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ...(servername === undefined ? {} : { servername }),
        cert: client.certPem,
        key: client.keyPem,
        ca: [clientCa],
        rejectUnauthorized: true,
      });
      const timer = setTimeout(() => socket.destroy(new Error('handshake timed out')), 5000);
      let data = '';
      socket.on('secureConnect', () => {
        result.clientAuthorized = socket.authorized;
      });
      socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
      socket.on('error', (error) => {
        result.clientError ??= error.message;
      });
      socket.on('close', () => {
        clearTimeout(timer);
        // TLS 1.3: a client certificate refusal arrives after secureConnect, so only a full reply counts.
        if (data !== 'hello') result.clientAuthorized = false;
        resolve();
      });
    });
  } finally {
    await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
  }
  return result;
}

describe('pki', () => {
  let ca: KeyPairPem;
  let otherCa: KeyPairPem;
  let server: KeyPairPem;
  let client: KeyPairPem;

  before(async () => {
    ca = await createCa('Ferry test CA');
    otherCa = await createCa('Some other CA');
    server = await issueServerCert(ca, ['localhost', '127.0.0.1', '::1', 'Relay.Example.test']);
    const { keyPem, csrPem } = await createKeyAndCsr('whatever-the-connector-asks');
    client = { certPem: await signCsr(ca, csrPem, { commonName: 'conn-1234', validityDays: 30 }), keyPem };
  });

  it('makes a CA that is a CA, with PEM key in PKCS#8', () => {
    const cert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, true);
    assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.equal(cert.checkIssued(cert), true);
    const info = certificateInfo(ca.certPem);
    assert.equal(info.subjectCn, 'Ferry test CA');
    assert.equal(info.issuerCn, 'Ferry test CA');
    const days = (info.notAfter.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 3649 && days < 3651, `CA validity ${days} days`);
  });

  it('issues a server certificate with DNS and IP SANs and serverAuth', () => {
    const cert = new X509Certificate(server.certPem);
    assert.equal(cert.ca, false);
    assert.equal(cert.checkIssued(new X509Certificate(ca.certPem)), true);
    assert.equal(cert.verify(new X509Certificate(ca.certPem).publicKey), true);
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkHost('relay.example.test'), 'relay.example.test');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(cert.checkIP('::1'), '::1');
    assert.equal(cert.checkHost('other.test'), undefined);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    const info = certificateInfo(server.certPem);
    assert.equal(info.subjectCn, 'localhost');
    assert.equal(info.issuerCn, 'Ferry test CA');
    const days = (info.notAfter.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 824 && days < 826, `server validity ${days} days`);
  });

  it('signs a CSR with the name the relay chooses, not the one requested, and clientAuth', () => {
    const cert = new X509Certificate(client.certPem);
    assert.equal(cert.verify(new X509Certificate(ca.certPem).publicKey), true);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2']);
    const info = certificateInfo(client.certPem);
    assert.equal(info.subjectCn, 'conn-1234');
    assert.equal(info.issuerCn, 'Ferry test CA');
    assert.ok(info.notBefore.getTime() <= Date.now());
    const days = (info.notAfter.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 29 && days < 31);
    assert.equal(info.fingerprint, fingerprintSha256(client.certPem));
  });

  it('fingerprints as lowercase hex sha256 over DER, matching node', () => {
    const fingerprint = fingerprintSha256(ca.certPem);
    assert.match(fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(fingerprint, new X509Certificate(ca.certPem).fingerprint256.replace(/:/g, '').toLowerCase());
    assert.notEqual(fingerprint, fingerprintSha256(otherCa.certPem));
  });

  it('refuses a CSR whose signature does not verify, and garbage', async () => {
    const { csrPem } = await createKeyAndCsr('x');
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5]! ^= 0xff; // inside the signature value
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await assert.rejects(signCsr(ca, tampered, { commonName: 'c', validityDays: 1 }), (error: unknown) => {
      assert.ok(error instanceof FerryError);
      assert.equal(error.code, 'ERR_CSR_INVALID');
      return true;
    });
    await assert.rejects(signCsr(ca, 'not a csr', { commonName: 'c', validityDays: 1 }), { code: 'ERR_CSR_INVALID' });
  });

  it('refuses garbage certificates with a FerryError', () => {
    assert.throws(() => fingerprintSha256('nope'), { code: 'ERR_PKI_CERT' });
  });

  it('completes a real mTLS handshake on 127.0.0.1, authorized both ways', async () => {
    const result = await handshake(server, ca.certPem, client, ca.certPem);
    assert.equal(result.clientError, undefined);
    assert.equal(result.serverError, undefined);
    assert.equal(result.clientAuthorized, true);
    assert.equal(result.serverSawAuthorized, true);
    assert.equal(result.serverSawPeerCn, 'conn-1234');
  });

  it('verifies the server by IP SAN too', async () => {
    const result = await handshake(server, ca.certPem, client, ca.certPem, undefined);
    assert.equal(result.clientError, undefined);
    assert.equal(result.clientAuthorized, true);
  });

  it('refuses a client certificate signed by another CA', async () => {
    const { keyPem, csrPem } = await createKeyAndCsr('intruder');
    const intruder = { certPem: await signCsr(otherCa, csrPem, { commonName: 'intruder', validityDays: 1 }), keyPem };
    const result = await handshake(server, ca.certPem, intruder, ca.certPem);
    assert.equal(result.serverSawAuthorized, false);
    assert.equal(result.clientAuthorized, false);
    assert.ok(result.serverError ?? result.clientError, 'the handshake reported an error');
  });

  it('refuses a server certificate from another CA (pinned CA on the client)', async () => {
    const rogue = await issueServerCert(otherCa, ['localhost']);
    const result = await handshake(rogue, ca.certPem, client, ca.certPem);
    assert.equal(result.clientAuthorized, false);
    assert.match(result.clientError ?? '', /certificate/i);
  });

});
