// Updater configuration: updater.yaml → a frozen UpdaterConfig. The `proxy:` section (or the file
// named by `proxyConfig`, YAML or a .NET .config) is the updater's OWN proxy settings, read by the
// same loader and resolver as the connector's, for the `updater` caller.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { loadYamlFile, parseYamlText } from '../config/yaml-file.js';
import { proxySourcesOf } from '../config/proxy-settings.js';
import { ConfigError } from '../shared/errors.js';

const UpdaterFileSchema = z.object({
  /** The connector's state folder: its identity (certificate, key, pinned relay CA) authenticates the updater. */
  connectorStateDir: z.string().default('./connector-state'),
  /** Holds versions/<version>/, the `current` link, downloads/ and updater-state.json. */
  installDir: z.string().default('./ferry'),
  channel: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/).default('stable'),
  /** The relay's registration URL (default: the one stored at registration), e.g. a name only the proxy resolves. */
  relayUrl: z.string().url().optional(),
  /** Publisher public keys (PEM text, or paths to PEM files) a release must be signed by. */
  publisherKeys: z.array(z.string().min(1)).min(1),
  pollIntervalMs: z.number().int().min(100).default(3_600_000),
  /** Each wait is pollIntervalMs × (1 ± pollJitter), so a fleet does not poll in step. */
  pollJitter: z.number().min(0).max(0.9).default(0.2),
  /** Run by /bin/sh -c after `current` changed (FERRY_CURRENT, FERRY_VERSION, FERRY_INSTALL_DIR set). */
  restartCommand: z.string().min(1).default('systemctl restart ferry-connector'),
  restartTimeoutMs: z.number().int().min(100).default(60_000),
  /** How long the new connector has to bring its tunnels up (version reported and online) before rollback. */
  healthTimeoutMs: z.number().int().min(100).default(120_000),
  healthPollMs: z.number().int().min(50).default(2_000),
  allowDowngrade: z.boolean().default(false),
  /** Download bandwidth cap in bytes per second (unset: unlimited). */
  downloadRateLimit: z.number().int().min(1024).optional(),
  /** How long the group's go-ahead is asked for (the relay clamps it). */
  leaseTtlMs: z.number().int().min(5_000).default(15 * 60_000),
  requestTimeoutMs: z.number().int().min(100).default(30_000),
  proxy: z.unknown().optional(),
  /** A separate proxy settings file instead of `proxy:` (YAML, or a .NET .config with <defaultProxy>). */
  proxyConfig: z.string().optional(),
  /** The machine-wide proxy settings file (default /etc/ferry/machine.config). */
  machineConfig: z.string().optional(),
}).strict();

export interface UpdaterConfig extends Omit<z.output<typeof UpdaterFileSchema>, 'publisherKeys' | 'proxy' | 'proxyConfig' | 'machineConfig'> {
  file: string | undefined;
  /** Public keys as PEM text. */
  publisherKeys: string[];
  /** The file holding the updater's proxy settings: proxyConfig, else the config file itself. */
  proxySettingsFile: string | undefined;
  machineConfig: string | undefined;
}

export function loadUpdaterConfig(file: string | undefined, overrides: { allowDowngrade?: boolean } = {}): UpdaterConfig {
  const loaded = file
    ? loadYamlFile(file, UpdaterFileSchema, { xmlFix: 'the updater\'s --config is updater.yaml (it needs publisherKeys); name this .NET proxy settings file in it: "proxyConfig: <its path>"' })
    : parseYamlText('{}', '(defaults)', UpdaterFileSchema);
  const raw = loaded.value;
  const base = file ? path.dirname(path.resolve(file)) : process.cwd();
  const publisherKeys = raw.publisherKeys.map((entry, index) => readPublisherKey(entry, base, file, loaded.lineOf(['publisherKeys', index])));
  return Object.freeze({
    ...raw,
    file,
    connectorStateDir: path.resolve(base, raw.connectorStateDir),
    installDir: path.resolve(base, raw.installDir),
    publisherKeys,
    allowDowngrade: overrides.allowDowngrade ?? raw.allowDowngrade,
    ...proxySourcesOf(file, raw),
  });
}

function readPublisherKey(entry: string, base: string, file: string | undefined, line: number | undefined): string {
  if (entry.includes('-----BEGIN PUBLIC KEY-----')) return entry;
  const keyFile = path.resolve(base, entry);
  if (!existsSync(keyFile)) {
    throw new ConfigError(`publisherKeys: ${keyFile} does not exist`, { file, line, fix: 'give the path of release-signing.pub from "ferry release keygen", or paste the PEM text' });
  }
  const text = readFileSync(keyFile, 'utf8');
  if (!text.includes('-----BEGIN PUBLIC KEY-----')) {
    throw new ConfigError(`publisherKeys: ${keyFile} is not a PEM public key`, { file, line, fix: 'pin the public key (release-signing.pub), never the private one' });
  }
  return text;
}
