import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPacEngine } from './engine.js';
import { PacError } from './errors.js';
import type { PacEngine, PacEnvironment, PacErrorClass } from './types.js';

const DNS: Record<string, string[]> = {
  'intranet.corp': ['10.1.2.3'],
  'dual.corp': ['2001:db8::5', '10.9.9.9'],
  'v6only.corp': ['2001:db8::6'],
};

function makeEnv(overrides: Partial<PacEnvironment> = {}) {
  const asked: string[] = [];
  const alerts: string[] = [];
  const env: PacEnvironment = {
    resolve: async (host) => {
      asked.push(host);
      return DNS[host] ?? [];
    },
    myAddresses: () => ['192.168.7.7', 'fd00::7'],
    now: () => new Date('2026-03-04T10:20:30Z'), // a Wednesday
    timeZone: 'Europe/Paris',
    alert: (m) => alerts.push(m),
    ...overrides,
  };
  return { env, asked, alerts };
}

const engines: PacEngine[] = [];
after(() => engines.forEach((e) => e.dispose()));

async function evalExpr(expression: string, env = makeEnv().env): Promise<string> {
  const engine = await createPacEngine(`function FindProxyForURL(url, host) { return String(${expression}); }`, env);
  engines.push(engine);
  return engine.findProxy('http://x/', 'x');
}

test('every PAC builtin, evaluated in the sandbox', async () => {
  const cases: [string, string][] = [
    ['isPlainHostName("www")', 'true'],
    ['isPlainHostName("www.corp")', 'false'],
    ['dnsDomainIs("www.corp", ".corp")', 'true'],
    ['localHostOrDomainIs("www", "www.corp")', 'true'],
    ['dnsDomainLevels("a.b.c")', '2'],
    ['shExpMatch("http://a/b/c", "*/b/*")', 'true'],
    ['convert_addr("104.16.41.2")', '1745889538'],
    ['dnsResolve("intranet.corp")', '10.1.2.3'],
    ['dnsResolve("dual.corp")', '10.9.9.9'],
    ['dnsResolve("v6only.corp")', 'null'],
    ['dnsResolve("nowhere.corp")', 'null'],
    ['dnsResolve("1.2.3.4")', '1.2.3.4'],
    ['isResolvable("intranet.corp")', 'true'],
    ['isResolvable("nowhere.corp")', 'false'],
    ['isInNet("intranet.corp", "10.0.0.0", "255.0.0.0")', 'true'],
    ['isInNet("10.1.2.3", "10.1.0.0", "255.255.0.0")', 'true'],
    ['isInNet("nowhere.corp", "0.0.0.0", "0.0.0.0")', 'false'],
    ['myIpAddress()', '192.168.7.7'],
    ['dnsResolveEx("dual.corp")', '2001:db8::5;10.9.9.9'],
    ['dnsResolveEx("nowhere.corp")', ''],
    ['isResolvableEx("v6only.corp")', 'true'],
    ['isResolvableEx("nowhere.corp")', 'false'],
    ['isInNetEx("v6only.corp", "2001:db8::/32")', 'true'],
    ['isInNetEx("10.1.2.3", "10.0.0.0/8")', 'true'],
    ['isInNetEx("10.1.2.3", "10.0.0.0/16")', 'false'],
    ['myIpAddressEx()', '192.168.7.7;fd00::7'],
    ['sortIpAddressList("10.0.0.2;::1;10.0.0.1")', '::1;10.0.0.1;10.0.0.2'],
    ['getClientVersion()', '1.0'],
    ['weekdayRange("MON", "FRI")', 'true'],
    ['weekdayRange("SAT", "SUN")', 'false'],
    ['dateRange("MAR")', 'true'],
    ['dateRange(1, "JAN", 3, "MAR")', 'false'],
    ['timeRange(11)', 'true'],
    ['timeRange(10, "GMT")', 'true'],
    ['timeRange(11, 0, 11, 30)', 'true'],
    ['new Date().toISOString()', '2026-03-04T10:20:30.000Z'],
    ['Date.now()', String(Date.parse('2026-03-04T10:20:30Z'))],
    ['new Date(0).toISOString()', '1970-01-01T00:00:00.000Z'],
    ['(new Date() instanceof Date)', 'true'],
    ['alert("hi")', 'null'],
  ];
  const env = makeEnv().env;
  const expressions = cases.map(([e]) => e);
  const engine = await createPacEngine(
    `var E = [${expressions.map((e) => `function(){ return ${e}; }`).join(',\n')}];
     function FindProxyForURL(url, host) { return String(E[Number(host)]()); }`,
    env,
  );
  engines.push(engine);
  for (let i = 0; i < cases.length; i++) {
    assert.equal(await engine.findProxy('http://x/', String(i)), cases[i][1], cases[i][0]);
  }
});

