// WPAD end to end with real parts: dnsmasq answering wpad.corp.test on 127.0.0.53, a real HTTP server
// serving wpad.dat, the real PAC engine; through the library and through `ferry proxy show`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDnsmasq, type DnsmasqHandle } from '../harness/dnsmasq.js';
import { startWpadServer, type WpadServer } from '../harness/wpad-server.js';
import { WpadDiscovery, wpadCandidates } from '../../src/egress/wpad/index.js';
import { createProxyResolver } from '../../src/egress/resolve/index.js';
import { parseProxySettings } from '../../src/config/proxy-settings.js';
import { formatRoute } from '../../src/egress/pac/index.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/proxy/', import.meta.url));

const PAC = `function FindProxyForURL(url, host) {
  if (dnsDomainIs(host, ".internal.test")) return "DIRECT";
  if (host == "relay.test" && isResolvable("app.internal.test")) return "PROXY proxy-a.corp.test:3128; PROXY proxy-b.corp.test:3128";
  return "PROXY proxy.corp.test:8080";
}`;

let dnsmasq: DnsmasqHandle | undefined;
let server: WpadServer | undefined;
let scratch = '';

before(async () => {
  if (process.getuid?.() !== 0) return;
  dnsmasq = await startDnsmasq();
  server = await startWpadServer(PAC);
  scratch = await mkdtemp(join(tmpdir(), 'ferry-wpad-it-'));
});

