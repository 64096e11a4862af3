import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderJson, renderText } from './render.js';
import { severity, summarize } from './severity.js';
import type { CheckResult } from './types.js';

const checks: CheckResult[] = [
  { id: 'config', status: 'pass', target: 'connector.yaml', details: 'parsed' },
  { id: 'connect:http://proxy:3128', status: 'fail', target: 'relay:443', details: 'CONNECT answered 407 (schemes Basic)', fix: 'configure proxy credentials', errorClass: 'proxy-auth-required' },
  { id: 'dns:relay', status: 'skip', target: 'relay', details: 'resolved by the proxy' },
  { id: 'tcp:relay:8444', status: 'warn', target: 'relay:8444', details: 'no answer from http://u:pw@x:1', fix: 'allow it', errorClass: 'connect-timeout' },
];

// The pinned JSON schema: consumers (monitoring scripts) rely on these keys and types.
test('JSON schema is pinned', () => {
  const doc = JSON.parse(renderJson(summarize(checks, '2026-01-01T00:00:00.000Z', 'c.yaml'))) as Record<string, unknown>;
  assert.deepEqual(Object.keys(doc), ['schema', 'time', 'config', 'status', 'summary', 'checks']);
  assert.equal(doc.schema, 1);
  assert.equal(doc.status, 'fail');
  assert.deepEqual(doc.summary, { pass: 1, warn: 1, fail: 1, skip: 1 });
  const list = doc.checks as Record<string, unknown>[];
  for (const check of list) {
    assert.deepEqual(Object.keys(check), ['id', 'status', 'target', 'details', 'fix', 'errorClass']);
    assert.ok(['pass', 'warn', 'fail', 'skip'].includes(check.status as string));
    assert.ok(check.fix === null || typeof check.fix === 'string');
    assert.ok(check.errorClass === null || typeof check.errorClass === 'string');
  }
  assert.equal(list[0]!.fix, null);
  assert.equal(list[1]!.errorClass, 'proxy-auth-required');
  assert.doesNotMatch(JSON.stringify(doc), /pw@/);
});

test('text: one line per check, a fix line under failures and warnings only', () => {
  const text = renderText(summarize(checks, 't', undefined));
  assert.match(text, /^\[FAIL\] connect:http:\/\/proxy:3128 {2}relay:443: CONNECT answered 407 \(schemes Basic\) \[proxy-auth-required\]\n {7}fix: configure proxy credentials$/m);
  assert.equal(text.match(/fix:/g)?.length, 2);
  assert.match(text, /1 passed, 1 warnings, 1 failed, 1 skipped/);
  assert.doesNotMatch(text, /pw@/);
});

test('severity rules', () => {
  assert.equal(severity({ ok: true }, 'required'), 'pass');
  assert.equal(severity({ ok: false, errorClass: 'connect-timeout' }, 'required'), 'fail');
  assert.equal(severity({ ok: false, errorClass: 'connect-timeout' }, 'alternative'), 'warn');
  assert.equal(severity({ ok: false, errorClass: 'dns' }, 'informational'), 'skip');
  assert.equal(severity({ ok: false, errorClass: 'relay-rejected' }, 'alternative'), 'fail');
});
