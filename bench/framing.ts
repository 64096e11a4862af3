// How much of the tunnel's CPU per byte is its multiplexer (issue 7: "measure a leaner multiplexer
// with real per-stream flow control before changing the design"). One bulk stream between two Node
// processes over TLS on loopback, carried three ways, alternately, in one run:
//   - raw TLS: the bytes alone, no multiplexer (the floor);
//   - node:http2: Ferry's tunnel, with the tunnel's windows (4 MiB per stream, 16 MiB per session);
//   - lean: a length-prefixed multiplexer written for this comparison (9-byte frame heads, a frame
//     per 64 KiB chunk instead of HTTP/2's 16 KiB DATA frames, per-stream credit of 4 MiB returned
//     per MiB consumed, each stream a Readable as an HTTP/2 stream is). It is a measuring stick,
//     not product code: no priorities, no resets, no GOAWAY, no header compression.
// The sender writes 64 KiB chunks (what a read from an app socket gives) with backpressure; the
// receiver, a child process, consumes them through 'data' events and reports its own CPU time.
//
//   node dist/bench/framing.js [--mib 100] [--rounds 3]
import { fork, type ChildProcess } from 'node:child_process';
import http2 from 'node:http2';
import tls from 'node:tls';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { createCa, issueServerCert } from '../src/shared/pki.js';
import { TUNNEL_SETTINGS } from '../src/connector/session.js';
import { TUNNEL_WINDOW } from '../src/relay/tunnel-acceptor.js';

const MODES = ['raw TLS', 'node:http2', 'lean'] as const;
type Mode = (typeof MODES)[number];
const CHUNK = 64 * 1024;
const FRAME_HEAD = 9;
const FRAME_DATA = 0;
const FRAME_CREDIT = 1;
const LEAN_WINDOW = TUNNEL_WINDOW.stream;
const CREDIT_EVERY = 1 << 20;

interface Setup { certPem: string; keyPem: string; totalBytes: number }
type ToReceiver = { kind: 'setup'; setup: Setup } | { kind: 'arm'; mode: Mode };
type ToSender = { kind: 'ports'; ports: Record<Mode, number> } | { kind: 'armed' } | { kind: 'done'; mode: Mode; cpuMs: number };

function frameHead(type: number, streamId: number, length: number): Buffer {
  const head = Buffer.allocUnsafe(FRAME_HEAD);
  head.writeUInt32BE(length, 0);
  head.writeUInt8(type, 4);
  head.writeUInt32BE(streamId, 5);
  return head;
}

/** Reads lean frames off a byte stream, whatever the chunk boundaries. */
class LeanReader {
  private head = Buffer.alloc(FRAME_HEAD);
  private headFill = 0;
  private remaining = 0;
  private current = { type: 0, streamId: 0 };
  private small: Buffer[] = [];
  constructor(private readonly onData: (streamId: number, bytes: Buffer) => void, private readonly onCredit: (streamId: number, bytes: number) => void) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - offset);
        const piece = chunk.subarray(offset, offset + take);
        offset += take;
        this.remaining -= take;
        if (this.current.type === FRAME_DATA) this.onData(this.current.streamId, piece);
        else {
          this.small.push(piece);
          if (this.remaining === 0) this.onCredit(this.current.streamId, Buffer.concat(this.small).readUInt32BE(0));
        }
        continue;
      }
      const take = Math.min(FRAME_HEAD - this.headFill, chunk.length - offset);
      chunk.copy(this.head, this.headFill, offset, offset + take);
      this.headFill += take;
      offset += take;
      if (this.headFill < FRAME_HEAD) return;
      this.headFill = 0;
      this.remaining = this.head.readUInt32BE(0);
      this.current = { type: this.head.readUInt8(4), streamId: this.head.readUInt32BE(5) };
      this.small = [];
    }
  }
}

// --- the receiver (child process) ---

