import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../shared/errors.js';
import { loadOptionalProxySettingsFile, loadProxySettingsFile, parseProxySettings, type ProxySettingsLayer } from './proxy-settings.js';

const xml = (inner: string): string => `<?xml version="1.0" encoding="utf-8" ?>
<configuration>
  <system.net>
    ${inner}
  </system.net>
</configuration>
`;
const section = (attrs: string, body = ''): string => xml(`<defaultProxy ${attrs}>${body}</defaultProxy>`);
const proxyEl = (attrs: string): string => xml(`<defaultProxy><proxy ${attrs}/></defaultProxy>`);

function parse(text: string): ProxySettingsLayer {
  return parseProxySettings(text, 'app.config');
}

function expectConfigError(text: string, line: number, messagePart: RegExp, fixPart?: RegExp, file = 'app.config'): void {
  assert.throws(() => parseProxySettings(text, file), (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.file, file);
    assert.equal(error.line, line, `line of: ${error.message}`);
    assert.match(error.message, messagePart);
    if (fixPart) assert.match(error.fix ?? '', fixPart);
    return true;
  });
}

test('XML: a <configuration> without defaultProxy defines nothing (the machine file decides)', () => {
  const layer = parse(xml('<settings><httpWebRequest useUnsafeHeaderParsing="true"/></settings>'));
  assert.equal(layer.defined, false);
  assert.equal(layer.format, 'dotnet-config');
});

test('XML: an empty <defaultProxy/> is defined, with all defaults', () => {
  const layer = parse(xml('<defaultProxy/>'));
  assert.equal(layer.defined, true);
  assert.equal(layer.enabled, true);
  assert.equal(layer.useDefaultCredentials, false);
  assert.deepEqual(layer.proxy, { autoDetect: 'unspecified', bypassOnLocal: 'unspecified', useSystemDefault: 'unspecified' });
  assert.deepEqual(layer.origins.section, { file: 'app.config', line: 4 });
});

test('XML: a defaultProxy outside system.net is not the section', () => {
  assert.equal(parse('<configuration><defaultProxy enabled="false"/></configuration>').defined, false);
});

// Boolean.Parse for enabled / useDefaultCredentials.
for (const attr of ['enabled', 'useDefaultCredentials'] as const) {
  for (const [value, expected] of [['true', true], ['false', false], ['TRUE', true], ['False', false], [' true ', true]] as const) {
    test(`XML: ${attr}="${value}" → ${expected}`, () => {
      const layer = parse(section(`${attr}="${value}"`));
      assert.equal(layer[attr], expected);
      assert.equal(layer.origins[attr]?.line, 4);
    });
  }
  for (const value of ['yes', '1', '', 'on']) {
    test(`XML: ${attr}="${value}" is a configuration error`, () => {
      expectConfigError(section(`${attr}="${value}"`), 4, new RegExp(`${attr}="${value}" is not a Boolean`), /true.*false/);
    });
  }
}

// Tri-states, case-insensitive.
for (const [attr, key] of [['autoDetect', 'autoDetect'], ['bypassonlocal', 'bypassOnLocal'], ['usesystemdefault', 'useSystemDefault']] as const) {
  for (const [value, expected] of [['True', 'true'], ['false', 'false'], ['FALSE', 'false'], ['Unspecified', 'unspecified'], ['tRuE', 'true']] as const) {
    test(`XML: proxy ${attr}="${value}" → ${expected}`, () => {
      const layer = parse(proxyEl(`${attr}="${value}"`));
      assert.equal(layer.proxy[key], expected);
      assert.equal(layer.origins[key]?.line, 4);
    });
  }
  for (const value of ['yes', '1', 'maybe']) {
    test(`XML: proxy ${attr}="${value}" is a configuration error`, () => {
      expectConfigError(proxyEl(`${attr}="${value}"`), 4, /is not one of True, False, Unspecified/);
    });
  }
}

