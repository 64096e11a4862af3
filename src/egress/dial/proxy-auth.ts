// Proxy authentication for CONNECT: the seam for every scheme and its implementations: Basic,
// NTLM (NTLMv2, ./ntlm.ts), `any` (the proxy's first 407 chooses between NTLM and Basic), and
// Negotiate (Kerberos through GSSAPI, the optional `kerberos` module, with the service's own
// Kerberos identity: a keytab or credential cache, no password). Connection-oriented schemes
// authenticate the TCP connection, not the request, so the CONNECT loop runs every leg on the
// same socket.
import { ConfigError } from '../../shared/errors.js';
import type { ProxyAuthScheme } from '../../config/proxy-settings-yaml.js';
import { challengeFor } from './connect-response.js';
import { authenticateMessage, negotiateMessage, ntlmIdentity, parseChallengeMessage, type NtlmIdentity } from './ntlm.js';

/**
 * How the credentials are offered: `basic` with the first CONNECT (the default); `ntlm`, the
 * NTLMv2 handshake; `any`, the first CONNECT without credentials and then NTLM when the proxy
 * offers it, else Basic (curl's --proxy-anyauth), so the password never goes out in Basic to a
 * proxy that did not ask for it; `negotiate`, a Kerberos ticket for HTTP/<proxy host>.
 */
export { PROXY_AUTH_SCHEMES, type ProxyAuthScheme } from '../../config/proxy-settings-yaml.js';

export interface ProxyCredentials {
  /** Negotiate: the Kerberos principal to use, or '' for the keytab's or cache's default. */
  username: string;
  /** '' for Negotiate, which never sees a password. */
  password: string;
  /** Default: basic. */
  scheme?: ProxyAuthScheme;
  /** Negotiate: the client keytab holding the service's Kerberos key (else the credential cache). */
  keytab?: string;
  /** Negotiate: nothing with the first CONNECT, a ticket only for a 407 that offers Negotiate. */
  onlyWhenAsked?: boolean;
}

/**
 * One authentication exchange with one proxy, for one connection. The CONNECT loop calls
 * `initial()` before the first CONNECT and `respond()` after each 407 answered on a connection
 * the proxy kept open, until the proxy answers something else or `respond()` gives up.
 */
export interface ProxyAuthenticator {
  /** The scheme this authenticator speaks, as written in Proxy-Authenticate (e.g. 'Basic', 'NTLM'). */
  readonly scheme: string;
  /** Every scheme it could use, when more than `scheme` (e.g. `any`: NTLM and Basic). */
  readonly speaks?: readonly string[];
  /**
   * The Proxy-Authorization value to send with the first CONNECT, or undefined to send the first
   * CONNECT without one and wait for the proxy's challenge.
   */
  initial(): string | undefined | Promise<string | undefined>;
  /**
   * The next Proxy-Authorization value, given the Proxy-Authenticate values of a 407 (e.g. the
   * NTLM type-2 message), or undefined when this scheme cannot continue (not offered, or the
   * credentials were already refused).
   */
  respond(challenges: string[]): string | undefined | Promise<string | undefined>;
  /**
   * True once the last value produced ends the client's part of the exchange (NTLM's
   * AUTHENTICATE, a Kerberos ticket): the proxy accepts it or refuses it. A connection for
   * requests in absolute form sends that value with its first real request, not with a handshake
   * request of its own that the proxy would pass on to the app.
   */
  readonly finished?: boolean;
}

/** Authenticators hold secrets: util.inspect and JSON show their scheme only. */
abstract class SecretAuthenticator implements ProxyAuthenticator {
  abstract readonly scheme: string;
  abstract initial(): string | undefined | Promise<string | undefined>;
  abstract respond(challenges: string[]): string | undefined | Promise<string | undefined>;

  get finished(): boolean {
    return false;
  }

  toJSON(): Record<string, string> {
    return { scheme: this.scheme };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `${this.constructor.name} { scheme: "${this.scheme}" }`;
  }
}

/**
 * Basic (RFC 7617). Sent preemptively with the first CONNECT: with configured credentials a
 * challenge round trip buys nothing (curl does the same with --proxy-user), and it also works
 * with proxies that close the connection after a 407. A 407 after that means the credentials
 * were refused, so `respond()` gives up.
 */
export class BasicProxyAuthenticator extends SecretAuthenticator {
  readonly scheme = 'Basic';
  private readonly token: string;

  constructor(credentials: ProxyCredentials) {
    super();
    if (credentials.username.includes(':')) {
      throw new ConfigError('a proxy user name for Basic authentication cannot contain ":"', {
        fix: 'correct the proxy user name in the proxy configuration',
      });
    }
    this.token = basicCredentials(credentials);
  }

  initial(): string | undefined {
    return this.token;
  }

  respond(): string | undefined {
    return undefined;
  }

  override get finished(): boolean {
    return true;
  }
}

/** The Basic Proxy-Authorization value (RFC 7617) for `credentials`. */
export function basicCredentials(credentials: Pick<ProxyCredentials, 'username' | 'password'>): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}

