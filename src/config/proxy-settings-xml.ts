// The .NET `.config` reader for `configuration/system.net/defaultProxy` (doc §2). Element and
// attribute names are exact and case-sensitive, as System.Configuration treats them; everything
// outside the defaultProxy element (runtime, appSettings, other system.net sections) is ignored.
import { SaxesParser } from 'saxes';
import { ConfigError } from '../shared/errors.js';
import {
  compileBypassEntry,
  emptyProxySettingsLayer,
  parseDotnetBoolean,
  parseTriState,
  validateProxyAddress,
  validateScriptLocation,
  type ProxySettingsLayer,
  type SettingOrigin,
  type TriState,
} from './proxy-settings.js';

const ALLOWED_ATTRIBUTES: Record<string, readonly string[]> = {
  defaultProxy: ['enabled', 'useDefaultCredentials'],
  proxy: ['autoDetect', 'bypassonlocal', 'proxyaddress', 'scriptLocation', 'usesystemdefault'],
  bypasslist: [],
  add: ['address'],
  remove: ['address'],
  clear: [],
  module: ['type'],
};

const CHILDREN: Record<string, readonly string[]> = {
  defaultProxy: ['proxy', 'bypasslist', 'module'],
  bypasslist: ['add', 'remove', 'clear'],
  proxy: [],
  add: [],
  remove: [],
  clear: [],
  module: [],
};

const FIX_SCHEMA =
  'the defaultProxy element accepts enabled, useDefaultCredentials and the children <proxy autoDetect bypassonlocal proxyaddress scriptLocation usesystemdefault/>, <bypasslist> (add/remove/clear) — names are case-sensitive';

