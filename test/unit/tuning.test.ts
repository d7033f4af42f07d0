import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultNmsWindowS, defaultThreshold } from '../../lib/inference/manifest.ts';
import { postprocess } from '../../lib/inference/postprocess.ts';
import {
  ClipEvaluator,
  foldOf,
  type Params,
  pickBest,
  type TuningClip,
  type TuningSetup,
  tune,
  tuneWithCrossValidation,
} from '../../lib/inference/tuning.ts';
import type { ActionName } from '../../lib/protocol/actions.ts';

// Hand-made per-frame scores at 25 fps (so model frames are Score frames), two columns: goal, pass.
// Single-frame spikes on a 0.01 background, so NMS has no shoulders to keep.
const FPS = 25;
const CLASSES: ActionName[] = ['goal', 'pass'];
const FRAMES = 250;

function curve(spikes: Array<[frame: number, column: 0 | 1, value: number]>): Float32Array {
  const out = new Float32Array(FRAMES * CLASSES.length).fill(0.01);
  for (const [frame, column, value] of spikes) out[frame * CLASSES.length + column] = value;
  return out;
}

const GOAL = 0;
const PASS = 1;

// Goal: every true goal peaks between 0.45 and 0.48, below the default threshold (1/(1 + 0.9167) = 0.522), so
// the model's values find none; decoys (no goal there) peak at 0.28-0.30. A threshold t emits a spike when
// spike > t (scores are float32: a 0.30 spike is 0.3000000119, above t = 0.30): every true goal and no decoy for
// 0.30 < t < 0.45, so the best threshold lies in (0.30, 0.45).
// Pass: spikes of 0.9 (above the default 0.667). c0 has a true pass at 100 and an echo at 137 (1.48 s later, no
// pass there: a false positive unless the NMS window reaches it, >= 1.48 s); c1 has two true passes 2.52 s apart
// (150, 213), and a window >= 2.52 s would drop one. So the best pass window lies in [1.48, 2.52).
const CLIPS: TuningClip[] = [
  {
    name: 'c0',
    scores: curve([
      [50, GOAL, 0.45],
      [175, GOAL, 0.3],
      [100, PASS, 0.9],
      [137, PASS, 0.9],
    ]),
    frames: FRAMES,
    truth: [
      { frame: 50, action: 'goal' },
      { frame: 100, action: 'pass' },
    ],
  },
  {
    name: 'c1',
    scores: curve([
      [120, GOAL, 0.48],
      [150, PASS, 0.9],
      [213, PASS, 0.9],
    ]),
    frames: FRAMES,
    truth: [
      { frame: 120, action: 'goal' },
      { frame: 150, action: 'pass' },
      { frame: 213, action: 'pass' },
    ],
  },
  {
    name: 'c2',
    scores: curve([
      [100, GOAL, 0.28],
      [200, GOAL, 0.46],
    ]),
    frames: FRAMES,
    truth: [{ frame: 200, action: 'goal' }],
  },
  {
    name: 'c3',
    scores: curve([
      [60, GOAL, 0.47],
      [190, GOAL, 0.3],
    ]),
    frames: FRAMES,
    truth: [{ frame: 60, action: 'goal' }],
  },
];

const START: Params = {
  thresholds: { goal: defaultThreshold('goal'), pass: defaultThreshold('pass') },
  nmsWindowS: { goal: defaultNmsWindowS('goal'), pass: defaultNmsWindowS('pass') },
};
const SETUP: TuningSetup = { fps: FPS, classes: CLASSES, start: START };

describe('pickBest', () => {
  it('keeps the current value when it is among the best', () => {
    assert.equal(pickBest([0.1, 0.2, 0.3, 0.4], [0.5, 0.9, 0.9, 0.9], 0.2), 0.2);
    assert.equal(pickBest([0.1, 0.2, 0.3], [0.7, 0.7, 0.7], 0.1), 0.1, 'no information: keep');
  });

  it('otherwise takes the middle of the widest run of best values (lower middle, first run on a tie)', () => {
    assert.equal(pickBest([1, 2, 3, 4, 5, 6, 7], [0, 1, 0, 1, 1, 1, 0], 1), 5);
    assert.equal(pickBest([1, 2, 3, 4, 5], [0, 1, 1, 1, 1], 1), 3);
    assert.equal(pickBest([1, 2, 3, 4, 5], [0, 1, 0, 1, 0], 1), 2);
  });
});

describe('ClipEvaluator', () => {
  it('merges per-action post-processing into exactly what postprocess() returns for every action at once', () => {
    const evaluator = new ClipEvaluator(CLIPS, FPS, CLASSES);
    const params: Params = { thresholds: { goal: 0.29, pass: 0.5 }, nmsWindowS: { goal: 3, pass: 1 } };
    for (const [i, clip] of CLIPS.entries()) {
      const whole = postprocess(clip.scores, clip.frames, { fps: FPS, classes: CLASSES, ...params });
      assert.deepEqual(evaluator.predictions(i, params), whole);
    }
    // c0 at these values: goal@50 and the decoy goal@175 (0.30 > 0.29), pass@100 and its echo pass@137.
    assert.deepEqual(
      evaluator.predictions(0, params).map((p) => `${p.action}@${p.frame}`),
      ['goal@50', 'pass@100', 'pass@137', 'goal@175'],
    );
  });
});

