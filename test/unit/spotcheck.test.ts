/**
 * The pure parts of the spot-check rehearsal (lib/deploy/spotcheck.ts): which commitment the validator would
 * spot-check, Score's PASS rule, the comparison with and without a ground truth, the predictions diff, the
 * harness's docker run, pull failures, and the rehearsal records tasks/status.ts reads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { MinerError } from '../../lib/core/errors.ts';
import {
  type ChallengeAnswer,
  chooseCommitment,
  compareAnswers,
  comparedWith,
  describeRehearsal,
  diffPredictions,
  digestReference,
  formatDiff,
  imageSizeCause,
  isSameAnswer,
  judgeRehearsal,
  parseDigestReference,
  parseImageSize,
  pullFailure,
  type RehearsalRecord,
  type RunOutcome,
  readRehearsals,
  recordRehearsal,
  registryOf,
  rehearsalJson,
  rehearsalRecord,
  rehearsalsFile,
  runCount,
  SLIM_IMAGE,
  spotcheckContainerName,
  spotcheckRunCommand,
  verdictLines,
  withinTolerance,
} from '../../lib/deploy/spotcheck.ts';

const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;
const ELEMENT = 'manako/DetectFootballEvent';

const scratch: string[] = [];
after(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function payload(fields: Record<string, unknown>): string {
  return JSON.stringify({ role: 'miner', track: 'private', image_repo: 'alice/miner', image_tag: 'v1', element_id: ELEMENT, ...fields });
}

test('digest references: repo@sha256:<64 hex> only', () => {
  assert.deepEqual(parseDigestReference(`alice/miner@${DIGEST_A}`), { repo: 'alice/miner', digest: DIGEST_A });
  assert.deepEqual(parseDigestReference(`127.0.0.1:5000/alice/miner@${DIGEST_B}`), {
    repo: '127.0.0.1:5000/alice/miner',
    digest: DIGEST_B,
  });
  assert.equal(parseDigestReference('alice/miner:v1'), undefined);
  assert.equal(parseDigestReference(`@${DIGEST_A}`), undefined);
  assert.equal(parseDigestReference('alice/miner@sha256:abc'), undefined);
  assert.equal(parseDigestReference(`alice/miner@sha256:${'A'.repeat(64)}`), undefined);
  assert.equal(digestReference({ repo: 'alice/miner', digest: DIGEST_A }), `alice/miner@${DIGEST_A}`);
});

test('the registry host of an image name, as docker reads it', () => {
  assert.equal(registryOf('alice/miner'), 'docker.io');
  assert.equal(registryOf('ubuntu'), 'docker.io');
  assert.equal(registryOf('index.docker.io/alice/miner'), 'docker.io');
  assert.equal(registryOf('ghcr.io/alice/miner'), 'ghcr.io');
  assert.equal(registryOf('127.0.0.1:5000/alice/miner'), '127.0.0.1:5000');
  assert.equal(registryOf('localhost/alice/miner'), 'localhost');
  assert.equal(registryOf('Registry.Example.com:443/a/b'), 'registry.example.com:443');
});

test('the commitment the validator would spot-check: the highest block among those passing its filter', () => {
  const entries = [
    { text: payload({ image_tag: 'v1', image_digest: DIGEST_A }), block: 5 },
    { text: payload({ image_tag: 'v2', image_digest: DIGEST_B }), block: 9 },
    { text: payload({ image_tag: 'v3', image_digest: DIGEST_A, track: 'open' }), block: 12 },
    { text: 'not json', block: 14 },
  ];
  assert.deepEqual(chooseCommitment(entries, ELEMENT), { ok: true, image: { repo: 'alice/miner', tag: 'v2', digest: DIGEST_B, block: 9 } });
  // The same block twice: the later entry wins.
  assert.deepEqual(
    chooseCommitment(
      [
        { text: payload({ image_tag: 'first', image_digest: DIGEST_A }), block: 7 },
        { text: payload({ image_tag: 'second', image_digest: DIGEST_B }), block: 7 },
      ],
      ELEMENT,
    ),
    { ok: true, image: { repo: 'alice/miner', tag: 'second', digest: DIGEST_B, block: 7 } },
  );
});

test('no commitment to spot-check: none, none passing, none with a digest', () => {
  assert.deepEqual(chooseCommitment([], ELEMENT), { ok: false, reason: 'no revealed commitment', problems: [] });
  assert.deepEqual(chooseCommitment([{ text: payload({ track: 'open', image_digest: DIGEST_A }), block: 3 }], ELEMENT), {
    ok: false,
    reason: "none of the 1 revealed commitment(s) passes the validator's filter",
    problems: [
      {
        problem: 'track is "open", not "private"',
        fix: 'commit again with `tasks/commit.ts` (it builds the full payload)',
      },
    ],
  });
  assert.deepEqual(chooseCommitment([{ text: payload({ image_tag: 'v4' }), block: 8 }], ELEMENT), {
    ok: false,
    reason: 'the commitment revealed in block 8 (alice/miner:v4) has no image_digest of the form sha256:<64 hex>',
    problems: [
      { problem: 'Score would pull it by tag, which may not be the image you tested', fix: 'commit again with `tasks/commit.ts`' },
    ],
  });
});

test("Score's rule: scores within 0.02 pass (float slack at the edge)", () => {
  assert.equal(withinTolerance(0.5, 0.52), true);
  assert.equal(withinTolerance(1, 0.98), true);
  assert.equal(withinTolerance(0.98, 1), true);
  assert.equal(withinTolerance(0.5, 0.5201), false);
  assert.equal(withinTolerance(0.3, 0.33), false);
  assert.equal(withinTolerance(0, 0), true);
});

test('how many runs: N, at least 2 when nothing else is compared', () => {
  assert.equal(runCount(1, false), 2);
  assert.equal(runCount(1, true), 1);
  assert.equal(runCount(2, true), 2);
  assert.equal(runCount(3, false), 3);
});

test("the container runs like Score's harness: its variable names, no wallet, host network, a free port", () => {
  assert.equal(spotcheckContainerName(4242), 'score-miner-spotcheck-4242');
  assert.deepEqual(
    spotcheckRunCommand({
      name: 'score-miner-spotcheck-4242',
      image: `alice/miner@${DIGEST_A}`,
      port: 40123,
      netuid: 44,
      walletName: 'cold',
      hotkeyName: 'hot',
    }),
    [
      'run',
      '-d',
      '--name',
      'score-miner-spotcheck-4242',
      '--label',
      'score-miner-spotcheck=1',
      '--network',
      'host',
      '-e',
      'NETUID=44',
      '-e',
      'WALLET_NAME=cold',
      '-e',
      'HOTKEY_NAME=hot',
      '-e',
      'VERIFY=false',
      '-e',
      'BLACKLIST=false',
      '-e',
      'SPOTCHECK_MODE=true',
      '-e',
      'MINER_PORT=40123',
      '-e',
      'DOWNLOAD_ALLOW_PRIVATE=true',
      `alice/miner@${DIGEST_A}`,
    ],
  );
  const gpu = spotcheckRunCommand({
    name: 'n',
    image: `alice/miner@${DIGEST_A}`,
    port: 1,
    netuid: 44,
    walletName: 'c',
    hotkeyName: 'h',
    gpus: 'all',
  });
  assert.deepEqual(gpu.slice(-3), ['--gpus', 'all', `alice/miner@${DIGEST_A}`], 'docker options go before the image');
});

test("the image size against Score's 30 GB limit (decimal GB, as docker counts)", () => {
  assert.equal(parseImageSize('394123456\n'), 394_123_456);
  assert.throws(() => parseImageSize(''), /docker image inspect gave no size/);
  assert.throws(() => parseImageSize('<no value>'), /docker image inspect gave no size \("<no value>"\)/);
  assert.equal(imageSizeCause(30_000_000_000, 30), undefined);
  assert.equal(
    imageSizeCause(30_000_000_001, 30),
    "the image is 30.00 GB, over Score's 30 GB limit: Score fails the spot check without running it",
  );
  assert.equal(
    imageSizeCause(31_500_000_000, 30),
    "the image is 31.50 GB, over Score's 30 GB limit: Score fails the spot check without running it",
  );
  assert.equal(
    imageSizeCause(394_000_000, 0.001),
    "the image is 0.39 GB, over Score's 0.001 GB limit: Score fails the spot check without running it",
  );
});

test('the predictions diff: identical pairs first, then changed confidences, then added and removed', () => {
  const diff = diffPredictions(
    [
      { frame: 75, action: 'goal', confidence: 0.9 },
      { frame: 175, action: 'ball_out_of_play', confidence: 0.8 },
      { frame: 10, action: 'pass', confidence: 0.7 },
      { frame: 10, action: 'pass', confidence: 0.7 },
      { frame: 300, action: 'shot', confidence: 0.6 },
    ],
    [
      { frame: 175, action: 'ball_out_of_play', confidence: 0.81 },
      { frame: 10, action: 'pass', confidence: 0.7 },
      { frame: 80, action: 'goal', confidence: 0.6 },
      { frame: 75, action: 'shot' },
      { frame: 175, action: 'ball_out_of_play', confidence: 0.8 },
      { frame: 300, action: 'shot', confidence: 0.65 },
    ],
  );
  assert.deepEqual(diff, {
    added: [
      { frame: 75, action: 'shot' },
      { frame: 80, action: 'goal', confidence: 0.6 },
      { frame: 175, action: 'ball_out_of_play', confidence: 0.81 },
    ],
    removed: [
      { frame: 10, action: 'pass', confidence: 0.7 },
      { frame: 75, action: 'goal', confidence: 0.9 },
    ],
    changed: [{ frame: 300, action: 'shot', from: 0.6, to: 0.65 }],
    same: 2,
  });
  assert.equal(isSameAnswer(diff), false);
  assert.deepEqual(formatDiff(diff), [
    '- removed  frame    10 (  0.40 s)  pass              confidence 0.7000',
    '- removed  frame    75 (  3.00 s)  goal              confidence 0.9000',
    '+ added    frame    75 (  3.00 s)  shot              confidence -',
    '+ added    frame    80 (  3.20 s)  goal              confidence 0.6000',
    '+ added    frame   175 (  7.00 s)  ball_out_of_play  confidence 0.8100',
    '~ changed  frame   300 ( 12.00 s)  shot              confidence 0.6000 -> 0.6500',
  ]);
  assert.deepEqual(formatDiff(diff, 2), [
    '- removed  frame    10 (  0.40 s)  pass              confidence 0.7000',
    '- removed  frame    75 (  3.00 s)  goal              confidence 0.9000',
    '... and 4 more',
  ]);
  // A change below the printed precision is shown in full.
  assert.deepEqual(
    formatDiff({ added: [], removed: [], changed: [{ frame: 1, action: 'pass', from: 0.12345671, to: 0.12345678 }], same: 0 }),
    ['~ changed  frame     1 (  0.04 s)  pass              confidence 0.12345671 -> 0.12345678'],
  );
  // Against a ground truth (no confidences): frames and actions only.
  assert.deepEqual(
    diffPredictions(
      [
        { frame: 75, action: 'goal' },
        { frame: 175, action: 'ball_out_of_play' },
      ],
      [
        { frame: 75, action: 'goal', confidence: 1 },
        { frame: 176, action: 'ball_out_of_play', confidence: 0.9 },
      ],
      { confidence: false },
    ),
    {
      added: [{ frame: 176, action: 'ball_out_of_play', confidence: 0.9 }],
      removed: [{ frame: 175, action: 'ball_out_of_play' }],
      changed: [],
      same: 1,
    },
  );
  const same = diffPredictions([{ frame: 5, action: 'pass', confidence: 0.5 }], [{ frame: 5, action: 'pass', confidence: 0.5 }]);
  assert.deepEqual(same, { added: [], removed: [], changed: [], same: 1 });
  assert.equal(isSameAnswer(same), true);
});

const TRUTH = [
  { frame: 75, action: 'goal' },
  { frame: 175, action: 'ball_out_of_play' },
];
const BOTH = {
  label: 'run 1',
  predictions: [
    { frame: 75, action: 'goal', confidence: 0.9 },
    { frame: 175, action: 'ball_out_of_play', confidence: 0.8 },
  ],
};
const GOAL_ONLY = { label: 'run 2', predictions: [{ frame: 75, action: 'goal', confidence: 0.9 }] };

test('against a ground truth: each answer scored against it, the difference decides', () => {
  // goal (10.9) of goal + ball_out_of_play (2.9): 10.9 / 13.8
  assert.deepEqual(compareAnswers(BOTH, [GOAL_ONLY], TRUTH), {
    mode: 'truth',
    pass: false,
    pairs: [
      {
        reference: 'run 1',
        candidate: 'run 2',
        referenceScore: 1,
        candidateScore: 0.7898550724637681,
        difference: 0.21014492753623193,
        pass: false,
        diff: { added: [], removed: [{ frame: 175, action: 'ball_out_of_play', confidence: 0.8 }], changed: [], same: 1 },
      },
    ],
    difference: 0.21014492753623193,
  });
  // One frame late on a goal (tolerance 3 s, min 0.5): 1 - (0.04 / 3) * 0.5 -> within 0.02 although the predictions differ.
  const late = compareAnswers(
    { label: 'truth', predictions: [{ frame: 75, action: 'goal' }] },
    [{ label: 'run 1', predictions: [{ frame: 76, action: 'goal', confidence: 0.7 }] }],
    [{ frame: 75, action: 'goal' }],
  );
  assert.equal(late.pass, true);
  assert.equal(late.pairs[0].candidateScore, 0.9933333333333333);
  assert.equal(late.difference, 0.00666666666666671);
  assert.deepEqual(late.pairs[0].diff, {
    added: [{ frame: 76, action: 'goal', confidence: 0.7 }],
    removed: [{ frame: 75, action: 'goal' }],
    changed: [],
    same: 0,
  });
  assert.deepEqual(compareAnswers(BOTH, [{ ...BOTH, label: 'run 2' }], TRUTH).pairs[0].difference, 0);
});

test('without a ground truth: each answer is the other one`s, both ways, the larger difference decides', () => {
  const verdict = compareAnswers(BOTH, [GOAL_ONLY]);
  assert.equal(verdict.mode, 'answers');
  assert.equal(verdict.pass, false);
  assert.equal(verdict.pairs[0].referenceScore, 1);
  assert.equal(verdict.pairs[0].candidateScore, 0.7898550724637681);
  // run 2's answer as the truth: run 1's goal matches (10.9), its ball_out_of_play is a false positive (2.9): 8 / 10.9
  assert.deepEqual(verdict.pairs[0].reverse, { referenceScore: 0.7339449541284403, candidateScore: 1 });
  assert.equal(verdict.difference, 0.2660550458715597);

  // An empty answer against a non-empty one: 0 and 0 one way, but 0 and 1 the other way.
  const empty = compareAnswers({ label: 'run 1', predictions: [] }, [{ label: 'run 2', predictions: [{ frame: 76, action: 'goal' }] }]);
  assert.equal(empty.pass, false);
  assert.equal(empty.difference, 1);
  assert.deepEqual(
    compareAnswers(BOTH, [
      { ...BOTH, label: 'run 2' },
      { ...BOTH, label: 'run 3' },
    ]),
    {
      mode: 'answers',
      pass: true,
      difference: 0,
      pairs: ['run 2', 'run 3'].map((candidate) => ({
        reference: 'run 1',
        candidate,
        referenceScore: 1,
        candidateScore: 1,
        reverse: { referenceScore: 1, candidateScore: 1 },
        difference: 0,
        pass: true,
        diff: { added: [], removed: [], changed: [], same: 2 },
      })),
    },
  );
  // Nothing to compare with (one answer and no reference): nothing fails.
  assert.deepEqual(compareAnswers(BOTH, []), { mode: 'answers', pass: true, pairs: [], difference: 0 });
});

test('a failed pull: a digest the registry lacks, refused credentials, anything else', () => {
  const ref = `127.0.0.1:5000/alice/miner@${DIGEST_A}`;
  const missing = pullFailure(ref, `Error response from daemon: manifest for ${ref} not found: manifest unknown: manifest unknown`);
  assert.ok(missing instanceof MinerError);
  assert.equal(
    missing.message,
    `the registry has no image ${ref} (Error response from daemon: manifest for ${ref} not found: manifest unknown: manifest unknown)`,
  );
  assert.match(missing.hint ?? '', /^Score pulls exactly this digest and would fail the same way: push the image \(tasks\/push\.ts\)/);
  const denied = pullFailure(
    ref,
    "Error response from daemon: pull access denied for 127.0.0.1:5000/alice/miner, repository does not exist or may require 'docker login'",
  );
  assert.match(denied.message, /^the registry refused to let this machine pull /);
  assert.match(denied.hint ?? '', /DOCKERHUB_USERNAME\/DOCKERHUB_TOKEN/);
  const other = pullFailure(
    ref,
    'Error response from daemon: Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused',
  );
  assert.match(other.message, /^docker pull failed: .*connection refused/);
});

test('rehearsal records: one per digest, the latest kept; status lines', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spotcheck-unit-'));
  scratch.push(dir);
  assert.deepEqual(readRehearsals(dir), {});
  const pass: RehearsalRecord = {
    digest: DIGEST_A,
    repo: 'alice/miner',
    tag: 'v1',
    result: 'PASS',
    compared: 'truth',
    scores: { truth: 1, 'run 1': 1 },
    difference: 0,
    readySeconds: [2.5],
    at: '2026-01-02T03:04:05.000Z',
    seconds: 9.1,
  };
  const fail: RehearsalRecord = {
    ...pass,
    digest: DIGEST_B,
    result: 'FAIL',
    compared: 'runs',
    scores: { 'run 1': 1, 'run 2': 0.25 },
    difference: 0.75,
    cause: 'run 2 scores 0.2500 where run 1 scores 1.0000 (difference 0.7500 > 0.02)',
  };
  assert.equal(await recordRehearsal(dir, pass), path.join(dir, 'spotcheck.json'));
  await recordRehearsal(dir, fail);
  await recordRehearsal(dir, { ...pass, at: '2026-01-03T00:00:00.000Z' });
  const all = readRehearsals(dir);
  assert.deepEqual(Object.keys(all).sort(), [DIGEST_A, DIGEST_B]);
  assert.equal(all[DIGEST_A].at, '2026-01-03T00:00:00.000Z');
  assert.deepEqual(JSON.parse(readFileSync(rehearsalsFile(dir), 'utf8'))[DIGEST_B], fail);

  assert.equal(
    describeRehearsal(DIGEST_A, all[DIGEST_A]),
    'PASS for sha256:aaaaaaaaaaaa at 2026-01-03T00:00:00.000Z (against --truth, largest score difference 0.0000)',
  );
  assert.equal(
    describeRehearsal(DIGEST_B, all[DIGEST_B]),
    'FAIL for sha256:bbbbbbbbbbbb at 2026-01-02T03:04:05.000Z (run against run, largest score difference 0.7500): run 2 scores 0.2500 where run 1 scores 1.0000 (difference 0.7500 > 0.02)',
  );
  assert.equal(
    describeRehearsal(DIGEST_A, undefined),
    'the committed digest sha256:aaaaaaaaaaaa was never rehearsed: npx tsx tasks/spotcheck.ts --file clip.mp4 [--truth truth.json] [--live http://<ip>:<port>]',
  );

  writeFileSync(rehearsalsFile(dir), '{not json');
  assert.deepEqual(readRehearsals(dir), {});
});

const answer = (predictions: unknown[], wall_s = 1.5): ChallengeAnswer => ({ predictions, wall_s, ok: true });
const run = (label: string, predictions: unknown[], readyS = 2.345): RunOutcome => ({
  label,
  ok: true,
  readyS,
  result: answer(predictions),
});
const GOAL = { frame: 75, action: 'goal', confidence: 0.9 };
const CARD = { frame: 300, action: 'yellow_card', confidence: 0.8 };

test('what the answers are compared with: the live miner, else the truth, else run against run', () => {
  assert.equal(comparedWith(true, true), 'live');
  assert.equal(comparedWith(false, true), 'truth');
  assert.equal(comparedWith(false, false), 'runs');
});

test('the rehearsal verdict: identical runs PASS with scores; a differing run FAILs with the cause, diff and next step', () => {
  const same = judgeRehearsal({ compared: 'runs', outcomes: [run('run 1', [GOAL]), run('run 2', [GOAL])] });
  assert.equal(same.pass, true);
  assert.equal(same.cause, undefined);
  assert.deepEqual(same.scores, { 'run 1': same.verdict?.pairs[0].referenceScore, 'run 2': same.verdict?.pairs[0].candidateScore });
  assert.equal(same.verdict?.difference, 0);
  const lines = verdictLines(same, { withTruth: false, sizeFailed: false, seconds: 12.34 });
  assert.equal(lines.at(-1), 'PASS: every run scores within 0.02 of run 1 (largest difference 0.0000), in 12.3 s');
  assert.match(lines[0], /^ {2}scores {3}run 1 \d\.\d{4}, run 2 \d\.\d{4} \(with run 1's answer as the ground truth\)$/);

  const differ = judgeRehearsal({ compared: 'runs', outcomes: [run('run 1', [GOAL]), run('run 2', [CARD])] });
  assert.equal(differ.pass, false);
  assert.match(differ.cause ?? '', /^run 2 scores \d\.\d{4} where run 1 scores \d\.\d{4} \(difference \d\.\d{4} > 0\.02\)$/);
  const failLines = verdictLines(differ, { withTruth: false, sizeFailed: false, seconds: 5 });
  assert.ok(failLines.includes(`FAIL: ${differ.cause}`));
  assert.ok(failLines.includes('  predictions of run 2 against run 1: 1 added, 1 removed, 0 changed, 0 the same'));
  assert.match(failLines.at(-1) ?? '', /^ {2}next: the image answers the same challenge differently from run to run/);
});

test('the rehearsal verdict: the live answer is the reference; a failed run FAILs with its cause and log lines; size alone FAILs', () => {
  const live = judgeRehearsal({ compared: 'live', live: answer([GOAL]), outcomes: [run('run 1', [GOAL])] });
  assert.equal(live.pass, true);
  assert.deepEqual(Object.keys(live.scores), ['live', 'run 1']);
  assert.match(verdictLines(live, { withTruth: false, sizeFailed: false, seconds: 1 }).at(-1) ?? '', /of the live miner /);

  const failed: RunOutcome = { label: 'run 1', ok: false, cause: 'run 1: GET /docs did not answer 200 within 5 s', logs: 'loading\nstuck' };
  const notReady = judgeRehearsal({ compared: 'truth', outcomes: [failed], truth: [{ frame: 75, action: 'goal' }] });
  assert.deepEqual(
    { pass: notReady.pass, cause: notReady.cause, verdict: notReady.verdict, failedRun: notReady.failedRun, scores: notReady.scores },
    { pass: false, cause: failed.cause, verdict: undefined, failedRun: failed, scores: {} },
  );
  const lines = verdictLines(notReady, { withTruth: true, sizeFailed: false, seconds: 1 });
  assert.deepEqual(lines.slice(0, 4), [`FAIL: ${failed.cause}`, '  last log lines of the container:', '    loading', '    stuck']);
  assert.match(lines[4], /^ {2}next: the image must come up without a wallet/);

  const oversized = judgeRehearsal({ compared: 'runs', sizeCause: 'the image is 31.00 GB, over', outcomes: [] });
  assert.equal(oversized.cause, 'the image is 31.00 GB, over');
  assert.deepEqual(verdictLines(oversized, { withTruth: false, sizeFailed: true, seconds: 1 }), [
    'FAIL: the image is 31.00 GB, over',
    `  next: ${SLIM_IMAGE}`,
  ]);
});

test('the rehearsal record and --json object: rounded figures, nulls for what is absent', () => {
  const image = { repo: 'alice/miner', digest: DIGEST_A, tag: 'v1', block: 9 };
  const outcomes = [run('run 1', [GOAL], 2.3456), run('run 2', [GOAL], 1.2)];
  const judgement = judgeRehearsal({ compared: 'runs', outcomes });
  const record = rehearsalRecord(image, judgement, outcomes, 12.345, new Date('2026-01-02T03:04:05.000Z'));
  assert.deepEqual(record, {
    digest: DIGEST_A,
    repo: 'alice/miner',
    tag: 'v1',
    result: 'PASS',
    compared: 'runs',
    scores: judgement.scores,
    difference: 0,
    readySeconds: [2.35, 1.2],
    at: '2026-01-02T03:04:05.000Z',
    seconds: 12.3,
  });
  const json = rehearsalJson({
    record,
    judgement,
    image,
    imageBytes: 123,
    outcomes,
    pullS: 1.2345,
    seconds: 12.345,
    recorded: '/s/spotcheck.json',
  });
  assert.equal(json.image, `alice/miner@${DIGEST_A}`);
  assert.equal(json.gpus, null);
  assert.equal(json.live, null);
  assert.equal(json.cause, null);
  assert.equal(json.pull_s, 1.23);
  assert.deepEqual((json.runs as unknown[])[0], { label: 'run 1', ok: true, ready_s: 2.35, wall_s: 1.5, predictions: [GOAL], cause: null });
  assert.equal((json.pairs as unknown[]).length, 1);
});
