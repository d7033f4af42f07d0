/** lib/deploy/lock.ts: one deploy at a time, a stale lock taken over, the records of the run (in temporary folders). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { acquireLock, appendRecord, newOwner, readRun, releaseLock } from '../../lib/deploy/lock.ts';
import type { StepRecord } from '../../lib/deploy/state.ts';
import { assertRejectsMinerError } from '../support/assertions.ts';
import { DIGEST, owner, tempDir } from '../support/deploy-unit.ts';

/** The pid of a process that has exited (and been reaped): certainly not running. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  assert.equal(child.status, 0);
  return child.pid as number;
}

test('acquireLock: the lock is taken and records the owner, the words and no records yet', async () => {
  const dir = path.join(tempDir(), 'state');
  const first = owner('run-1', process.pid, 'just deploy tag=v1.0.0');
  assert.deepEqual(await acquireLock(dir, first, ['tag=v1.0.0']), { tookOver: undefined });
  assert.ok(existsSync(path.join(dir, 'lock')));
  assert.deepEqual(readRun(dir), { owner: first, words: ['tag=v1.0.0'], records: [] });
});

test('acquireLock: a second deploy is refused, naming pid, host, command and since of the holder', async () => {
  const dir = tempDir();
  const first = owner('run-1', process.pid, 'just deploy tag=v1.0.0');
  await acquireLock(dir, first, ['tag=v1.0.0']);
  await assertRejectsMinerError(
    acquireLock(dir, owner('run-2', process.pid, 'tasks/push.ts')),
    `another deploy holds the lock: pid ${process.pid} on ${os.hostname()} (\`just deploy tag=v1.0.0\`) since 2025-05-05T05:05:05.000Z`,
    `wait for it to finish; if it is gone, remove ${path.join(dir, 'lock')} and rerun`,
  );
  // the holder is unchanged
  assert.equal(readRun(dir)?.owner.id, 'run-1');
});

test('acquireLock: a lock held from another host is refused even when the pid is not running here', async () => {
  const dir = tempDir();
  const pid = deadPid();
  await acquireLock(dir, owner('remote', pid, 'just deploy tag=v1', 'other-host.example'));
  await assertRejectsMinerError(
    acquireLock(dir, owner('local', process.pid, 'just deploy tag=v2')),
    `another deploy holds the lock: pid ${pid} on other-host.example (\`just deploy tag=v1\`) since 2025-05-05T05:05:05.000Z`,
    `wait for it to finish; if it is gone, remove ${path.join(dir, 'lock')} and rerun`,
  );
});

test('acquireLock: a lock folder without run.json is held by "an unknown process"', async () => {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'lock'));
  await assertRejectsMinerError(
    acquireLock(dir, owner('run-1', process.pid, 'x')),
    'another deploy holds the lock: an unknown process',
    `wait for it to finish; if it is gone, remove ${path.join(dir, 'lock')} and rerun`,
  );
});

test('acquireLock: a stale lock (its pid no longer runs on this host) is taken over and the old owner reported', async () => {
  const dir = tempDir();
  const stale = owner('old', deadPid(), 'just deploy tag=v0');
  await acquireLock(dir, stale, ['tag=v0']);
  await appendRecord(dir, 'old', { step: 'build', result: 'ok', produced: 'x', seconds: 1 });
  const fresh = owner('new', process.pid, 'just deploy tag=v1');
  assert.deepEqual(await acquireLock(dir, fresh, ['tag=v1']), { tookOver: stale });
  assert.deepEqual(readRun(dir), { owner: fresh, words: ['tag=v1'], records: [] });
});

test('appendRecord: only the holder id appends (with the tag); releaseLock by another id does nothing', async () => {
  const dir = tempDir();
  const holder = owner('run-1', process.pid, 'just deploy tag=v1');
  await acquireLock(dir, holder, ['tag=v1']);
  const build: StepRecord = { step: 'build', result: 'ok', produced: 'img', seconds: 2 };
  await appendRecord(dir, 'run-1', build, 'v1');
  await appendRecord(dir, 'someone-else', { step: 'push', result: 'failed', produced: 'nope', seconds: 1 }, 'v9');
  assert.deepEqual(readRun(dir), { owner: holder, words: ['tag=v1'], tag: 'v1', records: [build] });
  await releaseLock(dir, 'someone-else');
  assert.ok(existsSync(path.join(dir, 'lock', 'run.json')));
  assert.ok(!existsSync(path.join(dir, 'last-run.json')));
});

test('releaseLock: run.json moves to last-run.json, the lock is gone, and a new deploy may take it', async () => {
  const dir = tempDir();
  const holder = newOwner('run-1', process.pid, 'just deploy tag=v1');
  assert.equal(holder.host, os.hostname());
  assert.equal(holder.pid, process.pid);
  await acquireLock(dir, holder, ['tag=v1']);
  const push: StepRecord = { step: 'push', result: 'ok', produced: DIGEST, seconds: 4 };
  await appendRecord(dir, 'run-1', push);
  await releaseLock(dir, 'run-1');
  assert.ok(!existsSync(path.join(dir, 'lock')));
  assert.equal(readRun(dir), undefined);
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'last-run.json'), 'utf8')), {
    owner: holder,
    words: ['tag=v1'],
    records: [push],
  });
  // appending after the release does nothing
  await appendRecord(dir, 'run-1', push);
  assert.equal(readRun(dir), undefined);
  assert.deepEqual(await acquireLock(dir, owner('run-2', process.pid, 'tasks/build.ts')), { tookOver: undefined });
});
