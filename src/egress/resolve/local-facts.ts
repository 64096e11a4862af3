// What the machine knows about itself: its DNS domain (the primary DNS suffix of doc §5, and the
// default WPAD suffix) and its interface addresses.
import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';

/** The `domain` or first `search` entry; like the C resolver, the last of those lines wins. */
export function parseResolvConfDomain(text: string): string | undefined {
  let domain: string | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/[#;].*$/, '').trim();
    const [keyword, first] = line.split(/\s+/);
    if ((keyword === 'domain' || keyword === 'search') && first && first !== '.') domain = first.toLowerCase().replace(/\.$/, '');
  }
  return domain;
}

export async function readLocalDnsDomain(path = DEFAULT_RESOLV_CONF): Promise<string | undefined> {
  try {
    return parseResolvConfDomain(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** This machine's addresses, IPv4 first, loopback last (PAC's myIpAddress prefers a real address). */
export function machineAddresses(): string[] {
  const all = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  const rank = (entry: { internal: boolean; family: string | number }): number => (entry.internal ? 2 : 0) + (entry.family === 'IPv4' || entry.family === 4 ? 0 : 1);
  return all.sort((a, b) => rank(a) - rank(b)).map((entry) => entry.address.replace(/%.*$/, ''));
}
