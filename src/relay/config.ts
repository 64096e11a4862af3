// Relay configuration: relay.yaml → a frozen, resolved RelayConfig (paths made absolute, defaults
// applied, advertised addresses derived from the listeners).
import path from 'node:path';
import { z } from 'zod';
import { loadYamlFile, parseYamlText } from '../config/yaml-file.js';

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^\s:]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8443');

const RelayFileSchema = z.object({
  stateDir: z.string().default('./relay-state'),
  /** The name users and connectors reach the relay by; it goes into certificates and tokens. */
  publicHost: z.string().default('localhost'),
  /** Extra names and addresses for the relay's certificates. */
  hostnames: z.array(z.string()).default([]),
  listen: z.object({
    user: hostPort.default('127.0.0.1:8443'),
    /** Plain-HTTP user listener, for running behind a TLS-terminating load balancer. */
    userPlain: hostPort.optional(),
    tunnel: hostPort.default('127.0.0.1:8444'),
    registration: hostPort.default('127.0.0.1:8445'),
  }).strict().default({}),
  /** Operator-supplied certificate for the user-facing listener (else the relay's own CA issues one). */
  tls: z.object({ certFile: z.string(), keyFile: z.string() }).strict().optional(),
  /** Addresses advertised to connectors; default publicHost with the listener ports. */
  advertise: z.object({
    tunnel: z.array(hostPort).optional(),
    public: z.array(hostPort).optional(),
    registrationUrl: z.string().url().optional(),
  }).strict().default({}),
  tunnelPingIntervalMs: z.number().int().min(100).default(10_000),
  connectorCertDays: z.number().int().min(1).max(825).default(30),
  /**
   * HTTP/1.1 user connections as one tunnel stream each (false: a stream per request, as HTTP/2
   * users always are). Turn off when a load balancer in front pools one upstream connection across
   * host names (each connection serves one app; other hosts get 421).
   */
  connectionStreams: z.boolean().default(true),
}).strict();

export interface RelayConfig {
  file: string | undefined;
  stateDir: string;
  publicHost: string;
  hostnames: string[];
  listen: { user: HostPort; userPlain?: HostPort; tunnel: HostPort; registration: HostPort };
  tls?: { certFile: string; keyFile: string };
  advertise: { tunnel: string[]; public: string[]; registrationUrl: string };
  tunnelPingIntervalMs: number;
  connectorCertDays: number;
  connectionStreams: boolean;
}

export interface HostPort { host: string; port: number }

export function parseHostPort(text: string): HostPort {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(text.slice(at + 1)) };
}

export function loadRelayConfig(file: string | undefined): RelayConfig {
  const loaded = file
    ? loadYamlFile(file, RelayFileSchema, { xmlFix: 'the relay\'s --config is relay.yaml; .NET .config files hold proxy settings, which only the connector and the updater have' })
    : parseYamlText('{}', '(defaults)', RelayFileSchema);
  return resolveRelayConfig(loaded.value, file);
}

export function resolveRelayConfig(raw: z.output<typeof RelayFileSchema>, file: string | undefined): RelayConfig {
  const base = file ? path.dirname(path.resolve(file)) : process.cwd();
  const listen = {
    user: parseHostPort(raw.listen.user),
    userPlain: raw.listen.userPlain ? parseHostPort(raw.listen.userPlain) : undefined,
    tunnel: parseHostPort(raw.listen.tunnel),
    registration: parseHostPort(raw.listen.registration),
  };
  const host = raw.publicHost;
  return Object.freeze({
    file,
    stateDir: path.resolve(base, raw.stateDir),
    publicHost: host,
    hostnames: [...new Set([host, 'localhost', '127.0.0.1', ...raw.hostnames])],
    listen,
    tls: raw.tls ? { certFile: path.resolve(base, raw.tls.certFile), keyFile: path.resolve(base, raw.tls.keyFile) } : undefined,
    advertise: {
      tunnel: raw.advertise.tunnel ?? [`${host}:${listen.tunnel.port}`],
      public: raw.advertise.public ?? [`${host}:${listen.user.port}`],
      registrationUrl: raw.advertise.registrationUrl ?? `https://${host}:${listen.registration.port}`,
    },
    tunnelPingIntervalMs: raw.tunnelPingIntervalMs,
    connectorCertDays: raw.connectorCertDays,
    connectionStreams: raw.connectionStreams,
  });
}

export { RelayFileSchema };
