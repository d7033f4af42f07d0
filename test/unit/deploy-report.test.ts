/** lib/deploy/report.ts: the `just deploy` words to rerun from a step, a step's headline and result line, the summary table. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headline, rerunCommand, resultLine, summaryTable } from '../../lib/deploy/report.ts';
import type { StepRecord } from '../../lib/deploy/state.ts';
import { DIGEST } from '../support/deploy-unit.ts';

test('rerunCommand: from= replaced, the other words kept in order; from=build is left out', () => {
  assert.equal(
    rerunCommand(['tag=v1.0.0', 'from=build', 'share=false', 'start=false'], 'push'),
    'just deploy tag=v1.0.0 share=false start=false from=push',
  );
  assert.equal(rerunCommand(['commit=false', 'tag=v2'], 'start'), 'just deploy commit=false tag=v2 from=start');
  assert.equal(rerunCommand(['tag=v1.0.0', 'from=commit'], 'build'), 'just deploy tag=v1.0.0');
  assert.equal(rerunCommand([], 'share'), 'just deploy from=share');
});

test('headline and resultLine', () => {
  assert.equal(headline('push', 'push docker.io/alice/pt-solution:v1.0.0'), '==> push: push docker.io/alice/pt-solution:v1.0.0');
  assert.equal(resultLine({ step: 'push', result: 'ok', produced: DIGEST, seconds: 3.46 }), `    done: ${DIGEST} (3.5 s)`);
  assert.equal(
    resultLine({ step: 'build', result: 'failed', produced: 'docker build failed: x', seconds: 0 }),
    '    failed: docker build failed: x (0.0 s)',
  );
  assert.equal(
    resultLine({ step: 'share', result: 'skipped', produced: 'scorevision already reads it', seconds: 12 }),
    '    skipped: scorevision already reads it (12.0 s)',
  );
  assert.equal(
    resultLine({ step: 'share', result: 'manual', produced: 'add scorevision by hand', seconds: 0.04 }),
    '    manual: add scorevision by hand (0.0 s)',
  );
});

test('summaryTable: every step ok -> the aligned table, the total and "deploy finished"', () => {
  const records: StepRecord[] = [
    { step: 'build', result: 'ok', produced: 'img:v1', seconds: 12.34 },
    { step: 'push', result: 'ok', produced: 'sha256:ab', seconds: 3.5 },
    { step: 'rehearse', result: 'ok', produced: 'PASS', seconds: 30 },
    { step: 'share', result: 'ok', produced: 'read', seconds: 0.8 },
    { step: 'commit', result: 'ok', produced: 'block 7', seconds: 6 },
    { step: 'start', result: 'ok', produced: 'c0ffee', seconds: 2.2 },
  ];
  assert.equal(
    summaryTable(records, ['tag=v1'], { host: 'this machine' }),
    [
      'step      result  produced   time',
      '--------  ------  ---------  ------',
      'build     ok      img:v1     12.3 s',
      'push      ok      sha256:ab  3.5 s',
      'rehearse  ok      PASS       30.0 s',
      'share     ok      read       0.8 s',
      'commit    ok      block 7    6.0 s',
      'start     ok      c0ffee     2.2 s',
      '',
      'miner on this machine; total 54.8 s',
      'deploy finished',
    ].join('\n'),
  );
});

test('summaryTable: a failure at push -> later steps "not run", and the command that reruns from push', () => {
  const records: StepRecord[] = [
    { step: 'build', result: 'ok', produced: 'img:v1', seconds: 10 },
    { step: 'push', result: 'failed', produced: 'docker push failed: denied', seconds: 1.5 },
  ];
  assert.equal(
    summaryTable(records, ['tag=v1.0.0', 'from=build', 'start=true'], { host: 'ssh://miner@gpu-box.example', profile: 'hk2' }),
    [
      'step      result   produced                    time',
      '--------  -------  --------------------------  ------',
      'build     ok       img:v1                      10.0 s',
      'push      failed   docker push failed: denied  1.5 s',
      'rehearse  not run',
      'share     not run',
      'commit    not run',
      'start     not run',
      '',
      'miner on ssh://miner@gpu-box.example (profile hk2); total 11.5 s',
      'deploy failed at push; after fixing the cause, rerun from there:',
      '  just deploy tag=v1.0.0 start=true from=push',
    ].join('\n'),
  );
});

test('summaryTable: steps without a record after a success read "skipped"; skipped records keep their reason', () => {
  const records: StepRecord[] = [
    { step: 'build', result: 'skipped', produced: 'before from=push', seconds: 0 },
    { step: 'push', result: 'ok', produced: 'd', seconds: 1 },
    { step: 'share', result: 'manual', produced: 'by hand', seconds: 0.25 },
  ];
  assert.equal(
    summaryTable(records, ['tag=v1', 'from=push'], { host: 'this machine' }),
    [
      'step      result   produced          time',
      '--------  -------  ----------------  -----',
      'build     skipped  before from=push  0.0 s',
      'push      ok       d                 1.0 s',
      'rehearse  skipped',
      'share     manual   by hand           0.3 s',
      'commit    skipped',
      'start     skipped',
      '',
      'miner on this machine; total 1.3 s',
      'deploy finished',
    ].join('\n'),
  );
});
