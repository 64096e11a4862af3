// `ferry release …`: the publisher's side of connector updates (relay operators): make a signing
// key pair, publish a signed release into the relay's state, list what is published.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../shared/errors.js';
import { generateReleaseKeyPair, publicKeyId } from '../shared/release-signing.js';
import { loadRelayConfig } from '../relay/config.js';
import { RelayStore } from '../relay/store.js';
import { relayDatabasePath } from '../relay/relay.js';
import { ReleaseStore, publishRelease } from '../relay/releases.js';
import { runAction } from './run-action.js';
import { printTable } from './output.js';

export const RELEASE_KEY_FILE = 'release-signing.key';
export const RELEASE_PUBLIC_KEY_FILE = 'release-signing.pub';

export function registerReleaseCommands(program: Command): void {
  const release = program.command('release').description('signed connector releases (publisher side)');

  release.command('keygen')
    .description('create an Ed25519 release signing key pair (private key mode 0600)')
    .option('--out <dir>', 'folder for release-signing.key and release-signing.pub', '.')
    .option('--force', 'overwrite an existing key pair')
    .action(runAction(async (opts: { out: string; force?: boolean }) => {
      const dir = path.resolve(opts.out);
      const keyFile = path.join(dir, RELEASE_KEY_FILE);
      const pubFile = path.join(dir, RELEASE_PUBLIC_KEY_FILE);
      if (!opts.force && (existsSync(keyFile) || existsSync(pubFile))) {
        throw new UsageError(`${keyFile} already exists; refusing to replace a signing key`, 'choose another --out folder, or pass --force to replace it (updaters pinned to the old key will refuse new releases)');
      }
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const pair = generateReleaseKeyPair();
      writeFileSync(keyFile, pair.privateKeyPem, { mode: 0o600, flag: opts.force ? 'w' : 'wx' });
      writeFileSync(pubFile, pair.publicKeyPem, { mode: 0o644, flag: opts.force ? 'w' : 'wx' });
      process.stdout.write(`private key: ${keyFile} (keep it secret; mode 0600)\npublic key:  ${pubFile} (key id ${publicKeyId(pair.publicKeyPem)}; pin it in updater.yaml publisherKeys)\n`);
    }));

  release.command('publish <file>')
    .description('sign FILE and publish it on the relay as connector version V')
    .requiredOption('--key <file>', 'the private signing key from "ferry release keygen"')
    .requiredOption('--version <version>', 'release version, e.g. 1.4.2')
    .option('--channel <channel>', 'release channel', 'stable')
    .option('--config <file>', 'relay configuration (YAML)')
    .option('--json', 'print JSON')
    .action(runAction(async (file: string, opts: { key: string; version: string; channel: string; config?: string; json?: boolean }) => {
      let privateKeyPem: string;
      try {
        privateKeyPem = readFileSync(opts.key, 'utf8');
      } catch (cause) {
        throw new UsageError(`cannot read the signing key ${opts.key} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, 'create one with "ferry release keygen"');
      }
      const config = loadRelayConfig(opts.config);
      const store = RelayStore.open(relayDatabasePath(config.stateDir));
      try {
        const row = await publishRelease({ store, stateDir: config.stateDir, file, version: opts.version, channel: opts.channel, privateKeyPem });
        const { blobPath: _blob, ...shown } = row;
        process.stdout.write(opts.json ? `${JSON.stringify(shown)}\n` : `published ${row.fileName} as version ${row.version} on channel ${row.channel} (${row.size} bytes, sha256 ${row.sha256}, signed by key ${row.keyId})\n`);
      } finally {
        store.close();
      }
    }));

  release.command('list')
    .description('list published releases')
    .option('--channel <channel>', 'only this channel')
    .option('--config <file>', 'relay configuration (YAML)')
    .option('--json', 'print JSON')
    .action(runAction(async (opts: { channel?: string; config?: string; json?: boolean }) => {
      const config = loadRelayConfig(opts.config);
      const store = RelayStore.open(relayDatabasePath(config.stateDir));
      try {
        const rows = new ReleaseStore(store).list(opts.channel).map(({ blobPath: _blob, ...row }) => row);
        if (opts.json) return void process.stdout.write(`${JSON.stringify({ releases: rows })}\n`);
        printTable(['CHANNEL', 'VERSION', 'FILE', 'SIZE', 'KEY', 'PUBLISHED'], rows.map((r) => [r.channel, r.version, r.fileName, String(r.size), r.keyId, r.publishedAt]));
      } finally {
        store.close();
      }
    }));
}