function runReceiver(): void {
  let totalBytes = 0;
  let armed: { mode: Mode; received: number; cpu: NodeJS.CpuUsage } | undefined;
  const count = (mode: Mode, bytes: number) => {
    if (!armed || armed.mode !== mode) return;
    armed.received += bytes;
    if (armed.received < totalBytes) return;
    const cpu = process.cpuUsage(armed.cpu);
    armed = undefined;
    send({ kind: 'done', mode, cpuMs: (cpu.user + cpu.system) / 1000 });
  };
  const send = (message: ToSender) => process.send!(message);
  // The sender went away (finished, or killed): nothing else would end this process's servers.
  process.once('disconnect', () => process.exit(0));
  process.on('message', async (message: ToReceiver) => {
    if (message.kind === 'arm') {
      armed = { mode: message.mode, received: 0, cpu: process.cpuUsage() };
      return send({ kind: 'armed' });
    }
    const { certPem, keyPem } = message.setup;
    totalBytes = message.setup.totalBytes;
    const raw = tls.createServer({ cert: certPem, key: keyPem }, (socket) => {
      socket.on('data', (chunk: Buffer) => count('raw TLS', chunk.length));
    });
    const h2 = http2.createSecureServer({ cert: certPem, key: keyPem, settings: TUNNEL_SETTINGS });
    h2.on('session', (session) => session.once('connect', () => session.setLocalWindowSize(TUNNEL_WINDOW.session)));
    h2.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.on('data', (chunk: Buffer) => count('node:http2', chunk.length));
      stream.on('end', () => stream.end());
    });
    const lean = tls.createServer({ cert: certPem, key: keyPem }, (socket) => {
      const streams = new Map<number, { readable: Readable; consumed: number }>();
      const reader = new LeanReader((streamId, bytes) => {
        let entry = streams.get(streamId);
        if (!entry) {
          const readable = new Readable({ read() {} });
          const created = { readable, consumed: 0 };
          entry = created;
          streams.set(streamId, created);
          readable.on('data', (chunk: Buffer) => {
            count('lean', chunk.length);
            created.consumed += chunk.length;
            if (created.consumed < CREDIT_EVERY) return;
            const credit = Buffer.allocUnsafe(4);
            credit.writeUInt32BE(created.consumed, 0);
            socket.cork();
            socket.write(frameHead(FRAME_CREDIT, streamId, 4));
            socket.write(credit);
            socket.uncork();
            created.consumed = 0;
          });
        }
        entry.readable.push(bytes);
      }, () => {});
      socket.on('data', (chunk: Buffer) => reader.push(chunk));
    });
    const ports = {} as Record<Mode, number>;
    for (const [mode, server] of [['raw TLS', raw], ['node:http2', h2], ['lean', lean]] as const) {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      ports[mode] = (server.address() as { port: number }).port;
    }
    send({ kind: 'ports', ports });
  });
}

// --- the sender (this process) ---

interface Sink { write(chunk: Buffer): boolean | Promise<void>; drained(): Promise<void> }

