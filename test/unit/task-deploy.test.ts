/** tasks/deploy.ts planDeploy: the `just deploy` words -> the tag, where to start, and which steps run (or why not). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../lib/core/task.ts';
import { planDeploy } from '../../tasks/deploy.ts';
import { assertMinerError } from '../support/assertions.ts';

test('planDeploy: tag=v1.0.0 -> every step runs, from build', () => {
  assert.deepEqual(planDeploy(['tag=v1.0.0']), {
    tag: 'v1.0.0',
    from: 'build',
    steps: [
      { step: 'build', run: true },
      { step: 'push', run: true },
      { step: 'rehearse', run: true },
      { step: 'share', run: true },
      { step: 'commit', run: true },
      { step: 'start', run: true },
    ],
  });
});

test('planDeploy: push=false leaves out rehearse, share and commit (reason push=false) unless they are given =true', () => {
  assert.deepEqual(planDeploy(['tag=v1', 'push=false']).steps, [
    { step: 'build', run: true },
    { step: 'push', run: false, reason: 'push=false' },
    { step: 'rehearse', run: false, reason: 'push=false' },
    { step: 'share', run: false, reason: 'push=false' },
    { step: 'commit', run: false, reason: 'push=false' },
    { step: 'start', run: true },
  ]);
  assert.deepEqual(planDeploy(['push=false', 'share=true', 'tag=v1']).steps, [
    { step: 'build', run: true },
    { step: 'push', run: false, reason: 'push=false' },
    { step: 'rehearse', run: false, reason: 'push=false' },
    { step: 'share', run: true },
    { step: 'commit', run: false, reason: 'push=false' },
    { step: 'start', run: true },
  ]);
  assert.deepEqual(planDeploy(['tag=v1', 'push=false', 'commit=true', 'start=false']).steps, [
    { step: 'build', run: true },
    { step: 'push', run: false, reason: 'push=false' },
    { step: 'rehearse', run: false, reason: 'push=false' },
    { step: 'share', run: false, reason: 'push=false' },
    { step: 'commit', run: true },
    { step: 'start', run: false, reason: 'start=false' },
  ]);
});

test('planDeploy: share=false commit=false', () => {
  assert.deepEqual(planDeploy(['tag=v1.0.0', 'share=false', 'commit=false']), {
    tag: 'v1.0.0',
    from: 'build',
    steps: [
      { step: 'build', run: true },
      { step: 'push', run: true },
      { step: 'rehearse', run: true },
      { step: 'share', run: false, reason: 'share=false' },
      { step: 'commit', run: false, reason: 'commit=false' },
      { step: 'start', run: true },
    ],
  });
});

test('planDeploy: from=commit -> the earlier steps left out "before from=commit"', () => {
  assert.deepEqual(planDeploy(['tag=v1.0.0', 'from=commit']), {
    tag: 'v1.0.0',
    from: 'commit',
    steps: [
      { step: 'build', run: false, reason: 'before from=commit' },
      { step: 'push', run: false, reason: 'before from=commit' },
      { step: 'rehearse', run: false, reason: 'before from=commit' },
      { step: 'share', run: false, reason: 'before from=commit' },
      { step: 'commit', run: true },
      { step: 'start', run: true },
    ],
  });
  assert.deepEqual(
    planDeploy(['from=push', 'tag=v2', 'start=false']).steps.map((s) => [s.step, s.run, s.reason]),
    [
      ['build', false, 'before from=push'],
      ['push', true, undefined],
      ['rehearse', true, undefined],
      ['share', true, undefined],
      ['commit', true, undefined],
      ['start', false, 'start=false'],
    ],
  );
});

// Every wrong word is a UsageError (exit 2) naming the word, with the hint that fixes it.
const WORDS_HINT = 'the words are tag=, env=, push=, rehearse=, share=, commit=, start= and from=';
const SHAPE_HINT = 'write the words as in: just deploy tag=v1.0.0 share=false';
const OPTIONS_HINT = 'run with --help for the options';
const STEPS_HINT = 'use one of build, push, rehearse, share, commit, start';
const TAG_REQUIRED_HINT = 'e.g. just deploy tag=v1.0.0';
const TAG_HINT = 'use letters, digits, "_", "." and "-" (at most 128, not starting with "." or "-")';
const wrongWords: [string[], string, string][] = [
  [['tag=v1', 'colour=red'], 'unknown word "colour=red"', WORDS_HINT],
  // build cannot be switched off (use from=)
  [['tag=v1', 'build=false'], 'unknown word "build=false"', WORDS_HINT],
  [['v1.0.0'], '"v1.0.0" is not NAME=VALUE', SHAPE_HINT],
  [['TAG=v1'], '"TAG=v1" is not NAME=VALUE', SHAPE_HINT],
  [['--tag', 'v1'], '"--tag" is not NAME=VALUE', SHAPE_HINT],
  [['tag=v1', 'share=no'], 'share=no: expected share=true or share=false', OPTIONS_HINT],
  [['tag=v1', 'push='], 'push=: expected push=true or push=false', OPTIONS_HINT],
  [['tag=v1', 'start=False'], 'start=False: expected start=true or start=false', OPTIONS_HINT],
  [['tag=v1', 'from=deploy'], 'from=deploy is not a step', STEPS_HINT],
  [['tag=v1', 'from='], 'from= is not a step', STEPS_HINT],
  [[], 'tag= is required', TAG_REQUIRED_HINT],
  [['push=false', 'from=push'], 'tag= is required', TAG_REQUIRED_HINT],
  [['tag=-v1'], 'tag "-v1" is not a valid image tag', TAG_HINT],
  [['tag=.v1'], 'tag ".v1" is not a valid image tag', TAG_HINT],
  [['tag=v1/2'], 'tag "v1/2" is not a valid image tag', TAG_HINT],
  [[`tag=${'a'.repeat(129)}`], `tag "${'a'.repeat(129)}" is not a valid image tag`, TAG_HINT],
];
for (const [words, message, hint] of wrongWords) {
  test(`planDeploy: "${words.join(' ').slice(0, 40)}" -> UsageError (${message.slice(0, 40)})`, () => {
    assertMinerError(() => planDeploy(words), message, hint, UsageError);
  });
}

test('planDeploy: the longest tag docker takes is fine, case kept', () => {
  assert.equal(planDeploy([`tag=V${'a'.repeat(127)}`]).tag, `V${'a'.repeat(127)}`);
});

test('planDeploy: a bad tag is a UsageError (exit 2), like every other wrong word', () => {
  assert.throws(() => planDeploy(['tag=-v1']), UsageError);
  assert.throws(() => planDeploy(['tag=']), UsageError);
});

test('planDeploy: rehearse=false leaves the rehearsal out; from=rehearse resumes there', () => {
  assert.deepEqual(
    planDeploy(['tag=v1', 'rehearse=false']).steps.find((s) => s.step === 'rehearse'),
    { step: 'rehearse', run: false, reason: 'rehearse=false' },
  );
  assert.deepEqual(
    planDeploy(['tag=v1', 'from=rehearse']).steps.map((s) => [s.step, s.run]),
    [
      ['build', false],
      ['push', false],
      ['rehearse', true],
      ['share', true],
      ['commit', true],
      ['start', true],
    ],
  );
});
