// What an HTTP/2 user's session gets from Ferry wherever it is served: by the relay (a tunnel
// stream per request) or by the connector (the whole connection as one tunnel stream,
// CONNECTOR_FEATURES.http2ConnectionStreams). Both sides must behave the same to a browser.
// May import: node:http2 only.
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Settings } from 'node:http2';

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
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_LIMIT && !res.stream.closed) res.stream.close(NGHTTP2_NO_ERROR);
  });
  req.resume();
}
