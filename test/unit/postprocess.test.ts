import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type PostprocessOptions, postprocess, WindowAccumulator } from '../../lib/inference/postprocess.ts';
import type { ActionName } from '../../lib/protocol/actions.ts';

/** N frames x classes.length columns, all `fill`, with `set` = [[frame, column, value], ...]. */
function scores(numFrames: number, numClasses: number, set: Array<[number, number, number]>, fill = 0): Float32Array {
  const out = new Float32Array(numFrames * numClasses).fill(fill);
  for (const [f, k, v] of set) out[f * numClasses + k] = v;
  return out;
}

function opts(classes: Array<ActionName | null>, extra: Partial<PostprocessOptions> = {}): PostprocessOptions {
  return {
    fps: 25,
    classes,
    thresholds: { pass: 0.5, goal: 0.5, shot: 0.5, ball_out_of_play: 0.5 },
    nmsWindowS: { pass: 1, goal: 3, shot: 2, ball_out_of_play: 2 },
    ...extra,
  };
}

describe('WindowAccumulator', () => {
  it('averages overlapping windows frame by frame', () => {
    const acc = new WindowAccumulator(1);
    acc.add(0, [1, 1, 1, 1], 4);
    acc.add(2, [3, 3, 3, 3], 4);
    assert.deepEqual(Array.from(acc.result()), [1, 1, 2, 2, 3, 3]);
    assert.equal(acc.numFrames, 6);
  });

  it('keeps classes apart and uses only validFrames of a padded last window', () => {
    const acc = new WindowAccumulator(2);
    acc.add(0, [1, 10, 2, 20, 3, 30], 3);
    acc.add(2, [5, 50, 7, 70, 9, 90], 2); // third frame is padding
    assert.deepEqual(Array.from(acc.result()), [1, 10, 2, 20, 4, 40, 7, 70]);
  });

  it('three windows over one frame average all three', () => {
    const acc = new WindowAccumulator(1);
    acc.add(0, [3, 3, 3], 3);
    acc.add(1, [6, 6, 6], 3);
    acc.add(2, [9, 9, 9], 3);
    assert.deepEqual(Array.from(acc.result()), [3, 4.5, 6, 7.5, 9]);
  });

  it('margins give way to a window with context, and count where nothing else covers the frame', () => {
    const acc = new WindowAccumulator(1, { marginFrames: 1 });
    acc.add(0, [10, 11, 12, 13], 4); // frame 3 is in its tail margin
    acc.add(2, [20, 21, 22, 23], 4); // frame 2 in its head margin, frame 5 in its tail margin
    assert.deepEqual(Array.from(acc.result()), [10, 11, 12, 21, 22, 23]);
  });

  it('frames no window covered are 0; bad arguments throw', () => {
    const acc = new WindowAccumulator(1);
    acc.add(3, [5, 5], 1);
    assert.deepEqual(Array.from(acc.result()), [0, 0, 0, 5]);
    assert.throws(() => acc.add(0, [1, 2, 3], 4), RangeError);
    assert.throws(() => acc.add(-1, [1], 1), RangeError);
    assert.throws(() => new WindowAccumulator(2).add(0, [1, 2, 3], 1), RangeError);
    assert.throws(() => new WindowAccumulator(0), RangeError);
  });

  it('grows past its initial capacity without losing sums', () => {
    const acc = new WindowAccumulator(1);
    for (let s = 0; s < 1000; s += 50) acc.add(s, new Float32Array(64).fill(s), 64);
    const r = acc.result();
    assert.equal(r.length, 950 + 64);
    assert.equal(r[10], 0);
    assert.equal(r[60], 25); // frames 50..63: windows 0 and 50
    assert.equal(r[1013], 950);
  });
});

