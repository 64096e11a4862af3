// A real Squid (Debian's squid-openssl) per test file, on a free loopback port, with its own
// config, state folder and logs, built from /work/shared/test-services/squid*.conf. Modes:
// - open: forward proxy, CONNECT allowed to 127.0.0.0/8;
// - auth: Basic authentication required (407 without credentials);
// - ntlm: NTLM authentication required, through Squid's ntlm_fake_auth helper (it runs the
//   handshake and reports the user and domain of the AUTHENTICATE message without checking the
//   response: the NTLMv2 computation itself is tested against MS-NLMP's vectors);
// - negotiate: Negotiate (Kerberos) required, through negotiate_kerberos_auth with the service
//   principal's keytab from a test KDC (test/harness/kdc.ts);
// - deny: every request refused (403);
// - bump: TLS-inspecting proxy (ssl-bump) with its own CA, generated here with openssl.
// `allowPorts` / `denyPorts` add port rules (403) to any mode. Names resolve through `hosts`
// (Squid's hosts_file) so the client never resolves them itself.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanupOnExit, freePort, spawnManaged, stopChild, waitFor, waitForPort } from './processes.js';

export type SquidMode = 'open' | 'auth' | 'ntlm' | 'negotiate' | 'deny' | 'bump';

export interface SquidOptions {
  mode: SquidMode;
  /** Squid's hosts_file entries: name → address. */
  hosts?: Record<string, string>;
  /** When set, CONNECT to any other port is refused (403). */
  allowPorts?: number[];
  /** CONNECT to these ports is refused (403). */
  denyPorts?: number[];
  /** Basic users for mode 'auth' (default alice:secret). */
  users?: Record<string, string>;
  /** CA (PEM) Squid trusts for its own upstream TLS in bump mode. */
  upstreamCaPem?: string;
  /** Subject of the generated bump CA (default "CN=Corp Inspection CA, O=Corp IT"). */
  bumpCaSubject?: string;
  /** DNS server for names not in `hosts` (default 127.0.0.1:53, where nothing is expected to listen). */
  dnsServer?: string;
  startTimeoutMs?: number;
  /** Extra squid.conf lines (acl / http_access) placed before every other access rule, e.g. a pasted snippet. */
  accessRules?: string;
  /** Mode 'negotiate': the KDC's krb5.conf, and the keytab of the proxy's HTTP/ service principal. */
  kerberos?: { configFile: string; keytab: string; servicePrincipal: string };
  /** Serve the proxy over TLS (an "HTTPS proxy", Squid's https_port) with this certificate. */
  tlsListener?: { certPem: string; keyPem: string };
}

