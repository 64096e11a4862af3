// Ferry's YAML form of the proxy settings: the `proxy:` key of a service config file (connector.yaml,
// updater.yaml, machine-wide file). Other top-level keys belong to other readers and are ignored.
// Keys mirror the .NET attributes in camelCase; booleans stand for the tri-states (absent = Unspecified).
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { isIP } from 'node:net';
import { ConfigError } from '../shared/errors.js';
import {
  compileBypassEntry,
  emptyProxySettingsLayer,
  validateProxyAddress,
  validateScriptLocation,
  type ProxySettingsLayer,
  type SettingOrigin,
} from './proxy-settings.js';

const dnsServer = z.string().refine((value) => isIP(value) !== 0 || /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:.]+\]):\d{1,5}$/i.test(value), {
  message: 'must be an IP address, optionally with :port (e.g. 10.0.0.53 or 10.0.0.53:5353)',
});
/** How proxy.credentials may be offered (src/egress/dial/proxy-auth.ts implements each). */
export const PROXY_AUTH_SCHEMES = ['basic', 'ntlm', 'any', 'negotiate'] as const;
export type ProxyAuthScheme = (typeof PROXY_AUTH_SCHEMES)[number];

const domainSuffix = z.string().regex(/^(?!-)[a-z0-9-]+(\.[a-z0-9-]+)+\.?$/i, 'must be a DNS suffix with at least two labels, e.g. corp.example.com');

const proxySectionSchema = z
  .object({
    enabled: z.boolean(),
    useDefaultCredentials: z.boolean(),
    address: z.string(),
    bypassOnLocal: z.boolean(),
    useSystemDefault: z.boolean(),
    autoDetect: z.boolean(),
    scriptLocation: z.string(),
    bypassList: z.array(z.string()),
    credentials: z
      .object({
        username: z.string().min(1).optional(),
        passwordFile: z.string().min(1).optional(),
        scheme: z.enum(PROXY_AUTH_SCHEMES).optional(),
        keytab: z.string().min(1).optional(),
      })
      .strict()
      .superRefine((credentials, ctx) => {
        if (credentials.scheme === 'negotiate') {
          if (credentials.passwordFile !== undefined) {
            ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'scheme negotiate uses the service\'s Kerberos identity (keytab, or the credential cache), never a password: remove passwordFile' });
          }
          return;
        }
        for (const key of ['username', 'passwordFile'] as const) {
          if (credentials[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: `${key} is required for scheme ${credentials.scheme ?? 'basic'} (username and passwordFile)` });
        }
        if (credentials.keytab !== undefined) ctx.addIssue({ code: 'custom', path: ['keytab'], message: 'keytab is for scheme negotiate only' });
      }),
    wpad: z.object({ domainSuffix: domainSuffix, dnsServers: z.array(dnsServer).min(1), port: z.number().int().min(1).max(65535) }).partial().strict(),
  })
  .partial()
  .strict();

const KEYS = 'enabled, useDefaultCredentials, address, bypassOnLocal, useSystemDefault, autoDetect, scriptLocation, bypassList, credentials {username, passwordFile, scheme: basic|ntlm|any|negotiate, keytab}, wpad {domainSuffix, dnsServers, port}';

