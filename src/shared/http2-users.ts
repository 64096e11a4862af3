// What an HTTP/2 user's session gets from Ferry wherever it is served: by the relay (a tunnel
// stream per request) or by the connector (the whole connection as one tunnel stream,
// CONNECTOR_FEATURES.http2ConnectionStreams). Both sides must behave the same to a browser.
// May import: node:http2 and node:stream types only.
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Stream, type Settings } from 'node:http2';
import type { Readable } from 'node:stream';

const { NGHTTP2_NO_ERROR } = http2.constants;

/** The user session's settings (as the relay's own HTTP/2 server has always had them). */
export const USER_HTTP2_SETTINGS: Settings = { initialWindowSize: 1 << 20 };

/** How much of an upload nobody wants is drained before the user's stream is reset. */
const DRAIN_LIMIT = 16 << 20;

/**
 * The answer is complete but an HTTP/2 user is still uploading (the backend answered without
 * reading the body: a 401, a 413...). The rest of the upload is no longer carried to the app
 * (`stopCarrying`: the tunnel stream is cancelled, or the app request dropped, never reused
 * half-sent). What the client still sends is drained, so the client finishes normally, as over
 * HTTP/1.1; past DRAIN_LIMIT the stream gets RST_STREAM(NO_ERROR), which RFC 9113 §8.1 allows
 * after a complete response (some clients report that as an error, hence draining first).
 * Without this the client waits for flow-control credit that nobody gives.
 */
export function stopUnneededUpload(req: Http2ServerRequest, res: Http2ServerResponse, stopCarrying: () => void): void {
  if (req.complete) return;
  stopCarrying();
  drainUnneededUpload(req, res.stream);
}

/** Reads and drops what is left of `upload`; past DRAIN_LIMIT, `userStream` is reset (NO_ERROR). */
export function drainUnneededUpload(upload: Readable, userStream: Http2Stream): void {
  let drained = 0;
  upload.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_LIMIT && !userStream.closed) userStream.close(NGHTTP2_NO_ERROR);
  });
  upload.resume();
}
