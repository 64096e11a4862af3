// Proxy authentication for CONNECT: the seam for every scheme (Basic today; NTLM and Negotiate
// later) and the Basic implementation. Connection-oriented schemes (NTLM) authenticate the TCP
// connection, not the request, so the CONNECT loop runs every leg on the same socket.
import { ConfigError } from '../../shared/errors.js';

export interface ProxyCredentials {
  username: string;
  password: string;
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
