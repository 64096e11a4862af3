// `ferry updater run`: the updater service, with its own proxy settings (caller `updater`).
import type { Command } from 'commander';
import { createLogger } from '../shared/log.js';
import { createProxyResolver, loadProxyResolverOptions } from '../egress/resolve/index.js';
import { createDialer, readProxyCredentials, type ProxyCredentials } from '../egress/dial/index.js';
import { loadUpdaterConfig } from '../updater/config.js';
import { loadConnectorState } from '../connector/state.js';
import { ConfigError } from '../shared/errors.js';
import { Updater, type CheckOutcome } from '../updater/updater.js';
import { EXIT_FAILURE, runAction } from './run-action.js';
import { waitForSignal } from './relay.js';

export function registerUpdaterCommands(program: Command): void {
  const updater = program.command('updater').description('the connector updater: installs signed connector releases');

  updater.command('run')
    .description('poll the relay for connector releases and install them (through the updater\'s own proxy settings)')
    .option('--config <file>', 'updater configuration (YAML)')
    .option('--once', 'check once, install if a newer release exists, and exit (1 when the update failed)')
    .option('--allow-downgrade', 'install the channel\'s latest release even when it is older than the installed one')
    .action(runAction(async (opts: { config?: string; once?: boolean; allowDowngrade?: boolean }) => {
      const config = loadUpdaterConfig(opts.config, opts.allowDowngrade ? { allowDowngrade: true } : {});
      const logger = createLogger('updater');
      // Fail fast (exit 2) when the identity the updater authenticates with is missing.
      try {
        loadConnectorState(config.connectorStateDir);
      } catch (error) {
        throw new ConfigError(`connectorStateDir ${config.connectorStateDir} holds no registered connector: ${(error as Error).message}`, {
          file: config.file, fix: 'point connectorStateDir at the connector\'s state folder (stateDir in connector.yaml), after "ferry connector register"',
        });
      }
      const resolverOptions = await loadProxyResolverOptions({ updater: config.proxySettingsFile, ...(config.machineConfig ? { machine: config.machineConfig } : {}) });
      const resolver = createProxyResolver(resolverOptions);
      const layer = resolverOptions.layers?.updater;
      // Proxy credentials (YAML `proxy.credentials`): the password is read from its file when needed, never logged.
      const configured = layer?.credentials;
      const credentials = configured ? (): ProxyCredentials | undefined => readProxyCredentials(configured) : undefined;
      const dialer = createDialer({ resolver, logger, ...(credentials ? { credentials } : {}) });
      const service = new Updater(config, logger, { dialer });
      logger.info({ installDir: config.installDir, channel: config.channel, relayUrl: config.relayUrl, proxySettings: config.proxySettingsFile }, 'updater starting');
      try {
        if (opts.once) {
          const outcome = await service.checkOnce();
          process.stdout.write(`${describeOutcome(outcome)}\n`);
          return outcome.kind === 'rejected' || outcome.kind === 'rolled-back' || outcome.kind === 'failed' ? EXIT_FAILURE : undefined;
        }
        const stop = new AbortController();
        void waitForSignal().then(() => stop.abort());
        await service.run(stop.signal);
      } finally {
        resolver.close();
      }
    }));
}

function describeOutcome(outcome: CheckOutcome): string {
  switch (outcome.kind) {
    case 'no-release': return `no release is published on channel ${outcome.channel}`;
    case 'up-to-date': return `up to date (${outcome.version})`;
    case 'skipped': return `not installing ${outcome.version}: ${outcome.reason}`;
    case 'waiting': return `${outcome.version} is available; waiting for the group's go-ahead (${outcome.holder} is updating)`;
    case 'updated': return `updated ${outcome.from ?? '(none)'} → ${outcome.to}`;
    case 'rejected': return `rejected ${outcome.version}: ${outcome.reason}`;
    case 'rolled-back': return `rolled back ${outcome.from} → ${outcome.to}: ${outcome.reason}`;
    case 'failed': return `update failed${outcome.version ? ` (${outcome.version})` : ''}: ${outcome.reason}`;
  }
}
