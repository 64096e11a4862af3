// The error codes form a registry (fastify's habit): every code the source raises is documented
// in README's "Error codes" table, including the families built from a class name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIAL_FAILURE_CLASSES } from './errors.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [full] : [];
  });
}

test('every error code raised in src/ is documented in README', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const documented = new Set(readme.match(/ERR_[A-Z0-9_]+/g));
  const raised = new Set<string>();
  for (const file of sourceFiles(path.join(root, 'src'))) {
    for (const match of readFileSync(file, 'utf8').matchAll(/(?:FerryError\(|super\()\s*'(ERR_[A-Z0-9_]+)'/g)) raised.add(match[1]!);
  }
  for (const errorClass of DIAL_FAILURE_CLASSES) raised.add(`ERR_DIAL_${errorClass.toUpperCase().replace(/-/g, '_')}`);
  for (const pacClass of ['syntax', 'no-entrypoint', 'load-timeout', 'exception', 'timeout', 'resource-limit', 'non-string-result']) {
    raised.add(`ERR_PAC_${pacClass.toUpperCase().replace(/-/g, '_')}`);
  }
  assert.ok(raised.size >= 30, `found only ${raised.size} codes: the scan is broken`);
  const missing = [...raised].filter((code) => !documented.has(code)).sort();
  assert.deepEqual(missing, [], 'document these codes in README "Error codes"');
});
