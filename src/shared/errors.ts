// src/shared — wire types, the error base, redaction. Imports nothing internal.
//
// The error taxonomy, classified once. Every failure Ferry reports carries a stable `code`, and a
// network failure carries exactly one `errorClass` from DESIGN.md's table together with the fix an
// operator should apply. Callers decide on typed fields (`errorClass`, `retryable`, `permanent`),
// never on message text (the lesson of chisel's HasSuffix and undici #3897).

/** The dial failure classes of DESIGN.md ("Dialing and failure taxonomy"). */
export const DIAL_FAILURE_CLASSES = [
  'dns',
  'connect-timeout',
  'connect-refused',
  'proxy-auth-required',
  'proxy-refused',
  'tls-interception',
  'tls',
  'relay-rejected',
] as const;
export type DialFailureClass = (typeof DIAL_FAILURE_CLASSES)[number];

/** The fix the doctor prints for each class (DESIGN.md). */
export const FIX_FOR_CLASS: Record<DialFailureClass, string> = {
  dns: 'check the DNS record (or the WPAD record) for this host',
  'connect-timeout': 'SYN unanswered: a firewall drops traffic to this host:port; allow it or route through the proxy',
  'connect-refused': 'connection refused: nothing listens on this host:port; check the address and port',
  'proxy-auth-required': 'allow anonymous access for the connector on the proxy, or configure proxy credentials (proxy.credentials, scheme basic, ntlm or any)',
  'proxy-refused': "add this host:port to the proxy's outbound (CONNECT) rules",
  'tls-interception': "exempt the relay's hosts from TLS inspection on the proxy",
  tls: 'TLS handshake failed: check the certificates and the system clock',
  'relay-rejected': 'the relay refused this connector\'s certificate: re-register the connector with a new token',
};

/** Dial phases, for structured fields and traces. */
export type DialPhase = 'resolve' | 'pac' | 'tcp' | 'proxy-connect' | 'proxy-auth' | 'tls' | 'handshake' | 'session';

const FERRY_ERROR = Symbol.for('ferry.error');

export interface FerryErrorOptions {
  cause?: unknown;
  fix?: string;
  retryable?: boolean;
  permanent?: boolean;
}

/** Base of every error Ferry raises on purpose. `code` is stable and listed in README "Error codes" (pinned by src/shared/error-codes.test.ts). */
export class FerryError extends Error {
  readonly code: string;
  readonly fix: string | undefined;
  readonly retryable: boolean;
  readonly permanent: boolean;

  constructor(code: string, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.fix = options.fix;
    this.retryable = options.retryable ?? false;
    this.permanent = options.permanent ?? false;
    Object.defineProperty(this, FERRY_ERROR, { value: true });
  }

  // instanceof keeps working across duplicate copies of this module (undici's trick).
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === FerryError) return typeof value === 'object' && value !== null && FERRY_ERROR in value;
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

export interface DialFields {
  /** host:port the caller wanted to reach. */
  target: string;
  /** Redacted proxy URL when the failure happened on a proxied route. */
  proxy?: string;
  phase: DialPhase;
  statusCode?: number;
  statusText?: string;
  /** Authentication schemes offered by a proxy in Proxy-Authenticate (407). */
  schemes?: string[];
  /** Issuer of the certificate that was presented instead of the pinned CA's. */
  observedIssuer?: string;
  elapsedMs?: number;
  timeoutMs?: number;
}

/** A failure to reach a target, with exactly one taxonomy class. */
export class DialError extends FerryError {
  readonly errorClass: DialFailureClass;
  readonly fields: DialFields;

  constructor(errorClass: DialFailureClass, message: string, fields: DialFields, options: FerryErrorOptions = {}) {
    super(`ERR_DIAL_${errorClass.toUpperCase().replace(/-/g, '_')}`, message, {
      fix: options.fix ?? FIX_FOR_CLASS[errorClass],
      retryable: options.retryable ?? errorClass !== 'relay-rejected',
      permanent: options.permanent ?? errorClass === 'relay-rejected',
      cause: options.cause,
    });
    this.errorClass = errorClass;
    this.fields = fields;
  }
}

/** A configuration file that cannot be used. Names the file, the line and the fix. */
export class ConfigError extends FerryError {
  readonly file: string | undefined;
  readonly line: number | undefined;

  constructor(message: string, where: { file?: string; line?: number; fix: string }, options: FerryErrorOptions = {}) {
    const place = where.file ? `${where.file}${where.line ? `:${where.line}` : ''}: ` : '';
    super('ERR_CONFIG', `${place}${message}`, { ...options, fix: where.fix, permanent: true });
    this.file = where.file;
    this.line = where.line;
  }
}

/** A command line that cannot be carried out as written (exit code 2). */
export class UsageError extends FerryError {
  constructor(message: string, fix?: string) {
    super('ERR_USAGE', message, { fix, permanent: true });
  }
}

/** Formats an error for a human: what happened, then what to do. */
export function describeError(error: unknown): string {
  if (error instanceof FerryError) return error.fix ? `${error.message}\n  fix: ${error.fix}` : error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
