// HTTP/1.1 message heads and body framing, strict on purpose: for the connector's head splice,
// which forwards bodies as bytes in their own framing and so must know exactly where each message
// ends, and for the relay, which routes a connection by its first head. Anything these functions
// do not accept is not guessed at: a request goes to Node's HTTP server instead (which answers
// 400/431 where due), a response becomes a 502.

/** The most a head may take (Node's own default limit). */
export const MAX_HEAD_BYTES = 16 * 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DIGITS = /^\d{1,15}$/;
/** Field values are visible characters, obs-text, space and tab: no other control characters. */
function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}

export interface Head {
  /** The request line or status line. */
  startLine: string;
  /** Field names as sent, and lower-cased; values without surrounding whitespace. */
  names: string[];
  lowerNames: string[];
  values: string[];
}

/** Offset just past the blank line that ends a head in `buffer`, or -1. */
export function headEnd(buffer: Buffer): number {
  const at = buffer.indexOf('\r\n\r\n', 0, 'latin1');
  return at === -1 ? -1 : at + 4;
}

/** Parses a head (`text` ends with the blank line); undefined for anything not strictly valid. */
export function parseHead(text: string): Head | undefined {
  // One pass with indexOf over the text, no split() or regular-expression trim: this runs twice
  // per request on the connector's fast path.
  const end = text.length - 4;
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd === -1 || lineEnd > end) lineEnd = end;
  const startLine = text.slice(0, lineEnd);
  if (startLine.includes('\n') || startLine.includes('\r')) return undefined;
  const head: Head = { startLine, names: [], lowerNames: [], values: [] };
  for (let at = lineEnd + 2; at < end + 2; at = lineEnd + 2) {
    lineEnd = text.indexOf('\r\n', at);
    if (lineEnd === -1 || lineEnd > end) lineEnd = end;
    const colon = text.indexOf(':', at);
    if (colon <= at || colon > lineEnd) return undefined;
    const name = text.slice(at, colon);
    // A token only: no space before the colon, no obs-fold (a line that starts with whitespace).
    if (!TOKEN.test(name)) return undefined;
    let from = colon + 1;
    let to = lineEnd;
    while (from < to && isBlank(text.charCodeAt(from))) from++;
    while (to > from && isBlank(text.charCodeAt(to - 1))) to--;
    const value = text.slice(from, to);
    if (hasControlCharacter(value)) return undefined;
    head.names.push(name);
    head.lowerNames.push(name.toLowerCase());
    head.values.push(value);
  }
  return head;
}

/** Space or horizontal tab (optional whitespace around a field value). */
function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** All values of a field (lower-case name). */
export function fieldValues(head: Head, lowerName: string): string[] {
  const found: string[] = [];
  for (let i = 0; i < head.lowerNames.length; i++) if (head.lowerNames[i] === lowerName) found.push(head.values[i]);
  return found;
}

const NO_TOKENS: ReadonlySet<string> = new Set();

/**
 * Whether a request read by Node's HTTP/1.1 server has a body (RFC 9112 §6.3): a Transfer-Encoding,
 * or a Content-Length above 0, whatever the method (a GET may carry one).
 */
export function requestHasBody(headers: { 'content-length'?: string | undefined; 'transfer-encoding'?: string | undefined }): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
}

/** The lower-cased tokens of all Connection fields (one shared empty set when there are none). */
export function connectionTokens(head: Head): ReadonlySet<string> {
  const values = fieldValues(head, 'connection');
  return values.length === 0 ? NO_TOKENS : connectionTokensOf(values);
}

/** The lower-cased tokens of Connection field values (one value or several). */
export function connectionTokensOf(values: string | string[]): Set<string> {
  const tokens = new Set<string>();
  for (const value of Array.isArray(values) ? values : [values]) {
    for (const token of value.split(',')) if (token.trim()) tokens.add(token.trim().toLowerCase());
  }
  return tokens;
}

/** A Content-Length the message may be framed by: one value (or identical repeats) of digits. */
export function contentLength(head: Head): number | 'none' | 'invalid' {
  const fields = fieldValues(head, 'content-length');
  if (fields.length === 1 && DIGITS.test(fields[0])) return Number(fields[0]);
  const values = fields.flatMap((value) => value.split(',').map((part) => part.trim()));
  if (values.length === 0) return 'none';
  if (!values.every((value) => DIGITS.test(value) && value === values[0])) return 'invalid';
  return Number(values[0]);
}

export type ResponseFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  | { kind: 'until-close' };

