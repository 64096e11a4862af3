// `ferry pac eval` end to end: the built CLI, real files, exit codes and the --json contract.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFerry } from '../harness/ferry-cli.js';

let dir: string;
const file = (name: string) => join(dir, name);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-pac-eval-'));
  await writeFile(
    file('main.pac'),
    `function FindProxyForURL(url, host) {
       if (host == "loop") while (true) {}
       if (host == "boom") throw "kaboom from the script";
       if (host == "num") return 7;
       if (host == "redos") return String(/(a+)+$/.test("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"));
       if (shExpMatch(host, "*:*")) return "PROXY v6:1; host=" + host;
       if (host == "ex.corp") return "PROXY " + dnsResolveEx(host).split(";").join("_") + ":1";
       if (isPlainHostName(host)) return "DIRECT";
       if (isInNet(host, "10.0.0.0", "255.0.0.0")) return "PROXY inside.corp:3128";
       if (host == "me.corp") return "PROXY " + myIpAddress() + ":1; PROXY " + myIpAddressEx().split(";").join("_") + ":2";
       if (host == "time.corp") return "PROXY " + (weekdayRange("WED") ? "wed" : "other") + "-" + (timeRange(11) ? "eleven" : "not") + ":1";
       return "PROXY out.corp:8080; DIRECT";
     }`,
  );
  await writeFile(file('syntax.pac'), 'function FindProxyForURL(url, host) { return "DIRECT"; ');
  await writeFile(file('noentry.pac'), 'function Nope() {}');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('answers every URL in order, pinned DNS, exit 0', async () => {
  const run = await runFerry([
    'pac', 'eval', '--pac', file('main.pac'), '--dns', 'app.corp=10.1.2.3', '--dns', 'ex.corp=10.0.0.1;2001:db8::1',
    '--json', 'http://intranet/', 'https://app.corp/x', 'http://public.example/', 'http://[2001:db8::7]:8080/', 'http://ex.corp/',
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), {
    results: [
      { url: 'http://intranet/', host: 'intranet', result: 'DIRECT' },
      { url: 'https://app.corp/x', host: 'app.corp', result: 'PROXY inside.corp:3128' },
      { url: 'http://public.example/', host: 'public.example', result: 'PROXY out.corp:8080; DIRECT' },
      {
        url: 'http://[2001:db8::7]:8080/', host: '2001:db8::7', result: 'PROXY v6:1; host=2001:db8::7',
        ignored: [{ entry: 'host=2001:db8::7', reason: 'unknown keyword "host=2001:db8::7" (expected PROXY, HTTP, HTTPS, SOCKS, SOCKS4, SOCKS5 or DIRECT)' }],
      },
      {
        url: 'http://ex.corp/', host: 'ex.corp', result: 'PROXY 10.0.0.1_2001:db8::1:1',
        ignored: [{ entry: 'PROXY 10.0.0.1_2001:db8::1:1', reason: 'an IPv6 address must be written in brackets, e.g. [2001:db8::1]:8080' }],
      },
    ],
  });
});

test('--no-dns: no name resolves; --host overrides the URL host', async () => {
  const run = await runFerry(['pac', 'eval', '--pac', file('main.pac'), '--no-dns', '--host', 'app.corp', '--json', 'http://whatever.example/']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout).results, [{ url: 'http://whatever.example/', host: 'app.corp', result: 'PROXY out.corp:8080; DIRECT' }]);
  // --host replaces the host, not the check that each argument is a URL.
  const notUrl = await runFerry(['pac', 'eval', '--pac', file('main.pac'), '--no-dns', '--host', 'app.corp', 'whatever']);
  assert.equal(notUrl.code, 2, notUrl.stdout);
  assert.match(notUrl.stderr, /"whatever" is not a URL/);
});

