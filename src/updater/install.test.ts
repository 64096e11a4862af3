import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FerryError } from '../shared/errors.js';
import { InstallLayout } from './install.js';

function withLayout(fn: (layout: InstallLayout, dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ferry-install-'));
    const layout = new InstallLayout(path.join(dir, 'ferry'));
    layout.ensure();
    try {
      await fn(layout, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function archive(dir: string, version: string, packageVersion = version): string {
  const stage = path.join(dir, `stage-${version}`);
  mkdirSync(stage, { recursive: true });
  writeFileSync(path.join(stage, 'package.json'), JSON.stringify({ version: packageVersion }));
  const file = path.join(dir, `${version}.tar.gz`);
  execFileSync('tar', ['-czf', file, '-C', stage, '.']);
  return file;
}

test('extract, switch current (relative link), prune to the kept versions', withLayout(async (layout, dir) => {
  assert.equal(layout.currentVersion(), undefined);
  for (const version of ['1.0.0', '1.1.0', '1.2.0']) await layout.extract(archive(dir, version), version);
  layout.switchCurrent('1.1.0');
  assert.equal(readlinkSync(layout.currentLink), path.join('versions', '1.1.0'));
  layout.switchCurrent('1.2.0');
  assert.equal(layout.currentVersion(), '1.2.0');
  assert.deepEqual(layout.prune(['1.2.0', '1.1.0']), ['1.0.0']);
  assert.deepEqual(layout.installedVersions(), ['1.1.0', '1.2.0']);
  assert.deepEqual(readdirSync(layout.root).filter((name) => name.includes('tmp')), [], 'no temporary link or folder left');
}));

test('an archive whose package.json names another version is refused and leaves nothing', withLayout(async (layout, dir) => {
  await assert.rejects(layout.extract(archive(dir, '2.0.0', '1.9.0'), '2.0.0'), (error: unknown) => error instanceof FerryError && error.code === 'ERR_UPDATE_ARCHIVE');
  assert.equal(existsSync(layout.versionDir('2.0.0')), false);
  assert.deepEqual(readdirSync(layout.versionsDir), []);
}));

test('a file that is not a tar.gz is refused', withLayout(async (layout, dir) => {
  const bogus = path.join(dir, 'bogus.tar.gz');
  writeFileSync(bogus, 'not an archive');
  await assert.rejects(layout.extract(bogus, '1.0.0'), /not a readable \.tar\.gz/);
  assert.deepEqual(readdirSync(layout.versionsDir), []);
}));

test('switching to a version that is not installed is refused', withLayout((layout) => {
  assert.throws(() => layout.switchCurrent('9.9.9'), /does not exist/);
}));
