// src/updater — the updater service: polls the relay for signed connector releases, downloads them
// through the updater's OWN proxy route (caller `updater`), verifies the publisher's Ed25519
// signature, installs into versions/<version>/, switches `current`, restarts the connector, waits
// for its tunnels and rolls back when they do not come up. Imports src/shared, src/config,
// src/egress and src/connector (its identity only); never src/relay or src/cli.
//
// One check (checkOnce) is one attempt and never retries; run() is the loop (interval with jitter),
// so the policy lives in one place. Order of a check: latest → compare → download + verify (no
// go-ahead needed, nothing changes yet) → go-ahead → extract → switch → restart → health → report.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { compareVersions, isReleaseVersion, verifyRelease } from '../shared/release-signing.js';
import type { Dialer } from '../egress/types.js';
import { loadConnectorState } from '../connector/state.js';
import type { UpdaterConfig } from './config.js';
import { InstallLayout } from './install.js';
import { RelayApi, type LatestRelease } from './relay-api.js';

export type CheckOutcome =
  | { kind: 'no-release'; channel: string }
  | { kind: 'up-to-date'; version: string }
  | { kind: 'skipped'; version: string; installed: string | undefined; reason: string }
  | { kind: 'waiting'; version: string; holder: string; retryAfterMs: number }
  | { kind: 'updated'; from: string | undefined; to: string }
  | { kind: 'rejected'; version: string; reason: string }
  | { kind: 'rolled-back'; from: string | undefined; to: string; reason: string }
  | { kind: 'failed'; version?: string; reason: string };

export interface UpdaterDeps {
  /** Dials the relay through the updater's proxy route. */
  dialer: Dialer;
  /** Math.random, injectable for tests. */
  random?: () => number;
}

export class Updater {
  readonly layout: InstallLayout;

  constructor(private readonly config: UpdaterConfig, private readonly logger: Logger, private readonly deps: UpdaterDeps) {
    this.layout = new InstallLayout(config.installDir);
  }

  /** Polls until the signal aborts: each wait is pollIntervalMs × (1 ± pollJitter). */
  async run(signal: AbortSignal): Promise<void> {
    const random = this.deps.random ?? Math.random;
    while (!signal.aborted) {
      const outcome = await this.checkOnce().catch((error: unknown): CheckOutcome => {
        this.logger.warn({ err: error }, 'update check failed');
        return { kind: 'failed', reason: error instanceof Error ? error.message : String(error) };
      });
      const base = outcome.kind === 'waiting' ? Math.min(outcome.retryAfterMs, this.config.pollIntervalMs) : this.config.pollIntervalMs;
      const wait = Math.round(base * (1 - this.config.pollJitter + 2 * this.config.pollJitter * random()));
      try {
        await sleep(wait, undefined, { signal });
      } catch {
        break;
      }
    }
  }

  async checkOnce(): Promise<CheckOutcome> {
    const { config, logger, layout } = this;
    const state = loadConnectorState(config.connectorStateDir);
    const api = new RelayApi(new URL(config.relayUrl ?? state.registrationUrl), state, this.deps.dialer, config.requestTimeoutMs);
    layout.ensure();
    const installed = layout.currentVersion();
    const latest = await api.latest(config.channel);
    if (!latest) return this.done({ kind: 'no-release', channel: config.channel });
    if (!isReleaseVersion(latest.version)) return this.done({ kind: 'skipped', version: latest.version, installed, reason: 'the relay offers a version that is not a release version' });
    if (installed !== undefined) {
      const order = compareVersions(latest.version, installed);
      if (order === 0) return this.done({ kind: 'up-to-date', version: installed });
      if (order < 0 && !config.allowDowngrade) {
        return this.done({ kind: 'skipped', version: latest.version, installed, reason: `${latest.version} is older than the installed ${installed} (downgrades need --allow-downgrade)` });
      }
    }
    const record = layout.readRecord();
    const key = recordKey(latest);
    if (record.failed[key]) {
      return this.done({ kind: 'skipped', version: latest.version, installed, reason: `${latest.version} was rolled back before (${record.failed[key]}); waiting for a newer release` });
    }
    if (record.rejected[key] === latest.sha256) {
      return this.done({ kind: 'skipped', version: latest.version, installed, reason: `${latest.version} failed signature verification before; waiting for a correctly signed release` });
    }

    // 1. Download and verify: nothing the connector uses changes, so no go-ahead is needed yet.
    let archive: string;
    try {
      archive = await this.fetchVerified(api, latest);
    } catch (error) {
      if (error instanceof ReleaseRejectedError) {
        record.rejected[key] = latest.sha256;
        layout.writeRecord(record);
        logger.error({ version: latest.version, reason: error.message }, 'release rejected: nothing was installed');
        return this.done({ kind: 'rejected', version: latest.version, reason: error.message });
      }
      throw error;
    }

    // 2. The group's go-ahead: one connector of a group at a time.
    const lease = await api.acquireLease(latest.version, config.leaseTtlMs);
    if (!lease.granted) {
      logger.info({ version: latest.version, holder: lease.holder, retryAfterMs: lease.retryAfterMs }, 'waiting for the group go-ahead: another connector of the group is updating');
      return this.done({ kind: 'waiting', version: latest.version, holder: lease.holder.name ?? lease.holder.connectorId, retryAfterMs: lease.retryAfterMs });
    }
    logger.info({ version: latest.version, group: lease.group, expiresAt: lease.expiresAt }, 'update go-ahead granted');

    // 3. Install, switch, restart, confirm — or roll back.
    let outcome: CheckOutcome;
    try {
      outcome = await this.installAndConfirm(api, latest, archive, installed);
    } catch (error) {
      await api.report(latest.version, 'failed', error instanceof Error ? error.message : String(error)).catch(() => undefined);
      throw error;
    }
    const reported = outcome.kind === 'updated' ? 'updated' : outcome.kind === 'rolled-back' ? 'rolled-back' : 'failed';
    await api.report(latest.version, reported, 'reason' in outcome ? outcome.reason : undefined)
      .catch((error: unknown) => logger.warn({ err: error }, 'could not report the update outcome; the go-ahead expires by itself'));
    return this.done(outcome);
  }

