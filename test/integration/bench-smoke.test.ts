// The benchmarks still run: `node dist/bench/run.js --quick` end to end (nginx, relay, connectors,
// Squid when present, wrk, curl, long-polls, PAC) and writes its JSON, and `bench/framing.js`
// (the tunnel's multiplexer against raw TLS) on a few MiB. No timed assertion: the figures depend
// on the machine; only that every path was measured or said why not.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchReport } from '../../bench/run.js';

const RUN = fileURLToPath(new URL('../../bench/run.js', import.meta.url));
const FRAMING = fileURLToPath(new URL('../../bench/framing.js', import.meta.url));

describe('npm run bench --quick', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-smoke-'));
  after(() => rmSync(out, { recursive: true, force: true }));

  it('runs within 60 s and writes a JSON report', { timeout: 90_000, skip: existsSync('/usr/bin/wrk') && existsSync('/usr/bin/curl') ? false : 'wrk and curl are required' }, async () => {
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [RUN, '--quick', '--out', out], { timeout: 85_000, maxBuffer: 8 * 1024 * 1024 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      });
    });
    assert.equal(run.code, 0, run.stderr.slice(-3000));
    assert.match(run.stdout, /\| path \| GET\/s c=1 \|/);
    const files = readdirSync(out).filter((name) => name.startsWith('bench-') && name.endsWith('.json'));
    assert.equal(files.length, 1);
    const report = JSON.parse(readFileSync(path.join(out, files[0]), 'utf8')) as BenchReport;
    assert.equal(report.quick, true);
    const direct = report.targets.find((t) => t.name === 'direct');
    assert.ok(direct?.available && direct.c64 && direct.c64.requests > 0, 'direct was measured');
    for (const name of ['ferry-per-request-tls', 'ferry-tcp-tls', 'ferry-tcp-plain', 'ferry-passthrough-tls', 'ferry-passthrough-plain']) {
      const target = report.targets.find((t) => t.name === name);
      assert.ok(target?.available, `${name} was measured`);
      assert.ok((target.c1?.requests ?? 0) > 0, `${name} answered small GETs`);
      assert.ok(target.usage?.c64?.relay && target.usage.c64.connector, `${name} has relay and connector usage`);
      assert.ok(target.cpuMsPer100Mb?.download && target.cpuMsPer100Mb.upload, `${name} has CPU per 100 MB both ways`);
      assert.ok((target.newConnections?.requests ?? 0) > 0 && target.cpuMsPerNewConnection, `${name} answered GETs on new connections, with CPU per connection`);
      assert.equal(target.newConnections?.errors, 0, `${name}: no failed request on new connections`);
      if (target.overTls && existsSync('/usr/bin/h2load')) {
        assert.ok((target.http2?.requests ?? 0) > 0 && target.cpuMsPerHttp2Request, `${name} answered HTTP/2 users (h2load), with CPU per request`);
        assert.equal(target.http2?.errors, 0, `${name}: no failed HTTP/2 request`);
      }
    }
    // The same shape in C (nginx two hops over mutual TLS) runs wherever nginx does.
    const twoHops = report.targets.find((t) => t.name === 'nginx-two-hops-tls');
    assert.ok(twoHops && (twoHops.available ? (twoHops.download?.bytes ?? 0) > 0 && twoHops.upload?.status === 200 : twoHops.reason), 'the two-hop nginx path was measured or says why not');
    const squid = report.targets.find((t) => t.name === 'ferry-https-squid');
    assert.ok(squid && (squid.available || squid.reason), 'the Squid path was measured or says why not');
    assert.ok(report.longPolls && report.longPolls.requested > 0);
    assert.ok(report.pac && report.pac.cachedPerSec > 0);
  });

  it('the framing comparison (raw TLS, node:http2, lean) runs and prints a row for each', { timeout: 90_000 }, async () => {
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [FRAMING, '--mib', '8', '--rounds', '1'], { timeout: 85_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      });
    });
    assert.equal(run.code, 0, run.stderr.slice(-3000));
    for (const row of ['raw TLS', 'node:http2', 'lean']) assert.match(run.stdout, new RegExp(`^\\| ${row} \\| \\d+ `, 'm'), `a row for ${row}`);
  });
});
