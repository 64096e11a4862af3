// Connector configuration: connector.yaml → a frozen ConnectorConfig. The `proxy` section is the
// connector's own proxy settings, read by src/config's proxy loader (same file, same semantics as
// the .NET defaultProxy element); here it is only carried along.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { isXmlFile, loadYamlFile, parseYamlText } from '../config/yaml-file.js';
import { proxySourcesOf } from '../config/proxy-settings.js';
import { ConfigError } from '../shared/errors.js';

export const TRANSPORTS = ['auto', 'tcp', 'https'] as const;
export type Transport = (typeof TRANSPORTS)[number];

const ConnectorFileSchema = z.object({
  stateDir: z.string().default('./connector-state'),
  name: z.string().min(1).optional(),
  tunnels: z.number().int().min(1).max(16).default(2),
  transport: z.enum(TRANSPORTS).default('auto'),
  /** Dial the relay by this name instead of the one it advertised (e.g. a name only the proxy resolves). */
  relayHost: z.string().min(1).optional(),
  /** The connector's own proxy settings (validated by src/config/proxy-settings). */
  proxy: z.unknown().optional(),
  /** A separate proxy settings file instead of `proxy:` (YAML, or a .NET .config with <defaultProxy>). */
  proxyConfig: z.string().optional(),
  /** The machine-wide proxy settings file (default /etc/ferry/machine.config). */
  machineConfig: z.string().optional(),
  useDefaultProxyForBackendRequests: z.boolean().default(false),
  /** DNS servers for the connector's own lookups (direct dials); default: the system resolver. */
  dnsServers: z.array(z.string()).optional(),
  pingIntervalMs: z.number().int().min(100).default(15_000),
  backoff: z.object({
    initialMs: z.number().int().min(10).default(500),
    maxMs: z.number().int().min(100).default(30_000),
    healthyAfterMs: z.number().int().min(0).default(30_000),
  }).strict().default({}),
  /** Direct (tcp) attempt timeout before `auto` falls back to https. */
  directTimeoutMs: z.number().int().min(100).default(5_000),
  /** Connection trace: one JSON line per dial attempt (also `ferry connector run --trace FILE`). */
  trace: z.string().optional(),
  /**
   * CA certificates (PEM) trusted for https apps besides Node's built-in roots: the enterprise CA
   * that issued the internal apps' certificates (Node does not read the system's trust store).
   */
  appCaFile: z.string().min(1).optional(),
}).strict();

export type ConnectorFile = z.output<typeof ConnectorFileSchema>;

export interface ConnectorConfig extends Omit<ConnectorFile, 'stateDir' | 'name' | 'machineConfig' | 'trace' | 'proxyConfig' | 'appCaFile'> {
  file: string | undefined;
  stateDir: string;
  name: string;
  /** The file holding the connector's proxy settings: proxyConfig, else the config file itself. */
  proxySettingsFile: string | undefined;
  machineConfig: string | undefined;
  trace: string | undefined;
  /** appCaFile, resolved, and the certificates it holds (checked when the config is read). */
  appCa: { file: string; pem: string } | undefined;
}

/**
 * Reads connector.yaml. A file whose content is XML is a .NET-style .config file: its
 * <defaultProxy> element is the connector's proxy settings and everything else takes its default
 * (so the files published for the Entra connector work as they are).
 */
export function loadConnectorConfig(file: string | undefined): ConnectorConfig {
  const isXml = file !== undefined && isXmlFile(file);
  const loaded = file && !isXml ? loadYamlFile(file, ConnectorFileSchema) : parseYamlText('{}', file ?? '(defaults)', ConnectorFileSchema);
  const base = file ? path.dirname(path.resolve(file)) : process.cwd();
  const raw = loaded.value;
  return Object.freeze({
    ...raw,
    file,
    stateDir: path.resolve(base, raw.stateDir),
    name: raw.name ?? os.hostname(),
    ...proxySourcesOf(file, raw),
    trace: raw.trace ? path.resolve(base, raw.trace) : undefined,
    appCa: raw.appCaFile ? readAppCa(path.resolve(base, raw.appCaFile), file, loaded.lineOf(['appCaFile'])) : undefined,
  });
}

/** The CA certificates of appCaFile; a file that holds none is an error naming both files. */
function readAppCa(caFile: string, configFile: string | undefined, line: number | undefined): { file: string; pem: string } {
  const where = { ...(configFile ? { file: configFile } : {}), ...(line ? { line } : {}) };
  let text: string;
  try {
    text = readFileSync(caFile, 'utf8');
  } catch (error) {
    throw new ConfigError(`appCaFile ${caFile} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      ...where, fix: 'point appCaFile at a PEM file with the CA certificates of your https apps, readable by the service',
    });
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const bad = blocks.findIndex((block) => {
    try {
      return !new X509Certificate(block).ca;
    } catch {
      return true;
    }
  });
  if (blocks.length === 0 || bad !== -1) {
    throw new ConfigError(blocks.length === 0
      ? `appCaFile ${caFile} holds no PEM certificate`
      : `appCaFile ${caFile}: certificate ${bad + 1} is not a valid CA certificate`, {
      ...where, fix: 'put the CA certificates (-----BEGIN CERTIFICATE-----, with CA:TRUE) of your https apps in the file',
    });
  }
  return { file: caFile, pem: blocks.join('\n') };
}

