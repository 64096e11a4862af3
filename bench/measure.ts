// The measuring tools of the benchmark: wrk for request rates and latency, curl for bulk transfers
// and time to first byte on a fresh connection, /proc for CPU and RSS of the Ferry processes, and a
// Node HTTP/2 client that holds many long-polls open. Every tool is bounded in time.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';

/** One thing to measure: a base URL and the Host header that selects the app behind it. */
export interface Target {
  name: string;
  label: string;
  /** e.g. http://127.0.0.1:8080 or https://127.0.0.1:8443 */
  baseUrl: string;
  /** Host header (and TLS server name) when it differs from the URL's host. */
  host?: string;
  paths: { small: string; download: string; upload: string };
}

export interface WrkResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
}

const WRK_SCRIPT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"errors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
`;

export function writeWrkScript(dir: string): string {
  const file = path.join(dir, 'bench.lua');
  writeFileSync(file, WRK_SCRIPT);
  return file;
}

function run(command: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ stdout, stderr, code: error ? (typeof error.code === 'number' ? error.code : -1) : 0 });
    });
  });
}

/**
 * Small GETs with wrk at a given concurrency for durationS seconds. Non-2xx answers count as errors.
 * `newConnectionEach`: every request asks `Connection: close`, so each one opens a connection (and,
 * over TLS, a handshake: wrk resumes about half of its sessions).
 */
export async function wrkGet(target: Target, script: string, connections: number, durationS: number, options: { newConnectionEach?: boolean } = {}): Promise<WrkResult> {
  const threads = Math.min(2, connections);
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${durationS}s`, '--timeout', '5s', '-s', script];
  if (target.host) args.push('-H', `Host: ${target.host}`);
  if (options.newConnectionEach) args.push('-H', 'Connection: close');
  args.push(`${target.baseUrl}${target.paths.small}`);
  const out = await run('wrk', args, (durationS + 20) * 1000);
  const line = /BENCH (\{.*\})/.exec(out.stdout)?.[1];
  if (!line) throw new Error(`wrk produced no result (exit ${out.code}): ${out.stderr || out.stdout}`);
  const parsed = JSON.parse(line) as { requests: number; durationUs: number; p50Us: number; p99Us: number; errors: number };
  return {
    requestsPerSec: Math.round(parsed.requests / (parsed.durationUs / 1e6)),
    p50Ms: parsed.p50Us / 1000,
    p99Ms: parsed.p99Us / 1000,
    requests: parsed.requests,
    errors: parsed.errors,
  };
}

export interface H2loadResult {
  requestsPerSec: number;
  requests: number;
  /** Requests that failed, errored, timed out or were not answered 2xx. */
  errors: number;
}

/** Installed (Debian's nghttp2-client): HTTP/2 request rates are measured only then. */
export const H2LOAD = '/usr/bin/h2load';

/**
 * Small GETs over HTTP/2 with h2load (as browsers send them: TLS with ALPN h2, many streams on each
 * connection): `connections` connections with `streams` concurrent streams each, for durationS s.
 */
export async function h2loadGet(target: Target, connections: number, streams: number, durationS: number): Promise<H2loadResult> {
  const args = ['-D', String(durationS), '-c', String(connections), '-m', String(streams), '-t', '1'];
  if (target.host) {
    // The app's name in the URL (so in SNI and :authority, as a browser sends them), the loopback
    // port to connect to.
    const url = new URL(target.baseUrl);
    args.push(`--connect-to=${url.hostname}:${url.port}`, `https://${target.host}${target.paths.small}`);
  } else {
    args.push(`${target.baseUrl}${target.paths.small}`);
  }
  const out = await run(H2LOAD, args, (durationS + 20) * 1000);
  const rate = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(out.stdout);
  const counts = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out.stdout);
  const statuses = /status codes: \d+ 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out.stdout);
  if (!rate || !counts || !statuses) throw new Error(`h2load produced no result (exit ${out.code}): ${(out.stderr || out.stdout).slice(-500)}`);
  return {
    requestsPerSec: Math.round(Number(rate[2])),
    requests: Number(counts[2]),
    errors: Number(counts[4]) + Number(counts[5]) + Number(counts[6]) + Number(statuses[1]) + Number(statuses[2]),
  };
}

