// `ferry demo`: the one-command demo (relay + connector + sample app on loopback).
import type { Command } from 'commander';
import { createLogger } from '../shared/log.js';
import { UsageError } from '../shared/errors.js';
import { startDemo } from '../demo/demo.js';
import { TRANSPORTS, type Transport } from '../connector/config.js';
import { runAction } from './run-action.js';
import { waitForSignal } from './relay.js';

export function registerDemoCommand(program: Command): void {
  program.command('demo')
    .description('run relay, connector and a sample app on loopback, and print the URL')
    .option('--json', 'print one JSON line once ready')
    .option('--proxy-config <file>', "connector's proxy settings (YAML, or XML with <defaultProxy>)")
    .option('--transport <transport>', 'auto | tcp | https', 'auto')
    .option('--relay-host <name>', 'name the connector dials the relay by', 'localhost')
    .option('--state-dir <dir>', 'state folder (default: a new temporary folder)')
    .action(runAction(async (opts: { json?: boolean; proxyConfig?: string; transport: string; relayHost: string; stateDir?: string }) => {
      if (!TRANSPORTS.includes(opts.transport as Transport)) throw new UsageError(`--transport must be one of ${TRANSPORTS.join(', ')}`);
      const logger = createLogger('demo', process.env.FERRY_LOG_LEVEL ?? (opts.json ? 'warn' : 'info'));
      const demo = await startDemo({
        transport: opts.transport as Transport,
        relayHost: opts.relayHost === 'localhost' ? undefined : opts.relayHost,
        proxyConfig: opts.proxyConfig,
        stateDir: opts.stateDir,
        logger,
      });
      const { stop: _stop, ...info } = demo;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(info)}\n`);
      } else {
        process.stdout.write([
          '',
          `Ferry demo is running. Open ${demo.url}`,
          `(the relay's CA, for a browser or curl: ${demo.caFile})`,
          '',
          `  ${demo.curl}`,
          '',
          `relay config:     ${demo.relayConfig}`,
          `connector config: ${demo.connectorConfig}`,
          'Press Ctrl-C to stop.',
          '',
        ].join('\n'));
      }
      await waitForSignal();
      await demo.stop();
    }));
}
