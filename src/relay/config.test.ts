import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../shared/errors.js';
import { loadRelayConfig } from './config.js';

test('relay.yaml: a .NET .config or a YAML list is a configuration error naming the file, the line and the fix', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferry-relay-config-'));
  try {
    const xml = path.join(dir, 'relay.config');
    writeFileSync(xml, '<configuration><system.net><defaultProxy enabled="false"/></system.net></configuration>\n');
    assert.throws(() => loadRelayConfig(xml), (error: unknown) => error instanceof ConfigError && error.file === xml && error.line === 1
      && /is XML/.test(error.message) && /relay\.yaml/.test(error.fix ?? ''));
    const list = path.join(dir, 'relay.yaml');
    writeFileSync(list, '- stateDir: ./relay\n');
    assert.throws(() => loadRelayConfig(list), (error: unknown) => error instanceof ConfigError && error.line === 1
      && /YAML mapping/.test(error.message) && /"key: value"/.test(error.fix ?? ''));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
