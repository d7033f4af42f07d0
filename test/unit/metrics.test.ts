import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clipMetrics, summarise } from '../../lib/protocol/metrics.ts';
import { matchPredictions, scoreResponse } from '../../lib/protocol/scoring.ts';

// The worked example of docs/protocol.md: gt_weight = 1.0 + 4.7 + 10.9 = 16.6.
const GT = [
  { frame: 100, action: 'pass' },
  { frame: 300, action: 'shot' },
  { frame: 310, action: 'goal' },
];

const close = (actual: number | null, expected: number) => {
  assert.ok(actual !== null && Math.abs(actual - expected) < 1e-12, `${actual} is not ${expected}`);
};

// Every action matched: pass 0.8 s late (tol 1, min 0: decay 0.2), goal exact (1), shot 2 s late (tol 2, min 0.5:
// decay 0.5). Score (1.0 * 0.2 + 10.9 * 1 + 4.7 * 0.5) / 16.6 = 13.45 / 16.6.
const GOOD = [
  { frame: 310, action: 'goal', confidence: 0.9 },
  { frame: 120, action: 'pass' },
  { frame: 350, action: 'shot' },
];

// A duplicate goal, a shot far off, a tackle nobody did, an unknown action: matched 10.9, penalty 10.9 + 4.7 + 2.5
// = 18.1, raw (10.9 - 18.1) / 16.6 < 0, so the validator's score is 0.
const BAD = [
  { frame: 310, action: 'goal' },
  { frame: 311, action: 'goal' },
  { frame: 600, action: 'shot' },
  { frame: 50, action: 'tackle' },
  { frame: 10, action: 'dribble' },
];

describe('matchPredictions', () => {
  it('matches in frame order, the first of equally good events wins, misses and false positives are listed', () => {
    const truth = [
      { frame: 90, action: 'pass' },
      { frame: 110, action: 'pass' },
    ];
    const m = matchPredictions(
      [
        { frame: 100, action: 'pass' },
        { frame: 300, action: 'pass' },
      ],
      truth,
    );
    assert.equal(m.matches.length, 1);
    assert.equal(m.matches[0].truthIndex, 0, 'both are 0.4 s away: the first event wins');
    close(m.matches[0].decay, 0.6);
    assert.deepEqual(m.missed, [{ frame: 110, action: 'pass' }]);
    assert.deepEqual(m.falsePositives, [{ frame: 300, action: 'pass' }]);
    assert.equal(m.gtWeight, 2);
    assert.equal(m.penalty, 1);
  });

  it('ground truth with an unknown action carries no weight; truthIndex points into the list given', () => {
    const m = matchPredictions(
      [
        { frame: 100, action: 'pass' },
        { frame: 5, action: 'dribble' },
      ],
      [
        { frame: 5, action: 'dribble' },
        { frame: 100, action: 'pass' },
      ],
    );
    assert.equal(m.truthCount, 1);
    assert.equal(m.gtWeight, 1);
    assert.equal(m.matches[0].truthIndex, 1);
    assert.deepEqual(m.ignored, [{ frame: 5, action: 'dribble' }]);
    assert.deepEqual(m.missed, []);
  });
});

