// The updater end to end with real processes on loopback: a relay, connectors started from an
// install folder's current/ by a restart script, real `ferry release` and `ferry updater run`
// commands, and a real Squid. Each scenario uses its own release channel and connector.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { lookup } from 'node:dns/promises';
import https from 'node:https';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { FerryStack, startFerryProcess } from '../harness/ferry-stack.js';
import { runFerry, type CliRun } from '../harness/ferry-cli.js';
import { sleep } from '../harness/processes.js';
import { startSquid, type SquidInstance } from '../harness/squid.js';
import { alive, connectorListing, installConnector, packageRelease, waitForConnectorVersion, type InstalledConnector } from '../harness/updater-fixture.js';

const RELAY_NAME = 'relay.ferry.test';
const stack = new FerryStack();
const connectors: InstalledConnector[] = [];
let squid: SquidInstance;
let keysDir: string;
let rogueKeysDir: string;
let releases: { v100: string; v110: string; v120broken: string; v130big: string; v095: string };

before(async () => {
  await stack.startRelay();
  squid = await startSquid({ mode: 'open', hosts: { [RELAY_NAME]: '127.0.0.1' } });
  keysDir = path.join(stack.dir, 'keys');
  rogueKeysDir = path.join(stack.dir, 'rogue-keys');
  for (const dir of [keysDir, rogueKeysDir]) {
    const run = await runFerry(['release', 'keygen', '--out', dir]);
    assert.equal(run.code, 0, run.stderr);
  }
  const out = path.join(stack.dir, 'packages');
  releases = {
    v095: packageRelease(out, '0.9.5'),
    v100: packageRelease(out, '1.0.0'),
    v110: packageRelease(out, '1.1.0'),
    v120broken: packageRelease(out, '1.2.0', { broken: true }),
    v130big: packageRelease(out, '1.3.0', { paddingBytes: 3 * 1024 * 1024 }),
  };
});

after(async () => {
  await Promise.allSettled(connectors.map((c) => c.stop()));
  await Promise.allSettled([squid?.stop()]);
  await stack.stop();
});

async function publish(file: string, version: string, channel: string, key = path.join(keysDir, 'release-signing.key')): Promise<void> {
  const run = await stack.relay.cli(['release', 'publish', file, '--key', key, '--version', version, '--channel', channel]);
  assert.equal(run.code, 0, run.stderr);
}

async function connector(name: string, group = name): Promise<InstalledConnector> {
  const installed = await installConnector(stack, { name, group, firstRelease: releases.v100, firstVersion: '1.0.0' });
  connectors.push(installed);
  await waitForConnectorVersion(stack, name, '1.0.0');
  return installed;
}

function updaterConfig(c: InstalledConnector, channel: string, extra: Record<string, unknown> = {}): string {
  const file = path.join(c.installDir, `updater-${channel}.yaml`);
  writeFileSync(file, stringify({
    connectorStateDir: path.join(stack.dir, c.name),
    installDir: c.installDir,
    channel,
    publisherKeys: [path.join(keysDir, 'release-signing.pub')],
    restartCommand: c.restartScript,
    restartTimeoutMs: 20_000,
    healthTimeoutMs: 15_000,
    healthPollMs: 200,
    pollIntervalMs: 300,
    machineConfig: path.join(c.installDir, 'no-machine.config'),
    ...extra,
  }));
  return file;
}

/** The JSON log entries of a process (pino lines; other lines ignored). */
function entries(log: string, msg: string): Record<string, unknown>[] {
  return log.split('\n').flatMap((line) => {
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      return entry.msg === msg ? [entry] : [];
    } catch {
      return [];
    }
  });
}