test('only function globals, no host access', async () => {
  assert.equal(await evalExpr('typeof require + typeof process + typeof module + typeof __ferryPacHost + typeof std + typeof os'), 'undefinedundefinedundefinedundefinedundefinedundefined');
  const pacGlobals = await evalExpr(
    `Object.getOwnPropertyNames(globalThis).filter(function (n) { return /^[a-z]/.test(n) && typeof globalThis[n] !== 'function' && n !== 'globalThis' && n !== 'undefined'; }).join(',')`,
  );
  assert.equal(pacGlobals, '');
});

test('DNS is resolved on demand (restart-on-miss), once per name per evaluation, and alerts are not repeated', async () => {
  const { env, asked, alerts } = makeEnv();
  const engine = await createPacEngine(
    `function FindProxyForURL(url, host) {
       alert("evaluating " + host);
       var r = [];
       try { r.push(dnsResolve(host)); } catch (e) { r.push("caught"); }
       r.push(isInNet(host, "10.0.0.0", "255.0.0.0"));
       r.push(dnsResolveEx("dual.corp"));
       return r.join(" ");
     }`,
    env,
  );
  engines.push(engine);
  assert.equal(await engine.findProxy('http://intranet.corp/', 'intranet.corp'), '10.1.2.3 true 2001:db8::5;10.9.9.9');
  assert.deepEqual(asked.sort(), ['dual.corp', 'intranet.corp']);
  assert.deepEqual(alerts, ['evaluating intranet.corp']);
});

test('DNS at load time works too', async () => {
  const { env } = makeEnv();
  const engine = await createPacEngine(`var inside = dnsResolve("intranet.corp"); function FindProxyForURL(u, h) { return "PROXY " + inside + ":1"; }`, env);
  engines.push(engine);
  assert.equal(await engine.findProxy('http://a/', 'a'), 'PROXY 10.1.2.3:1');
});

test('FindProxyForURLEx is preferred when defined', async () => {
  const engine = await createPacEngine(`function FindProxyForURL(u, h) { return "PROXY old:1"; } function FindProxyForURLEx(u, h) { return "PROXY ex:1"; }`, makeEnv().env);
  engines.push(engine);
  assert.equal(await engine.findProxy('http://a/', 'a'), 'PROXY ex:1');
  assert.match(engine.sha1, /^[0-9a-f]{40}$/);
});

async function expectLoadError(script: string, pacClass: PacErrorClass, message?: RegExp): Promise<void> {
  const started = Date.now();
  await assert.rejects(createPacEngine(script, makeEnv().env, { loadTimeoutMs: 300 }), (error: unknown) => {
    assert.ok(error instanceof PacError, String(error));
    assert.equal(error.pacClass, pacClass, error.message);
    if (message) assert.match(error.message, message);
    return true;
  });
  assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
}

test('hostile or broken scripts at load time', async () => {
  await expectLoadError('function FindProxyForURL(u, h) { return "DIRECT"', 'syntax', /syntax error/);
  await expectLoadError('function NotIt(u, h) { return "DIRECT"; }', 'no-entrypoint');
  await expectLoadError('var FindProxyForURL = "DIRECT";', 'no-entrypoint');
  await expectLoadError('while (true) {} function FindProxyForURL() { return "DIRECT"; }', 'load-timeout');
  await expectLoadError('throw "no way"; function FindProxyForURL() {}', 'exception', /no way/);
  await expectLoadError('var s = "x"; while (true) s += s;', 'resource-limit');
  await expectLoadError('/(a+)+$/.test("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"); function FindProxyForURL() {}', 'load-timeout');
});

