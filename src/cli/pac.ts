// `ferry pac eval`: a pactester for operators. Loads one PAC file in the sandbox, pins DNS, local
// addresses, clock and time zone as asked, and prints what the script returns for each URL.
import { promises as dns } from 'node:dns';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { createPacEngine, parsePacResult, PacError, type PacEngine, type PacEnvironment } from '../egress/pac/index.js';
import { isKnownTimeZone } from '../egress/pac/time.js';
import { UsageError } from '../shared/errors.js';
import { EXIT_FAILURE, EXIT_OK, runAction } from './run-action.js';

const SYSTEM_DNS_TIMEOUT_MS = 5000;

interface PacEvalOptions {
  pac: string;
  host?: string;
  dns?: boolean | string[];
  myIp?: string[];
  now?: Date;
  tz?: string;
  json?: boolean;
}

type EvalLine = { url: string; host: string; result: string } | { url: string; host: string; error: { class: string; message: string } };

/** "a;b" → IP literals; throws InvalidArgumentError (a usage error, exit 2) otherwise. */
function parseAddressList(text: string, what: string): string[] {
  const addresses = text.split(';').map((a) => a.trim()).filter((a) => a !== '');
  for (const address of addresses) {
    if (isIP(address) === 0) throw new InvalidArgumentError(`${what}: "${address}" is not an IP address`);
  }
  return addresses;
}

/** The host a browser passes to FindProxyForURL: the URL's host name, IPv6 literals without brackets. */
function hostOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`"${url}" is not a URL`, 'give full URLs, e.g. https://app.example.com/');
  }
  return parsed.hostname.replace(/^\[(.*)\]$/, '$1');
}

function systemAddresses(): string[] {
  const all = Object.values(networkInterfaces()).flat().filter((i) => i !== undefined && !i.internal);
  const v4 = all.filter((i) => i!.family === 'IPv4').map((i) => i!.address);
  const v6 = all.filter((i) => i!.family === 'IPv6').map((i) => i!.address);
  return [...v4, ...v6];
}

async function systemResolve(host: string): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string[]>((resolve) => {
    timer = setTimeout(() => resolve([]), SYSTEM_DNS_TIMEOUT_MS);
  });
  try {
    const lookup = dns.lookup(host, { all: true, verbatim: true }).then((r) => r.map((a) => a.address), () => []);
    return await Promise.race([lookup, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function registerPacCommands(program: Command): void {
  const pinned = new Map<string, string[]>();
  const pac = program.command('pac').description('PAC (proxy auto-config) tools');
  pac
    .command('eval')
    .description('evaluate a PAC file for URLs with DNS, local addresses, clock and time zone pinned')
    .requiredOption('--pac <file>', 'the PAC file')
    .option('--host <host>', 'host passed to FindProxyForURL (default: the host of each URL)')
    .option('--dns <host=addr[;addr...]>', 'pin a DNS answer (repeatable); only pinned names resolve', (spec: string, previous: unknown) => {
      const eq = spec.indexOf('=');
      const name = eq > 0 ? spec.slice(0, eq).trim().toLowerCase() : '';
      if (name === '') throw new InvalidArgumentError(`expected HOST=ADDR[;ADDR...], got "${spec}"`);
      pinned.set(name, parseAddressList(spec.slice(eq + 1), `--dns ${name}`));
      return Array.isArray(previous) ? [...previous, spec] : [spec];
    })
    .option('--no-dns', 'resolve no names except those pinned with --dns')
    .option('--my-ip <addr[;addr...]>', "this machine's addresses for myIpAddress/myIpAddressEx", (v: string) => {
      const list = parseAddressList(v, '--my-ip');
      if (list.length === 0) throw new InvalidArgumentError('--my-ip needs at least one address');
      return list;
    })
    .option('--now <iso-8601>', 'the clock for weekdayRange/dateRange/timeRange and Date', (v: string) => {
      const date = new Date(v);
      if (Number.isNaN(date.getTime())) throw new InvalidArgumentError(`"${v}" is not an ISO-8601 date, e.g. 2026-03-04T10:00:00Z`);
      return date;
    })
    .option('--tz <zone>', 'IANA time zone for ranges without "GMT" (default: the local zone)', (v: string) => {
      if (!isKnownTimeZone(v)) throw new InvalidArgumentError(`"${v}" is not a known IANA time zone, e.g. Europe/Paris`);
      return v;
    })
    .option('--json', 'print {"results":[...]} as JSON')
    .argument('<url...>', 'URLs to evaluate, in order, on one loaded script')
    .action(runAction(async (urls: string[], options: PacEvalOptions) => pacEval(urls, options, pinned)));
}

async function pacEval(urls: string[], options: PacEvalOptions, pinned: Map<string, string[]>): Promise<number> {
  // Every URL must be one, --host or not (exit 2 for "not a URL", as documented).
  const targets = urls.map((url) => {
    const host = hostOf(url);
    return { url, host: options.host ?? host };
  });
  let script: string;
  try {
    script = await readFile(options.pac, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the PAC file ${options.pac}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, 'check the --pac path');
  }
  // --dns or --no-dns: only pinned names resolve. Neither: the system resolver answers.
  const pinnedOnly = options.dns === false || pinned.size > 0;
  if (options.tz) process.env.TZ = options.tz; // so the script's own Date local time agrees with --tz
  const myAddresses = options.myIp ?? systemAddresses();
  const now = options.now;
  const env: PacEnvironment = {
    resolve: async (host) => (pinnedOnly ? pinned.get(host.toLowerCase()) ?? [] : systemResolve(host)),
    myAddresses: () => myAddresses,
    now: () => now ?? new Date(),
    timeZone: options.tz,
    alert: (message) => process.stderr.write(`alert: ${message}\n`),
  };

  const lines: EvalLine[] = [];
  let engine: PacEngine | undefined;
  let loadError: PacError | undefined;
  try {
    engine = await createPacEngine(script, env);
  } catch (error) {
    if (!(error instanceof PacError)) throw error;
    loadError = error;
  }
  try {
    for (const { url, host } of targets) {
      if (loadError) {
        lines.push({ url, host, error: { class: loadError.pacClass, message: loadError.message } });
        continue;
      }
      try {
        lines.push({ url, host, result: await (engine as PacEngine).findProxy(url, host) });
      } catch (error) {
        if (!(error instanceof PacError)) throw error;
        lines.push({ url, host, error: { class: error.pacClass, message: error.message } });
      }
    }
  } finally {
    engine?.dispose();
  }

  if (options.json) {
    // Entries Ferry would ignore go with their result (the text form warns on stderr).
    const results = lines.map((line) => {
      const ignored = 'result' in line ? parsePacResult(line.result).invalid : [];
      return ignored.length ? { ...line, ignored: ignored.map(({ entry, reason }) => ({ entry, reason })) } : line;
    });
    process.stdout.write(`${JSON.stringify({ results })}\n`);
  } else {
    for (const line of lines) {
      if ('result' in line) {
        process.stdout.write(`${line.url}  ${JSON.stringify(line.result)}\n`);
        for (const bad of parsePacResult(line.result).invalid) {
          process.stderr.write(`ferry: warning: ${line.url}: ignoring invalid entry "${bad.entry}": ${bad.reason}\n`);
        }
      } else {
        process.stdout.write(`${line.url}  error (${line.error.class}): ${line.error.message}\n`);
      }
    }
  }
  return lines.some((line) => 'error' in line) ? EXIT_FAILURE : EXIT_OK;
}