export interface SquidInstance {
  port: number;
  host: string;
  dir: string;
  /** PEM of the bump CA (mode 'bump'). */
  bumpCaPem?: string;
  accessLog(): string[];
  /** Waits until an access.log line satisfies `match` (Squid logs a CONNECT when the tunnel closes). */
  waitForAccessLog(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  cacheLog(): string;
  stop(): Promise<void>;
}

const CERTGEN = '/usr/lib/squid/security_file_certgen';
const NCSA = '/usr/lib/squid/basic_ncsa_auth';
const NTLM_FAKE = '/usr/lib/squid/ntlm_fake_auth';
const NEGOTIATE_KERBEROS = '/usr/lib/squid/negotiate_kerberos_auth';

export async function startSquid(options: SquidOptions): Promise<SquidInstance> {
  const dir = mkdtempSync(path.join(tmpdir(), `ferry-squid-${options.mode}-`));
  const forgetDir = cleanupOnExit(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const host = '127.0.0.1';
  const hostsLines = Object.entries(options.hosts ?? {}).map(([name, address]) => `${address} ${name}`);
  writeFileSync(path.join(dir, 'hosts'), `${hostsLines.join('\n')}\n`);
  let bumpCaPem: string | undefined;

  const lines: string[] = [];
  if (options.mode === 'bump') {
    const subject = options.bumpCaSubject ?? '/CN=Corp Inspection CA/O=Corp IT';
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', subject.startsWith('/') ? subject : `/${subject.replace(/, */g, '/')}`,
      '-keyout', path.join(dir, 'bump-ca.key'), '-out', path.join(dir, 'bump-ca.pem'),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ], { stdio: 'ignore' });
    bumpCaPem = readFileSync(path.join(dir, 'bump-ca.pem'), 'utf8');
    execFileSync(CERTGEN, ['-c', '-s', path.join(dir, 'ssl_db'), '-M', '4MB'], { stdio: 'ignore' });
    writeFileSync(path.join(dir, 'upstream-ca.pem'), options.upstreamCaPem ?? bumpCaPem);
    lines.push(
      `http_port ${host}:${port} ssl-bump generate-host-certificates=on dynamic_cert_mem_cache_size=4MB tls-cert=${dir}/bump-ca.pem tls-key=${dir}/bump-ca.key`,
      `sslcrtd_program ${CERTGEN} -s ${dir}/ssl_db -M 4MB`,
      'sslcrtd_children 2',
      `tls_outgoing_options cafile=${dir}/upstream-ca.pem`,
      'acl step1 at_step SslBump1',
      'ssl_bump peek step1',
      'ssl_bump bump all',
    );
  } else if (options.tlsListener) {
    writeFileSync(path.join(dir, 'proxy-cert.pem'), options.tlsListener.certPem);
    writeFileSync(path.join(dir, 'proxy-key.pem'), options.tlsListener.keyPem);
    lines.push(`https_port ${host}:${port} tls-cert=${dir}/proxy-cert.pem tls-key=${dir}/proxy-key.pem`);
  } else {
    lines.push(`http_port ${host}:${port}`);
  }
  lines.push(
    `pid_filename ${dir}/squid.pid`,
    `access_log stdio:${dir}/access.log`,
    `cache_log ${dir}/cache.log`,
    'cache_store_log none',
    `coredump_dir ${dir}`,
    'cache deny all',
    'cache_mem 8 MB',
    'shutdown_lifetime 1 seconds',
    `hosts_file ${dir}/hosts`,
    `dns_nameservers ${options.dnsServer ?? '127.0.0.1'}`,
    'visible_hostname ferry-test-proxy',
    'icp_port 0',
    'htcp_port 0',
    'acl localdst dst 127.0.0.0/8',
    'acl CONNECT method CONNECT',
  );
  if (options.accessRules) lines.push(...options.accessRules.split('\n').filter((line) => line.trim() !== ''));
  if (options.denyPorts?.length) lines.push(`acl deniedports port ${options.denyPorts.join(' ')}`, 'http_access deny deniedports');
  if (options.allowPorts?.length) lines.push(`acl allowedports port ${options.allowPorts.join(' ')}`, 'http_access deny !allowedports');
  if (options.mode === 'auth') {
    const users = options.users ?? { alice: 'secret' };
    const passwd = Object.entries(users)
      .map(([user, password]) => `${user}:${execFileSync('openssl', ['passwd', '-apr1', password], { encoding: 'utf8' }).trim()}`)
      .join('\n');
    writeFileSync(path.join(dir, 'passwd'), `${passwd}\n`);
    lines.push(`auth_param basic program ${NCSA} ${dir}/passwd`, 'auth_param basic realm corp-proxy', 'acl authed proxy_auth REQUIRED', 'http_access deny !authed');
  }
  if (options.mode === 'ntlm') {
    lines.push(`auth_param ntlm program ${NTLM_FAKE}`, 'auth_param ntlm children 2', 'auth_param ntlm keep_alive on', 'acl authed proxy_auth REQUIRED', 'http_access deny !authed');
  }
  if (options.mode === 'negotiate') {
    const kerberos = options.kerberos;
    if (!kerberos) throw new Error('squid mode negotiate needs options.kerberos');
    execFileSync('chown', ['proxy:proxy', kerberos.keytab]);
    lines.push(
      `auth_param negotiate program ${NEGOTIATE_KERBEROS} -k ${kerberos.keytab} -s ${kerberos.servicePrincipal}`,
      'auth_param negotiate children 2', 'auth_param negotiate keep_alive on', 'acl authed proxy_auth REQUIRED', 'http_access deny !authed',
    );
  }
  if (options.mode === 'deny') lines.push('http_access deny all');
  lines.push('http_access allow localdst', 'http_access deny all');
  writeFileSync(path.join(dir, 'squid.conf'), `${lines.join('\n')}\n`);
  execFileSync('chown', ['-R', 'proxy:proxy', dir]);

  // A service name of its own: Squid names its shared-memory segments after it (/dev/shm/<name>-*),
  // so instances started side by side, or after one that was killed, never collide on them.
  const serviceName = `ferry${path.basename(dir).replace(/[^A-Za-z0-9]/g, '')}`;
  const forgetShm = cleanupOnExit(() => removeSharedMemory(serviceName));
  const env = options.kerberos ? { ...process.env, KRB5_CONFIG: options.kerberos.configFile, KRB5RCACHETYPE: 'none' } : process.env;
  const child = spawnManaged('/usr/sbin/squid', ['-n', serviceName, '-f', path.join(dir, 'squid.conf'), '-N', '-d1'], { cwd: dir, env });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await waitForPort(port, host, options.startTimeoutMs ?? 20_000, () => child.exitCode === null && child.signalCode === null);
  } catch (error) {
    await stopChild(child, 1_000);
    removeSharedMemory(serviceName);
    forgetShm();
    const log = existsSync(path.join(dir, 'cache.log')) ? readFileSync(path.join(dir, 'cache.log'), 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`squid (${options.mode}) did not start: ${(error as Error).message}\n${output}\n${log}`.slice(0, 4000));
  }

  const accessLog = (): string[] => {
    const file = path.join(dir, 'access.log');
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((line) => line.length > 0) : [];
  };
  return {
    port,
    host,
    dir,
    ...(bumpCaPem ? { bumpCaPem } : {}),
    accessLog,
    waitForAccessLog: (match, timeoutMs = 5_000) => waitFor(() => accessLog().find(match), timeoutMs, 'a matching squid access.log line'),
    cacheLog: () => (existsSync(path.join(dir, 'cache.log')) ? readFileSync(path.join(dir, 'cache.log'), 'utf8') : ''),
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
      forgetDir();
      removeSharedMemory(serviceName);
      forgetShm();
    },
  };
}

/** Squid leaves its segments behind when it is killed; they are named after the service. */
function removeSharedMemory(serviceName: string): void {
  try {
    for (const name of readdirSync('/dev/shm')) if (name.startsWith(`${serviceName}-`)) rmSync(path.join('/dev/shm', name), { force: true });
  } catch {
    // no /dev/shm: nothing to remove
  }
}
