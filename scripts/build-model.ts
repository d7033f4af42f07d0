/**
 * Generates the bundled placeholder model (models/default/model.onnx + model.json) from code, byte for byte
 * reproducible: `npx tsx scripts/build-model.ts [outDir]` (default models/default).
 *
 * No soccer model can be shipped or downloaded here, so the default model is a tiny deterministic graph that
 * exercises the whole pipeline (decode -> tensor -> onnxruntime -> post-processing):
 *   b[t]      = mean brightness of frame t (ReduceMean over C, H, W of a 64x36 rgb input scaled to [0, 1])
 *   up[t]     = b[t] - max(b[t-8..t-1])      "much brighter than the last 8 frames"  -> class bright_flash
 *   down[t]   = min(b[t-8..t-1]) - b[t]      "much darker than the last 8 frames"    -> class dark_cut
 *   logit     = GAIN * (diff - MARGIN), scores [1, T, 2]; the server applies the sigmoid (activation in model.json)
 * The history before a clip's first frame repeats that frame (Pad mode "edge"), so the first 8 frames of a
 * clip lack context: timing.marginFrames = 8 lets the overlapping previous clip decide there.
 * A flash (or black cut) of any length fires on its FIRST frame only: from the second frame on, the
 * flash itself is in the 8-frame history, so the difference drops to about 0.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FLOAT, float, IR_VERSION, int, int64s, ints, node, OPSET, onnx, type P, str, tensorType } from './onnx-graph.ts';

export const DEFAULT_MODEL = {
  height: 36,
  width: 64,
  clipFrames: 64,
  strideFrames: 48,
  historyFrames: 8,
  /** Brightness jump (fraction of full scale) where the probability crosses 0.5. */
  margin: 0.12,
  /** Logit slope: a jump of 0 gives sigmoid(-6) = 0.0025, a jump of 0.5 gives sigmoid(19) ~ 1. */
  gain: 50,
} as const;

/**
 * The ONNX bytes of the default model. `withDisplacement` (tests only, never bundled) adds a second output
 * `displacement` [1, T] = -brightness, so a white frame (brightness 1) moves its event one frame earlier.
 */
export function buildDefaultOnnx(options: { withDisplacement?: boolean } = {}): Uint8Array {
  const { height: H, width: W, clipFrames: T, historyFrames: P, margin, gain } = DEFAULT_MODEL;
  const graph: P.IGraphProto = {
    name: 'default_flash_cut',
    input: [{ name: 'frames', type: tensorType(FLOAT, [1, 3, T, H, W]) }],
    output: [{ name: 'scores', type: tensorType(FLOAT, [1, T, 2]) }],
    initializer: [
      int64s('shape_n1t', [1, 1, T]),
      int64s('history_pads', [0, 0, P, 0, 0, 0]),
      int64s('slice_starts', [0]),
      int64s('slice_ends', [T]),
      int64s('slice_axes', [2]),
      float('margin', margin),
      float('gain', gain),
    ],
    node: [
      node('ReduceMean', ['frames'], ['mean5'], [ints('axes', [1, 3, 4]), int('keepdims', 1)]), // [1,1,T,1,1]
      node('Reshape', ['mean5', 'shape_n1t'], ['brightness']), // [1,1,T]
      node('Neg', ['brightness'], ['neg_brightness']),
      node('Concat', ['brightness', 'neg_brightness'], ['signed'], [int('axis', 1)]), // [1,2,T]: b, -b
      node('Pad', ['signed', 'history_pads'], ['padded'], [str('mode', 'edge')]), // [1,2,T+P]
      node('MaxPool', ['padded'], ['pooled'], [ints('kernel_shape', [P]), ints('strides', [1])]), // [1,2,T+1]
      node('Slice', ['pooled', 'slice_starts', 'slice_ends', 'slice_axes'], ['history_max']), // max of the P previous
      node('Sub', ['signed', 'history_max'], ['jump']), // [b - max(prev b), min(prev b) - b]
      node('Sub', ['jump', 'margin'], ['centred']),
      node('Mul', ['centred', 'gain'], ['logits']),
      node('Transpose', ['logits'], ['scores'], [ints('perm', [0, 2, 1])]), // [1,T,2]
    ],
  };
  if (options.withDisplacement) {
    graph.output!.push({ name: 'displacement', type: tensorType(FLOAT, [1, T]) });
    graph.initializer!.push(int64s('shape_nt', [1, T]));
    graph.node!.push(node('Reshape', ['neg_brightness', 'shape_nt'], ['displacement']));
  }
  const model: P.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'score-miner scripts/build-model.ts',
    producerVersion: '1',
    modelVersion: 1,
    docString: 'Placeholder: per-frame brightness jumps against the previous 8 frames (bright_flash, dark_cut).',
    graph,
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/** The model.json of the default model (see lib/manifest.ts for the contract). */
export function defaultManifest(): Record<string, unknown> {
  const { height, width, clipFrames, strideFrames, historyFrames } = DEFAULT_MODEL;
  return {
    name: 'default-flash-cut',
    version: '1.0.0',
    description:
      'Placeholder model (no soccer model is bundled): mean brightness of each frame against the previous 8 frames. ' +
      'A full-frame flash much brighter than the last 8 frames fires bright_flash (-> goal) on its first frame; ' +
      'a cut to black fires dark_cut (-> ball_out_of_play) on its first frame. Replace it via MODEL_DIR.',
    input: {
      name: 'frames',
      dtype: 'float32',
      layout: 'NCTHW',
      height,
      width,
      colour: 'rgb',
      resize: 'area',
      scale: 1 / 255,
      mean: [0, 0, 0],
      std: [1, 1, 1],
    },
    timing: { fps: 25, clipFrames, strideFrames, marginFrames: historyFrames },
    outputs: { scores: { name: 'scores', activation: 'sigmoid', backgroundIndex: null } },
    classes: [
      { name: 'bright_flash', action: 'goal' },
      { name: 'dark_cut', action: 'ball_out_of_play' },
    ],
    postprocess: {},
  };
}

export function manifestText(): string {
  return `${JSON.stringify(defaultManifest(), null, 2)}\n`;
}

export function writeDefaultModel(outDir: string): { onnxPath: string; manifestPath: string; bytes: number } {
  fs.mkdirSync(outDir, { recursive: true });
  const bytes = buildDefaultOnnx();
  const onnxPath = path.join(outDir, 'model.onnx');
  const manifestPath = path.join(outDir, 'model.json');
  fs.writeFileSync(onnxPath, bytes);
  fs.writeFileSync(manifestPath, manifestText());
  return { onnxPath, manifestPath, bytes: bytes.length };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const outDir = path.resolve(process.argv[2] ?? path.join(root, 'models', 'default'));
  const { onnxPath, manifestPath, bytes } = writeDefaultModel(outDir);
  process.stdout.write(`wrote ${onnxPath} (${bytes} bytes) and ${manifestPath}\n`);
}