/** RFC 9112 §6.3: how a response body ends, given the request method. */
export function responseFraming(head: Head, status: number, requestMethod: string): ResponseFraming | 'invalid' {
  if (requestMethod === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304) return { kind: 'none' };
  const codings = fieldValues(head, 'transfer-encoding').flatMap((value) => value.split(',')).map((coding) => coding.trim().toLowerCase()).filter(Boolean);
  if (codings.length > 0) return codings[codings.length - 1] === 'chunked' ? { kind: 'chunked' } : { kind: 'until-close' };
  const length = contentLength(head);
  if (length === 'invalid') return 'invalid';
  return length === 'none' ? { kind: 'until-close' } : { kind: 'length', length };
}

/** A response head as the connector's two forwarding paths (head splice, app client) read it. */
export interface ResponseHead {
  status: number;
  /** The reason phrase as sent ('' when there is none). */
  reason: string;
  framing: ResponseFraming;
  /** Lower-cased tokens of the Connection fields (the fields they name are hop-by-hop). */
  connection: ReadonlySet<string>;
  /**
   * The app may answer again on this connection: no `close`, HTTP/1.0 only with `keep-alive`, and
   * a body that does not end with the connection.
   */
  keepAlive: boolean;
}

/**
 * Reads a response's status line, framing and persistence; undefined when malformed, and for a
 * 101 (neither path asks to switch protocols, so one is the app out of step).
 */
export function readResponseHead(head: Head, requestMethod: string): ResponseHead | undefined {
  const status = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(head.startLine);
  if (!status) return undefined;
  const code = Number(status[2]);
  if (code === 101) return undefined;
  const framing = responseFraming(head, code, requestMethod);
  if (framing === 'invalid') return undefined;
  const connection = connectionTokens(head);
  const keepAlive = !connection.has('close') && (status[1] === '1' || connection.has('keep-alive')) && framing.kind !== 'until-close';
  return { status: code, reason: status[3] ?? '', framing, connection, keepAlive };
}

/**
 * Where a response body ends, in its own framing. `take` says how many bytes of `data` belong to
 * the body (all of them while it goes on) and hands the body's data to `onData` (without the chunk
 * framing); `ended` turns true with its last byte. Throws on bad chunked framing.
 */
export class ResponseBody {
  ended: boolean;
  private left: number;
  private readonly chunks: ChunkedBodyEnd | undefined;

  constructor(readonly framing: ResponseFraming) {
    this.left = framing.kind === 'length' ? framing.length : 0;
    this.chunks = framing.kind === 'chunked' ? new ChunkedBodyEnd() : undefined;
    this.ended = framing.kind === 'none' || this.left === 0 && framing.kind === 'length';
  }

  take(data: Buffer, onData?: (data: Buffer) => void): number {
    if (this.ended || data.length === 0) return 0;
    switch (this.framing.kind) {
      case 'until-close':
        onData?.(data);
        return data.length;
      case 'length': {
        const take = Math.min(this.left, data.length);
        this.left -= take;
        this.ended = this.left === 0;
        onData?.(take === data.length ? data : data.subarray(0, take));
        return take;
      }
      case 'chunked': {
        const end = (this.chunks as ChunkedBodyEnd).scan(data, 0, onData);
        if (end === -1) return data.length;
        this.ended = true;
        return end;
      }
      default:
        return 0;
    }
  }
}

/**
 * Finds where a chunked body ends without copying it: the head splice forwards the bytes as they
 * are, the app client takes only the chunks' data (`onData`). Strict: chunk-size lines of hex
 * digits (extensions allowed), CRLF line ends, bounded lines; trailers are read and dropped.
 */
export class ChunkedBodyEnd {
  private state: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  private line = '';
  private remaining = 0;

  /** Offset in `chunk` just past the body's end, or -1 if it goes on; throws on bad framing. */
  scan(chunk: Buffer, from = 0, onData?: (data: Buffer) => void): number {
    let i = from;
    while (i < chunk.length) {
      if (this.state === 'data') {
        const take = Math.min(this.remaining, chunk.length - i);
        onData?.(chunk.subarray(i, i + take));
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'data-end';
        continue;
      }
      const newline = chunk.indexOf(10, i);
      const end = newline === -1 ? chunk.length : newline + 1;
      this.line += chunk.toString('latin1', i, end);
      i = end;
      if (this.line.length > 4096) throw new Error('chunked body: a line longer than 4 KiB');
      if (newline === -1) break;
      const line = this.line;
      this.line = '';
      if (!line.endsWith('\r\n')) throw new Error('chunked body: a line ends without CR');
      const content = line.slice(0, -2);
      if (this.state === 'data-end') {
        if (content !== '') throw new Error('chunked body: no CRLF after chunk data');
        this.state = 'size';
      } else if (this.state === 'size') {
        const size = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;.*)?$/.exec(content);
        if (!size) throw new Error('chunked body: bad chunk size');
        this.remaining = parseInt(size[1], 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (content === '') {
        return i;
      }
    }
    return -1;
  }
}
