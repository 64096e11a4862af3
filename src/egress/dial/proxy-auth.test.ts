// Which authenticator configured credentials make, what `any` picks from a 407, and how
// configured credentials are read (the password from its file; none for Negotiate).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AnyProxyAuthenticator, createProxyAuthenticator, PROXY_AUTH_SCHEMES, readProxyCredentials } from './index.js';

test('the scheme picks the authenticator; Basic is preemptive, NTLM opens with NEGOTIATE, any waits', async () => {
  const credentials = { username: 'alice', password: 'pw' };
  assert.equal(createProxyAuthenticator(credentials, 'proxy').scheme, 'Basic');
  assert.equal(await createProxyAuthenticator(credentials, 'proxy').initial(), `Basic ${Buffer.from('alice:pw').toString('base64')}`);
  const ntlm = createProxyAuthenticator({ ...credentials, scheme: 'ntlm' }, 'proxy');
  assert.match(String(await ntlm.initial()), /^NTLM TlRMTVNTUAAB/);
  assert.equal(createProxyAuthenticator({ username: '', password: '', scheme: 'negotiate' }, 'proxy.corp').scheme, 'Negotiate');
  assert.equal(await createProxyAuthenticator({ ...credentials, scheme: 'any' }, 'proxy').initial(), undefined);
});

test('any: NTLM when the 407 offers it (whatever else it offers), else Basic, else nothing', async () => {
  const credentials = { username: 'alice', password: 'pw', scheme: 'any' as const };
  const both = new AnyProxyAuthenticator(credentials);
  assert.match(String(await both.respond(['Basic realm="corp"', 'NTLM'])), /^NTLM /);
  assert.equal(both.scheme, 'NTLM');
  const basic = new AnyProxyAuthenticator(credentials);
  assert.match(String(await basic.respond(['Basic realm="corp"'])), /^Basic /);
  assert.equal(await basic.respond(['Basic realm="corp"']), undefined, 'a second 407 after Basic: refused');
  assert.equal(await new AnyProxyAuthenticator(credentials).respond(['Negotiate']), undefined);
});

test('configured credentials: the password read from its file (trailing newline dropped); Negotiate has none', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-auth-'));
  const passwordFile = path.join(dir, 'pw');
  writeFileSync(passwordFile, 'p@ss word\n', { mode: 0o600 });
  assert.deepEqual(readProxyCredentials({ username: 'CORP\\svc', passwordFile, scheme: 'ntlm' }), { username: 'CORP\\svc', password: 'p@ss word', scheme: 'ntlm' });
  assert.deepEqual(readProxyCredentials({ scheme: 'negotiate', keytab: '/etc/ferry/ferry.keytab' }), { username: '', password: '', scheme: 'negotiate', keytab: '/etc/ferry/ferry.keytab' });
  assert.throws(() => readProxyCredentials({ username: 'svc', passwordFile: path.join(dir, 'missing') }), /cannot read the proxy password file/);
  rmSync(dir, { recursive: true, force: true });
});

test('no authenticator shows its secret through util.inspect or JSON', async () => {
  const { inspect } = await import('node:util');
  for (const scheme of PROXY_AUTH_SCHEMES) {
    const authenticator = createProxyAuthenticator({ username: 'alice', password: 'hunter2-secret', scheme }, 'proxy.corp');
    const shown = `${inspect(authenticator, { showHidden: true, depth: 5 })} ${JSON.stringify(authenticator)}`;
    assert.ok(!shown.includes('hunter2') && !shown.includes(Buffer.from('alice:hunter2-secret').toString('base64')), `${scheme}: ${shown}`);
    assert.match(shown, new RegExp(`scheme: "${authenticator.scheme}"`));
  }
});
