// The strict, bounded parser for a proxy's answer to CONNECT (RFC 9110 §9.3.6, RFC 9112 §4).
// Pure: fed byte chunks, it answers "need more", "here is the head (and the bytes after it)" or
// "this is not an HTTP response". Bytes after the head belong to the tunnel and must be kept.

/** A proxy answer head larger than this is not a proxy we can trust to follow the protocol. */
export const MAX_CONNECT_RESPONSE_HEAD_BYTES = 16 * 1024;

export interface ConnectResponseHead {
  statusCode: number;
  statusText: string;
  httpVersion: string;
  /** Header lines in order, names lower-cased, values trimmed. */
  headers: Array<[name: string, value: string]>;
  /** Bytes received after the blank line that ends the head. */
  rest: Buffer;
}

export type ConnectParseResult =
  | { kind: 'incomplete' }
  | { kind: 'complete'; head: ConnectResponseHead }
  | { kind: 'invalid'; reason: string };

const STATUS_LINE = /^HTTP\/(1\.[01]) ([1-5][0-9]{2})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEAD_END = Buffer.from('\r\n\r\n');

/** Accumulates chunks until a full response head arrived. */
export class ConnectResponseParser {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly maxHeadBytes: number;

  constructor(maxHeadBytes = MAX_CONNECT_RESPONSE_HEAD_BYTES) {
    this.maxHeadBytes = maxHeadBytes;
  }

  push(chunk: Buffer): ConnectParseResult {
    // Search only the tail that could hold a new terminator, so many small chunks stay linear.
    const searchFrom = Math.max(0, this.buffered.length - 3);
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const end = this.buffered.indexOf(HEAD_END, searchFrom);
    if (end === -1) {
      if (this.buffered.length > this.maxHeadBytes) return { kind: 'invalid', reason: `response head exceeds ${this.maxHeadBytes} bytes` };
      if (!looksLikeHttpSoFar(this.buffered)) return { kind: 'invalid', reason: 'the proxy did not answer with HTTP' };
      return { kind: 'incomplete' };
    }
    if (end + HEAD_END.length > this.maxHeadBytes) return { kind: 'invalid', reason: `response head exceeds ${this.maxHeadBytes} bytes` };
    const headText = this.buffered.subarray(0, end).toString('latin1');
    const rest = this.buffered.subarray(end + HEAD_END.length);
    return parseHead(headText, Buffer.from(rest));
  }
}

function looksLikeHttpSoFar(bytes: Buffer): boolean {
  const prefix = 'HTTP/';
  const n = Math.min(bytes.length, prefix.length);
  return bytes.subarray(0, n).toString('latin1') === prefix.slice(0, n);
}

function parseHead(text: string, rest: Buffer): ConnectParseResult {
  const lines = text.split('\r\n');
  const statusMatch = STATUS_LINE.exec(lines[0] ?? '');
  if (!statusMatch) return { kind: 'invalid', reason: `malformed status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}` };
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    // Obsolete line folding and bare LF are refused: a tunnel decision must not be ambiguous.
    if (line.startsWith(' ') || line.startsWith('\t')) return { kind: 'invalid', reason: 'obsolete header line folding' };
    if (line.includes('\n') || line.includes('\r')) return { kind: 'invalid', reason: 'bare CR or LF in header' };
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'invalid', reason: `malformed header line ${JSON.stringify(line.slice(0, 80))}` };
    const name = line.slice(0, colon);
    if (!HEADER_NAME.test(name)) return { kind: 'invalid', reason: `invalid header name ${JSON.stringify(name.slice(0, 80))}` };
    headers.push([name.toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return {
    kind: 'complete',
    head: {
      httpVersion: statusMatch[1] as string,
      statusCode: Number(statusMatch[2]),
      statusText: (statusMatch[3] ?? '').trim(),
      headers,
      rest,
    },
  };
}

/** All values of one header (name case-insensitive). */
export function headerValues(head: Pick<ConnectResponseHead, 'headers'>, name: string): string[] {
  const wanted = name.toLowerCase();
  return head.headers.filter(([key]) => key === wanted).map(([, value]) => value);
}

const AUTH_SCHEME = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s+|$)/;

/**
 * The authentication schemes named by Proxy-Authenticate headers, in order, deduplicated.
 * A header may hold several challenges separated by commas (`Basic realm="x", NTLM`); a
 * comma-separated piece starts a new challenge when it begins with a bare token (not `name=`).
 */
export function challengeSchemes(values: string[]): string[] {
  const schemes: string[] = [];
  for (const value of values) {
    for (const piece of splitOutsideQuotes(value)) {
      const match = AUTH_SCHEME.exec(piece.trim());
      if (!match) continue;
      const scheme = match[1] as string;
      const canonical = CANONICAL_SCHEMES.get(scheme.toLowerCase()) ?? scheme;
      if (!schemes.includes(canonical)) schemes.push(canonical);
    }
  }
  return schemes;
}

/** The challenge text for one scheme (e.g. the NTLM type-2 token), when offered. */
export function challengeFor(values: string[], scheme: string): string | undefined {
  for (const value of values) {
    for (const piece of splitOutsideQuotes(value)) {
      const trimmed = piece.trim();
      const match = AUTH_SCHEME.exec(trimmed);
      if (match && (match[1] as string).toLowerCase() === scheme.toLowerCase()) return trimmed.slice((match[1] as string).length).trim();
    }
  }
  return undefined;
}

const CANONICAL_SCHEMES = new Map([
  ['basic', 'Basic'],
  ['digest', 'Digest'],
  ['ntlm', 'NTLM'],
  ['negotiate', 'Negotiate'],
  ['kerberos', 'Kerberos'],
  ['bearer', 'Bearer'],
]);

function splitOutsideQuotes(value: string): string[] {
  const pieces: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i += 1) {
    const char = value[i] as string;
    if (quoted && char === '\\' && i + 1 < value.length) {
      current += char + (value[i + 1] as string);
      i += 1;
      continue;
    }
    if (char === '"') quoted = !quoted;
    if (char === ',' && !quoted) {
      pieces.push(current);
      current = '';
      continue;
    }
    current += char;
  }
  pieces.push(current);
  return pieces;
}