function curlArgs(target: Target): string[] {
  const url = new URL(target.baseUrl);
  // HTTP/1.1 like wrk (curl would pick HTTP/2 by ALPN on the TLS user port).
  const args = ['-s', '-k', '--http1.1', '--max-time', '60', '-o', '/dev/null'];
  if (target.host) {
    // --connect-to keeps the URL's name (SNI and Host) while connecting to the loopback port.
    const name = target.host.replace(/:\d+$/, '');
    args.push('--connect-to', `${name}:${url.port}:${url.hostname}:${url.port}`, '-H', `Host: ${target.host}`);
  }
  return args;
}

function curlUrl(target: Target, requestPath: string): string {
  const url = new URL(target.baseUrl);
  const name = target.host ? target.host.replace(/:\d+$/, '') : url.hostname;
  return `${url.protocol}//${name}:${url.port}${requestPath}`;
}

export interface TransferResult {
  mbPerSec: number;
  bytes: number;
  seconds: number;
  status: number;
}

/** One download over a fresh connection: MB/s (1 MB = 2^20 bytes) from curl's own timing. */
export async function curlDownload(target: Target, requestPath: string): Promise<TransferResult> {
  const out = await run('curl', [...curlArgs(target), '-w', '%{http_code} %{size_download} %{time_total}', curlUrl(target, requestPath)], 70_000);
  const [status, bytes, seconds] = out.stdout.trim().split(' ').map(Number);
  return { status, bytes, seconds, mbPerSec: bytes / 2 ** 20 / seconds };
}

/** One upload of `file` (streamed from disk, no Expect: 100-continue) over a fresh connection. */
export async function curlUpload(target: Target, requestPath: string, file: string): Promise<TransferResult> {
  const out = await run('curl', [...curlArgs(target), '-H', 'Expect:', '-H', 'content-type: application/octet-stream', '--data-binary', `@${file}`,
    '-w', '%{http_code} %{size_upload} %{time_total}', curlUrl(target, requestPath)], 70_000);
  const [status, bytes, seconds] = out.stdout.trim().split(' ').map(Number);
  return { status, bytes, seconds, mbPerSec: bytes / 2 ** 20 / seconds };
}

/**
 * Median time to first byte (ms) over `count` fresh connections (TCP + TLS handshake included), and
 * the median of the part after the handshake (curl's pretransfer to starttransfer): curl's own TLS
 * setup takes ~4.5 ms here even against `openssl s_server`, which the first figure carries.
 */
export async function curlTtfb(target: Target, requestPath: string, count: number): Promise<{ medianMs: number; afterHandshakeMs: number; samples: number[] }> {
  const samples: number[] = [];
  const afterHandshake: number[] = [];
  for (let i = 0; i < count; i++) {
    const out = await run('curl', [...curlArgs(target), '-w', '%{http_code} %{time_starttransfer} %{time_pretransfer}', curlUrl(target, requestPath)], 15_000);
    const [status, seconds, pretransfer] = out.stdout.trim().split(' ').map(Number);
    if (status !== 200) continue;
    samples.push(seconds * 1000);
    afterHandshake.push((seconds - pretransfer) * 1000);
  }
  return { medianMs: median(samples), afterHandshakeMs: median(afterHandshake), samples };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : Number.NaN;
}

/** CPU time (user + system) of a process, in seconds, from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

export interface Usage {
  cpuSeconds: number;
  /** % of one core over the phase. */
  cpuPercent: number;
  peakRssMb: number;
}

/** Samples CPU and peak RSS of some processes while `work` runs. CPU is in % of one core. */
export async function withUsage<T>(pids: Record<string, number>, work: () => Promise<T>): Promise<{ result: T; usage: Record<string, Usage> }> {
  const start = performance.now();
  const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const peak = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, rssMb(pid)]));
  const sampler = setInterval(() => {
    for (const [k, pid] of Object.entries(pids)) peak[k] = Math.max(peak[k], rssMb(pid));
  }, 100);
  try {
    const result = await work();
    const seconds = (performance.now() - start) / 1000;
    const usage: Record<string, Usage> = {};
    for (const [k, pid] of Object.entries(pids)) {
      const used = cpuSeconds(pid) - cpu0[k];
      usage[k] = { cpuSeconds: round1(used * 100) / 100, cpuPercent: Math.round((used / seconds) * 100), peakRssMb: round1(peak[k]) };
    }
    return { result, usage };
  } finally {
    clearInterval(sampler);
  }
}

