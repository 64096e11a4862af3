// Certificate renewal against a real relay: mTLS with the current certificate, a new key pair,
// the new identity stored (key 0600) and accepted for tunnels; a removed connector is refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import path from 'node:path';
import { FerryStack } from '../harness/ferry-stack.js';
import { waitFor } from '../harness/processes.js';
import { loadConnectorConfig } from '../../src/connector/config.js';
import { loadConnectorState } from '../../src/connector/state.js';
import { createConnectorEgress } from '../../src/connector/egress.js';
import { renewCertificate, renewalDue } from '../../src/connector/renewal.js';
import { certificateInfo, fingerprintSha256 } from '../../src/shared/pki.js';
import { silentLogger } from '../../src/shared/log.js';

describe('certificate renewal', () => {
  const stack = new FerryStack();
  before(async () => { await stack.startRelay(); });
  after(async () => { await stack.stop(); });

  it('renews over mTLS, stores the new identity, and tunnels use it', async () => {
    const { configFile, run } = await stack.registerConnector({ name: 'renewer' });
    assert.equal(run.code, 0, run.stderr);
    const config = loadConnectorConfig(configFile);
    const before = loadConnectorState(config.stateDir);
    assert.equal(renewalDue(before.certPem), false, 'a fresh certificate is not due');
    assert.equal(renewalDue(before.certPem, new Date(certificateInfo(before.certPem).notAfter.getTime() - 3_600_000)), true);

    const egress = await createConnectorEgress(config, silentLogger);
    try {
      const renewed = await renewCertificate(before, config.stateDir, egress.routed);
      assert.notEqual(fingerprintSha256(renewed.certPem), fingerprintSha256(before.certPem));
      assert.notEqual(renewed.keyPem, before.keyPem);
      assert.equal(loadConnectorState(config.stateDir).certPem, renewed.certPem);
      assert.equal(statSync(path.join(config.stateDir, 'connector.key')).mode & 0o777, 0o600);
    } finally {
      egress.close();
    }
    const proc = stack.startConnector(configFile);
    await waitFor(() => (/"msg":"tunnel up"/.test(proc.log()) ? true : undefined), 15_000, 'tunnel with the renewed certificate');
    await proc.stop();

    const removed = await stack.relay.cli(['relay', 'connectors', 'remove', 'renewer']);
    assert.equal(removed.code, 0);
    const egress2 = await createConnectorEgress(config, silentLogger);
    try {
      await assert.rejects(renewCertificate(loadConnectorState(config.stateDir), config.stateDir, egress2.routed), /re-register|not registered|removed/);
    } finally {
      egress2.close();
    }
  });
});
