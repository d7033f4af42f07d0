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

/** Asserts `fn` throws a MinerError (of `type` when given) with exactly `message` and, when given, `hint`. */
export function assertMinerError(
  fn: () => unknown,
  message: string | RegExp,
  hint?: string | RegExp,
  type: new (...args: never[]) => MinerError = MinerError,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    if (typeof hint === 'string') assert.equal(error.hint, hint);
    else if (hint) assert.match(error.hint ?? '', hint);
    return true;
  });
}

/** `promise` rejects with a MinerError with exactly `message` and `hint`. */
export async function assertRejectsMinerError(promise: Promise<unknown>, message: string, hint: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof MinerError, String(error));
    assert.equal(error.message, message);
    assert.equal(error.hint, hint);
    return true;
  });
}
