// bench — `npm run bench`: Ferry's speed against a direct backend and a one-hop reverse proxy,
// measured side by side in one run on loopback (issue 7). Imports src/, test/harness (processes,
// CLI runner) and its own files; nothing in src/ imports bench/.
//
//   node dist/bench/run.js [--quick] [--out DIR] [--cpu-prof DIR]
//
// Prints a markdown table (ratios to direct) and writes JSON to DIR (default results/).
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { benchPac } from './pac.js';
import { createCa, createKeyAndCsr, issueServerCert, signCsr } from '../src/shared/pki.js';
import {
  connectionsOf, curlDownload, curlTtfb, curlUpload, establishedTo, H2LOAD, h2loadGet, longPolls, median, round1, withUsage, writeWrkScript, wrkGet,
  type H2loadResult, type LongPollResult, type Target, type TransferResult, type Usage, type WrkResult,
} from './measure.js';
import {
  ferryCli, nginxInstalled, NGINX, startConnector, startNginx, startRelay, setFerryNodeArgs, startSampleBackendProcess, startSquidIfAvailable, writeBackendFiles,
  type FerryDeployment, type NginxHandle,
} from './stack.js';

interface Plan {
  wrkSeconds: number;
  bulkBytes: number;
  /** 100 MB transfers per path and direction, each right after one direct: the row gives the median. */
  bulkRounds: number;
  ttfbSamples: number;
  longPolls: number;
  longPollSessions: number;
  holdMs: number;
  pacMs: number;
}

const SQUID_RELAY_NAME = 'relay.ferry.test';
const DIRECT_TLS = 'direct-tls';
const NGINX_TWO_HOPS = 'nginx-two-hops-tls';
const TWO_HOPS_LABEL = 'nginx two hops, mutual TLS between (Ferry\'s shape in C), users over TLS';

const FULL: Plan = { wrkSeconds: 8, bulkBytes: 100 * 2 ** 20, bulkRounds: 3, ttfbSamples: 21, longPolls: 10_000, longPollSessions: 10, holdMs: 30_000, pacMs: 1000 };
const QUICK: Plan = { wrkSeconds: 1, bulkBytes: 8 * 2 ** 20, bulkRounds: 1, ttfbSamples: 3, longPolls: 300, longPollSessions: 2, holdMs: 3000, pacMs: 200 };

export interface TargetResult {
  name: string;
  label: string;
  available: boolean;
  /** Users reach this path over TLS. */
  overTls?: boolean;
  reason?: string;
  c1?: WrkResult;
  c64?: WrkResult;
  /** c=8, a new connection for every request (`Connection: close`; over TLS a handshake each). */
  newConnections?: WrkResult;
  /** Over TLS, when h2load is installed: HTTP/2 users, 8 connections × 8 concurrent streams. */
  http2?: H2loadResult;
  download?: TransferResult;
  upload?: TransferResult;
  ttfbMs?: number;
  /**
   * Direct, measured again right before this row's c=64, download and upload: the machine is shared,
   * and direct alone read 54,000 to 77,000 GET/s at c=64 between runs.
   */
  adjacentDirect?: { c64?: number; downloadMbPerSec?: number; uploadMbPerSec?: number };
  /** Time to first byte after the TCP (and TLS) handshake, on a fresh connection. */
  ttfbAfterHandshakeMs?: number;
  /** Ferry only: CPU (% of one core) and peak RSS (MB) of relay and connector per phase. */
  usage?: Record<string, Record<string, Usage>>;
  /** Ferry only: relay and connector CPU time per small GET at c=64 (independent of CPU contention). */
  cpuMsPerRequest?: { relay: number; connector: number };
  /** Ferry only: relay and connector CPU time per request on a new connection (newConnections). */
  cpuMsPerNewConnection?: { relay: number; connector: number };
  /** Ferry only: relay and connector CPU time per HTTP/2 GET (http2). */
  cpuMsPerHttp2Request?: { relay: number; connector: number };
  /** Ferry only: relay and connector CPU time per 100 MB (2^20 bytes each) moved, median of the rounds. */
  cpuMsPer100Mb?: { download?: { relay: number; connector: number }; upload?: { relay: number; connector: number } };
  /** 1-minute load average before measuring (other work on the machine skews every figure). */
  loadAverage: number;
  errors: string[];
}

