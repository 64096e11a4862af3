// What the benchmark runs against, all on 127.0.0.1 in one temp folder: an nginx backend (or the
// Node sample backend when nginx is missing), a one-hop nginx reverse proxy, a relay with both user
// listeners, and connectors (tcp, and https through Squid when the Squid harness is present).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { stringify } from 'yaml';
import { FERRY_MAIN, runFerry } from '../test/harness/ferry-cli.js';
import type { ManagedProcess } from '../test/harness/ferry-stack.js';
import { freePort, spawnManaged, stopChild, waitFor, waitForPort } from '../test/harness/processes.js';
import type { ChildProcess } from 'node:child_process';
import type { KeyPairPem } from '../src/shared/pki.js';

export const NGINX = '/usr/sbin/nginx';

export function nginxInstalled(): boolean {
  return existsSync(NGINX);
}

export interface NginxHandle {
  port: number;
  /** With `tls`: the same server's TLS listener. */
  tlsPort?: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** What makes an nginx reverse proxy one hop of a tunnel's shape: TLS upstream with a client certificate. */
export interface NginxTlsUpstream {
  /** The client certificate nginx presents to the upstream (mutual TLS, as a connector to the relay). */
  clientCert: KeyPairPem;
  /** The CA the upstream's certificate must chain to, and the name it must carry. */
  caPem: string;
  serverName: string;
}

/**
 * Starts an nginx master + one worker with its own config. `upstream` makes it a reverse proxy
 * (keep-alive to the upstream, streaming both ways; `upstreamTls`: over mutual TLS); otherwise it
 * serves `root` and discards uploads. `tls` adds a TLS listener to the same server (for the file
 * server: what TLS alone costs, in C, on the same files); `clientCa` makes that listener require a
 * client certificate from that CA.
 */
export async function startNginx(dir: string, options: { root?: string; upstream?: number; upstreamTls?: NginxTlsUpstream; tls?: KeyPairPem; clientCa?: string }): Promise<NginxHandle> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const tlsPort = options.tls ? await freePort() : undefined;
  let tlsListen = '';
  if (options.tls) {
    writeFileSync(path.join(dir, 'tls.crt'), options.tls.certPem);
    writeFileSync(path.join(dir, 'tls.key'), options.tls.keyPem, { mode: 0o600 });
    // http2: for h2load (HTTP/2 users); wrk and curl --http1.1 still get HTTP/1.1 by ALPN.
    tlsListen = `listen 127.0.0.1:${tlsPort} ssl http2 backlog=4096;
    ssl_certificate ${dir}/tls.crt;
    ssl_certificate_key ${dir}/tls.key;`;
    if (options.clientCa) {
      writeFileSync(path.join(dir, 'client-ca.crt'), options.clientCa);
      tlsListen += `
    ssl_client_certificate ${dir}/client-ca.crt;
    ssl_verify_client on;`;
    }
  }
  let upstreamTls = '';
  if (options.upstreamTls) {
    const { clientCert, caPem, serverName } = options.upstreamTls;
    writeFileSync(path.join(dir, 'upstream-client.crt'), clientCert.certPem);
    writeFileSync(path.join(dir, 'upstream-client.key'), clientCert.keyPem, { mode: 0o600 });
    writeFileSync(path.join(dir, 'upstream-ca.crt'), caPem);
    upstreamTls = `
      proxy_ssl_certificate ${dir}/upstream-client.crt;
      proxy_ssl_certificate_key ${dir}/upstream-client.key;
      proxy_ssl_trusted_certificate ${dir}/upstream-ca.crt;
      proxy_ssl_verify on;
      proxy_ssl_name ${serverName};
      proxy_ssl_session_reuse on;`;
  }
  // proxy_buffering off streams like a tunnel, but then nginx moves the answer in pieces of
  // proxy_buffer_size (one 4 KiB page by default): 100 MB went through at 0.15x direct. With 64 KiB
  // it reads 0.5-0.7x, the "one-hop nginx" anchor of issue 7 (0.58x); the request body likewise
  // moves in pieces of client_body_buffer_size (16 KiB by default).
  const site = options.upstream
    ? `upstream backend { server 127.0.0.1:${options.upstream}; keepalive 128; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    ${tlsListen}
    location / {
      proxy_pass ${options.upstreamTls ? 'https' : 'http'}://backend;${upstreamTls}
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_buffer_size 64k;
      proxy_buffers 8 64k;
      proxy_busy_buffers_size 128k;
      proxy_request_buffering off;
      client_body_buffer_size 64k;
      client_max_body_size 0;
    }
  }`
    : `server {
    listen 127.0.0.1:${port} backlog=4096;
    ${tlsListen}
    root ${options.root};
    # Uploads: read the whole body (in memory), then answer from the small file, like an upload
    # handler would. A bare "return 200" answers before the body is read, which a proxy in front
    # (Ferry or nginx) may then cut short.
    location = /upload {
      client_max_body_size 0;
      client_body_buffer_size 128m;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_method GET;
      proxy_pass http://127.0.0.1:${port}/hello.txt;
    }
  }`;
  const conf = `user root;
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 65s;
  sendfile on;
  tcp_nodelay on;
  default_type application/octet-stream;
  ${site}
}
`;
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = spawnManaged(NGINX, ['-c', path.join(dir, 'nginx.conf'), '-p', dir]);
  await waitForPort(port, '127.0.0.1', 10_000, () => child.exitCode === null);
  return { port, tlsPort, child, stop: () => stopChild(child, 3000) };
}

