// Reads the ALPN protocols and SNI name from a TLS ClientHello without consuming it, so the
// relay's public port can hand connector tunnels (ALPN ferry-tunnel/1, mTLS) and user traffic
// (h2/http1.1, no client-certificate request that would make browsers prompt) to two different
// TLS servers. Only the first handshake message is parsed (RFC 8446 §4.1.2, RFC 7301, RFC 6066).

export interface ClientHelloInfo {
  alpn: string[];
  serverName?: string;
}

/** Returns the info, `undefined` when more bytes are needed, or `null` when this is not a ClientHello. */
export function parseClientHello(data: Buffer): ClientHelloInfo | undefined | null {
  // TLS record: type 22 (handshake), version, length. The ClientHello may span records; gather them.
  const handshake: Buffer[] = [];
  let offset = 0;
  let gathered = 0;
  let needed = -1;
  while (offset + 5 <= data.length) {
    if (data[offset] !== 22) return null;
    const length = data.readUInt16BE(offset + 3);
    if (offset + 5 + length > data.length) return undefined;
    handshake.push(data.subarray(offset + 5, offset + 5 + length));
    gathered += length;
    offset += 5 + length;
    if (needed < 0 && gathered >= 4) {
      const head = Buffer.concat(handshake);
      if (head[0] !== 1) return null; // not a ClientHello
      needed = 4 + head.readUIntBE(1, 3);
    }
    if (needed >= 0 && gathered >= needed) return parseHello(Buffer.concat(handshake).subarray(4, needed));
  }
  if (data.length > 0 && data[0] !== 22) return null;
  return undefined;
}

function parseHello(body: Buffer): ClientHelloInfo | null {
  try {
    let at = 2 + 32; // legacy_version, random
    at += 1 + body[at]!; // session id
    at += 2 + body.readUInt16BE(at); // cipher suites
    at += 1 + body[at]!; // compression methods
    const info: ClientHelloInfo = { alpn: [] };
    if (at + 2 > body.length) return info;
    const end = at + 2 + body.readUInt16BE(at);
    at += 2;
    while (at + 4 <= end) {
      const type = body.readUInt16BE(at);
      const length = body.readUInt16BE(at + 2);
      const ext = body.subarray(at + 4, at + 4 + length);
      at += 4 + length;
      if (type === 16) {
        for (let i = 2; i < ext.length;) {
          const len = ext[i]!;
          info.alpn.push(ext.subarray(i + 1, i + 1 + len).toString('latin1'));
          i += 1 + len;
        }
      } else if (type === 0 && ext.length > 5 && ext[2] === 0) {
        info.serverName = ext.subarray(5, 5 + ext.readUInt16BE(3)).toString('latin1');
      }
    }
    return info;
  } catch {
    return null;
  }
}
