/**
 * lib/deploy/pipeline.ts runDeploy with stand-in step mains (each records through runStep, as the tasks do): the
 * planned steps in order, where a failure stops the deploy, the lock released. test/deploy.test.ts runs the real
 * steps against dockerd and a registry.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MinerError } from '../../lib/core/errors.ts';
import { acquireLock, readRun } from '../../lib/deploy/lock.ts';
import { runDeploy } from '../../lib/deploy/pipeline.ts';
import type { StepName } from '../../lib/deploy/state.ts';
import { runStep } from '../../lib/deploy/step.ts';
import { planDeploy } from '../../tasks/deploy.ts';
import { owner, tempDir } from '../support/deploy-unit.ts';

/** Step mains for runDeploy: each records through runStep (as the tasks do) unless `behaviour` says otherwise. */
function stepMains(dir: string, calls: string[], behaviour: Partial<Record<StepName, 'exit 2' | 'throw' | 'fail'>>) {
  const main = (step: StepName) => async (argv: string[], deps: { err: (line: string) => void }) => {
    calls.push(`${step} ${argv.join(' ')}`);
    const what = behaviour[step];
    if (what === 'exit 2') {
      deps.err('error: --tag is odd\n  next: see the usage below');
      return 2;
    }
    if (what === 'throw') throw new Error(`${step} blew up`);
    await runStep({ step, lockHome: dir, out: () => undefined, tag: 'v1' }, step, async () => {
      if (what === 'fail') throw new MinerError(`${step} was refused`);
      return { produced: `${step} made` };
    }).catch((error) => {
      deps.err(`error: ${(error as Error).message}`);
    });
    return what === 'fail' ? 1 : 0;
  };
  return {
    build: main('build'),
    push: main('push'),
    rehearse: main('rehearse'),
    share: main('share'),
    commit: main('commit'),
    start: main('start'),
  };
}

async function deployWith(words: string[], behaviour: Partial<Record<StepName, 'exit 2' | 'throw' | 'fail'>>) {
  const dir = tempDir();
  const calls: string[] = [];
  const out: string[] = [];
  const err: string[] = [];
  const deps = { env: {}, out: (line: string) => out.push(line), err: (line: string) => err.push(line) };
  const result = runDeploy({
    plan: planDeploy(words),
    words,
    lockHome: dir,
    where: { host: 'this machine' },
    mains: stepMains(dir, calls, behaviour),
    deps,
  });
  return { dir, calls, out, err, result };
}

const rows = (out: string[]) =>
  out
    .join('\n')
    .split('\n')
    .filter((line) => /^(build|push|rehearse|share|commit|start) /.test(line))
    .map((line) => line.replace(/\s{2,}/g, ' | ').replace(/\d+\.\d s$/, 'T'));

test('runDeploy: the planned steps in order with --tag, the skipped ones recorded with their reason; exit 0, lock released', async () => {
  const run = await deployWith(['tag=v1', 'share=false', 'commit=false'], {});
  assert.equal(await run.result, 0);
  assert.deepEqual(run.calls, ['build --tag v1', 'push --tag v1', 'rehearse --tag v1', 'start --tag v1']);
  assert.deepEqual(rows(run.out), [
    'build | ok | build made | T',
    'push | ok | push made | T',
    'rehearse | ok | rehearse made | T',
    'share | skipped | share=false | T',
    'commit | skipped | commit=false | T',
    'start | ok | start made | T',
  ]);
  assert.equal(run.out.at(-1)?.split('\n').at(-1), 'deploy finished');
  assert.ok(!existsSync(path.join(run.dir, 'lock')));
  assert.equal(JSON.parse(readFileSync(path.join(run.dir, 'last-run.json'), 'utf8')).records.length, 6);
});

test('runDeploy: a step that records its failure stops the deploy there with its exit code; the later steps are not run', async () => {
  const run = await deployWith(['tag=v1'], { push: 'fail' });
  assert.equal(await run.result, 1);
  assert.deepEqual(run.calls, ['build --tag v1', 'push --tag v1']);
  assert.deepEqual(rows(run.out), [
    'build | ok | build made | T',
    'push | failed | push was refused | T',
    'rehearse | not run',
    'share | not run',
    'commit | not run',
    'start | not run',
  ]);
  assert.deepEqual(run.out.at(-1)?.split('\n').slice(-2), [
    'deploy failed at push; after fixing the cause, rerun from there:',
    '  just deploy tag=v1 from=push',
  ]);
  assert.deepEqual(run.err, ['error: push was refused']);
  assert.ok(!existsSync(path.join(run.dir, 'lock')));
});

test('runDeploy: a step that exits without a record is named with the first error it printed, and its exit code kept', async () => {
  const run = await deployWith(['tag=v1', 'from=share'], { commit: 'exit 2' });
  assert.equal(await run.result, 2);
  assert.deepEqual(rows(run.out).slice(3, 5), ['share | ok | share made | T', 'commit | failed | --tag is odd | T']);
  assert.ok(!existsSync(path.join(run.dir, 'lock')));
});

test('runDeploy: a step that throws: the summary names it with the error, the lock is released, the error goes on', async () => {
  const run = await deployWith(['tag=v1'], { build: 'throw' });
  await assert.rejects(run.result, /build blew up/);
  assert.deepEqual(rows(run.out)[0], 'build | failed | build blew up | T');
  assert.ok(!existsSync(path.join(run.dir, 'lock')));
});

test('runDeploy: a held lock refuses the deploy before any step runs and prints no summary', async () => {
  const dir = tempDir();
  await acquireLock(dir, owner('deploy-1', process.pid, 'just deploy tag=v0'), ['tag=v0']);
  const calls: string[] = [];
  const out: string[] = [];
  const deps = { env: {}, out: (line: string) => out.push(line), err: () => undefined };
  await assert.rejects(
    runDeploy({
      plan: planDeploy(['tag=v1']),
      words: ['tag=v1'],
      lockHome: dir,
      where: { host: 'this machine' },
      mains: stepMains(dir, calls, {}),
      deps,
    }),
    /another deploy holds the lock: pid \d+ on .* \(`just deploy tag=v0`\)/,
  );
  assert.deepEqual([calls, out], [[], []]);
  assert.equal(readRun(dir)?.owner.id, 'deploy-1');
});
