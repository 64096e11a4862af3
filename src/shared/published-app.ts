// What a published app means to the code that forwards its requests: the relay (a stream per
// request) and the connector (a stream per user connection) apply the same rules, from here:
// which Host a request must carry, how the external path maps onto the internal one, which
// X-Forwarded-* headers the app sees, and how a Location naming the internal URL is rewritten.

export type AppMode = 'http' | 'passthrough';

export interface PublishedApp {
  name: string;
  externalUrl: URL;
  internalUrl: URL;
  group: string;
  timeoutMs: number;
  /** http: Ferry reads every request (headers, errors, timeouts); passthrough: bytes only. */
  mode: AppMode;
}

/** Lower-cased host without a trailing dot or a default port (80, 443). */
export function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.(?=:|$)/, '').replace(/:(443|80)$/, '');
}

/** Maps an external path onto the internal URL: the external path prefix becomes the internal one. */
export function joinPath(app: PublishedApp, requestPath: string): string {
  const { externalPrefix, internalPrefix } = prefixesOf(app);
  const rest = externalPrefix && requestPath.startsWith(externalPrefix) ? requestPath.slice(externalPrefix.length) : requestPath;
  return `${internalPrefix}${rest.startsWith('/') ? rest : `/${rest}`}`;
}

/** The apps' path prefixes, read once per app object (URL getters and two regexps were per request). */
const prefixes = new WeakMap<PublishedApp, { externalPrefix: string; internalPrefix: string }>();
function prefixesOf(app: PublishedApp): { externalPrefix: string; internalPrefix: string } {
  let found = prefixes.get(app);
  if (!found) {
    found = { externalPrefix: app.externalUrl.pathname.replace(/\/$/, ''), internalPrefix: app.internalUrl.pathname.replace(/\/$/, '') };
    prefixes.set(app, found);
  }
  return found;
}

/**
 * The URL a request for the app goes to: `path` (already mapped by joinPath) on the app's origin,
 * always. Not `new URL(path, origin)`: a path such as `//other-host:22/x` would then name another
 * host, and the connector would send a user's request anywhere on its network.
 */
export function appTarget(internalUrl: URL, path: string): URL {
  return new URL(`${internalUrl.origin}${path.startsWith('/') ? path : `/${path}`}`);
}

/** A Location pointing at the internal URL is rewritten to the external one. */
export function rewriteLocation(headers: Record<string, string | string[]>, app: PublishedApp): void {
  const location = headers.location;
  if (typeof location === 'string') headers.location = rewrittenLocation(location, app);
}

/** `location` with the internal URL replaced by the external one (unchanged when it names neither). */
export function rewrittenLocation(location: string, app: PublishedApp): string {
  const internal = app.internalUrl.href.replace(/\/$/, '');
  if (location === internal || location.startsWith(`${internal}/`) || location.startsWith(`${internal}?`)) {
    return app.externalUrl.href.replace(/\/$/, '') + location.slice(internal.length);
  }
  return location;
}

/** Adds X-Forwarded-For (appending the user's address), -Host and -Proto to `headers`. */
export function addForwardedHeaders(headers: Record<string, string | string[]>, prior: string | string[] | undefined, clientIp: string, host: string, userProto: 'http' | 'https'): void {
  headers['x-forwarded-for'] = forwardedFor(prior, clientIp);
  headers['x-forwarded-host'] = host;
  headers['x-forwarded-proto'] = userProto;
}

/** X-Forwarded-For as the app sees it: what came before, then the user's address. */
export function forwardedFor(prior: string | string[] | undefined, clientIp: string): string {
  const before = Array.isArray(prior) ? prior.join(', ') : prior;
  return before ? `${before}, ${clientIp}` : clientIp;
}
