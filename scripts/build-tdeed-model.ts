/**
 * Generates a T-DEED-shaped ONNX model folder for benchmarking: `node scripts/build-tdeed-model.ts [outDir]`
 * (default /tmp/score-miner-tdeed; never inside the repository: the model is for measuring, not for shipping).
 *
 * Same interface and roughly the same compute as a T-DEED export (RegNetY-class 2D backbone per frame +
 * a temporal layer, 12.5 fps, T = 100 frames of 224x398), with random weights: it earns nothing, it costs what
 * a real one costs. Seeded, so the output bytes are identical on every run.
 *   frames   [1, 100, 3, 224, 398] float32 (NTCHW, ImageNet-normalised by the server: mean/std in model.json)
 *   -> Reshape [100, 3, 224, 398] (frames as the batch)
 *   -> 5 x (Conv 3x3 stride 2 + ReLU): 3->24->48->96->192->384 channels, 224x398 -> 7x13   (~0.5 GFLOP per frame)
 *   -> GlobalAveragePool -> [1, 384, 100] (channels x time)
 *   -> temporal Conv1d k=9 (384->256) + ReLU
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
import type { onnx as P } from 'onnx-proto';
import onnxProto from 'onnx-proto';
import { ACTIONS } from '../lib/protocol/actions.ts';

const { onnx } = onnxProto;

export const TDEED_MODEL = {
  clipFrames: 100,
  strideFrames: 75,
  marginFrames: 12,
  fps: 12.5,
  height: 224,
  width: 398,
  /** Output channels of the per-frame strided 3x3 convolutions. */
  backbone: [24, 48, 96, 192, 384],
  temporalChannels: 256,
  temporalKernel: 9,
  seed: 44,
} as const;

export const DEFAULT_TDEED_DIR = path.join(os.tmpdir(), 'score-miner-tdeed');

const IR_VERSION = 7;
const OPSET = 13;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

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

function tensorType(elemType: number, dims: number[]): P.ITypeProto {
  return { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } };
}

function int64s(name: string, values: number[]): P.ITensorProto {
  return { name, dataType: onnx.TensorProto.DataType.INT64, dims: [values.length], int64Data: values };
}

function scalar(name: string, value: number): P.ITensorProto {
  return { name, dataType: FLOAT, dims: [], floatData: [value] };
}

/** Uniform(-bound, bound) weights as raw little-endian float32 bytes (compact, and fast to encode). */
function randomTensor(name: string, dims: number[], bound: number, random: () => number): P.ITensorProto {
  const values = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = (random() * 2 - 1) * bound;
  return { name, dataType: FLOAT, dims, rawData: new Uint8Array(values.buffer) };
}

function ints(name: string, values: number[]): P.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}

function node(opType: string, inputs: string[], outputs: string[], attribute: P.IAttributeProto[] = []): P.INodeProto {
  return { opType, input: inputs, output: outputs, name: outputs[0], attribute };
}

/** Score's actions after a background class: the T-DEED class layout. */
export function tdeedClasses(): Array<{ name: string; action: string | null }> {
  return [{ name: 'background', action: null }, ...Object.keys(ACTIONS).map((name) => ({ name, action: name }))];
}

/** Multiply-accumulates per frame of the backbone (the temporal layer and heads are per clip, and small). */
export function backboneMacsPerFrame(): number {
  const { height, width, backbone } = TDEED_MODEL;
  let [h, w, c] = [height, width, 3];
  let macs = 0;
  for (const out of backbone) {
    h = Math.floor((h + 2 - 3) / 2) + 1;
    w = Math.floor((w + 2 - 3) / 2) + 1;
    macs += h * w * out * c * 9;
    c = out;
  }
  return macs;
}

