// src/connector — the on-premises side: registration, the tunnel attempt (session), the reconnect
// loop (supervisor) and forwarding to backends. Imports src/shared, src/config and src/egress;
// never imports src/relay or src/cli.
//
// Connector wires a registered identity, a Dialer (the egress seam) and backend agents into a
// running supervisor.
import http from 'node:http';
import https from 'node:https';
import type { Logger } from '../shared/log.js';
import type { Dialer } from '../egress/types.js';
import { serveBackendStream, type BackendAgents } from './backend.js';
import type { ConnectorConfig } from './config.js';
import { loadConnectorState, type ConnectorState } from './state.js';
import { Supervisor, type SupervisorOptions } from './supervisor.js';

export interface ConnectorDeps {
  /** Dials the relay (connector caller). */
  dialer: Dialer;
  /** Opens backend connections (direct, or the backend proxy when enabled). */
  backendAgents?: BackendAgents;
}

export class Connector {
  readonly state: ConnectorState;
  private supervisor: Supervisor | undefined;

  constructor(private readonly config: ConnectorConfig, private readonly logger: Logger, private readonly deps: ConnectorDeps) {
    this.state = loadConnectorState(config.stateDir);
  }

  start(onStatus?: SupervisorOptions['onStatus']): Supervisor {
    const { config, logger } = this;
    const agents = this.deps.backendAgents ?? directBackendAgents();
    this.supervisor = new Supervisor({
      dialer: this.deps.dialer,
      state: this.state,
      logger,
      tunnels: config.tunnels,
      transport: config.transport,
      relayHost: config.relayHost,
      backoff: config.backoff,
      pingIntervalMs: config.pingIntervalMs,
      connectTimeoutMs: config.directTimeoutMs,
      onStream: (stream, headers) => serveBackendStream(stream, headers, agents, logger),
      onStatus,
    });
    logger.info({ connectorId: this.state.connectorId, group: this.state.group, tunnels: config.tunnels, transport: config.transport }, 'connector starting');
    this.supervisor.start();
    return this.supervisor;
  }

  stop(): void {
    this.supervisor?.stop();
  }
}

/** Keep-alive pools straight to the backends (the default: backend requests are not proxied). */
export function directBackendAgents(): BackendAgents {
  const plain = new http.Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 256 });
  const secure = new https.Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 256 });
  return { agentFor: (url) => (url.protocol === 'https:' ? secure : plain) };
}