after(async () => {
  await server?.stop();
  await dnsmasq?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const skip = process.getuid?.() !== 0 ? 'needs root: dnsmasq binds 127.0.0.53:53' : false;

function ferry(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/_proxy$/i.test(k)));
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const wpadArgs = () => ['--dns-server', dnsmasq!.server, '--domain-suffix', 'corp.test', '--machine-config', join(scratch, 'no-machine.config'), ...(server!.port === 80 ? [] : ['--wpad-port', String(server!.port)])];

test('the candidate rule walks up but never reaches a bare TLD', () => {
  assert.deepEqual(wpadCandidates('a.b.corp.test'), ['wpad.a.b.corp.test', 'wpad.b.corp.test', 'wpad.corp.test']);
  assert.deepEqual(wpadCandidates('corp.test.'), ['wpad.corp.test']);
  assert.deepEqual(wpadCandidates('corp'), []);
});

test('library: discovery walks a.b.corp.test up to wpad.corp.test and fetches wpad.dat with its Host header', { skip }, async () => {
  const discovery = new WpadDiscovery({ domainSuffix: 'a.b.corp.test', dnsServers: [dnsmasq!.server], port: server!.port });
  const before = server!.requests.length;
  const result = await discovery.discover();
  assert.ok(result.found, JSON.stringify(result));
  assert.deepEqual(result.tried, ['wpad.a.b.corp.test', 'wpad.b.corp.test', 'wpad.corp.test']);
  assert.equal(result.url, `http://wpad.corp.test${server!.port === 80 ? '' : `:${server!.port}`}/wpad.dat`);
  assert.equal(result.address, '127.0.0.1');
  assert.equal(result.script, PAC);
  const seen = server!.requests.slice(before);
  assert.deepEqual(seen.map((r) => r.path), ['/wpad.dat']);
  assert.match(seen[0]!.host ?? '', /^wpad\.corp\.test(:\d+)?$/);
  const log = await dnsmasq!.log();
  assert.match(log, /query\[A\] wpad\.a\.b\.corp\.test/);
  assert.match(log, /query\[A\] wpad\.b\.corp\.test/);
  assert.doesNotMatch(log, /query\[A\] wpad\.test\b/, 'never the bare TLD');
  // Cached: no second fetch.
  await discovery.discover();
  assert.equal(server!.requests.length, before + 1);
});

test('library: negative cache, TTL expiry and change notification', { skip }, async () => {
  const missing = new WpadDiscovery({ domainSuffix: 'nowhere.test', dnsServers: [dnsmasq!.server], port: server!.port, negativeTtlMs: 60_000 });
  const first = await missing.discover();
  assert.equal(first.found, false);
  assert.deepEqual(first.tried, ['wpad.nowhere.test']);
  const queries = (await dnsmasq!.log()).match(/query\[A\] wpad\.nowhere\.test/g)?.length ?? 0;
  await missing.discover();
  assert.equal((await dnsmasq!.log()).match(/query\[A\] wpad\.nowhere\.test/g)?.length ?? 0, queries, 'negative answer cached');

  const discovery = new WpadDiscovery({ domainSuffix: 'corp.test', dnsServers: [dnsmasq!.server], port: server!.port, ttlMs: 100 });
  const changes: string[] = [];
  discovery.onChange((r) => changes.push(r.found ? r.sha1 : 'none'));
  const one = await discovery.discover();
  assert.ok(one.found);
  server!.script = PAC.replace('proxy.corp.test:8080', 'proxy2.corp.test:8080');
  await sleep(150);
  const two = await discovery.discover();
  assert.ok(two.found);
  assert.notEqual(two.sha1, one.sha1);
  assert.equal(changes.length, 1, 'the changed script was noticed');
  server!.script = PAC;
});

test('library: time limit, size limit, HTTP errors and content types', { skip }, async () => {
  const make = (extra: object = {}) => new WpadDiscovery({ domainSuffix: 'corp.test', dnsServers: [dnsmasq!.server], port: server!.port, ...extra });
  try {
    server!.mode = 'hang';
    const started = Date.now();
    const hung = await make({ timeoutMs: 300 }).discover();
    assert.equal(hung.found, false);
    assert.ok(!hung.found && /longer than 300 ms/.test(hung.reason), JSON.stringify(hung));
    assert.ok(Date.now() - started < 3000);
    server!.mode = 'huge';
    const huge = await make({ maxBytes: 64 * 1024 }).discover();
    assert.ok(!huge.found && /larger than 65536 bytes/.test(huge.reason), JSON.stringify(huge));
    server!.mode = 'not-found';
    const nf = await make().discover();
    assert.ok(!nf.found && /HTTP 404/.test(nf.reason));
    server!.mode = 'serve';
    for (const type of ['text/plain', 'application/octet-stream', 'text/html; charset=iso-8859-1']) {
      server!.contentType = type;
      assert.ok((await make().discover()).found, type);
    }
  } finally {
    server!.mode = 'serve';
    server!.contentType = 'application/x-ns-proxy-autoconfig';
  }
});

test('library: the resolver decides from WPAD + PAC (PAC DNS through dnsmasq), loopback stays DIRECT', { skip }, async () => {
  const none = parseProxySettings('<configuration><runtime/></configuration>', 'connector.config');
  const resolver = createProxyResolver({ env: {}, dnsDomain: 'corp.test', layers: { connector: none }, wpad: { dnsServers: [dnsmasq!.server], port: server!.port } });
  try {
    const relay = await resolver.resolve(new URL('https://relay.test/'), 'connector');
    assert.deepEqual(relay.routes.map(formatRoute), ['PROXY proxy-a.corp.test:3128', 'PROXY proxy-b.corp.test:3128', 'DIRECT']);
    assert.equal(relay.provenance.source, 'wpad');
    assert.equal(relay.provenance.pacResult, 'PROXY proxy-a.corp.test:3128; PROXY proxy-b.corp.test:3128');
    assert.deepEqual(relay.provenance.wpad?.tried, ['wpad.corp.test']);
    const app = await resolver.resolve(new URL('https://app.internal.test/'), 'connector');
    assert.deepEqual(app.routes.map(formatRoute), ['DIRECT']);
    const loop = await resolver.resolve(new URL('http://127.0.0.1:8080/'), 'connector');
    assert.equal(loop.provenance.source, 'loopback');
  } finally {
    resolver.close();
  }
});

test('ferry proxy show: seed snippet 3 (no defaultProxy, no machine file) → auto-detection via WPAD', { skip }, async () => {
  const result = await ferry(['proxy', 'show', 'https://relay.test/', '--config', join(FIXTURES, 'seed-3-no-defaultproxy.config'), ...wpadArgs()]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /routes: {2}PROXY proxy-a\.corp\.test:3128; PROXY proxy-b\.corp\.test:3128; DIRECT/);
  assert.match(result.stdout, /WPAD wpad\.corp\.test → http:\/\/wpad\.corp\.test(:\d+)?\/wpad\.dat, PAC returned "PROXY proxy-a\.corp\.test:3128; PROXY proxy-b\.corp\.test:3128"/);
  const json = await ferry(['proxy', 'show', 'https://other.example/', '--json', '--config', join(FIXTURES, 'seed-3-no-defaultproxy.config'), ...wpadArgs()]);
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as { routes: string[]; provenance: { source: string; pacResult: string; wpad: { tried: string[]; url: string } } };
  assert.deepEqual(doc.routes, ['PROXY proxy.corp.test:8080', 'DIRECT']);
  assert.equal(doc.provenance.source, 'wpad');
  assert.equal(doc.provenance.pacResult, 'PROXY proxy.corp.test:8080');
  assert.deepEqual(doc.provenance.wpad.tried, ['wpad.corp.test']);
});

test('ferry proxy show: seed snippet 3 with a machine-wide file → the machine file decides, no WPAD', { skip }, async () => {
  const machine = join(scratch, 'machine.config');
  await writeFile(machine, '<configuration>\n  <system.net>\n    <defaultProxy>\n      <proxy proxyaddress="http://machineproxy:3128"/>\n    </defaultProxy>\n  </system.net>\n</configuration>\n');
  const before = server!.requests.length;
  const args = wpadArgs();
  args[args.indexOf('--machine-config') + 1] = machine;
  const result = await ferry(['proxy', 'show', 'https://relay.test/', '--config', join(FIXTURES, 'seed-3-no-defaultproxy.config'), ...args]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /routes: {2}PROXY machineproxy:3128\n/);
  assert.match(result.stdout, new RegExp(`source: {2}machine-config \\(${machine.replace(/[.]/g, '\\.')}:4\\)`));
  assert.equal(server!.requests.length, before, 'WPAD not consulted');
});

test('ferry proxy show: seed snippets 1 and 2 never consult WPAD', { skip }, async () => {
  const before = server!.requests.length;
  const one = await ferry(['proxy', 'show', 'https://relay.test/', '--config', join(FIXTURES, 'seed-1-disabled.config'), ...wpadArgs()], { HTTPS_PROXY: 'http://envproxy:3128' });
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /routes: {2}DIRECT\n/);
  assert.match(one.stdout, /seed-1-disabled\.config:4 enabled=false/);
  const two = await ferry(['proxy', 'show', 'https://relay.test/', '--config', join(FIXTURES, 'seed-2-proxyaddress.config'), ...wpadArgs()]);
  assert.equal(two.code, 0, two.stderr);
  assert.match(two.stdout, /routes: {2}PROXY proxyserver:8080\n/);
  assert.match(two.stdout, /seed-2-proxyaddress\.config:5 proxyaddress=http:\/\/proxyserver:8080/);
  const local = await ferry(['proxy', 'show', 'http://intranet/', '--config', join(FIXTURES, 'seed-2-proxyaddress.config'), ...wpadArgs()]);
  assert.match(local.stdout, /routes: {2}DIRECT\n/);
  assert.equal(server!.requests.length, before);
});