async function openSinks(ports: Record<Mode, number>, caPem: string): Promise<{ sinks: Record<Mode, () => Sink>; close: () => void }> {
  const connect = async (port: number) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem });
    await once(socket, 'secureConnect');
    socket.setNoDelay(true);
    return socket;
  };
  const rawSocket = await connect(ports['raw TLS']);
  const session = http2.connect(`https://localhost:${ports['node:http2']}`, {
    ca: caPem, settings: { initialWindowSize: TUNNEL_WINDOW.stream },
    createConnection: () => tls.connect({ host: '127.0.0.1', port: ports['node:http2'], servername: 'localhost', ca: caPem, ALPNProtocols: ['h2'] }),
  });
  await once(session, 'connect');
  const leanSocket = await connect(ports.lean);
  const credits = new Map<number, { credit: number; wake?: () => void }>();
  const leanReader = new LeanReader(() => {}, (streamId, bytes) => {
    const entry = credits.get(streamId);
    if (!entry) return;
    entry.credit += bytes;
    entry.wake?.();
  });
  leanSocket.on('data', (chunk: Buffer) => leanReader.push(chunk));
  let nextLeanStream = 1;
  const drainOf = (stream: NodeJS.WritableStream) => () => once(stream, 'drain').then(() => undefined);
  return {
    sinks: {
      'raw TLS': () => ({ write: (chunk) => rawSocket.write(chunk), drained: drainOf(rawSocket) }),
      'node:http2': () => {
        const stream = session.request({ ':method': 'POST', ':path': '/' });
        stream.on('response', () => {});
        stream.resume();
        return { write: (chunk) => stream.write(chunk), drained: drainOf(stream) };
      },
      lean: () => {
        const streamId = nextLeanStream++;
        const entry: { credit: number; wake?: () => void } = { credit: LEAN_WINDOW };
        credits.set(streamId, entry);
        const send = (chunk: Buffer): boolean => {
          entry.credit -= chunk.length;
          // One TLS write per frame (head and payload together), as a real multiplexer would do it.
          leanSocket.cork();
          leanSocket.write(frameHead(FRAME_DATA, streamId, chunk.length));
          const flowing = leanSocket.write(chunk);
          leanSocket.uncork();
          return flowing;
        };
        // Synchronous while there is credit, as a stream's write() is; else it waits for a credit frame.
        const write = (chunk: Buffer): boolean | Promise<void> => entry.credit >= chunk.length ? send(chunk) : new Promise<void>((resolve) => {
          entry.wake = () => {
            if (entry.credit < chunk.length) return;
            entry.wake = undefined;
            if (send(chunk)) resolve();
            else void once(leanSocket, 'drain').then(() => resolve());
          };
        });
        return { write, drained: drainOf(leanSocket) };
      },
    },
    close: () => { rawSocket.destroy(); session.destroy(); leanSocket.destroy(); },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function runSender(): Promise<void> {
  const arg = (name: string, fallback: number) => {
    const at = process.argv.indexOf(name);
    return at > 0 ? Number(process.argv[at + 1]) : fallback;
  };
  const mib = arg('--mib', 100);
  const rounds = arg('--rounds', 3);
  const totalBytes = mib * 1024 * 1024;
  const ca = await createCa('framing bench CA');
  const server = await issueServerCert(ca, ['localhost']);
  const child: ChildProcess = fork(process.argv[1], ['receiver'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = <K extends ToSender['kind']>(kind: K) => new Promise<Extract<ToSender, { kind: K }>>((resolve) => {
    const onMessage = (message: ToSender) => {
      if (message.kind !== kind) return;
      child.off('message', onMessage);
      resolve(message as Extract<ToSender, { kind: K }>);
    };
    child.on('message', onMessage);
  });
  const killTimer = setTimeout(() => { console.error('framing bench: over 10 minutes, stopping'); child.kill('SIGKILL'); process.exit(1); }, 600_000);
  try {
    child.send({ kind: 'setup', setup: { certPem: server.certPem, keyPem: server.keyPem, totalBytes } } satisfies ToReceiver);
    const { ports } = await next('ports');
    const { sinks, close } = await openSinks(ports, ca.certPem);
    const chunk = Buffer.alloc(CHUNK, 7);
    const results = new Map<Mode, { mbps: number[]; senderMs: number[]; receiverMs: number[] }>(MODES.map((mode) => [mode, { mbps: [], senderMs: [], receiverMs: [] }]));
    const perHundred = (ms: number) => ms * (100 * 1024 * 1024) / totalBytes;
    for (let round = 0; round < rounds + 1; round++) {
      // Round 0 warms every path up (the JIT, TLS buffers, windows) and is not counted.
      const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
      for (const mode of order) {
        child.send({ kind: 'arm', mode } satisfies ToReceiver);
        await next('armed');
        const done = next('done');
        const started = performance.now();
        const cpu = process.cpuUsage();
        const sink = sinks[mode]();
        for (let sent = 0; sent < totalBytes; sent += CHUNK) {
          const written = sink.write(chunk);
          if (written === false) await sink.drained();
          else if (written !== true) await written;
        }
        const { cpuMs } = await done;
        const seconds = (performance.now() - started) / 1000;
        const used = process.cpuUsage(cpu);
        if (round === 0) continue;
        const entry = results.get(mode)!;
        entry.mbps.push(totalBytes / (1024 * 1024) / seconds);
        entry.senderMs.push(perHundred((used.user + used.system) / 1000));
        entry.receiverMs.push(perHundred(cpuMs));
      }
    }
    close();
    const raw = results.get('raw TLS')!;
    const rawSender = median(raw.senderMs);
    const rawReceiver = median(raw.receiverMs);
    console.log(`One stream, ${mib} MiB a transfer, ${rounds} transfers per path (medians; ranges in brackets), CPU per 100 MiB:\n`);
    console.log('| path | MB/s | sender CPU ms | receiver CPU ms | sender / receiver against raw TLS |');
    console.log('|---|---|---|---|---|');
    const range = (values: number[]) => `${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))}`;
    for (const mode of MODES) {
      const entry = results.get(mode)!;
      const sender = median(entry.senderMs);
      const receiver = median(entry.receiverMs);
      console.log(`| ${mode} | ${Math.round(median(entry.mbps))} [${range(entry.mbps)}] | ${Math.round(sender)} [${range(entry.senderMs)}] | ${Math.round(receiver)} [${range(entry.receiverMs)}] | ${(sender / rawSender).toFixed(2)}× / ${(receiver / rawReceiver).toFixed(2)}× |`);
    }
  } finally {
    clearTimeout(killTimer);
    child.kill();
  }
}

if (process.argv[2] === 'receiver') runReceiver();
else if (import.meta.url === `file://${process.argv[1]}`) await runSender();
