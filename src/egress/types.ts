// src/egress — the only code that opens outbound sockets: routes, proxy resolution (config, WPAD,
// PAC), dialers (direct, HTTP CONNECT, HTTPS proxy, SOCKS5) and the relay TLS pin.
// May import src/shared and src/config. Never imports relay, connector, doctor, updater or cli.
//
// This file holds the contracts every other egress module and every caller codes against.
import type { Duplex } from 'node:stream';
import type { ConfiguredProxyCredentials } from '../config/proxy-settings.js';

/** Which service asks: each has its own proxy configuration (DESIGN.md "Proxy resolution"). */
export type Caller = 'connector' | 'updater' | 'backend';

/** One entry of an ordered route list, as a PAC script or a config would write it. */
export type Route =
  | { kind: 'DIRECT' }
  | { kind: 'PROXY' | 'HTTPS' | 'SOCKS5' | 'SOCKS4'; host: string; port: number; username?: string; password?: string };

/** Where a routing decision came from: which file, which setting, which PAC rule. */
export interface Provenance {
  /** e.g. 'config', 'machine-config', 'wpad', 'pac', 'env', 'loopback', 'default'. */
  source: string;
  /** Human sentence, e.g. `connector.config:4 <proxy proxyaddress="http://proxy:8080">`. */
  detail: string;
  file?: string;
  line?: number;
  /** Raw PAC result string, when a PAC script decided. */
  pacResult?: string;
  /** Names tried and the URL fetched, when WPAD decided. */
  wpad?: { tried: string[]; url?: string };
  /** Further steps of the reasoning, in order (ignored settings, failed discovery, fail-over entry). */
  notes?: string[];
}

export interface RouteDecision {
  routes: Route[];
  provenance: Provenance;
  /** Configured proxy credentials for PROXY/HTTPS routes (password read from the file by the dialer). */
  proxyCredentials?: ConfiguredProxyCredentials;
}

/** Answers "how do I reach URL X?" for one caller. */
export interface ProxyResolver {
  resolve(url: URL, caller: Caller): Promise<RouteDecision>;
}

/** What every dial attempt records (the connection trace, DESIGN.md). */
export interface DialTrace {
  time: string;
  caller: Caller;
  target: string;
  route: string;
  /** Redacted proxy URL, when one was used. */
  proxy?: string;
  source: string;
  tcpMs?: number;
  connectStatus?: number;
  /** TLS handshake with the target (e.g. the pinned relay TLS), when the dial included it. */
  tlsMs?: number;
  /** TLS handshake with an HTTPS proxy, when the route is `HTTPS host:port`. */
  proxyTlsMs?: number;
  outcome: 'ok' | 'error';
  errorClass?: string;
  message?: string;
}

export interface DialRequest {
  host: string;
  port: number;
  caller: Caller;
  /** The URL being reached, for proxy resolution (e.g. https://relay.example:443/). */
  url?: URL;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface DialResult {
  /** A connected byte stream to host:port (plain TCP, or a CONNECT/SOCKS tunnel through a proxy). */
  socket: Duplex;
  route: Route;
  traces: DialTrace[];
}

/** The egress seam: the only way Ferry code obtains an outbound connection. */
export interface Dialer {
  dial(request: DialRequest): Promise<DialResult>;
}