test('ferry proxy show --config follows the proxyConfig and machineConfig keys, as the service does', async () => {
  // README's updater.yaml form: its own proxy settings in a .NET file next to it.
  await writeFile(join(scratch, 'updater.config'), '<configuration>\n  <system.net>\n    <defaultProxy>\n      <proxy proxyaddress="http://updates-proxy.corp.test:3128" bypassonlocal="true"/>\n    </defaultProxy>\n  </system.net>\n</configuration>\n');
  await writeFile(join(scratch, 'updater.yaml'), 'proxyConfig: updater.config\nmachineConfig: none.config\npublisherKeys: []\n');
  const shown = await ferry(['proxy', 'show', 'https://releases.example.com/', '--for', 'updater', '--config', join(scratch, 'updater.yaml')]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /routes: {2}PROXY updates-proxy\.corp\.test:3128\n/);
  assert.match(shown.stdout, /updater\.config:4 proxyaddress=http:\/\/updates-proxy\.corp\.test:3128/);
  // A machineConfig key names the machine-wide file: here one that turns the proxy off.
  await writeFile(join(scratch, 'machine-off.config'), '<configuration><system.net><defaultProxy enabled="false"/></system.net></configuration>\n');
  await writeFile(join(scratch, 'only-machine.yaml'), 'machineConfig: machine-off.config\n');
  const machine = await ferry(['proxy', 'show', 'https://relay.test/', '--config', join(scratch, 'only-machine.yaml')]);
  assert.equal(machine.code, 0, machine.stderr);
  assert.match(machine.stdout, /routes: {2}DIRECT\n/);
  assert.match(machine.stdout, /machine-off\.config/);
});