describe('tune', () => {
  it('lands the goal threshold in (0.30, 0.45) and the pass NMS window in [1.48, 2.52)', () => {
    const evaluator = new ClipEvaluator(CLIPS, FPS, CLASSES);
    const result = tune(evaluator, [0, 1, 2, 3], SETUP);
    const goal = result.params.thresholds.goal as number;
    const passWindow = result.params.nmsWindowS.pass as number;
    assert.ok(goal > 0.3 && goal < 0.45, `goal threshold ${goal}`);
    assert.ok(passWindow >= 1.48 && passWindow < 2.52, `pass window ${passWindow}`);
    // Nothing else had a reason to move.
    assert.equal(result.params.thresholds.pass, defaultThreshold('pass'));
    assert.equal(result.params.nmsWindowS.goal, defaultNmsWindowS('goal'));
    // Before: no goal is emitted; c0 = (1 pass - 1 echo) / 11.9 = 0, c1 = 2 passes / 12.9, c2 = c3 = 0.
    assert.ok(Math.abs(result.before - 2 / 12.9 / 4) < 1e-12, String(result.before));
    assert.equal(result.after, 1);
    assert.equal(result.rounds, 2, 'round 1 moves two values, round 2 confirms');
  });

  it('with the best values already set, changes nothing', () => {
    const evaluator = new ClipEvaluator(CLIPS, FPS, CLASSES);
    const best: Params = { thresholds: { goal: 0.4, pass: 0.5 }, nmsWindowS: { goal: 3, pass: 2 } };
    const result = tune(evaluator, [0, 1, 2, 3], { ...SETUP, start: best });
    assert.deepEqual(result.params, best);
    assert.equal(result.rounds, 1);
  });
});

describe('tuneWithCrossValidation', () => {
  it('assigns folds by name order (clip i in fold i mod K)', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((i) => foldOf(i, 2)),
      [0, 1, 0, 1, 0],
    );
  });

  it('reports before, in-sample and out-of-sample scores, per fold and per action', () => {
    // Given in reverse order: the folds follow the names, not the input order.
    const report = tuneWithCrossValidation([...CLIPS].reverse(), SETUP, 2);
    assert.deepEqual(
      report.perFold.map((f) => f.clips),
      [
        ['c0', 'c2'],
        ['c1', 'c3'],
      ],
    );
    // Fold 0 is tuned on c1 + c3: goal threshold in (0.30, 0.47), but no echo there, so the pass window stays 1 s
    // and c0's echo is a false positive: c0 = (10.9 + 1 - 1) / 11.9, c2 = 1.
    // Fold 1 is tuned on c0 + c2: goal threshold in (0.30, 0.45), pass window 1.5 s, which keeps c1's passes
    // 2.52 s apart: c1 = c3 = 1.
    assert.equal(report.perFold[0].params.nmsWindowS.pass, 1);
    assert.equal(report.perFold[1].params.nmsWindowS.pass, 1.5);
    assert.ok(Math.abs((report.outOfSample as number) - (3 + 10.9 / 11.9) / 4) < 1e-12, String(report.outOfSample));
    assert.ok(Math.abs(report.before - 2 / 12.9 / 4) < 1e-12);
    assert.equal(report.inSample, 1);
    assert.equal(report.folds, 2);
    assert.deepEqual(
      report.perClip.map((c) => c.name),
      ['c0', 'c1', 'c2', 'c3'],
    );
    assert.ok(Math.abs((report.perClip[0].outOfSample as number) - 10.9 / 11.9) < 1e-12);

    const goal = report.actions.find((a) => a.action === 'goal');
    assert.ok(goal);
    assert.equal(goal.before.threshold, defaultThreshold('goal'));
    assert.ok(goal.after.threshold > 0.3 && goal.after.threshold < 0.45);
    assert.equal(goal.shareBefore, 0, 'no goal emitted with the model values');
    // In-sample every goal matched: c0 10.9/11.9, c1 10.9/12.9, c2 and c3 1; mean over the 4 clips.
    assert.ok(Math.abs(goal.shareInSample - (10.9 / 11.9 + 10.9 / 12.9 + 2) / 4) < 1e-12);
  });

  it('is deterministic', () => {
    assert.deepEqual(tuneWithCrossValidation(CLIPS, SETUP, 2), tuneWithCrossValidation(CLIPS, SETUP, 2));
  });

  it('one fold: no out-of-sample estimate', () => {
    const report = tuneWithCrossValidation(CLIPS, SETUP, 1);
    assert.equal(report.outOfSample, null);
    assert.deepEqual(report.perFold, []);
    assert.equal(report.actions[0].shareOutOfSample, null);
  });

  it('refuses more folds than clips', () => {
    assert.throws(() => tuneWithCrossValidation(CLIPS, SETUP, 5), /folds must be an integer from 1 to the number of clips \(4\)/);
  });
});
