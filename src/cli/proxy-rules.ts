// `ferry proxy rules`: the destinations a proxy (and firewall) admin must allow for this
// connector's configuration, as a table, a Squid snippet or JSON.
import type { Command } from 'commander';
import { loadConnectorConfig } from '../connector/config.js';
import { loadConnectorState } from '../connector/state.js';
import { renderRulesTable, renderSquidSnippet, requiredDestinations, rulesJson } from '../doctor/rules.js';
import { UsageError } from '../shared/errors.js';
import { runAction } from './run-action.js';

const FORMATS = ['table', 'squid', 'json'] as const;

export function registerProxyRulesCommand(proxy: Command): void {
  proxy
    .command('rules')
    .description('List exactly the hosts and ports the connector and updater need (table, pasteable Squid snippet, or JSON)')
    .option('--config <file>', 'connector configuration (YAML, or a .NET .config); the connector must be registered')
    .option('--format <format>', 'table, squid or json', 'table')
    .option('--update-url <url>', 'where updates come from, when not the relay (default: the registration URL)')
    .action(runAction(async (options: { config?: string; format: string; updateUrl?: string }) => {
      if (!(FORMATS as readonly string[]).includes(options.format)) throw new UsageError(`--format ${options.format} is not known`, 'use --format table, squid or json');
      if (options.updateUrl !== undefined && !URL.canParse(options.updateUrl)) throw new UsageError(`--update-url ${options.updateUrl} is not an absolute URL`);
      const config = loadConnectorConfig(options.config);
      const state = loadConnectorState(config.stateDir);
      const destinations = requiredDestinations({
        transport: config.transport,
        tunnelAddresses: state.tunnelAddresses,
        publicAddresses: state.publicAddresses,
        registrationUrl: state.registrationUrl,
        ...(config.relayHost ? { relayHost: config.relayHost } : {}),
        ...(options.updateUrl ? { updateUrl: options.updateUrl } : {}),
      });
      const text = options.format === 'json'
        ? `${JSON.stringify({ config: config.file ?? null, transport: config.transport, ...(rulesJson(destinations) as object) }, null, 2)}\n`
        : options.format === 'squid' ? renderSquidSnippet(destinations, config.file) : renderRulesTable(destinations);
      process.stdout.write(text);
    }));
}
