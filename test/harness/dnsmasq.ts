// A real dnsmasq for tests (from /work/shared/test-services/dnsmasq.conf): authoritative-ish answers
// for the names a test gives, NXDOMAIN for the rest of `.test`, no upstream. It writes its own config
// into a temp state folder, runs in the foreground as a child, and is stopped by its PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as dns } from 'node:dns';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type net from 'node:net';
import { lookupVia } from '../../src/connector/egress.js';

export interface DnsmasqOptions {
  /** Listen address (default 127.0.0.53) and port (default 53). */
  address?: string;
  port?: number;
  /** name → IPv4 address (`address=/name/ip`, which also answers sub-names). */
  records?: Record<string, string>;
  /** Domains answered NXDOMAIN for everything not in records (default ['test']). */
  nxDomains?: string[];
}

export interface DnsmasqHandle {
  address: string;
  port: number;
  /** `address` or `address:port`, for Ferry's dnsServers settings. */
  server: string;
  stateDir: string;
  /** The query log so far (log-queries). */
  log(): Promise<string>;
  /** A net.LookupFunction that asks only this dnsmasq (IPv4), for a dialer's `lookup` option. */
  lookup: net.LookupFunction;
  stop(): Promise<void>;
}

export async function startDnsmasq(options: DnsmasqOptions = {}): Promise<DnsmasqHandle> {
  const address = options.address ?? '127.0.0.53';
  const port = options.port ?? 53;
  const stateDir = await mkdtemp(join(tmpdir(), 'ferry-dnsmasq-'));
  const records = options.records ?? { 'wpad.corp.test': '127.0.0.1', 'relay.test': '127.0.0.1', 'app.internal.test': '127.0.0.1' };
  const lines = [
    `port=${port}`,
    `listen-address=${address}`,
    'bind-interfaces',
    'no-resolv',
    'no-hosts',
    'no-poll',
    'user=root',
    `pid-file=${join(stateDir, 'dnsmasq.pid')}`,
    'log-queries',
    `log-facility=${join(stateDir, 'dnsmasq.log')}`,
    ...Object.entries(records).map(([name, ip]) => `address=/${name}/${ip}`),
    ...(options.nxDomains ?? ['test']).map((domain) => `address=/${domain}/`),
  ];
  await writeFile(join(stateDir, 'dnsmasq.conf'), `${lines.join('\n')}\n`);
  const child: ChildProcess = spawn('dnsmasq', [`--conf-file=${join(stateDir, 'dnsmasq.conf')}`, '--keep-in-foreground'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(stateDir, { recursive: true, force: true });
  };

  // Ready when it answers a query for a known name (bounded wait).
  const probeName = Object.keys(records)[0];
  const resolver = new dns.Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([port === 53 ? address : `${address}:${port}`]);
  for (let attempt = 0; attempt < 50; attempt += 1) {
    if (child.exitCode !== null) break;
    try {
      if (!probeName) break;
      await resolver.resolve4(probeName);
      break;
    } catch {
      await sleep(100);
    }
  }
  if (child.exitCode !== null) {
    await stop();
    throw new Error(`dnsmasq exited at start (is ${address}:${port} already in use?): ${stderr.trim()}`);
  }
  return {
    address,
    port,
    server: port === 53 ? address : `${address}:${port}`,
    stateDir,
    log: () => readFile(join(stateDir, 'dnsmasq.log'), 'utf8').catch(() => ''),
    lookup: lookupVia([port === 53 ? address : `${address}:${port}`]),
    stop,
  };
}
