// IP address arithmetic for the PAC builtins (isInNet, isInNetEx, convert_addr, sortIpAddressList).
// Pure functions, no DNS: the engine resolves names before calling these.
import { isIPv4, isIPv6 } from 'node:net';

/** IPv4 dotted quad to an unsigned 32-bit number, or undefined when not a strict dotted quad. */
export function ipv4ToNumber(text: string): number | undefined {
  if (!isIPv4(text)) return undefined;
  return text.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** IPv6 text (optionally with an embedded IPv4 tail or a %zone) to a 128-bit bigint. */
export function ipv6ToBigInt(text: string): bigint | undefined {
  const bare = text.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (!isIPv6(bare)) return undefined;
  let head = bare;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes its two 16-bit groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  if (v4) {
    const n = ipv4ToNumber(v4[1]);
    if (n === undefined) return undefined;
    head = bare.slice(0, -v4[1].length) + `${Math.floor(n / 65536).toString(16)}:${(n % 65536).toString(16)}`;
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const leftParts = left ? left.split(':').filter((p) => p !== '') : [];
  const rightParts = right ? right.split(':').filter((p) => p !== '') : [];
  const fill = 8 - leftParts.length - rightParts.length;
  if (fill < 0 || (right === undefined && fill !== 0)) return undefined;
  const groups = [
    ...leftParts.map((p) => parseInt(p, 16)),
    ...new Array<number>(right === undefined ? 0 : fill).fill(0),
    ...rightParts.map((p) => parseInt(p, 16)),
  ];
  if (groups.length !== 8 || groups.some((g) => !(g >= 0 && g <= 0xffff))) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/**
 * convert_addr as Mozilla and pacparser define it: the four bytes as a SIGNED 32-bit integer
 * (their implementation uses `<<` and `|`), so 192.168.1.1 gives -1062731519.
 */
export function convertAddr(text: string): number {
  const bytes = text.split('.').map((b) => Number(b) & 0xff);
  return ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) | 0;
}

/** isInNet's test once the host is an IPv4 literal: (ip & mask) == (pattern & mask). */
export function ipv4InNet(ip: string, pattern: string, mask: string): boolean {
  const ipN = ipv4ToNumber(ip);
  const patternN = ipv4ToNumber(pattern);
  const maskN = ipv4ToNumber(mask);
  if (ipN === undefined || patternN === undefined || maskN === undefined) return false;
  return ((ipN & maskN) >>> 0) === ((patternN & maskN) >>> 0);
}

/** isInNetEx's test: `ip` within the CIDR `prefix` ("10.0.0.0/8", "2001:db8::/32"); families must match. */
export function ipInPrefix(ip: string, prefix: string): boolean {
  const slash = prefix.lastIndexOf('/');
  if (slash < 0) return false;
  const net = prefix.slice(0, slash);
  const lengthText = prefix.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lengthText)) return false;
  const length = Number(lengthText);
  const ip4 = ipv4ToNumber(ip);
  const net4 = ipv4ToNumber(net);
  if (ip4 !== undefined && net4 !== undefined) {
    if (length > 32) return false;
    const mask = length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
    return ((ip4 & mask) >>> 0) === ((net4 & mask) >>> 0);
  }
  const ip6 = ipv6ToBigInt(ip);
  const net6 = ipv6ToBigInt(net);
  if (ip6 === undefined || net6 === undefined || length > 128) return false;
  const shift = BigInt(128 - length);
  return ip6 >> shift === net6 >> shift;
}

/**
 * sortIpAddressList as Microsoft describes it: IPv6 addresses first, then IPv4, each in ascending
 * numeric order. Returns '' when any entry is not an IP address (Microsoft returns false; an empty
 * string is falsy too and keeps the return type a string).
 */
export function sortIpAddressList(list: string): string {
  const entries = list.split(';').map((e) => e.trim()).filter((e) => e !== '');
  if (entries.length === 0) return '';
  const v6: { text: string; n: bigint }[] = [];
  const v4: { text: string; n: number }[] = [];
  for (const text of entries) {
    const n4 = ipv4ToNumber(text);
    if (n4 !== undefined) {
      v4.push({ text, n: n4 });
      continue;
    }
    const n6 = ipv6ToBigInt(text);
    if (n6 === undefined) return '';
    v6.push({ text, n: n6 });
  }
  v6.sort((a, b) => (a.n < b.n ? -1 : a.n > b.n ? 1 : 0));
  v4.sort((a, b) => a.n - b.n);
  return [...v6, ...v4].map((e) => e.text).join(';');
}

/** First IPv4 address of a list, or null (dnsResolve and myIpAddress answer IPv4 only). */
export function firstIPv4(addresses: readonly string[]): string | null {
  return addresses.find((a) => isIPv4(a)) ?? null;
}

export { isIPv4, isIPv6 };
