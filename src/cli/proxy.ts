// `ferry proxy show URL`: the route list for one exact URL and where it came from, like
// `netsh winhttp show proxy` but per destination. Composition only: the resolver does the work.
import type { Command } from 'commander';
import { proxySourcesOf } from '../config/proxy-settings.js';
import { formatRoute } from '../egress/pac/index.js';
import { createProxyResolver, loadProxyResolverOptions, DEFAULT_MACHINE_CONFIG, type ProxyResolverOptions } from '../egress/resolve/index.js';
import type { Caller, RouteDecision } from '../egress/types.js';
import { redact } from '../shared/redact.js';
import { UsageError } from '../shared/errors.js';
import { runAction } from './run-action.js';
import { registerProxyRulesCommand } from './proxy-rules.js';

interface ShowOptions {
  for: string;
  config?: string;
  machineConfig?: string;
  json?: boolean;
  dnsServer?: string[];
  domainSuffix?: string;
  wpadPort?: string;
}

const CALLERS: readonly Caller[] = ['connector', 'updater', 'backend'];

export function registerProxyCommands(program: Command): void {
  const proxy = program.command('proxy').description('Inspect how Ferry reaches the outside world through proxies');
  proxy
    .command('show')
    .description('Show the proxy route list for one URL and where it came from (file and line, WPAD, PAC)')
    .argument('<url>', 'the exact URL to resolve, e.g. https://relay.example.com/')
    .option('--for <caller>', 'which service asks: connector, updater or backend', 'connector')
    .option('--config <file>', "that service's config file (.NET .config XML or Ferry YAML; its proxyConfig and machineConfig keys are followed)")
    .option('--machine-config <file>', `the machine-wide proxy settings file (default: the config's machineConfig, else ${DEFAULT_MACHINE_CONFIG}; missing = none)`)
    .option('--dns-server <addr>', 'DNS server for WPAD and PAC lookups (repeatable; default: the system resolver)', collect, [])
    .option('--domain-suffix <suffix>', 'the machine DNS domain (default: /etc/resolv.conf domain/search)')
    .option('--wpad-port <port>', 'port of the wpad.dat server (default 80; for tests)')
    .option('--json', 'print one JSON document')
    .action(runAction(async (rawUrl: string, options: ShowOptions) => {
      const caller = options.for as Caller;
      if (!CALLERS.includes(caller)) throw new UsageError(`--for ${options.for} is not a caller`, 'use --for connector, updater or backend');
      let url: URL;
      try {
        url = new URL(rawUrl);
      } catch {
        throw new UsageError(`"${rawUrl}" is not an absolute URL`, 'give the full URL, e.g. https://relay.example.com/');
      }
      const wpadPort = options.wpadPort === undefined ? undefined : Number(options.wpadPort);
      if (wpadPort !== undefined && !(Number.isInteger(wpadPort) && wpadPort > 0 && wpadPort < 65536)) {
        throw new UsageError(`--wpad-port ${options.wpadPort} is not a port number`);
      }
      const base: ProxyResolverOptions = {
        ...(options.domainSuffix ? { dnsDomain: options.domainSuffix } : {}),
        wpad: {
          ...(options.dnsServer?.length ? { dnsServers: options.dnsServer } : {}),
          ...(wpadPort ? { port: wpadPort } : {}),
        },
      };
      // The service's own reading of its file: a proxyConfig or machineConfig key in it counts.
      const sources = proxySourcesOf(options.config);
      const resolverOptions = await loadProxyResolverOptions({
        [caller]: sources.proxySettingsFile,
        machine: options.machineConfig ?? sources.machineConfig ?? DEFAULT_MACHINE_CONFIG,
      }, base);
      const resolver = createProxyResolver(resolverOptions);
      try {
        const decision = await resolver.resolve(url, caller);
        process.stdout.write(options.json ? `${JSON.stringify(toJson(url, caller, decision), null, 2)}\n` : renderText(url, caller, decision));
      } finally {
        resolver.close();
      }
      return 0;
    }));
  registerProxyRulesCommand(proxy);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function toJson(url: URL, caller: Caller, decision: RouteDecision): unknown {
  const { provenance } = decision;
  return {
    url: redact(url.href),
    caller,
    routes: decision.routes.map(formatRoute),
    provenance: {
      source: provenance.source,
      detail: redact(provenance.detail),
      ...(provenance.file ? { file: provenance.file } : {}),
      ...(provenance.line ? { line: provenance.line } : {}),
      ...(provenance.pacResult !== undefined ? { pacResult: provenance.pacResult } : {}),
      ...(provenance.wpad ? { wpad: provenance.wpad } : {}),
      notes: (provenance.notes ?? []).map(redact),
    },
    proxyAuthentication: !decision.proxyCredentials ? 'none' : decision.proxyCredentials.onlyWhenAsked ? 'default-credentials' : 'configured',
    ...(decision.proxyCredentials ? { proxyAuthScheme: decision.proxyCredentials.scheme ?? 'basic' } : {}),
  };
}

function renderText(url: URL, caller: Caller, decision: RouteDecision): string {
  const { provenance } = decision;
  const lines = [
    `Proxy routes for ${redact(url.href)} (caller: ${caller})`,
    `  routes:  ${decision.routes.map(formatRoute).join('; ')}`,
    `  source:  ${provenance.source}${provenance.file ? ` (${provenance.file}${provenance.line ? `:${provenance.line}` : ''})` : ''}`,
    `  why:     ${redact(provenance.detail)}`,
  ];
  if (provenance.wpad) lines.push(`  wpad:    tried ${provenance.wpad.tried.join(', ') || '(none)'}${provenance.wpad.url ? `; script ${provenance.wpad.url}` : ''}`);
  if (provenance.pacResult !== undefined) lines.push(`  pac:     returned "${provenance.pacResult}"`);
  for (const note of provenance.notes ?? []) lines.push(`  note:    ${redact(note)}`);
  if (decision.proxyCredentials?.onlyWhenAsked) lines.push('  auth:    useDefaultCredentials: Negotiate (Kerberos) with the service\'s own identity, when the proxy asks');
  else if (decision.proxyCredentials) lines.push(`  auth:    proxy credentials configured, scheme ${decision.proxyCredentials.scheme ?? 'basic'} (not shown)`);
  return `${lines.join('\n')}\n`;
}
