// A small SOCKS5 server (RFC 1928 CONNECT, RFC 1929 username/password) for tests: no SOCKS
// daemon ships on this machine. It resolves names only from `hosts` (like Squid's hosts_file),
// so the client never resolves them, and it records every CONNECT it was asked for.
import net from 'node:net';

export interface Socks5Server {
  port: number;
  requests: string[];
  stop(): Promise<void>;
}

export async function startSocks5(options: { hosts?: Record<string, string>; users?: Record<string, string> } = {}): Promise<Socks5Server> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    let buffer = Buffer.alloc(0);
    let stage: 'greeting' | 'auth' | 'request' | 'done' = 'greeting';
    client.on('data', function onData(chunk: Buffer) {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (stage === 'greeting') {
          if (buffer.length < 2 || buffer.length < 2 + (buffer[1] as number)) return;
          const methods = [...buffer.subarray(2, 2 + (buffer[1] as number))];
          buffer = buffer.subarray(2 + (buffer[1] as number));
          const wanted = options.users ? 0x02 : 0x00;
          if (!methods.includes(wanted)) return void client.end(Buffer.from([5, 0xff]));
          client.write(Buffer.from([5, wanted]));
          stage = options.users ? 'auth' : 'request';
        } else if (stage === 'auth') {
          const ulen = buffer[1];
          if (ulen === undefined || buffer.length < 2 + ulen + 1) return;
          const plen = buffer[2 + ulen] as number;
          if (buffer.length < 3 + ulen + plen) return;
          const user = buffer.subarray(2, 2 + ulen).toString();
          const password = buffer.subarray(3 + ulen, 3 + ulen + plen).toString();
          buffer = buffer.subarray(3 + ulen + plen);
          if (options.users?.[user] !== password) return void client.end(Buffer.from([1, 1]));
          client.write(Buffer.from([1, 0]));
          stage = 'request';
        } else if (stage === 'request') {
          if (buffer.length < 5) return;
          const atyp = buffer[3];
          let host: string;
          let offset: number;
          if (atyp === 1) {
            if (buffer.length < 10) return;
            host = [...buffer.subarray(4, 8)].join('.');
            offset = 8;
          } else if (atyp === 3) {
            const len = buffer[4] as number;
            if (buffer.length < 5 + len + 2) return;
            host = buffer.subarray(5, 5 + len).toString();
            offset = 5 + len;
          } else return void client.end(Buffer.from([5, 8, 0, 1, 0, 0, 0, 0, 0, 0]));
          const port = buffer.readUInt16BE(offset);
          buffer = buffer.subarray(offset + 2);
          requests.push(`${host}:${port}`);
          const address = options.hosts?.[host] ?? (net.isIP(host) ? host : undefined);
          // 0x04: host unreachable (unknown name); 0x05: connection refused.
          if (!address) return void client.end(Buffer.from([5, 4, 0, 1, 0, 0, 0, 0, 0, 0]));
          stage = 'done';
          client.removeListener('data', onData);
          client.pause();
          const upstream = net.connect({ host: address, port });
          upstream.once('connect', () => {
            client.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
            if (buffer.length > 0) upstream.write(buffer);
            client.pipe(upstream).pipe(client);
            client.resume();
          });
          upstream.once('error', () => client.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])));
          sockets.add(upstream);
          upstream.on('close', () => sockets.delete(upstream));
          return;
        } else return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
