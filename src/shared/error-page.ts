// What a user sees when Ferry cannot serve a request (the relay, or the connector on a connection
// stream): HTML for browsers, JSON for API clients (chosen by Accept), always saying what happened
// and what to do.

export type UserErrorCode =
  | 'unknown-host'
  | 'no-connector'
  | 'backend-unreachable'
  | 'backend-timeout'
  | 'connector-lost'
  | 'relay-draining'
  | 'misdirected';

export interface UserError {
  status: number;
  code: UserErrorCode;
  title: string;
  detail: string;
}

export const userErrors = {
  unknownHost: (host: string): UserError => ({
    status: 404, code: 'unknown-host', title: 'No application is published at this address',
    detail: `No app is published for host "${host}". Check the URL, or publish the app with "ferry relay app add".`,
  }),
  noConnector: (group: string): UserError => ({
    status: 502, code: 'no-connector', title: 'No connector is online for this application',
    detail: `No connector of group "${group}" is online. Start a connector of that group or check its log.`,
  }),
  backendUnreachable: (errorClass: string, detail: string): UserError => ({
    status: 502, code: 'backend-unreachable', title: 'The internal application could not be reached',
    detail: `The connector could not reach the internal application (${errorClass}): ${detail}`,
  }),
  backendTimeout: (timeoutMs: number): UserError => ({
    status: 504, code: 'backend-timeout', title: 'The internal application did not answer in time',
    detail: `The internal application did not answer within ${Math.round(timeoutMs / 1000)} s.`,
  }),
  connectorLost: (): UserError => ({
    status: 502, code: 'connector-lost', title: 'The connection to the connector was lost',
    detail: 'The tunnel to the connector closed before the application answered. Try again.',
  }),
  misdirected: (host: string, served: string): UserError => ({
    status: 421, code: 'misdirected', title: 'This connection serves another application',
    detail: `This connection carries requests for "${served}", not "${host}". Open a new connection for "${host}" (a load balancer in front of the relay must keep one upstream pool per host name).`,
  }),
  draining: (): UserError => ({
    status: 503, code: 'relay-draining', title: 'The relay is restarting',
    detail: 'The relay is shutting down. Try again in a moment.',
  }),
};

/** Renders the error for the client: JSON when it prefers JSON, HTML otherwise. */
export function renderUserError(error: UserError, accept: string | undefined, errorClass?: string): { headers: Record<string, string>; body: string } {
  const wantsJson = !!accept && /application\/(json|problem\+json)|\+json/.test(accept) && !/text\/html/.test(accept);
  if (wantsJson) {
    const body = JSON.stringify({ error: { status: error.status, code: error.code, class: errorClass, title: error.title, detail: error.detail } });
    return { headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }, body };
  }
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${error.status} ${escapeHtml(error.title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#eee;padding:0 .2em}</style></head>
<body><h1>${escapeHtml(error.title)}</h1><p>${escapeHtml(error.detail)}</p><p><small>Ferry · ${error.status} · <code>${error.code}</code>${errorClass ? ` · <code>${escapeHtml(errorClass)}</code>` : ''}</small></p></body></html>\n`;
  return { headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }, body };
}

/** What a page is sent on: Node's ServerResponse or the HTTP/2 compatibility response. */
export interface PageResponse {
  readonly headersSent: boolean;
  destroy(): void;
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body: string): unknown;
}

/** Answers with the error page; once an answer has begun, all that is left is to cut it. */
export function sendUserError(res: PageResponse, error: UserError, accept: string | undefined, errorClass?: string): void {
  if (res.headersSent) return void res.destroy();
  const page = renderUserError(error, accept, errorClass);
  res.writeHead(error.status, { ...page.headers, 'content-length': Buffer.byteLength(page.body) });
  res.end(page.body);
}

/** The error page as a raw HTTP/1.1 answer that closes the connection (the head splice has no response object). */
export function rawUserPage(error: UserError, accept: string | undefined, errorClass?: string): Buffer {
  const page = renderUserError(error, accept, errorClass);
  let head = `HTTP/1.1 ${error.status} ${error.title}\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(page.body)}\r\n`;
  for (const [name, value] of Object.entries(page.headers)) head += `${name}: ${value}\r\n`;
  return Buffer.from(`${head}\r\n${page.body}`);
}

/** The error as a raw HTTP/1.1 answer, for a refused Upgrade (no response object is left). */
export function rawUserError(error: UserError): string {
  return `HTTP/1.1 ${error.status} ${error.title}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${error.detail}\n`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
