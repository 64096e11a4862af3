import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dnsDomainIs, dnsDomainLevels, isPlainHostName, localHostOrDomainIs, shExpMatch } from './match.js';

test('isPlainHostName', () => {
  for (const [host, expected] of [['www', true], ['www.example.com', false], ['', true], ['10.0.0.1', false]] as const) {
    assert.equal(isPlainHostName(host), expected, host);
  }
});

test('dnsDomainIs', () => {
  const cases: [string, string, boolean][] = [
    ['www.example.com', '.example.com', true],
    ['www', '.example.com', false],
    ['www.other.com', '.example.com', false],
    ['example.com', 'example.com', true],
    ['com', '.example.com', false],
  ];
  for (const [host, domain, expected] of cases) assert.equal(dnsDomainIs(host, domain), expected, `${host} ${domain}`);
});

test('localHostOrDomainIs', () => {
  const cases: [string, string, boolean][] = [
    ['www.example.com', 'www.example.com', true],
    ['www', 'www.example.com', true],
    ['www.other.com', 'www.example.com', false],
    ['home.example.com', 'www.example.com', false],
  ];
  for (const [host, hostdom, expected] of cases) assert.equal(localHostOrDomainIs(host, hostdom), expected, host);
});

test('dnsDomainLevels', () => {
  for (const [host, expected] of [['www', 0], ['example.com', 1], ['a.b.example.com', 3]] as const) {
    assert.equal(dnsDomainLevels(host), expected, host);
  }
});

test('shExpMatch', () => {
  const cases: [string, string, boolean][] = [
    ['http://home.example.com/people/index.html', '*/people/*', true],
    ['http://home.example.com/others/index.html', '*/people/*', false],
    ['www.example.com', '*.example.com', true],
    ['example.com', '*.example.com', false],
    ['wwwxexample.com', 'www.example.com', false],
    ['ab', 'a?', true],
    ['abc', 'a?', false],
    ['a+b.com', 'a+b.com', true],
    ['aab.com', 'a+b.com', false],
    ['x(y)', 'x(y)', true],
    ['', '*', true],
  ];
  for (const [text, pattern, expected] of cases) assert.equal(shExpMatch(text, pattern), expected, `${text} ~ ${pattern}`);
});
