import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MinerError } from '../lib/core/errors.ts';
import { type ManifestInput, parseManifest, postprocessOptionsFrom } from '../lib/inference/manifest.ts';
import { activate, loadModel, type Model, normalisationTable, packClip } from '../lib/inference/model.ts';
import { ClipScorer } from '../lib/inference/pipeline.ts';
import { postprocess, WindowAccumulator } from '../lib/inference/postprocess.ts';
import { buildDefaultOnnx, manifestText } from '../scripts/build-model.ts';
import { logged } from './support/logged.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_DIR = path.join(ROOT, 'models', 'default');
const T = 64;
const FRAME = 36 * 64 * 3;

const tmpDirs: string[] = [];
function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'score-miner-model-'));
  tmpDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A constant grey video of `n` frames with full-frame white / black frames at the given indices. */
function video(n: number, white: number[], black: number[], grey = 128): Uint8Array {
  const v = new Uint8Array(n * FRAME).fill(grey);
  for (const f of white) v.fill(255, f * FRAME, (f + 1) * FRAME);
  for (const f of black) v.fill(0, f * FRAME, (f + 1) * FRAME);
  return v;
}

/** What the worker does: clips of T frames every stride frames, the last one padded with its last frame. */
async function runVideo(model: Model, frames: Uint8Array) {
  const { clipFrames, strideFrames, marginFrames } = model.manifest.timing;
  const n = frames.length / model.frameBytes;
  const acc = new WindowAccumulator(model.manifest.classes.length, { marginFrames });
  const clip = new Uint8Array(model.clipBytes);
  for (let start = 0; start < n; start += strideFrames) {
    const valid = Math.min(clipFrames, n - start);
    clip.set(frames.subarray(start * model.frameBytes, (start + valid) * model.frameBytes));
    for (let j = valid; j < clipFrames; j++)
      clip.copyWithin(j * model.frameBytes, (valid - 1) * model.frameBytes, valid * model.frameBytes);
    acc.add(start, (await model.inferClip(clip)).scores, valid);
    if (start + clipFrames >= n) break;
  }
  return postprocess(acc.result(), n, postprocessOptionsFrom(model.manifest));
}

describe('bundled model file', () => {
  it('scripts/build-model.ts regenerates model.onnx and model.json byte for byte', () => {
    const out = tmpDir();
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-model.ts'), out], { cwd: ROOT, stdio: 'pipe' });
    for (const file of ['model.onnx', 'model.json']) {
      const fresh = fs.readFileSync(path.join(out, file));
      const checkedIn = fs.readFileSync(path.join(DEFAULT_DIR, file));
      assert.ok(fresh.equals(checkedIn), `${file} drifted from scripts/build-model.ts: run \`npx tsx scripts/build-model.ts\` and commit`);
    }
    assert.ok(fs.statSync(path.join(DEFAULT_DIR, 'model.onnx')).size < 4096);
  });
});

