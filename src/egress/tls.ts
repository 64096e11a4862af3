// The relay TLS pin: TLS over an already-dialed byte stream (direct socket or proxy tunnel),
// trusting ONLY the relay CA from the registration token. A chain that does not lead to that CA
// is reported as TLS interception, naming the issuer that was presented, and the channel is
// destroyed before a single application byte is written on it.
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { DialError, type DialFailureClass, type DialFields } from '../shared/errors.js';

export interface PinnedTlsOptions {
  servername: string;
  /** The relay CA (PEM). The only trust anchor. */
  caPem: string;
  /** Client certificate and key (PEM) for mutual TLS with the relay. */
  certPem?: string;
  keyPem?: string;
  alpn?: string[];
  /** host:port being reached, for errors. */
  target: string;
  /** Redacted proxy URL when the stream is a proxy tunnel. */
  proxy?: string;
  timeoutMs?: number;
}

/** Verification failures that mean "this chain does not lead to the trusted CA". */
const NOT_OUR_CHAIN = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/**
 * TLS alerts a server sends when it refuses the client certificate. With TLS 1.3 they can arrive
 * after the client considers the handshake done, so code that uses the channel later may meet
 * them too: classifyTlsError() maps them the same way.
 */
const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
]);

/** How long to wait, after our side of a TLS 1.3 handshake, for the relay's verdict on our certificate. */
const CLIENT_CERT_VERDICT_MS = 2_000;

/** Classifies an error seen on a pinned TLS channel (during or after the handshake). */
export function classifyTlsError(error: NodeJS.ErrnoException, withClientCertificate: boolean): DialFailureClass {
  if (withClientCertificate && error.code && CLIENT_CERT_REFUSED.has(error.code)) return 'relay-rejected';
  return 'tls';
}

export function connectPinnedTls(socket: Duplex, options: PinnedTlsOptions): Promise<tls.TLSSocket> {
  return connectVerifiedTls(socket, options);
}

/**
 * The same handshake with `caPem` optional: without it the system roots are trusted (updater
 * downloads from public hosts). The classification is identical.
 */
