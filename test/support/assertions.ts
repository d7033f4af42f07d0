/** Assertions the suites share. */
import assert from 'node:assert/strict';
import { type ErrorKind, MinerError } from '../../lib/core/errors.ts';

/** `promise` rejects with a MinerError of `kind` whose message matches `pattern`; resolves to that error. */
export async function rejectsWith(promise: Promise<unknown>, kind: ErrorKind, pattern: RegExp): Promise<MinerError> {
  let caught: MinerError | undefined;
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof MinerError, `expected MinerError, got ${String(error)}`);
    assert.equal(error.kind, kind);
    assert.match(error.message, pattern);
    caught = error;
    return true;
  });
  return caught as MinerError;
}