describe('bundled model on synthetic frames', () => {
  let model: Model;
  before(async () => {
    model = await loadModel(DEFAULT_DIR, { providers: ['cpu'], threads: 1 });
    await model.warmup();
  });
  after(async () => {
    await model?.release();
  });

  it('exposes the contract sizes', () => {
    assert.equal(model.frameBytes, FRAME);
    assert.equal(model.clipBytes, T * FRAME);
    assert.deepEqual(model.providers, ['cpu']);
    assert.equal(model.thresholds.goal, model.manifest.postprocess.thresholds.goal);
  });

  it('a 2-frame white flash and a 2-frame black cut give one peak each, on their first frame', async () => {
    const { scores } = await model.inferClip(video(T, [20, 21], [40, 41]));
    assert.equal(scores.length, T * 2);
    for (let t = 0; t < T; t++) {
      const [flash, cut] = [scores[t * 2], scores[t * 2 + 1]];
      if (t === 20) assert.ok(flash > 0.9999, `flash score at 20: ${flash}`);
      else assert.ok(flash < 0.003, `flash score at ${t}: ${flash}`);
      if (t === 40) assert.ok(cut > 0.9999, `cut score at 40: ${cut}`);
      else assert.ok(cut < 0.003, `cut score at ${t}: ${cut}`);
    }
    // sigmoid(50 * (0 - 0.12)) = sigmoid(-6) on steady frames, sigmoid(50 * (127/255 - 0.12)) at the flash
    assert.ok(Math.abs(scores[0] - 1 / (1 + Math.exp(6))) < 1e-6, `steady score ${scores[0]}`);
    const predictions = postprocess(scores, T, postprocessOptionsFrom(model.manifest));
    assert.equal(predictions.length, 2);
    assert.deepEqual(
      predictions.map((p) => [p.frame, p.action]),
      [
        [20, 'goal'],
        [40, 'ball_out_of_play'],
      ],
    );
    assert.ok(predictions.every((p) => p.confidence > 0.9999 && p.confidence <= 1));
  });

  it('plain content (grey, a slow ramp) gives nothing; a 3-frame flash still fires once', async () => {
    assert.deepEqual(postprocess((await model.inferClip(video(T, [], []))).scores, T, postprocessOptionsFrom(model.manifest)), []);
    const ramp = new Uint8Array(T * FRAME);
    for (let t = 0; t < T; t++) ramp.fill(60 + 2 * t, t * FRAME, (t + 1) * FRAME);
    assert.deepEqual(postprocess((await model.inferClip(ramp)).scores, T, postprocessOptionsFrom(model.manifest)), []);
    const three = postprocess((await model.inferClip(video(T, [30, 31, 32], []))).scores, T, postprocessOptionsFrom(model.manifest));
    assert.deepEqual(
      three.map((p) => [p.frame, p.action]),
      [[30, 'goal']],
    );
  });

  it('over several overlapping clips: events on a clip start, in an overlap and in the padded last clip', async () => {
    // clips start at 0, 48, 96 (valid 54 of 64): frame 48 is the first frame of clip 2 (no history there),
    // frame 100 in the overlap, 130 in the last clip only.
    const frames = video(150, [48, 49, 130, 131], [100, 101]);
    const predictions = await runVideo(model, frames);
    assert.deepEqual(
      predictions.map((p) => [p.frame, p.action]),
      [
        [48, 'goal'],
        [100, 'ball_out_of_play'],
        [130, 'goal'],
      ],
    );
    assert.ok(predictions.every((p) => p.confidence > 0.999));
  });

  it('runs at 12.5 fps frame mapping when the manifest says so (frame k -> 2k)', async () => {
    const { scores } = await model.inferClip(video(T, [10, 11], []));
    const opts = { ...postprocessOptionsFrom(model.manifest), fps: 12.5 };
    assert.deepEqual(
      postprocess(scores, T, opts).map((p) => p.frame),
      [20],
    );
  });

  it('is deterministic: identical bytes from two runs and from a second session', async () => {
    const clip = video(T, [5, 6], [50]);
    for (let t = 0; t < T; t++) clip[t * FRAME + (t % 7)] = (t * 37) % 256; // some texture
    const a = await model.inferClip(clip);
    const b = await model.inferClip(clip);
    assert.ok(Buffer.from(a.scores.buffer).equals(Buffer.from(b.scores.buffer)));
    const other = await loadModel(DEFAULT_DIR, { providers: ['cpu'], threads: 2 });
    try {
      const c = await other.inferClip(clip);
      assert.ok(Buffer.from(a.scores.buffer).equals(Buffer.from(c.scores.buffer)));
    } finally {
      await other.release();
    }
  });

  it('ORT_GRAPH_OPTIMIZATION: every level loads, reports itself, and scores within 1e-6 of the default', async () => {
    const clip = video(T, [9, 10], [40]);
    const reference = await model.inferClip(clip);
    for (const graphOptimization of ['disabled', 'basic', 'all'] as const) {
      const { value: other, lines } = await logged(() => loadModel(DEFAULT_DIR, { providers: ['cpu'], threads: 1, graphOptimization }));
      try {
        assert.ok(
          lines.some((l) => l.includes(`graph_optimization=${graphOptimization}`)),
          lines.join('\n'),
        );
        const { scores } = await other.inferClip(clip);
        assert.equal(scores.length, reference.scores.length);
        const worst = scores.reduce((m, v, i) => Math.max(m, Math.abs(v - reference.scores[i])), 0);
        assert.ok(worst <= 1e-6, `${graphOptimization}: differs by ${worst}`);
      } finally {
        await other.release();
      }
    }
  });

  it('ORT_MEM_PATTERN on or off: identical bytes (the memory plan changes no arithmetic)', async () => {
    const clip = video(T, [5, 6], [50]);
    for (let t = 0; t < T; t++) clip[t * FRAME + (t % 5)] = (t * 53) % 256;
    const planned = await loadModel(DEFAULT_DIR, { providers: ['cpu'], threads: 1, memPattern: true });
    try {
      const off = await model.inferClip(clip);
      for (let run = 0; run < 2; run++) {
        const on = await planned.inferClip(clip);
        assert.ok(Buffer.from(on.scores.buffer).equals(Buffer.from(off.scores.buffer)), `run ${run} differs`);
      }
    } finally {
      await planned.release();
    }
  });

  it('ClipScorer: after each window, the predictions over the frames covered so far', async () => {
    // The windows the decoder would hand over for 150 frames (T 64, stride 48): starts 0, 48, 96 (54 valid).
    const frames = video(150, [48, 49, 130, 131], [100, 101]);
    const scorer = new ClipScorer(model);
    const steps: Array<[number, number, Array<[number, string]>]> = [];
    for (const start of [0, 48, 96]) {
      const valid = Math.min(T, 150 - start);
      const clip = new Uint8Array(model.clipBytes);
      clip.set(frames.subarray(start * FRAME, (start + valid) * FRAME));
      for (let j = valid; j < T; j++) clip.copyWithin(j * FRAME, (valid - 1) * FRAME, valid * FRAME);
      const snapshot = await scorer.add({ startFrame: start, frames: clip, validFrames: valid });
      steps.push([snapshot.windows, snapshot.frames, snapshot.predictions.map((p) => [p.frame, p.action])]);
    }
    assert.deepEqual(steps, [
      [1, 64, [[48, 'goal']]],
      [
        2,
        112,
        [
          [48, 'goal'],
          [100, 'ball_out_of_play'],
        ],
      ],
      [
        3,
        150,
        [
          [48, 'goal'],
          [100, 'ball_out_of_play'],
          [130, 'goal'],
        ],
      ],
    ]);
    // The last snapshot is the whole-video answer, computed independently.
    assert.deepEqual(scorer.snapshot().predictions, await runVideo(model, frames));
  });

  it('concurrent calls are serialised and each gets its own result', async () => {
    const [x, y] = await Promise.all([model.inferClip(video(T, [10, 11], [])), model.inferClip(video(T, [], [30]))]);
    assert.ok(x.scores[20] > 0.99 && x.scores[61] < 0.01);
    assert.ok(y.scores[61] > 0.99 && y.scores[20] < 0.01);
  });

  it('refuses a clip of the wrong size with a clear MinerError', async () => {
    await assert.rejects(
      model.inferClip(new Uint8Array(FRAME * 10)),
      (e: unknown) =>
        e instanceof MinerError && /inferClip expects 64 frames of 64x36 rgb24 \(442368 bytes\), got 69120 bytes/.test(e.message),
    );
  });
});

