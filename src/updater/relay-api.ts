// The updater's calls to the relay's registration port: latest release, download (resumable), the
// group's go-ahead, outcome reports and the connector's own status. Every call is HTTPS over the
// egress dialer (the updater's own proxy route, caller `updater`), authenticated with the
// connector's client certificate and trusting only the relay CA pinned at registration.
import https from 'node:https';
import type http from 'node:http';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../shared/errors.js';
import { createEgressAgent } from '../egress/http.js';
import type { Dialer } from '../egress/types.js';
import type { ConnectorState } from '../connector/state.js';
import type { ConnectorSelf, LeaseAnswer } from '../shared/wire.js';
export type { ConnectorSelf, LeaseAnswer } from '../shared/wire.js';

/** What GET /v1/releases/latest answers (src/relay/releases.ts ReleaseInfo). */
export interface LatestRelease {
  channel: string;
  version: string;
  fileName: string;
  size: number;
  sha256: string;
  signature: string;
  keyId: string;
  publishedAt: string;
  downloadPath: string;
}

export interface DownloadProgress {
  /** Byte offset the download resumed from (0 for a fresh download). */
  resumedFrom: number;
  /** Size of the .part file at the end. */
  bytes: number;
}

export class RelayApi {
  private readonly agent: http.Agent;

  constructor(private readonly base: URL, state: ConnectorState, dialer: Dialer, private readonly timeoutMs: number) {
    this.agent = createEgressAgent({
      dialer, caller: 'updater', keepAlive: false, timeoutMs,
      tls: { caPem: state.caPem, certPem: state.certPem, keyPem: state.keyPem },
    });
  }

  async latest(channel: string): Promise<LatestRelease | undefined> {
    const answer = await this.json<LatestRelease>('GET', `/v1/releases/latest?channel=${encodeURIComponent(channel)}`);
    if (answer.status === 404) return undefined;
    return this.expectOk(answer, 'asking for the latest release');
  }

  async acquireLease(version: string, ttlMs: number): Promise<LeaseAnswer> {
    return this.expectOk(await this.json<LeaseAnswer>('POST', '/v1/updates/lease', { version, ttlMs }), 'asking for the go-ahead');
  }

  async report(version: string, outcome: 'updated' | 'rolled-back' | 'failed', message?: string): Promise<void> {
    this.expectOk(await this.json('POST', '/v1/updates/report', { version, outcome, message }), 'reporting the update outcome');
  }

  async self(): Promise<ConnectorSelf> {
    return this.expectOk(await this.json<ConnectorSelf>('GET', '/v1/connectors/self'), 'asking the relay for this connector\'s status');
  }

  /**
   * Downloads into `partFile`, resuming from its current size with `Range` + `If-Range` (the ETag
   * is the release's SHA-256): a 206 appends, a 200 (the relay does not have that exact file any
   * more, or ignores ranges) starts over. Never touches anything but `partFile`.
   */
  async download(path: string, partFile: string, release: { sha256: string; size: number }, options: { rateLimit?: number; onResume?: (offset: number) => void } = {}): Promise<DownloadProgress> {
    // Not 'a' (O_APPEND): Linux ignores write positions in append mode, and a restart truncates.
    const handle = await open(partFile, existsSync(partFile) ? 'r+' : 'w+');
    try {
      let offset = (await handle.stat()).size;
      if (offset > release.size) {
        await handle.truncate(0);
        offset = 0;
      }
      if (offset === release.size) return { resumedFrom: offset, bytes: offset };
      const etag = `"${release.sha256}"`;
      const headers: http.OutgoingHttpHeaders = offset > 0 ? { range: `bytes=${offset}-`, 'if-range': etag } : {};
      const res = await this.request('GET', path, headers);
      if (res.statusCode !== 200 && res.statusCode !== 206) {
        const text = await readBody(res);
        throw relayError(res.statusCode ?? 0, text, 'downloading the release');
      }
      let written = offset;
      if (res.statusCode === 200) {
        if (offset > 0) await handle.truncate(0);
        written = 0;
      }
      const resumedFrom = written;
      if (resumedFrom > 0) options.onResume?.(resumedFrom);
      const started = Date.now();
      let received = 0;
      for await (const chunk of res as AsyncIterable<Buffer>) {
        await handle.write(chunk, 0, chunk.length, written);
        written += chunk.length;
        received += chunk.length;
        if (options.rateLimit) {
          // Bandwidth cap: stay at or under rateLimit bytes/s on average over this download.
          const ahead = (received / options.rateLimit) * 1000 - (Date.now() - started);
          if (ahead > 5) await sleep(ahead);
        }
      }
      await handle.sync();
      if (written !== release.size) {
        throw new FerryError('ERR_UPDATE_DOWNLOAD_SHORT', `the release download ended at ${written} of ${release.size} bytes`, { retryable: true, fix: 'the next check resumes the download' });
      }
      return { resumedFrom, bytes: written };
    } finally {
      await handle.close();
    }
  }

  private async json<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T; text: string }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const res = await this.request(method, path, payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}, payload);
    const text = await readBody(res);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.statusCode ?? 0, body: parsed as T, text };
  }

  private expectOk<T>(answer: { status: number; body: T; text: string }, what: string): T {
    if (answer.status !== 200 || answer.body === undefined) throw relayError(answer.status, answer.text, what);
    return answer.body;
  }

  private request(method: string, path: string, headers: http.OutgoingHttpHeaders, payload?: string): Promise<http.IncomingMessage> {
    const url = new URL(path, this.base);
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent: this.agent, timeout: this.timeoutMs }, resolve);
      req.on('timeout', () => req.destroy(new FerryError('ERR_RELAY_TIMEOUT', `the relay did not answer ${url.origin} within ${this.timeoutMs} ms`, { retryable: true })));
      req.on('error', reject);
      req.end(payload);
    });
  }
}

async function readBody(res: http.IncomingMessage, limit = 1 << 20): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function relayError(status: number, text: string, what: string): FerryError {
  let message = text.slice(0, 300);
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } };
    if (parsed.error?.message) message = parsed.error.message;
  } catch {
    // not JSON: keep the text
  }
  if (status === 403) {
    return new FerryError('ERR_UPDATE_RELAY_REJECTED', `the relay refused the connector's certificate while ${what}: ${message}`, {
      permanent: true, fix: 're-register the connector; the updater uses the connector\'s identity (connectorStateDir)',
    });
  }
  return new FerryError('ERR_UPDATE_RELAY', `the relay answered ${status} while ${what}: ${message}`, { retryable: status >= 500 || status === 0 });
}
