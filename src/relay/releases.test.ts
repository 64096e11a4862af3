import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FerryError } from '../shared/errors.js';
import { generateReleaseKeyPair, verifyRelease } from '../shared/release-signing.js';
import { RelayStore } from './store.js';
import { ReleaseStore, publishRelease } from './releases.js';

function withStore(fn: (store: RelayStore, dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ferry-releases-'));
    const store = RelayStore.open(path.join(dir, 'relay.db'));
    try {
      await fn(store, dir);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function connector(store: RelayStore, id: string, group: string) {
  return store.addConnector({ id, name: id, group, certFingerprint: `fp-${id}`, certNotAfter: new Date(Date.now() + 86_400_000) });
}

test('publish signs, copies and records; the latest is the highest version; versions are immutable', withStore(async (store, dir) => {
  const pair = generateReleaseKeyPair();
  const file = path.join(dir, 'ferry.tar.gz');
  writeFileSync(file, 'release bytes');
  for (const version of ['1.2.0', '1.10.0', '1.9.9']) {
    await publishRelease({ store, stateDir: dir, file, version, channel: 'stable', privateKeyPem: pair.privateKeyPem });
  }
  const releases = new ReleaseStore(store);
  const latest = releases.latest('stable')!;
  assert.equal(latest.version, '1.10.0');
  assert.equal(readFileSync(latest.blobPath, 'utf8'), 'release bytes');
  assert.ok(verifyRelease({ version: latest.version, channel: 'stable', sha256: latest.sha256, size: latest.size }, latest.signature, [pair.publicKeyPem]));
  assert.equal(releases.latest('beta'), undefined);
  await assert.rejects(
    publishRelease({ store, stateDir: dir, file, version: '1.2.0', channel: 'stable', privateKeyPem: pair.privateKeyPem }),
    (error: unknown) => error instanceof FerryError && error.code === 'ERR_RELEASE_EXISTS',
  );
  await assert.rejects(publishRelease({ store, stateDir: dir, file, version: 'latest', channel: 'stable', privateKeyPem: pair.privateKeyPem }), /not a release version/);
}));

test('one connector per group holds the go-ahead until it reports or the lease expires', withStore((store) => {
  const releases = new ReleaseStore(store);
  const [a, b, other] = [connector(store, 'a', 'g'), connector(store, 'b', 'g'), connector(store, 'c', 'h')];
  const t0 = new Date('2026-01-01T00:00:00Z');
  assert.equal(releases.acquireLease(a, '1.1.0', 60_000, t0).granted, true);
  const refused = releases.acquireLease(b, '1.1.0', 60_000, t0);
  assert.equal(refused.granted, false);
  assert.equal(!refused.granted && refused.holder.connectorId, 'a');
  // Another group is independent; the holder may ask again (extends).
  assert.equal(releases.acquireLease(other, '1.1.0', 60_000, t0).granted, true);
  assert.equal(releases.acquireLease(a, '1.1.0', 60_000, new Date(t0.getTime() + 30_000)).granted, true);
  // Only the holder releases it.
  assert.equal(releases.releaseLease('g', 'b'), false);
  assert.equal(releases.releaseLease('g', 'a'), true);
  assert.equal(releases.acquireLease(b, '1.1.0', 60_000, t0).granted, true);
  // An expired lease (its updater died) is taken over.
  assert.equal(releases.acquireLease(a, '1.1.0', 60_000, new Date(t0.getTime() + 61_000)).granted, true);
}));
