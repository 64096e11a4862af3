import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { parseClientHello } from './client-hello.js';

/** Captures the real ClientHello Node's TLS client sends. */
async function captureHello(options: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => server.once('connection', (socket) => socket.once('data', (data: Buffer) => { resolve(data); socket.destroy(); })));
  const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
  client.on('error', () => undefined);
  const data = await got;
  client.destroy();
  server.close();
  return data;
}

describe('parseClientHello', () => {
  it('reads ALPN and SNI from a real ClientHello', async () => {
    const hello = await captureHello({ ALPNProtocols: ['ferry-tunnel/1'], servername: 'relay.example.test' });
    assert.deepEqual(parseClientHello(hello), { alpn: ['ferry-tunnel/1'], serverName: 'relay.example.test' });
  });

  it('reads a browser-like offer', async () => {
    const hello = await captureHello({ ALPNProtocols: ['h2', 'http/1.1'], servername: 'app.localhost' });
    assert.deepEqual(parseClientHello(hello)?.alpn, ['h2', 'http/1.1']);
  });

  it('asks for more bytes on a partial hello and refuses what is not TLS', async () => {
    const hello = await captureHello({ ALPNProtocols: ['h2'] });
    assert.equal(parseClientHello(hello.subarray(0, 20)), undefined);
    assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')), null);
  });
});
