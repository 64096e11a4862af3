// The tunnel's wire contract, shared by relay and connector (DESIGN.md "The tunnel").
//
// After TLS, roles reverse: the relay is the HTTP/2 client and the connector the HTTP/2 server.
// Each user request is one stream, or, for HTTP/1.1 users of a connector that announced
// CONNECTOR_FEATURES.connectionStreams (and HTTP/2 users whose TLS server name names an app, of one
// that announced http2ConnectionStreams), each user connection is one CONNECT stream. The relay tells the connector where the request goes with
// FERRY_HEADERS.internalUrl (the relay is trusted; the connector validates the scheme), and the
// connector tells the relay why a backend failed with FERRY_HEADERS.error.

import { connectionTokensOf } from './http1-heads.js';

/** ALPN protocol a connector offers, so the relay's public port can tell tunnels from users. */
export const TUNNEL_ALPN = 'ferry-tunnel/1';

export const FERRY_HEADERS = {
  /** Origin of the internal app, e.g. `http://10.0.0.5:8080` (relay → connector). */
  internalUrl: 'ferry-internal-url',
  /** App name, for logs (relay → connector). */
  app: 'ferry-app',
  /** Backend failure class on a connector-generated error response (connector → relay). */
  error: 'ferry-error',
  /** Human detail of that failure (connector → relay). */
  errorDetail: 'ferry-error-detail',
  // On a connection stream (relay → connector), the facts the relay used to learn per request:
  /** The app's internal URL (full href: a path prefix counts). */
  internalHref: 'ferry-internal-href',
  /** The app's external URL, e.g. `https://app.example.com/`. */
  externalUrl: 'ferry-external-url',
  /** The user's address, for X-Forwarded-For. */
  clientAddress: 'ferry-client-address',
  /** `http` or `https`: how the user reached the relay (X-Forwarded-Proto). */
  userProto: 'ferry-user-proto',
  /** How long the app may take to answer a request (ms), then 504. */
  timeoutMs: 'ferry-timeout-ms',
  /** `http` or `passthrough` (see PublishedApp.mode). */
  appMode: 'ferry-app-mode',
  /** `h2`: the stream carries an HTTP/2 user connection (CONNECTOR_FEATURES.http2ConnectionStreams); absent: HTTP/1.1. */
  userProtocol: 'ferry-user-protocol',
} as const;

/**
 * What a connector can do beyond the basic contract, announced in its hello. The relay uses a
 * feature only on tunnels whose connector announced it, so old connectors keep working.
 */
export const CONNECTOR_FEATURES = {
  /**
   * One stream per HTTP/1.1 user connection: a CONNECT stream carrying the connection's bytes; the
   * connector reads the requests (mode http) or splices the bytes to the app (mode passthrough).
   */
  connectionStreams: 'connection-streams',
  /**
   * One stream per HTTP/2 user connection whose TLS server name names an app: the connector runs
   * the user's HTTP/2 session on it, so the relay moves bytes instead of re-sending every request.
   */
  http2ConnectionStreams: 'http2-connection-streams',
} as const;

/** Control requests the relay sends on a new tunnel. */
export const CONTROL_PATHS = {
  /** Relay asks; connector answers with ConnectorHello. */
  hello: '/.well-known/ferry/hello',
  /** Relay tells the connector its certificate is not (or no longer) accepted, then closes. */
  rejected: '/.well-known/ferry/rejected',
} as const;

export interface ConnectorHello {
  connectorId: string;
  version: string;
  hostname: string;
  /** CONNECTOR_FEATURES values (absent from connectors before they existed). */
  features?: string[];
}

export interface RejectedNotice {
  reason: 'revoked' | 'unknown';
  message: string;
}

/** Backend failure classes the connector reports (the relay turns them into 502/504 pages). */
export type BackendFailureClass = 'dns' | 'connect-refused' | 'connect-timeout' | 'tls' | 'reset' | 'proxy-refused' | 'proxy-auth-required' | 'bad-internal-url';

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus HTTP/2-forbidden ones: never forwarded. */
export const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'http2-settings', 'host',
]);

/**
 * Copies headers, dropping hop-by-hop ones, pseudo-headers and those named in Connection. Runs
 * twice per proxied request, so no Object.entries pairs and no Set unless Connection names any.
 */
export function endToEndHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const connection = headers.connection;
  const named = connection === undefined ? undefined : connectionTokensOf(connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 0x3a /* ':' */) continue;
    const lower = name.toLowerCase();
    if (isHopByHop(lower, named)) continue;
    out[lower] = value;
  }
  return out;
}

/** A field (lower-case name) that is not forwarded: hop-by-hop, named in Connection, or Ferry's own. */
export function isHopByHop(lowerName: string, connectionNamed?: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(lowerName) || lowerName.startsWith('ferry-') || (connectionNamed?.has(lowerName) ?? false);
}

/**
 * NTLM and Negotiate (Kerberos/NTLM) authenticate a connection, not a request: an app connection
 * that carried either never serves another user (what nginx's `ntlm` directive does), and an
 * HTTP/2 user is sent to HTTP/1.1 for them (HTTP/2 has no connection-bound authentication).
 */
export function isConnectionAuth(values: string | readonly string[] | undefined): boolean {
  if (values === undefined) return false;
  // A field value may list several challenges ("Negotiate, NTLM"; HTTP/2 joins repeated fields so).
  const pattern = /(?:^|,)[ \t]*(?:ntlm|negotiate)(?:[ \t,]|$)/i;
  return typeof values === 'string' ? pattern.test(values) : values.some((value) => pattern.test(value));
}

/** The head of the 101 answer to a WebSocket upgrade, with the app's end-to-end headers. */
export function switchingProtocolsHead(headers: Record<string, string | string[] | undefined>): string {
  const lines = ['HTTP/1.1 101 Switching Protocols', 'upgrade: websocket', 'connection: Upgrade'];
  for (const [name, value] of Object.entries(endToEndHeaders(headers))) {
    for (const item of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${item}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** The registration API's answer to POST /v1/register (relay → connector). */
export interface RegistrationResponse {
  connectorId: string;
  name: string;
  group: string;
  certPem: string;
  caPem: string;
  tunnelAddresses: string[];
  publicAddresses: string[];
  registrationUrl: string;
}

/** The updater's go-ahead (POST /v1/updates/lease): one connector per group updates at a time. */
export type LeaseAnswer =
  | { granted: true; group: string; expiresAt: string }
  | { granted: false; group: string; holder: { connectorId: string; name?: string; targetVersion: string }; expiresAt: string; retryAfterMs: number };

/** What GET /v1/connectors/self answers: what the relay sees of the calling connector right now. */
export interface ConnectorSelf {
  connectorId: string;
  name: string;
  group: string;
  version: string | null;
  lastSeen: string | null;
  /** Tunnels of this connector live on this relay right now. */
  liveTunnels: number;
  online: boolean;
}
