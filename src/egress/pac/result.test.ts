import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRoute, parsePacResult } from './result.js';
import type { Route } from '../types.js';

test('parsePacResult: valid entries', () => {
  const cases: [string, Route[]][] = [
    ['DIRECT', [{ kind: 'DIRECT' }]],
    ['', [{ kind: 'DIRECT' }]],
    ['   ', [{ kind: 'DIRECT' }]],
    ['PROXY proxy.corp:8080', [{ kind: 'PROXY', host: 'proxy.corp', port: 8080 }]],
    ['proxy a:1; direct', [{ kind: 'PROXY', host: 'a', port: 1 }, { kind: 'DIRECT' }]],
    ['HTTP a:80', [{ kind: 'PROXY', host: 'a', port: 80 }]],
    ['HTTPS secure.corp:443', [{ kind: 'HTTPS', host: 'secure.corp', port: 443 }]],
    ['SOCKS s:1080', [{ kind: 'SOCKS4', host: 's', port: 1080 }]],
    ['SOCKS4 s:1080', [{ kind: 'SOCKS4', host: 's', port: 1080 }]],
    ['SOCKS5 s:1080', [{ kind: 'SOCKS5', host: 's', port: 1080 }]],
    ['PROXY [2001:db8::1]:3128', [{ kind: 'PROXY', host: '2001:db8::1', port: 3128 }]],
    ['PROXY 10.0.0.1:65535;', [{ kind: 'PROXY', host: '10.0.0.1', port: 65535 }]],
    ['  PROXY   a:1  ;  SOCKS5 b:2 ; DIRECT ', [{ kind: 'PROXY', host: 'a', port: 1 }, { kind: 'SOCKS5', host: 'b', port: 2 }, { kind: 'DIRECT' }]],
  ];
  for (const [text, routes] of cases) assert.deepEqual(parsePacResult(text), { routes, invalid: [] }, text);
});

test('parsePacResult: invalid entries are reported with a reason, valid ones kept', () => {
  const cases: [string, string][] = [
    ['PROXY a', 'missing :port'],
    ['PROXY a:0', 'outside 1-65535'],
    ['PROXY a:65536', 'outside 1-65535'],
    ['PROXY a:http', 'not a port number'],
    ['PROXY', 'needs host:port'],
    ['PROXY a:1 b:2', 'exactly one'],
    ['FTP a:21', 'unknown keyword'],
    ['DIRECT a:1', 'DIRECT takes no host:port'],
    ['PROXY 2001:db8::1:3128', 'brackets'],
    ['PROXY [2001:db8::1]', 'missing :port'],
    ['PROXY [zzz]:80', 'not an IPv6 address'],
    ['PROXY bad_host!:80', 'not a valid host name'],
  ];
  for (const [entry, reason] of cases) {
    const parsed = parsePacResult(`${entry}; DIRECT`);
    assert.deepEqual(parsed.routes, [{ kind: 'DIRECT' }], entry);
    assert.equal(parsed.invalid.length, 1, entry);
    assert.equal(parsed.invalid[0].entry, entry);
    assert.match(parsed.invalid[0].reason, new RegExp(reason.replace(/[()]/g, '\\$&')), entry);
  }
});

test('formatRoute', () => {
  assert.equal(formatRoute({ kind: 'DIRECT' }), 'DIRECT');
  assert.equal(formatRoute({ kind: 'SOCKS5', host: '::1', port: 1080 }), 'SOCKS5 [::1]:1080');
});