/** Files the nginx backend serves: a small one and the bulk one (sparse, so it costs no disk). */
export function writeBackendFiles(root: string, bulkBytes: number): { small: string; bulk: string; uploadFile: string } {
  mkdirSync(root, { recursive: true });
  writeFileSync(path.join(root, 'hello.txt'), 'hello\n');
  execFileSync('truncate', ['-s', String(bulkBytes), path.join(root, 'bulk.bin')]);
  return { small: '/hello.txt', bulk: '/bulk.bin', uploadFile: path.join(root, 'bulk.bin') };
}

/** Node flags for relay and connector (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
let ferryNodeArgs: string[] = [];
export function setFerryNodeArgs(args: string[]): void {
  ferryNodeArgs = args;
}

/**
 * The Node flags a service unit (deploy/systemd/ferry-<service>.service) runs the relay or the
 * connector with, read from the unit itself, so the bench measures them as deployed.
 */
export function serviceNodeFlags(service: 'relay' | 'connector'): string[] {
  const unit = readFileSync(new URL(`../../deploy/systemd/ferry-${service}.service`, import.meta.url), 'utf8');
  const command = /^ExecStart=\S+\s+(.*)$/m.exec(unit)?.[1] ?? '';
  const flags: string[] = [];
  for (const word of command.split(/\s+/)) {
    if (!word.startsWith('--')) break;
    flags.push(word);
  }
  return flags;
}

/** A relay or connector process of the built CLI; its log (stderr and stdout) is kept in memory. */
function startFerryProcess(args: string[], env: NodeJS.ProcessEnv, nodeFlags: string[] = []): ManagedProcess {
  const child = spawnManaged(process.execPath, [...nodeFlags, ...ferryNodeArgs, FERRY_MAIN, ...args], { env: { ...process.env, ...env } });
  let log = '';
  const keep = (chunk: Buffer) => { log += chunk.toString('utf8'); };
  child.stderr?.on('data', keep);
  child.stdout?.on('data', keep);
  return { child, log: () => log, stop: (graceMs) => stopChild(child, graceMs) };
}

/**
 * The Node sample backend in its own process (its /slow long-polls), so the bench process holding
 * 10,000 client streams does not also serve them.
 */
export async function startSampleBackendProcess(): Promise<{ port: number; url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const module = new URL('../src/demo/sample-backend.js', import.meta.url).href;
  const child = spawnManaged(process.execPath, ['--input-type=module', '-e', `(await import(${JSON.stringify(module)})).startSampleBackend(${port}, '127.0.0.1')`]);
  await waitForPort(port, '127.0.0.1', 10_000, () => child.exitCode === null);
  return { port, url: `http://127.0.0.1:${port}`, stop: () => stopChild(child, 2000) };
}

export interface FerryDeployment {
  relay: ManagedProcess;
  configFile: string;
  ports: { user: number; userPlain: number; tunnel: number; registration: number };
  connectors: Record<string, ManagedProcess>;
  stop(): Promise<void>;
}

