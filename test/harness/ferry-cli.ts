// Runs the built `ferry` CLI (dist/src/cli/main.js) as a child process, bounded in time.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** dist/test/harness → dist/src/cli/main.js */
export const FERRY_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** dist/test/harness → <repo>/test/fixtures */
export const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runFerry(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [FERRY_MAIN, ...args],
      { timeout: options.timeoutMs ?? 20_000, env: options.env ?? process.env, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
