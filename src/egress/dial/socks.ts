// SOCKS5 / SOCKS4(a) through the `socks` package, over a TCP connection we dialed (and
// classified) ourselves. The target name goes to the proxy unresolved (socks5h semantics).
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { SocksClient } from 'socks';
import { DialError } from '../../shared/errors.js';

export interface SocksConnectOptions {
  version: 4 | 5;
  proxyHost: string;
  proxyPort: number;
  host: string;
  port: number;
  target: string;
  proxy: string;
  username?: string;
  password?: string;
  timeoutMs: number;
  now: () => number;
}

export async function socksConnect(socket: net.Socket, options: SocksConnectOptions): Promise<Duplex> {
  const started = options.now();
  try {
    const established = await SocksClient.createConnection({
      command: 'connect',
      proxy: {
        host: options.proxyHost,
        port: options.proxyPort,
        type: options.version,
        ...(options.username !== undefined ? { userId: options.username } : {}),
        ...(options.password !== undefined ? { password: options.password } : {}),
      },
      destination: { host: options.host, port: options.port },
      existing_socket: socket,
      timeout: options.timeoutMs,
    });
    return established.socket;
  } catch (error) {
    socket.destroy();
    // The socks package reports only text; every failure after our TCP connect succeeded is the
    // proxy declining the request (auth, rules, upstream unreachable), so one class covers it.
    throw new DialError('proxy-refused', `the SOCKS${options.version} proxy ${options.proxy} did not open a connection to ${options.target}`, {
      target: options.target,
      proxy: options.proxy,
      phase: 'proxy-connect',
      statusText: error instanceof Error ? error.message : String(error),
      elapsedMs: options.now() - started,
    }, { cause: error });
  }
}
