// The PAC builtins as the sandbox sees them. Each one is a host (Node) function reached through a
// single dispatcher that the sandbox prelude hides in a closure, so the script's global object holds
// only the standard PAC functions, never a handle to the host.
import { convertAddr, firstIPv4, ipInPrefix, ipv4InNet, isIPv4, isIPv6, sortIpAddressList } from './ip.js';
import { dnsDomainIs, dnsDomainLevels, isPlainHostName, localHostOrDomainIs, shExpMatch } from './match.js';
import { dateRange, timeRange, weekdayRange, type ClockSource } from './time.js';

/** What one evaluation (one load or one findProxy call) offers the builtins. */
export interface BuiltinScope {
  /** Addresses of `host`; undefined when not known yet (the engine then restarts the call, see engine.ts). */
  lookup(host: string): readonly string[] | undefined;
  myAddresses(): readonly string[];
  clock: ClockSource;
  nowMs(): number;
  alert(message: string): void;
}

export type BuiltinValue = string | number | boolean | null;
type Builtin = (scope: BuiltinScope, args: string[]) => BuiltinValue;

/** Addresses of a host: an IP literal answers itself, a name goes to DNS. */
function addressesOf(scope: BuiltinScope, host: string): readonly string[] {
  if (isIPv4(host) || isIPv6(host)) return [host];
  return scope.lookup(host) ?? [];
}

const BUILTINS: Record<string, Builtin> = {
  isPlainHostName: (_s, [host]) => isPlainHostName(host),
  dnsDomainIs: (_s, [host, domain]) => dnsDomainIs(host, domain),
  localHostOrDomainIs: (_s, [host, hostdom]) => localHostOrDomainIs(host, hostdom),
  dnsDomainLevels: (_s, [host]) => dnsDomainLevels(host),
  shExpMatch: (_s, [text, pattern]) => shExpMatch(text, pattern),
  convert_addr: (_s, [ip]) => convertAddr(ip),
  dnsResolve: (s, [host]) => firstIPv4(addressesOf(s, host)),
  isResolvable: (s, [host]) => firstIPv4(addressesOf(s, host)) !== null,
  isInNet: (s, [host, pattern, mask]) => {
    const ip = isIPv4(host) ? host : firstIPv4(addressesOf(s, host));
    return ip !== null && ipv4InNet(ip, pattern, mask);
  },
  myIpAddress: (s) => firstIPv4(s.myAddresses()) ?? '127.0.0.1',
  // Microsoft's IPv6-aware extensions (the "Ex" family): lists are ';'-separated, failures are "".
  dnsResolveEx: (s, [host]) => addressesOf(s, host).join(';'),
  isResolvableEx: (s, [host]) => addressesOf(s, host).length > 0,
  isInNetEx: (s, [host, prefix]) => addressesOf(s, host).some((ip) => ipInPrefix(ip, prefix)),
  myIpAddressEx: (s) => s.myAddresses().join(';'),
  sortIpAddressList: (_s, [list]) => sortIpAddressList(list),
  getClientVersion: () => '1.0',
  weekdayRange: (s, args) => weekdayRange(args, s.clock),
  dateRange: (s, args) => dateRange(args, s.clock),
  timeRange: (s, args) => timeRange(args, s.clock),
  alert: (s, [message]) => {
    s.alert(message);
    return null;
  },
  __now: (s) => s.nowMs(),
};

/** Names the sandbox defines as global functions (everything but the internal clock). */
export const PAC_FUNCTION_NAMES = Object.keys(BUILTINS).filter((name) => !name.startsWith('__'));

/** Runs builtin `name` with string arguments. Throws for an unknown name (cannot happen from the prelude). */
export function callBuiltin(scope: BuiltinScope, name: string, args: string[]): BuiltinValue {
  const builtin = BUILTINS[name];
  if (!builtin) throw new Error(`no PAC builtin named ${name}`);
  return builtin(scope, args);
}

/**
 * The sandbox prelude. It receives the host dispatcher as an argument, defines every PAC function as
 * a plain global function that converts its arguments to strings (in the sandbox, where a hostile
 * toString() is still under the time limit) and calls the dispatcher, then forgets the dispatcher.
 * It also makes `new Date()` / `Date.now()` read the pinned clock.
 */
export function sandboxPrelude(dispatcherGlobal: string): string {
  const defs = PAC_FUNCTION_NAMES.map(
    (name) => `  g.${name} = function ${name}() { var a = ['${name}']; for (var i = 0; i < arguments.length; i++) a.push(String(arguments[i])); return call.apply(null, a); };`,
  ).join('\n');
  return `(function (call) {
  'use strict';
  var g = globalThis;
${defs}
  var RealDate = g.Date;
  function now() { return call('__now'); }
  function Date() {
    if (!new.target) return new RealDate(now()).toString();
    if (arguments.length === 0) return new RealDate(now());
    var a = [null];
    for (var i = 0; i < arguments.length; i++) a.push(arguments[i]);
    return new (Function.prototype.bind.apply(RealDate, a))();
  }
  Date.prototype = RealDate.prototype;
  Date.now = now;
  Date.UTC = RealDate.UTC;
  Date.parse = RealDate.parse;
  g.Date = Date;
})(globalThis.${dispatcherGlobal});
delete globalThis.${dispatcherGlobal};
`;
}
