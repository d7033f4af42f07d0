/** lib/deploy/step.ts: a step alone takes its own lock, inside a deploy it reports to the deploy; the cause line of an error. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { MinerError } from '../../lib/core/errors.ts';
import { acquireLock, type LockOwner, readRun } from '../../lib/deploy/lock.ts';
import type { StepRecord } from '../../lib/deploy/state.ts';
import { errorCause, insideDeploy, runStep, undoAll, undoOnSignal } from '../../lib/deploy/step.ts';
import { assertRejectsMinerError } from '../support/assertions.ts';
import { owner, tempDir } from '../support/deploy-unit.ts';

test('runStep alone: its own lock (tasks/<step>.ts, this pid) while the body runs, released after; headline and result line', async () => {
  const dir = path.join(tempDir(), 'state');
  const lines: string[] = [];
  let heldDuring: LockOwner | undefined;
  const outcome = await runStep({ step: 'push', lockHome: dir, out: (line) => lines.push(line), tag: 'v1' }, 'push x:v1', async () => {
    heldDuring = readRun(dir)?.owner;
    return { produced: 'sha256:abc' };
  });
  assert.deepEqual(outcome, { produced: 'sha256:abc' });
  assert.deepEqual([heldDuring?.id, heldDuring?.pid, heldDuring?.command], [`push-${process.pid}`, process.pid, 'tasks/push.ts']);
  assert.equal(readRun(dir), undefined);
  assert.ok(!existsSync(path.join(dir, 'lock')));
  assert.equal(lines[0], '==> push: push x:v1');
  assert.match(lines[1], /^ {4}done: sha256:abc \(\d+\.\d s\)$/);
  assert.equal(lines.length, 2);
});

test('runStep alone while a deploy holds the lock: refused naming the holder, the body never runs', async () => {
  const dir = tempDir();
  await acquireLock(dir, owner('deploy-1', process.pid, 'just deploy tag=v1'), ['tag=v1']);
  let ran = false;
  await assertRejectsMinerError(
    runStep({ step: 'commit', lockHome: dir, out: () => undefined }, 'commit', async () => {
      ran = true;
      return { produced: '' };
    }),
    `another deploy holds the lock: pid ${process.pid} on ${os.hostname()} (\`just deploy tag=v1\`) since 2025-05-05T05:05:05.000Z`,
    `wait for it to finish; if it is gone, remove ${path.join(dir, 'lock')} and rerun`,
  );
  assert.equal(ran, false);
  assert.equal(readRun(dir)?.owner.id, 'deploy-1');
});

test('runStep inside a deploy: no lock of its own; the deploy gets each record with the tag, a failure with its cause', async () => {
  const dir = tempDir();
  // The deploy's lock is held (by "deploy-1"): a step that tried to take its own would be refused.
  await acquireLock(dir, owner('deploy-1', process.pid, 'just deploy tag=v2'), ['tag=v2']);
  const received: [StepRecord, string | undefined][] = [];
  const deploy = {
    async record(record: StepRecord, tag?: string) {
      received.push([record, tag]);
    },
  };
  const lines: string[] = [];
  const out = (line: string) => lines.push(line);
  await insideDeploy(deploy, () =>
    runStep({ step: 'build', lockHome: dir, out, tag: 'v2' }, 'docker build', async () => ({
      produced: 'img',
      result: 'skipped',
    })),
  );
  const failure = new MinerError('the registry refused', { hint: 'log in' });
  await assert.rejects(
    insideDeploy(deploy, () =>
      runStep({ step: 'push', lockHome: dir, out, tag: 'v2' }, 'push', async () => {
        throw failure;
      }),
    ),
    (error) => error === failure,
  );
  assert.deepEqual(
    received.map(([record, tag]) => [record.step, record.result, record.produced, tag]),
    [
      ['build', 'skipped', 'img', 'v2'],
      ['push', 'failed', 'the registry refused', 'v2'],
    ],
  );
  assert.ok(received.every(([record]) => record.seconds >= 0 && record.seconds < 60));
  assert.equal(readRun(dir)?.owner.id, 'deploy-1');
  assert.deepEqual(
    lines.map((line) => line.replace(/\(\d+\.\d s\)/, '(T)')),
    ['==> build: docker build', '    skipped: img (T)', '==> push: push', '    failed: the registry refused (T)'],
  );
  // Outside insideDeploy the same step takes the lock for itself again, and is refused by the deploy's.
  await assert.rejects(
    runStep({ step: 'push', lockHome: dir, out }, 'push', async () => ({ produced: '' })),
    /another deploy holds the lock/,
  );
});

test('errorCause: the first line of describeError without "error: "', () => {
  assert.equal(errorCause('error: DOCKERHUB_USERNAME is not set\n  next: set it'), 'DOCKERHUB_USERNAME is not set');
  assert.equal(errorCause('no prefix'), 'no prefix');
});

// Last in this file: undoAll marks the process as stopping by a signal.
test('undoOnSignal / undoAll: each registered undo runs once, a forgotten one not; failures are dropped', async () => {
  const ran: string[] = [];
  undoOnSignal(async () => {
    ran.push('container removed');
  });
  const forget = undoOnSignal(async () => {
    ran.push('forgotten');
  });
  undoOnSignal(async () => {
    ran.push('failing');
    throw new Error('engine gone');
  });
  forget();
  await undoAll('SIGTERM');
  await undoAll('SIGTERM');
  assert.deepEqual(ran, ['container removed', 'failing']);
});
