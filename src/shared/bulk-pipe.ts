// pipe() for the byte paths of the tunnel (user connection ↔ tunnel stream ↔ app connection).
// pipe() pauses its source as soon as the destination holds one highWaterMark (16 KiB): on a bulk
// transfer that is a pause and a resume for nearly every TLS record or HTTP/2 DATA frame, and the
// relay then spent its core on the ping-pong. Queuing up to 1 MiB before pausing took 100 MB over
// TLS users from 128-163 to 178-221 MB/s down (four runs each way, same machine, same hour).
//
// The byte paths also pace V8's young-generation GCs (see youngGcAfter). Each chunk they move is
// a Buffer whose memory lies outside V8's heap, freed only when a GC finds the Buffer dead. V8
// schedules young GCs by what JavaScript allocates on its heap, which a byte path barely does, so
// between two of them ~64 MiB of dead Buffers piled up and V8 answered this "external memory
// pressure" with a full mark-compact of the whole heap: in one `npm run bench`, 119 in the relay
// and 95 in the connector, most of them during 100 MB transfers. With a young GC every 8 MiB
// moved: 13 and 6, and CPU per 100 MB downloaded over TLS users went from 430 / 270 ms to
// 230 / 160 ms (relay / connector). README, Performance.
import v8 from 'node:v8';
import vm from 'node:vm';

/** How much may wait at a destination before its source pauses. */
export const MAX_QUEUED_BYTES = 1 << 20;

/** Bytes a process's byte paths move between two young GCs that they ask for. */
export const YOUNG_GC_EVERY_BYTES = 8 << 20;

type YoungGc = (options: { type: 'minor' }) => void;

let youngGc: YoungGc | undefined | null = null;
let movedSinceYoungGc = 0;

/**
 * V8's `gc`: the one Node exposes with --expose-gc, or else taken from a fresh context with the
 * flag set for that moment only (the process's own global keeps no `gc`). undefined if neither.
 */
function exposeYoungGc(): YoungGc | undefined {
  const given = (globalThis as { gc?: unknown }).gc;
  if (typeof given === 'function') return given as YoungGc;
  try {
    v8.setFlagsFromString('--expose-gc');
    const taken: unknown = vm.runInNewContext('gc');
    return typeof taken === 'function' ? (taken as YoungGc) : undefined;
  } catch {
    return undefined;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

/** A 'data' listener for paths that pipe() (HTTP/2 users, the app client): counts for youngGcAfter. */
export function countMovedChunk(chunk: Buffer): void {
  youngGcAfter(chunk.length);
}

/** Counts bytes a byte path moved; every YOUNG_GC_EVERY_BYTES, runs a young GC (about 0.5 ms). */
export function youngGcAfter(bytes: number): void {
  movedSinceYoungGc += bytes;
  if (movedSinceYoungGc < YOUNG_GC_EVERY_BYTES) return;
  movedSinceYoungGc = 0;
  if (youngGc === null) youngGc = exposeYoungGc();
  youngGc?.({ type: 'minor' });
}

interface Source {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  once(event: 'end', listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

interface Destination {
  readonly writableLength: number;
  readonly destroyed: boolean;
  write(chunk: Buffer): boolean;
  end(): unknown;
  once(event: 'drain', listener: () => void): unknown;
}

/** Writes `bytes`; past MAX_QUEUED_BYTES waiting, pauses `source` until `to` drains. */
export function writeOrPause(to: Destination, bytes: Buffer, source: { pause(): unknown; resume(): unknown }): void {
  if (to.destroyed) return;
  youngGcAfter(bytes.length);
  to.write(bytes);
  if (to.writableLength > MAX_QUEUED_BYTES) {
    source.pause();
    to.once('drain', () => source.resume());
  }
}

/**
 * Moves `from`'s bytes to `to` and ends `to` when `from` ends. Errors and closes are the caller's
 * (each side of the tunnel handles them its own way).
 */
export function bulkPipe(from: Source, to: Destination): void {
  from.on('data', (chunk) => writeOrPause(to, chunk, from));
  from.once('end', () => {
    if (!to.destroyed) to.end();
  });
}
