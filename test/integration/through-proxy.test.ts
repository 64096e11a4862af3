// Issue 4 end to end with real parts: the connector reaches the relay through a real Squid (open,
// Basic auth, port rules, ssl-bump), found by explicit YAML, the seed's .NET XML, WPAD (real
// dnsmasq + wpad.dat) or a PAC file, with the direct path unavailable: the relay is named
// relay.ferry.test, which only Squid resolves (its hosts_file), as in a network where the proxy,
// not the connector, resolves outside names.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import { stringify } from 'yaml';
import { FerryStack, http2Exchange, startFerryProcess, userRequest, type ManagedProcess } from '../harness/ferry-stack.js';
import { startSquid, type SquidInstance } from '../harness/squid.js';
import { kdcUnavailable, startKdc } from '../harness/kdc.js';
import { startDnsmasq, type DnsmasqHandle } from '../harness/dnsmasq.js';
import { startWpadServer, type WpadServer } from '../harness/wpad-server.js';
import { cleanupOnExit, freePort, sleep, waitFor } from '../harness/processes.js';
import { execFileSync } from 'node:child_process';
import { startSampleBackend, type SampleBackend } from '../../src/demo/sample-backend.js';

const RELAY = 'relay.ferry.test';
const notRoot = process.getuid?.() !== 0;

