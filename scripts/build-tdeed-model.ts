/**
 * Generates a T-DEED-shaped ONNX model folder for benchmarking:
 * `node scripts/build-tdeed-model.ts [--backbone regnety|dense] [outDir]` (default /tmp/score-miner-tdeed; never
 * inside the repository: the model is for measuring, not for shipping).
 *
 * Same interface and compute as a T-DEED export (a 2D backbone per frame + a temporal layer, 12.5 fps, T = 100
 * frames of 224x398), with random weights: it earns nothing, it costs what a real one costs. Seeded, so the
 * output bytes are identical on every run.
 *   frames   [1, 100, 3, 224, 398] float32 (NTCHW, ImageNet-normalised by the server: mean/std in model.json)
 *   -> Reshape [100, 3, 224, 398] (frames as the batch)
 *   -> backbone, per frame:
 *        regnety (default)  T-DEED's RegNetY-200MF (stem 32; stages 24/56/152/368 channels of 1/1/4/7 blocks;
 *                           1x1 -> grouped 3x3 -> squeeze-excitation -> 1x1, group width 8) with a gate-shift
 *                           module (temporal shift, tanh gate) before every block: ~0.74 GFLOP per frame in many
 *                           small, memory-bound ops, as a real export runs (5.3 s per 30 s clip on one core)
 *        dense              5 x (Conv 3x3 stride 2 + ReLU), 3->24->48->96->192->384: ~0.5 GFLOP per frame in the
 *                           shape onnxruntime runs fastest (a lower bound: about 4x faster than regnety here)
 *   -> GlobalAveragePool -> [1, channels, 100] (channels x time)
 *   -> temporal Conv1d k=9 (-> 256) + ReLU
 *   -> heads: Conv1d k=1 -> scores [1, 100, 16] (background + the 15 Score actions, softmax)
 *                          displacement [1, 100] (2 * tanh, in model frames)
 * After writing, the folder is loaded with onnxruntime-node through lib/inference/model.ts (which checks
 * model.json against the session, as the server does at start-up) and a few clips are timed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ACTIONS } from '../lib/protocol/actions.ts';
import { FLOAT, float, IR_VERSION, int, int64s, ints, node, OPSET, onnx, type P, tensorType } from './onnx-graph.ts';

export const TDEED_MODEL = {
  clipFrames: 100,
  strideFrames: 75,
  marginFrames: 12,
  fps: 12.5,
  height: 224,
  width: 398,
  /** RegNetY-200MF, T-DEED's backbone (timm regnety_002). */
  regnety: {
    stem: 32,
    groupWidth: 8,
    stages: [
      { width: 24, depth: 1 },
      { width: 56, depth: 1 },
      { width: 152, depth: 4 },
      { width: 368, depth: 7 },
    ],
  },
  /** Output channels of the `dense` backbone's strided 3x3 convolutions. */
  dense: [24, 48, 96, 192, 384],
  temporalChannels: 256,
  temporalKernel: 9,
  seed: 44,
} as const;

export const DEFAULT_TDEED_DIR = path.join(os.tmpdir(), 'score-miner-tdeed');

/** mulberry32: a small seeded PRNG, so the weights (and the file's bytes) are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform(-bound, bound) weights as raw little-endian float32 bytes (compact, and fast to encode). */
function randomTensor(name: string, dims: number[], bound: number, random: () => number): P.ITensorProto {
  const values = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = (random() * 2 - 1) * bound;
  return { name, dataType: FLOAT, dims, rawData: new Uint8Array(values.buffer) };
}

/** Score's actions after a background class: the T-DEED class layout. */
export function tdeedClasses(): Array<{ name: string; action: string | null }> {
  return [{ name: 'background', action: null }, ...Object.keys(ACTIONS).map((name) => ({ name, action: name }))];
}

/** A network under construction: nodes, weights and the multiply-accumulates per frame counted as they are added. */
interface GraphBuilder {
  nodes: P.INodeProto[];
  initializer: P.ITensorProto[];
  random: () => number;
  macsPerFrame: number;
  /** Unique names: prefix + counter. */
  name(prefix: string): string;
}

