import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACTIONS, isActionName, SCORE_FPS } from '../../lib/protocol/actions.ts';

// Golden copy of the validator's action table (docs/protocol.md, "Actions"), written out by hand:
// [name, weight, min_score, tolerance_s]. A change upstream must be made here and in lib/protocol/actions.ts.
const TABLE: ReadonlyArray<readonly [string, number, number, number]> = [
  ['pass', 1.0, 0.0, 1.0],
  ['pass_received', 1.4, 0.0, 1.0],
  ['recovery', 1.5, 0.0, 1.5],
  ['tackle', 2.5, 0.1, 1.5],
  ['interception', 2.8, 0.5, 2.0],
  ['ball_out_of_play', 2.9, 0.5, 2.0],
  ['clearance', 3.1, 0.5, 2.0],
  ['take_on', 3.2, 0.5, 2.0],
  ['substitution', 4.2, 0.5, 2.0],
  ['block', 4.2, 0.5, 2.0],
  ['aerial_duel', 4.3, 0.5, 2.0],
  ['shot', 4.7, 0.5, 2.0],
  ['save', 7.3, 0.5, 2.0],
  ['foul', 7.7, 0.5, 2.5],
  ['goal', 10.9, 0.5, 3.0],
];

test('the action table matches the validator row for row (name, weight, min_score, tolerance)', () => {
  const actual = Object.entries(ACTIONS).map(([name, spec]) => [name, spec.weight, spec.minScore, spec.toleranceS]);
  assert.deepEqual(actual, TABLE);
});

test('exactly the fifteen actions are known; anything else is not', () => {
  assert.equal(TABLE.length, 15);
  for (const [name] of TABLE) assert.equal(isActionName(name), true, name);
  for (const name of ['dribble', 'Pass', 'GOAL', '', 'toString', 'hasOwnProperty', '__proto__']) {
    assert.equal(isActionName(name), false, name);
  }
});

test('response frames are indices at 25 fps', () => {
  assert.equal(SCORE_FPS, 25);
});
