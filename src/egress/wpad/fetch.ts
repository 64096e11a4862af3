// Fetching PAC script text: wpad.dat from a discovered address, or a configured scriptLocation
// (http, https, file). Always DIRECT (a PAC fetch never goes through the proxy it configures), with a
// time limit and a size limit, tolerant of content types (servers send text/plain,
// application/octet-stream, application/x-ns-proxy-autoconfig … all are accepted).
import http from 'node:http';
import https from 'node:https';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export interface ScriptFetchLimits {
  timeoutMs?: number;
  maxBytes?: number;
}

export const DEFAULT_FETCH_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_SCRIPT_BYTES = 1024 * 1024;

/** Why a script could not be fetched (a discovery failure: the manual rule then decides, doc §7). */
export class ScriptFetchError extends Error {
  constructor(message: string, readonly reason: 'timeout' | 'too-large' | 'http-status' | 'network' | 'file') {
    super(message);
    this.name = 'ScriptFetchError';
  }
}

export interface HttpGetTarget {
  /** Address to connect to (already resolved, or a host name for the system resolver). */
  connectHost: string;
  port: number;
  /** Host header value. */
  hostHeader: string;
  path: string;
  tls?: { servername: string };
}

/** GET one URL directly, bounded in time and size; resolves to the body text of a 200 answer. */
export function httpGetText(target: HttpGetTarget, limits: ScriptFetchLimits = {}): Promise<string> {
  const timeoutMs = limits.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_SCRIPT_BYTES;
  const shown = `${target.tls ? 'https' : 'http'}://${target.hostHeader}${target.path}`;
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions = {
      host: target.connectHost,
      port: target.port,
      path: target.path,
      method: 'GET',
      agent: false,
      headers: { Host: target.hostHeader, 'User-Agent': 'Ferry-PAC-fetch', Accept: 'application/x-ns-proxy-autoconfig, */*' },
    };
    if (target.tls) options.servername = target.tls.servername;
    const request = (target.tls ? https : http).request(options);
    const deadline = setTimeout(() => request.destroy(new ScriptFetchError(`fetching ${shown} took longer than ${timeoutMs} ms`, 'timeout')), timeoutMs);
    const settle = (fn: () => void): void => {
      clearTimeout(deadline);
      fn();
    };
    request.on('error', (error) => settle(() => reject(error instanceof ScriptFetchError ? error : new ScriptFetchError(`fetching ${shown} failed: ${error.message}`, 'network'))));
    request.on('response', (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        request.destroy();
        settle(() => reject(new ScriptFetchError(`fetching ${shown} answered HTTP ${response.statusCode}`, 'http-status')));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          request.destroy(new ScriptFetchError(`${shown} is larger than ${maxBytes} bytes`, 'too-large'));
          return;
        }
        chunks.push(chunk);
      });
      response.on('end', () => settle(() => resolve(Buffer.concat(chunks).toString('utf8').replace(/^\uFEFF/, ''))));
      response.on('error', (error) => settle(() => reject(error instanceof ScriptFetchError ? error : new ScriptFetchError(`reading ${shown} failed: ${error.message}`, 'network'))));
    });
    request.end();
  });
}

/** Reads a configured scriptLocation (http, https or file URL). */
export async function fetchScriptLocation(location: string, limits: ScriptFetchLimits = {}): Promise<string> {
  const url = new URL(location);
  if (url.protocol === 'file:') {
    const maxBytes = limits.maxBytes ?? DEFAULT_MAX_SCRIPT_BYTES;
    let handle;
    try {
      handle = await open(fileURLToPath(url), 'r');
      const { size } = await handle.stat();
      if (size > maxBytes) throw new ScriptFetchError(`${location} is larger than ${maxBytes} bytes`, 'too-large');
      return (await handle.readFile('utf8')).replace(/^\uFEFF/, '');
    } catch (error) {
      if (error instanceof ScriptFetchError) throw error;
      throw new ScriptFetchError(`cannot read ${location}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, 'file');
    } finally {
      await handle?.close();
    }
  }
  const tls = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return httpGetText({
    connectHost: host,
    port: url.port ? Number(url.port) : tls ? 443 : 80,
    hostHeader: url.host,
    path: `${url.pathname}${url.search}`,
    ...(tls ? { tls: { servername: host } } : {}),
  }, limits);
}
