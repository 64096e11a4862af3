// Cross-check: every fixture in test/fixtures/pac/ evaluated by `ferry pac eval` and by the reference
// implementation (python3-pacparser) must give the same answer for the same URLs. DNS is kept to
// names both resolve alike (IP literals and localhost pinned to 127.0.0.1, which is what pacparser's
// IPv4-only resolver answers), so no query leaves the machine; myIpAddress is pinned on both sides;
// the clock is the real one in UTC on both sides (pacparser cannot pin it).
//
// Known, deliberate differences the fixtures stay clear of (see README, "Differences from pacparser"): pacparser always calls
// FindProxyForURL (ferry prefers FindProxyForURLEx, as Windows does); pacparser's weekdayRange,
// dateRange and timeRange never wrap (ferry wraps FRI..MON like browsers and MDN's definition);
// pacparser's old SpiderMonkey gets UTC offsets beyond ±12 h wrong (Pacific/Kiritimati is -10 h there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, runFerry } from '../harness/ferry-cli.js';
import { pacparserFindProxy, pacparserUnavailable } from '../harness/pacparser.js';

const MY_IP = '10.1.20.30';

const URLS = [
  'http://intranet/',
  'http://www/index.html',
  'https://www.example.com/',
  'http://www.example.com.evil.example/',
  'http://wiki.corp.example/page',
  'https://app1.example.com/private/data',
  'https://app12.example.com/login',
  'http://img.cdn.example/a.png',
  'ftp://files.example.org/pub/',
  'ws://chat.example.net/socket',
  'wss://chat.example.net/socket',
  'http://10.20.30.40/',
  'http://172.20.1.1:8080/',
  'http://192.168.1.99/',
  'http://192.168.2.99/',
  'http://8.8.4.4/',
  'http://198.51.100.7/',
  'http://127.0.0.1:3000/',
  'http://localhost:8080/',
  'http://[2001:db8::1]/',
  'http://[fe80::1]/',
  'http://[2a00:1450::1]/',
  'http://v6.example.com/',
  'http://lower.example.com/',
  'https://a.b.c.d.example/',
  'https://www.video.example/watch?v=1',
  'http://deep.mirror.example.com/x',
  'https://api.service-one.example:8443/v1/',
  'https://api.example/v1/a/really/long/path/that/goes/on/and/on/and/on/forever',
  'http://my-host.example/',
];

function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
}

const fixtures = readdirSync(join(FIXTURES, 'pac')).filter((f) => f.endsWith('.pac')).sort();

test('at least a dozen varied PAC fixtures', () => {
  assert.ok(fixtures.length >= 12, `only ${fixtures.length} fixtures`);
});

for (const fixture of fixtures) {
  test(`${fixture}: ferry pac eval agrees with pacparser`, { skip: pacparserUnavailable() }, async () => {
    const file = join(FIXTURES, 'pac', fixture);
    const pairs = URLS.map((url) => ({ url, host: hostOf(url) }));
    const reference = await pacparserFindProxy(file, MY_IP, pairs, 'UTC');
    const ours = await runFerry(['pac', 'eval', '--pac', file, '--dns', 'localhost=127.0.0.1', '--my-ip', MY_IP, '--tz', 'UTC', '--json', ...URLS]);
    const results = JSON.parse(ours.stdout).results as { url: string; host: string; result?: string; error?: unknown }[];
    assert.equal(results.length, URLS.length);
    let compared = 0;
    results.forEach((mine, i) => {
      const theirs = reference[i];
      assert.equal(mine.host, pairs[i].host);
      if ('error' in theirs) {
        assert.ok(mine.error, `${URLS[i]}: pacparser failed (${theirs.error}) but ferry answered ${mine.result}`);
        return;
      }
      assert.equal(mine.result, theirs.result, `${fixture} ${URLS[i]}`);
      compared++;
    });
    assert.ok(compared > 0, 'nothing compared');
    assert.equal(ours.code, 0, ours.stderr);
  });
}

for (const zone of ['Asia/Tokyo', 'America/Los_Angeles', 'Asia/Kolkata']) {
  test(`15-calendar-local.pac in ${zone}: local-time ranges agree with pacparser`, { skip: pacparserUnavailable() }, async () => {
    const file = join(FIXTURES, 'pac', '15-calendar-local.pac');
    const [reference] = await pacparserFindProxy(file, MY_IP, [{ url: 'http://a.example/', host: 'a.example' }], zone);
    const ours = await runFerry(['pac', 'eval', '--pac', file, '--no-dns', '--tz', zone, '--json', 'http://a.example/']);
    assert.equal(ours.code, 0, ours.stderr);
    assert.ok('result' in reference, JSON.stringify(reference));
    assert.equal(JSON.parse(ours.stdout).results[0].result, reference.result);
  });
}
