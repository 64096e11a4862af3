import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkedBodyEnd, connectionTokens, contentLength, headEnd, parseHead, readResponseHead, ResponseBody, responseFraming } from './http1-heads.js';

const head = (text: string) => parseHead(`${text}\r\n\r\n`);

describe('parseHead', () => {
  it('reads the start line and the fields, values without surrounding whitespace', () => {
    const parsed = head('GET /a?b=1 HTTP/1.1\r\nHost: app\r\nX-Two:  a b \t\r\nx-empty:');
    assert.deepEqual(parsed, {
      startLine: 'GET /a?b=1 HTTP/1.1',
      names: ['Host', 'X-Two', 'x-empty'], lowerNames: ['host', 'x-two', 'x-empty'], values: ['app', 'a b', ''],
    });
  });

  it('refuses what a strict parser must: space before the colon, obs-fold, bare LF, control characters, no colon', () => {
    for (const bad of [
      'GET / HTTP/1.1\r\nHost : app',
      'GET / HTTP/1.1\r\nHost: app\r\n folded',
      'GET / HTTP/1.1\nHost: app',
      'GET / HTTP/1.1\r\nHost: a\npp',
      'GET / HTTP/1.1\r\nX: a\x00b',
      'GET / HTTP/1.1\r\nno colon here',
      'GET / HTTP/1.1\r\n: empty name',
    ]) assert.equal(head(bad), undefined, JSON.stringify(bad));
  });

  it('agrees with the plain split-and-trim reading on 20,000 random heads (valid and not)', () => {
    // The straightforward reading of the grammar, kept here as the oracle for the one-pass parser.
    const oracle = (text: string) => {
      const lines = text.slice(0, -4).split('\r\n');
      if (/[\r\n]/.test(lines[0])) return undefined;
      const parsed = { startLine: lines[0], names: [] as string[], lowerNames: [] as string[], values: [] as string[] };
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon <= 0 || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(line.slice(0, colon))) return undefined;
        const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
        if ([...value].some((c) => (c < ' ' && c !== '\t') || c === '\x7f')) return undefined;
        parsed.names.push(line.slice(0, colon));
        parsed.lowerNames.push(line.slice(0, colon).toLowerCase());
        parsed.values.push(value);
      }
      return parsed;
    };
    const pieces = ['GET / HTTP/1.1', 'Host', 'X-A', ':', ': ', ' ', '\t', 'v', 'a b', '\r\n', '\r', '\n', '\x00', '\x7f', 'é', ',', '\r\n\r\n'];
    let seed = 7;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 20_000; i++) {
      let text = pieces[0];
      for (let n = random(12); n > 0; n--) text += pieces[random(pieces.length)];
      text += '\r\n\r\n';
      assert.deepEqual(parseHead(text), oracle(text), JSON.stringify(text));
    }
  });

  it('finds the end of a head', () => {
    assert.equal(headEnd(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\nbody')), 27);
    assert.equal(headEnd(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n')), -1);
  });
});

describe('framing', () => {
  it('takes one Content-Length, or identical repeats; refuses others', () => {
    assert.equal(contentLength(head('POST / HTTP/1.1\r\nContent-Length: 12')!), 12);
    assert.equal(contentLength(head('POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5')!), 5);
    assert.equal(contentLength(head('POST / HTTP/1.1\r\nContent-Length: 5, 5')!), 5);
    assert.equal(contentLength(head('POST / HTTP/1.1')!), 'none');
    for (const bad of ['5, 6', '-1', '+5', '0x10', '5 5', '', '1234567890123456']) {
      assert.equal(contentLength(head(`POST / HTTP/1.1\r\nContent-Length: ${bad}`)!), 'invalid', bad);
    }
  });

  it('frames responses as RFC 9112 §6.3 says', () => {
    const response = (fields: string) => head(`HTTP/1.1 200 OK${fields}`)!;
    assert.deepEqual(responseFraming(response('\r\nContent-Length: 3'), 200, 'HEAD'), { kind: 'none' });
    assert.deepEqual(responseFraming(response('\r\nContent-Length: 3'), 304, 'GET'), { kind: 'none' });
    assert.deepEqual(responseFraming(response(''), 204, 'GET'), { kind: 'none' });
    assert.deepEqual(responseFraming(response(''), 103, 'GET'), { kind: 'none' });
    assert.deepEqual(responseFraming(response('\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 3'), 200, 'GET'), { kind: 'chunked' });
    assert.deepEqual(responseFraming(response('\r\nTransfer-Encoding: chunked, gzip'), 200, 'GET'), { kind: 'until-close' });
    assert.deepEqual(responseFraming(response('\r\nContent-Length: 3'), 200, 'GET'), { kind: 'length', length: 3 });
    assert.deepEqual(responseFraming(response(''), 200, 'GET'), { kind: 'until-close' });
    assert.equal(responseFraming(response('\r\nContent-Length: 3\r\nContent-Length: 4'), 200, 'GET'), 'invalid');
  });

  it('reads the Connection tokens of every Connection field', () => {
    assert.deepEqual([...connectionTokens(head('GET / HTTP/1.1\r\nConnection: Keep-Alive, X-A\r\nconnection: close')!)], ['keep-alive', 'x-a', 'close']);
  });
});

describe('ChunkedBodyEnd', () => {
  const body = '4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n';

  it('finds the end of a chunked body with extensions and trailers, split at every byte', () => {
    const bytes = Buffer.from(`${body}NEXT`);
    for (let split = 1; split < bytes.length; split++) {
      const scanner = new ChunkedBodyEnd();
      const first = scanner.scan(bytes.subarray(0, split));
      if (first !== -1) {
        assert.equal(first, body.length, `split ${split}`);
        continue;
      }
      assert.equal(scanner.scan(bytes.subarray(split)), body.length - split, `split ${split}`);
    }
  });

  it('hands out exactly the chunks\' data, split at every byte', () => {
    const bytes = Buffer.from(body);
    for (let split = 1; split < bytes.length; split++) {
      const scanner = new ChunkedBodyEnd();
      const data: Buffer[] = [];
      const onData = (part: Buffer) => data.push(Buffer.from(part));
      if (scanner.scan(bytes.subarray(0, split), 0, onData) === -1) scanner.scan(bytes.subarray(split), 0, onData);
      assert.equal(Buffer.concat(data).toString(), 'Wikipedia in\r\n\r\nchunks.', `split ${split}`);
    }
  });

  it('ends a body without trailers', () => {
    assert.equal(new ChunkedBodyEnd().scan(Buffer.from('3\r\nabc\r\n0\r\n\r\n')), 13);
  });

  it('refuses bad framing instead of guessing', () => {
    for (const bad of ['x\r\n', '3\r\nabcX\r\n', '3\nabc\r\n', '-1\r\n', `${'1'.repeat(13)}\r\n`]) {
      assert.throws(() => new ChunkedBodyEnd().scan(Buffer.from(bad)), /chunked body/, bad);
    }
    assert.throws(() => new ChunkedBodyEnd().scan(Buffer.from(`1;${'x'.repeat(5000)}`)), /longer than 4 KiB/);
  });
});

describe('readResponseHead and ResponseBody', () => {
  const head = (text: string) => parseHead(`${text}\r\n\r\n`)!;

  it('reads status, reason, framing and whether the connection stays', () => {
    const ok = readResponseHead(head('HTTP/1.1 200 OK\r\nContent-Length: 3'), 'GET')!;
    assert.deepEqual([ok.status, ok.reason, ok.framing, ok.keepAlive], [200, 'OK', { kind: 'length', length: 3 }, true]);
    assert.equal(readResponseHead(head('HTTP/1.0 200 OK\r\nContent-Length: 3'), 'GET')!.keepAlive, false);
    assert.equal(readResponseHead(head('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3'), 'GET')!.keepAlive, true);
    assert.equal(readResponseHead(head('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3'), 'GET')!.keepAlive, false);
    assert.equal(readResponseHead(head('HTTP/1.1 200 OK'), 'GET')!.keepAlive, false, 'a body that ends with the connection');
    assert.equal(readResponseHead(head('HTTP/1.1 101 Switching Protocols'), 'GET'), undefined);
    assert.equal(readResponseHead(head('HTTP/2 200'), 'GET'), undefined);
  });

  it('takes a body in its framing, data without the chunk framing, and stops at its end', () => {
    const sized = new ResponseBody({ kind: 'length', length: 5 });
    const data: string[] = [];
    assert.equal(sized.take(Buffer.from('hel'), (part) => data.push(part.toString())), 3);
    assert.equal(sized.take(Buffer.from('loNEXT'), (part) => data.push(part.toString())), 2);
    assert.deepEqual([sized.ended, data], [true, ['hel', 'lo']]);
    const chunked = new ResponseBody({ kind: 'chunked' });
    const parts: string[] = [];
    assert.equal(chunked.take(Buffer.from('3\r\nabc\r\n0\r\n\r\nNEXT'), (part) => parts.push(part.toString())), 13);
    assert.deepEqual([chunked.ended, parts], [true, ['abc']]);
    assert.equal(new ResponseBody({ kind: 'none' }).ended, true);
    assert.equal(new ResponseBody({ kind: 'length', length: 0 }).ended, true);
    assert.throws(() => new ResponseBody({ kind: 'chunked' }).take(Buffer.from('zz\r\n')), /bad chunk size/);
  });
});
