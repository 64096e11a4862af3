// Host name matching builtins of PAC (Netscape's 1996 definitions, as Mozilla and pacparser ship them).

/** True when the host has no dot. */
export function isPlainHostName(host: string): boolean {
  return !host.includes('.');
}

/** True when host ends with domain (plain suffix test, as in every browser: "www.a.com" ends with ".a.com"). */
export function dnsDomainIs(host: string, domain: string): boolean {
  return host.length >= domain.length && host.endsWith(domain);
}

/** True when host equals hostdom, or host is unqualified and hostdom starts with `host.`. */
export function localHostOrDomainIs(host: string, hostdom: string): boolean {
  return host === hostdom || hostdom.startsWith(`${host}.`);
}

/** Number of dots in the host. */
export function dnsDomainLevels(host: string): number {
  return host.split('.').length - 1;
}

const REGEXP_SPECIALS = /[.+^${}()|[\]\\]/g;

/**
 * Shell-expression match: `*` any run, `?` one character, everything else literal, whole string.
 * Unlike pacparser's version every other regular-expression character is escaped too, so a pattern
 * like "a+b.com" matches literally instead of being read as a regular expression.
 */
export function shExpMatch(text: string, pattern: string): boolean {
  const source = pattern.replace(REGEXP_SPECIALS, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's').test(text);
}
