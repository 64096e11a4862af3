// https apps whose certificate an enterprise CA issued: the connector trusts that CA through
// connector.yaml's appCaFile (besides Node's built-in roots); without it the user gets the 502
// page saying the TLS check failed; an appCaFile without a CA certificate stops the connector
// with an error naming both files.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { FerryStack, userRequest, type ManagedProcess } from '../harness/ferry-stack.js';
import { waitFor } from '../harness/processes.js';
import { runFerry } from '../harness/ferry-cli.js';
import { createTestCa } from '../harness/tls-server.js';

describe('https apps with an enterprise CA (appCaFile)', () => {
  const stack = new FerryStack();
  let app: https.Server;
  let caFile: string;
  let untrusted: ManagedProcess;

  before(async () => {
    const ca = await createTestCa('Corp Issuing CA');
    const leaf = await ca.issue({ commonName: '127.0.0.1', ips: ['127.0.0.1'] });
    app = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => res.end(`secure hello ${req.url}`));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const internal = `https://127.0.0.1:${(app.address() as AddressInfo).port}`;
    await stack.startRelay();
    const port = stack.relay.ports.user;
    // Names the relay's test certificate carries: app.localhost for the trusting connector's app.
    for (const [name, external, group] of [['trusted', 'app', 'with-ca'], ['untrusted', 'other', 'without-ca']]) {
      const added = await stack.relay.cli(['relay', 'app', 'add', name, '--external', `https://${external}.localhost:${port}`, '--internal', internal, '--group', group]);
      assert.equal(added.code, 0, added.stderr);
    }
    caFile = path.join(stack.dir, 'corp-ca.pem');
    writeFileSync(caFile, ca.certPem);
    const withCa = await stack.registerConnector({ name: 'with-ca', token: await stack.createToken('with-ca'), config: { appCaFile: caFile } });
    assert.equal(withCa.run.code, 0, withCa.run.stderr);
    stack.startConnector(withCa.configFile);
    const withoutCa = await stack.registerConnector({ name: 'without-ca', token: await stack.createToken('without-ca') });
    assert.equal(withoutCa.run.code, 0, withoutCa.run.stderr);
    untrusted = stack.startConnector(withoutCa.configFile);
    await stack.waitForTunnels(4);
  });

  after(async () => {
    await stack.stop();
    app.closeAllConnections();
    await new Promise((resolve) => app.close(resolve));
  });

  it('a connector with appCaFile reaches the app over verified TLS', async () => {
    const res = await userRequest(stack.relay, 'app.localhost', '/orders');
    assert.equal(res.status, 200);
    assert.equal(res.body, 'secure hello /orders');
  });

  it('a connector without it answers the 502 page naming the TLS failure', async () => {
    const res = await userRequest(stack.relay, 'other.localhost', '/orders', { headers: { accept: 'application/json' } });
    assert.equal(res.status, 502);
    assert.match(res.body, /"class":"tls"/);
    // The operator's side: the connector's log names the issuer and the setting (the user's page does not).
    await waitFor(() => (/issued by \\"CN=Corp Issuing CA.*not trusted here: add the CA that issued the app's certificate to appCaFile/.test(untrusted.log()) ? true : undefined), 5000, 'the log line');
  });

  it('an appCaFile without a CA certificate stops the connector, naming both files', async () => {
    const notCa = path.join(stack.dir, 'not-a-ca.pem');
    writeFileSync(notCa, 'this is not a certificate\n');
    const config = path.join(stack.dir, 'bad-ca.yaml');
    writeFileSync(config, `stateDir: ./with-ca\nappCaFile: ${notCa}\n`);
    const run = await runFerry(['connector', 'run', '--config', config]);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, new RegExp(`bad-ca\\.yaml:2: appCaFile ${notCa.replace(/[.]/g, '\\.')} holds no PEM certificate`));
  });
});
