// `ferry relay …`: run the relay, and the operator commands on its state.
import type { Command } from 'commander';
import { createLogger } from '../shared/log.js';
import { UsageError } from '../shared/errors.js';
import { loadRelayConfig } from '../relay/config.js';
import { Relay } from '../relay/relay.js';
import { RelayAdmin, parseDuration } from '../relay/admin.js';
import { EXIT_FAILURE, runAction } from './run-action.js';
import { printTable } from './output.js';

export function registerRelayCommands(program: Command): void {
  const relay = program.command('relay').description('the relay: accepts connectors and serves users');

  relay.command('run', { isDefault: true })
    .description('run the relay (the default when no subcommand is given)')
    .option('--config <file>', 'relay configuration (YAML)')
    .action(runAction(async (opts: { config?: string }) => {
      const config = loadRelayConfig(opts.config);
      const logger = createLogger('relay');
      const server = new Relay(config, logger);
      await server.start();
      await waitForSignal();
      await server.stop();
    }));

  const token = relay.command('token').description('one-time registration tokens');
  token.command('create')
    .description('print a one-time, expiring registration token (carries the relay URL and CA fingerprint)')
    .option('--group <group>', 'connector group the token registers into', 'default')
    .option('--ttl <duration>', 'lifetime, e.g. 15m, 1h, 7d', '1h')
    .option('--config <file>', 'relay configuration (YAML)')
    .option('--json', 'print JSON')
    .action(runAction(async (opts: { group: string; ttl: string; config?: string; json?: boolean }) => {
      const ttlMs = parseDuration(opts.ttl);
      if (!ttlMs) throw new UsageError(`--ttl "${opts.ttl}" is not a duration`, 'use a number with a unit: 90s, 15m, 1h, 7d');
      return withAdmin(opts.config, async (admin) => {
        const created = await admin.createToken({ group: opts.group, ttlMs });
        process.stdout.write(opts.json ? `${JSON.stringify({ token: created.token, group: opts.group, expiresAt: created.expiresAt })}\n` : `${created.token}\n`);
      });
    }));

  const app = relay.command('app').description('published applications');
  app.command('add <name>')
    .description('publish an internal app at an external URL')
    .requiredOption('--external <url>', 'external URL users open, e.g. https://app.example.com')
    .requiredOption('--internal <url>', 'internal URL the connector forwards to, e.g. http://10.0.0.5:8080')
    .option('--group <group>', 'connector group that serves the app', 'default')
    .option('--timeout <duration>', 'backend timeout (default 85s)')
    .option('--passthrough', 'carry HTTP/1.1 connections as bytes: fastest, but no X-Forwarded-*, Host, path or Location rewriting, and no per-request errors (see README)')
    .option('--config <file>', 'relay configuration (YAML)')
    .action(runAction(async (name: string, opts: { external: string; internal: string; group: string; timeout?: string; passthrough?: boolean; config?: string }) => {
      const timeoutMs = opts.timeout === undefined ? undefined : parseDuration(opts.timeout);
      if (opts.timeout !== undefined && !timeoutMs) throw new UsageError(`--timeout "${opts.timeout}" is not a duration`, 'use e.g. 30s or 2m');
      return withAdmin(opts.config, async (admin) => {
        const row = admin.addApp({ name, externalUrl: opts.external, internalUrl: opts.internal, group: opts.group, timeoutMs, mode: opts.passthrough ? 'passthrough' : 'http' });
        process.stdout.write(`published ${row.name}: ${row.externalUrl} → ${row.internalUrl} (group ${row.group}${row.mode === 'passthrough' ? ', passthrough' : ''})\n`);
      });
    }));
  app.command('list')
    .description('list published apps')
    .option('--config <file>', 'relay configuration (YAML)')
    .option('--json', 'print JSON')
    .action(runAction(async (opts: { config?: string; json?: boolean }) => {
      return withAdmin(opts.config, async (admin) => {
        const apps = admin.listApps();
        if (opts.json) return void process.stdout.write(`${JSON.stringify({ apps })}\n`);
        printTable(['NAME', 'EXTERNAL', 'INTERNAL', 'GROUP', 'TIMEOUT', 'MODE'], apps.map((a) => [a.name, a.externalUrl, a.internalUrl, a.group, `${a.timeoutMs / 1000}s`, a.mode]));
      });
    }));
  app.command('remove <name>')
    .description('unpublish an app')
    .option('--config <file>', 'relay configuration (YAML)')
    .action(runAction(async (name: string, opts: { config?: string }) => {
      return withAdmin(opts.config, async (admin) => {
        if (!admin.removeApp(name)) {
          process.stderr.write(`ferry: no app named "${name}" (see "ferry relay app list")\n`);
          return EXIT_FAILURE;
        }
        process.stdout.write(`removed ${name}\n`);
      });
    }));

  const connectors = relay.command('connectors').description('registered connectors');
  connectors.command('list')
    .description('list connectors with online/offline, version and address')
    .option('--config <file>', 'relay configuration (YAML)')
    .option('--json', 'print JSON')
    .action(runAction(async (opts: { config?: string; json?: boolean }) => {
      return withAdmin(opts.config, async (admin) => {
        const rows = admin.listConnectors();
        if (opts.json) return void process.stdout.write(`${JSON.stringify({ connectors: rows })}\n`);
        printTable(['ID', 'NAME', 'GROUP', 'STATUS', 'VERSION', 'ADDRESS', 'LAST SEEN'], rows.map((c) => [
          c.id, c.name, c.group, c.revokedAt ? 'removed' : c.online ? 'online' : 'offline', c.version ?? '-', c.remoteAddress ?? '-', c.lastSeen ?? 'never',
        ]));
      });
    }));
  connectors.command('remove <idOrName>')
    .description('remove a connector: revokes its certificate and closes its tunnels at once')
    .option('--config <file>', 'relay configuration (YAML)')
    .action(runAction(async (idOrName: string, opts: { config?: string }) => {
      return withAdmin(opts.config, async (admin) => {
        const row = admin.removeConnector(idOrName);
        if (!row) {
          process.stderr.write(`ferry: no connector "${idOrName}" (see "ferry relay connectors list")\n`);
          return EXIT_FAILURE;
        }
        process.stdout.write(`removed connector ${row.name} (${row.id}); its tunnels close and it cannot reconnect\n`);
      });
    }));
}

/** Opens the relay's state for one operator command and always closes it. */
async function withAdmin(configFile: string | undefined, action: (admin: RelayAdmin) => Promise<number | void>): Promise<number | void> {
  const admin = RelayAdmin.open(loadRelayConfig(configFile));
  try {
    return await action(admin);
  } finally {
    admin.close();
  }
}

/** Resolves on SIGINT or SIGTERM (the second one exits at once). */
export function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const onSignal = () => {
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}
