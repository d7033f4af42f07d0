import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scoreResponse, timeDelta, validateResponse } from '../../lib/protocol/scoring.ts';

// The worked example of docs/protocol.md: gt_weight = 1.0 + 4.7 + 10.9 = 16.6.
const GT = [
  { frame: 100, action: 'pass' },
  { frame: 300, action: 'shot' },
  { frame: 310, action: 'goal' },
];

test('worked example: exact predictions score 1', () => {
  assert.equal(
    scoreResponse(
      GT.map((e) => ({ ...e, confidence: 0.9 })),
      GT,
    ),
    1,
  );
});

test('worked example: goal plus a wrong pass costs the full pass weight', () => {
  const score = scoreResponse(
    [
      { frame: 310, action: 'goal' },
      { frame: 600, action: 'pass' },
    ],
    GT,
  );
  assert.equal(score, (10.9 - 1.0) / 16.6);
  assert.equal(score.toFixed(3), '0.596');
});

test('worked example: a duplicate of a matched goal is penalised, score clamps at 0', () => {
  assert.equal(
    scoreResponse(
      [
        { frame: 310, action: 'goal' },
        { frame: 311, action: 'goal' },
      ],
      GT,
    ),
    0,
  );
});

test('worked example: goal 3 s late decays to min_score 0.5', () => {
  const score = scoreResponse([{ frame: 385, action: 'goal' }], GT);
  assert.equal(score, (10.9 * 0.5) / 16.6);
  assert.equal(score.toFixed(3), '0.328');
});

test('frames 4 vs 29: dt rounds to 0.9999999999999999, so the pass is matched with a tiny decay', () => {
  assert.equal(timeDelta(4, 29), 0.9999999999999999);
  assert.equal(timeDelta(29, 4), 0.9999999999999999);
  const score = scoreResponse([{ frame: 4, action: 'pass' }], [{ frame: 29, action: 'pass' }]);
  assert.equal(score, 1 - 0.9999999999999999);
  assert.ok(score > 0);
});

test('exactly at the tolerance edge with min_score 0: decay 0, counted as unmatched', () => {
  assert.equal(timeDelta(125, 100), 1);
  const truth = [
    { frame: 100, action: 'pass' },
    { frame: 300, action: 'goal' },
  ];
  const score = scoreResponse(
    [
      { frame: 300, action: 'goal' },
      { frame: 125, action: 'pass' },
    ],
    truth,
  );
  assert.equal(score, (10.9 - 1.0) / 11.9);
});

test('beyond tolerance is unmatched; inside tolerance decays linearly', () => {
  const truth = [
    { frame: 0, action: 'tackle' },
    { frame: 1000, action: 'goal' },
  ];
  // tackle: tol 1.5 s, min 0.1; 19 frames = 0.76 s late; 38 frames = 1.52 s is beyond tolerance
  const inside = scoreResponse(
    [
      { frame: 1000, action: 'goal' },
      { frame: 19, action: 'tackle' },
    ],
    truth,
  );
  assert.equal(inside, (10.9 + 2.5 * (1 - (0.76 / 1.5) * 0.9)) / 13.4);
  const outside = scoreResponse(
    [
      { frame: 1000, action: 'goal' },
      { frame: 38, action: 'tackle' },
    ],
    truth,
  );
  assert.equal(outside, (10.9 - 2.5) / 13.4);
});

test('the unused event with the largest decay wins, then duplicates take the remaining one', () => {
  const truth = [
    { frame: 100, action: 'shot' },
    { frame: 130, action: 'shot' },
    { frame: 500, action: 'goal' },
  ];
  // gt_weight 4.7 + 4.7 + 10.9 = 20.3. Sorted by frame: the shot at 128 takes 130 (0.08 s; 100 is 1.12 s away),
  // decay 1 - (0.08 / 2) * 0.5 = 0.98; the one at 200 is 2.8 s from 130 (used) and 4 s from 100 -> unmatched.
  // (4.7 * 0.98 + 10.9 - 4.7) / 20.3 = 10.806 / 20.3 = 0.53231527...
  // (Taking 100 instead would give decay 1 - (1.12 / 2) * 0.5 = 0.72 and 0.47211822...)
  const score = scoreResponse(
    [
      { frame: 200, action: 'shot' },
      { frame: 128, action: 'shot' },
      { frame: 500, action: 'goal' },
    ],
    truth,
  );
  assert.equal(score, 0.5323152709359606);
  // Two predictions near two events: both matched, each 0.04 s off: decay 1 - (0.04 / 2) * 0.5 = 0.99;
  // (4.7 * 0.99 + 4.7 * 0.99) / 9.4 = 0.99 (0.9900000000000001 in doubles).
  const both = scoreResponse(
    [
      { frame: 101, action: 'shot' },
      { frame: 129, action: 'shot' },
    ],
    truth.slice(0, 2),
  );
  assert.equal(both, 0.9900000000000001);
});