  private done(outcome: CheckOutcome): CheckOutcome {
    const level = outcome.kind === 'rejected' || outcome.kind === 'rolled-back' || outcome.kind === 'failed' ? 'warn' : 'info';
    this.logger[level]({ outcome }, `update check: ${outcome.kind}`);
    return outcome;
  }

  /**
   * Returns a verified archive in downloads/: resumes a .part left by an interrupted download (if it
   * is of the same file), verifies size, SHA-256 and the signature against the pinned keys, and only
   * then renames it. A file that fails verification is deleted.
   */
  private async fetchVerified(api: RelayApi, latest: LatestRelease): Promise<string> {
    const { layout, logger, config } = this;
    const stem = path.join(layout.downloadsDir, `${latest.channel}-${latest.version}`);
    const archive = `${stem}.tar.gz`;
    const part = `${stem}.part`;
    const partInfo = `${stem}.part.json`;
    if (existsSync(archive)) {
      const ok = await this.verify(archive, latest).then(() => true, () => false);
      if (ok) return archive;
      rmSync(archive, { force: true });
    }
    // A .part of another file (same version republished elsewhere) is useless: start over.
    if (existsSync(part) && readPartSha(partInfo) !== latest.sha256) rmSync(part, { force: true });
    writeFileSync(partInfo, JSON.stringify({ sha256: latest.sha256, size: latest.size }));
    logger.info({ version: latest.version, size: latest.size }, 'downloading release');
    const progress = await api.download(latest.downloadPath, part, latest, {
      rateLimit: config.downloadRateLimit,
      onResume: (offset) => logger.info({ version: latest.version, offset, size: latest.size }, 'resuming interrupted download'),
    });
    logger.info({ version: latest.version, bytes: progress.bytes, resumedFrom: progress.resumedFrom }, 'download complete');
    try {
      await this.verify(part, latest);
    } catch (error) {
      rmSync(part, { force: true });
      rmSync(partInfo, { force: true });
      throw error;
    }
    renameSync(part, archive);
    rmSync(partInfo, { force: true });
    return archive;
  }

  private async verify(file: string, latest: LatestRelease): Promise<void> {
    const { sha256, size } = await hashFile(file);
    if (size !== latest.size || sha256 !== latest.sha256) {
      // The relay's own metadata disagrees with the bytes: still checked against the signature below,
      // which is what matters; this only makes the message precise.
      this.logger.warn({ version: latest.version, size, expectedSize: latest.size, sha256, expectedSha256: latest.sha256 }, 'downloaded file differs from the advertised size/hash');
    }
    if (!latest.signature) throw new ReleaseRejectedError(`release ${latest.version} is not signed`);
    const keyId = verifyRelease({ version: latest.version, channel: latest.channel, sha256, size }, latest.signature, this.config.publisherKeys);
    if (!keyId) {
      throw new ReleaseRejectedError(`the signature of release ${latest.version} does not verify against any pinned publisher key (file sha256 ${sha256}, signed by key ${latest.keyId || 'none'})`);
    }
    this.logger.info({ version: latest.version, keyId, sha256 }, 'release signature verified');
  }