function graphBuilder(seed: number): GraphBuilder {
  let counter = 0;
  return { nodes: [], initializer: [], random: prng(seed), macsPerFrame: 0, name: (prefix) => `${prefix}_${counter++}` };
}

interface FeatureMap {
  name: string;
  channels: number;
  height: number;
  width: number;
}

/** 2D convolution (batch norm folded into its bias, as an inference export has it), optional ReLU / sigmoid. */
function conv2d(
  g: GraphBuilder,
  x: FeatureMap,
  out: number,
  {
    kernel = 1,
    stride = 1,
    groups = 1,
    act = 'relu',
  }: { kernel?: number; stride?: number; groups?: number; act?: 'relu' | 'sigmoid' | 'none' } = {},
): FeatureMap {
  const w = g.name('w');
  const b = g.name('b');
  const fanIn = (x.channels / groups) * kernel * kernel;
  // He-uniform bound keeps activations in range through the ReLU stack.
  g.initializer.push(randomTensor(w, [out, x.channels / groups, kernel, kernel], Math.sqrt(6 / fanIn), g.random));
  g.initializer.push(randomTensor(b, [out], 0.01, g.random));
  const pad = (kernel - 1) / 2;
  const height = Math.floor((x.height + 2 * pad - kernel) / stride) + 1;
  const width = Math.floor((x.width + 2 * pad - kernel) / stride) + 1;
  const y = g.name('conv');
  g.nodes.push(
    node(
      'Conv',
      [x.name, w, b],
      [y],
      [ints('kernel_shape', [kernel, kernel]), ints('strides', [stride, stride]), ints('pads', [pad, pad, pad, pad]), int('group', groups)],
    ),
  );
  g.macsPerFrame += height * width * out * fanIn;
  let name = y;
  if (act !== 'none') {
    name = g.name(act);
    g.nodes.push(node(act === 'relu' ? 'Relu' : 'Sigmoid', [y], [name]));
  }
  return { name, channels: out, height, width };
}

function binary(g: GraphBuilder, op: 'Add' | 'Mul', a: string, b: string): string {
  const y = g.name(op.toLowerCase());
  g.nodes.push(node(op, [a, b], [y]));
  return y;
}

/** Slice [start, end) of one axis. */
function slice(g: GraphBuilder, x: string, axis: number, start: number, end: number): string {
  const [starts, ends, axes] = [g.name('starts'), g.name('ends'), g.name('axes')];
  g.initializer.push(int64s(starts, [start]), int64s(ends, [end]), int64s(axes, [axis]));
  const y = g.name('slice');
  g.nodes.push(node('Slice', [x, starts, ends, axes], [y]));
  return y;
}

/** Zero-pads the frame axis (axis 0, the clip's frames as the batch) by `before` and `after` frames. */
function padFrames(g: GraphBuilder, x: string, before: number, after: number): string {
  const pads = g.name('pads');
  g.initializer.push(int64s(pads, [before, 0, 0, 0, after, 0, 0, 0]));
  const y = g.name('pad');
  g.nodes.push(node('Pad', [x, pads], [y]));
  return y;
}

function concat(g: GraphBuilder, inputs: string[], axis: number): string {
  const y = g.name('concat');
  g.nodes.push(node('Concat', inputs, [y], [int('axis', axis)]));
  return y;
}

/**
 * T-DEED's gate-shift module (GSM) in its simplest form: a quarter of the channels move one frame forward in
 * time, another quarter one frame back, gated by a tanh of a 3x3 convolution over those channels; the rest pass.
 */
function gateShift(g: GraphBuilder, x: FeatureMap, frames: number): FeatureMap {
  const fold = Math.max(1, Math.floor(x.channels / 4));
  const forward = slice(g, x.name, 1, 0, fold);
  const backward = slice(g, x.name, 1, fold, 2 * fold);
  const rest = slice(g, x.name, 1, 2 * fold, x.channels);
  const shifted = concat(
    g,
    [padFrames(g, slice(g, forward, 0, 0, frames - 1), 1, 0), padFrames(g, slice(g, backward, 0, 1, frames), 0, 1)],
    1,
  );
  const gateInput: FeatureMap = { ...x, name: concat(g, [forward, backward], 1), channels: 2 * fold };
  const gateLogits = conv2d(g, gateInput, 1, { kernel: 3, act: 'none' });
  const gate = g.name('tanh');
  g.nodes.push(node('Tanh', [gateLogits.name], [gate]));
  return { ...x, name: concat(g, [binary(g, 'Mul', shifted, gate), rest], 1) };
}