test('a prediction equally close to two unused events takes the first of them', () => {
  // shot: tol 2 s, min 0.5. The shot at 50 (2 s) is exactly 1 s from both events (25 -> 1 s, 75 -> 3 s; all
  // exact in doubles), decay 1 - (1 / 2) * 0.5 = 0.75 either way. Taking the first (25) leaves 75 for the shot
  // at 100 (1 s, decay 0.75): (4.7 * 0.75 + 4.7 * 0.75) / 9.4 = 0.75.
  // Taking the last (75) would leave only 25, 3 s from 100 -> unmatched: (4.7 * 0.75 - 4.7) / 9.4 < 0 -> 0.
  const truth = [
    { frame: 25, action: 'shot' },
    { frame: 75, action: 'shot' },
  ];
  const score = scoreResponse(
    [
      { frame: 50, action: 'shot' },
      { frame: 100, action: 'shot' },
    ],
    truth,
  );
  assert.equal(score, 0.75);
});

test('predictions are matched in frame order, not response order', () => {
  // One pass event at 100. Response order lists 110 first; sorted order gives 95 the event (dt 0.2 vs 0.4)
  // and 110 becomes the unmatched duplicate. Either way one match + one penalty, but the decay differs:
  // (10.9 + 1.0 * (1 - 0.2) - 1.0) / 11.9 = 10.7 / 11.9 = 0.89915966...
  // (110 first would give (10.9 + 0.6 - 1.0) / 11.9 = 0.88235294...)
  const truth = [
    { frame: 100, action: 'pass' },
    { frame: 500, action: 'goal' },
  ];
  const score = scoreResponse(
    [
      { frame: 500, action: 'goal' },
      { frame: 110, action: 'pass' },
      { frame: 95, action: 'pass' },
    ],
    truth,
  );
  assert.equal(score, 0.8991596638655461);
});

test('different actions never match each other', () => {
  assert.equal(scoreResponse([{ frame: 100, action: 'pass_received' }], [{ frame: 100, action: 'pass' }]), 0);
});

test('unknown actions are ignored on both sides', () => {
  const truth = [
    { frame: 100, action: 'pass' },
    { frame: 200, action: 'dribble' },
  ];
  assert.equal(
    scoreResponse(
      [
        { frame: 100, action: 'pass' },
        { frame: 50, action: 'celebration' },
      ],
      truth,
    ),
    1,
  );
});

test('empty ground truth (or only unknown actions) scores 0', () => {
  assert.equal(scoreResponse([{ frame: 1, action: 'pass' }], []), 0);
  assert.equal(scoreResponse([], [{ frame: 1, action: 'dribble' }]), 0);
  assert.equal(scoreResponse([], GT), 0);
});

test('validateResponse accepts the documented shape', () => {
  const result = validateResponse({
    challenge_id: 'abc',
    predictions: [
      { frame: 45, action: 'pass', confidence: 0.91 },
      { frame: 0, action: 'unknown_thing' },
      { frame: 3, action: 'goal', confidence: null },
    ],
    processing_time: 2.5,
  });
  assert.deepEqual(result, {
    ok: true,
    challengeId: 'abc',
    predictions: [
      { frame: 45, action: 'pass', confidence: 0.91 },
      { frame: 0, action: 'unknown_thing' },
      { frame: 3, action: 'goal' },
    ],
    processingTime: 2.5,
  });
});

test('validateResponse rejects each invalid shape with the field named', () => {
  const base = { challenge_id: 'abc', processing_time: 1 };
  const cases: Array<[unknown, RegExp]> = [
    [[], /JSON object/],
    [{ ...base, predictions: [{ frame: 1.5, action: 'pass' }] }, /predictions\[0\]\.frame/],
    [{ ...base, predictions: [{ frame: -1, action: 'pass' }] }, /predictions\[0\]\.frame/],
    [{ ...base, predictions: [{ frame: '3', action: 'pass' }] }, /predictions\[0\]\.frame/],
    [
      {
        ...base,
        predictions: [
          { frame: 1, action: 'pass' },
          { frame: 2, action: 'pass', confidence: 1.01 },
        ],
      },
      /predictions\[1\]\.confidence/,
    ],
    [{ ...base, predictions: [{ frame: 2, action: 'pass', confidence: -0.1 }] }, /confidence/],
    [{ ...base, predictions: [{ frame: 2 }] }, /predictions\[0\]\.action/],
    [{ ...base, predictions: [7] }, /predictions\[0\] must be an object/],
    [{ ...base, predictions: null }, /predictions must be a list/],
    [{ challenge_id: 'abc', predictions: [] }, /processing_time/],
    [{ challenge_id: 'abc', predictions: [], processing_time: '1' }, /processing_time/],
    [{ challenge_id: 3, predictions: [], processing_time: 1 }, /challenge_id/],
  ];
  for (const [json, reason] of cases) {
    const result = validateResponse(json);
    assert.equal(result.ok, false, JSON.stringify(json));
    if (!result.ok) assert.match(result.reason, reason);
  }
});