test('hostile scripts at call time: classified in < 1 s, and the engine keeps answering', async () => {
  const engine = await createPacEngine(
    `var calls = 0;
     function FindProxyForURL(url, host) {
       calls++;
       if (host == "loop") while (true) {}
       if (host == "catchloop") { for (;;) { try { while (true) {} } catch (e) {} } }
       if (host == "bomb") { var a = "x"; while (true) a = a + a; }
       if (host == "arraybomb") { var b = []; while (true) b.push(new Array(10000).join("y") + b.length); }
       if (host == "redos") return String(/(a+)+$/.test("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"));
       if (host == "joinloop") { while (true) new Array(1000000).join(""); }
       if (host == "recurse") { var f = function () { return f() + 1; }; return f(); }
       if (host == "throw") throw new TypeError("bad thing");
       if (host == "throwstring") throw "plain text failure";
       if (host == "number") return 42;
       if (host == "null") return null;
       if (host == "undef") return;
       if (host == "require") return require("fs");
       if (host == "process") return process.env.HOME;
       if (host == "global") return String(globalThis.process || globalThis.require || globalThis.__ferryPacHost || "clean");
       if (host == "eval") return eval("typeof require");
       return "DIRECT";
     }`,
    makeEnv().env,
    { callTimeoutMs: 150, memoryBytes: 8 * 1024 * 1024 },
  );
  engines.push(engine);
  const cases: [string, PacErrorClass | string, RegExp?][] = [
    ['loop', 'timeout'],
    ['catchloop', 'timeout'],
    ['bomb', 'resource-limit'],
    ['arraybomb', 'resource-limit|timeout'],
    ['redos', 'timeout'],
    ['joinloop', 'timeout'],
    ['recurse', 'resource-limit'],
    ['throw', 'exception', /TypeError: bad thing/],
    ['throwstring', 'exception', /plain text failure/],
    ['number', 'non-string-result', /number/],
    ['null', 'non-string-result'],
    ['undef', 'non-string-result', /undefined/],
    ['require', 'exception', /require/],
    ['process', 'exception', /process/],
  ];
  for (const [host, expected, message] of cases) {
    const started = Date.now();
    await assert.rejects(engine.findProxy(`http://${host}/`, host), (error: unknown) => {
      assert.ok(error instanceof PacError, `${host}: ${String(error)}`);
      assert.match(error.pacClass, new RegExp(`^(${expected})$`), `${host}: ${error.message}`);
      if (message) assert.match(error.message, message);
      return true;
    });
    assert.ok(Date.now() - started < 1000, `${host} took ${Date.now() - started} ms`);
    assert.equal(await engine.findProxy('http://ok/', 'ok'), 'DIRECT', `still answering after ${host}`);
  }
  assert.equal(await engine.findProxy('http://g/', 'global'), 'clean');
  assert.equal(await engine.findProxy('http://e/', 'eval'), 'undefined');
});

test('concurrent calls are serialised and all answered', async () => {
  const engine = await createPacEngine(`function FindProxyForURL(u, h) { return isResolvable(h) ? "PROXY " + dnsResolve(h) + ":80" : "DIRECT"; }`, makeEnv().env);
  engines.push(engine);
  const answers = await Promise.all(['intranet.corp', 'nowhere.corp', 'dual.corp'].map((h) => engine.findProxy(`http://${h}/`, h)));
  assert.deepEqual(answers, ['PROXY 10.1.2.3:80', 'DIRECT', 'PROXY 10.9.9.9:80']);
});

test('dispose() frees the engine; later calls fail', async () => {
  const engine = await createPacEngine(`function FindProxyForURL() { return "DIRECT"; }`, makeEnv().env);
  engine.dispose();
  engine.dispose();
  await assert.rejects(engine.findProxy('http://a/', 'a'));
});

test('DNS restarts and names per evaluation are bounded', async () => {
  const { env, asked } = makeEnv({ resolve: async (host) => { asked.push(host); return ['10.0.0.1']; } });
  // Each answer leads to a new name: a chain longer than the restart bound.
  const chain = await createPacEngine(
    `function FindProxyForURL(u, h) { var n = 0; while (n < 50 && isResolvable("n" + n + ".corp")) n++; return "PROXY chain" + n + ":1"; }`,
    env,
  );
  engines.push(chain);
  const started = Date.now();
  assert.equal(await chain.findProxy('http://a/', 'a'), 'PROXY chain8:1');
  assert.equal(asked.length, 8);
  asked.length = 0;
  const wide = await createPacEngine(
    `function FindProxyForURL(u, h) { var ok = 0; for (var i = 0; i < 1000; i++) if (isResolvable("w" + i + ".corp")) ok++; return "PROXY wide" + ok + ":1"; }`,
    env,
  );
  engines.push(wide);
  assert.equal(await wide.findProxy('http://a/', 'a'), 'PROXY wide32:1');
  assert.equal(asked.length, 32);
  assert.ok(Date.now() - started < 2000);
});

test('alert output is bounded, and absurd DNS names are not resolved', async () => {
  const { env, asked, alerts } = makeEnv();
  const engine = await createPacEngine(
    `function FindProxyForURL(u, h) { var big = "z".repeat(2000); for (var i = 0; i < 300; i++) alert(big); return String(isResolvable(new Array(300).join("a")) || isResolvable("with space.corp")); }`,
    env,
  );
  engines.push(engine);
  assert.equal(await engine.findProxy('http://a/', 'a'), 'false');
  assert.equal(alerts.length, 100);
  assert.ok(alerts.every((a) => a.length <= 1001));
  assert.deepEqual(asked, []);
});