export interface LongPollResult {
  requested: number;
  /** Streams that failed or were answered before we closed them (a long-poll should still be open). */
  errors: number;
  /** What the failed ones got: `status 502 reset`, `error ERR_HTTP2_STREAM_ERROR`… with counts. */
  errorKinds: Record<string, number>;
  connectorRssBeforeMb: number;
  connectorRssPeakMb: number;
  connectorRssGrowthMb: number;
  relayRssGrowthMb: number;
  /** Most requests open at the backend at once (the hold ends 1 s after all of them arrived). */
  backendConnections: number;
  holdSeconds: number;
}

/**
 * Opens `count` long-polls (`/slow?ms=` longer than the hold) over a few HTTP/2 connections to the
 * relay, holds them until all reached the backend, samples RSS, then cancels them all.
 */
export async function longPolls(options: {
  url: string; authority: string; servername: string; requestPath: string; count: number; sessions: number; maxHoldMs: number;
  connectorPid: number; relayPid: number; backendConnections(): Promise<number>;
}): Promise<LongPollResult> {
  const before = { connector: rssMb(options.connectorPid), relay: rssMb(options.relayPid) };
  const sessions: http2.ClientHttp2Session[] = [];
  for (let i = 0; i < options.sessions; i++) {
    const session = http2.connect(options.url, { servername: options.servername, rejectUnauthorized: false, peerMaxConcurrentStreams: options.count });
    session.on('error', () => undefined);
    sessions.push(session);
  }
  await Promise.all(sessions.map((s) => new Promise<void>((resolve, reject) => {
    s.once('remoteSettings', () => resolve());
    s.once('error', reject);
  })));
  let errors = 0;
  const errorKinds: Record<string, number> = {};
  const fail = (kind: string) => {
    if (closing) return;
    errors++;
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  };
  let closing = false;
  const streams: http2.ClientHttp2Stream[] = [];
  for (let i = 0; i < options.count; i++) {
    const stream = sessions[i % sessions.length].request({ ':path': options.requestPath, ':authority': options.authority });
    stream.on('response', (headers) => fail(`status ${headers[':status']}`));
    stream.on('error', (error: NodeJS.ErrnoException) => fail(`error ${error.code ?? error.message}`));
    stream.resume();
    streams.push(stream);
    // Yield now and then so the writes go out while we create the rest.
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  // Hold until every request reached the backend (or maxHoldMs), then 1 s more at the plateau.
  const started = Date.now();
  let peakConnector = rssMb(options.connectorPid);
  let peakRelay = rssMb(options.relayPid);
  let backendConnections = 0;
  let allOpenAt: number | undefined;
  while (Date.now() - started < options.maxHoldMs && (allOpenAt === undefined || Date.now() - allOpenAt < 1000)) {
    await new Promise((r) => setTimeout(r, 250));
    peakConnector = Math.max(peakConnector, rssMb(options.connectorPid));
    peakRelay = Math.max(peakRelay, rssMb(options.relayPid));
    backendConnections = Math.max(backendConnections, await options.backendConnections());
    if (allOpenAt === undefined && backendConnections >= options.count) allOpenAt = Date.now();
  }
  const holdMs = Date.now() - started;
  closing = true;
  for (const stream of streams) stream.close(http2.constants.NGHTTP2_CANCEL);
  for (const session of sessions) session.destroy();
  return {
    requested: options.count,
    errors,
    errorKinds,
    connectorRssBeforeMb: round1(before.connector),
    connectorRssPeakMb: round1(peakConnector),
    connectorRssGrowthMb: round1(peakConnector - before.connector),
    relayRssGrowthMb: round1(peakRelay - before.relay),
    backendConnections,
    holdSeconds: round1(holdMs / 1000),
  };
}

/** Established TCP connections whose local port is `port` (the server side of a listener). */
export async function establishedTo(port: number): Promise<number> {
  const out = await run('ss', ['-tnH', 'state', 'established', `( sport = :${port} )`], 5_000);
  return out.stdout.split('\n').filter((line) => line.trim()).length;
}

/** Established TCP connections owned by process `pid` to remote port `port`. */
export async function connectionsOf(pid: number, port: number): Promise<number> {
  const out = await run('ss', ['-tnpH', 'state', 'established', `( dport = :${port} )`], 5_000);
  return out.stdout.split('\n').filter((line) => line.includes(`pid=${pid},`)).length;
}

export function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
