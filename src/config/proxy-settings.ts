// src/config — reading and validating configuration files into typed, provenance-carrying models.
// Imports src/shared only (never egress, cli or the services).
//
// This file owns one proxy settings layer: the .NET `<system.net><defaultProxy>` model (see
// /work/shared/dotnet-defaultproxy.md, "the doc" below) plus Ferry's extras, read either from a .NET
// `.config` file (content starting with `<`) or from the `proxy:` key of a Ferry YAML file. A layer is
// all-or-nothing: it loads completely or throws a ConfigError naming the file, the line and the fix.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../shared/errors.js';
import { isXmlText, parseYamlText } from './yaml-file.js';
import { parseDotnetProxyConfig } from './proxy-settings-xml.js';
import { parseYamlProxyConfig } from './proxy-settings-yaml.js';
import type { ProxyAuthScheme } from './proxy-settings-yaml.js';

/** The .NET tri-state enums (`autoDetect`, `bypassonlocal`, `usesystemdefault`), default Unspecified. */
export type TriState = 'true' | 'false' | 'unspecified';

/** Where a setting was written. */
export interface SettingOrigin {
  file: string;
  line: number;
}

export type ProxySettingName =
  | 'section'
  | 'enabled'
  | 'useDefaultCredentials'
  | 'autoDetect'
  | 'bypassOnLocal'
  | 'address'
  | 'scriptLocation'
  | 'useSystemDefault'
  | 'bypassList'
  | 'module'
  | 'credentials'
  | 'wpad';

/** One `<bypasslist><add address="REGEX"/>` entry (or YAML `bypassList` item). */
export interface BypassEntry {
  /** The pattern as written: a .NET regular expression. */
  pattern: string;
  /** Compiled case-insensitively; matched unanchored against `scheme://host[:port]` (doc §6). */
  regex: RegExp;
  origin: SettingOrigin;
}

/**
 * Ferry extra (YAML only): how the services authenticate to the proxy. basic, ntlm and any need
 * `username` and `passwordFile` (the password is read at dial time, never kept in config);
 * negotiate uses the service's Kerberos identity: `keytab`, else the credential cache, and
 * `username` names the principal when the keytab holds several.
 */
export interface ConfiguredProxyCredentials {
  username?: string;
  passwordFile?: string;
  scheme?: ProxyAuthScheme;
  keytab?: string;
  /**
   * Not a YAML key: set for `useDefaultCredentials` without credentials, which is Negotiate with
   * the service's own Kerberos identity offered only when a proxy asks for it (a 407 offering
   * Negotiate), so an open proxy never sees a ticket nor fails for the want of one.
   */
  onlyWhenAsked?: boolean;
}

export interface ProxySettingsLayer {
  file: string;
  format: 'dotnet-config' | 'ferry-yaml';
  /**
   * Whether the file defines the proxy section at all. A file without it lets the next layer
   * (machine-wide) decide; a file with it, even empty, replaces that layer entirely (doc §1).
   */
  defined: boolean;
  /** `enabled` (default true): false means no proxy object, every request DIRECT. */
  enabled: boolean;
  /** Informational: stored, the connector authenticates only with `credentials` (Ferry extra). */
  useDefaultCredentials: boolean;
  proxy: {
    autoDetect: TriState;
    bypassOnLocal: TriState;
    /** Canonical proxy URL (`http://host[:port]`, YAML also https/socks4/socks5), no credentials. */
    address?: string;
    /** Explicit PAC URL (http, https or file). */
    scriptLocation?: string;
    useSystemDefault: TriState;
  };
  bypassList: BypassEntry[];
  /** Ferry extra (YAML only): proxy credentials, password read from a file by the dialer. */
  credentials?: ConfiguredProxyCredentials;
  /** Ferry extra (YAML only): WPAD discovery settings. */
  /** `port`: where wpad.dat is served (default 80; for test networks). */
  wpad?: { domainSuffix?: string; dnsServers?: string[]; port?: number };
  /** File line of every setting that was written. */
  origins: Partial<Record<ProxySettingName, SettingOrigin>>;
}

/** A layer that defines nothing (a file without a proxy section). */
export function emptyProxySettingsLayer(file: string, format: ProxySettingsLayer['format']): ProxySettingsLayer {
  return {
    file,
    format,
    defined: false,
    enabled: true,
    useDefaultCredentials: false,
    proxy: { autoDetect: 'unspecified', bypassOnLocal: 'unspecified', useSystemDefault: 'unspecified' },
    bypassList: [],
    origins: {},
  };
}

/** Reads one proxy settings file: XML (.NET `.config`) when the content starts with `<`, else Ferry YAML. */
export async function loadProxySettingsFile(path: string): Promise<ProxySettingsLayer> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'read error';
    throw new ConfigError(`cannot read the configuration file (${code})`, {
      file: path,
      fix: 'check the path and that the file is readable by the service account',
    }, { cause: error });
  }
  return parseProxySettings(text, path);
}

/**
 * Like loadProxySettingsFile, but a missing file means "no layer" (the machine-wide file is
 * optional); any other problem is still a configuration error.
 */
export async function loadOptionalProxySettingsFile(path: string): Promise<ProxySettingsLayer | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return loadProxySettingsFile(path);
  }
  return parseProxySettings(text, path);
}

/** Where a service's proxy settings are read from. */
export interface ProxySources {
  /** The file named by `proxyConfig` (relative to the config file), else the config file itself. */
  proxySettingsFile: string | undefined;
  /** The machine-wide file named by `machineConfig`, else undefined (the caller's default). */
  machineConfig: string | undefined;
}

const SOURCE_KEYS = z.object({ proxyConfig: z.string().optional(), machineConfig: z.string().optional() }).passthrough();