describe('through the proxy', { skip: notRoot ? 'needs root (Squid drops to user proxy; dnsmasq)' : false }, () => {
  const stack = new FerryStack();
  let backend: SampleBackend;
  let open: SquidInstance;
  let auth: SquidInstance;
  let deny: SquidInstance;
  let bump: SquidInstance;
  let dns: DnsmasqHandle;
  let wpad: WpadServer;
  const running: ManagedProcess[] = [];

  before(async () => {
    backend = await startSampleBackend();
    await stack.startRelay({ publicHost: RELAY });
    const hosts = { [RELAY]: '127.0.0.1', 'relay.test': '127.0.0.1', 'app.internal.test': '127.0.0.1' };
    // allSettled, so the Squids that did start are known to after() (and stopped) when one fails.
    const started = await Promise.allSettled([
      startSquid({ mode: 'open', hosts }),
      startSquid({ mode: 'auth', hosts, users: { alice: 'wonderland' } }),
      startSquid({ mode: 'open', hosts, denyPorts: [stack.relay.ports.user, stack.relay.ports.registration] }),
    ]);
    [open, auth, deny] = started.map((result) => (result.status === 'fulfilled' ? result.value : undefined)) as SquidInstance[];
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    bump = await startSquid({ mode: 'bump', hosts, upstreamCaPem: readFileSync(stack.relay.caFile, 'utf8'), bumpCaSubject: '/CN=Corp Inspection CA/O=Corp IT' });
    // Own ports (not 127.0.0.53:53 and 80), so other suites' DNS and wpad servers cannot interfere.
    dns = await startDnsmasq({ records: { 'wpad.corp.test': '127.0.0.1', 'relay.test': '127.0.0.1', 'proxy.ferry.test': '127.0.0.1', 'app.internal.test': '127.0.0.1' }, address: '127.0.0.1', port: await freePort() });
    wpad = await startWpadServer(`function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${open.port}"; }`, 0);
    const port = stack.relay.ports.user;
    const added = await stack.relay.cli(['relay', 'app', 'add', 'app', '--external', `https://app.localhost:${port}`, '--internal', backend.url]);
    assert.equal(added.code, 0, added.stderr);
  });

  after(async () => {
    await Promise.allSettled(running.map((p) => p.stop(2000)));
    await Promise.allSettled([open?.stop(), auth?.stop(), deny?.stop(), bump?.stop(), dns?.stop(), wpad?.stop()]);
    await stack.stop();
    await backend.close();
  });

  /** Registers a connector with `config` and runs it; resolves once a tunnel is up. */
  async function connectorVia(name: string, config: Record<string, unknown>, options: { expectUp?: boolean; registerVia?: Record<string, unknown>; env?: NodeJS.ProcessEnv } = {}): Promise<ManagedProcess> {
    const registered = await stack.registerConnector({ name, config: { tunnels: 1, ...(options.registerVia ?? config) } });
    assert.equal(registered.run.code, 0, `registration of ${name} failed: ${registered.run.stderr}`);
    // Run with `config` (registration may have used another route, e.g. an open proxy).
    if (options.registerVia) writeFileSync(registered.configFile, stringify({ stateDir: `./${name}`, name, pingIntervalMs: 2000, backoff: { initialMs: 100, maxMs: 1000, healthyAfterMs: 5000 }, tunnels: 1, ...config }));
    const proc = stack.startConnector(registered.configFile, options.env);
    running.push(proc);
    if (options.expectUp !== false) await waitFor(() => (/"msg":"tunnel up"/.test(proc.log()) ? true : undefined), 20_000, `${name} tunnel up`);
    return proc;
  }

  async function assertServes(): Promise<void> {
    const res = await userRequest(stack.relay, 'app.localhost', '/hello');
    assert.equal(res.status, 200);
    assert.equal(res.body, 'hello\n');
  }

  const connectLines = (squid: SquidInstance, port: number) => squid.accessLog().filter((line) => line.includes(`CONNECT ${RELAY}:${port}`));

  it('auto: the direct attempt fails, falls back to https through Squid (CONNECT in access.log)', async () => {
    const proc = await connectorVia('auto', { transport: 'auto', proxy: { address: `http://127.0.0.1:${open.port}` } });
    assert.match(proc.log(), /falling back to https through the proxy/);
    await assertServes();
    await open.waitForAccessLog((line) => line.includes(`CONNECT ${RELAY}:${stack.relay.ports.registration}`));
    await proc.stop();
    await open.waitForAccessLog((line) => line.includes(`CONNECT ${RELAY}:${stack.relay.ports.user}`));
  });

  it('auto: a firewall drops the direct SYN (iptables); falls back to https through Squid', async () => {
    // The direct tunnel port is firewalled for everyone but Squid (user "proxy"), as by a corporate
    // firewall that lets outbound traffic through the proxy only. (The public port stays open: the
    // test's own user requests go there, and the connector reaches it through Squid anyway.)
    const ports = [stack.relay.ports.tunnel];
    const rules = ports.map((port) => ['OUTPUT', '-o', 'lo', '-p', 'tcp', '-d', '127.0.0.1', '--dport', String(port), '-m', 'owner', '!', '--uid-owner', 'proxy', '-j', 'DROP']);
    const registered = await stack.registerConnector({ name: 'firewalled', config: { tunnels: 1, proxy: { address: `http://127.0.0.1:${open.port}` } } });
    assert.equal(registered.run.code, 0, registered.run.stderr);
    writeFileSync(registered.configFile, stringify({
      stateDir: './firewalled', name: 'firewalled', tunnels: 1, transport: 'auto', relayHost: 'relay.test', dnsServers: [dns.server],
      directTimeoutMs: 1000, backoff: { initialMs: 100, maxMs: 1000, healthyAfterMs: 5000 },
      proxy: { address: `http://127.0.0.1:${open.port}` },
    }));
    for (const rule of rules) execFileSync('iptables', ['-I', ...rule]);
    const forget = cleanupOnExit(() => { for (const rule of rules) execFileSync('iptables', ['-D', ...rule]); });
    try {
      const proc = stack.startConnector(registered.configFile);
      running.push(proc);
      await waitFor(() => (/"msg":"tunnel up"/.test(proc.log()) ? true : undefined), 20_000, 'tunnel up through Squid');
      assert.match(proc.log(), /falling back to https through the proxy/);
      assert.match(proc.log(), /"reason":"connect-timeout"/, 'the direct SYN went unanswered');
      await assertServes();
      await proc.stop();
      await open.waitForAccessLog((line) => line.includes(`CONNECT relay.test:${stack.relay.ports.user}`));
    } finally {
      for (const rule of rules) execFileSync('iptables', ['-D', ...rule]);
      forget();
    }
  });

  it("the seed's explicit-proxy XML (proxyaddress, bypassonlocal, usesystemdefault)", async () => {
    const file = path.join(stack.dir, 'seed-explicit.config');
    writeFileSync(file, `<?xml version="1.0" encoding="utf-8" ?>
<configuration>
  <system.net>
    <defaultProxy>
      <proxy proxyaddress="http://127.0.0.1:${open.port}" bypassonlocal="True" usesystemdefault="True"/>
    </defaultProxy>
  </system.net>
  <runtime>
    <gcServer enabled="true"/>
  </runtime>
</configuration>
`);
    const before = connectLines(open, stack.relay.ports.user).length;
    const proc = await connectorVia('seedxml', { transport: 'https', proxyConfig: file });
    await assertServes();
    await proc.stop();
    await waitFor(() => (connectLines(open, stack.relay.ports.user).length > before ? true : undefined), 10_000, 'CONNECT logged');
  });

  it('a WPAD-discovered proxy: dnsmasq answers wpad.corp.test, wpad.dat names Squid', async () => {
    const before = connectLines(open, stack.relay.ports.user).length;
    const proc = await connectorVia('wpad', {
      transport: 'https',
      proxy: { autoDetect: true, wpad: { domainSuffix: 'corp.test', dnsServers: [dns.server], port: wpad.port } },
    });
    await assertServes();
    assert.ok(wpad.requests.length > 0, 'wpad.dat was fetched');
    await proc.stop();
    await waitFor(() => (connectLines(open, stack.relay.ports.user).length > before ? true : undefined), 10_000, 'CONNECT logged');
  });

  it('enabled="false": always direct, no Squid log line', async () => {
    const file = path.join(stack.dir, 'seed-disabled.config');
    writeFileSync(file, '<?xml version="1.0" encoding="utf-8" ?>\n<configuration><system.net><defaultProxy enabled="false"></defaultProxy></system.net></configuration>\n');
    const logged = [open, auth, deny, bump].map((squid) => squid.accessLog().length);
    // relay.test resolves for the connector (its own DNS server); the proxy is never asked.
    const proc = await connectorVia('disabled', { transport: 'auto', proxyConfig: file, relayHost: 'relay.test', dnsServers: [dns.server] });
    await assertServes();
    await proc.stop();
    await sleep(500);
    assert.deepEqual([open, auth, deny, bump].map((squid) => squid.accessLog().length), logged);
  });

  it('Squid with Basic auth: no credentials → proxy-auth-required with backoff; with credentials → works', async () => {
    // Register through the open proxy, then run through the auth proxy.
    const noCreds = await connectorVia('noauth', { transport: 'https', proxy: { address: `http://127.0.0.1:${auth.port}` } },
      { expectUp: false, registerVia: { proxy: { address: `http://127.0.0.1:${open.port}` } } });
    await waitFor(() => ((noCreds.log().match(/proxy-auth-required/g) ?? []).length >= 2 ? true : undefined), 15_000, 'two refused attempts');
    assert.match(noCreds.log(), /Basic/, 'the log names the offered scheme');
    assert.match(noCreds.log(), /"retryInMs":\d+/, 'it backs off between attempts');
    await noCreds.stop();

    const passwordFile = path.join(stack.dir, 'proxy.password');
    writeFileSync(passwordFile, 'wonderland\n', { mode: 0o600 });
    const withCreds = await connectorVia('auth', { transport: 'https', proxy: { address: `http://127.0.0.1:${auth.port}`, credentials: { username: 'alice', passwordFile } } });
    await assertServes();
    assert.doesNotMatch(withCreds.log(), /wonderland/, 'the password never reaches a log line');
    await withCreds.stop();
  });

  it('Squid with NTLM: proxy.credentials.scheme ntlm in the YAML config; the tunnel comes up as CORP\\alice', async () => {
    const ntlm = await startSquid({ mode: 'ntlm', hosts: { [RELAY]: '127.0.0.1' } });
    try {
      const passwordFile = path.join(stack.dir, 'proxy-ntlm.password');
      writeFileSync(passwordFile, 'nt-wonderland\n', { mode: 0o600 });
      const proc = await connectorVia('ntlm', { transport: 'https', proxy: { address: `http://127.0.0.1:${ntlm.port}`, credentials: { username: 'CORP\\alice', passwordFile, scheme: 'ntlm' } } },
        { registerVia: { proxy: { address: `http://127.0.0.1:${open.port}` } } });
      await assertServes();
      assert.doesNotMatch(proc.log(), /nt-wonderland/, 'the password never reaches a log line');
      // Squid logs a CONNECT when its tunnel closes.
      await proc.stop();
      const line = await ntlm.waitForAccessLog((l) => l.includes(`CONNECT ${RELAY}:`) && l.includes('TCP_TUNNEL/200'));
      assert.match(line, / CORP\\{1,2}alice /, 'Squid saw the NTLM user and domain');
    } finally {
      await ntlm.stop();
    }
  });

  it('Squid with Negotiate: proxy.credentials {scheme: negotiate, keytab}; Squid validates the ticket and logs the principal', { skip: kdcUnavailable() }, async () => {
    const kdc = await startKdc();
    try {
      // The proxy is named by the host of its service principal; the connector resolves the name
      // through its own DNS server (dnsServers), as a connector on a corporate network would.
      const servicePrincipal = `HTTP/proxy.ferry.test@${kdc.realm}`;
      const kerberos = await startSquid({ mode: 'negotiate', hosts: { [RELAY]: '127.0.0.1' }, kerberos: { configFile: kdc.configFile, keytab: kdc.keytabFor(servicePrincipal), servicePrincipal } });
      try {
        const keytab = kdc.keytabFor('svc-ferry');
        const proc = await connectorVia('kerberos', {
          transport: 'https', dnsServers: [dns.server], proxy: { address: `http://proxy.ferry.test:${kerberos.port}`, credentials: { scheme: 'negotiate', keytab } },
        }, { registerVia: { proxy: { address: `http://127.0.0.1:${open.port}` } }, env: { KRB5_CONFIG: kdc.configFile, KRB5CCNAME: 'MEMORY:ferry-connector' } });
        await assertServes();
        await proc.stop();
        const line = await kerberos.waitForAccessLog((l) => l.includes(`CONNECT ${RELAY}:`) && l.includes('TCP_TUNNEL/200'));
        assert.match(line, new RegExp(` svc-ferry@${kdc.realm} `));
        // useDefaultCredentials (the seed's .NET setting) with no credentials: the service's own
        // Kerberos identity, here a client keytab named in its environment (as a systemd unit would).
        const tunnels = kerberos.accessLog().filter((l) => l.includes('TCP_TUNNEL/200')).length;
        const byDefault = await connectorVia('kerberos-default', {
          transport: 'https', dnsServers: [dns.server], proxy: { address: `http://proxy.ferry.test:${kerberos.port}`, useDefaultCredentials: true },
        }, { registerVia: { proxy: { address: `http://127.0.0.1:${open.port}` } }, env: { KRB5_CONFIG: kdc.configFile, KRB5CCNAME: 'MEMORY:ferry-default', KRB5_CLIENT_KTNAME: keytab } });
        await assertServes();
        await byDefault.stop();
        await waitFor(() => (kerberos.accessLog().filter((l) => l.includes('TCP_TUNNEL/200') && l.includes(` svc-ferry@${kdc.realm} `)).length > tunnels ? true : undefined), 5000, 'a tunnel as svc-ferry');
      } finally {
        await kerberos.stop();
      }
    } finally {
      await kdc.stop();
    }
  });

  it('Squid refusing the port → proxy-refused (403)', async () => {
    const proc = await connectorVia('denied', { transport: 'https', relayHost: RELAY, proxy: { address: `http://127.0.0.1:${deny.port}` } }, { expectUp: false })
      .catch(() => undefined);
    // Registration itself goes through the same proxy and is refused: the register command fails.
    assert.equal(proc, undefined);
    const registered = await stack.registerConnector({ name: 'denied2', config: { proxy: { address: `http://127.0.0.1:${deny.port}` } } });
    assert.equal(registered.run.code, 1);
    assert.match(registered.run.stderr, /403/);
    assert.match(registered.run.stderr, /outbound \(CONNECT\) rules|proxy-refused|refused/);
  });

  it('TLS inspection (ssl-bump) → tls-interception naming the inspection CA', async () => {
    const registered = await stack.registerConnector({ name: 'bumped', config: { proxy: { address: `http://127.0.0.1:${bump.port}` } } });
    assert.equal(registered.run.code, 1);
    assert.match(registered.run.stderr, /Corp Inspection CA/);
    assert.match(registered.run.stderr, /TLS inspection|inspect/);
  });

  it('a PAC list whose first proxy is dead fails over to Squid', async () => {
    const dead = await freePort();
    const pac = path.join(stack.dir, 'failover.pac');
    writeFileSync(pac, `function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${dead}; PROXY 127.0.0.1:${open.port}"; }\n`);
    const before = connectLines(open, stack.relay.ports.user).length;
    const proc = await connectorVia('pac', { transport: 'https', proxy: { scriptLocation: `file://${pac}` } });
    await assertServes();
    assert.match(proc.log(), new RegExp(`127\\.0\\.0\\.1:${dead}`), 'the dead proxy was tried first');
    await proc.stop();
    await waitFor(() => (connectLines(open, stack.relay.ports.user).length > before ? true : undefined), 10_000, 'CONNECT logged');
  });

  it('backend requests through Squid when useDefaultProxyForBackendRequests is on', async () => {
    const port = stack.relay.ports.user;
    const internal = `http://app.internal.test:${new URL(backend.url).port}`;
    await stack.relay.cli(['relay', 'app', 'add', 'viaproxy', '--external', `https://other.localhost:${port}`, '--internal', internal, '--group', 'proxied']);
    const token = await stack.createToken('proxied');
    const registered = await stack.registerConnector({ name: 'backendproxy', token, config: {
      tunnels: 1, relayHost: 'relay.test', dnsServers: [dns.server], useDefaultProxyForBackendRequests: true,
      proxy: { address: `http://127.0.0.1:${open.port}`, bypassList: ['relay\\.test'] },
    } });
    assert.equal(registered.run.code, 0, registered.run.stderr);
    const proc = stack.startConnector(registered.configFile);
    running.push(proc);
    await waitFor(() => (/"msg":"tunnel up"/.test(proc.log()) ? true : undefined), 20_000, 'tunnel up');
    await sleep(600);
    const res = await userRequest(stack.relay, 'other.localhost', '/hello');
    assert.equal(res.status, 200, res.body);
    assert.ok(open.accessLog().some((line) => line.includes(`GET ${internal}/hello`)), 'Squid forwarded the backend request');
    await proc.stop();
  });

  it('backend requests through proxies that authenticate: NTLM on the connection; a 407 reaches no user', async () => {
    const ntlm = await startSquid({ mode: 'ntlm', hosts: { 'app.internal.test': '127.0.0.1' } });
    try {
      const port = stack.relay.ports.user;
      const internal = `http://app.internal.test:${new URL(backend.url).port}`;
      const passwordFile = path.join(stack.dir, 'backend-ntlm.password');
      writeFileSync(passwordFile, 'nt-backend-pw\n', { mode: 0o600 });
      const cases = [
        { group: 'ntlm-backend', host: 'ntlm.localhost', proxy: { address: `http://127.0.0.1:${ntlm.port}`, credentials: { username: 'CORP\\erin', passwordFile, scheme: 'ntlm' } } },
        // The Basic Squid with no credentials configured: its 407 is the proxy's, not the app's.
        { group: 'basic-backend', host: 'basic.localhost', proxy: { address: `http://127.0.0.1:${auth.port}` } },
      ];
      const procs: ManagedProcess[] = [];
      for (const c of cases) {
        await stack.relay.cli(['relay', 'app', 'add', c.group, '--external', `https://${c.host}:${port}`, '--internal', internal, '--group', c.group]);
        const registered = await stack.registerConnector({ name: c.group, token: await stack.createToken(c.group), config: {
          tunnels: 1, relayHost: 'relay.test', dnsServers: [dns.server], useDefaultProxyForBackendRequests: true, proxy: { ...c.proxy, bypassList: ['relay\\.test'] },
        } });
        assert.equal(registered.run.code, 0, registered.run.stderr);
        const proc = stack.startConnector(registered.configFile);
        running.push(proc);
        procs.push(proc);
        await waitFor(() => (/"msg":"tunnel up"/.test(proc.log()) ? true : undefined), 20_000, `${c.group} tunnel up`);
      }
      await sleep(600);
      const served = await userRequest(stack.relay, 'ntlm.localhost', '/hello');
      assert.equal(served.status, 200, served.body);
      const line = await ntlm.waitForAccessLog((l) => l.includes(`GET ${internal}/hello`));
      assert.match(line, /TCP_MISS\/200 .* CORP\\{1,2}erin /, 'Squid served the backend request as the NTLM user');
      const passedOn = ntlm.accessLog().filter((l) => / HEAD http:/.test(l) && !l.includes('TCP_DENIED/407'));
      assert.deepEqual(passedOn, [], 'the handshake sent the app no HEAD: its last leg went with the GET');
      assert.doesNotMatch(procs[0]!.log(), /nt-backend-pw/);
      const refused = await userRequest(stack.relay, 'basic.localhost', '/hello');
      assert.equal(refused.status, 502, 'the user gets Ferry\'s page, never the proxy\'s 407');
      assert.equal(refused.headers['proxy-authenticate'], undefined);
      assert.match(refused.body, /proxy-auth-required/);
      const named = /asks for authentication for http:\/\/app\.internal\.test:\d+\/hello \(407; schemes offered: Basic\)/;
      await waitFor(() => (named.test(procs[1]!.log()) ? true : undefined), 5000, 'the log names the proxy\'s 407');
      await Promise.all(procs.map((proc) => proc.stop()));
    } finally {
      await ntlm.stop();
    }
  });

  it('backend requests with "PROXY dead; DIRECT": the request that finds the proxy down goes DIRECT (no 502), with or without a body, from HTTP/1.1 and HTTP/2 users', async () => {
    const port = stack.relay.ports.user;
    const dead = await freePort();
    const pac = path.join(stack.dir, 'backend-fallback.pac');
    writeFileSync(pac, `function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${dead}; DIRECT"; }\n`);
    // The app by name (loopback addresses are never proxied); the connector's DNS server knows it.
    const internal = `http://app.internal.test:${new URL(backend.url).port}`;
    await stack.relay.cli(['relay', 'app', 'add', 'fallback', '--external', `https://fallback.localhost:${port}`, '--internal', internal, '--group', 'fallback']);
    // A connector per kind of user, each meeting the dead proxy first (a failed proxy is then skipped).
    // An upload: its body is read only once a connection is open, so it can go by the next route whole.
    const upload = Buffer.alloc(300_000, 7);
    const overHttp2 = async (headers: http2.OutgoingHttpHeaders, body?: Buffer) => {
      const session = http2.connect(`https://127.0.0.1:${port}`, { ca: readFileSync(stack.relay.caFile), servername: 'fallback.localhost' });
      try {
        return await http2Exchange(session, { ':authority': `fallback.localhost:${port}`, ...headers }, body);
      } finally {
        session.close();
      }
    };
    const users: Record<string, () => Promise<number>> = {
      'HTTP/1.1': async () => (await userRequest(stack.relay, 'fallback.localhost', '/hello')).status,
      'HTTP/2': async () => (await overHttp2({ ':method': 'GET', ':path': '/hello' })).status,
      'HTTP/1.1 upload': async () => {
        const answer = await userRequest(stack.relay, 'fallback.localhost', '/upload', { method: 'POST', body: upload });
        assert.equal(answer.body, JSON.stringify({ received: upload.length }), 'the app got the whole body');
        return answer.status;
      },
      'HTTP/2 upload': async () => {
        const answer = await overHttp2({ ':method': 'POST', ':path': '/upload' }, upload);
        assert.equal(answer.body, JSON.stringify({ received: upload.length }), 'the app got the whole body');
        return answer.status;
      },
    };
    for (const [kind, request] of Object.entries(users)) {
      const name = `fallback-${kind.replace(/\W/g, '')}`;
      const registered = await stack.registerConnector({ name, token: await stack.createToken('fallback'), config: {
        tunnels: 1, transport: 'tcp', relayHost: 'relay.test', dnsServers: [dns.server], useDefaultProxyForBackendRequests: true, proxy: { scriptLocation: `file://${pac}` },
      } });
      assert.equal(registered.run.code, 0, registered.run.stderr);
      const proc = stack.startConnector(registered.configFile);
      running.push(proc);
      await waitFor(() => (/"msg":"tunnel up"/.test(proc.log()) ? true : undefined), 20_000, `${name} tunnel up`);
      await sleep(600);
      assert.equal(await request(), 200, kind);
      // The connector's log lines may reach us after the answer did.
      const retried = /"via":"direct","msg":"no proxy of the list took a connection: the request goes by the next route"/;
      await waitFor(() => (retried.test(proc.log()) ? true : undefined), 5000, `${kind}: the request went again by the next route`);
      assert.match(proc.log(), new RegExp(`PROXY 127\\.0\\.0\\.1:${dead} → connect-refused`), kind);
      await proc.stop();
    }
  });

  it('ferry demo --proxy-config --relay-host --transport https goes through Squid', async () => {
    const proxyFile = path.join(stack.dir, 'demo-proxy.config');
    writeFileSync(proxyFile, `<configuration><system.net><defaultProxy><proxy proxyaddress="http://127.0.0.1:${open.port}"/></defaultProxy></system.net></configuration>\n`);
    const before = open.accessLog().length;
    const demo = startFerryProcess(['demo', '--json', '--proxy-config', proxyFile, '--relay-host', RELAY, '--transport', 'https', '--state-dir', path.join(stack.dir, 'demo')]);
    running.push(demo);
    const info = await waitFor(() => {
      const line = demo.log().split('\n').find((l) => l.startsWith('{"url"'));
      return line ? JSON.parse(line) as { curl: string } : undefined;
    }, 30_000, 'the demo JSON line');
    const { execSync } = await import('node:child_process');
    assert.match(execSync(info.curl, { encoding: 'utf8' }), /Hello from the internal app/);
    await demo.stop();
    // Squid writes a CONNECT line when the tunnel closes.
    await waitFor(() => (open.accessLog().slice(before).some((line) => line.includes(`CONNECT ${RELAY}:`)) ? true : undefined), 10_000, 'the demo connector went through Squid');
  });
});