const addressCases: { value: string; ok?: string; error?: RegExp; fix?: RegExp }[] = [
  { value: 'http://proxyserver:8080', ok: 'http://proxyserver:8080' },
  { value: 'http://192.168.1.10:3128', ok: 'http://192.168.1.10:3128' },
  { value: 'http://proxy', ok: 'http://proxy' },
  { value: 'http://proxy:80/', ok: 'http://proxy' },
  { value: 'HTTP://Proxy.Corp:8080', ok: 'http://proxy.corp:8080' },
  { value: 'http://[fd00::1]:3128', ok: 'http://[fd00::1]:3128' },
  { value: 'proxyserver:8080', error: /has no http:\/\/ prefix/, fix: /write it as http:\/\/proxyserver:8080/ },
  { value: '192.168.1.10:3128', error: /has no http:\/\/ prefix/, fix: /http:\/\/192\.168\.1\.10:3128/ },
  { value: 'proxyserver', error: /has no http:\/\/ prefix/ },
  { value: 'localhost:8888', error: /has no http:\/\/ prefix/ },
  { value: 'https://proxy:443', error: /unsupported scheme https/, fix: /only http:\/\// },
  { value: 'socks5://proxy:1080', error: /unsupported scheme socks5/ },
  { value: 'http://user:secret@proxy:8080', error: /contains credentials/ },
  { value: 'http://proxy:8080/path', error: /path, query or fragment/ },
  { value: 'http://', error: /not a valid URL|no host/ },
  { value: '', error: /is empty/ },
];
for (const c of addressCases) {
  test(`XML: proxyaddress="${c.value}" → ${c.ok ?? 'error'}`, () => {
    const text = proxyEl(`proxyaddress="${c.value}"`);
    if (c.ok) {
      assert.equal(parse(text).proxy.address, c.ok);
    } else {
      expectConfigError(text, 4, c.error!, c.fix);
      // The credentials never reach the message.
      assert.throws(() => parse(text), (e: Error) => !e.message.includes('secret') || /contains credentials/.test(e.message));
    }
  });
}

const scriptCases: { value: string; ok: boolean }[] = [
  { value: 'http://wpad.corp/proxy.pac', ok: true },
  { value: 'https://pac.corp/proxy.pac', ok: true },
  { value: 'file:///etc/ferry/proxy.pac', ok: true },
  { value: 'ftp://pac.corp/proxy.pac', ok: false },
  { value: 'proxy.pac', ok: false },
  { value: '/etc/proxy.pac', ok: false },
];
for (const c of scriptCases) {
  test(`XML: scriptLocation="${c.value}" → ${c.ok ? 'ok' : 'error'}`, () => {
    const text = proxyEl(`scriptLocation="${c.value}"`);
    if (c.ok) assert.equal(parse(text).proxy.scriptLocation, new URL(c.value).href);
    else expectConfigError(text, 4, /not an absolute http, https or file URL/);
  });
}

test('XML: names are case-sensitive; the fix names the right spelling', () => {
  expectConfigError(proxyEl('proxyAddress="http://p:1"'), 4, /unrecognized attribute 'proxyAddress'/, /write proxyaddress/);
  expectConfigError(proxyEl('autodetect="true"'), 4, /unrecognized attribute 'autodetect'/, /write autoDetect/);
  expectConfigError(section('Enabled="false"'), 4, /unrecognized attribute 'Enabled'/, /write enabled/);
  expectConfigError(section('', '<Proxy/>'), 4, /unrecognized element <Proxy>/);
  expectConfigError(section('', '<bypassList/>'), 4, /unrecognized element <bypassList>/);
  expectConfigError(section('foo="1"'), 4, /unrecognized attribute 'foo'/);
});

test('XML: a miscased <defaultproxy> or <System.Net> is an error, not a section silently skipped', () => {
  expectConfigError('<configuration>\n  <system.net>\n    <defaultproxy enabled="false"/>\n  </system.net>\n</configuration>', 3, /unrecognized element <defaultproxy> inside <system.net>: element names are case-sensitive/, /write <defaultProxy>/);
  expectConfigError('<configuration>\n  <System.Net>\n    <defaultProxy enabled="false"/>\n  </System.Net>\n</configuration>', 2, /unrecognized element <System.Net>/, /write <system.net>/);
  // Other sections of an app.config, and <system.net>'s other elements, are not ours: no error.
  assert.equal(parse('<configuration><appSettings/><system.net><connectionManagement/><settings/></system.net></configuration>').defined, false);
});

test('XML: <module> is not supported (configuration error), an empty type is absent', () => {
  expectConfigError(section('', '<module type="Contoso.Proxy, Contoso"/>'), 4, /<module type="Contoso.Proxy, Contoso"> is not supported/, /remove the <module>/);
  assert.equal(parse(section('', '<module type=""/>')).defined, true);
});

test('XML: <proxy> twice and <defaultProxy> twice are errors', () => {
  expectConfigError(section('', '<proxy/>\n<proxy/>'), 5, /<proxy> may appear only once/);
  expectConfigError(xml('<defaultProxy/>\n<defaultProxy/>'), 5, /<defaultProxy> appears more than once/);
});

test('XML: bypasslist add/remove/clear, in document order, with lines', () => {
  const text = xml(`<defaultProxy>
      <bypasslist>
        <add address="old\\.example$"/>
        <clear/>
        <add address="contoso\\.com$"/>
        <add address="192\\.168\\.\\d{1,3}\\.\\d{1,3}"/>
        <add address="contoso\\.com$"/>
        <add address="gone"/>
        <remove address="gone"/>
      </bypasslist>
    </defaultProxy>`);
  const layer = parse(text);
  assert.deepEqual(layer.bypassList.map((e) => e.pattern), ['contoso\\.com$', '192\\.168\\.\\d{1,3}\\.\\d{1,3}']);
  assert.deepEqual(layer.bypassList.map((e) => e.origin.line), [8, 9]);
  assert.ok(layer.bypassList[0]!.regex.test('http://WWW.CONTOSO.COM'), 'case-insensitive');
  assert.ok(layer.bypassList[0]!.regex.flags.includes('i'));
});

test('XML: an invalid bypass regex (a wildcard) names the line and suggests a regex', () => {
  const text = xml(`<defaultProxy>
      <bypasslist>
        <add address="*.contoso.com"/>
      </bypasslist>
    </defaultProxy>`);
  expectConfigError(text, 6, /"\*\.contoso\.com" is not a valid regular expression/, /\\\.contoso\\\.com\$/);
});

test('XML: <add> without address is an error', () => {
  expectConfigError(section('', '<bypasslist><add/></bypasslist>'), 4, /requires the address attribute/);
});

test('XML: malformed XML names the line', () => {
  expectConfigError('<configuration>\n  <system.net>\n    <defaultProxy enabled="false">\n  </system.net>\n</configuration>\n', 4, /malformed XML/);
  expectConfigError('<configuration>\n<system.net>\n<defaultProxy enabled=false/>\n</system.net>\n</configuration>', 3, /malformed XML/);
});

test('XML: the root must be <configuration>', () => {
  expectConfigError('<defaultProxy enabled="false"/>', 1, /expected <configuration>/);
});

test('XML: attribute lines are those of the attribute in a multi-line tag', () => {
  const layer = parse(xml(`<defaultProxy>
      <proxy
        usesystemdefault="True"
        proxyaddress="http://proxy:3128"
        bypassonlocal="False"/>
    </defaultProxy>`));
  assert.equal(layer.origins.useSystemDefault?.line, 6);
  assert.equal(layer.origins.address?.line, 7);
  assert.equal(layer.origins.bypassOnLocal?.line, 8);
});

// ---- Ferry YAML ----

test('YAML: no proxy key → not defined; other keys are ignored', () => {
  const layer = parse('relay:\n  url: https://relay.example\ntunnels: 2\n');
  assert.equal(layer.defined, false);
  assert.equal(layer.format, 'ferry-yaml');
  assert.equal(parse('').defined, false);
});

test('YAML: proxy: {} and proxy: (null) are defined, empty', () => {
  assert.equal(parse('proxy: {}\n').defined, true);
  const layer = parse('other: 1\nproxy:\n');
  assert.equal(layer.defined, true);
  assert.equal(layer.origins.section?.line, 2);
});

test('YAML: every key, with lines', () => {
  const layer = parse(`relay: x
proxy:
  enabled: true
  useDefaultCredentials: false
  address: http://proxy.corp:3128
  bypassOnLocal: true
  useSystemDefault: false
  autoDetect: false
  scriptLocation: http://pac.corp/p.pac
  bypassList:
    - 'contoso\\.com$'
    - '^https://intranet'
  credentials:
    username: svc-ferry
    passwordFile: /etc/ferry/proxy.password
  wpad:
    domainSuffix: Corp.Example.com.
    dnsServers: [127.0.0.53, '10.0.0.1:5353']
`);
  assert.equal(layer.enabled, true);
  assert.equal(layer.proxy.address, 'http://proxy.corp:3128');
  assert.equal(layer.origins.address?.line, 5);
  assert.equal(layer.proxy.bypassOnLocal, 'true');
  assert.equal(layer.proxy.useSystemDefault, 'false');
  assert.equal(layer.proxy.autoDetect, 'false');
  assert.equal(layer.proxy.scriptLocation, 'http://pac.corp/p.pac');
  assert.deepEqual(layer.bypassList.map((e) => [e.pattern, e.origin.line]), [['contoso\\.com$', 11], ['^https://intranet', 12]]);
  assert.deepEqual(layer.credentials, { username: 'svc-ferry', passwordFile: '/etc/ferry/proxy.password' });
  assert.deepEqual(layer.wpad, { domainSuffix: 'corp.example.com', dnsServers: ['127.0.0.53', '10.0.0.1:5353'] });
});

test('YAML: proxy.credentials.scheme (basic, ntlm, any) is kept with the credentials', () => {
  const layer = parse('proxy:\n  credentials:\n    username: CORP\\svc\n    passwordFile: /etc/ferry/p\n    scheme: ntlm\n');
  assert.deepEqual(layer.credentials, { username: 'CORP\\svc', passwordFile: '/etc/ferry/p', scheme: 'ntlm' });
  const kerberos = parse('proxy:\n  credentials:\n    scheme: negotiate\n    keytab: /etc/ferry/ferry.keytab\n');
  assert.deepEqual(kerberos.credentials, { scheme: 'negotiate', keytab: '/etc/ferry/ferry.keytab' });
});

test('YAML: https and socks5 proxies are allowed, a bare host:port is not', () => {
  assert.equal(parse('proxy:\n  address: https://proxy:443\n').proxy.address, 'https://proxy');
  assert.equal(parse('proxy:\n  address: socks5://proxy:1080\n').proxy.address, 'socks5://proxy:1080');
  expectConfigError('proxy:\n  enabled: true\n  address: proxyserver:8080\n', 3, /has no http:\/\/ prefix/, /http:\/\/proxyserver:8080/, 'connector.yaml');
});

const yamlErrors: { text: string; line: number; message: RegExp; fix?: RegExp }[] = [
  { text: 'proxy:\n  adress: http://p:1\n', line: 2, message: /unknown key "proxy.adress"/, fix: /accepts/ },
  { text: 'proxy:\n  bypassonlocal: true\n', line: 2, message: /unknown key "proxy.bypassonlocal"/, fix: /write bypassOnLocal/ },
  { text: 'proxy:\n  enabled: yes\n', line: 2, message: /proxy.enabled: Expected boolean/, fix: /true or false/ },
  { text: 'proxy:\n  autoDetect: "true"\n', line: 2, message: /proxy.autoDetect/ },
  { text: 'proxy:\n  bypassList:\n    - ok\n    - "*.contoso.com"\n', line: 4, message: /not a valid regular expression/ },
  { text: 'proxy:\n  wpad:\n    dnsServers: [dns.corp]\n', line: 3, message: /dnsServers.0: must be an IP address/ },
  { text: 'proxy:\n  wpad:\n    domainSuffix: corp\n', line: 3, message: /at least two labels/ },
  { text: 'proxy:\n  credentials:\n    username: a\n    password: b\n', line: 4, message: /unknown key "proxy.credentials.password"/ },
  { text: 'proxy:\n  credentials:\n    username: a\n    passwordFile: /p\n    scheme: kerberos\n', line: 5, message: /proxy.credentials.scheme: .*'basic' \| 'ntlm' \| 'any' \| 'negotiate'/ },
  { text: 'proxy:\n  credentials:\n    username: a\n', line: 3, message: /proxy.credentials.passwordFile: passwordFile is required for scheme basic/ },
  { text: 'proxy:\n  credentials:\n    scheme: negotiate\n    passwordFile: /p\n', line: 4, message: /never a password: remove passwordFile/ },
  { text: 'proxy:\n  credentials:\n    username: a\n    passwordFile: /p\n    keytab: /k\n', line: 5, message: /keytab is for scheme negotiate only/ },
  { text: 'proxy:\n  scriptLocation: proxy.pac\n', line: 2, message: /not an absolute http, https or file URL/ },
  { text: 'proxy: [1, 2]\n', line: 1, message: /Expected object/ },
  { text: 'proxy:\n  enabled: true\n   address: x\n', line: 2, message: /malformed YAML/ },
  { text: 'proxy:\n  enabled: true\n  enabled: false\n', line: 3, message: /malformed YAML/ },
];
for (const c of yamlErrors) {
  test(`YAML error: ${JSON.stringify(c.text)}`, () => expectConfigError(c.text, c.line, c.message, c.fix, 'connector.yaml'));
}

// ---- files ----

test('loadProxySettingsFile: missing file is a ConfigError; the optional loader returns undefined', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-cfg-'));
  try {
    await assert.rejects(loadProxySettingsFile(join(dir, 'nope.yaml')), (e: unknown) => e instanceof ConfigError && /ENOENT/.test(e.message));
    assert.equal(await loadOptionalProxySettingsFile(join(dir, 'nope.yaml')), undefined);
    await writeFile(join(dir, 'machine.config'), '\uFEFF  <configuration><system.net><defaultProxy enabled="false"/></system.net></configuration>');
    const layer = await loadOptionalProxySettingsFile(join(dir, 'machine.config'));
    assert.equal(layer?.enabled, false);
    assert.equal(layer?.file, join(dir, 'machine.config'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the seed snippets load verbatim from test/fixtures/proxy', async () => {
  const fixtures = new URL('../../../test/fixtures/proxy/', import.meta.url);
  const one = await loadProxySettingsFile(new URL('seed-1-disabled.config', fixtures).pathname);
  assert.equal(one.defined, true);
  assert.equal(one.enabled, false);
  assert.equal(one.origins.enabled?.line, 4);
  const two = await loadProxySettingsFile(new URL('seed-2-proxyaddress.config', fixtures).pathname);
  assert.equal(two.proxy.address, 'http://proxyserver:8080');
  assert.equal(two.proxy.bypassOnLocal, 'true');
  assert.equal(two.proxy.useSystemDefault, 'true');
  assert.equal(two.origins.address?.line, 5);
  const three = await loadProxySettingsFile(new URL('seed-3-no-defaultproxy.config', fixtures).pathname);
  assert.equal(three.defined, false);
});
