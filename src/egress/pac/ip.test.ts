import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertAddr, firstIPv4, ipInPrefix, ipv4InNet, ipv4ToNumber, ipv6ToBigInt, sortIpAddressList } from './ip.js';

test('ipv4ToNumber', () => {
  assert.equal(ipv4ToNumber('0.0.0.0'), 0);
  assert.equal(ipv4ToNumber('255.255.255.255'), 0xffffffff);
  assert.equal(ipv4ToNumber('10.1.2.3'), 0x0a010203);
  for (const bad of ['256.0.0.1', '1.2.3', 'a.b.c.d', '', '1.2.3.4.5']) assert.equal(ipv4ToNumber(bad), undefined, bad);
});

test('ipv6ToBigInt', () => {
  assert.equal(ipv6ToBigInt('::'), 0n);
  assert.equal(ipv6ToBigInt('::1'), 1n);
  assert.equal(ipv6ToBigInt('2001:db8::1'), (0x20010db8n << 96n) | 1n);
  assert.equal(ipv6ToBigInt('::ffff:10.0.0.1'), (0xffffn << 32n) | 0x0a000001n);
  assert.equal(ipv6ToBigInt('[fe80::1%eth0]'), (0xfe80n << 112n) | 1n);
  assert.equal(ipv6ToBigInt('1:2:3:4:5:6:7:8'), 0x00010002000300040005000600070008n);
  for (const bad of ['1.2.3.4', 'gggg::', ':::', '1:2:3:4:5:6:7:8:9']) assert.equal(ipv6ToBigInt(bad), undefined, bad);
});

test('convertAddr is the signed 32-bit value, as in Mozilla and pacparser', () => {
  assert.equal(convertAddr('10.0.0.1'), 167772161);
  assert.equal(convertAddr('192.168.1.1'), -1062731519);
  assert.equal(convertAddr('0.0.0.0'), 0);
});

test('ipv4InNet', () => {
  const cases: [string, string, string, boolean][] = [
    ['10.1.2.3', '10.0.0.0', '255.0.0.0', true],
    ['11.1.2.3', '10.0.0.0', '255.0.0.0', false],
    ['192.168.1.77', '192.168.1.0', '255.255.255.0', true],
    ['192.168.2.77', '192.168.1.0', '255.255.255.0', false],
    ['1.2.3.4', '0.0.0.0', '0.0.0.0', true],
    ['1.2.3.4', '1.2.3.4', '255.255.255.255', true],
    ['bad', '1.2.3.4', '255.255.255.255', false],
  ];
  for (const [ip, pattern, mask, expected] of cases) assert.equal(ipv4InNet(ip, pattern, mask), expected, `${ip} ${pattern}/${mask}`);
});

test('ipInPrefix (isInNetEx)', () => {
  const cases: [string, string, boolean][] = [
    ['10.1.2.3', '10.0.0.0/8', true],
    ['11.1.2.3', '10.0.0.0/8', false],
    ['198.95.249.79', '198.95.249.79/32', true],
    ['198.95.249.80', '198.95.249.79/32', false],
    ['198.95.6.8', '198.95.0.0/16', true],
    ['1.2.3.4', '0.0.0.0/0', true],
    ['10.0.0.1', '10.0.0.0/33', false],
    ['2001:db8::1', '2001:db8::/32', true],
    ['2001:db9::1', '2001:db8::/32', false],
    ['3ffe:8311:ffff::', '3ffe:8311:fff::/36', false],
    ['fe80::1', 'fe80::/10', true],
    ['febf::1', 'fe80::/10', true],
    ['fec0::1', 'fe80::/10', false],
    ['10.0.0.1', '::/0', false],
    ['2001:db8::1', '10.0.0.0/8', false],
    ['10.0.0.1', '10.0.0.0', false],
  ];
  for (const [ip, prefix, expected] of cases) assert.equal(ipInPrefix(ip, prefix), expected, `${ip} in ${prefix}`);
});

test('sortIpAddressList: IPv6 first, then IPv4, each ascending; "" when an entry is not an address', () => {
  assert.equal(sortIpAddressList('10.2.3.9;2001:4898:28:3:201:2ff:feea:fc14;::1;127.0.0.1;::9'), '::1;::9;2001:4898:28:3:201:2ff:feea:fc14;10.2.3.9;127.0.0.1');
  assert.equal(sortIpAddressList('10.0.0.10;10.0.0.9'), '10.0.0.9;10.0.0.10');
  assert.equal(sortIpAddressList('10.0.0.1;nonsense'), '');
  assert.equal(sortIpAddressList(''), '');
});

test('firstIPv4', () => {
  assert.equal(firstIPv4(['::1', '10.0.0.1', '10.0.0.2']), '10.0.0.1');
  assert.equal(firstIPv4(['::1']), null);
  assert.equal(firstIPv4([]), null);
});