export function buildTdeedOnnx(): Uint8Array {
  const { clipFrames: T, height: H, width: W, backbone, temporalChannels: D, temporalKernel: K, seed } = TDEED_MODEL;
  const C = tdeedClasses().length;
  const random = prng(seed);
  const initializer: P.ITensorProto[] = [int64s('batch_shape', [T, 3, H, W]), int64s('pooled_shape', [1, T, backbone.at(-1)!])];
  const nodes: P.INodeProto[] = [node('Reshape', ['frames', 'batch_shape'], ['x0'])];
  let x = 'x0';
  let channels = 3;
  backbone.forEach((out, i) => {
    // He-uniform bound keeps activations in range through the ReLU stack.
    initializer.push(randomTensor(`conv${i}_w`, [out, channels, 3, 3], Math.sqrt(6 / (channels * 9)), random));
    initializer.push(randomTensor(`conv${i}_b`, [out], 0.01, random));
    nodes.push(
      node(
        'Conv',
        [x, `conv${i}_w`, `conv${i}_b`],
        [`conv${i}`],
        [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])],
      ),
      node('Relu', [`conv${i}`], [`relu${i}`]),
    );
    x = `relu${i}`;
    channels = out;
  });
  initializer.push(
    randomTensor('temporal_w', [D, channels, K], Math.sqrt(6 / (channels * K)), random),
    randomTensor('temporal_b', [D], 0.01, random),
    randomTensor('cls_w', [C, D, 1], Math.sqrt(1 / D), random),
    randomTensor('cls_b', [C], 0.01, random),
    randomTensor('disp_w', [1, D, 1], Math.sqrt(1 / D), random),
    randomTensor('disp_b', [1], 0.01, random),
    int64s('disp_shape', [1, T]),
    scalar('disp_gain', 2),
  );
  nodes.push(
    node('GlobalAveragePool', [x], ['gap']), // [T, 384, 1, 1]
    node('Reshape', ['gap', 'pooled_shape'], ['features']), // [1, T, 384]
    node('Transpose', ['features'], ['features_ct'], [ints('perm', [0, 2, 1])]), // [1, 384, T]
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
    initializer,
    node: nodes,
  };
  const model: P.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'score-miner scripts/build-tdeed-model.ts',
    producerVersion: '1',
    modelVersion: 1,
    docString: 'Benchmark only: T-DEED-shaped random network (per-frame strided convs, temporal conv, scores + displacement).',
    graph,
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

export function tdeedManifest(): Record<string, unknown> {
  const { height, width, fps, clipFrames, strideFrames, marginFrames } = TDEED_MODEL;
  return {
    name: 'tdeed-shaped-bench',
    version: '0.0.0',
    description:
      'Benchmark only (random weights, earns nothing): the input, outputs and per-frame compute of a T-DEED export, ' +
      `about ${((2 * backboneMacsPerFrame()) / 1e9).toFixed(2)} GFLOP per frame. Built by scripts/build-tdeed-model.ts.`,
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

export function writeTdeedModel(outDir: string): { onnxPath: string; manifestPath: string; bytes: number; sha256: string } {
  fs.mkdirSync(outDir, { recursive: true });
  const bytes = buildTdeedOnnx();
  const onnxPath = path.join(outDir, 'model.onnx');
  const manifestPath = path.join(outDir, 'model.json');
  fs.writeFileSync(onnxPath, bytes);
  fs.writeFileSync(manifestPath, `${JSON.stringify(tdeedManifest(), null, 2)}\n`);
  return { onnxPath, manifestPath, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Load the folder the way the server does (manifest checked against the session) and time a few clips. */
async function verify(outDir: string): Promise<void> {
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
    const gflop = (2 * backboneMacsPerFrame()) / 1e9;
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

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const arg = process.argv[2];
  if (arg === '--help' || arg === '-h') {
    process.stdout.write('usage: node scripts/build-tdeed-model.ts [outDir]   (default /tmp/score-miner-tdeed)\n');
    process.exit(0);
  }
  const outDir = path.resolve(arg ?? DEFAULT_TDEED_DIR);
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  if (outDir === root || outDir.startsWith(root + path.sep)) {
    process.stderr.write(
      `error: ${outDir} is inside the repository\n  next: pass a folder outside it (the model is large and must never be committed)\n`,
    );
    process.exit(2);
  }
  const t0 = performance.now();
  const { onnxPath, manifestPath, bytes, sha256 } = writeTdeedModel(outDir);
  process.stdout.write(
    `wrote ${onnxPath} (${(bytes / 1e6).toFixed(1)} MB, sha256 ${sha256.slice(0, 16)}) and ${manifestPath} in ${(performance.now() - t0).toFixed(0)} ms\n`,
  );
  await verify(outDir);
}