export interface BenchReport {
  date: string;
  quick: boolean;
  machine: { cpus: number; cpuModel: string; node: string; nginx?: string };
  direct: string;
  plan: Plan;
  targets: TargetResult[];
  longPolls?: LongPollResult & { backend: string };
  /**
   * The `https` transport through Squid against `tcp`, c=64 over TLS users, measured alternately
   * (tcp, https, then https, tcp...) so drift on the shared machine falls on both alike.
   */
  squidVsTcp?: { seconds: number; rounds: { tcp: number; https: number; ratio: number }[]; medianRatio: number };
  pac?: { cachedPerSec: number; uncachedPerSec: number };
  notes: string[];
}

function parseArgs(argv: string[]): { quick: boolean; outDir: string; cpuProf?: string } {
  const out = { quick: false, outDir: 'results', cpuProf: undefined as string | undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') out.quick = true;
    else if (arg === '--out') out.outDir = argv[++i] ?? out.outDir;
    else if (arg === '--cpu-prof') out.cpuProf = path.resolve(argv[++i] ?? 'profiles');
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: node dist/bench/run.js [--quick] [--out DIR] [--cpu-prof DIR]\n');
      process.exit(0);
    } else {
      process.stderr.write(`bench: unknown option ${arg}\n`);
      process.exit(2);
    }
  }
  return out;
}

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