/**
 * Where the service whose config file is `file` reads its proxy settings: the file its
 * `proxyConfig` key names, else the file itself (its `proxy:` section, or a whole .NET .config),
 * and the machine-wide file its `machineConfig` key names; relative paths are the config file's.
 * `keys` are the file's values when the caller parsed it already (the services' own loaders);
 * without them the file is read here (`proxy show --config`, `doctor --updater-config`), so a
 * command that takes any service's file sees what that service would.
 */
export function proxySourcesOf(file: string | undefined, keys?: { proxyConfig?: string | undefined; machineConfig?: string | undefined }): ProxySources {
  if (file === undefined) return { proxySettingsFile: undefined, machineConfig: undefined };
  let given = keys;
  if (!given) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // Unreadable: the settings loader reports it with the fix.
      return { proxySettingsFile: file, machineConfig: undefined };
    }
    given = isXmlText(text) ? {} : parseYamlText(text, file, SOURCE_KEYS).value;
  }
  const base = path.dirname(path.resolve(file));
  return {
    proxySettingsFile: given.proxyConfig ? path.resolve(base, given.proxyConfig) : file,
    machineConfig: given.machineConfig ? path.resolve(base, given.machineConfig) : undefined,
  };
}

/** Parses file content; `file` is used for provenance and error messages. */
export function parseProxySettings(text: string, file: string): ProxySettingsLayer {
  const body = text.replace(/^\uFEFF/, '');
  if (isXmlText(body)) return parseDotnetProxyConfig(body, file);
  return parseYamlProxyConfig(body, file);
}

/** Boolean.Parse: `true`/`false` in any letter case, surrounding white space allowed. */
export function parseDotnetBoolean(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  return undefined;
}

/** The tri-state enums, parsed case-insensitively (doc §2). */
export function parseTriState(value: string): TriState | undefined {
  const v = value.trim().toLowerCase();
  return v === 'true' || v === 'false' || v === 'unspecified' ? v : undefined;
}

const XML_PROXY_SCHEMES = new Set(['http:']);
const YAML_PROXY_SCHEMES = new Set(['http:', 'https:', 'socks4:', 'socks5:']);

/**
 * Validates a proxy address and returns its canonical form. Ferry rejects what .NET would accept
 * and then fail on at every request (doc §9): no scheme, a non-http scheme in a .NET file.
 */
export function validateProxyAddress(text: string, format: ProxySettingsLayer['format'], where: SettingOrigin, settingName: string): string {
  const value = text.trim();
  const fail = (problem: string, fix: string): never => {
    throw new ConfigError(`${settingName} "${value}" ${problem}`, { file: where.file, line: where.line, fix });
  };
  if (value === '') fail('is empty', 'write the proxy as http://host:port, or remove the setting');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    fail('has no http:// prefix', `write it as http://${value} (the prefix is required even for an IP address)`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail('is not a valid URL', 'write the proxy as http://host:port');
  }
  const allowed = format === 'dotnet-config' ? XML_PROXY_SCHEMES : YAML_PROXY_SCHEMES;
  if (!allowed.has(url.protocol)) {
    fail(`uses the unsupported scheme ${url.protocol.slice(0, -1)}`, format === 'dotnet-config'
      ? `.NET accepts only http:// proxies (others fail every request): write http://${url.host}, or use Ferry's YAML config for https/socks5 proxies`
      : `use one of http://, https://, socks4://, socks5://`);
  }
  if (url.username || url.password) {
    fail('contains credentials', format === 'dotnet-config'
      ? 'remove user:password@ from the address; proxy credentials are configured in Ferry\'s YAML config (proxy.credentials)'
      : 'remove user:password@ from the address and set proxy.credentials {username, passwordFile} instead');
  }
  if (!url.hostname) fail('has no host name', 'write the proxy as http://host:port');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    fail('has a path, query or fragment', `write only the scheme, host and port: ${url.protocol}//${url.host}`);
  }
  return `${url.protocol}//${url.host}`;
}

/** Validates `scriptLocation`: an absolute http, https or file URL. */
export function validateScriptLocation(text: string, where: SettingOrigin, settingName: string): string {
  const value = text.trim();
  let url: URL | undefined;
  try {
    url = /^[a-z][a-z0-9+.-]*:/i.test(value) ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || !['http:', 'https:', 'file:'].includes(url.protocol) || (url.protocol !== 'file:' && !url.hostname)) {
    throw new ConfigError(`${settingName} "${value}" is not an absolute http, https or file URL`, {
      file: where.file,
      line: where.line,
      fix: 'write the PAC script location as a full URL, e.g. http://wpad.example.com/proxy.pac or file:///etc/ferry/proxy.pac',
    });
  }
  return url.href;
}

/**
 * Compiles one bypass entry: a .NET regular expression, case-insensitive, unanchored (doc §6).
 * A wildcard such as `*.contoso.com` is not a valid regex, as in .NET: reject it with the fix.
 */
export function compileBypassEntry(pattern: string, origin: SettingOrigin, settingName: string): BypassEntry {
  let regex: RegExp;
  try {
    if (pattern === '') throw new Error('empty');
    regex = new RegExp(pattern, 'i');
  } catch {
    const suggestion = globToRegexHint(pattern);
    throw new ConfigError(`${settingName} "${pattern}" is not a valid regular expression`, {
      file: origin.file,
      line: origin.line,
      fix: `bypass entries are regular expressions matched against scheme://host[:port], not wildcards; for example write "${suggestion}"`,
    });
  }
  return { pattern, regex, origin };
}

function globToRegexHint(pattern: string): string {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/^\.\*\\\./, '\\.');
  return escaped ? `${escaped}$` : 'contoso\\.com$';
}
