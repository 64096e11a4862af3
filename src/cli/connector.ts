// `ferry connector …`: register with a one-time token, then run.
import type { Command } from 'commander';
import { createLogger } from '../shared/log.js';
import { loadConnectorConfig } from '../connector/config.js';
import { registerConnector } from '../connector/register.js';
import { Connector } from '../connector/connector.js';
import { createConnectorEgress } from '../connector/egress.js';
import { EXIT_FAILURE, runAction } from './run-action.js';
import { waitForSignal } from './relay.js';

export function registerConnectorCommands(program: Command): void {
  const connector = program.command('connector').description('the on-premises connector');

  connector.command('register')
    .description('register this connector with a relay using a one-time token')
    .requiredOption('--token <token>', 'token from "ferry relay token create"')
    .option('--config <file>', 'connector configuration (YAML, or a .NET .config with <defaultProxy>)')
    .option('--name <name>', 'connector name shown on the relay (default: host name)')
    .action(runAction(async (opts: { token: string; config?: string; name?: string }) => {
      const config = loadConnectorConfig(opts.config);
      const logger = createLogger('connector');
      const egress = await createConnectorEgress(config, logger);
      try {
        const state = await registerConnector({
          token: opts.token, name: opts.name ?? config.name, stateDir: config.stateDir, dialer: egress.routed, relayHost: config.relayHost,
        });
        process.stdout.write(`registered connector ${state.name} (${state.connectorId}) in group ${state.group}; identity stored in ${config.stateDir}\n`);
      } finally {
        egress.close();
      }
    }));

  connector.command('run')
    .description('keep tunnels to the relay open and forward requests to internal apps')
    .option('--config <file>', 'connector configuration (YAML, or a .NET .config with <defaultProxy>)')
    .option('--trace <file>', 'append one JSON line per dial attempt to this file (the connection trace)')
    .action(runAction(async (opts: { config?: string; trace?: string }) => {
      const loaded = loadConnectorConfig(opts.config);
      const config = opts.trace ? { ...loaded, trace: opts.trace } : loaded;
      const logger = createLogger('connector');
      const running = new Connector(config, logger, await createConnectorEgress(config, logger));
      const supervisor = running.start();
      const outcome = await Promise.race([supervisor.done(), waitForSignal().then(() => 'signal' as const)]);
      running.stop();
      if (outcome !== 'signal' && outcome) {
        process.stderr.write(`ferry: ${outcome.message}\n`);
        return EXIT_FAILURE;
      }
      await supervisor.done();
    }));
}