export async function runBench(options: { quick: boolean; outDir: string; cpuProf?: string }): Promise<BenchReport> {
  const plan = options.quick ? QUICK : FULL;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-'));
  const stops: (() => Promise<void>)[] = [];
  const notes: string[] = [];
  // FERRY_BENCH_NO_NGINX=1 exercises the fallback (Node backend, no one-hop reference) on a machine with nginx.
  const useNginx = nginxInstalled() && process.env.FERRY_BENCH_NO_NGINX !== '1';
  const report: BenchReport = {
    date: new Date().toISOString(),
    quick: options.quick,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version },
    direct: '',
    plan,
    targets: [],
    notes,
  };
  try {
    const files = writeBackendFiles(path.join(dir, 'www'), plan.bulkBytes);
    const sample = await startSampleBackendProcess();
    stops.push(() => sample.stop());

    let backendUrl: string;
    let paths: Target['paths'];
    let proxy: NginxHandle | undefined;
    let backendTls: string | undefined;
    let twoHops: string | undefined;
    if (useNginx) {
      report.machine.nginx = spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '') || 'nginx';
      // The same nginx over TLS (a P-256 key, as the relay's user certificate) is the reference for
      // Ferry's TLS rows: what terminating TLS costs before any tunnel.
      const ca = await createCa('ferry bench CA');
      const tls = await issueServerCert(ca, ['localhost']);
      const backend = await startNginx(path.join(dir, 'nginx-backend'), { root: path.join(dir, 'www'), tls });
      stops.push(() => backend.stop());
      backendUrl = `http://127.0.0.1:${backend.port}`;
      backendTls = `https://127.0.0.1:${backend.tlsPort}`;
      paths = { small: files.small, download: files.bulk, upload: '/upload' };
      report.direct = 'nginx (Debian, 1 worker, plain HTTP) serving a 6-byte file, a sparse bulk file (sendfile), discarding uploads';
      proxy = await startNginx(path.join(dir, 'nginx-proxy'), { upstream: backend.port });
      stops.push(() => proxy!.stop());
      // Ferry's shape built from nginx: users over TLS to a first nginx (the relay's place), which
      // keeps mutual-TLS connections to a second one (the connector's place), which forwards to the
      // backend. The same TLS work per byte and the same process hops as Ferry, in C.
      const hopKey = await createKeyAndCsr('bench hop');
      const hopClient = { certPem: await signCsr(ca, hopKey.csrPem, { commonName: 'bench hop', validityDays: 1 }), keyPem: hopKey.keyPem };
      const farHop = await startNginx(path.join(dir, 'nginx-far-hop'), { upstream: backend.port, tls, clientCa: ca.certPem });
      stops.push(() => farHop.stop());
      const nearHop = await startNginx(path.join(dir, 'nginx-near-hop'), {
        upstream: farHop.tlsPort, upstreamTls: { clientCert: hopClient, caPem: ca.certPem, serverName: 'localhost' }, tls,
      });
      stops.push(() => nearHop.stop());
      twoHops = `https://127.0.0.1:${nearHop.tlsPort}`;
    } else {
      backendUrl = sample.url;
      paths = { small: '/hello', download: `/bytes?n=${plan.bulkBytes}`, upload: '/upload' };
      report.direct = 'Node sample backend (src/demo/sample-backend.ts; nginx is not installed)';
    }

    const env: NodeJS.ProcessEnv = { FERRY_LOG_LEVEL: 'info' };
    if (options.cpuProf) {
      mkdirSync(options.cpuProf, { recursive: true });
      // The profile is written on exit, not when a signal kills the process: SIGTERM exits at once.
      setFerryNodeArgs(['--cpu-prof', `--cpu-prof-dir=${options.cpuProf}`, '--import', "data:text/javascript,process.once('SIGTERM',()=>process.exit(0))"]);
    }
    log('starting relay and connectors');
    const ferry: FerryDeployment = await startRelay(dir, ['tcp.localhost', 'pass.localhost', 'squid.localhost', 'slow.localhost', SQUID_RELAY_NAME], env);
    stops.push(() => ferry.stop());
    const userPort = ferry.ports.user;
    await ferryCli(ferry, ['relay', 'app', 'add', 'tcp', '--external', `https://tcp.localhost:${userPort}`, '--internal', backendUrl, '--group', 'tcp']);
    await ferryCli(ferry, ['relay', 'app', 'add', 'squid', '--external', `https://squid.localhost:${userPort}`, '--internal', backendUrl, '--group', 'squid']);
    await ferryCli(ferry, ['relay', 'app', 'add', 'slow', '--external', `https://slow.localhost:${userPort}`, '--internal', sample.url, '--group', 'tcp']);
    await ferryCli(ferry, ['relay', 'app', 'add', 'pass', '--external', `https://pass.localhost:${userPort}`, '--internal', backendUrl, '--group', 'tcp', '--passthrough']);
    const tcpConnector = await startConnector(ferry, dir, 'conn-tcp', 'tcp', { transport: 'tcp', proxy: { enabled: false } }, env);

    // The design before connection streams, for comparison: a relay that opens a tunnel stream per
    // request for HTTP/1.1 users too (connectionStreams: false), with its own connector.
    const perRequestDir = path.join(dir, 'per-request');
    const perRequest = await startRelay(perRequestDir, ['tcp.localhost'], env, { connectionStreams: false });
    stops.push(() => perRequest.stop());
    await ferryCli(perRequest, ['relay', 'app', 'add', 'tcp', '--external', `https://tcp.localhost:${perRequest.ports.user}`, '--internal', backendUrl, '--group', 'tcp']);
    const perRequestConnector = await startConnector(perRequest, perRequestDir, 'conn-tcp', 'tcp', { transport: 'tcp', proxy: { enabled: false } }, env);

    // https transport through Squid: only when the harness exists and the tunnel really crosses Squid.
    let squidConnector: typeof tcpConnector | undefined;
    let squidReason: string | undefined;
    // The connector names the relay relay.ferry.test (only Squid's hosts file knows it): loopback
    // names are never proxied (as in .NET), so `localhost` would bypass Squid.
    const squidStart = await startSquidIfAvailable({ [SQUID_RELAY_NAME]: '127.0.0.1' });
    if (squidStart.squid) {
      const squid = squidStart.squid;
      stops.push(() => squid.stop());
      try {
        squidConnector = await startConnector(ferry, dir, 'conn-squid', 'squid', { transport: 'https', relayHost: SQUID_RELAY_NAME, proxy: { address: `http://127.0.0.1:${squid.port}` } }, env);
        if (await connectionsOf(squidConnector.child.pid!, squid.port) === 0) {
          squidReason = 'the https-transport connector did not go through Squid (its dialer connected directly)';
          await squidConnector.stop(2000);
          squidConnector = undefined;
        }
      } catch (error) {
        squidReason = `the https-transport connector did not come up through Squid: ${(error as Error).message.split('\n')[0]}`;
      }
    } else {
      squidReason = squidStart.reason;
    }

    const relayPid = ferry.relay.child.pid!;
    const script = writeWrkScript(dir);
    const targets: { target: Target; pids?: Record<string, number>; reason?: string }[] = [
      { target: { name: 'direct', label: `direct (${useNginx ? 'nginx' : 'Node backend'})`, baseUrl: backendUrl, paths } },
      backendTls
        ? { target: { name: DIRECT_TLS, label: 'direct over TLS (the same nginx, TLS listener)', baseUrl: backendTls, paths } }
        : { target: { name: DIRECT_TLS, label: 'direct over TLS (the same nginx, TLS listener)', baseUrl: '', paths }, reason: 'nginx is not installed (or FERRY_BENCH_NO_NGINX=1)' },
      proxy
        ? { target: { name: 'nginx-proxy', label: 'nginx one-hop reverse proxy', baseUrl: `http://127.0.0.1:${proxy.port}`, paths } }
        : { target: { name: 'nginx-proxy', label: 'nginx one-hop reverse proxy', baseUrl: '', paths }, reason: useNginx ? 'nginx did not start' : 'nginx is not installed (or FERRY_BENCH_NO_NGINX=1)' },
      twoHops
        ? { target: { name: NGINX_TWO_HOPS, label: TWO_HOPS_LABEL, baseUrl: twoHops, paths } }
        : { target: { name: NGINX_TWO_HOPS, label: TWO_HOPS_LABEL, baseUrl: '', paths }, reason: useNginx ? 'nginx did not start' : 'nginx is not installed (or FERRY_BENCH_NO_NGINX=1)' },
      { target: { name: 'ferry-per-request-tls', label: 'Ferry tcp, a stream per request (connectionStreams: false), users over TLS', baseUrl: `https://127.0.0.1:${perRequest.ports.user}`, host: `tcp.localhost:${perRequest.ports.user}`, paths }, pids: { relay: perRequest.relay.child.pid!, connector: perRequestConnector.child.pid! } },
      { target: { name: 'ferry-tcp-tls', label: 'Ferry tcp, users over TLS', baseUrl: `https://127.0.0.1:${userPort}`, host: `tcp.localhost:${userPort}`, paths }, pids: { relay: relayPid, connector: tcpConnector.child.pid! } },
      { target: { name: 'ferry-tcp-plain', label: 'Ferry tcp, users over plain HTTP', baseUrl: `http://127.0.0.1:${ferry.ports.userPlain}`, host: `tcp.localhost:${userPort}`, paths }, pids: { relay: relayPid, connector: tcpConnector.child.pid! } },
      { target: { name: 'ferry-passthrough-tls', label: 'Ferry tcp, passthrough app, users over TLS', baseUrl: `https://127.0.0.1:${userPort}`, host: `pass.localhost:${userPort}`, paths }, pids: { relay: relayPid, connector: tcpConnector.child.pid! } },
      { target: { name: 'ferry-passthrough-plain', label: 'Ferry tcp, passthrough app, users over plain HTTP', baseUrl: `http://127.0.0.1:${ferry.ports.userPlain}`, host: `pass.localhost:${userPort}`, paths }, pids: { relay: relayPid, connector: tcpConnector.child.pid! } },
      squidConnector
        ? { target: { name: 'ferry-https-squid', label: 'Ferry https via Squid, users over TLS', baseUrl: `https://127.0.0.1:${userPort}`, host: `squid.localhost:${userPort}`, paths }, pids: { relay: relayPid, connector: squidConnector.child.pid! } }
        : { target: { name: 'ferry-https-squid', label: 'Ferry https via Squid, users over TLS', baseUrl: '', paths }, reason: squidReason ?? 'not available' },
    ];

    for (const { target, pids, reason } of targets) {
      if (reason) {
        report.targets.push({ name: target.name, label: target.label, available: false, reason, errors: [], loadAverage: round1(os.loadavg()[0]) });
        continue;
      }
      log(`measuring ${target.label}`);
      report.targets.push(await measureTarget(target, plan, script, files.uploadFile, pids, target.name === 'direct' ? undefined : targets[0].target));
    }

    if (squidConnector) {
      log('tcp and https via Squid, alternately');
      const tcpTarget = targets.find((t) => t.target.name === 'ferry-tcp-tls')!.target;
      const squidTarget = targets.find((t) => t.target.name === 'ferry-https-squid')!.target;
      const seconds = Math.max(1, Math.round(plan.wrkSeconds / 2));
      const rounds: { tcp: number; https: number; ratio: number }[] = [];
      for (let round = 0; round < (options.quick ? 1 : 4); round++) {
        const order = round % 2 === 0 ? [tcpTarget, squidTarget] : [squidTarget, tcpTarget];
        const perSec: Record<string, number> = {};
        for (const target of order) perSec[target.name] = (await wrkGet(target, script, 64, seconds)).requestsPerSec;
        const tcp = perSec[tcpTarget.name];
        const https = perSec[squidTarget.name];
        rounds.push({ tcp, https, ratio: Math.round((https / tcp) * 1000) / 1000 });
      }
      const ratios = rounds.map((r) => r.ratio).sort((a, b) => a - b);
      const middle = ratios.length / 2;
      report.squidVsTcp = { seconds, rounds, medianRatio: ratios.length % 2 ? ratios[Math.floor(middle)] : Math.round(((ratios[middle - 1] + ratios[middle]) / 2) * 1000) / 1000 };
    }

    log(`holding ${plan.longPolls} long-polls through one connector`);
    const longPoll = await longPolls({
      url: `https://127.0.0.1:${userPort}`, authority: `slow.localhost:${userPort}`, servername: 'slow.localhost',
      requestPath: `/slow?ms=${plan.holdMs + 60_000}`, count: plan.longPolls, sessions: plan.longPollSessions, maxHoldMs: plan.holdMs,
      connectorPid: tcpConnector.child.pid!, relayPid, backendConnections: () => establishedTo(sample.port),
    });
    report.longPolls = { ...longPoll, backend: 'Node sample backend /slow, its own process' };

    log('PAC decisions per second');
    report.pac = await benchPac({ durationMs: plan.pacMs });
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  return report;
}

