// A real Ferry deployment on loopback for integration tests: a relay process, connector processes
// registered with real one-time tokens, and the sample backend, each a child process running the
// built CLI. Everything is killed when the test process exits.
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { stringify } from 'yaml';
import { FERRY_MAIN, runFerry, type CliRun } from './ferry-cli.js';
import { freePort, spawnManaged, stopChild, waitFor, waitForPort } from './processes.js';

export interface ManagedProcess {
  child: ChildProcess;
  /** Everything the process wrote to stderr (its JSON log lines) so far. */
  log(): string;
  stop(graceMs?: number): Promise<void>;
}

export function startFerryProcess(args: string[], env: NodeJS.ProcessEnv = {}): ManagedProcess {
  const child = spawnManaged(process.execPath, [FERRY_MAIN, ...args], { env: { ...process.env, FERRY_LOG_LEVEL: 'debug', ...env } });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => { log += chunk.toString('utf8'); });
  child.stdout?.on('data', (chunk: Buffer) => { log += chunk.toString('utf8'); });
  return { child, log: () => log, stop: (graceMs) => stopChild(child, graceMs) };
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb * 1024;
}

export interface RelayHandle extends ManagedProcess {
  configFile: string;
  stateDir: string;
  ports: { user: number; tunnel: number; registration: number; userPlain?: number };
  caFile: string;
  cli(args: string[]): Promise<CliRun>;
  restart(): Promise<void>;
}

export class FerryStack {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-test-'));
  relay!: RelayHandle;
  private readonly connectors: ManagedProcess[] = [];
  private counter = 0;

  /** Starts the relay; `userPlain` adds its plain-HTTP user listener (ports.userPlain). */
  async startRelay(extra: Record<string, unknown> = {}, options: { userPlain?: boolean } = {}): Promise<RelayHandle> {
    const [user, tunnel, registration] = [await freePort(), await freePort(), await freePort()];
    const userPlain = options.userPlain ? await freePort() : undefined;
    const configFile = path.join(this.dir, 'relay.yaml');
    writeFileSync(configFile, stringify({
      stateDir: './relay',
      hostnames: ['app.localhost', 'other.localhost', 'dead.localhost', 'slow.localhost', 'lonely.localhost', 'ntlm.localhost', 'basic.localhost', 'fallback.localhost', 'relay.ferry.test', 'relay.test'],
      listen: { user: `127.0.0.1:${user}`, tunnel: `127.0.0.1:${tunnel}`, registration: `127.0.0.1:${registration}`, ...(userPlain ? { userPlain: `127.0.0.1:${userPlain}` } : {}) },
      tunnelPingIntervalMs: 2000,
      ...extra,
    }));
    const launch = async (): Promise<ManagedProcess> => {
      const proc = startFerryProcess(['relay', 'run', '--config', configFile]);
      await waitForPort(user, '127.0.0.1', 15_000, () => proc.child.exitCode === null);
      await waitForPort(registration, '127.0.0.1', 15_000, () => proc.child.exitCode === null);
      return proc;
    };
    let current = await launch();
    const handle: RelayHandle = {
      get child() { return current.child; },
      log: () => current.log(),
      stop: (graceMs) => current.stop(graceMs),
      configFile,
      stateDir: path.join(this.dir, 'relay'),
      ports: { user, tunnel, registration, ...(userPlain ? { userPlain } : {}) },
      caFile: path.join(this.dir, 'relay', 'pki', 'ca.pem'),
      cli: (args) => runFerry([...args, '--config', configFile]),
      restart: async () => {
        await current.stop();
        current = await launch();
      },
    };
    this.relay = handle;
    return handle;
  }

  async createToken(group = 'default', ttl = '1h'): Promise<string> {
    const run = await this.relay.cli(['relay', 'token', 'create', '--group', group, '--ttl', ttl]);
    if (run.code !== 0) throw new Error(`token create failed: ${run.stderr}`);
    return run.stdout.trim();
  }

  /** Writes a connector config and registers it; returns its config file. */
  async registerConnector(options: { name?: string; group?: string; config?: Record<string, unknown>; token?: string } = {}): Promise<{ configFile: string; run: CliRun }> {
    const name = options.name ?? `connector-${++this.counter}`;
    const configFile = path.join(this.dir, `${name}.yaml`);
    writeFileSync(configFile, stringify({
      stateDir: `./${name}`, name, pingIntervalMs: 2000,
      backoff: { initialMs: 100, maxMs: 1000, healthyAfterMs: 5000 },
      ...options.config,
    }));
    const token = options.token ?? await this.createToken(options.group);
    const run = await runFerry(['connector', 'register', '--token', token, '--config', configFile]);
    return { configFile, run };
  }

  startConnector(configFile: string, env: NodeJS.ProcessEnv = {}): ManagedProcess {
    const proc = startFerryProcess(['connector', 'run', '--config', configFile], env);
    this.connectors.push(proc);
    return proc;
  }

  /** Waits until the relay reports `count` tunnels up in total (from its log). */
  async waitForTunnels(count: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(() => {
      const log = this.relay.log();
      const up = (log.match(/"msg":"tunnel up"/g) ?? []).length;
      const down = (log.match(/"msg":"tunnel down"/g) ?? []).length;
      return up - down >= count ? true : undefined;
    }, timeoutMs, `${count} tunnels`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.connectors.map((c) => c.stop(2000)));
    await this.relay?.stop(3000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface UserResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A user's HTTPS request to the relay, for app host `host` (e.g. app.localhost). */
export function userRequest(relay: RelayHandle, host: string, requestPath: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {}): Promise<UserResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: relay.ports.user, servername: host, method: options.method ?? 'GET', path: requestPath,
      ca: readFileSync(relay.caFile), agent: false, timeout: options.timeoutMs ?? 20_000,
      headers: { host: `${host}:${relay.ports.user}`, ...options.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('user request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface Http2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  /** The stream ended with an error (a reset) rather than normally. */
  reset: boolean;
  rstCode?: number;
}

/**
 * One request on an HTTP/2 session (a user of the relay); resolves when the stream closes, a reset
 * included. Without `body` the request ends with its headers (END_STREAM).
 */
export function http2Exchange(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string | Buffer, timeoutMs = 15_000): Promise<Http2Answer> {
  return new Promise((resolve) => {
    const req = session.request(headers, { endStream: body === undefined });
    const answer: Http2Answer = { status: 0, headers: {}, body: '', reset: false };
    req.on('response', (responseHeaders) => {
      answer.status = Number(responseHeaders[':status']);
      answer.headers = responseHeaders;
    });
    req.setEncoding('latin1');
    req.on('data', (chunk: string) => { answer.body += chunk; });
    req.on('error', () => { answer.reset = true; });
    req.on('close', () => resolve({ ...answer, rstCode: req.rstCode }));
    req.setTimeout(timeoutMs, () => req.close());
    if (body !== undefined) req.end(body);
  });
}

/** Writes `raw` on a fresh connection (TLS unless `plain`), resolves with all it got back. */
export function rawExchange(port: number, raw: string, options: { ca?: Buffer; servername?: string; plain?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = options.plain
      ? net.connect(port, '127.0.0.1')
      : tls.connect({ host: '127.0.0.1', port, ca: options.ca, servername: options.servername, ALPNProtocols: ['http/1.1'] });
    const chunks: Buffer[] = [];
    socket.once(options.plain ? 'connect' : 'secureConnect', () => socket.write(raw));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
    socket.setTimeout(15_000, () => socket.destroy(new Error('no end within 15 s')));
  });
}