export function parseYamlProxyConfig(text: string, file: string): ProxySettingsLayer {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined): number => (offset === undefined ? 1 : lineCounter.linePos(offset).line);
  const firstError = doc.errors[0];
  if (firstError) {
    throw new ConfigError(`malformed YAML: ${firstError.message.split('\n')[0]}`, {
      file,
      line: lineOf(firstError.pos[0]),
      fix: 'fix the YAML syntax (indentation, colons, quoting); a .NET config file must start with <',
    });
  }
  const layer = emptyProxySettingsLayer(file, 'ferry-yaml');
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return layer;
  if (!isMap(root)) {
    throw new ConfigError('the configuration file is not a YAML mapping', { file, line: lineOf(root.range?.[0]), fix: 'write settings as "key: value" lines, the proxy settings under "proxy:"' });
  }
  const proxyPair = root.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === 'proxy');
  if (!proxyPair) return layer;
  const sectionLine = lineOf((proxyPair.key as YamlNode).range?.[0]);
  layer.defined = true;
  layer.origins.section = { file, line: sectionLine };
  const raw: unknown = doc.toJS().proxy ?? {};

  const nodeLine = (path: (string | number)[]): number => {
    // A missing key has no node: report the nearest enclosing one.
    for (let length = path.length; length > 0; length -= 1) {
      const node = doc.getIn(['proxy', ...path.slice(0, length)], true) as YamlNode | undefined;
      if (node?.range) return lineOf(node.range[0]);
    }
    return sectionLine;
  };
  const keyLine = (path: (string | number)[], key: string): number => {
    const parent = path.length ? doc.getIn(['proxy', ...path], true) : doc.get('proxy', true);
    if (isMap(parent)) {
      const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === key);
      const keyNode = pair?.key as YamlNode | undefined;
      if (keyNode?.range) return lineOf(keyNode.range[0]);
    }
    return nodeLine(path);
  };

  const parsed = proxySectionSchema.safeParse(raw);
  if (!parsed.success) {
    // An unknown key explains a "missing" one (a misspelling): report it first.
    const issue = parsed.error.issues.find((i) => i.code === 'unrecognized_keys') ?? parsed.error.issues[0]!;
    const where = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      const line = keyLine(issue.path, key);
      const near = KEYS.split(/[ ,{}]+/).find((candidate) => candidate && candidate.toLowerCase() === key.toLowerCase());
      throw new ConfigError(`unknown key "proxy.${[...issue.path, key].join('.')}"`, {
        file,
        line,
        fix: near ? `keys are case-sensitive: write ${near}` : `the proxy section accepts: ${KEYS}`,
      });
    }
    const line = typeof raw !== 'object' || raw === null || Array.isArray(raw) ? sectionLine : nodeLine(issue.path);
    throw new ConfigError(`proxy${where ? `.${where}` : ''}: ${issue.message}`, {
      file,
      line,
      fix: issue.code === 'invalid_type' && issue.expected === 'boolean'
        ? 'write true or false (YAML booleans; yes/no and quoted strings are not booleans)'
        : `the proxy section accepts: ${KEYS}`,
    });
  }
  const section = parsed.data;
  const at = (path: (string | number)[]): SettingOrigin => ({ file, line: nodeLine(path) });
  const tri = (value: boolean | undefined) => (value === undefined ? 'unspecified' : value ? 'true' : 'false') as 'true' | 'false' | 'unspecified';

  if (section.enabled !== undefined) {
    layer.enabled = section.enabled;
    layer.origins.enabled = at(['enabled']);
  }
  if (section.useDefaultCredentials !== undefined) {
    layer.useDefaultCredentials = section.useDefaultCredentials;
    layer.origins.useDefaultCredentials = at(['useDefaultCredentials']);
  }
  for (const [key, name] of [['autoDetect', 'autoDetect'], ['bypassOnLocal', 'bypassOnLocal'], ['useSystemDefault', 'useSystemDefault']] as const) {
    if (section[key] !== undefined) {
      layer.proxy[name] = tri(section[key]);
      layer.origins[name] = at([key]);
    }
  }
  if (section.address !== undefined) {
    layer.origins.address = at(['address']);
    layer.proxy.address = validateProxyAddress(section.address, 'ferry-yaml', layer.origins.address, 'proxy.address');
  }
  if (section.scriptLocation !== undefined) {
    layer.origins.scriptLocation = at(['scriptLocation']);
    layer.proxy.scriptLocation = validateScriptLocation(section.scriptLocation, layer.origins.scriptLocation, 'proxy.scriptLocation');
  }
  if (section.bypassList !== undefined) {
    layer.origins.bypassList = at(['bypassList']);
    section.bypassList.forEach((pattern, index) => {
      if (!layer.bypassList.some((entry) => entry.pattern === pattern)) {
        layer.bypassList.push(compileBypassEntry(pattern, at(['bypassList', index]), 'proxy.bypassList entry'));
      }
    });
  }
  if (section.credentials) {
    layer.credentials = { ...section.credentials };
    layer.origins.credentials = at(['credentials']);
  }
  if (section.wpad) {
    layer.wpad = { ...section.wpad };
    if (layer.wpad.domainSuffix) layer.wpad.domainSuffix = layer.wpad.domainSuffix.replace(/\.$/, '').toLowerCase();
    layer.origins.wpad = at(['wpad']);
  }
  return layer;
}