/** RegNetY block: 1x1 -> grouped 3x3 (stride) -> squeeze-excitation -> 1x1, plus the shortcut. */
function regnetYBlock(g: GraphBuilder, input: FeatureMap, width: number, stride: number, groupWidth: number, frames: number): FeatureMap {
  const x = gateShift(g, input, frames);
  const a = conv2d(g, x, width);
  const b = conv2d(g, a, width, { kernel: 3, stride, groups: width / groupWidth });
  const pooled = g.name('se_pool');
  g.nodes.push(node('GlobalAveragePool', [b.name], [pooled]));
  const squeeze = conv2d(g, { name: pooled, channels: width, height: 1, width: 1 }, Math.round(input.channels * 0.25));
  const excite = conv2d(g, squeeze, width, { act: 'sigmoid' });
  const c = conv2d(g, { ...b, name: binary(g, 'Mul', b.name, excite.name) }, width, { act: 'none' });
  const shortcut = stride === 1 && input.channels === width ? input : conv2d(g, input, width, { stride, act: 'none' });
  const y = g.name('block');
  g.nodes.push(node('Relu', [binary(g, 'Add', c.name, shortcut.name)], [y]));
  return { ...c, name: y };
}

export const BACKBONES = ['regnety', 'dense'] as const;
export type Backbone = (typeof BACKBONES)[number];

/**
 * The per-frame backbone over [T, 3, H, W]:
 *   regnety  T-DEED's own: RegNetY-200MF (stem 32, stages 24/56/152/368 x 1/1/4/7 blocks, group width 8,
 *            squeeze-excitation) with a gate-shift module before every block; many small, memory-bound ops
 *   dense    5 x (3x3 stride-2 conv + ReLU), 3->24->48->96->192->384: the same order of multiply-accumulates in
 *            a shape onnxruntime runs near its peak (a lower bound on what a real export costs)
 */
function addBackbone(g: GraphBuilder, x: FeatureMap, backbone: Backbone, frames: number): FeatureMap {
  if (backbone === 'dense') {
    for (const out of TDEED_MODEL.dense) x = conv2d(g, x, out, { kernel: 3, stride: 2 });
    return x;
  }
  x = conv2d(g, x, TDEED_MODEL.regnety.stem, { kernel: 3, stride: 2 });
  for (const stage of TDEED_MODEL.regnety.stages) {
    for (let i = 0; i < stage.depth; i++) x = regnetYBlock(g, x, stage.width, i === 0 ? 2 : 1, TDEED_MODEL.regnety.groupWidth, frames);
  }
  return x;
}

