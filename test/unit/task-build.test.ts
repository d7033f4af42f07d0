/** tasks/build.ts: the --build-arg words. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../lib/core/task.ts';
import { parseBuildArgs } from '../../tasks/build.ts';
import { assertMinerError } from '../support/assertions.ts';

test('parseBuildArgs: NAME=VALUE words -> an object (the value may hold "=", be empty; the last one wins)', () => {
  assert.deepEqual(parseBuildArgs(['MODEL_SRC=models/mine', 'BASE_IMAGE=node:24-bookworm-slim', 'EMPTY=', 'EQ=a=b', '_x1=2']), {
    MODEL_SRC: 'models/mine',
    BASE_IMAGE: 'node:24-bookworm-slim',
    EMPTY: '',
    EQ: 'a=b',
    _x1: '2',
  });
  assert.deepEqual(parseBuildArgs(['A=1', 'A=2']), { A: '2' });
  assert.deepEqual(parseBuildArgs([]), {});
});

test('parseBuildArgs: a word that is not NAME=VALUE -> UsageError naming it', () => {
  for (const word of ['NOEQUALS', '=x', '1A=x', 'A-B=1', ' A=1']) {
    assertMinerError(
      () => parseBuildArgs([word]),
      `--build-arg ${JSON.stringify(word)} is not NAME=VALUE`,
      'run with --help for the options',
      UsageError,
    );
  }
});