describe('clipMetrics', () => {
  it('counts and decays per action for a good response', () => {
    const m = clipMetrics(GOOD, GT);
    close(m.score, 13.45 / 16.6);
    close(m.rawScore, 13.45 / 16.6);
    assert.equal(m.gtWeight, 16.6);
    assert.deepEqual([m.matched, m.missed, m.falsePositives, m.ignored], [3, 0, 0, 0]);
    close(m.meanDecay, (0.2 + 1 + 0.5) / 3);
    assert.deepEqual(Object.keys(m.actions), ['pass', 'shot', 'goal'], 'the action table order');
    const { pass, shot, goal } = m.actions;
    assert.deepEqual([pass?.truth, pass?.predicted, pass?.matched, pass?.missed, pass?.falsePositives], [1, 1, 1, 0, 0]);
    close(pass?.meanDecay ?? null, 0.2);
    close(shot?.meanDecay ?? null, 0.5);
    close(goal?.meanDecay ?? null, 1);
    close(pass?.share ?? NaN, 0.2 / 16.6);
    close(shot?.share ?? NaN, (4.7 * 0.5) / 16.6);
    close(goal?.share ?? NaN, 10.9 / 16.6);
  });

  it('duplicates and invented events are false positives; the score clamps at 0 while the shares go negative', () => {
    const m = clipMetrics(BAD, GT);
    assert.equal(m.score, 0);
    close(m.rawScore, (10.9 - 18.1) / 16.6);
    assert.deepEqual([m.matched, m.missed, m.falsePositives, m.ignored], [1, 2, 3, 1]);
    assert.deepEqual(Object.keys(m.actions), ['pass', 'tackle', 'shot', 'goal']);
    const { pass, tackle, shot, goal } = m.actions;
    assert.deepEqual([goal?.truth, goal?.predicted, goal?.matched, goal?.missed, goal?.falsePositives], [1, 2, 1, 0, 1]);
    assert.deepEqual([shot?.truth, shot?.predicted, shot?.matched, shot?.missed, shot?.falsePositives], [1, 1, 0, 1, 1]);
    assert.deepEqual([pass?.truth, pass?.predicted, pass?.matched, pass?.missed, pass?.falsePositives], [1, 0, 0, 1, 0]);
    assert.deepEqual([tackle?.truth, tackle?.predicted, tackle?.falsePositives], [0, 1, 1]);
    assert.equal(pass?.meanDecay, null);
    close(goal?.share ?? NaN, 0);
    close(shot?.share ?? NaN, -4.7 / 16.6);
    close(tackle?.share ?? NaN, -2.5 / 16.6);
  });

  it('the score is always the validator score of the same response', () => {
    const responses = [GOOD, BAD, [], [{ frame: 385, action: 'goal' }], [...GOOD, ...BAD]];
    for (const predictions of responses) {
      const m = clipMetrics(predictions, GT);
      assert.equal(m.score, scoreResponse(predictions, GT));
      close(m.score, Math.min(1, Math.max(0, m.rawScore)));
    }
  });

  it('empty ground truth scores 0, and predictions are all false positives', () => {
    const m = clipMetrics([{ frame: 1, action: 'goal' }], []);
    assert.equal(m.score, 0);
    assert.equal(m.rawScore, 0);
    assert.equal(m.actions.goal?.falsePositives, 1);
    assert.equal(m.actions.goal?.share, 0);
  });
});

describe('summarise', () => {
  it('mean score, summed counts, mean decay over every match, mean share per action', () => {
    const s = summarise([clipMetrics(GOOD, GT), clipMetrics(BAD, GT)]);
    assert.equal(s.clips, 2);
    close(s.meanScore, (13.45 / 16.6 + 0) / 2);
    assert.deepEqual([s.matched, s.missed, s.falsePositives], [4, 2, 3]);
    close(s.meanDecay, (0.2 + 1 + 0.5 + 1) / 4);
    const goal = s.actions.goal;
    assert.deepEqual([goal?.truth, goal?.predicted, goal?.matched, goal?.missed, goal?.falsePositives], [2, 3, 2, 0, 1]);
    close(goal?.meanDecay ?? null, 1);
    close(goal?.share ?? NaN, (10.9 / 16.6 + 0) / 2);
    close(s.actions.tackle?.share ?? NaN, -2.5 / 16.6 / 2);
    assert.deepEqual(Object.keys(s.actions), ['pass', 'tackle', 'shot', 'goal']);
  });

  it('no clips: zeros and no decay', () => {
    assert.deepEqual(summarise([]), { clips: 0, meanScore: 0, matched: 0, missed: 0, falsePositives: 0, meanDecay: null, actions: {} });
  });
});