async function measureTarget(target: Target, plan: Plan, script: string, uploadFile: string, pids?: Record<string, number>, direct?: Target): Promise<TargetResult> {
  const result: TargetResult = { name: target.name, label: target.label, available: true, overTls: target.baseUrl.startsWith('https:'), errors: [], usage: pids ? {} : undefined, loadAverage: round1(os.loadavg()[0]) };
  const adjacent: NonNullable<TargetResult['adjacentDirect']> | undefined = direct ? (result.adjacentDirect = {}) : undefined;
  const directAgain = async (work: (d: Target) => Promise<void>) => {
    if (direct) await work(direct).catch(() => undefined);
  };
  const phase = async <T>(name: string, work: () => Promise<T>): Promise<T | undefined> => {
    try {
      if (!pids) return await work();
      const { result: value, usage } = await withUsage(pids, work);
      result.usage![name] = usage;
      return value;
    } catch (error) {
      result.errors.push(`${name}: ${(error as Error).message.split('\n')[0]}`);
      return undefined;
    }
  };
  // A short warm-up so connection pools and JIT are in their steady state.
  await wrkGet(target, script, 8, 1).catch(() => undefined);
  result.c1 = await phase('c1', () => wrkGet(target, script, 1, plan.wrkSeconds));
  await directAgain(async (d) => { adjacent!.c64 = (await wrkGet(d, script, 64, Math.max(1, plan.wrkSeconds / 2))).requestsPerSec; });
  result.c64 = await phase('c64', () => wrkGet(target, script, 64, plan.wrkSeconds));
  result.newConnections = await phase('newConnections', () => wrkGet(target, script, 8, Math.max(1, plan.wrkSeconds / 2), { newConnectionEach: true }));
  // Browsers speak HTTP/2 to a TLS listener that offers it: many streams on few connections.
  if (result.overTls && existsSync(H2LOAD)) result.http2 = await phase('http2', () => h2loadGet(target, 8, 8, Math.max(1, plan.wrkSeconds / 2)));
  const cpuPer = (phaseName: 'c64' | 'newConnections' | 'http2') => {
    const usage = result.usage?.[phaseName];
    const requests = result[phaseName]?.requests;
    if (!usage || !requests) return undefined;
    const per = (u: Usage | undefined) => (u ? Math.round((u.cpuSeconds * 1e6) / requests) / 1000 : Number.NaN);
    return { relay: per(usage.relay), connector: per(usage.connector) };
  };
  result.cpuMsPerRequest = cpuPer('c64');
  result.cpuMsPerNewConnection = cpuPer('newConnections');
  result.cpuMsPerHttp2Request = cpuPer('http2');
  for (const key of ['c1', 'c64', 'newConnections', 'http2'] as const) {
    if (result[key]?.errors) result.errors.push(`${key}: ${result[key]!.errors} failed requests (${key === 'http2' ? 'h2load' : 'wrk'})`);
  }
  // One untimed 100 MB first: the first download of a run read 800 MB/s direct, the next ones 2,000
  // to 3,400 (page cache and nginx warming up), which flattered every ratio against the first.
  await curlDownload(target, target.paths.download).catch(() => undefined);
  // Single 100 MB transfers moved by up to 2x between runs on this shared machine, so each direction
  // is measured in rounds (direct, then this path), and the row gives the medians.
  const bulk = async (name: 'download' | 'upload', transfer: (t: Target) => Promise<TransferResult>): Promise<TransferResult | undefined> => {
    const directs: number[] = [];
    const transfers: TransferResult[] = [];
    const cpu: { relay: number[]; connector: number[] } = { relay: [], connector: [] };
    for (let round = 0; round < plan.bulkRounds; round++) {
      await directAgain(async (d) => { directs.push((await transfer(d)).mbPerSec); });
      const value = await phase(name, () => transfer(target));
      if (!value) continue;
      if (value.status !== 200 || value.bytes !== plan.bulkBytes) result.errors.push(`${name}: status ${value.status}, ${value.bytes} of ${plan.bulkBytes} bytes`);
      transfers.push(value);
      const usage = result.usage?.[name];
      for (const side of ['relay', 'connector'] as const) {
        if (usage?.[side]) cpu[side].push((usage[side].cpuSeconds * 1000 * 100 * 2 ** 20) / value.bytes);
      }
    }
    if (adjacent && directs.length) adjacent[name === 'download' ? 'downloadMbPerSec' : 'uploadMbPerSec'] = Math.round(median(directs));
    if (cpu.relay.length && cpu.connector.length) {
      (result.cpuMsPer100Mb ??= {})[name] = { relay: Math.round(median(cpu.relay)), connector: Math.round(median(cpu.connector)) };
    }
    return transfers.sort((a, b) => a.mbPerSec - b.mbPerSec)[Math.floor(transfers.length / 2)];
  };
  result.download = await bulk('download', (t) => curlDownload(t, t.paths.download));
  result.upload = await bulk('upload', (t) => curlUpload(t, t.paths.upload, uploadFile));
  const ttfb = await phase('ttfb', () => curlTtfb(target, target.paths.small, plan.ttfbSamples));
  result.ttfbMs = ttfb ? round1(ttfb.medianMs * 100) / 100 : undefined;
  result.ttfbAfterHandshakeMs = ttfb ? round1(ttfb.afterHandshakeMs * 100) / 100 : undefined;
  return result;
}

