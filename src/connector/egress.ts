// How the connector reaches the outside: one resolver for its three kinds of traffic and the
// dialers built on it. `direct` serves transport tcp (straight to the relay's tunnel port, never a
// proxy, as Service Bus's direct TCP); `routed` follows the resolved route list (transport https,
// registration, renewal); backend requests go direct unless useDefaultProxyForBackendRequests.
import dns from 'node:dns';
import type net from 'node:net';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Logger } from '../shared/log.js';
import { createDialer, type EgressDialer } from '../egress/dial/index.js';
import { createBackendRequester } from '../egress/http.js';
import { createProxyResolver, loadProxyResolverOptions, DEFAULT_MACHINE_CONFIG, type ManagedProxyResolver } from '../egress/resolve/index.js';
import type { DialTrace } from '../egress/types.js';
import type { ConnectorConfig } from './config.js';

export type BackendRequester = ReturnType<typeof createBackendRequester>;

export interface ConnectorEgress {
  resolver: ManagedProxyResolver;
  direct: EgressDialer;
  routed: EgressDialer;
  backend: BackendRequester;
  close(): void;
}

export async function createConnectorEgress(config: ConnectorConfig, logger: Logger, onTrace?: (trace: DialTrace) => void): Promise<ConnectorEgress> {
  const options = await loadProxyResolverOptions({
    connector: config.proxySettingsFile,
    machine: config.machineConfig ?? DEFAULT_MACHINE_CONFIG,
  });
  const resolver = createProxyResolver(options);
  const trace = openTrace(config.trace, onTrace);
  const shared = {
    logger: logger.child({ part: 'egress' }),
    connectTimeoutMs: config.directTimeoutMs,
    onTrace: trace.write,
    ...(config.dnsServers?.length ? { lookup: lookupVia(config.dnsServers) } : {}),
  };
  const direct = createDialer(shared);
  const routed = createDialer({ ...shared, resolver });
  const backend = createBackendRequester({
    useProxy: config.useDefaultProxyForBackendRequests, resolver, dialer: shared, ...(config.appCa ? { backendCaPem: config.appCa.pem } : {}),
  });
  return {
    resolver, direct, routed, backend,
    close: () => {
      resolver.close();
      backend.close();
      trace.close();
    },
  };
}

/** `--trace FILE`: one JSON line per dial attempt (the connection trace). */
function openTrace(file: string | undefined, hook?: (trace: DialTrace) => void): { write(trace: DialTrace): void; close(): void } {
  const stream: WriteStream | undefined = file ? createWriteStream(file, { flags: 'a', mode: 0o600 }) : undefined;
  return {
    write: (trace) => {
      stream?.write(`${JSON.stringify(trace)}\n`);
      hook?.(trace);
    },
    close: () => stream?.end(),
  };
}

/** A lookup that asks the configured DNS servers instead of the system resolver. */
export function lookupVia(servers: string[]): net.LookupFunction {
  const resolver = new dns.promises.Resolver({ timeout: 2_000, tries: 2 });
  resolver.setServers(servers);
  return ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    resolver.resolve4(hostname).then(
      (addresses) => (options?.all ? callback(null, addresses.map((address) => ({ address, family: 4 }))) : callback(null, addresses[0], 4)),
      (error: NodeJS.ErrnoException) => callback(Object.assign(error, { code: error.code === 'ENODATA' ? 'ENOTFOUND' : error.code })),
    );
  }) as net.LookupFunction;
}
