// `ferry doctor --capture SECONDS`: runs the connector's own tunnels (the Connector class with its
// egress, supervisor and sessions) for a while with the connection trace on, then analyzes the
// trace — the packet capture of the seed's troubleshooting guide, without a packet capture.
import { loadConnectorConfig } from '../connector/config.js';
import { Connector } from '../connector/connector.js';
import { createConnectorEgress } from '../connector/egress.js';
import type { DialTrace } from '../egress/types.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { analyzeTrace, type TraceSummary } from './analyze.js';

export interface CaptureOptions {
  configFile?: string;
  seconds: number;
  logger?: Logger;
  progress?: (message: string) => void;
}

/** Lines also go to the config's `trace` file when it has one (appended, as `connector run --trace`). */
export async function captureTrace(options: CaptureOptions): Promise<TraceSummary> {
  const config = loadConnectorConfig(options.configFile);
  const logger = options.logger ?? silentLogger;
  const lines: string[] = [];
  const egress = await createConnectorEgress(config, logger, (trace: DialTrace) => lines.push(JSON.stringify(trace)));
  const connector = new Connector(config, logger, egress);
  options.progress?.(`running ${config.tunnels} tunnel(s) with transport ${config.transport} for ${options.seconds} s…`);
  const supervisor = connector.start();
  try {
    await Promise.race([supervisor.done(), new Promise((resolve) => setTimeout(resolve, options.seconds * 1000))]);
  } finally {
    connector.stop();
    await supervisor.done();
  }
  return analyzeTrace(lines.join('\n'));
}