describe('loadModel errors', () => {
  it('unsupported provider name', async () => {
    await assert.rejects(
      loadModel(DEFAULT_DIR, { providers: ['tpu'] }),
      (e: unknown) =>
        e instanceof MinerError && e.message.includes('execution provider "tpu" is not supported') && /ORT_PROVIDERS/.test(e.hint ?? ''),
    );
  });

  it('missing folder / missing model.onnx', async () => {
    await assert.rejects(
      loadModel('/nonexistent/score-model'),
      (e: unknown) =>
        e instanceof MinerError && e.message.includes('/nonexistent/score-model does not exist') && /MODEL_DIR/.test(e.hint ?? ''),
    );
    const dir = tmpDir();
    fs.copyFileSync(path.join(DEFAULT_DIR, 'model.json'), path.join(dir, 'model.json'));
    await assert.rejects(loadModel(dir), (e: unknown) => e instanceof MinerError && e.message.includes('has no model.onnx'));
  });

  it('corrupt model.onnx (also when cuda was asked for first)', async () => {
    const dir = tmpDir();
    fs.copyFileSync(path.join(DEFAULT_DIR, 'model.json'), path.join(dir, 'model.json'));
    const bytes = fs.readFileSync(path.join(DEFAULT_DIR, 'model.onnx'));
    fs.writeFileSync(path.join(dir, 'model.onnx'), bytes.subarray(0, 300)); // truncated
    for (const providers of [['cpu'], ['cuda', 'cpu']]) {
      await assert.rejects(
        loadModel(dir, { providers }),
        (e: unknown) => e instanceof MinerError && e.message.startsWith(`cannot load ${dir}/model.onnx`) && /re-export/.test(e.hint ?? ''),
      );
    }
  });

  it('cuda falls back to cpu when CUDA cannot be used, and still infers', async () => {
    // CPU-only installs (ONNXRUNTIME_NODE_INSTALL=skip) have no CUDA provider library; with one but no GPU,
    // onnxruntime also refuses it. Either way the session must end up on cpu and work.
    const binDir = path.dirname(fileURLToPath(import.meta.resolve('onnxruntime-node')));
    const hasCudaLibrary = fs
      .readdirSync(path.join(binDir, '..', 'bin'), { recursive: true })
      .some((f) => String(f).includes('providers_cuda'));
    const model = await loadModel(DEFAULT_DIR, { providers: ['cuda', 'cpu'], threads: 1 });
    try {
      if (hasCudaLibrary) assert.ok(['cuda', 'cpu'].includes(model.providers[0]), `providers ${model.providers}`);
      else assert.deepEqual(model.providers, ['cpu']);
      const { scores } = await model.inferClip(video(T, [20, 21], []));
      assert.ok(scores[40] > 0.99);
    } finally {
      await model.release();
    }
  });

  it('a released model refuses further clips', async () => {
    const model = await loadModel(DEFAULT_DIR, { threads: 1 });
    await model.release();
    await model.release(); // idempotent
    await assert.rejects(model.inferClip(video(T, [], [])), (e: unknown) => e instanceof MinerError && e.message.includes('released'));
  });
});

