// Pure logic of the relay side of connection streams.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hostOfFirstHead } from './connection-stream.js';

describe('hostOfFirstHead (routing only; the connector parses every request again)', () => {
  it('finds the Host of an HTTP/1.x request head, lower-cased', () => {
    assert.equal(hostOfFirstHead('GET /x HTTP/1.1\r\nUser-Agent: t\r\nHOST: App.Example.com:8443'), 'app.example.com:8443');
    assert.equal(hostOfFirstHead('POST / HTTP/1.0\r\nhost:a.test'), 'a.test');
  });

  it('gives up (the per-request server answers) on anything unusual', () => {
    for (const head of [
      'GET /x HTTP/1.1\r\nUser-Agent: t',                 // no Host
      'GET /x HTTP/1.1\r\nHost: a.test\r\nHost: b.test',   // two Hosts
      'GET /x HTTP/1.1\r\nHost : a.test',                  // whitespace before the colon
      'GET /x HTTP/1.1\r\n folded: line\r\nHost: a.test',  // obsolete line folding
      'PRI * HTTP/2.0\r\n\r\nSM',                          // an HTTP/2 preface
      'get /x HTTP/1.1\r\nHost: a.test',                   // not a method token as sent by clients
      'GET /x HTTP/1.1\r\nHost:',                          // empty Host
    ]) assert.equal(hostOfFirstHead(head), undefined, head);
  });
});