/** Relay with the TLS and plain user listeners; the CLI runs with `--config`. */
export async function startRelay(dir: string, hostnames: string[], env: NodeJS.ProcessEnv, extra: Record<string, unknown> = {}): Promise<FerryDeployment> {
  mkdirSync(dir, { recursive: true });
  const [user, userPlain, tunnel, registration] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const configFile = path.join(dir, 'relay.yaml');
  writeFileSync(configFile, stringify({
    ...extra,
    stateDir: './relay',
    hostnames,
    listen: { user: `127.0.0.1:${user}`, userPlain: `127.0.0.1:${userPlain}`, tunnel: `127.0.0.1:${tunnel}`, registration: `127.0.0.1:${registration}` },
    tunnelPingIntervalMs: 5000,
  }));
  const relay = startFerryProcess(['relay', 'run', '--config', configFile], env, serviceNodeFlags('relay'));
  await waitForPort(user, '127.0.0.1', 15_000, () => relay.child.exitCode === null);
  await waitForPort(registration, '127.0.0.1', 15_000, () => relay.child.exitCode === null);
  await waitForPort(userPlain, '127.0.0.1', 15_000, () => relay.child.exitCode === null);
  const connectors: Record<string, ManagedProcess> = {};
  return {
    relay, configFile, ports: { user, userPlain, tunnel, registration }, connectors,
    stop: async () => {
      await Promise.all(Object.values(connectors).map((c) => c.stop(3000)));
      await relay.stop(5000);
    },
  };
}

export async function ferryCli(deployment: FerryDeployment, args: string[]): Promise<string> {
  const run = await runFerry([...args, '--config', deployment.configFile]);
  if (run.code !== 0) throw new Error(`ferry ${args.join(' ')} failed: ${run.stderr}`);
  return run.stdout.trim();
}

/** Registers a connector into `group` and starts it; resolves once the relay logged its tunnels. */
export async function startConnector(deployment: FerryDeployment, dir: string, name: string, group: string, config: Record<string, unknown>, env: NodeJS.ProcessEnv, tunnels = 2): Promise<ManagedProcess> {
  const token = await ferryCli(deployment, ['relay', 'token', 'create', '--group', group, '--ttl', '1h']);
  const configFile = path.join(dir, `${name}.yaml`);
  writeFileSync(configFile, stringify({
    stateDir: `./${name}`, name, tunnels, pingIntervalMs: 5000,
    backoff: { initialMs: 100, maxMs: 1000, healthyAfterMs: 5000 },
    ...config,
  }));
  const registered = await runFerry(['connector', 'register', '--token', token, '--config', configFile]);
  if (registered.code !== 0) throw new Error(`connector register failed: ${registered.stderr}`);
  const upBefore = countTunnelsUp(deployment.relay.log());
  const proc = startFerryProcess(['connector', 'run', '--config', configFile], env, serviceNodeFlags('connector'));
  deployment.connectors[name] = proc;
  await waitFor(() => (countTunnelsUp(deployment.relay.log()) - upBefore >= tunnels ? true : (proc.child.exitCode !== null ? false : undefined)), 20_000, `${name} tunnels`)
    .then((ok) => { if (!ok) throw new Error(`connector ${name} exited: ${proc.log().slice(-2000)}`); });
  return proc;
}

function countTunnelsUp(log: string): number {
  return (log.match(/"msg":"tunnel up"/g) ?? []).length - (log.match(/"msg":"tunnel down"/g) ?? []).length;
}

/** Minimal view of test/harness/squid.ts (branch dial), loaded only when it exists. */
interface SquidLike {
  port: number;
  stop(): Promise<void>;
}

/** Starts an open Squid through the dial branch's harness, or says why it cannot. */
export async function startSquidIfAvailable(hosts: Record<string, string>): Promise<{ squid?: SquidLike; reason?: string }> {
  if (!existsSync('/usr/sbin/squid')) return { reason: 'squid is not installed' };
  const harness = new URL('../test/harness/squid.js', import.meta.url);
  if (!existsSync(harness)) return { reason: 'the Squid harness (test/harness/squid.ts, branch dial) is not in this tree' };
  try {
    const module = await import(harness.href) as { startSquid(options: { mode: 'open'; hosts: Record<string, string> }): Promise<SquidLike> };
    return { squid: await module.startSquid({ mode: 'open', hosts }) };
  } catch (error) {
    return { reason: `Squid did not start: ${(error as Error).message}` };
  }
}
