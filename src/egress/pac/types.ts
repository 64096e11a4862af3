// src/egress/pac — the PAC engine: QuickJS (WebAssembly) sandbox, PAC builtins, result parsing.
// Imports src/shared and ../types only.
import type { Route } from '../types.js';

/** Failure classes of a PAC evaluation (the `ferry pac eval --json` contract). */
export type PacErrorClass =
  | 'syntax'
  | 'no-entrypoint'
  | 'load-timeout'
  | 'exception'
  | 'timeout'
  | 'resource-limit'
  | 'non-string-result';

/** What the script sees of the world; everything is injectable so `pac eval` can pin it. */
export interface PacEnvironment {
  /** Resolve a host name to addresses (IPv4 and IPv6); empty array when it does not resolve. */
  resolve(host: string): Promise<string[]>;
  /** This machine's addresses, preferred first. */
  myAddresses(): string[];
  now(): Date;
  /** IANA time zone for weekdayRange/dateRange/timeRange without "GMT". */
  timeZone?: string;
  alert?(message: string): void;
}

export interface PacLimits {
  /** Per-call time limit, ms (default 200). */
  callTimeoutMs?: number;
  /** Time limit for loading the script, ms (default 500). */
  loadTimeoutMs?: number;
  /** QuickJS heap limit, bytes (default 16 MiB). */
  memoryBytes?: number;
}

export interface ParsedPacResult {
  routes: Route[];
  /** Entries that could not be parsed, reported rather than silently dropped. */
  invalid: { entry: string; reason: string }[];
}

export interface PacEngine {
  /** sha1 of the script text, for caching and provenance. */
  readonly sha1: string;
  /** Runs FindProxyForURLEx when defined, else FindProxyForURL; returns the raw string. */
  findProxy(url: string, host: string): Promise<string>;
  dispose(): void;
}
