// A real Kerberos KDC (MIT krb5kdc from Debian's krb5-kdc) per test file, on a free loopback port,
// with its own realm, database and krb5.conf in a temp folder: for Negotiate proxy
// authentication against Squid's negotiate_kerberos_auth. Principals get random keys and are
// exported to keytabs (a service's identity, as an operator would deploy it); nothing touches
// the system's /etc/krb5.conf.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanupOnExit, freePort, spawnManaged, stopChild, waitForPort } from './processes.js';

const KRB5KDC = '/usr/sbin/krb5kdc';
const KDB5_UTIL = '/usr/sbin/kdb5_util';
const KADMIN_LOCAL = '/usr/sbin/kadmin.local';

/** Why the KDC cannot run here, or undefined when it can. */
export function kdcUnavailable(): string | undefined {
  const missing = [KRB5KDC, KDB5_UTIL, KADMIN_LOCAL].filter((file) => !existsSync(file));
  return missing.length ? `MIT Kerberos KDC tools missing (${missing.join(', ')}; Debian packages krb5-kdc and krb5-admin-server)` : undefined;
}

export interface Kdc {
  realm: string;
  port: number;
  dir: string;
  /** krb5.conf naming this KDC: KRB5_CONFIG for every Kerberos client and service of the test. */
  configFile: string;
  /** Adds a principal with a random key and exports it to a new keytab (mode 0600). */
  keytabFor(principal: string): string;
  stop(): Promise<void>;
}

export async function startKdc(realm = 'FERRY.TEST'): Promise<Kdc> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferry-kdc-'));
  const forgetDir = cleanupOnExit(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755); // Squid's helper (user proxy) reads krb5.conf and its keytab here
  const port = await freePort();
  const configFile = path.join(dir, 'krb5.conf');
  const domain = realm.toLowerCase();
  writeFileSync(configFile, `[libdefaults]
  default_realm = ${realm}
  dns_lookup_realm = false
  dns_lookup_kdc = false
  rdns = false
  dns_canonicalize_hostname = false
  udp_preference_limit = 1
[realms]
  ${realm} = {
    kdc = 127.0.0.1:${port}
  }
[domain_realm]
  .${domain} = ${realm}
  ${domain} = ${realm}
`);
  const kdcConf = path.join(dir, 'kdc.conf');
  writeFileSync(kdcConf, `[kdcdefaults]
  kdc_ports = ${port}
  kdc_tcp_ports = ${port}
[realms]
  ${realm} = {
    database_name = ${dir}/principal
    key_stash_file = ${dir}/stash
    acl_file = ${dir}/kadm5.acl
    max_life = 1h
    supported_enctypes = aes256-cts-hmac-sha1-96:normal
  }
[logging]
  kdc = FILE:${dir}/kdc.log
`);
  writeFileSync(path.join(dir, 'kadm5.acl'), '');
  const env = { ...process.env, KRB5_CONFIG: configFile, KRB5_KDC_PROFILE: kdcConf };
  const run = (command: string, args: string[]) => execFileSync(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  run(KDB5_UTIL, ['create', '-s', '-r', realm, '-P', 'kdc-master-key-for-tests']);
  const child = spawnManaged(KRB5KDC, ['-n', '-r', realm], { env });
  try {
    await waitForPort(port, '127.0.0.1', 10_000, () => child.exitCode === null);
  } catch (error) {
    await stopChild(child, 1000);
    const log = existsSync(path.join(dir, 'kdc.log')) ? readFileSync(path.join(dir, 'kdc.log'), 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`krb5kdc did not start: ${(error as Error).message}\n${log}`.slice(0, 4000));
  }
  let keytabs = 0;
  return {
    realm,
    port,
    dir,
    configFile,
    keytabFor(principal) {
      const keytab = path.join(dir, `keytab-${++keytabs}`);
      run(KADMIN_LOCAL, ['-r', realm, '-q', `addprinc -randkey ${principal}`]);
      run(KADMIN_LOCAL, ['-r', realm, '-q', `ktadd -k ${keytab} ${principal}`]);
      chmodSync(keytab, 0o600);
      return keytab;
    },
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
      forgetDir();
    },
  };
}