/** The authenticator for configured credentials, by their scheme, for the proxy named `proxyHost`. */
export function createProxyAuthenticator(credentials: ProxyCredentials, proxyHost: string): ProxyAuthenticator {
  switch (credentials.scheme ?? 'basic') {
    case 'ntlm':
      return new NtlmProxyAuthenticator(credentials);
    case 'negotiate':
      return new NegotiateProxyAuthenticator(credentials, proxyHost);
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
export class NtlmProxyAuthenticator extends SecretAuthenticator {
  readonly scheme = 'NTLM';
  private readonly identity: NtlmIdentity;
  private answered = false;

  constructor(credentials: ProxyCredentials) {
    super();
    this.identity = ntlmIdentity(credentials.username, credentials.password);
  }

  initial(): string | undefined {
    return `NTLM ${negotiateMessage().toString('base64')}`;
  }

  override get finished(): boolean {
    return this.answered;
  }

  respond(challenges: string[]): string | undefined {
    const token = challengeFor(challenges, 'NTLM');
    if (this.answered || !token) return undefined;
    this.answered = true;
    // A malformed CHALLENGE throws NtlmMessageError; the CONNECT loop reports it as the proxy's fault.
    return `NTLM ${authenticateMessage(this.identity, parseChallengeMessage(Buffer.from(token, 'base64'))).toString('base64')}`;
  }
}

/** No credentials until the proxy asks; then NTLM if it offers NTLM, else Basic if it offers Basic. */
export class AnyProxyAuthenticator extends SecretAuthenticator {
  private chosen: ProxyAuthenticator | undefined;

  constructor(private readonly credentials: ProxyCredentials) {
    super();
  }

  readonly speaks = ['NTLM', 'Basic'];

  get scheme(): string {
    return this.chosen?.scheme ?? 'NTLM or Basic';
  }

  override get finished(): boolean {
    return this.chosen?.finished ?? false;
  }

  initial(): string | undefined {
    return undefined;
  }

  respond(challenges: string[]): string | undefined | Promise<string | undefined> {
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
}

/**
 * The part of the optional `kerberos` module (GSSAPI) Negotiate uses, declared here: the module may
 * be missing (it builds against libkrb5-dev at install time), and the build must not need it.
 */
interface KerberosModule {
  GSS_MECH_OID_SPNEGO: number;
  initializeClient(service: string, options: { principal?: string; mechOID?: number }): Promise<{ step(challenge: string): Promise<string> }>;
}
const KERBEROS_MODULE = 'kerberos';
let kerberosModule: Promise<KerberosModule> | undefined;
function loadKerberos(): Promise<KerberosModule> {
  kerberosModule ??= (import(KERBEROS_MODULE) as Promise<KerberosModule & { default?: KerberosModule }>).then(
    (loaded) => loaded.default ?? loaded,
    () => {
      kerberosModule = undefined;
      throw new Error('the optional kerberos module is not installed (it needs libkrb5-dev when npm installs it): install libkrb5-dev and run npm install, or use scheme ntlm or basic');
    },
  );
  return kerberosModule;
}

/**
 * Negotiate (RFC 4559) with Kerberos: a SPNEGO token for the service principal HTTP/<proxy host>
 * with the first CONNECT (the proxy would ask for it anyway), and the next step for a 407 that
 * continues the exchange. The identity is the service's own: `keytab` (GSSAPI's client keytab,
 * KRB5_CLIENT_KTNAME, one for the process) or the default credential cache. The proxy must be
 * named by the host name its principal carries: Kerberos has no ticket for an address.
 */
export class NegotiateProxyAuthenticator extends SecretAuthenticator {
  readonly scheme = 'Negotiate';
  private client: Awaited<ReturnType<KerberosModule['initializeClient']>> | undefined;
  private legs = 0;

  constructor(private readonly credentials: ProxyCredentials, private readonly proxyHost: string) {
    super();
  }

  /** A Kerberos ticket (the first token) is all the client has to say; the proxy's answer may carry its own (mutual authentication). */
  override get finished(): boolean {
    return this.client !== undefined;
  }

  async initial(): Promise<string | undefined> {
    return this.credentials.onlyWhenAsked ? undefined : this.firstToken();
  }

  private async firstToken(): Promise<string> {
    const kerberos = await loadKerberos();
    if (this.credentials.keytab) process.env.KRB5_CLIENT_KTNAME = this.credentials.keytab;
    const service = `HTTP@${this.proxyHost}`;
    try {
      this.client = await kerberos.initializeClient(service, {
        mechOID: kerberos.GSS_MECH_OID_SPNEGO,
        ...(this.credentials.username ? { principal: this.credentials.username } : {}),
      });
      return `Negotiate ${await this.client.step('')}`;
    } catch (error) {
      throw new Error(`no Kerberos ticket for ${service}: ${(error as Error).message.trim()} (the proxy must be named by the host of its HTTP/ service principal, and the service's keytab or credential cache must hold a valid identity)`);
    }
  }

  async respond(challenges: string[]): Promise<string | undefined> {
    const token = challengeFor(challenges, 'Negotiate');
    if (!this.client && this.credentials.onlyWhenAsked && token !== undefined) return this.firstToken();
    // A bare "Negotiate" after our token: the ticket was refused. A token: the exchange goes on.
    if (!this.client || !token || ++this.legs > 2) return undefined;
    return `Negotiate ${await this.client.step(token)}`;
  }
}
