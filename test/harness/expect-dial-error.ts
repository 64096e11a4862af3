// Awaits a promise that must fail with a DialError, and returns the error for assertions on its
// typed fields (class, phase, status code...).
import assert from 'node:assert/strict';
import { DialError } from '../../src/shared/errors.js';

export async function failure(promise: Promise<unknown>): Promise<DialError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DialError, `expected a DialError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected failure');
}