  private async installAndConfirm(api: RelayApi, latest: LatestRelease, archive: string, previous: string | undefined): Promise<CheckOutcome> {
    const { layout, logger } = this;
    const version = latest.version;
    try {
      await layout.extract(archive, version);
    } catch (error) {
      // A verified archive that cannot be installed will not get better by retrying: record it.
      const reason = error instanceof Error ? error.message : String(error);
      const record = layout.readRecord();
      record.failed[recordKey(latest)] = reason;
      layout.writeRecord(record);
      rmSync(archive, { force: true });
      return { kind: 'failed', version, reason };
    }
    layout.switchCurrent(version);
    logger.info({ from: previous, to: version }, 'switched current');
    let reason: string | undefined;
    try {
      await this.restart(version);
      reason = await this.waitForConnector(api, version);
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error);
    }
    if (reason === undefined) {
      rmSync(archive, { force: true });
      const removed = layout.prune([version, previous]);
      logger.info({ from: previous, to: version, removed }, 'update complete: the connector runs the new version');
      return { kind: 'updated', from: previous, to: version };
    }
    logger.warn({ version, reason }, 'the new connector did not come up: rolling back');
    const record = layout.readRecord();
    record.failed[recordKey(latest)] = reason;
    layout.writeRecord(record);
    if (previous === undefined) return { kind: 'failed', version, reason: `${reason}; no previous version to roll back to` };
    layout.switchCurrent(previous);
    let back = 'the previous version is running again';
    try {
      await this.restart(previous);
      const stillDown = await this.waitForConnector(api, previous);
      if (stillDown) back = `the previous version did not come back either: ${stillDown}`;
    } catch (error) {
      back = `restarting the previous version failed: ${(error as Error).message}`;
    }
    layout.prune([previous, ...layout.installedVersions().filter((v) => v !== version && v !== previous).slice(-1)]);
    rmSync(archive, { force: true });
    logger.warn({ from: version, to: previous, detail: back }, 'rolled back');
    return { kind: 'rolled-back', from: version, to: previous, reason: `${reason}; ${back}` };
  }

  /** Runs restartCommand with /bin/sh; its output goes to the updater's stderr. */
  private restart(version: string): Promise<void> {
    const { config, logger, layout } = this;
    logger.info({ command: config.restartCommand, version }, 'restarting the connector');
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', config.restartCommand], {
        stdio: ['ignore', 2, 2],
        env: { ...process.env, FERRY_CURRENT: layout.currentLink, FERRY_VERSION: version, FERRY_INSTALL_DIR: layout.root },
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new FerryError('ERR_UPDATE_RESTART', `the restart command did not finish within ${config.restartTimeoutMs} ms`));
      }, config.restartTimeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new FerryError('ERR_UPDATE_RESTART', `the restart command could not run: ${error.message}`, { cause: error }));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new FerryError('ERR_UPDATE_RESTART', `the restart command failed (${signal ?? `exit code ${code}`}): ${config.restartCommand}`, { fix: 'check restartCommand in updater.yaml and the connector service' }));
      });
    });
  }

  /** Undefined once the relay sees this connector online with `version`; else why not (after healthTimeoutMs). */
  private async waitForConnector(api: RelayApi, version: string): Promise<string | undefined> {
    const deadline = Date.now() + this.config.healthTimeoutMs;
    let last = 'the relay has not seen the connector yet';
    while (Date.now() < deadline) {
      try {
        const self = await api.self();
        if (self.online && self.version === version) return undefined;
        last = self.online ? `the connector is online but reports version ${self.version ?? 'none'}` : `the connector has no tunnel up (last reported version ${self.version ?? 'none'})`;
      } catch (error) {
        last = `the relay could not be asked: ${(error as Error).message}`;
      }
      await sleep(this.config.healthPollMs);
    }
    return `${last} ${Math.round(this.config.healthTimeoutMs / 1000)} s after the restart`;
  }
}

/** The release's signature (or hash) does not verify: it is never installed. */
export class ReleaseRejectedError extends FerryError {
  constructor(message: string) {
    super('ERR_UPDATE_REJECTED', message, { permanent: true, fix: 'publish the release again with "ferry release publish --key" using a key pinned in updater.yaml publisherKeys' });
  }
}

/** Records are per channel and version: the same version may be offered (differently) on another channel. */
function recordKey(release: { channel: string; version: string }): string {
  return `${release.channel}/${release.version}`;
}

function readPartSha(file: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { sha256?: string }).sha256;
  } catch {
    return undefined;
  }
}

async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}