// ---- output ---------------------------------------------------------------------------------

function ratio(value: number | undefined, base: number | undefined): string {
  if (value === undefined || base === undefined || !base || Number.isNaN(value)) return '';
  return ` (${(value / base).toFixed(2)}×)`;
}

function cpuPerBulk(t: TargetResult): string {
  const { download, upload } = t.cpuMsPer100Mb ?? {};
  const pair = (p?: { relay: number; connector: number }) => (p ? `${p.relay} / ${p.connector}` : '–');
  return download || upload ? `${pair(download)}; ${pair(upload)}` : '';
}

function cpuPair(pair: { relay: number; connector: number } | undefined): string {
  return pair ? `${pair.relay.toFixed(3)} / ${pair.connector.toFixed(3)}` : '';
}

function fmt(value: number | undefined, digits = 0): string {
  return value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits);
}

export function markdownTable(report: BenchReport): string {
  const direct = report.targets.find((t) => t.name === 'direct');
  const lines = [
    `Direct = ${report.direct}. ${report.machine.cpus} CPU (${report.machine.cpuModel}), Node ${report.machine.node}${report.machine.nginx ? `, ${report.machine.nginx}` : ''}${report.quick ? ' — QUICK run, figures not meaningful' : ''}.`,
    '',
    '| path | GET/s c=1 | p50 c=1 ms | GET/s c=64 | p50 / p99 c=64 ms | GET/s c=8, a new connection each | download MB/s | upload MB/s | TTFB fresh conn ms | after handshake ms | relay / connector CPU % (c=64) | relay / connector CPU ms per GET | … per GET on a new connection | relay / connector CPU ms per 100 MB, down; up | relay / connector peak RSS MB | load avg |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const t of report.targets) {
    if (!t.available) {
      lines.push(`| ${t.label} | not available: ${t.reason ?? ''} |||||||||||||| |`);
      continue;
    }
    const usage = t.usage?.c64;
    const peak = t.usage ? Object.values(t.usage).reduce((acc, u) => ({ relay: Math.max(acc.relay, u.relay?.peakRssMb ?? 0), connector: Math.max(acc.connector, u.connector?.peakRssMb ?? 0) }), { relay: 0, connector: 0 }) : undefined;
    lines.push(`| ${t.label} | ${fmt(t.c1?.requestsPerSec)}${ratio(t.c1?.requestsPerSec, direct?.c1?.requestsPerSec)} | ${fmt(t.c1?.p50Ms, 2)}${ratio(t.c1?.p50Ms, direct?.c1?.p50Ms)} | `
      + `${fmt(t.c64?.requestsPerSec)}${ratio(t.c64?.requestsPerSec, direct?.c64?.requestsPerSec)} | ${fmt(t.c64?.p50Ms, 2)} / ${fmt(t.c64?.p99Ms, 2)} | `
      + `${fmt(t.newConnections?.requestsPerSec)}${ratio(t.newConnections?.requestsPerSec, direct?.newConnections?.requestsPerSec)} | `
      + `${fmt(t.download?.mbPerSec)}${ratio(t.download?.mbPerSec, direct?.download?.mbPerSec)} | ${fmt(t.upload?.mbPerSec)}${ratio(t.upload?.mbPerSec, direct?.upload?.mbPerSec)} | `
      + `${fmt(t.ttfbMs, 2)}${ratio(t.ttfbMs, direct?.ttfbMs)} | ${fmt(t.ttfbAfterHandshakeMs, 2)}${ratio(t.ttfbAfterHandshakeMs, direct?.ttfbAfterHandshakeMs)} | ${usage ? `${usage.relay?.cpuPercent} / ${usage.connector?.cpuPercent}` : ''} | `
      + `${cpuPair(t.cpuMsPerRequest)} | ${cpuPair(t.cpuMsPerNewConnection)} | ${cpuPerBulk(t)} | ${peak ? `${peak.relay} / ${peak.connector}` : ''} | ${t.loadAverage} |`);
  }
  lines.push('', 'The same three figures against direct measured again right before each (c=64 for half as long):', '',
    '| path | GET/s c=64 (direct right before) | download MB/s (direct right before) | upload MB/s (direct right before) |', '|---|---|---|---|');
  for (const t of report.targets) {
    const a = t.adjacentDirect;
    if (!t.available || !a) continue;
    lines.push(`| ${t.label} | ${fmt(t.c64?.requestsPerSec)} (${fmt(a.c64)})${ratio(t.c64?.requestsPerSec, a.c64)} | ${fmt(t.download?.mbPerSec)} (${fmt(a.downloadMbPerSec)})${ratio(t.download?.mbPerSec, a.downloadMbPerSec)} | `
      + `${fmt(t.upload?.mbPerSec)} (${fmt(a.uploadMbPerSec)})${ratio(t.upload?.mbPerSec, a.uploadMbPerSec)} |`);
  }
  const directTls = report.targets.find((t) => t.name === DIRECT_TLS && t.available);
  if (directTls) {
    lines.push('', 'Rows with users over TLS against nginx over TLS (the same server and files, measured in the same run; '
      + `HTTP/2: h2load, 8 connections × 8 streams${directTls.http2 ? `, nginx over TLS ${fmt(directTls.http2.requestsPerSec)} GET/s` : ', h2load is not installed'}):`, '',
      '| path | GET/s c=64 | HTTP/2 GET/s, 8 × 8 streams | relay / connector CPU ms per HTTP/2 GET | download MB/s | upload MB/s |', '|---|---|---|---|---|---|');
    for (const t of report.targets) {
      if (!t.available || !t.overTls || t.name === DIRECT_TLS) continue;
      lines.push(`| ${t.label} | ${fmt(t.c64?.requestsPerSec)}${ratio(t.c64?.requestsPerSec, directTls.c64?.requestsPerSec)} | `
        + `${fmt(t.http2?.requestsPerSec)}${ratio(t.http2?.requestsPerSec, directTls.http2?.requestsPerSec)} | ${cpuPair(t.cpuMsPerHttp2Request)} | `
        + `${fmt(t.download?.mbPerSec)}${ratio(t.download?.mbPerSec, directTls.download?.mbPerSec)} | ${fmt(t.upload?.mbPerSec)}${ratio(t.upload?.mbPerSec, directTls.upload?.mbPerSec)} |`);
    }
  }
  const twoHops = report.targets.find((t) => t.name === NGINX_TWO_HOPS && t.available);
  if (twoHops) {
    lines.push('', 'Ferry\'s rows with users over TLS against the same shape in C (two nginx hops, mutual TLS between; same run):', '',
      '| path | GET/s c=1 | GET/s c=64 | HTTP/2 GET/s, 8 × 8 streams | GET/s c=8, a new connection each | download MB/s | upload MB/s | after handshake ms |', '|---|---|---|---|---|---|---|---|');
    for (const t of report.targets) {
      if (!t.available || !t.overTls || !t.name.startsWith('ferry-')) continue;
      lines.push(`| ${t.label} | ${fmt(t.c1?.requestsPerSec)}${ratio(t.c1?.requestsPerSec, twoHops.c1?.requestsPerSec)} | ${fmt(t.c64?.requestsPerSec)}${ratio(t.c64?.requestsPerSec, twoHops.c64?.requestsPerSec)} | `
        + `${fmt(t.http2?.requestsPerSec)}${ratio(t.http2?.requestsPerSec, twoHops.http2?.requestsPerSec)} | `
        + `${fmt(t.newConnections?.requestsPerSec)}${ratio(t.newConnections?.requestsPerSec, twoHops.newConnections?.requestsPerSec)} | `
        + `${fmt(t.download?.mbPerSec)}${ratio(t.download?.mbPerSec, twoHops.download?.mbPerSec)} | ${fmt(t.upload?.mbPerSec)}${ratio(t.upload?.mbPerSec, twoHops.upload?.mbPerSec)} | `
        + `${fmt(t.ttfbAfterHandshakeMs, 2)}${ratio(t.ttfbAfterHandshakeMs, twoHops.ttfbAfterHandshakeMs)} |`);
    }
  }
  const errors = report.targets.flatMap((t) => t.errors.map((e) => `- ${t.label}: ${e}`));
  if (errors.length) lines.push('', 'Errors:', ...errors);
  if (report.longPolls) {
    const lp = report.longPolls;
    lines.push('', `Long-polls: ${lp.requested} concurrent open requests through one connector (${lp.backend}), held ${lp.holdSeconds} s: `
      + `connector RSS ${lp.connectorRssBeforeMb} → ${lp.connectorRssPeakMb} MB (+${lp.connectorRssGrowthMb} MB), relay +${lp.relayRssGrowthMb} MB, `
      + `${lp.errors} errors${lp.errors ? ` (${Object.entries(lp.errorKinds).map(([k, n]) => `${n}× ${k}`).join(', ')})` : ''}, ${lp.backendConnections} backend connections open at once.`);
  }
  if (report.squidVsTcp) {
    const { seconds, rounds, medianRatio } = report.squidVsTcp;
    lines.push('', `https via Squid against tcp, c=64 over TLS users, alternately (${rounds.length} rounds of ${seconds} s each): `
      + `${rounds.map((r) => `${fmt(r.https)} / ${fmt(r.tcp)} = ${r.ratio.toFixed(2)}×`).join(', ')}; median **${medianRatio.toFixed(2)}×**.`);
  }
  if (report.pac) lines.push('', `PAC decisions per second: cached ${report.pac.cachedPerSec}, uncached ${report.pac.uncachedPerSec}.`);
  for (const note of report.notes) lines.push('', note);
  return lines.join('\n');
}

// ---- main ------------------------------------------------------------------------------------

if (import.meta.url === `file://${process.argv[1]}`) {
  const options = parseArgs(process.argv.slice(2));
  // Exit through process.exit so the harness's exit hook kills every child we started.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const started = Date.now();
  const report = await runBench(options);
  mkdirSync(options.outDir, { recursive: true });
  const stamp = report.date.replace(/[:.]/g, '-');
  const file = path.join(options.outDir, `bench-${stamp}${report.quick ? '-quick' : ''}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(options.outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${markdownTable(report)}\n\nJSON: ${file} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
}
