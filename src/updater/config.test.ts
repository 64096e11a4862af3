import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../shared/errors.js';
import { generateReleaseKeyPair } from '../shared/release-signing.js';
import { loadUpdaterConfig } from './config.js';

function withDir(fn: (dir: string) => void): () => void {
  return () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ferry-updater-config-'));
    try {
      fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('paths resolve against the config file; keys are read; the proxy file defaults to the config itself', withDir((dir) => {
  const pair = generateReleaseKeyPair();
  writeFileSync(path.join(dir, 'publisher.pub'), pair.publicKeyPem);
  const file = path.join(dir, 'updater.yaml');
  writeFileSync(file, 'connectorStateDir: ./state\ninstallDir: ./install\npublisherKeys: [./publisher.pub]\nproxy:\n  address: http://proxy:3128\n');
  const config = loadUpdaterConfig(file);
  assert.equal(config.connectorStateDir, path.join(dir, 'state'));
  assert.equal(config.installDir, path.join(dir, 'install'));
  assert.deepEqual(config.publisherKeys, [pair.publicKeyPem]);
  assert.equal(config.proxySettingsFile, file);
  assert.equal(config.restartCommand, 'systemctl restart ferry-connector');
  assert.equal(config.allowDowngrade, false);
  assert.equal(loadUpdaterConfig(file, { allowDowngrade: true }).allowDowngrade, true);
  writeFileSync(file, `publisherKeys: [./publisher.pub]\nproxyConfig: ./updater.config\n`);
  assert.equal(loadUpdaterConfig(file).proxySettingsFile, path.join(dir, 'updater.config'));
}));

test('a missing key file, a private key or no keys at all are configuration errors with the line', withDir((dir) => {
  const file = path.join(dir, 'updater.yaml');
  writeFileSync(file, 'channel: stable\npublisherKeys:\n  - ./missing.pub\n');
  assert.throws(() => loadUpdaterConfig(file), (error: unknown) => error instanceof ConfigError && error.line === 3 && /does not exist/.test(error.message));
  writeFileSync(path.join(dir, 'private.key'), generateReleaseKeyPair().privateKeyPem);
  writeFileSync(file, 'publisherKeys: [./private.key]\n');
  assert.throws(() => loadUpdaterConfig(file), /not a PEM public key/);
  writeFileSync(file, 'channel: stable\n');
  assert.throws(() => loadUpdaterConfig(file), ConfigError);
}));

test('a .NET .config given as updater.yaml: a configuration error that says to name it in proxyConfig', withDir((dir) => {
  const file = path.join(dir, 'updater.config');
  writeFileSync(file, '\uFEFF<?xml version="1.0"?>\n<configuration><system.net><defaultProxy enabled="false"/></system.net></configuration>\n');
  assert.throws(() => loadUpdaterConfig(file), (error: unknown) => error instanceof ConfigError && error.file === file && error.line === 1
    && /is XML \(a \.NET \.config file\)/.test(error.message) && /proxyConfig: <its path>/.test(error.fix ?? ''));
}));