test('ferry proxy show: how the proxy is authenticated (configured credentials, or useDefaultCredentials)', async () => {
  const yaml = join(scratch, 'auth.yaml');
  await writeFile(yaml, 'proxy:\n  address: http://proxy.corp.test:8080\n  useDefaultCredentials: true\n');
  const text = await ferry(['proxy', 'show', 'https://relay.test/', '--config', yaml, '--machine-config', join(scratch, 'none.config')]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /auth: {4}useDefaultCredentials: Negotiate \(Kerberos\) with the service's own identity, when the proxy asks/);
  const json = JSON.parse((await ferry(['proxy', 'show', 'https://relay.test/', '--config', yaml, '--machine-config', join(scratch, 'none.config'), '--json'])).stdout) as Record<string, unknown>;
  assert.deepEqual([json.proxyAuthentication, json.proxyAuthScheme], ['default-credentials', 'negotiate']);
  await writeFile(yaml, 'proxy:\n  address: http://proxy.corp.test:8080\n  useDefaultCredentials: true\n  credentials:\n    username: CORP\\svc\n    passwordFile: /etc/ferry/secret\n    scheme: ntlm\n');
  const configured = JSON.parse((await ferry(['proxy', 'show', 'https://relay.test/', '--config', yaml, '--machine-config', join(scratch, 'none.config'), '--json'])).stdout) as Record<string, unknown>;
  assert.deepEqual([configured.proxyAuthentication, configured.proxyAuthScheme], ['configured', 'ntlm'], 'configured credentials win');
});

test('ferry proxy show: a YAML config with autoDetect and its own WPAD settings', { skip }, async () => {
  const yaml = join(scratch, 'connector.yaml');
  const portLine = server!.port === 80 ? [] : ['--wpad-port', String(server!.port)];
  await writeFile(yaml, `relay:\n  url: https://relay.test\nproxy:\n  autoDetect: true\n  credentials:\n    username: svc\n    passwordFile: /etc/ferry/secret\n  wpad:\n    domainSuffix: x.corp.test\n    dnsServers: [${dnsmasq!.server}]\n`);
  const result = await ferry(['proxy', 'show', 'https://relay.test/', '--config', yaml, '--machine-config', join(scratch, 'none.config'), ...portLine]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /tried wpad\.x\.corp\.test, wpad\.corp\.test/);
  assert.match(result.stdout, /proxy credentials configured, scheme basic \(not shown\)/);
  assert.doesNotMatch(result.stdout, /secret/);
});

test('ferry proxy show: configuration errors exit 2 with file:line and the fix', { skip }, async () => {
  const bad = join(scratch, 'bad.config');
  await writeFile(bad, '<?xml version="1.0"?>\n<configuration>\n  <system.net>\n    <defaultProxy>\n      <proxy proxyaddress="proxyserver:8080" />\n    </defaultProxy>\n  </system.net>\n</configuration>\n');
  const result = await ferry(['proxy', 'show', 'https://relay.test/', '--config', bad, ...wpadArgs()]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, new RegExp(`${bad.replace(/[.]/g, '\\.')}:5: proxyaddress "proxyserver:8080" has no http:// prefix`));
  assert.match(result.stderr, /fix: write it as http:\/\/proxyserver:8080/);
  assert.equal(result.stdout, '');
  const usage = await ferry(['proxy', 'show', 'not a url']);
  assert.equal(usage.code, 2);
  const caller = await ferry(['proxy', 'show', 'https://x.test/', '--for', 'relay']);
  assert.equal(caller.code, 2);
});

test('library: scriptLocation over http is fetched DIRECT and run', { skip }, async () => {
  const layer = parseProxySettings(`<configuration>\n<system.net>\n<defaultProxy>\n<proxy scriptLocation="http://127.0.0.1:${server!.port}/wpad.dat"/>\n</defaultProxy>\n</system.net>\n</configuration>\n`, 'connector.config');
  const resolver = createProxyResolver({ env: { HTTPS_PROXY: 'http://envproxy:1' }, layers: { connector: layer }, wpad: { dnsServers: [dnsmasq!.server] } });
  try {
    const before = server!.requests.length;
    const decision = await resolver.resolve(new URL('https://elsewhere.example/'), 'connector');
    // No usesystemdefault: the environment's proxy is not part of this object; fail-over is DIRECT.
    assert.deepEqual(decision.routes.map(formatRoute), ['PROXY proxy.corp.test:8080', 'DIRECT']);
    assert.equal(decision.provenance.source, 'pac');
    assert.equal(decision.provenance.line, 4);
    assert.equal(server!.requests.length, before + 1);
  } finally {
    resolver.close();
  }
});
