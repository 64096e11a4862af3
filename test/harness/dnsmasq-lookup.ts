// A real dnsmasq on a free loopback UDP/TCP port, authoritative for `.test` (everything not listed
// is NXDOMAIN), with no upstream servers, so no query ever leaves the machine.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import dns from 'node:dns';
import type net from 'node:net';
import { cleanupOnExit, freePort, sleep, spawnManaged, stopChild } from './processes.js';

export interface DnsmasqInstance {
  port: number;
  server: string;
  /** A net.LookupFunction that asks only this dnsmasq (IPv4). */
  lookup: net.LookupFunction;
  stop(): Promise<void>;
}

export async function startDnsmasq(options: { addresses: Record<string, string>; localDomain?: string }): Promise<DnsmasqInstance> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferry-dnsmasq-'));
  const forgetDir = cleanupOnExit(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const lines = [
    `port=${port}`,
    'listen-address=127.0.0.1',
    'bind-interfaces',
    'no-resolv',
    'no-hosts',
    'no-poll',
    `local=/${options.localDomain ?? 'test'}/`,
    ...Object.entries(options.addresses).map(([name, address]) => `address=/${name}/${address}`),
  ];
  writeFileSync(path.join(dir, 'dnsmasq.conf'), `${lines.join('\n')}\n`);
  const child = spawnManaged('/usr/sbin/dnsmasq', [`--conf-file=${path.join(dir, 'dnsmasq.conf')}`, '--keep-in-foreground', `--pid-file=${path.join(dir, 'pid')}`, '--user=root']);
  const resolver = new dns.Resolver({ timeout: 1_000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  const names = Object.keys(options.addresses);
  for (let attempt = 0; ; attempt += 1) {
    if (child.exitCode !== null) throw new Error('dnsmasq exited at start');
    const ok = await new Promise<boolean>((resolve) => resolver.resolve4(names[0] ?? 'localhost.test', (error) => resolve(!error || error.code === 'ENOTFOUND')));
    if (ok) break;
    if (attempt > 50) throw new Error('dnsmasq did not answer');
    await sleep(100);
  }
  const lookup = ((hostname: string, lookupOptions: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    resolver.resolve4(hostname, (error, addresses) => {
      if (error) {
        callback(error);
        return;
      }
      if (lookupOptions.all) callback(null, addresses.map((address) => ({ address, family: 4 })));
      else callback(null, addresses[0], 4);
    });
  }) as unknown as net.LookupFunction;
  return {
    port,
    server: `127.0.0.1:${port}`,
    lookup,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
      forgetDir();
    },
  };
}