test('--my-ip, --now and --tz are what the script sees', async () => {
  const run = await runFerry([
    'pac', 'eval', '--pac', file('main.pac'), '--no-dns', '--my-ip', '10.9.8.7;fd00::1', '--now', '2026-03-04T10:20:30Z', '--tz', 'Europe/Paris',
    '--json', 'http://me.corp/', 'http://time.corp/',
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout).results.map((r: { result: string }) => r.result), [
    'PROXY 10.9.8.7:1; PROXY 10.9.8.7_fd00::1:2',
    'PROXY wed-eleven:1',
  ]);
});

test('script errors: classified per URL, later URLs still answered, exit 1', async () => {
  const started = Date.now();
  const run = await runFerry(['pac', 'eval', '--pac', file('main.pac'), '--no-dns', '--json', 'http://loop/', 'http://boom/', 'http://num/', 'http://redos/', 'http://ok/']);
  assert.equal(run.code, 1, run.stderr);
  const results = JSON.parse(run.stdout).results;
  assert.equal(results[0].error.class, 'timeout');
  assert.equal(results[1].error.class, 'exception');
  assert.match(results[1].error.message, /kaboom from the script/);
  assert.equal(results[2].error.class, 'non-string-result');
  assert.equal(results[3].error.class, 'timeout', 'a catastrophic regular expression is stopped by the watchdog');
  assert.deepEqual(results[4], { url: 'http://ok/', host: 'ok', result: 'DIRECT' });
  assert.ok(Date.now() - started < 10_000);
});

test('load errors: every URL gets the class, exit 1; human output is one line per URL', async () => {
  const syntax = await runFerry(['pac', 'eval', '--pac', file('syntax.pac'), '--json', 'http://a/', 'http://b/']);
  assert.equal(syntax.code, 1);
  assert.deepEqual(JSON.parse(syntax.stdout).results.map((r: { error: { class: string } }) => r.error.class), ['syntax', 'syntax']);
  const noEntry = await runFerry(['pac', 'eval', '--pac', file('noentry.pac'), 'http://a/', 'http://b/']);
  assert.equal(noEntry.code, 1);
  const lines = noEntry.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^http:\/\/a\/ .*no-entrypoint/);
});

test('human output: one line per URL with the quoted result; invalid entries warned on stderr', async () => {
  const run = await runFerry(['pac', 'eval', '--pac', file('main.pac'), '--no-dns', 'http://intranet/', 'http://[2001:db8::7]/']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.stdout.trim().split('\n'), ['http://intranet/  "DIRECT"', 'http://[2001:db8::7]/  "PROXY v6:1; host=2001:db8::7"']);
  assert.match(run.stderr, /invalid entry "host=2001:db8::7"/);
  // --json carries them with the result.
  const json = await runFerry(['pac', 'eval', '--pac', file('main.pac'), '--no-dns', '--json', 'http://[2001:db8::7]/']);
  const [line] = JSON.parse(json.stdout).results as { result: string; ignored?: { entry: string; reason: string }[] }[];
  assert.equal(line?.result, 'PROXY v6:1; host=2001:db8::7');
  assert.equal(line?.ignored?.[0]?.entry, 'host=2001:db8::7');
});

test('usage errors exit 2: bad --dns, bad --my-ip, bad --now, bad --tz, missing file, no URL, bad URL', async () => {
  const cases: string[][] = [
    ['--pac', file('main.pac'), '--dns', 'nonsense', 'http://a/'],
    ['--pac', file('main.pac'), '--dns', 'a.corp=not-an-ip', 'http://a/'],
    ['--pac', file('main.pac'), '--my-ip', '300.1.1.1', 'http://a/'],
    ['--pac', file('main.pac'), '--now', 'yesterday', 'http://a/'],
    ['--pac', file('main.pac'), '--tz', 'Mars/Olympus', 'http://a/'],
    ['--pac', file('missing.pac'), 'http://a/'],
    ['--pac', file('main.pac')],
    ['http://a/'],
    ['--pac', file('main.pac'), 'not a url'],
  ];
  for (const args of cases) {
    const run = await runFerry(['pac', 'eval', ...args]);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout} ${run.stderr}`);
    assert.notEqual(run.stderr, '', args.join(' '));
  }
});
