// src/cli — composition roots only: parse the command line, build the parts, run them.
// Imports anything; nothing imports cli.
//
// The exit-code contract of DESIGN.md: 0 success, 1 a failure the command diagnosed, 2 a usage or
// configuration error. Every action goes through here so the mapping lives in one place.
import { ConfigError, UsageError, describeError } from '../shared/errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Wraps a commander action: returns its exit code, prints classified errors to stderr. */
export function runAction<A extends unknown[]>(action: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await action(...args);
      process.exitCode = code ?? EXIT_OK;
    } catch (error) {
      process.stderr.write(`ferry: ${describeError(error)}\n`);
      process.exitCode = error instanceof UsageError || error instanceof ConfigError ? EXIT_USAGE : EXIT_FAILURE;
      if (process.env.FERRY_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    }
  };
}