/** A request to the relay's registration port with a connector's own identity (mTLS). */
function relayGet(connectorName: string, requestPath: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const stateDir = path.join(stack.dir, connectorName);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: stack.relay.ports.registration, path: requestPath, servername: 'localhost', headers, agent: false,
      ca: readFileSync(path.join(stateDir, 'relay-ca.pem')), cert: readFileSync(path.join(stateDir, 'connector.pem')), key: readFileSync(path.join(stateDir, 'connector.key')),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function updateOnce(configFile: string, extraArgs: string[] = []): Promise<CliRun> {
  return runFerry(['updater', 'run', '--once', '--config', configFile, ...extraArgs], { timeoutMs: 90_000, env: { ...process.env, FERRY_LOG_LEVEL: 'info' } });
}

test('updates 1.0.0 → 1.1.0 through Squid using the updater\'s own XML proxy config', async () => {
  const c = await connector('via-squid');
  const oldPid = c.pid();
  // An older leftover version: only the last two (previous + new) are kept.
  await import('node:fs').then((fs) => fs.mkdirSync(path.join(c.installDir, 'versions', '0.9.0'), { recursive: true }));
  await publish(releases.v110, '1.1.0', 'squid');
  const xml = path.join(c.installDir, 'updater.config');
  writeFileSync(xml, [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<configuration>',
    '  <system.net>',
    '    <defaultProxy enabled="true" useDefaultCredentials="false">',
    `      <proxy proxyaddress="http://${squid.host}:${squid.port}" bypassonlocal="False" usesystemdefault="False" />`,
    '    </defaultProxy>',
    '  </system.net>',
    '</configuration>',
    '',
  ].join('\n'));
  // Only Squid can resolve the relay's name (its hosts_file): the update cannot have gone direct.
  await assert.rejects(lookup(RELAY_NAME));
  const config = updaterConfig(c, 'squid', { proxyConfig: xml, relayUrl: `https://${RELAY_NAME}:${stack.relay.ports.registration}` });

  const run = await updateOnce(config);
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /updated 1\.0\.0 → 1\.1\.0/);
  assert.equal(c.current(), 'versions/1.1.0');
  assert.deepEqual(c.versions(), ['1.0.0', '1.1.0']);
  await waitForConnectorVersion(stack, 'via-squid', '1.1.0');
  assert.notEqual(c.pid(), oldPid, 'the connector was restarted');
  assert.ok(c.pid() && alive(c.pid()!));
  // The new process runs the code under versions/1.1.0 (its own package.json names the version).
  assert.match(readFileSync(`/proc/${c.pid()}/cmdline`, 'utf8'), /current\/dist\/src\/cli\/main\.js/);
  const connect = await squid.waitForAccessLog((line) => line.includes('CONNECT') && line.includes(`${RELAY_NAME}:${stack.relay.ports.registration}`), 10_000);
  assert.match(connect, /TCP_TUNNEL\/200/);
  assert.ok(entries(stack.relay.log(), 'release download').some((e) => e.version === '1.1.0' && e.channel === 'squid'));
  // No leftovers: the verified archive is removed after a successful update.
  assert.deepEqual(readdirSync(path.join(c.installDir, 'downloads')), []);
});