describe('displacement output (test variant of the default graph)', () => {
  it('is fetched, checked against the manifest and shifts the event', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'model.onnx'), buildDefaultOnnx({ withDisplacement: true }));
    const manifest = JSON.parse(manifestText());
    manifest.outputs.displacement = { name: 'displacement' };
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(manifest));
    const model = await loadModel(dir, { threads: 1 });
    try {
      const out = await model.inferClip(video(T, [20, 21], []));
      assert.ok(out.displacement instanceof Float32Array && out.displacement.length === T);
      assert.equal(out.displacement[20], -1); // -brightness of a white frame
      assert.ok(Math.abs(out.displacement[0] + 128 / 255) < 1e-4, `displacement[0] = ${out.displacement[0]}`);
      const predictions = postprocess(out.scores, T, { ...postprocessOptionsFrom(model.manifest), displacement: out.displacement });
      assert.deepEqual(
        predictions.map((p) => [p.frame, p.action]),
        [[19, 'goal']],
      );
    } finally {
      await model.release();
    }
    // the same file without the displacement declared still loads (extra outputs are not fetched)
    manifest.outputs.displacement = undefined;
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(manifest));
    const plain = await loadModel(dir, { threads: 1 });
    assert.equal((await plain.inferClip(video(T, [], []))).displacement, undefined);
    await plain.release();
  });
});

describe('packClip / activation (pure)', () => {
  // 2 frames of 1x2 pixels; bytes are t*100 + pixel*10 + channel.
  const frames = Uint8Array.from([0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112]);
  const base = parseManifest(JSON.parse(fs.readFileSync(path.join(DEFAULT_DIR, 'model.json'), 'utf8')), 'm').input;
  const input = (layout: ManifestInput['layout']): ManifestInput => ({
    ...base,
    layout,
    height: 1,
    width: 2,
    dtype: 'uint8',
    scale: 1,
    mean: [0, 0, 0],
    std: [1, 1, 1],
  });

  it('NTHWC keeps the raw order, NCTHW and NTCHW go planar', () => {
    const out = new Uint8Array(12);
    packClip(frames, input('NTHWC'), 2, out);
    assert.deepEqual(Array.from(out), Array.from(frames));
    packClip(frames, input('NCTHW'), 2, out);
    assert.deepEqual(Array.from(out), [0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112]);
    packClip(frames, input('NTCHW'), 2, out);
    assert.deepEqual(Array.from(out), [0, 10, 1, 11, 2, 12, 100, 110, 101, 111, 102, 112]);
  });

  it('float inputs are normalised per channel: (byte * scale - mean) / std', () => {
    const inp: ManifestInput = { ...input('NCTHW'), dtype: 'float32', scale: 0.5, mean: [0, 1, 2], std: [1, 2, 4] };
    const out = new Float32Array(12);
    packClip(frames, inp, 2, out, normalisationTable(inp));
    assert.deepEqual(Array.from(out), [
      0,
      5,
      50,
      55,
      (0.5 - 1) / 2,
      (5.5 - 1) / 2,
      (50.5 - 1) / 2,
      (55.5 - 1) / 2,
      (1 - 2) / 4,
      (6 - 2) / 4,
      (51 - 2) / 4,
      (56 - 2) / 4,
    ]);
    const gray: ManifestInput = { ...inp, colour: 'gray', channels: 1, mean: [10], std: [2] };
    const g = new Float32Array(4);
    packClip(Uint8Array.from([10, 20, 30, 40]), { ...gray, width: 2 }, 2, g, normalisationTable(gray));
    assert.deepEqual(Array.from(g), [-2.5, 0, 2.5, 5]);
    assert.throws(() => packClip(frames.subarray(1), inp, 2, out), RangeError);
  });

  it('sigmoid, softmax over each frame, none', () => {
    const s = activate(Float32Array.from([0, Math.log(3)]), 2, 'sigmoid');
    assert.deepEqual(Array.from(s), [0.5, 0.75]);
    const m = activate(Float32Array.from([0, Math.log(3), 5, 5]), 2, 'softmax');
    assert.deepEqual(Array.from(m), [0.25, 0.75, 0.5, 0.5]);
    assert.deepEqual(Array.from(activate(Float32Array.from([-2, 7]), 2, 'none')), [-2, 7]);
  });
});
