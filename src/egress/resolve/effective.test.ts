// doc §1 and §3: from layers to the effective proxy object, one row per combination of attributes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProxySettings } from '../../config/proxy-settings.js';
import { buildEffectiveProxy, chooseLayer } from './effective.js';
import { readSystemProxy } from './system-env.js';

const cfg = (inner: string) => parseProxySettings(`<configuration>\n<system.net>\n${inner}\n</system.net>\n</configuration>\n`, 'svc.config');
const system = readSystemProxy({ HTTPS_PROXY: 'http://envproxy:3128', NO_PROXY: '.corp.example' });

interface Row {
  name: string;
  inner?: string;
  mode: 'direct' | 'webproxy';
  autoDetect?: boolean;
  script?: boolean;
  address?: string;
  systemTable?: boolean;
  bypassOnLocal?: boolean;
  bypass?: number;
  note?: RegExp;
}

const rows: Row[] = [
  { name: 'no section anywhere → system settings with auto-detection', mode: 'webproxy', autoDetect: true, systemTable: true, bypass: 1 },
  { name: 'enabled=false → no proxy', inner: '<defaultProxy enabled="false"></defaultProxy>', mode: 'direct' },
  { name: 'enabled=false wins over a proxyaddress', inner: '<defaultProxy enabled="false"><proxy proxyaddress="http://p:1"/></defaultProxy>', mode: 'direct' },
  { name: 'empty <defaultProxy/> → system with auto-detection', inner: '<defaultProxy/>', mode: 'webproxy', autoDetect: true, systemTable: true },
  { name: 'empty <proxy/> → system with auto-detection', inner: '<defaultProxy><proxy/></defaultProxy>', mode: 'webproxy', autoDetect: true, systemTable: true },
  { name: 'useDefaultCredentials alone → system with auto-detection', inner: '<defaultProxy useDefaultCredentials="true"/>', mode: 'webproxy', autoDetect: true, systemTable: true },
  { name: 'usesystemdefault=false alone → EmptyWebProxy (DIRECT)', inner: '<defaultProxy><proxy usesystemdefault="false"/></defaultProxy>', mode: 'direct' },
  { name: 'usesystemdefault=true alone → system static proxy, no auto-detection', inner: '<defaultProxy><proxy usesystemdefault="True"/></defaultProxy>', mode: 'webproxy', autoDetect: false, systemTable: true, bypass: 1 },
  { name: 'the seed line: address + bypassonlocal + usesystemdefault', inner: '<defaultProxy><proxy proxyaddress="http://proxyserver:8080" bypassonlocal="True" usesystemdefault="True"/></defaultProxy>', mode: 'webproxy', autoDetect: false, address: 'PROXY proxyserver:8080', bypassOnLocal: true, bypass: 1 },
  { name: 'proxyaddress without usesystemdefault: empty WebProxy + address, no system bypass', inner: '<defaultProxy><proxy proxyaddress="http://p:3128"/></defaultProxy>', mode: 'webproxy', address: 'PROXY p:3128', bypass: 0, systemTable: false },
  { name: 'proxyaddress without port: port 80', inner: '<defaultProxy><proxy proxyaddress="http://p"/></defaultProxy>', mode: 'webproxy', address: 'PROXY p:80' },
  { name: 'autoDetect=true alone → WPAD, no manual address', inner: '<defaultProxy><proxy autoDetect="true"/></defaultProxy>', mode: 'webproxy', autoDetect: true, systemTable: false },
  { name: 'autoDetect=false alone → nothing (DIRECT manual)', inner: '<defaultProxy><proxy autoDetect="false"/></defaultProxy>', mode: 'webproxy', autoDetect: false, systemTable: false },
  { name: 'usesystemdefault=true + autoDetect=true → empty WebProxy with WPAD (no system table)', inner: '<defaultProxy><proxy usesystemdefault="true" autoDetect="true"/></defaultProxy>', mode: 'webproxy', autoDetect: true, systemTable: false },
  { name: 'scriptLocation alone → PAC', inner: '<defaultProxy><proxy scriptLocation="http://pac/p.pac"/></defaultProxy>', mode: 'webproxy', script: true, autoDetect: false },
  { name: 'autoDetect + proxyaddress → script engine deleted', inner: '<defaultProxy><proxy autoDetect="true" proxyaddress="http://p:1"/></defaultProxy>', mode: 'webproxy', autoDetect: false, address: 'PROXY p:1', note: /autoDetect ignored: proxyaddress/ },
  { name: 'scriptLocation + bypassonlocal → script ignored (D2)', inner: '<defaultProxy><proxy scriptLocation="http://pac/p.pac" bypassonlocal="false"/></defaultProxy>', mode: 'webproxy', script: false, note: /scriptLocation ignored: bypassonlocal/ },
  { name: 'scriptLocation + bypass list → script ignored', inner: '<defaultProxy><proxy scriptLocation="http://pac/p.pac"/><bypasslist><add address="x"/></bypasslist></defaultProxy>', mode: 'webproxy', script: false, bypass: 1, note: /scriptLocation ignored: the bypass list/ },
  { name: 'bypassonlocal alone → empty WebProxy: DIRECT for all', inner: '<defaultProxy><proxy bypassonlocal="true"/></defaultProxy>', mode: 'webproxy', bypassOnLocal: true, systemTable: false },
  { name: 'bypass list alone → empty WebProxy', inner: '<defaultProxy><bypasslist><add address="x"/></bypasslist></defaultProxy>', mode: 'webproxy', bypass: 1, systemTable: false },
  { name: 'usesystemdefault=true + bypass list: list replaces NO_PROXY', inner: '<defaultProxy><proxy usesystemdefault="true"/><bypasslist><add address="a"/><add address="b"/></bypasslist></defaultProxy>', mode: 'webproxy', systemTable: true, bypass: 2 },
  { name: 'bypass list cleared to empty → counts as not set (system default)', inner: '<defaultProxy><bypasslist><add address="x"/><clear/></bypasslist></defaultProxy>', mode: 'webproxy', autoDetect: true, systemTable: true },
];

