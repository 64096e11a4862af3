// doc §4–§7 through the resolver: manual rule, IsLocal, bypass regexes, environment, script first with
// manual fail-over, layering per caller, caching. The PAC engine is the real one; WPAD is a test double
// here (the real discovery is exercised against dnsmasq in test/integration/wpad.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseProxySettings } from '../../config/proxy-settings.js';
import { formatRoute } from '../pac/index.js';
import type { Caller } from '../types.js';
import type { WpadResult, WpadSource } from '../wpad/index.js';
import { createProxyResolver, type ProxyResolverOptions } from './index.js';

const xmlLayer = (inner: string, file = 'svc.config') =>
  parseProxySettings(`<configuration>\n<system.net>\n${inner}\n</system.net>\n</configuration>\n`, file);
const seed2 = '<defaultProxy><proxy proxyaddress="http://proxyserver:8080" bypassonlocal="True" usesystemdefault="True"/></defaultProxy>';

async function routes(options: ProxyResolverOptions, url: string, caller: Caller = 'connector'): Promise<string> {
  const resolver = createProxyResolver({ env: {}, localAddresses: ['10.1.2.3', '127.0.0.1'], dnsDomain: 'corp.contoso.com', ...options });
  try {
    const decision = await resolver.resolve(new URL(url), caller);
    return decision.routes.map(formatRoute).join('; ');
  } finally {
    resolver.close();
  }
}

