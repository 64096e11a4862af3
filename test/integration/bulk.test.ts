// Streaming both ways without buffering whole bodies: 100 MB down to a slow client and 100 MB up,
// with the relay's and the connector's resident memory sampled throughout (real processes).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { FerryStack, rssOf } from '../harness/ferry-stack.js';
import { startSampleBackend, type SampleBackend } from '../../src/demo/sample-backend.js';

const SIZE = Number(process.env.FERRY_BULK_MB ?? 100) * 1024 * 1024;
/**
 * Allowed RSS growth per process. Measured: ~38 MB for the relay and ~33 MB for the connector on a
 * download, the same for 100 MB and 400 MB (FERRY_BULK_MB=400): a plateau set by when V8 collects
 * spent Buffers, not by the body size. Whole-body buffering would grow with the body.
 */
const MAX_GROWTH = 48 * 1024 * 1024;

describe('bulk transfers with bounded memory', () => {
  const stack = new FerryStack();
  let backend: SampleBackend;
  let connectorPid: number;

  before(async () => {
    backend = await startSampleBackend();
    await stack.startRelay();
    await stack.relay.cli(['relay', 'app', 'add', 'app', '--external', `https://app.localhost:${stack.relay.ports.user}`, '--internal', backend.url]);
    const { configFile } = await stack.registerConnector({ name: 'bulk', config: { tunnels: 1 } });
    connectorPid = stack.startConnector(configFile).child.pid!;
    await stack.waitForTunnels(1);
  });

  after(async () => {
    await stack.stop();
    await backend.close();
  });

  /** Runs `transfer` while sampling both processes' RSS; returns the peak growth of each. */
  async function measure(transfer: () => Promise<number>): Promise<{ bytes: number; relay: number; connector: number }> {
    const pids = { relay: stack.relay.child.pid!, connector: connectorPid };
    const base = { relay: rssOf(pids.relay), connector: rssOf(pids.connector) };
    const peak = { ...base };
    const sampler = setInterval(() => {
      peak.relay = Math.max(peak.relay, rssOf(pids.relay));
      peak.connector = Math.max(peak.connector, rssOf(pids.connector));
    }, 50);
    try {
      const bytes = await transfer();
      return { bytes, relay: peak.relay - base.relay, connector: peak.connector - base.connector };
    } finally {
      clearInterval(sampler);
    }
  }

  const requestOptions = (path: string, method = 'GET'): https.RequestOptions => ({
    host: '127.0.0.1', port: stack.relay.ports.user, servername: 'app.localhost', path, method, agent: false,
    ca: readFileSync(stack.relay.caFile), headers: { host: `app.localhost:${stack.relay.ports.user}` },
  });

  it('downloads 100 MB through a slow client', async () => {
    // Warm up so the baseline includes the tunnel's steady-state buffers.
    await new Promise<void>((resolve, reject) => https.get(requestOptions('/bytes?n=1048576'), (res) => res.resume().on('end', resolve)).on('error', reject));
    const result = await measure(() => new Promise((resolve, reject) => {
      https.get(requestOptions(`/bytes?n=${SIZE}`), (res) => {
        let received = 0;
        let sinceBreak = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          sinceBreak += chunk.length;
          if (sinceBreak >= 512 * 1024) {
            // A slow reader: ~25 MB/s. Backpressure must reach the backend instead of filling memory.
            sinceBreak = 0;
            res.pause();
            setTimeout(() => res.resume(), 20);
          }
        });
        res.on('end', () => resolve(received));
        res.on('error', reject);
      }).on('error', reject);
    }));
    assert.equal(result.bytes, SIZE);
    assert.ok(result.relay < MAX_GROWTH, `relay grew ${(result.relay / 2 ** 20).toFixed(1)} MB`);
    assert.ok(result.connector < MAX_GROWTH, `connector grew ${(result.connector / 2 ** 20).toFixed(1)} MB`);
    process.stdout.write(`# download: relay +${(result.relay / 2 ** 20).toFixed(1)} MB, connector +${(result.connector / 2 ** 20).toFixed(1)} MB\n`);
  });

  it('uploads 100 MB', async () => {
    const chunk = Buffer.alloc(256 * 1024, 'u');
    const result = await measure(() => new Promise((resolve, reject) => {
      const req = https.request({ ...requestOptions('/upload', 'POST'), headers: { ...requestOptions('/').headers, 'content-length': SIZE } }, (res) => {
        let text = '';
        res.on('data', (part: Buffer) => { text += part.toString(); });
        res.on('end', () => resolve((JSON.parse(text) as { received: number }).received));
      });
      req.on('error', reject);
      let sent = 0;
      const pump = () => {
        while (sent < SIZE) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    }));
    assert.equal(result.bytes, SIZE);
    assert.ok(result.relay < MAX_GROWTH, `relay grew ${(result.relay / 2 ** 20).toFixed(1)} MB`);
    assert.ok(result.connector < MAX_GROWTH, `connector grew ${(result.connector / 2 ** 20).toFixed(1)} MB`);
    process.stdout.write(`# upload: relay +${(result.relay / 2 ** 20).toFixed(1)} MB, connector +${(result.connector / 2 ** 20).toFixed(1)} MB\n`);
  });
});
