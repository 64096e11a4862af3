import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import Database from 'better-sqlite3';
import { RelayStore } from './store.js';
import { FerryError, UsageError } from '../shared/errors.js';

const HOUR = 60 * 60 * 1000;
const STORE_MODULE = new URL('./store.js', import.meta.url).href;

/** Runs `body` in a separate node process with `store` opened on `path`; resolves with its stdout. */
function inChild(path: string, body: string): Promise<string> {
  const script = `import { RelayStore } from ${JSON.stringify(STORE_MODULE)};
const store = RelayStore.open(${JSON.stringify(path)});
try { ${body} } finally { store.close(); }`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`child failed: ${stderr || error.message}`));
      else resolve(stdout.trim());
    });
  });
}

describe('RelayStore', () => {
  let dir: string;
  let file: string;
  const opened: RelayStore[] = [];
  let counter = 0;

  function open(path = file): RelayStore {
    const store = RelayStore.open(path);
    opened.push(store);
    return store;
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-store-'));
  });
  // Each test gets a fresh file so tests do not depend on one another.
  afterEach(() => {
    for (const store of opened.splice(0)) store.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function freshFile(): string {
    file = join(dir, `nested-${++counter}`, 'relay.db');
    return file;
  }

  it('creates the folder and a 0600 file, in WAL mode, and migrates idempotently on reopen', () => {
    open(freshFile()).close();
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const store = open();
    store.createToken({ secretHash: 'h', group: 'g', expiresAt: new Date(Date.now() + HOUR) });
    store.close();
    open().close();
    const raw = new Database(file, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      const versions = raw.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
      assert.deepEqual(versions.map((row) => row.version), [1, 2, 3]);
      assert.equal((raw.prepare('SELECT COUNT(*) AS n FROM registration_tokens').get() as { n: number }).n, 1);
    } finally {
      raw.close();
    }
  });

  it('refuses a store written by a newer ferry', () => {
    open(freshFile()).close();
    const raw = new Database(file);
    raw.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (99, ?)').run(new Date().toISOString());
    raw.close();
    assert.throws(() => open(), { code: 'ERR_STORE_NEWER' });
  });

  it('uses a token exactly once, and refuses unknown and expired ones', () => {
    const store = open(freshFile());
    const now = new Date();
    store.createToken({ secretHash: 'a', group: 'default', expiresAt: new Date(now.getTime() + HOUR) });
    store.createToken({ secretHash: 'b', group: 'default', expiresAt: new Date(now.getTime() + HOUR) });
    assert.deepEqual(store.consumeToken('a', now), { ok: true, group: 'default' });
    assert.deepEqual(store.consumeToken('a', now), { ok: false, reason: 'used' });
    assert.deepEqual(store.consumeToken('nope', now), { ok: false, reason: 'unknown' });
    assert.deepEqual(store.consumeToken('b', new Date(now.getTime() + 2 * HOUR)), { ok: false, reason: 'expired' });
    // An expired refusal does not use the token up: it stays expired, not used.
    assert.deepEqual(store.consumeToken('b', new Date(now.getTime() + 2 * HOUR)), { ok: false, reason: 'expired' });
  });

  it('lets only one of two connections consume the same token', () => {
    const first = open(freshFile());
    const second = open();
    first.createToken({ secretHash: 't', group: 'g', expiresAt: new Date(Date.now() + HOUR) });
    const results = [first.consumeToken('t'), second.consumeToken('t')];
    assert.equal(results.filter((result) => result.ok).length, 1);
    assert.deepEqual(results[1], { ok: false, reason: 'used' });
  });

  it('survives several processes migrating a new file and racing for one token', async () => {
    const path = freshFile();
    const opens = await Promise.all(Array.from({ length: 4 }, () => inChild(path, 'console.log("open");')));
    assert.deepEqual(opens, ['open', 'open', 'open', 'open']);
    const store = open(path);
    store.createToken({ secretHash: 'race', group: 'g', expiresAt: new Date(Date.now() + HOUR) });
    const results = await Promise.all(
      Array.from({ length: 6 }, () => inChild(path, 'console.log(JSON.stringify(store.consumeToken("race")));')),
    );
    const parsed = results.map((line) => JSON.parse(line) as { ok: boolean; reason?: string });
    assert.equal(parsed.filter((result) => result.ok).length, 1, results.join('\n'));
    assert.equal(parsed.filter((result) => result.reason === 'used').length, 5);
  });

  it('shows one connection the commits of another, and dataVersion changes', () => {
    const relay = open(freshFile());
    const cli = open();
    const before = relay.dataVersion();
    assert.equal(relay.dataVersion(), before, 'stable without commits');
    cli.addApp({ name: 'web', externalUrl: 'https://web.example.test/', internalUrl: 'http://10.0.0.5:8080', group: 'g' });
    const afterApp = relay.dataVersion();
    assert.notEqual(afterApp, before);
    assert.equal(relay.findAppByHost('web.example.test')?.name, 'web');
    // The relay's own writes do not move its own data_version.
    relay.touchConnector('none', { at: new Date() });
    assert.equal(relay.dataVersion(), afterApp);
  });

  it('adds, finds, touches, renews and lists connectors', () => {
    const store = open(freshFile());
    const notAfter = new Date(Date.now() + 30 * 24 * HOUR);
    const row = store.addConnector({ id: 'c1', name: 'host-a', group: 'g', certFingerprint: 'f1', certNotAfter: notAfter });
    assert.equal(row.id, 'c1');
    assert.equal(row.group, 'g');
    assert.equal(row.certNotAfter, notAfter.toISOString());
    assert.equal(row.firstSeen, null);
    assert.equal(row.revokedAt, null);
    assert.ok(store.groupExists('g'));

    const t1 = new Date('2026-01-01T00:00:00.000Z');
    const t2 = new Date('2026-01-02T00:00:00.000Z');
    store.touchConnector('c1', { at: t1, version: '0.1.0', remoteAddress: '127.0.0.1' });
    store.touchConnector('c1', { at: t2 });
    const seen = store.getConnector('c1')!;
    assert.equal(seen.firstSeen, t1.toISOString());
    assert.equal(seen.lastSeen, t2.toISOString());
    assert.equal(seen.version, '0.1.0');
    assert.equal(seen.remoteAddress, '127.0.0.1');

    assert.equal(store.findConnectorByFingerprint('f1')?.id, 'c1');
    store.renewConnectorCert('c1', 'f2', new Date(notAfter.getTime() + HOUR));
    assert.equal(store.findConnectorByFingerprint('f2')?.certFingerprint, 'f2');
    assert.equal(store.findConnectorByFingerprint('f1')?.id, 'c1', 'the replaced certificate stays usable once');
    store.renewConnectorCert('c1', 'f3', new Date(notAfter.getTime() + 2 * HOUR));
    assert.equal(store.findConnectorByFingerprint('f1'), undefined);
    assert.equal(store.findConnectorByFingerprint('unknown'), undefined);

    store.addConnector({ id: 'c2', name: 'host-b', group: 'g2', certFingerprint: 'g1', certNotAfter: notAfter });
    assert.deepEqual(store.listConnectors().map((c) => c.id).sort(), ['c1', 'c2']);
    assert.throws(() => store.renewConnectorCert('missing', 'x', notAfter), { code: 'ERR_CONNECTOR_UNKNOWN' });
  });

  it('revokes by id or name; revoked rows stay findable by fingerprint and cannot renew', () => {
    const store = open(freshFile());
    const notAfter = new Date(Date.now() + HOUR);
    store.addConnector({ id: 'c1', name: 'alpha', group: 'g', certFingerprint: 'f1', certNotAfter: notAfter });
    store.addConnector({ id: 'c2', name: 'beta', group: 'g', certFingerprint: 'f2', certNotAfter: notAfter });
    store.addConnector({ id: 'c3', name: 'beta', group: 'g', certFingerprint: 'f3', certNotAfter: notAfter });

    const revoked = store.revokeConnector('c1');
    assert.ok(revoked?.revokedAt);
    assert.equal(store.findConnectorByFingerprint('f1')?.revokedAt, revoked.revokedAt);
    assert.equal(store.revokeConnector('c1')?.revokedAt, revoked.revokedAt, 'idempotent');
    assert.equal(store.revokeConnector('alpha')?.id, 'c1');
    assert.throws(() => store.renewConnectorCert('c1', 'x', notAfter), { code: 'ERR_CONNECTOR_UNKNOWN' });

    assert.throws(() => store.revokeConnector('beta'), (error: unknown) => error instanceof FerryError && error.code === 'ERR_CONNECTOR_AMBIGUOUS');
    assert.equal(store.revokeConnector('c2')?.id, 'c2');
    assert.equal(store.revokeConnector('beta')?.id, 'c3', 'one active "beta" left');
    assert.equal(store.revokeConnector('nobody'), undefined);
    assert.ok(store.listConnectors().every((c) => c.revokedAt !== null));
  });

  it('adds apps, normalises the external host, and refuses duplicates and bad URLs', () => {
    const store = open(freshFile());
    const app = store.addApp({ name: 'web', externalUrl: 'https://Web.Example.TEST:443', internalUrl: 'http://127.0.0.1:8080/base', group: 'g' });
    assert.equal(app.externalHost, 'web.example.test');
    assert.equal(app.externalUrl, 'https://web.example.test/');
    assert.equal(app.internalUrl, 'http://127.0.0.1:8080/base');
    assert.equal(app.timeoutMs, 85_000);
    assert.ok(store.groupExists('g'));

    const other = store.addApp({ name: 'api', externalUrl: 'https://api.localhost:8443/', internalUrl: 'https://10.1.1.1', group: 'g2', timeoutMs: 1000 });
    assert.equal(other.externalHost, 'api.localhost:8443');
    assert.equal(other.timeoutMs, 1000);

    assert.throws(
      () => store.addApp({ name: 'web', externalUrl: 'https://x.test/', internalUrl: 'http://a', group: 'g' }),
      (error: unknown) => error instanceof FerryError && error.code === 'ERR_APP_EXISTS' && /already exists/.test(error.message),
    );
    assert.throws(
      () => store.addApp({ name: 'web2', externalUrl: 'https://WEB.example.test./', internalUrl: 'http://a', group: 'g' }),
      (error: unknown) => error instanceof FerryError && error.code === 'ERR_APP_EXISTS' && /"web"/.test(error.message),
    );
    for (const [externalUrl, internalUrl, pattern] of [
      ['ftp://x.test/', 'http://a', /only http and https/],
      ['x.test', 'http://a', /not a URL/],
      ['https://x.test/', 'ws://a', /only http and https/],
      ['https://user:pw@x.test/', 'http://a', /user name or password/],
      ['https://x.test/path', 'http://a', /has a path/],
    ] as const) {
      assert.throws(
        () => store.addApp({ name: 'bad', externalUrl, internalUrl, group: 'g' }),
        (error: unknown) => error instanceof UsageError && pattern.test(error.message) && Boolean(error.fix),
      );
    }
    assert.throws(() => store.addApp({ name: 'no spaces', externalUrl: 'https://y.test/', internalUrl: 'http://a', group: 'g' }), UsageError);
    assert.throws(() => store.addApp({ name: 'ok', externalUrl: 'https://y.test/', internalUrl: 'http://a', group: '' }), UsageError);
    assert.deepEqual(store.listApps().map((a) => a.name), ['api', 'web']);
    assert.equal(store.groupExists('nobody-named-this'), false);
    assert.equal(app.mode, 'http', 'apps read their requests unless told otherwise');
    for (const internalUrl of ['https://10.0.0.9/', 'http://10.0.0.9/base']) {
      assert.throws(
        () => store.addApp({ name: 'pass', externalUrl: 'https://pass.test/', internalUrl, group: 'g', mode: 'passthrough' }),
        (error: unknown) => error instanceof UsageError && /passthrough/.test(error.message) && Boolean(error.fix),
      );
    }
    assert.equal(store.addApp({ name: 'pass', externalUrl: 'https://pass.test/', internalUrl: 'http://10.0.0.9:8080', group: 'g', mode: 'passthrough' }).mode, 'passthrough');
    assert.equal(store.removeApp('pass'), true);

    assert.equal(store.removeApp('web'), true);
    assert.equal(store.removeApp('web'), false);
    assert.deepEqual(store.listApps().map((a) => a.name), ['api']);
  });

  it('finds apps by Host tolerantly', () => {
    const store = open(freshFile());
    store.addApp({ name: 'web', externalUrl: 'https://web.example.test/', internalUrl: 'http://a', group: 'g' });
    store.addApp({ name: 'demo', externalUrl: 'https://demo.localhost:8443/', internalUrl: 'http://b', group: 'g' });
    store.addApp({ name: 'v6', externalUrl: 'http://[::1]:9000/', internalUrl: 'http://c', group: 'g' });
    for (const host of ['web.example.test', 'WEB.Example.Test', 'web.example.test.', 'web.example.test:443', 'web.example.test.:443', 'web.example.test:80']) {
      assert.equal(store.findAppByHost(host)?.name, 'web', host);
    }
    assert.equal(store.findAppByHost('demo.localhost:8443')?.name, 'demo');
    assert.equal(store.findAppByHost('DEMO.localhost.:8443')?.name, 'demo');
    assert.equal(store.findAppByHost('[::1]:9000')?.name, 'v6');
    for (const host of ['demo.localhost', 'demo.localhost:9999', 'web.example.test:8443', 'other.test', '', 'a b', 'x/y', 'u@web.example.test']) {
      assert.equal(store.findAppByHost(host), undefined, host);
    }
  });
});
