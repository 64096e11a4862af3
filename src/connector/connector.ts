// src/connector — the on-premises side: registration, the tunnel attempt (session), the reconnect
// loop (supervisor) and forwarding to backends. Imports src/shared, src/config and src/egress;
// never imports src/relay or src/cli.
//
// Connector wires a registered identity, a Dialer (the egress seam) and backend agents into a
// running supervisor.
import type { Logger } from '../shared/log.js';
import { serveBackendStream } from './backend.js';
import { createConnectionStreams } from './connection-stream.js';
import { AppClient } from './app-client.js';
import { CONNECTOR_FEATURES } from '../shared/wire.js';
import type { ConnectorEgress } from './egress.js';
import type { ConnectorConfig } from './config.js';
import { loadConnectorState, type ConnectorState } from './state.js';
import { Supervisor, type SupervisorOptions } from './supervisor.js';
import { scheduleRenewal } from './renewal.js';


export class Connector {
  private state: ConnectorState;
  private supervisor: Supervisor | undefined;
  private stopRenewal: (() => void) | undefined;
  private closeAppClient: (() => void) | undefined;

  constructor(private readonly config: ConnectorConfig, private readonly logger: Logger, private readonly egress: ConnectorEgress) {
    this.state = loadConnectorState(config.stateDir);
  }

  start(onStatus?: SupervisorOptions['onStatus']): Supervisor {
    const { config, logger } = this;
    const { egress } = this;
    const appClient = new AppClient(egress.backend);
    const connectionStreams = createConnectionStreams(egress.backend, appClient, logger);
    this.closeAppClient = () => appClient.close();
    this.supervisor = new Supervisor({
      dialers: { tcp: egress.direct, https: egress.routed },
      state: this.state,
      logger,
      tunnels: config.tunnels,
      transport: config.transport,
      relayHost: config.relayHost,
      backoff: config.backoff,
      pingIntervalMs: config.pingIntervalMs,
      connectTimeoutMs: config.directTimeoutMs,
      // A plain CONNECT carries a whole user connection; anything else is one request.
      onStream: (stream, headers) => (headers[':method'] === 'CONNECT' && !headers[':protocol']
        ? connectionStreams.serve(stream, headers)
        : serveBackendStream(stream, headers, egress.backend, appClient, logger)),
      features: [CONNECTOR_FEATURES.connectionStreams, CONNECTOR_FEATURES.http2ConnectionStreams],
      onStatus,
    });
    logger.info({ connectorId: this.state.connectorId, group: this.state.group, tunnels: config.tunnels, transport: config.transport }, 'connector starting');
    this.supervisor.start();
    const supervisor = this.supervisor;
    this.stopRenewal = scheduleRenewal({
      getState: () => this.state,
      setState: (state) => { this.state = state; supervisor.updateState(state); },
      stateDir: config.stateDir, dialer: egress.routed, logger,
    });
    return this.supervisor;
  }

  stop(): void {
    this.stopRenewal?.();
    this.supervisor?.stop();
    this.closeAppClient?.();
    this.egress.close();
  }
}
