// pipe() for the byte paths of the tunnel (user connection ↔ tunnel stream ↔ app connection).
// pipe() pauses its source as soon as the destination holds one highWaterMark (16 KiB): on a bulk
// transfer that is a pause and a resume for nearly every TLS record or HTTP/2 DATA frame, and the
// relay then spent its core on the ping-pong. Queuing up to 1 MiB before pausing took 100 MB over
// TLS users from 128-163 to 178-221 MB/s down (four runs each way, same machine, same hour).

/** How much may wait at a destination before its source pauses. */
export const MAX_QUEUED_BYTES = 1 << 20;

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