test('a tampered, unsigned or foreign-signed release is rejected and nothing changes', async () => {
  const c = await connector('guarded');
  const pid = c.pid();
  // Tampered: the file on the relay is changed after signing.
  await publish(releases.v110, '1.1.0', 'tampered');
  const tamperedBlob = path.join(stack.relay.stateDir, 'releases', 'tampered', '1.1.0', path.basename(releases.v110));
  const bytes = readFileSync(tamperedBlob);
  bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
  writeFileSync(tamperedBlob, bytes);
  // Unsigned: the stored signature is removed.
  await publish(releases.v110, '1.1.0', 'unsigned');
  const db = new Database(path.join(stack.relay.stateDir, 'relay.db'));
  try {
    db.prepare("UPDATE releases SET signature = '' WHERE channel = 'unsigned'").run();
  } finally {
    db.close();
  }
  // Signed by a key the updater does not pin.
  await publish(releases.v110, '1.1.0', 'rogue', path.join(rogueKeysDir, 'release-signing.key'));

  for (const channel of ['tampered', 'unsigned', 'rogue']) {
    const run = await updateOnce(updaterConfig(c, channel));
    assert.equal(run.code, 1, `${channel}: ${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /rejected 1\.1\.0/, channel);
    assert.equal(c.current(), 'versions/1.0.0', channel);
    assert.deepEqual(c.versions(), ['1.0.0'], channel);
    assert.deepEqual(readdirSync(path.join(c.installDir, 'downloads')), [], `${channel}: no partial or rejected file is kept`);
    assert.equal(c.pid(), pid, `${channel}: the connector was not restarted`);
  }
  // A rejected release is not fetched again while the relay offers the same file.
  const again = await updateOnce(updaterConfig(c, 'rogue'));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /failed signature verification before/);
  // Never a downgrade unless asked.
  await publish(releases.v095, '0.9.5', 'old');
  const older = await updateOnce(updaterConfig(c, 'old'));
  assert.equal(older.code, 0, older.stderr);
  assert.match(older.stdout, /not installing 0\.9\.5: 0\.9\.5 is older than the installed 1\.0\.0/);
  assert.equal(c.current(), 'versions/1.0.0');
  assert.equal(c.pid(), pid);
  assert.equal((await connectorListing(stack, 'guarded'))?.version, '1.0.0');
  // …and with --allow-downgrade it is installed.
  const downgraded = await updateOnce(updaterConfig(c, 'old'), ['--allow-downgrade']);
  assert.equal(downgraded.code, 0, `${downgraded.stdout}\n${downgraded.stderr}`);
  assert.match(downgraded.stdout, /updated 1\.0\.0 → 0\.9\.5/);
  await waitForConnectorVersion(stack, 'guarded', '0.9.5');
});

test('the relay serves release files with ranges, and only to registered connectors', async () => {
  await installConnector(stack, { name: 'ranges', group: 'ranges', firstRelease: releases.v100, firstVersion: '1.0.0' }).then((c) => connectors.push(c));
  await publish(releases.v110, '1.1.0', 'ranges');
  const whole = readFileSync(releases.v110);
  const sha = createHash('sha256').update(whole).digest('hex');
  const latest = await relayGet('ranges', '/v1/releases/latest?channel=ranges');
  assert.equal(latest.status, 200);
  const info = JSON.parse(latest.body.toString()) as { version: string; sha256: string; size: number; downloadPath: string };
  assert.deepEqual([info.version, info.sha256, info.size], ['1.1.0', sha, whole.length]);
  const full = await relayGet('ranges', info.downloadPath);
  assert.equal(full.status, 200);
  assert.ok(full.body.equals(whole));
  assert.equal(full.headers.etag, `"${sha}"`);
  const tail = await relayGet('ranges', info.downloadPath, { range: 'bytes=1000-', 'if-range': `"${sha}"` });
  assert.equal(tail.status, 206);
  assert.equal(tail.headers['content-range'], `bytes 1000-${whole.length - 1}/${whole.length}`);
  assert.ok(tail.body.equals(whole.subarray(1000)));
  const middle = await relayGet('ranges', info.downloadPath, { range: 'bytes=10-19' });
  assert.ok(middle.status === 206 && middle.body.equals(whole.subarray(10, 20)));
  const suffix = await relayGet('ranges', info.downloadPath, { range: 'bytes=-5' });
  assert.ok(suffix.status === 206 && suffix.body.equals(whole.subarray(whole.length - 5)));
  // Another file than the one the client has part of: the whole file, not a mix of two.
  const otherFile = await relayGet('ranges', info.downloadPath, { range: 'bytes=1000-', 'if-range': '"0000"' });
  assert.ok(otherFile.status === 200 && otherFile.body.equals(whole));
  const past = await relayGet('ranges', info.downloadPath, { range: `bytes=${whole.length}-` });
  assert.equal(past.status, 416);
  assert.equal((await relayGet('ranges', '/v1/releases/latest?channel=none')).status, 404);
  // A removed connector is refused.
  assert.equal((await stack.relay.cli(['relay', 'connectors', 'remove', 'ranges'])).code, 0);
  assert.equal((await relayGet('ranges', '/v1/releases/latest?channel=ranges')).status, 403);
});

test('a release whose connector does not connect is rolled back', async () => {
  const c = await connector('rollback');
  await publish(releases.v120broken, '1.2.0', 'broken');
  const config = updaterConfig(c, 'broken', { healthTimeoutMs: 4_000 });
  const run = await updateOnce(config);
  assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /rolled back 1\.2\.0 → 1\.0\.0/);
  assert.match(c.log(), /ferry \(broken build\): exiting/, 'the broken version did run');
  assert.equal(c.current(), 'versions/1.0.0');
  assert.deepEqual(c.versions(), ['1.0.0']);
  await waitForConnectorVersion(stack, 'rollback', '1.0.0');
  assert.ok(alive(c.pid()!));
  const record = JSON.parse(readFileSync(path.join(c.installDir, 'updater-state.json'), 'utf8')) as { failed: Record<string, string> };
  assert.ok(record.failed['broken/1.2.0']);
  assert.ok(entries(stack.relay.log(), 'update reported: go-ahead released').some((e) => e.connector === 'rollback' && e.outcome === 'rolled-back'));
  // Not retried on the next check.
  const next = await updateOnce(config);
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stdout, /was rolled back before/);
});

test('an interrupted download leaves the installed version intact, and the next run resumes it', async () => {
  const c = await connector('interrupted');
  const pid = c.pid();
  await publish(releases.v130big, '1.3.0', 'big');
  const part = path.join(c.installDir, 'downloads', 'big-1.3.0.part');
  const slow = startFerryProcess(['updater', 'run', '--config', updaterConfig(c, 'big', { downloadRateLimit: 400_000 })]);
  try {
    for (let i = 0; i < 200 && !(existsSync(part) && statSync(part).size > 500_000); i++) await sleep(50);
    assert.ok(existsSync(part) && statSync(part).size > 500_000, `download did not start: ${slow.log()}`);
    slow.child.kill('SIGKILL');
    await slow.stop();
  } finally {
    await slow.stop();
  }
  const partial = statSync(part).size;
  assert.ok(partial < statSync(releases.v130big).size, 'the download really was interrupted');
  assert.equal(c.current(), 'versions/1.0.0');
  assert.deepEqual(c.versions(), ['1.0.0']);
  assert.equal(c.pid(), pid);

  const run = await updateOnce(updaterConfig(c, 'big'));
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  const resumed = entries(run.stderr, 'resuming interrupted download');
  assert.equal(resumed.length, 1, run.stderr);
  assert.ok(Number(resumed[0]!.offset) >= partial, `resumed at ${String(resumed[0]!.offset)}, had ${partial}`);
  const ranged = entries(stack.relay.log(), 'release download').filter((e) => e.version === '1.3.0' && e.status === 206);
  assert.equal(ranged.length, 1);
  assert.equal(ranged[0]!.start, resumed[0]!.offset);
  assert.match(run.stdout, /updated 1\.0\.0 → 1\.3\.0/);
  await waitForConnectorVersion(stack, 'interrupted', '1.3.0');
});

test('two connectors of one group update one after the other (the relay\'s go-ahead)', async () => {
  const [a, b] = [await connector('pair-a', 'pair'), await connector('pair-b', 'pair')];
  await publish(releases.v110, '1.1.0', 'pair');
  const updaters = [a, b].map((c) => startFerryProcess(['updater', 'run', '--config', updaterConfig(c, 'pair', { pollIntervalMs: 200, pollJitter: 0.1 })], { FERRY_LOG_LEVEL: 'info' }));
  try {
    await waitForConnectorVersion(stack, 'pair-a', '1.1.0', 60_000);
    await waitForConnectorVersion(stack, 'pair-b', '1.1.0', 60_000);
  } finally {
    await Promise.all(updaters.map((u) => u.stop()));
  }
  const events = stack.relay.log().split('\n').filter((line) => line.includes('"group":"pair"') && /go-ahead (granted|refused)|go-ahead released/.test(line))
    .map((line) => {
      const entry = JSON.parse(line) as { msg: string; connector: string };
      return `${entry.msg.includes('granted') ? 'granted' : entry.msg.includes('refused') ? 'refused' : 'released'}:${entry.connector}`;
    });
  const sequence = events.filter((e) => !e.startsWith('refused'));
  const [first, second] = sequence[0] === 'granted:pair-a' ? ['pair-a', 'pair-b'] : ['pair-b', 'pair-a'];
  assert.deepEqual(sequence, [`granted:${first}`, `released:${first}`, `granted:${second}`, `released:${second}`], events.join(', '));
  assert.ok(events.includes(`refused:${second}`), `the second connector asked while the first updated: ${events.join(', ')}`);
  assert.ok(updaters.some((u) => u.log().includes('waiting for the group go-ahead')));
});
