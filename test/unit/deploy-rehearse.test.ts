/** lib/deploy/rehearse.ts: the rehearse step's rerun check, its record, its next step, and commit's gate. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MinerError } from '../../lib/core/errors.ts';
import { alreadyPassed, passedLine, rehearsalGate, rehearsalNext, rehearseCommand, rehearseRecord } from '../../lib/deploy/rehearse.ts';
import { judgeRehearsal, type RunOutcome } from '../../lib/deploy/spotcheck.ts';
import { assertMinerError } from '../support/assertions.ts';
import { DIGEST } from '../support/deploy-unit.ts';

const goal = { frame: 75, action: 'goal', confidence: 0.9 };
const out = { frame: 175, action: 'ball_out_of_play', confidence: 0.8 };
const answered = (label: string, predictions: unknown[]): RunOutcome => ({
  label,
  ok: true,
  readyS: 2,
  result: { predictions, wall_s: 3, ok: true },
});
const now = { digest: DIGEST, started: 'docker.io/alice/pt:v1', host: 'this machine' };

test('the same answer three times: PASS, recorded with the digest, engine and image to start', () => {
  const judgement = judgeRehearsal({
    compared: 'runs',
    outcomes: [answered('run 1', [goal, out]), answered('run 2', [goal, out]), answered('to start', [goal, out])],
  });
  assert.equal(judgement.pass, true);
  const at = new Date('2026-12-07T12:00:00Z');
  assert.deepEqual(rehearseRecord(judgement, now, at), { ...now, result: 'PASS', difference: 0, at: '2026-12-07T12:00:00.000Z' });
  assert.equal(passedLine(judgement, 'this machine'), 'PASS on this machine: 3 answers within 0.02 (largest difference 0.0000)');
  assert.equal(rehearsalNext(judgement, now.started, 'v1'), undefined);
});

test('the digest answers like itself but the image to start does not: FAIL, and the next step says push what you built', () => {
  const judgement = judgeRehearsal({
    compared: 'runs',
    outcomes: [answered('run 1', [goal, out]), answered('run 2', [goal, out]), answered('to start', [])],
  });
  assert.equal(judgement.pass, false);
  assert.match(judgement.cause ?? '', /^to start scores 0\.0000 where run 1 scores 1\.0000 \(difference 1\.0000 > 0\.02\)$/);
  const record = rehearseRecord(judgement, now);
  assert.deepEqual([record.result, record.difference, record.cause], ['FAIL', 1, judgement.cause]);
  assert.equal(
    rehearsalNext(judgement, now.started, 'v1'),
    'the image start runs (docker.io/alice/pt:v1) answers differently from the pushed digest: push what you built (just deploy tag=v1), so that what is committed is what runs',
  );
});

test("run 2 differs from run 1 (not deterministic): FAIL with the spot check's own advice (no rehearsal-specific next step)", () => {
  const judgement = judgeRehearsal({
    compared: 'runs',
    outcomes: [answered('run 1', [goal]), answered('run 2', [out]), answered('to start', [goal])],
  });
  assert.equal(judgement.pass, false);
  assert.equal(rehearsalNext(judgement, now.started, 'v1'), undefined);
});

test('alreadyPassed: only a PASS of the same digest, image to start and engine', () => {
  const passed = { ...now, result: 'PASS' as const, at: 't' };
  assert.equal(alreadyPassed(passed, now), true);
  assert.equal(alreadyPassed(undefined, now), false);
  assert.equal(alreadyPassed({ ...passed, result: 'FAIL' }, now), false);
  assert.equal(alreadyPassed(passed, { ...now, digest: `sha256:${'0'.repeat(64)}` }), false);
  assert.equal(alreadyPassed(passed, { ...now, host: 'ssh://m@h' }), false);
  assert.equal(alreadyPassed(passed, { ...now, started: `alice/pt@${DIGEST}` }), false);
  // the same tag rebuilt (without a push): another image to start, rehearsed again
  const built = { ...passed, startedImageId: 'sha256:1' };
  assert.equal(alreadyPassed(built, { ...now, startedImageId: 'sha256:1' }), true);
  assert.equal(alreadyPassed(built, { ...now, startedImageId: 'sha256:2' }), false);
});

test('rehearseCommand keeps the profile', () => {
  assert.equal(rehearseCommand('v1'), 'npx tsx tasks/rehearse.ts --tag v1');
  assert.equal(rehearseCommand('v1', 'hk2'), 'npx tsx tasks/rehearse.ts --tag v1 --env hk2');
});

test('rehearsalGate: nothing recorded or a PASS -> commit; a FAIL -> refused with the cause and the way on; --force -> a warning', () => {
  assert.equal(rehearsalGate(DIGEST, undefined, { force: false, tag: 'v1' }), undefined);
  assert.equal(rehearsalGate(DIGEST, { result: 'PASS', at: 't' }, { force: false, tag: 'v1' }), undefined);
  const failed = { result: 'FAIL' as const, cause: 'run 2 scores 0.5000 where run 1 scores 1.0000', at: '2026-12-07T12:00:00.000Z' };
  assertMinerError(
    () => rehearsalGate(DIGEST, failed, { force: false, tag: 'v1', profile: 'hk2' }),
    `the rehearsal of ${DIGEST.slice(0, 19)} at 2026-12-07T12:00:00.000Z failed: run 2 scores 0.5000 where run 1 scores 1.0000`,
    "Score's spot check would find the same: fix the image, push it and rehearse again (just deploy tag=v1 env=hk2 from=rehearse after a push), or commit anyway with --force",
    MinerError,
  );
  assert.equal(
    rehearsalGate(DIGEST, failed, { force: true, tag: 'v1' }),
    `    warning: committing ${DIGEST.slice(0, 19)} although its rehearsal at 2026-12-07T12:00:00.000Z failed: run 2 scores 0.5000 where run 1 scores 1.0000 (--force)`,
  );
});
