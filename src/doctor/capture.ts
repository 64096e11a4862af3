// `ferry doctor --capture SECONDS`: runs the connector's own tunnels (the Connector class, its
// supervisor and sessions) for a while with the connection trace on, then analyzes the trace —
// the packet capture of the seed's troubleshooting guide, without a packet capture.
import { appendFileSync } from 'node:fs';
import { loadConnectorConfig } from '../connector/config.js';
import { Connector } from '../connector/connector.js';
import { loadConnectorState } from '../connector/state.js';
import { createDialer } from '../egress/dial/index.js';
import { createProxyResolver, loadProxyResolverOptions, DEFAULT_MACHINE_CONFIG } from '../egress/resolve/index.js';
import type { Dialer, DialTrace } from '../egress/types.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { analyzeTrace, type TraceSummary } from './analyze.js';
import { splitHostPort } from './rules.js';

export interface CaptureOptions {
  configFile?: string;
  seconds: number;
  /** Also append the trace lines to this file (default: the config's `trace`, if any). */
  traceFile?: string;
  logger?: Logger;
  progress?: (message: string) => void;
}

export async function captureTrace(options: CaptureOptions): Promise<TraceSummary> {
  const config = loadConnectorConfig(options.configFile);
  const state = loadConnectorState(config.stateDir);
  const resolver = createProxyResolver(await loadProxyResolverOptions({ connector: config.proxySettingsFile, machine: config.machineConfig ?? DEFAULT_MACHINE_CONFIG }));
  const lines: string[] = [];
  const traceFile = options.traceFile ?? config.trace;
  const onTrace = (trace: DialTrace) => {
    const line = `${JSON.stringify(trace)}\n`;
    lines.push(line);
    if (traceFile) appendFileSync(traceFile, line, { mode: 0o600 });
  };
  const shared = { connectTimeoutMs: config.directTimeoutMs, onTrace };
  const direct = createDialer(shared);
  const routed = createDialer({ ...shared, resolver });
  // Transport tcp dials the tunnel ports straight; everything else follows the resolved route.
  // (The same split the connector makes; replace with its egress factory once both share one.)
  const tunnelPorts = new Set(state.tunnelAddresses.map((a) => splitHostPort(a).port));
  const dialer: Dialer = { dial: (request) => (tunnelPorts.has(request.port) ? direct : routed).dial(request) };
  const connector = new Connector(config, options.logger ?? silentLogger, { dialer });
  options.progress?.(`running ${config.tunnels} tunnel(s) with transport ${config.transport} for ${options.seconds} s…`);
  const supervisor = connector.start();
  try {
    await Promise.race([supervisor.done(), new Promise((resolve) => setTimeout(resolve, options.seconds * 1000))]);
  } finally {
    connector.stop();
    await supervisor.done();
    resolver.close();
  }
  return analyzeTrace(lines.join(''));
}
