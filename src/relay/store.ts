// The relay's embedded store: one SQLite file (better-sqlite3) holding connector groups, connectors,
// apps and registration tokens (hashed). The running relay and the `ferry relay …` CLI commands open
// the same file at the same time, so: WAL mode (readers never block the writer), a 5 s busy timeout,
// schema migrations applied inside IMMEDIATE transactions (two processes opening a fresh file at once
// serialise instead of both creating tables), and dataVersion() so the relay can notice, cheaply, that
// another process committed (e.g. `connectors remove`) and reload.
//
// Times are stored as ISO-8601 UTC strings (Date.toISOString), which sort and compare as text.
// Imports: ../shared only (like all of src/relay, never connector or cli).

import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { FerryError, UsageError } from '../shared/errors.js';
import type { AppMode } from '../shared/published-app.js';

export interface ConnectorRow {
  id: string;
  name: string;
  group: string;
  certFingerprint: string;
  /** ISO-8601 UTC. */
  certNotAfter: string;
  createdAt: string;
  firstSeen: string | null;
  lastSeen: string | null;
  version: string | null;
  remoteAddress: string | null;
  revokedAt: string | null;
}

export interface AppRow {
  name: string;
  externalUrl: string;
  /** Lowercase host[:port] of externalUrl, default port and trailing dot removed: the routing key. */
  externalHost: string;
  internalUrl: string;
  group: string;
  timeoutMs: number;
  mode: AppMode;
  createdAt: string;
}

export type TokenCheck = { ok: true; group: string } | { ok: false; reason: 'unknown' | 'used' | 'expired' };