export function parseDotnetProxyConfig(text: string, file: string): ProxySettingsLayer {
  const layer = emptyProxySettingsLayer(file, 'dotnet-config');
  const parser = new SaxesParser({ position: true });
  const stack: string[] = [];
  let attributeLines = new Map<string, number>();
  let sections = 0;
  const seenOnce = new Set<string>();

  const fail = (message: string, line: number, fix: string): never => {
    throw new ConfigError(message, { file, line, fix });
  };
  const at = (line: number): SettingOrigin => ({ file, line });

  parser.on('error', (error) => {
    fail(`malformed XML: ${error.message.replace(/^[^:]*:\d+:\d+: /, '')}`, parser.line, 'fix the XML syntax (every element closed, attribute values quoted)');
  });
  parser.on('opentagstart', () => {
    attributeLines = new Map();
  });
  parser.on('attribute', (attribute) => {
    attributeLines.set(attribute.name, parser.line);
  });
  parser.on('text', (value) => {
    if (inSection() && value.trim() !== '') {
      fail(`unexpected text "${value.trim().slice(0, 40)}" inside <${stack[stack.length - 1]}>`, parser.line, FIX_SCHEMA);
    }
  });

  const inSection = (): boolean => stack.length >= 3 && stack[2] === 'defaultProxy';

  parser.on('opentag', (tag) => {
    const name = tag.name;
    const depth = stack.length;
    const tagLine = parser.line;
    stack.push(name);
    if (depth === 0) {
      if (name !== 'configuration') fail(`the root element is <${name}>, expected <configuration>`, tagLine, 'a .NET config file starts with <configuration>; put <system.net><defaultProxy> inside it');
      return;
    }
    // Other sections (appSettings, runtime, <system.net>'s settings...) are not ours; a miscased
    // name of ours is an error, as .NET's configuration system rejects it, never a silent skip
    // (<defaultproxy enabled="false"/> ignored would send traffic through a proxy).
    if (depth === 1 && name !== 'system.net' && name.toLowerCase() === 'system.net') {
      fail(`unrecognized element <${name}>: element names are case-sensitive`, tagLine, 'write <system.net>');
    }
    if (depth === 2 && stack[1] === 'system.net' && name !== 'defaultProxy' && name.toLowerCase() === 'defaultproxy') {
      fail(`unrecognized element <${name}> inside <system.net>: element names are case-sensitive`, tagLine, 'write <defaultProxy>');
    }
    if (depth === 1 || (depth === 2 && name !== 'defaultProxy') || stack[1] !== 'system.net') return;
    if (depth > 2 && !inSection()) return;
    if (depth === 2) {
      sections += 1;
      if (sections > 1) fail('<defaultProxy> appears more than once', tagLine, 'keep a single <defaultProxy> element in <system.net>');
      layer.defined = true;
      layer.origins.section = at(tagLine);
      applyAttributes('defaultProxy', tag.attributes as Record<string, string>, tagLine);
      return;
    }
    const parent = stack[depth - 1] ?? '';
    if (!(CHILDREN[parent] ?? []).includes(name)) {
      fail(`unrecognized element <${name}> inside <${parent}>`, tagLine, FIX_SCHEMA);
    }
    if ((name === 'proxy' || name === 'bypasslist' || name === 'module') && seenOnce.has(name)) {
      fail(`<${name}> may appear only once inside <defaultProxy>`, tagLine, `merge the <${name}> elements into one`);
    }
    seenOnce.add(name);
    applyAttributes(name, tag.attributes as Record<string, string>, tagLine);
    // <clear/> empties the entries before it in this <bypasslist>; nothing is inherited anyway (doc §1).
    if (name === 'clear') layer.bypassList = [];
  });
  parser.on('closetag', () => {
    stack.pop();
  });

  function applyAttributes(element: string, attributes: Record<string, string>, tagLine: number): void {
    const allowed = ALLOWED_ATTRIBUTES[element] ?? [];
    for (const [attr, value] of Object.entries(attributes)) {
      const line = attributeLines.get(attr) ?? tagLine;
      if (attr === 'xmlns' || attr.startsWith('xmlns:')) continue;
      if (!allowed.includes(attr)) {
        const near = allowed.find((candidate) => candidate.toLowerCase() === attr.toLowerCase());
        fail(`unrecognized attribute '${attr}' on <${element}>`, line, near
          ? `attribute names are case-sensitive: write ${near}`
          : allowed.length ? `<${element}> accepts only: ${allowed.join(', ')}` : `<${element}> takes no attributes`);
      }
      applyAttribute(element, attr, value, line);
    }
    if ((element === 'add' || element === 'remove') && attributes.address === undefined) {
      fail(`<${element}> requires the address attribute`, tagLine, `write <${element} address="REGEX"/>`);
    }
  }

  function applyAttribute(element: string, attr: string, value: string, line: number): void {
    const origin = at(line);
    const bool = (): boolean => {
      const parsed = parseDotnetBoolean(value);
      if (parsed === undefined) fail(`${attr}="${value}" is not a Boolean`, line, `write ${attr}="true" or ${attr}="false"`);
      return parsed as boolean;
    };
    const tri = (): TriState => {
      const parsed = parseTriState(value);
      if (parsed === undefined) fail(`${attr}="${value}" is not one of True, False, Unspecified`, line, `write ${attr}="True" or ${attr}="False"`);
      return parsed as TriState;
    };
    switch (`${element}@${attr}`) {
      case 'defaultProxy@enabled':
        layer.enabled = bool();
        layer.origins.enabled = origin;
        return;
      case 'defaultProxy@useDefaultCredentials':
        layer.useDefaultCredentials = bool();
        layer.origins.useDefaultCredentials = origin;
        return;
      case 'proxy@autoDetect':
        layer.proxy.autoDetect = tri();
        layer.origins.autoDetect = origin;
        return;
      case 'proxy@bypassonlocal':
        layer.proxy.bypassOnLocal = tri();
        layer.origins.bypassOnLocal = origin;
        return;
      case 'proxy@usesystemdefault':
        layer.proxy.useSystemDefault = tri();
        layer.origins.useSystemDefault = origin;
        return;
      case 'proxy@proxyaddress':
        layer.proxy.address = validateProxyAddress(value, 'dotnet-config', origin, 'proxyaddress');
        layer.origins.address = origin;
        return;
      case 'proxy@scriptLocation':
        layer.proxy.scriptLocation = validateScriptLocation(value, origin, 'scriptLocation');
        layer.origins.scriptLocation = origin;
        return;
      case 'add@address':
        // Duplicates do not throw in .NET ("Everett compatibility"); the first entry for a key stays.
        if (!layer.bypassList.some((entry) => entry.pattern === value)) {
          layer.bypassList.push(compileBypassEntry(value, origin, '<bypasslist> address'));
        }
        layer.origins.bypassList ??= origin;
        return;
      case 'remove@address':
        layer.bypassList = layer.bypassList.filter((entry) => entry.pattern !== value);
        return;
      case 'module@type':
        if (value.trim() === '') return; // an empty type is treated as absent (doc §8)
        fail(`<module type="${value}"> is not supported: Ferry cannot load .NET proxy classes`, line,
          'remove the <module> element and express the proxy with <proxy> and <bypasslist>, or a PAC script (scriptLocation)');
    }
  }

  // saxes keeps one handler per event: every listener above is registered exactly once.
  parser.write(text).close();
  return layer;
}