export function buildTdeedOnnx(backbone: Backbone = 'regnety'): { bytes: Uint8Array; macsPerFrame: number } {
  const { clipFrames: T, height: H, width: W, temporalChannels: D, temporalKernel: K, seed } = TDEED_MODEL;
  const C = tdeedClasses().length;
  const g = graphBuilder(seed);
  g.initializer.push(int64s('batch_shape', [T, 3, H, W]));
  g.nodes.push(node('Reshape', ['frames', 'batch_shape'], ['x0']));
  const features = addBackbone(g, { name: 'x0', channels: 3, height: H, width: W }, backbone, T);
  const backboneMacs = g.macsPerFrame;
  const channels = features.channels;
  g.initializer.push(
    int64s('pooled_shape', [1, T, channels]),
    randomTensor('temporal_w', [D, channels, K], Math.sqrt(6 / (channels * K)), g.random),
    randomTensor('temporal_b', [D], 0.01, g.random),
    randomTensor('cls_w', [C, D, 1], Math.sqrt(1 / D), g.random),
    randomTensor('cls_b', [C], 0.01, g.random),
    randomTensor('disp_w', [1, D, 1], Math.sqrt(1 / D), g.random),
    randomTensor('disp_b', [1], 0.01, g.random),
    int64s('disp_shape', [1, T]),
    float('disp_gain', 2),
  );
  g.nodes.push(
    node('GlobalAveragePool', [features.name], ['gap']), // [T, channels, 1, 1]
    node('Reshape', ['gap', 'pooled_shape'], ['features']), // [1, T, channels]
    node('Transpose', ['features'], ['features_ct'], [ints('perm', [0, 2, 1])]), // [1, channels, T]
    node(
      'Conv',
      ['features_ct', 'temporal_w', 'temporal_b'],
      ['temporal'],
      [ints('kernel_shape', [K]), ints('pads', [(K - 1) / 2, (K - 1) / 2])],
    ), // [1, D, T]
    node('Relu', ['temporal'], ['temporal_relu']),
    node('Conv', ['temporal_relu', 'cls_w', 'cls_b'], ['logits_ct'], [ints('kernel_shape', [1])]), // [1, C, T]
    node('Transpose', ['logits_ct'], ['scores'], [ints('perm', [0, 2, 1])]), // [1, T, C]
    node('Conv', ['temporal_relu', 'disp_w', 'disp_b'], ['disp_raw'], [ints('kernel_shape', [1])]), // [1, 1, T]
    node('Tanh', ['disp_raw'], ['disp_tanh']),
    node('Mul', ['disp_tanh', 'disp_gain'], ['disp_scaled']),
    node('Reshape', ['disp_scaled', 'disp_shape'], ['displacement']), // [1, T]
  );
  const graph: P.IGraphProto = {
    name: 'tdeed_shaped_benchmark',
    input: [{ name: 'frames', type: tensorType(FLOAT, [1, T, 3, H, W]) }],
    output: [
      { name: 'scores', type: tensorType(FLOAT, [1, T, C]) },
      { name: 'displacement', type: tensorType(FLOAT, [1, T]) },
    ],
    initializer: g.initializer,
    node: g.nodes,
  };
  const model: P.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'score-miner scripts/build-tdeed-model.ts',
    producerVersion: '2',
    modelVersion: 1,
    docString: `Benchmark only: T-DEED-shaped random network (${backbone} per-frame backbone, temporal conv, scores + displacement).`,
    graph,
  };
  return { bytes: onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish(), macsPerFrame: backboneMacs };
}

export function tdeedManifest(backbone: Backbone, macsPerFrame: number): Record<string, unknown> {
  const { height, width, fps, clipFrames, strideFrames, marginFrames } = TDEED_MODEL;
  return {
    name: `tdeed-shaped-bench-${backbone}`,
    version: '0.0.0',
    description:
      `Benchmark only (random weights, earns nothing): the input, outputs and per-frame compute of a T-DEED export (${backbone} backbone), ` +
      `about ${((2 * macsPerFrame) / 1e9).toFixed(2)} GFLOP per frame. Built by scripts/build-tdeed-model.ts.`,
    input: {
      name: 'frames',
      dtype: 'float32',
      layout: 'NTCHW',
      height,
      width,
      colour: 'rgb',
      resize: 'bilinear',
      scale: 1 / 255,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    },
    timing: { fps, clipFrames, strideFrames, marginFrames },
    outputs: {
      scores: { name: 'scores', activation: 'softmax', backgroundIndex: 0 },
      displacement: { name: 'displacement' },
    },
    classes: tdeedClasses(),
    postprocess: {},
  };
}

export function writeTdeedModel(
  outDir: string,
  backbone: Backbone = 'regnety',
): { onnxPath: string; manifestPath: string; bytes: number; sha256: string; macsPerFrame: number } {
  fs.mkdirSync(outDir, { recursive: true });
  const { bytes, macsPerFrame } = buildTdeedOnnx(backbone);
  const onnxPath = path.join(outDir, 'model.onnx');
  const manifestPath = path.join(outDir, 'model.json');
  fs.writeFileSync(onnxPath, bytes);
  fs.writeFileSync(manifestPath, `${JSON.stringify(tdeedManifest(backbone, macsPerFrame), null, 2)}\n`);
  return { onnxPath, manifestPath, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), macsPerFrame };
}

