import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderRulesTable, renderSquidSnippet, requiredDestinations, rulesJson } from './rules.js';

const state = { tunnelAddresses: ['relay.example.com:8444'], publicAddresses: ['relay.example.com:443'], registrationUrl: 'https://relay.example.com:8445' };

test('auto needs the tunnel port directly and the public and registration ports through the proxy', () => {
  const d = requiredDestinations({ ...state, transport: 'auto' });
  assert.deepEqual(d.map((x) => [x.host, x.port, x.path]), [
    ['relay.example.com', 8444, 'direct'],
    ['relay.example.com', 443, 'proxy'],
    ['relay.example.com', 8445, 'proxy'],
  ]);
  assert.deepEqual(d[2]!.purposes, ['registration and certificate renewal', 'updates']);
});

test('tcp needs no public port; https needs no tunnel port; relayHost renames the advertised host', () => {
  assert.deepEqual(requiredDestinations({ ...state, transport: 'tcp' }).map((x) => x.port), [8444, 8445]);
  const https = requiredDestinations({ ...state, transport: 'https', relayHost: 'relay.corp.test' });
  assert.deepEqual(https.map((x) => `${x.host}:${x.port}`), ['relay.corp.test:443', 'relay.corp.test:8445']);
});

test('a separate update host is listed on its own', () => {
  const d = requiredDestinations({ ...state, transport: 'https', updateUrl: 'https://updates.example.net/ferry' });
  assert.deepEqual(d.at(-1), { host: 'updates.example.net', port: 443, path: 'proxy', purposes: ['updates'] });
});

test('the Squid snippet pairs each host with its own ports and allows only CONNECT', () => {
  const snippet = renderSquidSnippet(requiredDestinations({ ...state, transport: 'auto', updateUrl: 'https://10.1.2.3:9443/' }));
  assert.match(snippet, /^acl ferry_connect method CONNECT$/m);
  assert.match(snippet, /^acl ferry_dst_1 dstdomain relay\.example\.com$/m);
  assert.match(snippet, /^acl ferry_ports_1 port 443 8445$/m);
  assert.match(snippet, /^http_access allow ferry_connect ferry_dst_1 ferry_ports_1$/m);
  assert.match(snippet, /^acl ferry_dst_2 dst 10\.1\.2\.3$/m);
  assert.match(snippet, /^acl ferry_ports_2 port 9443$/m);
  assert.doesNotMatch(snippet, /port[^\n]*8444/);
  assert.match(snippet, /directly.*relay\.example\.com:8444/);
});

test('table and JSON', () => {
  const d = requiredDestinations({ ...state, transport: 'auto' });
  const table = renderRulesTable(d);
  assert.match(table, /^Host\s+Port\s+Protocol\s+Path\s+Used for$/m);
  assert.match(table, /relay\.example\.com\s+8444\s+TCP\/TLS\s+direct \(firewall\)/);
  assert.deepEqual((rulesJson(d) as { destinations: unknown[] }).destinations[0], { host: 'relay.example.com', port: 8444, protocol: 'tcp', path: 'direct', purposes: ['tunnel (transport auto, tried first)'] });
});