function fakeWpad(result: WpadResult): WpadSource & { calls: number; fire(r: WpadResult): void } {
  const listeners = new Set<(r: WpadResult) => void>();
  const source = {
    calls: 0,
    async discover() {
      source.calls += 1;
      return result;
    },
    onChange(listener: (r: WpadResult) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stopRechecking() {},
    fire(r: WpadResult) {
      result = r;
      for (const l of listeners) l(r);
    },
  };
  return source;
}

const pacFound = (body: string): WpadResult => ({
  found: true,
  name: 'wpad.corp.contoso.com',
  address: '127.0.0.1',
  url: 'http://wpad.corp.contoso.com/wpad.dat',
  script: `function FindProxyForURL(url, host) { ${body} }`,
  sha1: 'x',
  tried: ['wpad.corp.contoso.com'],
});

// ---- §4.2 / §5: the seed's proxy line with bypassonlocal (primary DNS suffix corp.contoso.com) ----
const seedRows: [string, string][] = [
  ['https://relay.example.com/', 'PROXY proxyserver:8080'],
  ['https://intranet/', 'DIRECT'], // single label: local
  ['http://webserver:8080/x', 'DIRECT'],
  ['https://app.corp.contoso.com/', 'DIRECT'], // in the primary domain
  ['https://APP.Corp.Contoso.com/', 'DIRECT'],
  ['https://a.b.corp.contoso.com/', 'PROXY proxyserver:8080'], // deeper: not local (source, not D6)
  ['https://app.contoso.com/', 'PROXY proxyserver:8080'],
  ['https://10.1.2.3/', 'DIRECT'], // this machine's own address
  ['https://10.9.9.9/', 'PROXY proxyserver:8080'], // private is not local
  ['https://192.168.1.1/', 'PROXY proxyserver:8080'],
  ['http://localhost:8080/', 'DIRECT'],
  ['http://loopback/', 'DIRECT'],
  ['http://127.5.6.7/', 'DIRECT'],
  ['http://[::1]:3000/', 'DIRECT'],
];
for (const [url, expected] of seedRows) {
  test(`seed snippet 2: ${url} → ${expected}`, async () => {
    assert.equal(await routes({ layers: { connector: xmlLayer(seed2) } }, url), expected);
  });
}

test('loopback is DIRECT even with bypassonlocal="false" and no bypass entry', async () => {
  const layers = { connector: xmlLayer('<defaultProxy><proxy proxyaddress="http://p:3128" bypassonlocal="false"/></defaultProxy>') };
  assert.equal(await routes({ layers }, 'http://localhost/'), 'DIRECT');
  assert.equal(await routes({ layers }, 'http://127.0.0.1:9/'), 'DIRECT');
  assert.equal(await routes({ layers }, 'http://intranet/'), 'PROXY p:3128');
});

test('seed snippet 1: enabled="false" → DIRECT for everything, provenance names file:line', async () => {
  const resolver = createProxyResolver({ env: { HTTPS_PROXY: 'http://envproxy:1' }, layers: { connector: xmlLayer('<defaultProxy enabled="false"></defaultProxy>', 'connector.config') } });
  const decision = await resolver.resolve(new URL('https://relay.example.com/'), 'connector');
  assert.deepEqual(decision.routes, [{ kind: 'DIRECT' }]);
  assert.equal(decision.provenance.source, 'config');
  assert.equal(decision.provenance.file, 'connector.config');
  assert.equal(decision.provenance.line, 3);
  assert.match(decision.provenance.detail, /connector\.config:3 enabled=false/);
});

// ---- §6: bypass regexes against scheme://host[:port] ----
const bypassRows: { pattern: string; url: string; bypassed: boolean }[] = [
  { pattern: 'contoso\\.com$', url: 'http://www.contoso.com/', bypassed: true },
  { pattern: 'contoso\\.com$', url: 'https://www.contoso.com/a?b', bypassed: true },
  { pattern: 'contoso\\.com$', url: 'http://www.contoso.com:8080/', bypassed: false },
  { pattern: 'contoso\\.com$', url: 'https://www.contoso.com:443/', bypassed: true }, // default port is not appended
  { pattern: 'contoso\\.com$', url: 'http://notcontoso.com/', bypassed: true },
  { pattern: '192\\.168\\.\\d{1,3}\\.\\d{1,3}', url: 'http://x192.168.1.1.example.net/', bypassed: true },
  { pattern: '[a-z]+\\.contoso\\.com', url: 'http://www.contoso.com.cpandl.com/', bypassed: true },
  { pattern: '[a-z]+\\.contoso\\.com$', url: 'http://www.contoso.com.cpandl.com/', bypassed: false },
  { pattern: '^https://', url: 'http://www.fabrikam.com/', bypassed: false },
  { pattern: '^https://', url: 'https://www.fabrikam.com/', bypassed: true },
  { pattern: 'CONTOSO', url: 'https://www.contoso.com/', bypassed: true }, // IgnoreCase
  { pattern: '^http://\\[fe80::1\\]$', url: 'http://[fe80::1]/', bypassed: true },
  { pattern: ':8443$', url: 'wss://relay.example:8443/', bypassed: true },
];
for (const row of bypassRows) {
  test(`§6: "${row.pattern}" vs ${row.url} → ${row.bypassed ? 'DIRECT' : 'proxy'}`, async () => {
    const layers = { connector: xmlLayer(`<defaultProxy><proxy proxyaddress="http://p:3128"/><bypasslist><add address="${row.pattern}"/></bypasslist></defaultProxy>`) };
    assert.equal(await routes({ layers }, row.url), row.bypassed ? 'DIRECT' : 'PROXY p:3128');
  });
}

test('§4.2.2: a section without an address (only bypassonlocal / bypass list) sends everything DIRECT', async () => {
  assert.equal(await routes({ env: { HTTPS_PROXY: 'http://env:1' }, layers: { connector: xmlLayer('<defaultProxy><proxy bypassonlocal="true"/></defaultProxy>') } }, 'https://x.example/'), 'DIRECT');
});

// ---- the Linux system settings (environment, curl conventions) ----
const envRows: { env: NodeJS.ProcessEnv; url: string; expected: string }[] = [
  { env: { HTTPS_PROXY: 'http://envproxy:3128' }, url: 'https://relay.example/', expected: 'PROXY envproxy:3128' },
  { env: { HTTPS_PROXY: 'envproxy:3128' }, url: 'https://relay.example/', expected: 'PROXY envproxy:3128' },
  { env: { HTTPS_PROXY: 'envproxy' }, url: 'https://relay.example/', expected: 'PROXY envproxy:1080' },
  { env: { HTTPS_PROXY: 'https://secure-proxy' }, url: 'https://relay.example/', expected: 'HTTPS secure-proxy:443' },
  { env: { HTTPS_PROXY: 'http://envproxy:3128' }, url: 'http://plain.example/', expected: 'DIRECT' },
  { env: { http_proxy: 'http://h:1', HTTP_PROXY: 'http://H:2' }, url: 'http://plain.example/', expected: 'PROXY h:1' },
  { env: { HTTP_PROXY: 'http://upper:2' }, url: 'ws://plain.example/', expected: 'PROXY upper:2' },
  { env: { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' }, url: 'wss://relay.example/', expected: 'PROXY lower:1' },
  { env: { ALL_PROXY: 'socks5h://sox:1081' }, url: 'https://relay.example/', expected: 'SOCKS5 sox:1081' },
  { env: { ALL_PROXY: 'socks5://sox', HTTPS_PROXY: 'http://p:1' }, url: 'https://relay.example/', expected: 'PROXY p:1' },
  { env: { HTTPS_PROXY: '' , ALL_PROXY: 'http://all:9' }, url: 'https://relay.example/', expected: 'PROXY all:9' },
  { env: { HTTPS_PROXY: 'http://p:1', NO_PROXY: '.corp.example, internal.test' }, url: 'https://a.corp.example/', expected: 'DIRECT' },
  { env: { HTTPS_PROXY: 'http://p:1', NO_PROXY: 'corp.example' }, url: 'https://corp.example/', expected: 'DIRECT' },
  { env: { HTTPS_PROXY: 'http://p:1', NO_PROXY: 'corp.example' }, url: 'https://notcorp.example/', expected: 'PROXY p:1' },
  { env: { HTTPS_PROXY: 'http://p:1', no_proxy: '10.0.0.0/8' }, url: 'https://10.20.30.40/', expected: 'DIRECT' },
  { env: { HTTPS_PROXY: 'http://p:1', no_proxy: '10.0.0.0/8' }, url: 'https://11.0.0.1/', expected: 'PROXY p:1' },
  { env: { HTTPS_PROXY: 'http://p:1', NO_PROXY: '*' }, url: 'https://anything.example/', expected: 'DIRECT' },
  { env: { HTTPS_PROXY: 'http://p:1', NO_PROXY: '[fd00::5]' }, url: 'https://[fd00::5]/', expected: 'DIRECT' },
];
for (const row of envRows) {
  test(`env ${JSON.stringify(row.env)}: ${row.url} → ${row.expected}`, async () => {
    // No layer at all: system settings; WPAD has nothing (no suffix).
    assert.equal(await routes({ env: row.env, dnsDomain: undefined }, row.url), row.expected);
  });
}

test('env proxy credentials reach the route, never the provenance', async () => {
  const resolver = createProxyResolver({ env: { HTTPS_PROXY: 'http://alice:s3cret@p:3128' } });
  const decision = await resolver.resolve(new URL('https://relay.example/'), 'connector');
  assert.deepEqual(decision.routes, [{ kind: 'PROXY', host: 'p', port: 3128, username: 'alice', password: 's3cret' }]);
  assert.equal(decision.provenance.source, 'env');
  assert.doesNotMatch(JSON.stringify(decision.provenance), /s3cret/);
  assert.match(decision.provenance.detail, /HTTPS_PROXY=http:\/\/alice:\*\*\*@p:3128/);
});

test('seed line keeps the system NO_PROXY list; a bypasslist replaces it', async () => {
  const env = { HTTPS_PROXY: 'http://env:1', NO_PROXY: '.partner.example' };
  assert.equal(await routes({ env, layers: { connector: xmlLayer(seed2) } }, 'https://x.partner.example/'), 'DIRECT');
  const withList = xmlLayer('<defaultProxy><proxy proxyaddress="http://proxyserver:8080" usesystemdefault="True"/><bypasslist><add address="other\\.example$"/></bypasslist></defaultProxy>');
  assert.equal(await routes({ env, layers: { connector: withList } }, 'https://x.partner.example/'), 'PROXY proxyserver:8080');
  assert.equal(await routes({ env, layers: { connector: withList } }, 'https://a.other.example/'), 'DIRECT');
});

// ---- layering per caller (§1) ----
test('callers: updater has its own layer, backend falls back to the connector, machine file fills gaps', async () => {
  const machine = xmlLayer('<defaultProxy><proxy proxyaddress="http://machine:3128"/></defaultProxy>', 'machine.config');
  const connector = xmlLayer('<defaultProxy><proxy proxyaddress="http://conn:8080"/></defaultProxy>', 'connector.config');
  const updaterNoSection = parseProxySettings('<configuration/>', 'updater.config');
  const opts = { machine, layers: { connector, updater: updaterNoSection } };
  assert.equal(await routes(opts, 'https://r.example/', 'connector'), 'PROXY conn:8080');
  assert.equal(await routes(opts, 'https://r.example/', 'backend'), 'PROXY conn:8080');
  assert.equal(await routes(opts, 'https://r.example/', 'updater'), 'PROXY machine:3128');
  const backend = xmlLayer('<defaultProxy enabled="false"/>', 'backend.config');
  assert.equal(await routes({ ...opts, layers: { ...opts.layers, backend } }, 'https://r.example/', 'backend'), 'DIRECT');
});

test('seed snippet 3: no defaultProxy → machine file decides; none either → auto-detection', async () => {
  const none = parseProxySettings('<configuration><runtime><gcServer enabled="true"/></runtime></configuration>', 'connector.config');
  const machine = xmlLayer('<defaultProxy><proxy proxyaddress="http://machine:3128"/></defaultProxy>', 'machine.config');
  const resolver = createProxyResolver({ env: {}, machine, layers: { connector: none } });
  const viaMachine = await resolver.resolve(new URL('https://r.example/'), 'connector');
  assert.equal(viaMachine.provenance.source, 'machine-config');
  assert.equal(viaMachine.provenance.file, 'machine.config');
  const wpad = fakeWpad(pacFound('return "PROXY wpadproxy:8080";'));
  const auto = createProxyResolver({ env: {}, dnsDomain: 'corp.contoso.com', layers: { connector: none }, deps: { createWpadDiscovery: () => wpad } });
  const decision = await auto.resolve(new URL('https://r.example/'), 'connector');
  assert.deepEqual(decision.routes.map(formatRoute), ['PROXY wpadproxy:8080', 'DIRECT']);
  assert.equal(decision.provenance.source, 'wpad');
  assert.match(decision.provenance.detail, /^WPAD wpad\.corp\.contoso\.com → http:\/\/wpad\.corp\.contoso\.com\/wpad\.dat, PAC returned "PROXY wpadproxy:8080"/);
  auto.close();
  resolver.close();
});

// ---- §7: script first, manual fail-over ----
test('§7: PAC entries first, then the manual rule as the last fail-over entry', async () => {
  const wpad = fakeWpad(pacFound('return "PROXY a:8080; PROXY b:8080";'));
  const opts = { deps: { createWpadDiscovery: () => wpad } };
  assert.equal(await routes(opts, 'https://r.example/'), 'PROXY a:8080; PROXY b:8080; DIRECT');
  assert.equal(await routes({ ...opts, env: { HTTPS_PROXY: 'http://env:3128' } }, 'https://r.example/'), 'PROXY a:8080; PROXY b:8080; PROXY env:3128');
  assert.equal(await routes({ ...opts, env: { HTTPS_PROXY: 'http://a:8080' } }, 'https://r.example/'), 'PROXY a:8080; PROXY b:8080');
});

test('§7: PAC DIRECT, PAC errors (→ DIRECT), invalid entries reported', async () => {
  const direct = fakeWpad(pacFound('return "DIRECT";'));
  assert.equal(await routes({ deps: { createWpadDiscovery: () => direct } }, 'https://r.example/'), 'DIRECT');
  const throwing = fakeWpad(pacFound('throw new Error("boom");'));
  const resolver = createProxyResolver({ env: { HTTPS_PROXY: 'http://env:1' }, dnsDomain: 'corp.contoso.com', deps: { createWpadDiscovery: () => throwing } });
  const decision = await resolver.resolve(new URL('https://r.example/'), 'connector');
  assert.deepEqual(decision.routes.map(formatRoute), ['DIRECT', 'PROXY env:1']);
  assert.match(decision.provenance.detail, /PAC failed \(exception\)/);
  resolver.close();
  const mixed = fakeWpad(pacFound('return "PROXY ok:1; BOGUS x";'));
  const r2 = createProxyResolver({ env: {}, dnsDomain: 'corp.contoso.com', deps: { createWpadDiscovery: () => mixed } });
  const d2 = await r2.resolve(new URL('https://r.example/'), 'connector');
  assert.deepEqual(d2.routes.map(formatRoute), ['PROXY ok:1', 'DIRECT']);
  assert.ok(d2.provenance.notes?.some((n) => /BOGUS/.test(n)), JSON.stringify(d2.provenance.notes));
  assert.equal(d2.provenance.pacResult, 'PROXY ok:1; BOGUS x');
  r2.close();
});

test('§7: WPAD not found → the manual rule decides, with the names tried', async () => {
  const missing = fakeWpad({ found: false, tried: ['wpad.corp.contoso.com', 'wpad.contoso.com'], reason: 'wpad.corp.contoso.com does not resolve' });
  const resolver = createProxyResolver({ env: { HTTPS_PROXY: 'http://env:1' }, dnsDomain: 'corp.contoso.com', deps: { createWpadDiscovery: () => missing } });
  const decision = await resolver.resolve(new URL('https://r.example/'), 'connector');
  assert.deepEqual(decision.routes.map(formatRoute), ['PROXY env:1']);
  assert.equal(decision.provenance.source, 'env');
  assert.deepEqual(decision.provenance.wpad, { tried: ['wpad.corp.contoso.com', 'wpad.contoso.com'] });
  resolver.close();
});

test('loopback never reaches the PAC script', async () => {
  const wpad = fakeWpad(pacFound('return "PROXY a:1";'));
  assert.equal(await routes({ deps: { createWpadDiscovery: () => wpad } }, 'http://127.0.0.1:8080/'), 'DIRECT');
  assert.equal(wpad.calls, 0);
});

test('scriptLocation (file:) is fetched and run; provenance names the setting line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-pac-'));
  try {
    const pac = join(dir, 'proxy.pac');
    await writeFile(pac, 'function FindProxyForURL(url, host) { return shExpMatch(host, "*.internal") ? "DIRECT" : "PROXY pac:3128"; }');
    const layer = xmlLayer(`<defaultProxy>\n<proxy scriptLocation="file://${pac}"/>\n</defaultProxy>`, 'connector.config');
    const resolver = createProxyResolver({ env: {}, layers: { connector: layer } });
    const d = await resolver.resolve(new URL('https://relay.example/'), 'connector');
    assert.deepEqual(d.routes.map(formatRoute), ['PROXY pac:3128', 'DIRECT']);
    assert.equal(d.provenance.source, 'pac');
    assert.equal(d.provenance.file, 'connector.config');
    assert.equal(d.provenance.line, 4);
    assert.deepEqual((await resolver.resolve(new URL('https://app.internal/'), 'connector')).routes, [{ kind: 'DIRECT' }]);
    resolver.close();
    // Unreadable script: download failure → manual rule (here: nothing → DIRECT), with a note.
    const broken = xmlLayer(`<defaultProxy><proxy scriptLocation="file://${dir}/missing.pac"/></defaultProxy>`);
    const r2 = createProxyResolver({ env: {}, layers: { connector: broken } });
    const d2 = await r2.resolve(new URL('https://relay.example/'), 'connector');
    assert.deepEqual(d2.routes, [{ kind: 'DIRECT' }]);
    assert.ok(d2.provenance.notes?.some((n) => /could not be fetched/.test(n)));
    r2.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a scriptLocation script is fetched once per TTL, not per decision; a failed fetch is retried after the negative TTL', async () => {
  let clock = 0;
  let fetches = 0;
  let fails = false;
  const layer = xmlLayer('<defaultProxy><proxy scriptLocation="http://pac.corp.contoso.com/proxy.pac"/></defaultProxy>');
  const resolver = createProxyResolver({
    env: {}, layers: { connector: layer }, wpad: { ttlMs: 1000, negativeTtlMs: 100 },
    deps: {
      now: () => new Date(clock),
      fetchScript: async () => {
        fetches += 1;
        if (fails) throw new Error('HTTP 503');
        return 'function FindProxyForURL(url, host) { return "PROXY pac:3128"; }';
      },
    },
  });
  const get = async (url: string) => (await resolver.resolve(new URL(url), 'connector')).routes.map(formatRoute).join('; ');
  // Plain-http URLs are decided per path: three decisions, one fetch.
  for (const path of ['/a', '/b', '/c']) assert.equal(await get(`http://app.example${path}`), 'PROXY pac:3128; DIRECT');
  await Promise.all(['x', 'y', 'z'].map((h) => get(`https://${h}.example/`)));
  assert.equal(fetches, 1);
  clock = 1001;
  fails = true;
  assert.equal(await get('http://app.example/d'), 'DIRECT', 'after the TTL the script is fetched again; it failed: the manual rule');
  assert.equal(await get('http://app.example/e'), 'DIRECT');
  assert.equal(fetches, 2, 'the failure is kept for the negative TTL');
  clock = 1102;
  fails = false;
  assert.equal(await get('http://app.example/f'), 'PROXY pac:3128; DIRECT');
  assert.equal(fetches, 3);
  resolver.invalidate();
  await get('http://app.example/g');
  assert.equal(fetches, 4, 'a reload fetches it again');
  resolver.close();
});

// ---- caching ----
test('decisions are cached per caller and host, bounded, and dropped on invalidate() and on a WPAD change', async () => {
  const wpad = fakeWpad(pacFound('return "PROXY one:1";'));
  const resolver = createProxyResolver({ env: {}, dnsDomain: 'corp.contoso.com', cache: { maxEntries: 2 }, deps: { createWpadDiscovery: () => wpad } });
  const get = async (url: string, caller: Caller = 'connector') => (await resolver.resolve(new URL(url), caller)).routes.map(formatRoute).join('; ');
  assert.equal(await get('https://a.example/'), 'PROXY one:1; DIRECT');
  assert.equal(await get('https://a.example/other/path'), 'PROXY one:1; DIRECT');
  assert.equal(wpad.calls, 1, 'same https host: cached');
  await get('https://a.example/', 'updater');
  assert.equal(wpad.calls, 2, 'another caller: its own entry');
  await get('https://b.example/');
  await get('https://a.example/');
  assert.equal(wpad.calls, 4, 'bounded to 2 entries: the oldest was evicted');
  wpad.fire(pacFound('return "PROXY two:2";'));
  assert.equal(await get('https://a.example/'), 'PROXY two:2; DIRECT');
  resolver.invalidate();
  const before = wpad.calls;
  await get('https://a.example/');
  assert.equal(wpad.calls, before + 1);
  resolver.close();
});

test('configured credentials travel with proxy decisions only', async () => {
  const layer = parseProxySettings('proxy:\n  address: http://p:3128\n  credentials: {username: svc, passwordFile: /etc/ferry/pw}\n', 'connector.yaml');
  const resolver = createProxyResolver({ env: {}, layers: { connector: layer } });
  const proxied = await resolver.resolve(new URL('https://r.example/'), 'connector');
  assert.deepEqual(proxied.proxyCredentials, { username: 'svc', passwordFile: '/etc/ferry/pw' });
  const direct = await resolver.resolve(new URL('http://localhost/'), 'connector');
  assert.equal(direct.proxyCredentials, undefined);
  resolver.close();
});

test('the local DNS domain comes from resolv.conf: domain, or the first search entry; the last line wins', async () => {
  const { parseResolvConfDomain } = await import('./local-facts.js');
  assert.equal(parseResolvConfDomain('nameserver 10.0.0.1\nsearch corp.example.com other.example\n'), 'corp.example.com');
  assert.equal(parseResolvConfDomain('domain Corp.Example.\n# search ignored.example\n'), 'corp.example');
  assert.equal(parseResolvConfDomain('domain a.example\nsearch b.example\n'), 'b.example');
  assert.equal(parseResolvConfDomain('nameserver 1.1.1.1\nsearch .\n'), undefined);
});

test('WPAD settings: the layer\'s suffix and DNS servers win over the machine DNS domain', async () => {
  const seen: { domainSuffix: string; dnsServers?: string[] }[] = [];
  const layer = parseProxySettings('proxy:\n  autoDetect: true\n  wpad: {domainSuffix: a.corp.test, dnsServers: [127.0.0.53]}\n', 'c.yaml');
  const resolver = createProxyResolver({
    env: {},
    dnsDomain: 'elsewhere.example',
    layers: { connector: layer },
    deps: { createWpadDiscovery: (o) => (seen.push(o), fakeWpad({ found: false, tried: [], reason: 'none' })) },
  });
  await resolver.resolve(new URL('https://r.example/'), 'connector');
  assert.equal(seen[0]?.domainSuffix, 'a.corp.test');
  assert.deepEqual(seen[0]?.dnsServers, ['127.0.0.53']);
  resolver.close();
});
