// Proxy authentication for CONNECT: the seam for every scheme and its implementations: Basic,
// NTLM (NTLMv2, ./ntlm.ts), and `any`, which lets the proxy's first 407 choose between them.
// Connection-oriented schemes (NTLM) authenticate the TCP connection, not the request, so the
// CONNECT loop runs every leg on the same socket. Negotiate (Kerberos) needs a ticket from a KDC
// and is not spoken: a proxy that offers only Negotiate gets a clear refusal.
import { ConfigError } from '../../shared/errors.js';
import { challengeFor } from './connect-response.js';
import { authenticateMessage, negotiateMessage, ntlmIdentity, parseChallengeMessage, type NtlmIdentity } from './ntlm.js';

/**
 * How the credentials are offered: `basic` with the first CONNECT (the default); `ntlm`, the
 * NTLMv2 handshake; `any`, the first CONNECT without credentials and then NTLM when the proxy
 * offers it, else Basic (curl's --proxy-anyauth), so the password never goes out in Basic to a
 * proxy that did not ask for it.
 */
export type ProxyAuthScheme = 'basic' | 'ntlm' | 'any';
export const PROXY_AUTH_SCHEMES: readonly ProxyAuthScheme[] = ['basic', 'ntlm', 'any'];

export interface ProxyCredentials {
  username: string;
  password: string;
  /** Default: basic. */
  scheme?: ProxyAuthScheme;
}

/**
 * One authentication exchange with one proxy, for one connection. The CONNECT loop calls
 * `initial()` before the first CONNECT and `respond()` after each 407 answered on a connection
 * the proxy kept open, until the proxy answers something else or `respond()` gives up.
 */
export interface ProxyAuthenticator {
  /** The scheme this authenticator speaks, as written in Proxy-Authenticate (e.g. 'Basic', 'NTLM'). */
  readonly scheme: string;
  /**
   * The Proxy-Authorization value to send with the first CONNECT, or undefined to send the first
   * CONNECT without one and wait for the proxy's challenge.
   */
  initial(): string | undefined;
  /**
   * The next Proxy-Authorization value, given the Proxy-Authenticate values of a 407 (e.g. the
   * NTLM type-2 message), or undefined when this scheme cannot continue (not offered, or the
   * credentials were already refused).
   */
  respond(challenges: string[]): string | undefined;
}

/**
 * Basic (RFC 7617). Sent preemptively with the first CONNECT: with configured credentials a
 * challenge round trip buys nothing (curl does the same with --proxy-user), and it also works
 * with proxies that close the connection after a 407. A 407 after that means the credentials
 * were refused, so `respond()` gives up.
 */
export class BasicProxyAuthenticator implements ProxyAuthenticator {
  readonly scheme = 'Basic';
  private readonly token: string;

  constructor(credentials: ProxyCredentials) {
    if (credentials.username.includes(':')) {
      throw new ConfigError('a proxy user name for Basic authentication cannot contain ":"', {
        fix: 'correct the proxy user name in the proxy configuration',
      });
    }
    this.token = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
  }

  initial(): string | undefined {
    return this.token;
  }

  respond(): string | undefined {
    return undefined;
  }

  /** Never reveal the token through util.inspect or JSON. */
  toJSON(): Record<string, string> {
    return { scheme: this.scheme };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'BasicProxyAuthenticator { scheme: "Basic" }';
  }
}

/** The authenticator for configured credentials, by their scheme. */
export function createProxyAuthenticator(credentials: ProxyCredentials): ProxyAuthenticator {
  switch (credentials.scheme ?? 'basic') {
    case 'ntlm':
      return new NtlmProxyAuthenticator(credentials);
    case 'any':
      return new AnyProxyAuthenticator(credentials);
    default:
      return new BasicProxyAuthenticator(credentials);
  }
}

/**
 * NTLM: NEGOTIATE with the first CONNECT, AUTHENTICATE (NTLMv2) in answer to the proxy's
 * CHALLENGE, on the same connection. A 407 after AUTHENTICATE means the credentials were refused.
 */
export class NtlmProxyAuthenticator implements ProxyAuthenticator {
  readonly scheme = 'NTLM';
  private readonly identity: NtlmIdentity;
  private answered = false;

  constructor(credentials: ProxyCredentials) {
    this.identity = ntlmIdentity(credentials.username, credentials.password);
  }

  initial(): string | undefined {
    return `NTLM ${negotiateMessage().toString('base64')}`;
  }

  respond(challenges: string[]): string | undefined {
    const token = challengeFor(challenges, 'NTLM');
    if (this.answered || !token) return undefined;
    this.answered = true;
    // A malformed CHALLENGE throws NtlmMessageError; the CONNECT loop reports it as the proxy's fault.
    return `NTLM ${authenticateMessage(this.identity, parseChallengeMessage(Buffer.from(token, 'base64'))).toString('base64')}`;
  }

  toJSON(): Record<string, string> {
    return { scheme: this.scheme };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'NtlmProxyAuthenticator { scheme: "NTLM" }';
  }
}

/** No credentials until the proxy asks; then NTLM if it offers NTLM, else Basic if it offers Basic. */
export class AnyProxyAuthenticator implements ProxyAuthenticator {
  private chosen: ProxyAuthenticator | undefined;

  constructor(private readonly credentials: ProxyCredentials) {}

  get scheme(): string {
    return this.chosen?.scheme ?? 'NTLM or Basic';
  }

  initial(): string | undefined {
    return undefined;
  }

  respond(challenges: string[]): string | undefined {
    if (this.chosen) return this.chosen.respond(challenges);
    if (challengeFor(challenges, 'NTLM') !== undefined) {
      this.chosen = new NtlmProxyAuthenticator(this.credentials);
      return this.chosen.initial();
    }
    if (challengeFor(challenges, 'Basic') !== undefined) {
      this.chosen = new BasicProxyAuthenticator(this.credentials);
      return this.chosen.initial();
    }
    return undefined;
  }

  toJSON(): Record<string, string> {
    return { scheme: this.scheme };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `AnyProxyAuthenticator { scheme: "${this.scheme}" }`;
  }
}