describe('postprocess', () => {
  it('NMS keeps one peak per event within the window and both of two events farther apart', () => {
    // pass: window 1 s = 25 frames at 25 fps.
    const s = scores(100, 1, [
      [10, 0, 0.875],
      [11, 0, 0.75],
      [30, 0, 0.625], // 20 frames from 10: same event
      [35, 0, 0.625], // exactly 25 frames: still within the window
      [36, 0, 0.5625], // 26 frames: a second event
    ]);
    assert.deepEqual(postprocess(s, 100, opts(['pass'])), [
      { frame: 10, action: 'pass', confidence: 0.875 },
      { frame: 36, action: 'pass', confidence: 0.5625 },
    ]);
  });

  it('a plateau gives one prediction at its earliest frame (ties: earliest wins)', () => {
    const s = scores(60, 1, [
      [20, 0, 0.75],
      [21, 0, 0.75],
      [22, 0, 0.75],
    ]);
    assert.deepEqual(postprocess(s, 60, opts(['pass'])), [{ frame: 20, action: 'pass', confidence: 0.75 }]);
  });

  it('thresholds: below and at are dropped, above is emitted', () => {
    const s = scores(150, 1, [
      [0, 0, 0.4375],
      [50, 0, 0.5],
      [100, 0, 0.5625],
    ]);
    assert.deepEqual(postprocess(s, 150, opts(['pass'])), [{ frame: 100, action: 'pass', confidence: 0.5625 }]);
    // per action: a lower pass threshold admits the one at 0.5 too
    const lower = postprocess(s, 150, opts(['pass'], { thresholds: { pass: 0.45 } }));
    assert.deepEqual(
      lower.map((p) => p.frame),
      [50, 100],
    );
  });

  it('converts model frames to 25 fps frame indices (12.5 fps and 30 fps)', () => {
    const slow = scores(40, 1, [[10, 0, 0.75]]);
    assert.deepEqual(postprocess(slow, 40, opts(['pass'], { fps: 12.5 })), [{ frame: 20, action: 'pass', confidence: 0.75 }]);
    // 30 fps: 3 -> 2.5 -> 3 (half up), 40 -> 33.33 -> 33, 81 -> 67.5 -> 68, 100 -> 83.33 -> 83
    const fast = scores(120, 1, [
      [3, 0, 0.75],
      [40, 0, 0.75],
      [81, 0, 0.75],
    ]);
    assert.deepEqual(
      postprocess(fast, 120, opts(['pass'], { fps: 30 })).map((p) => p.frame),
      [3, 33, 68],
    );
    // the NMS window is in seconds: at 30 fps, 1 s = 30 frames, so 3 and 33 would merge
    const close = scores(120, 1, [
      [3, 0, 0.75],
      [33, 0, 0.625],
    ]);
    assert.deepEqual(
      postprocess(close, 120, opts(['pass'], { fps: 30 })).map((p) => p.frame),
      [3],
    );
  });

  it('applies the displacement of the peak frame (in model frames)', () => {
    const s = scores(40, 1, [
      [10, 0, 0.75],
      [30, 0, 0.625],
    ]);
    const displacement = new Float32Array(40);
    displacement[10] = 1.5; // 11.5 model frames at 12.5 fps = 0.92 s = 25 fps frame 23
    displacement[30] = -2; // 28 -> frame 56
    assert.deepEqual(postprocess(s, 40, opts(['pass'], { fps: 12.5, displacement })), [
      { frame: 23, action: 'pass', confidence: 0.75 },
      { frame: 56, action: 'pass', confidence: 0.625 },
    ]);
  });

  it('never emits a negative frame or one past the last frame; non-finite displacement counts as 0', () => {
    const s = scores(20, 1, [[1, 0, 0.75]]);
    const early = new Float32Array(20);
    early[1] = -5;
    assert.deepEqual(postprocess(s, 20, opts(['pass'], { displacement: early })), [{ frame: 0, action: 'pass', confidence: 0.75 }]);
    const late = scores(20, 1, [[19, 0, 0.75]]);
    const d = new Float32Array(20);
    d[19] = 10;
    assert.deepEqual(
      postprocess(late, 20, opts(['pass'], { displacement: d })).map((p) => p.frame),
      [19],
    );
    const nan = new Float32Array(20).fill(NaN);
    assert.deepEqual(
      postprocess(s, 20, opts(['pass'], { displacement: nan })).map((p) => p.frame),
      [1],
    );
  });

  it('merges displaced peaks that land within the window (stronger kept)', () => {
    const s = scores(100, 1, [
      [10, 0, 0.625],
      [40, 0, 0.75],
    ]);
    const d = new Float32Array(100);
    d[40] = -25; // lands on 15, 5 frames from the other peak
    assert.deepEqual(postprocess(s, 100, opts(['pass'], { displacement: d })), [{ frame: 15, action: 'pass', confidence: 0.75 }]);
  });

  it('merges displaced peaks exactly one window apart, keeps them one frame farther', () => {
    // pass: window 1 s = 25 model frames at 25 fps. Peaks at 10 and 60 are 50 frames apart, so NMS keeps both;
    // the displacement then moves the weaker one to 60 - 25 = 35, exactly 25 frames from 10: merged (<= window).
    const s = scores(100, 1, [
      [10, 0, 0.75],
      [60, 0, 0.625],
    ]);
    const edge = new Float32Array(100);
    edge[60] = -25;
    assert.deepEqual(postprocess(s, 100, opts(['pass'], { displacement: edge })), [{ frame: 10, action: 'pass', confidence: 0.75 }]);
    // -24 lands on 36, 26 frames away: both kept.
    const beyond = new Float32Array(100);
    beyond[60] = -24;
    assert.deepEqual(postprocess(s, 100, opts(['pass'], { displacement: beyond })), [
      { frame: 10, action: 'pass', confidence: 0.75 },
      { frame: 36, action: 'pass', confidence: 0.625 },
    ]);
  });

  it('clamps confidence to [0, 1] and ignores NaN scores', () => {
    const s = scores(100, 1, [
      [10, 0, 1.75],
      [60, 0, NaN],
    ]);
    assert.deepEqual(postprocess(s, 100, opts(['pass'])), [{ frame: 10, action: 'pass', confidence: 1 }]);
  });

  it('merges classes mapped to one action with max and drops unmapped classes', () => {
    // columns: background (null), goal_a, goal_b, shot
    const s = scores(200, 4, [
      [10, 0, 0.99],
      [10, 1, 0.75],
      [12, 2, 0.875], // same goal event (window 3 s): the stronger column wins at its frame
      [100, 0, 0.99],
      [150, 3, 0.625],
    ]);
    assert.deepEqual(postprocess(s, 200, opts([null, 'goal', 'goal', 'shot'])), [
      { frame: 12, action: 'goal', confidence: 0.875 },
      { frame: 150, action: 'shot', confidence: 0.625 },
    ]);
  });

  it('accepts manifest classes ({name, action}) as they are', () => {
    const s = scores(50, 2, [[5, 1, 0.75]]);
    const classes = [
      { name: 'bg', action: null },
      { name: 'g', action: 'goal' as const },
    ];
    assert.deepEqual(postprocess(s, 50, { ...opts([]), classes }), [{ frame: 5, action: 'goal', confidence: 0.75 }]);
  });

  it('sorts by frame then action name', () => {
    const s = scores(300, 2, [
      [50, 0, 0.75], // shot
      [50, 1, 0.625], // goal, same frame
      [20, 0, 0.625], // shot 30 frames (1.2 s) before the stronger one: suppressed (window 2 s)
      [200, 1, 0.75], // goal 6 s later: a second goal
    ]);
    assert.deepEqual(
      postprocess(s, 300, opts(['shot', 'goal'])).map((p) => `${p.frame}:${p.action}`),
      ['50:goal', '50:shot', '200:goal'],
    );
    // a stronger goal 2.8 s after the one at 50 (window 3 s) replaces it
    const t = scores(300, 2, [
      [50, 1, 0.625],
      [120, 1, 0.75],
    ]);
    assert.deepEqual(
      postprocess(t, 300, opts(['shot', 'goal'])).map((p) => `${p.frame}:${p.action}`),
      ['120:goal'],
    );
  });

  it('is empty for empty input and checks its arguments', () => {
    assert.deepEqual(postprocess(new Float32Array(0), 0, opts(['pass'])), []);
    assert.throws(() => postprocess(new Float32Array(3), 2, opts(['pass', 'goal'])), RangeError);
    assert.throws(() => postprocess(new Float32Array(2), 2, opts(['pass'], { fps: 0 })), RangeError);
    assert.throws(() => postprocess(new Float32Array(2), 2, opts(['tackle'])), RangeError); // no threshold given
  });

  it('on noisy scores: integer frames >= 0, confidences in [0, 1], sorted, no same-action pair within the window, deterministic', () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const n = 600;
    const s = new Float32Array(n * 3).map(() => rand() * 1.2 - 0.1);
    const o = opts(['pass', 'goal', 'pass'], { fps: 12.5 });
    const out = postprocess(s, n, o);
    assert.ok(out.length > 5, `expected several predictions, got ${out.length}`);
    for (const [i, p] of out.entries()) {
      assert.ok(Number.isInteger(p.frame) && p.frame >= 0 && p.frame <= Math.round(((n - 1) * 25) / 12.5));
      assert.ok(p.confidence > 0.5 && p.confidence <= 1);
      if (i > 0) assert.ok(out[i - 1].frame <= p.frame);
      for (const q of out.slice(i + 1)) {
        if (q.action === p.action) assert.ok(Math.abs(q.frame - p.frame) / 25 > o.nmsWindowS[p.action]! - 0.04);
      }
    }
    assert.deepEqual(postprocess(s, n, o), out);
  });
});