export const DEFAULT_APP_TIMEOUT_MS = 85_000;
const BUSY_TIMEOUT_MS = 5000;
/** Tokens expired longer than this are deleted; until then a late attempt is told "expired", not "unknown". */
const TOKEN_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Ordered, append-only: migration N is MIGRATIONS[N - 1]. Never edit a released entry; add a new one.
 * `previous_cert_fingerprint` keeps the certificate replaced by the last renewal acceptable, so a
 * connector whose renewal response was lost in transit can still connect with its old certificate.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE connector_groups (
    name        TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL
  );
  CREATE TABLE registration_tokens (
    secret_hash TEXT PRIMARY KEY,
    group_name  TEXT NOT NULL REFERENCES connector_groups(name),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
  );
  CREATE TABLE connectors (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    group_name                TEXT NOT NULL REFERENCES connector_groups(name),
    cert_fingerprint          TEXT NOT NULL UNIQUE,
    previous_cert_fingerprint TEXT,
    cert_not_after            TEXT NOT NULL,
    created_at                TEXT NOT NULL,
    first_seen                TEXT,
    last_seen                 TEXT,
    version                   TEXT,
    remote_address            TEXT,
    revoked_at                TEXT
  );
  CREATE INDEX connectors_by_name ON connectors(name);
  CREATE INDEX connectors_by_previous_fingerprint ON connectors(previous_cert_fingerprint);
  CREATE TABLE apps (
    name          TEXT PRIMARY KEY,
    external_url  TEXT NOT NULL,
    external_host TEXT NOT NULL UNIQUE,
    internal_url  TEXT NOT NULL,
    group_name    TEXT NOT NULL REFERENCES connector_groups(name),
    timeout_ms    INTEGER NOT NULL,
    created_at    TEXT NOT NULL
  );
  `,
  // 2: signed connector releases and the per-group update go-ahead (src/relay/releases.ts).
  `
  CREATE TABLE releases (
    channel       TEXT NOT NULL,
    version       TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    blob_path     TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    signature     TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    published_at  TEXT NOT NULL,
    PRIMARY KEY (channel, version)
  );
  CREATE TABLE update_leases (
    group_name     TEXT PRIMARY KEY REFERENCES connector_groups(name),
    connector_id   TEXT NOT NULL,
    target_version TEXT NOT NULL,
    acquired_at    TEXT NOT NULL,
    expires_at     TEXT NOT NULL
  );
  `,
  // 3: how the connector carries an app's traffic (http: reads every request; passthrough: bytes).
  `ALTER TABLE apps ADD COLUMN mode TEXT NOT NULL DEFAULT 'http' CHECK (mode IN ('http', 'passthrough'));`,
];

interface ConnectorDbRow {
  id: string;
  name: string;
  group_name: string;
  cert_fingerprint: string;
  cert_not_after: string;
  created_at: string;
  first_seen: string | null;
  last_seen: string | null;
  version: string | null;
  remote_address: string | null;
  revoked_at: string | null;
}

interface AppDbRow {
  name: string;
  external_url: string;
  external_host: string;
  internal_url: string;
  group_name: string;
  timeout_ms: number;
  mode: AppMode;
  created_at: string;
}

export class RelayStore {
  private constructor(private readonly db: Database.Database) {}

  /** Opens (creating if needed: parent folder 0700, file 0600) and migrates the store at `file`. */
  static open(file: string): RelayStore {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // Create the file ourselves so it is never world-readable, even for a moment.
    closeSync(openSync(file, 'a', 0o600));
    chmodSync(file, 0o600);
    let db: Database.Database;
    try {
      db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    } catch (cause) {
      throw new FerryError('ERR_STORE_OPEN', `cannot open the relay store ${file}`, {
        cause,
        fix: 'check that the file is a Ferry relay store and that this user may read and write it',
        permanent: true,
      });
    }
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db, file);
    } catch (error) {
      db.close();
      if (error instanceof FerryError) throw error;
      throw new FerryError('ERR_STORE_OPEN', `cannot use the relay store ${file}`, {
        cause: error,
        fix: 'check that the file is a Ferry relay store (not another SQLite file) and is not damaged',
        permanent: true,
      });
    }
    return new RelayStore(db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** The connection itself, for feature stores that keep their own tables in this file (releases.ts). */
  get database(): Database.Database {
    return this.db;
  }

  /** Changes whenever ANOTHER connection (e.g. a CLI command) commits; poll it to know when to reload. */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  // ----- registration tokens -----------------------------------------------------------------------

  createToken(input: { secretHash: string; group: string; expiresAt: Date }): void {
    const now = new Date();
    this.db.transaction(() => {
      this.ensureGroup(input.group, now);
      this.db
        .prepare('DELETE FROM registration_tokens WHERE expires_at < ?')
        .run(new Date(now.getTime() - TOKEN_RETENTION_MS).toISOString());
      this.db
        .prepare('INSERT INTO registration_tokens (secret_hash, group_name, created_at, expires_at) VALUES (?, ?, ?, ?)')
        .run(input.secretHash, input.group, now.toISOString(), input.expiresAt.toISOString());
    })();
  }

  /** Atomically checks and uses a token: exactly one caller ever gets ok for a given secret. */
  consumeToken(secretHash: string, now: Date = new Date()): TokenCheck {
    const check = this.db.transaction((): TokenCheck => {
      const row = this.db
        .prepare('SELECT group_name, expires_at, used_at FROM registration_tokens WHERE secret_hash = ?')
        .get(secretHash) as { group_name: string; expires_at: string; used_at: string | null } | undefined;
      if (!row) return { ok: false, reason: 'unknown' };
      if (row.used_at !== null) return { ok: false, reason: 'used' };
      if (row.expires_at <= now.toISOString()) return { ok: false, reason: 'expired' };
      this.db.prepare('UPDATE registration_tokens SET used_at = ? WHERE secret_hash = ?').run(now.toISOString(), secretHash);
      return { ok: true, group: row.group_name };
    });
    // IMMEDIATE takes the write lock before reading, so two processes cannot both see "unused".
    return check.immediate();
  }

  // ----- connectors --------------------------------------------------------------------------------

  addConnector(input: { id: string; name: string; group: string; certFingerprint: string; certNotAfter: Date }): ConnectorRow {
    const now = new Date();
    this.db.transaction(() => {
      this.ensureGroup(input.group, now);
      this.db
        .prepare(
          `INSERT INTO connectors (id, name, group_name, cert_fingerprint, cert_not_after, created_at)
           VALUES (?, ?, ?, ?, ?, ?)`,
        )
        .run(input.id, input.name, input.group, input.certFingerprint, input.certNotAfter.toISOString(), now.toISOString());
    })();
    return this.getConnector(input.id)!;
  }

  getConnector(id: string): ConnectorRow | undefined {
    const row = this.db.prepare('SELECT * FROM connectors WHERE id = ?').get(id) as ConnectorDbRow | undefined;
    return row && toConnector(row);
  }

  /**
   * The connector holding this certificate, revoked or not (the caller refuses revoked ones). Also
   * matches the certificate replaced by the connector's latest renewal (see MIGRATIONS).
   */
  findConnectorByFingerprint(fingerprint: string): ConnectorRow | undefined {
    const row = (this.db.prepare('SELECT * FROM connectors WHERE cert_fingerprint = ?').get(fingerprint) ??
      this.db.prepare('SELECT * FROM connectors WHERE previous_cert_fingerprint = ?').get(fingerprint)) as
      | ConnectorDbRow
      | undefined;
    return row && toConnector(row);
  }

  listConnectors(): ConnectorRow[] {
    const rows = this.db.prepare('SELECT * FROM connectors ORDER BY created_at, id').all() as ConnectorDbRow[];
    return rows.map(toConnector);
  }

  renewConnectorCert(id: string, certFingerprint: string, certNotAfter: Date): void {
    const result = this.db
      .prepare(
        `UPDATE connectors SET previous_cert_fingerprint = cert_fingerprint, cert_fingerprint = ?, cert_not_after = ?
         WHERE id = ? AND revoked_at IS NULL`,
      )
      .run(certFingerprint, certNotAfter.toISOString(), id);
    if (result.changes === 0) {
      throw new FerryError('ERR_CONNECTOR_UNKNOWN', `connector ${id} is unknown or revoked; its certificate cannot be renewed`, {
        fix: 'register the connector again with a new token from `ferry relay token create`',
        permanent: true,
      });
    }
  }

  /** Records a tunnel arrival: lastSeen always, firstSeen the first time, version/address when given. */
  touchConnector(id: string, seen: { at: Date; version?: string; remoteAddress?: string }): void {
    const at = seen.at.toISOString();
    this.db
      .prepare(
        `UPDATE connectors SET first_seen = COALESCE(first_seen, ?), last_seen = ?,
           version = COALESCE(?, version), remote_address = COALESCE(?, remote_address)
         WHERE id = ?`,
      )
      .run(at, at, seen.version ?? null, seen.remoteAddress ?? null, id);
  }

  /**
   * Revokes by id, or else by name. A name shared by several active connectors is refused (use the id).
   * Revoking an already revoked connector returns it unchanged. Undefined when nothing matches.
   */
  revokeConnector(idOrName: string): ConnectorRow | undefined {
    const revoke = this.db.transaction((): string | undefined => {
      const byId = this.db.prepare('SELECT id, revoked_at FROM connectors WHERE id = ?').get(idOrName) as
        | { id: string; revoked_at: string | null }
        | undefined;
      let id: string | undefined = byId?.id;
      if (id === undefined) {
        const active = this.db
          .prepare('SELECT id FROM connectors WHERE name = ? AND revoked_at IS NULL')
          .all(idOrName) as { id: string }[];
        if (active.length > 1) {
          throw new FerryError('ERR_CONNECTOR_AMBIGUOUS', `${active.length} connectors are named "${idOrName}"`, {
            fix: 'name the connector by its id (see `ferry relay connectors list`)',
            permanent: true,
          });
        }
        id = active[0]?.id;
        if (id === undefined) {
          const revoked = this.db
            .prepare('SELECT id FROM connectors WHERE name = ? ORDER BY revoked_at DESC LIMIT 1')
            .get(idOrName) as { id: string } | undefined;
          return revoked?.id;
        }
      }
      this.db.prepare('UPDATE connectors SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(new Date().toISOString(), id);
      return id;
    });
    const id = revoke.immediate();
    return id === undefined ? undefined : this.getConnector(id);
  }

  // ----- apps --------------------------------------------------------------------------------------

  addApp(input: { name: string; externalUrl: string; internalUrl: string; group: string; timeoutMs?: number; mode?: AppMode }): AppRow {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(input.name)) {
      throw new UsageError(
        `the app name "${input.name}" is not valid`,
        'use letters, digits, ".", "_" and "-" (up to 63 characters), starting with a letter or digit',
      );
    }
    const external = parseAppUrl(input.externalUrl, '--external');
    const internal = parseAppUrl(input.internalUrl, '--internal');
    if (external.pathname !== '/' || external.search !== '') {
      throw new UsageError(
        `the external URL ${input.externalUrl} has a path; apps are routed by host name only`,
        `use just the scheme and host, e.g. ${external.protocol}//${external.host}/`,
      );
    }
    const timeoutMs = input.timeoutMs ?? DEFAULT_APP_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new UsageError(`the app timeout ${timeoutMs} ms is not valid`, 'give a positive whole number of milliseconds');
    }
    const mode = input.mode ?? 'http';
    if (mode === 'passthrough' && (internal.protocol !== 'http:' || internal.pathname !== '/' || internal.search !== '')) {
      throw new UsageError(
        `a passthrough app carries bytes unchanged, so its internal URL must be plain http without a path (got ${input.internalUrl})`,
        `use e.g. --internal http://${internal.host}/, or publish it without --passthrough`,
      );
    }
    const externalHost = hostKey(external.hostname, external.port);
    const now = new Date();
    this.db
      .transaction(() => {
        const clash = this.db
          .prepare('SELECT name, external_host FROM apps WHERE name = ? OR external_host = ?')
          .get(input.name, externalHost) as { name: string; external_host: string } | undefined;
        if (clash) {
          const what = clash.name === input.name ? `an app named "${input.name}"` : `app "${clash.name}" already uses host ${externalHost}`;
          throw new FerryError('ERR_APP_EXISTS', clash.name === input.name ? `${what} already exists` : what, {
            fix: 'choose another name or external host, or remove the existing app first (`ferry relay app remove NAME`)',
            permanent: true,
          });
        }
        this.ensureGroup(input.group, now);
        this.db
          .prepare(
            `INSERT INTO apps (name, external_url, external_host, internal_url, group_name, timeout_ms, mode, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(input.name, external.href, externalHost, internal.href, input.group, timeoutMs, mode, now.toISOString());
      })
      .immediate();
    return toApp(this.db.prepare('SELECT * FROM apps WHERE name = ?').get(input.name) as AppDbRow);
  }

  removeApp(name: string): boolean {
    return this.db.prepare('DELETE FROM apps WHERE name = ?').run(name).changes > 0;
  }

  listApps(): AppRow[] {
    return (this.db.prepare('SELECT * FROM apps ORDER BY name').all() as AppDbRow[]).map(toApp);
  }

  /** Looks up an app by a request's Host (or :authority): case-insensitive, trailing dot and default ports tolerated. */
  findAppByHost(host: string): AppRow | undefined {
    const keys = hostLookupKeys(host);
    const select = this.db.prepare('SELECT * FROM apps WHERE external_host = ?');
    for (const key of keys) {
      const row = select.get(key) as AppDbRow | undefined;
      if (row) return toApp(row);
    }
    return undefined;
  }

  /** A group exists once a token, connector or app names it. */
  groupExists(group: string): boolean {
    return this.db.prepare('SELECT 1 FROM connector_groups WHERE name = ?').get(group) !== undefined;
  }

  private ensureGroup(group: string, now: Date): void {
    if (group.trim() === '' || group !== group.trim()) {
      throw new UsageError(`the group name "${group}" is not valid`, 'give a non-empty group name without surrounding spaces');
    }
    this.db.prepare('INSERT OR IGNORE INTO connector_groups (name, created_at) VALUES (?, ?)').run(group, now.toISOString());
  }
}

// -----------------------------------------------------------------------------------------------------

function migrate(db: Database.Database, file: string): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  db.transaction(() => {
    const current = (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v;
    if (current > MIGRATIONS.length) {
      throw new FerryError(
        'ERR_STORE_NEWER',
        `the relay store ${file} has schema version ${current}, newer than this ferry (${MIGRATIONS.length})`,
        { fix: 'run the newer ferry version that last used this store', permanent: true },
      );
    }
    for (let version = current + 1; version <= MIGRATIONS.length; version++) {
      db.exec(MIGRATIONS[version - 1]!);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, new Date().toISOString());
    }
  }).immediate();
}

function parseAppUrl(value: string, flag: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${flag} ${value} is not a URL`, `write a full URL, e.g. ${flag} https://app.example.com/`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${flag} ${value} uses ${url.protocol}; only http and https are supported`, `write an http:// or https:// URL`);
  }
  if (url.username || url.password) {
    throw new UsageError(`${flag} URL must not contain a user name or password`, 'remove the "user:password@" part');
  }
  if (url.hash) {
    throw new UsageError(`${flag} ${value} has a #fragment`, 'remove the "#..." part');
  }
  return url;
}

/** The stored routing key: WHATWG URL has already lowercased the host and dropped the scheme's default port. */
function hostKey(hostname: string, port: string): string {
  const bare = hostname.replace(/\.$/, '');
  return port ? `${bare}:${port}` : bare;
}

/** Candidate keys for a Host header, most specific first. */
function hostLookupKeys(host: string): string[] {
  let url: URL;
  try {
    url = new URL(`http://${host.trim()}`);
  } catch {
    return [];
  }
  if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) return [];
  const exact = hostKey(url.hostname, url.port);
  // Ports 80 and 443 count as "default" whichever the scheme: a Host of "app.example:443" finds
  // https://app.example/, and a bare "app.example" finds an app registered with an explicit :443.
  if (url.port !== '' && url.port !== '443') return [exact];
  const bare = hostKey(url.hostname, '');
  return [...new Set([exact, bare, `${bare}:443`, `${bare}:80`])];
}

function toConnector(row: ConnectorDbRow): ConnectorRow {
  return {
    id: row.id,
    name: row.name,
    group: row.group_name,
    certFingerprint: row.cert_fingerprint,
    certNotAfter: row.cert_not_after,
    createdAt: row.created_at,
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
    version: row.version,
    remoteAddress: row.remote_address,
    revokedAt: row.revoked_at,
  };
}

function toApp(row: AppDbRow): AppRow {
  return {
    name: row.name,
    externalUrl: row.external_url,
    externalHost: row.external_host,
    internalUrl: row.internal_url,
    group: row.group_name,
    timeoutMs: row.timeout_ms,
    mode: row.mode,
    createdAt: row.created_at,
  };
}
