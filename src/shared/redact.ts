// Credentials never reach a log line, an error message or `proxy show` output. Every string
// that may carry a URL with user info, or a secret-bearing header, goes through here.

const USERINFO_IN_URL = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/@:]+)(:[^\s/@]*)?@/gi;
const AUTH_HEADER = /\b((?:proxy-)?authorization\s*[:=]\s*)(\S+)(\s+\S+)?/gi;
const TOKEN_LIKE = /\bferry1\.[A-Za-z0-9_-]{8,}/g;

/** Replaces passwords in URLs, Authorization values and registration tokens with "***". */
export function redact(text: string): string {
  return text
    .replace(USERINFO_IN_URL, (_m, scheme: string, user: string, pass?: string) => `${scheme}${user}${pass ? ':***' : ''}@`)
    .replace(AUTH_HEADER, (_m, name: string, first: string, rest?: string) => `${name}${rest ? `${first} ***` : '***'}`)
    .replace(TOKEN_LIKE, 'ferry1.***');
}

/** A proxy URL fit for logs: scheme, host and port, user name kept, password dropped. */
export function redactUrl(url: string | URL): string {
  const parsed = typeof url === 'string' ? safeUrl(url) : url;
  if (!parsed) return redact(String(url));
  const copy = new URL(parsed.href);
  if (copy.password) copy.password = '***';
  return copy.href.replace(/\/$/, '');
}

function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