for (const row of rows) {
  test(`§3: ${row.name}`, () => {
    const layer = row.inner === undefined ? undefined : cfg(row.inner);
    const eff = buildEffectiveProxy(layer, system, 'config');
    assert.equal(eff.mode, row.mode);
    if (row.autoDetect !== undefined) assert.equal(eff.autoDetect, row.autoDetect, 'autoDetect');
    if (row.script !== undefined) assert.equal(Boolean(eff.scriptLocation), row.script, 'scriptLocation');
    if (row.address !== undefined) assert.equal(eff.address && `${eff.address.route.kind} ${eff.address.route.host}:${eff.address.route.port}`, row.address);
    if (row.systemTable !== undefined) assert.equal(Boolean(eff.perScheme), row.systemTable, 'system per-scheme table');
    if (row.bypassOnLocal !== undefined) assert.equal(eff.bypassOnLocal, row.bypassOnLocal);
    if (row.bypass !== undefined) assert.equal(eff.bypass.length, row.bypass, 'bypass rules');
    if (row.note) assert.ok(eff.notes.some((n) => row.note!.test(n)), `notes: ${eff.notes.join(' | ')}`);
    else assert.ok(!eff.notes.some((n) => /ignored/.test(n)), `unexpected notes: ${eff.notes.join(' | ')}`);
  });
}

test('§1: the service section replaces the machine section entirely; a service file without one defers', () => {
  const machine = cfg('<defaultProxy><proxy proxyaddress="http://machine:3128"/><bypasslist><add address="m"/></bypasslist></defaultProxy>');
  const serviceEmpty = cfg('<defaultProxy/>');
  const serviceNone = parseProxySettings('<configuration><runtime/></configuration>', 'svc.config');
  assert.equal(chooseLayer(serviceEmpty, machine), serviceEmpty);
  assert.equal(chooseLayer(serviceNone, machine), machine);
  assert.equal(chooseLayer(undefined, machine), machine);
  assert.equal(chooseLayer(serviceNone, undefined), undefined);
  // Nothing of the machine's section leaks into the service's empty one.
  const eff = buildEffectiveProxy(chooseLayer(serviceEmpty, machine), system, 'config');
  assert.equal(eff.address, undefined);
  assert.ok(eff.bypass.every((b) => !/regex "m"/.test(b.describe)));
});

test('enabled=false provenance names the file and line', () => {
  const eff = buildEffectiveProxy(cfg('<defaultProxy\n enabled="false"/>'), system, 'machine-config');
  assert.equal(eff.source, 'machine-config');
  assert.equal(eff.line, 4);
  assert.match(eff.basis, /svc\.config:4 enabled=false/);
});
