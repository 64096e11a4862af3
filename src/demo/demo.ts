// `ferry demo`: relay + connector + the sample app on loopback, in a temporary state folder, with
// the app published at https://demo.localhost:PORT/ (*.localhost resolves to loopback). Everything
// is real: the relay's own CA, a one-time token, mTLS, the reverse HTTP/2 tunnel.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import type { Logger } from '../shared/log.js';
import { loadRelayConfig } from '../relay/config.js';
import { Relay } from '../relay/relay.js';
import { RelayAdmin } from '../relay/admin.js';
import { loadConnectorConfig, type Transport } from '../connector/config.js';
import { registerConnector } from '../connector/register.js';
import { Connector } from '../connector/connector.js';
import { createConnectorEgress } from '../connector/egress.js';
import { startSampleBackend } from './sample-backend.js';

export interface DemoOptions {
  stateDir?: string;
  transport: Transport;
  relayHost?: string;
  /** Connector proxy settings file (YAML or .NET XML). */
  proxyConfig?: string;
  logger: Logger;
}

export interface DemoInfo {
  url: string;
  curl: string;
  stateDir: string;
  relayConfig: string;
  connectorConfig: string;
  caFile: string;
  backendUrl: string;
  ports: { user: number; tunnel: number; registration: number; backend: number };
}

export interface RunningDemo extends DemoInfo {
  stop(): Promise<void>;
}

export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const stateDir = options.stateDir ? path.resolve(options.stateDir) : mkdtempSync(path.join(os.tmpdir(), 'ferry-demo-'));
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const backend = await startSampleBackend();
  const [user, tunnel, registration] = await freePorts(3);
  const relayHost = options.relayHost ?? 'localhost';

  const relayConfigFile = path.join(stateDir, 'relay.yaml');
  writeFileSync(relayConfigFile, stringify({
    stateDir: './relay',
    publicHost: relayHost,
    hostnames: ['demo.localhost', 'localhost', '127.0.0.1', '::1'],
    listen: { user: `127.0.0.1:${user}`, tunnel: `127.0.0.1:${tunnel}`, registration: `127.0.0.1:${registration}` },
  }));
  const relayConfig = loadRelayConfig(relayConfigFile);
  const relay = new Relay(relayConfig, options.logger.child({ part: 'relay' }));
  await relay.start();

  const connectorConfigFile = path.join(stateDir, 'connector.yaml');
  writeFileSync(connectorConfigFile, stringify({
    stateDir: './connector',
    name: 'demo-connector',
    transport: options.transport,
    ...(options.relayHost ? { relayHost: options.relayHost } : {}),
    ...(options.proxyConfig ? { proxyConfig: path.resolve(options.proxyConfig) } : {}),
  }));
  const connectorConfig = loadConnectorConfig(connectorConfigFile);
  const connectorLogger = options.logger.child({ part: 'connector' });
  const egress = await createConnectorEgress(connectorConfig, connectorLogger);

  const admin = RelayAdmin.open(relayConfig);
  const url = `https://demo.localhost:${user}/`;
  try {
    const { token } = await admin.createToken({ group: 'default', ttlMs: 10 * 60_000 });
    await registerConnector({ token, name: connectorConfig.name, stateDir: connectorConfig.stateDir, dialer: egress.routed, relayHost: options.relayHost });
    admin.addApp({ name: 'demo', externalUrl: url, internalUrl: backend.url, group: 'default' });
  } finally {
    admin.close();
  }
  relay.refresh(); // see the app now rather than at the next poll

  const connector = new Connector(connectorConfig, connectorLogger, egress);
  await new Promise<void>((resolve, reject) => {
    const supervisor = connector.start((event) => { if (event.up) resolve(); });
    supervisor.done().then((fatal) => reject(fatal ?? new Error('connector stopped')));
  });

  const caFile = path.join(relayConfig.stateDir, 'pki', 'ca.pem');
  return {
    url,
    curl: `curl --cacert ${caFile} --resolve demo.localhost:${user}:127.0.0.1 ${url}`,
    stateDir,
    relayConfig: relayConfigFile,
    connectorConfig: connectorConfigFile,
    caFile,
    backendUrl: backend.url,
    ports: { user, tunnel, registration, backend: backend.port },
    stop: async () => {
      connector.stop();
      await relay.stop(2000);
      await backend.close();
    },
  };
}

/** Asks the kernel for free loopback ports (closed again before use; fine for a demo and tests). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<net.Server>((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => resolve(server));
  })));
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