export function connectVerifiedTls(
  socket: Duplex,
  options: Omit<PinnedTlsOptions, 'caPem'> & {
    caPem?: string;
    secureContext?: tls.SecureContext;
    /** What to do about a certificate from an issuer nobody trusts, reached directly (not pinned, no proxy). */
    untrustedIssuerFix?: string;
  },
): Promise<tls.TLSSocket> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const started = Date.now();
  const withClientCertificate = options.certPem !== undefined;
  const fields = (): DialFields => ({
    target: options.target,
    ...(options.proxy ? { proxy: options.proxy } : {}),
    phase: 'tls',
    elapsedMs: Date.now() - started,
  });
  const via = options.proxy ? ` through the proxy ${options.proxy}` : '';

  return new Promise((resolve, reject) => {
    let settled = false;
    const secure = tls.connect({
      socket,
      servername: options.servername,
      ...(options.caPem !== undefined ? { ca: [options.caPem] } : {}),
      ...(options.secureContext ? { secureContext: options.secureContext } : {}),
      ...(options.certPem !== undefined ? { cert: options.certPem } : {}),
      ...(options.keyPem !== undefined ? { key: options.keyPem } : {}),
      ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
      // Verification is done below, so the presented issuer can be named; nothing is written
      // before it passed, and a failing channel is destroyed at once.
      rejectUnauthorized: false,
    } as tls.ConnectionOptions);
    const timer = setTimeout(
      () => fail(new DialError('tls', `TLS handshake with ${options.target}${via} did not finish within ${timeoutMs} ms`, { ...fields(), timeoutMs })),
      timeoutMs,
    );

    function fail(error: DialError) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      secure.destroy();
      socket.destroy();
      reject(error);
    }
    function succeed() {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      secure.removeListener('error', onError);
      secure.removeListener('close', onClose);
      secure.removeListener('end', onClose);
      resolve(secure);
    }
    function onError(error: NodeJS.ErrnoException) {
      const errorClass = classifyTlsError(error, withClientCertificate);
      const message =
        errorClass === 'relay-rejected'
          ? `the relay at ${options.target} refused this connector's client certificate (${error.code})`
          : `TLS handshake with ${options.target}${via} failed (${error.code ?? error.message})`;
      fail(new DialError(errorClass, message, fields(), { cause: error }));
    }
    let awaitingVerdict = false;
    function onClose() {
      if (awaitingVerdict) {
        // Our certificate was sent and the relay hung up instead of confirming the session: a
        // relay that accepts a client certificate sends a session ticket first.
        fail(new DialError('relay-rejected', `the relay at ${options.target} closed the connection right after receiving this connector's client certificate`, fields()));
        return;
      }
      fail(new DialError('tls', `the connection to ${options.target}${via} closed during the TLS handshake`, fields()));
    }
    secure.on('error', onError);
    secure.on('close', onClose);
    secure.once('secureConnect', () => {
      if (!secure.authorized) {
        const code = String(secure.authorizationError ?? 'UNKNOWN');
        const observedIssuer = describeIssuer(secure.getPeerCertificate(false));
        if (NOT_OUR_CHAIN.has(code) && options.caPem === undefined && !options.proxy) {
          // Reached directly and checked against the trusted roots: nothing intercepts, the
          // issuer is one this service was not told to trust (an enterprise CA, say).
          fail(new DialError('tls', `the certificate presented for ${options.servername} (${options.target}) is issued by "${observedIssuer}", which is not trusted here${options.untrustedIssuerFix ? `: ${options.untrustedIssuerFix}` : ''}`, { ...fields(), observedIssuer }));
          return;
        }
        if (NOT_OUR_CHAIN.has(code)) {
          fail(
            new DialError(
              'tls-interception',
              `the certificate presented for ${options.servername} (${options.target}${via}) is issued by "${observedIssuer}", ` +
                `not by the ${options.caPem !== undefined ? 'pinned relay CA' : 'trusted roots'}: something on the path (a TLS-inspecting proxy?) ` +
                "intercepts the connection. Exempt the relay's hosts from TLS inspection on the proxy.",
              { ...fields(), observedIssuer },
            ),
          );
          return;
        }
        fail(new DialError('tls', `the certificate presented by ${options.target}${via} is not acceptable (${code}, issuer "${observedIssuer}")`, { ...fields(), observedIssuer }));
        return;
      }
      // TLS 1.3: the server checks our certificate after our Finished; its verdict is a session
      // ticket (accepted) or an alert (refused). Wait briefly so relay-rejected surfaces here
      // rather than as a puzzling reset later.
      if (withClientCertificate && secure.getProtocol() === 'TLSv1.3') {
        const verdict = setTimeout(succeed, Math.min(CLIENT_CERT_VERDICT_MS, Math.max(0, timeoutMs - (Date.now() - started))));
        secure.once('session', () => {
          clearTimeout(verdict);
          // Resolving inside the 'session' event lets the caller write while OpenSSL is still
          // processing the ticket, and Node 20 then drops that write: hand over on the next turn.
          setImmediate(succeed);
        });
        awaitingVerdict = true;
        secure.once('end', onClose);
        secure.once('close', () => clearTimeout(verdict));
        return;
      }
      succeed();
    });
  });
}

/** "CN=Corp Inspection CA, O=Corp" from a peer certificate's issuer. */
export function describeIssuer(certificate: tls.PeerCertificate | undefined): string {
  const issuer = certificate?.issuer;
  if (!issuer || Object.keys(issuer).length === 0) return 'unknown issuer';
  const parts: string[] = [];
  for (const key of ['CN', 'OU', 'O', 'L', 'ST', 'C']) {
    const value = (issuer as unknown as Record<string, string | string[] | undefined>)[key];
    if (value !== undefined) parts.push(`${key}=${Array.isArray(value) ? value.join('+') : value}`);
  }
  return parts.length > 0 ? parts.join(', ') : 'unknown issuer';
}
