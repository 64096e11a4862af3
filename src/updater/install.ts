// The install folder the updater owns:
//   versions/<version>/   one extracted release each (the last two are kept)
//   current               symlink → versions/<version>, switched atomically (rename of a temp link)
//   downloads/            <channel>-<version>.part while downloading (+ .part.json: what it is)
//   updater-state.json    versions that were rolled back or rejected, so they are not retried
// Nothing outside this folder is written, and a version folder appears only complete (extracted
// into a temporary folder, then renamed).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { FerryError } from '../shared/errors.js';
import { compareVersions, isReleaseVersion } from '../shared/release-signing.js';

const run = promisify(execFile);

export interface UpdaterRecord {
  /** "channel/version" → why it is not installed again (rolled back). A newer release is still taken. */
  failed: Record<string, string>;
  /** "channel/version" → SHA-256 the relay advertised when its signature did not verify. */
  rejected: Record<string, string>;
}

export class InstallLayout {
  constructor(readonly root: string) {}

  get versionsDir(): string { return path.join(this.root, 'versions'); }
  get currentLink(): string { return path.join(this.root, 'current'); }
  get downloadsDir(): string { return path.join(this.root, 'downloads'); }
  versionDir(version: string): string { return path.join(this.versionsDir, version); }

  ensure(): void {
    for (const dir of [this.root, this.versionsDir, this.downloadsDir]) mkdirSync(dir, { recursive: true, mode: 0o755 });
  }

  /** The version `current` points at, or undefined when there is no (valid) link. */
  currentVersion(): string | undefined {
    try {
      const version = path.basename(readlinkSync(this.currentLink));
      return isReleaseVersion(version) && existsSync(this.versionDir(version)) ? version : undefined;
    } catch {
      return undefined;
    }
  }

  installedVersions(): string[] {
    if (!existsSync(this.versionsDir)) return [];
    return readdirSync(this.versionsDir).filter(isReleaseVersion).sort(compareVersions);
  }

  /**
   * Extracts a verified release archive (gzip tar) into versions/<version>/ via a temporary folder.
   * The archive's package.json, when present, must name the same version: the connector reports
   * that version to the relay, which is how the update is confirmed.
   */
  async extract(archive: string, version: string): Promise<string> {
    const target = this.versionDir(version);
    const temp = path.join(this.versionsDir, `.${version}.tmp-${process.pid}`);
    rmSync(temp, { recursive: true, force: true });
    mkdirSync(temp, { recursive: true, mode: 0o755 });
    try {
      // GNU tar strips leading "/" and refuses ".." members; the archive is signed by a pinned key anyway.
      await run('tar', ['-xzf', archive, '-C', temp, '--no-same-owner', '--no-same-permissions']);
    } catch (cause) {
      rmSync(temp, { recursive: true, force: true });
      throw new FerryError('ERR_UPDATE_ARCHIVE', `the release ${version} is not a readable .tar.gz archive`, { cause, fix: 'publish a gzip-compressed tar of the install root (see README, "Connector updates")' });
    }
    const manifest = path.join(temp, 'package.json');
    if (existsSync(manifest)) {
      let named: unknown;
      try {
        named = (JSON.parse(readFileSync(manifest, 'utf8')) as { version?: unknown }).version;
      } catch {
        named = undefined;
      }
      if (named !== version) {
        rmSync(temp, { recursive: true, force: true });
        throw new FerryError('ERR_UPDATE_ARCHIVE', `the release was published as ${version} but its package.json says ${String(named)}`, { fix: 'publish it again with the version its package.json names' });
      }
    }
    rmSync(target, { recursive: true, force: true });
    renameSync(temp, target);
    return target;
  }

  /** Points `current` at versions/<version> atomically: a new link under a temporary name, renamed over the old one. */
  switchCurrent(version: string): void {
    if (!existsSync(this.versionDir(version))) throw new FerryError('ERR_UPDATE_MISSING_VERSION', `versions/${version} does not exist`);
    const temp = `${this.currentLink}.tmp-${process.pid}`;
    rmSync(temp, { force: true });
    symlinkSync(path.join('versions', version), temp);
    renameSync(temp, this.currentLink);
  }

  /** Deletes every version folder except `keep` (current and previous). */
  prune(keep: (string | undefined)[]): string[] {
    const removed: string[] = [];
    for (const version of this.installedVersions()) {
      if (keep.includes(version)) continue;
      rmSync(this.versionDir(version), { recursive: true, force: true });
      removed.push(version);
    }
    return removed;
  }

  readRecord(): UpdaterRecord {
    try {
      const parsed = JSON.parse(readFileSync(path.join(this.root, 'updater-state.json'), 'utf8')) as Partial<UpdaterRecord>;
      return { failed: parsed.failed ?? {}, rejected: parsed.rejected ?? {} };
    } catch {
      return { failed: {}, rejected: {} };
    }
  }

  writeRecord(record: UpdaterRecord): void {
    const file = path.join(this.root, 'updater-state.json');
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(record, null, 2)}\n`);
    renameSync(temp, file);
  }
}
