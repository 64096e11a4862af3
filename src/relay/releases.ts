// Signed connector releases on the relay: the release table and blobs (`ferry release publish`), the
// endpoints the updater polls on the registration port, and the per-group update go-ahead. Every
// endpoint here is authenticated by the connector's client certificate (mTLS), as /v1/renew is.
//
// The go-ahead is a lease per connector group held in SQLite: one connector of a group may update at
// a time, so a group never loses all its connectors at once. A lease ends when its holder reports
// the outcome (updated, rolled back, failed) or when it expires (an updater that died mid-update).
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, copyFileSync, renameSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Database from 'better-sqlite3';
import { z } from 'zod';
import { FerryError, UsageError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { compareVersions, isReleaseVersion, signRelease } from '../shared/release-signing.js';
import type { ConnectorRow, RelayStore } from './store.js';
import type { ConnectorSelf, LeaseAnswer } from '../shared/wire.js';
import { authenticatedConnector, readJson, refuseCertificate, reply } from './api-http.js';

export interface ReleaseRow {
  channel: string;
  version: string;
  fileName: string;
  blobPath: string;
  size: number;
  sha256: string;
  /** Base64 Ed25519 signature over releaseSigningMessage(); see src/shared/release-signing.ts. */
  signature: string;
  keyId: string;
  publishedAt: string;
}

/** What the updater gets from GET /v1/releases/latest. */
export interface ReleaseInfo extends Omit<ReleaseRow, 'blobPath'> {
  /** Path (on the registration port) of the file, with Range support. */
  downloadPath: string;
}

export const DEFAULT_LEASE_TTL_MS = 15 * 60_000;
const LEASE_TTL_BOUNDS = { min: 5_000, max: 2 * 3_600_000 };
const CHANNEL = /^[a-z0-9][a-z0-9._-]{0,31}$/;

interface ReleaseDbRow {
  channel: string; version: string; file_name: string; blob_path: string; size: number; sha256: string; signature: string; key_id: string; published_at: string;
}

export class ReleaseStore {
  private readonly db: Database.Database;

  constructor(store: RelayStore) {
    this.db = store.database;
  }

  add(row: ReleaseRow): void {
    if (this.get(row.channel, row.version)) throw releaseExists(row.channel, row.version);
    this.db.prepare(
      `INSERT INTO releases (channel, version, file_name, blob_path, size, sha256, signature, key_id, published_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(row.channel, row.version, row.fileName, row.blobPath, row.size, row.sha256, row.signature, row.keyId, row.publishedAt);
  }

  get(channel: string, version: string): ReleaseRow | undefined {
    const row = this.db.prepare('SELECT * FROM releases WHERE channel = ? AND version = ?').get(channel, version) as ReleaseDbRow | undefined;
    return row && toRelease(row);
  }

  list(channel?: string): ReleaseRow[] {
    const rows = (channel === undefined
      ? this.db.prepare('SELECT * FROM releases').all()
      : this.db.prepare('SELECT * FROM releases WHERE channel = ?').all(channel)) as ReleaseDbRow[];
    return rows.map(toRelease).sort((a, b) => a.channel.localeCompare(b.channel) || compareVersions(a.version, b.version));
  }

  /** The highest version (semantic-version order) on a channel. */
  latest(channel: string): ReleaseRow | undefined {
    return this.list(channel).at(-1);
  }

  /**
   * Grants the group's go-ahead to `connectorId` unless another connector of the group holds an
   * unexpired lease. The holder asking again extends its lease. IMMEDIATE: two relays (or a relay
   * and a CLI) sharing the file cannot both grant.
   */
  acquireLease(connector: ConnectorRow, targetVersion: string, ttlMs: number, now = new Date()): LeaseAnswer {
    const ttl = Math.min(LEASE_TTL_BOUNDS.max, Math.max(LEASE_TTL_BOUNDS.min, ttlMs));
    return this.db.transaction((): LeaseAnswer => {
      const row = this.db.prepare('SELECT connector_id, target_version, expires_at FROM update_leases WHERE group_name = ?').get(connector.group) as
        | { connector_id: string; target_version: string; expires_at: string }
        | undefined;
      if (row && row.connector_id !== connector.id && row.expires_at > now.toISOString()) {
        const holder = this.db.prepare('SELECT name FROM connectors WHERE id = ?').get(row.connector_id) as { name: string } | undefined;
        return {
          granted: false, group: connector.group, expiresAt: row.expires_at,
          holder: { connectorId: row.connector_id, name: holder?.name, targetVersion: row.target_version },
          retryAfterMs: Math.max(1_000, Math.min(60_000, Date.parse(row.expires_at) - now.getTime())),
        };
      }
      const expiresAt = new Date(now.getTime() + ttl).toISOString();
      this.db.prepare(
        `INSERT INTO update_leases (group_name, connector_id, target_version, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(group_name) DO UPDATE SET connector_id = excluded.connector_id, target_version = excluded.target_version,
           acquired_at = excluded.acquired_at, expires_at = excluded.expires_at`,
      ).run(connector.group, connector.id, targetVersion, now.toISOString(), expiresAt);
      return { granted: true, group: connector.group, expiresAt };
    }).immediate();
  }

  /** Ends the lease if `connectorId` holds it; true when it did. */
  releaseLease(group: string, connectorId: string): boolean {
    return this.db.prepare('DELETE FROM update_leases WHERE group_name = ? AND connector_id = ?').run(group, connectorId).changes > 0;
  }
}

/**
 * `ferry release publish`: hashes and signs the file, copies it into the relay's state folder
 * (releases/<channel>/<version>/<name>, via a temporary name) and records it.
 */
export async function publishRelease(input: {
  store: RelayStore; stateDir: string; file: string; version: string; channel: string; privateKeyPem: string;
}): Promise<ReleaseRow> {
  if (!isReleaseVersion(input.version)) {
    throw new UsageError(`--version "${input.version}" is not a release version`, 'use a semantic version such as 1.4.2 or 2.0.0-rc.1');
  }
  if (!CHANNEL.test(input.channel)) {
    throw new UsageError(`--channel "${input.channel}" is not a valid channel name`, 'use lowercase letters, digits, ".", "_" or "-", e.g. stable or beta');
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(input.file);
  } catch (cause) {
    throw new UsageError(`cannot read the release file ${input.file} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, 'check the path');
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const { signature, keyId } = signRelease({ version: input.version, channel: input.channel, sha256, size: bytes.length }, input.privateKeyPem);
  const releases = new ReleaseStore(input.store);
  const existing = releases.get(input.channel, input.version);
  // Checked before copying, so a refused publish never overwrites the published file.
  if (existing) throw releaseExists(input.channel, input.version);
  const fileName = path.basename(input.file);
  const folder = path.join(input.stateDir, 'releases', input.channel, input.version);
  mkdirSync(folder, { recursive: true, mode: 0o755 });
  const blobPath = path.join(folder, fileName);
  const temp = `${blobPath}.${process.pid}.tmp`;
  copyFileSync(input.file, temp);
  renameSync(temp, blobPath);
  const row: ReleaseRow = {
    channel: input.channel, version: input.version, fileName, blobPath, size: bytes.length, sha256, signature, keyId, publishedAt: new Date().toISOString(),
  };
  releases.add(row);
  return row;
}

function releaseExists(channel: string, version: string): FerryError {
  return new FerryError('ERR_RELEASE_EXISTS', `version ${version} is already published on channel ${channel}`, {
    fix: 'publish under a new version number (published versions are immutable)', permanent: true,
  });
}

// ----- endpoints on the registration port ------------------------------------------------------

export interface ReleaseEndpointOptions {
  store: RelayStore;
  logger: Logger;
  /** Live tunnels of a connector on this relay (the tunnel registry). */
  liveTunnels(connectorId: string): number;
}

const LeaseBody = z.object({ version: z.string().min(1).max(100), ttlMs: z.number().int().positive().optional() });
const ReportBody = z.object({ version: z.string().min(1).max(100), outcome: z.enum(['updated', 'rolled-back', 'failed']), message: z.string().max(2000).optional() });

/** Returns a handler that answers the release/update paths and returns false for any other path. */
export function createReleaseEndpoints(options: ReleaseEndpointOptions): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> {
  const { store, logger } = options;
  const releases = new ReleaseStore(store);

  return async (req, res, url) => {
    const p = url.pathname;
    if (!p.startsWith('/v1/releases/') && !p.startsWith('/v1/updates/') && p !== '/v1/connectors/self') return false;
    const connector = authenticatedConnector(store, req);
    if (!connector) {
      refuseCertificate(res);
      return true;
    }
    const download = /^\/v1\/releases\/([^/]+)\/([^/]+)\/file$/.exec(p);
    if (req.method === 'GET' && p === '/v1/releases/latest') {
      const channel = url.searchParams.get('channel') ?? 'stable';
      const row = releases.latest(channel);
      if (!row) {
        reply(res, 404, { error: { code: 'no-release', message: `no release is published on channel ${channel}` } });
        return true;
      }
      reply(res, 200, toInfo(row));
    } else if (req.method === 'GET' && download) {
      const row = releases.get(decodeURIComponent(download[1]!), decodeURIComponent(download[2]!));
      if (!row) reply(res, 404, { error: { code: 'no-release', message: 'no such release' } });
      else serveFile(req, res, row, logger, connector);
    } else if (req.method === 'GET' && p === '/v1/connectors/self') {
      const live = options.liveTunnels(connector.id);
      const self: ConnectorSelf = {
        connectorId: connector.id, name: connector.name, group: connector.group, version: connector.version, lastSeen: connector.lastSeen,
        liveTunnels: live, online: live > 0,
      };
      reply(res, 200, self);
    } else if (req.method === 'POST' && p === '/v1/updates/lease') {
      const body = LeaseBody.safeParse(await readJson(req));
      if (!body.success) {
        reply(res, 400, { error: { code: 'bad-request', message: 'expected {version, ttlMs?}' } });
        return true;
      }
      const answer = releases.acquireLease(connector, body.data.version, body.data.ttlMs ?? DEFAULT_LEASE_TTL_MS);
      if (answer.granted) logger.info({ connectorId: connector.id, connector: connector.name, group: connector.group, version: body.data.version, expiresAt: answer.expiresAt }, 'update go-ahead granted');
      else logger.info({ connectorId: connector.id, connector: connector.name, group: connector.group, holder: answer.holder.connectorId }, 'update go-ahead refused: another connector of the group is updating');
      reply(res, 200, answer);
    } else if (req.method === 'POST' && p === '/v1/updates/report') {
      const body = ReportBody.safeParse(await readJson(req));
      if (!body.success) {
        reply(res, 400, { error: { code: 'bad-request', message: 'expected {version, outcome, message?}' } });
        return true;
      }
      const released = releases.releaseLease(connector.group, connector.id);
      const fields = { connectorId: connector.id, connector: connector.name, group: connector.group, version: body.data.version, outcome: body.data.outcome, detail: body.data.message, released };
      if (body.data.outcome === 'updated') logger.info(fields, 'update reported: go-ahead released');
      else logger.warn(fields, 'update reported: go-ahead released');
      reply(res, 200, { released });
    } else {
      reply(res, 404, { error: { code: 'not-found', message: `no such endpoint: ${req.method} ${p}` } });
    }
    return true;
  };
}

/**
 * Serves a release file with single-range support (RFC 9110 §14): `Range: bytes=N-` and
 * `bytes=N-M` answer 206, a range past the end 416. The ETag is the file's SHA-256, so an
 * `If-Range` naming another file gets the whole (new) file rather than a mix of two.
 */
function serveFile(req: IncomingMessage, res: ServerResponse, row: ReleaseRow, logger: Logger, connector: ConnectorRow): void {
  let size: number;
  try {
    size = statSync(row.blobPath).size;
  } catch {
    reply(res, 500, { error: { code: 'release-missing', message: 'the release file is missing on the relay; publish it again' } });
    return;
  }
  const etag = `"${row.sha256}"`;
  const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', etag };
  const rangeHeader = req.headers.range;
  const ifRange = req.headers['if-range'];
  let start = 0;
  let end = size - 1;
  let status = 200;
  if (rangeHeader && (ifRange === undefined || ifRange === etag)) {
    const match = /^bytes=(\d*)-(\d*)$/.exec(rangeHeader.trim());
    if (match && (match[1] !== '' || match[2] !== '')) {
      if (match[1] === '') {
        start = Math.max(0, size - Number(match[2]));
      } else {
        start = Number(match[1]);
        if (match[2] !== '') end = Math.min(end, Number(match[2]));
      }
      if (start >= size || start > end) {
        res.writeHead(416, { 'content-range': `bytes */${size}`, etag });
        res.end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${size}`;
    }
  }
  headers['content-length'] = end - start + 1;
  logger.info({ connectorId: connector.id, connector: connector.name, version: row.version, channel: row.channel, start, end, size, status }, 'release download');
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(row.blobPath, { start, end });
  stream.on('error', (error) => {
    logger.error({ err: error }, 'reading a release file failed');
    res.destroy(error);
  });
  stream.pipe(res);
}

function toInfo(row: ReleaseRow): ReleaseInfo {
  const { blobPath: _blob, ...rest } = row;
  return { ...rest, downloadPath: `/v1/releases/${encodeURIComponent(row.channel)}/${encodeURIComponent(row.version)}/file` };
}

function toRelease(row: ReleaseDbRow): ReleaseRow {
  return {
    channel: row.channel, version: row.version, fileName: row.file_name, blobPath: row.blob_path, size: row.size,
    sha256: row.sha256, signature: row.signature, keyId: row.key_id, publishedAt: row.published_at,
  };
}