/** Load the folder the way the server does (manifest checked against the session) and time a few clips. */
async function verify(outDir: string, macsPerFrame: number): Promise<void> {
  const { loadModel } = await import('../lib/inference/model.ts');
  const threads = Number(process.env.ORT_THREADS ?? 2);
  const providers = (process.env.ORT_PROVIDERS ?? 'cpu').split(',');
  const t0 = performance.now();
  const model = await loadModel(outDir, { threads, providers });
  const loadMs = performance.now() - t0;
  try {
    const warmupMs = await model.warmup();
    const random = prng(1);
    const frames = new Uint8Array(model.clipBytes);
    for (let i = 0; i < frames.length; i++) frames[i] = (random() * 256) | 0;
    const runs: number[] = [];
    let out: Awaited<ReturnType<typeof model.inferClip>> | undefined;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      out = await model.inferClip(frames);
      runs.push(performance.now() - t);
    }
    const T = TDEED_MODEL.clipFrames;
    const median = [...runs].sort((a, b) => a - b)[1];
    const gflop = (2 * macsPerFrame) / 1e9;
    const scoreRow = Array.from(out!.scores.subarray(0, tdeedClasses().length));
    const rowSum = scoreRow.reduce((a, b) => a + b, 0);
    process.stdout.write(
      `loaded with onnxruntime-node (${model.providers.join(',')}, ${threads} threads) in ${loadMs.toFixed(0)} ms; ` +
        `warm-up ${warmupMs.toFixed(0)} ms\n` +
        `per clip of ${T} frames: median ${median.toFixed(0)} ms of [${runs.map((r) => r.toFixed(0)).join(', ')}] ` +
        `-> ${(median / T).toFixed(2)} ms per frame, ${((gflop * T) / (median / 1000)).toFixed(1)} GFLOP/s (${gflop.toFixed(2)} GFLOP per frame)\n` +
        `outputs: scores ${out!.scores.length} values (frame 0 sums to ${rowSum.toFixed(4)} after softmax), ` +
        `displacement ${out!.displacement?.length} values (frame 0: ${out!.displacement?.[0].toFixed(3)})\n`,
    );
  } finally {
    await model.release();
  }
}

const USAGE = `usage: node scripts/build-tdeed-model.ts [--backbone regnety|dense] [outDir]
  outDir      where model.onnx and model.json go (default ${DEFAULT_TDEED_DIR}); never inside the repository
  --backbone  regnety (default): T-DEED's RegNetY-200MF with gate-shift modules, as costly as a real export
              dense: plain strided 3x3 convolutions, the same order of FLOPs run near onnxruntime's peak`;

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  let args: ReturnType<typeof parseCli>;
  try {
    args = parseCli();
    if (!(BACKBONES as readonly string[]).includes(args.values.backbone))
      throw new Error(`--backbone ${args.values.backbone}: expected one of ${BACKBONES.join(', ')}`);
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const backbone = args.values.backbone as Backbone;
  const outDir = path.resolve(args.positionals[0] ?? DEFAULT_TDEED_DIR);
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  if (outDir === root || outDir.startsWith(root + path.sep)) {
    process.stderr.write(
      `error: ${outDir} is inside the repository\n  next: pass a folder outside it (the model is large and must never be committed)\n`,
    );
    process.exit(2);
  }
  const t0 = performance.now();
  const { onnxPath, manifestPath, bytes, sha256, macsPerFrame } = writeTdeedModel(outDir, backbone);
  process.stdout.write(
    `wrote ${onnxPath} (${backbone} backbone, ${(bytes / 1e6).toFixed(1)} MB, sha256 ${sha256.slice(0, 16)}) and ${manifestPath} in ${(performance.now() - t0).toFixed(0)} ms\n`,
  );
  await verify(outDir, macsPerFrame);
}

function parseCli() {
  return parseArgs({
    options: { backbone: { type: 'string', default: 'regnety' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
}
