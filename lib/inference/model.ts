/**
 * The onnxruntime-node wrapper: loads a model folder (model.onnx + model.json), checks the manifest against
 * the session's real inputs/outputs, turns raw decoded frames (rgb24 or gray8, tightly packed) into the
 * input tensor in one buffer reused across clips, runs the session and applies the output activation.
 *
 * Determinism (spot checks compare scores within 0.02): fixed intra/inter-op thread counts, sequential
 * execution, `session.use_deterministic_compute`, no sampling anywhere. `session.run()` blocks its thread:
 * call this from the inference worker, never from the HTTP thread.
 */
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import type { GraphOptimization } from '../core/config.ts';
import { MinerError } from '../core/errors.ts';
import { log } from '../core/log.ts';
import type { ActionName } from '../protocol/actions.ts';
import { loadManifest, type ManifestInput, MODEL_FILE, type ModelManifest } from './manifest.ts';

export const SUPPORTED_PROVIDERS = ['cpu', 'cuda'] as const;
export type ProviderName = (typeof SUPPORTED_PROVIDERS)[number];

export interface ClipOutput {
  /** T*C activated probabilities, frame-major (frame t, class k at t*C + k). */
  scores: Float32Array;
  /** T displacements in model frames (event at t + displacement[t]), when the model has that output. */
  displacement?: Float32Array;
}

export interface Model {
  readonly dir: string;
  readonly manifest: ModelManifest;
  /** Execution providers actually in use, e.g. ['cpu'] after a CUDA fallback. */
  readonly providers: ProviderName[];
  /** Bytes of one raw frame: height * width * channels (rgb24: 3, gray8: 1). */
  readonly frameBytes: number;
  /** Bytes of one clip: clipFrames * frameBytes, the size inferClip expects. */
  readonly clipBytes: number;
  /** Shorthands for manifest.postprocess.thresholds / nmsWindowS (complete: every Score action). */
  readonly thresholds: Readonly<Record<ActionName, number>>;
  readonly nmsWindowS: Readonly<Record<ActionName, number>>;
  /**
   * Run one clip of exactly timing.clipFrames raw frames (pad a short last clip, e.g. by repeating its last
   * frame). Calls are serialised (one input buffer); keep `frames` unchanged until the promise settles.
   */
  inferClip(frames: Uint8Array): Promise<ClipOutput>;
  /** One run on a blank clip (first-run allocations out of the way); resolves to its duration in ms. */
  warmup(): Promise<number>;
  release(): Promise<void>;
}

export interface LoadModelOptions {
  providers?: readonly string[];
  threads?: number;
  /**
   * onnxruntime's enableMemPattern (ORT_MEM_PATTERN, default off): pre-plans activation memory from the first
   * run's shapes. Off measured lower peak memory for the same predictions (the plan changes no arithmetic).
   */
  memPattern?: boolean;
  /** onnxruntime's graph optimisation level (ORT_GRAPH_OPTIMIZATION, default 'extended'; see GRAPH_OPTIMIZATIONS). */
  graphOptimization?: GraphOptimization;
}

/** The session settings a model is loaded with, defaults filled in. */
interface SessionSettings {
  providers: ProviderName[];
  threads: number;
  memPattern: boolean;
  graphOptimization: GraphOptimization;
}

type Session = ort.InferenceSession;

function sessionOptions({ providers, threads, memPattern, graphOptimization }: SessionSettings): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: providers.map((p) => (p === 'cuda' ? { name: 'cuda', deviceId: 0 } : 'cpu')),
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: graphOptimization,
    enableCpuMemArena: true,
    enableMemPattern: memPattern,
    logSeverityLevel: 3,
    // Flattened by the Node binding into session config entries ("session.use_deterministic_compute", ...).
    extra: { session: { use_deterministic_compute: '1', intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

function checkProviders(providers: readonly string[]): ProviderName[] {
  if (providers.length === 0) return ['cpu'];
  const out: ProviderName[] = [];
  for (const p of providers) {
    const name = p.trim().toLowerCase();
    if (!(SUPPORTED_PROVIDERS as readonly string[]).includes(name)) {
      throw new MinerError(`execution provider ${JSON.stringify(p)} is not supported: expected one of ${SUPPORTED_PROVIDERS.join(', ')}`, {
        hint: 'set ORT_PROVIDERS to cpu, or cuda,cpu on a GPU host',
      });
    }
    if (!out.includes(name as ProviderName)) out.push(name as ProviderName);
  }
  return out;
}

async function createSession(modelPath: string, settings: SessionSettings): Promise<{ session: Session; providers: ProviderName[] }> {
  try {
    return { session: await ort.InferenceSession.create(modelPath, sessionOptions(settings)), providers: settings.providers };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (settings.providers.includes('cuda')) {
      // onnxruntime-node throws (instead of falling back) when CUDA libraries are missing: retry on CPU.
      log.warn('CUDA execution provider unavailable, falling back to cpu', { reason: message.split('\n')[0] });
      return createSession(modelPath, { ...settings, providers: ['cpu'] });
    }
    throw new MinerError(`cannot load ${modelPath}: ${message}`, {
      hint: 'model.onnx is missing, truncated or not an ONNX model onnxruntime-node 1.30 can read; re-export it, or run `npx tsx scripts/build-model.ts` for the default',
      cause: error,
    });
  }
}

const TYPE_OF_DTYPE = { float32: 'float32', uint8: 'uint8' } as const;

/** Expected input dims for the manifest's layout (N = 1). */
export function inputDims(input: ManifestInput, clipFrames: number): number[] {
  const { height: H, width: W, channels: C } = input;
  switch (input.layout) {
    case 'NTHWC':
      return [1, clipFrames, H, W, C];
    case 'NCTHW':
      return [1, C, clipFrames, H, W];
    case 'NTCHW':
      return [1, clipFrames, C, H, W];
  }
}

/**
 * Check the manifest against the session's real inputs and outputs (names always; element types and
 * numeric dims where the model declares them). Throws one MinerError listing every mismatch.
 */
export function checkSession(
  manifest: ModelManifest,
  session: Pick<Session, 'inputNames' | 'outputNames'> & Partial<Pick<Session, 'inputMetadata' | 'outputMetadata'>>,
  source: string,
): void {
  const problems: string[] = [];
  const { input, timing, outputs, classes } = manifest;
  const T = timing.clipFrames;
  const inputs = session.inputNames;
  if (!inputs.includes(input.name)) {
    problems.push(
      `input.name ${JSON.stringify(input.name)} is not an input of the model (inputs: ${inputs.map((n) => JSON.stringify(n)).join(', ')})`,
    );
  }
  const extra = inputs.filter((n) => n !== input.name);
  if (extra.length > 0 && inputs.includes(input.name)) {
    problems.push(
      `the model has inputs the miner does not feed: ${extra.map((n) => JSON.stringify(n)).join(', ')} (export a model with a single frames input)`,
    );
  }
  const wanted: Array<[string, string]> = [['outputs.scores.name', outputs.scores.name]];
  if (outputs.displacement) wanted.push(['outputs.displacement.name', outputs.displacement.name]);
  for (const [field, name] of wanted) {
    if (!session.outputNames.includes(name)) {
      problems.push(
        `${field} ${JSON.stringify(name)} is not an output of the model (outputs: ${session.outputNames.map((n) => JSON.stringify(n)).join(', ')})`,
      );
    }
  }

  const compareDims = (what: string, shape: ReadonlyArray<number | string>, expected: Array<number | null>, meaning: string) => {
    if (shape.length === 0) return; // shape not declared
    if (shape.length !== expected.length) {
      problems.push(`${what} has shape [${shape.join(', ')}], expected ${expected.length} dims ${meaning}`);
      return;
    }
    expected.forEach((e, i) => {
      const d = shape[i];
      if (e !== null && typeof d === 'number' && d >= 0 && d !== e) {
        problems.push(`${what} has shape [${shape.join(', ')}]: dim ${i} is ${d}, the manifest implies ${e} ${meaning}`);
      }
    });
  };

  const inMeta = session.inputMetadata?.find((m) => m.name === input.name);
  if (inMeta?.isTensor) {
    if (inMeta.type !== TYPE_OF_DTYPE[input.dtype])
      problems.push(`input ${JSON.stringify(input.name)} has element type ${inMeta.type}, the manifest says input.dtype ${input.dtype}`);
    compareDims(
      `input ${JSON.stringify(input.name)}`,
      inMeta.shape,
      inputDims(input, T),
      `(layout ${input.layout}, timing.clipFrames ${T}, height ${input.height}, width ${input.width}, ${input.channels} channel(s) for colour ${input.colour})`,
    );
  }
  const scMeta = session.outputMetadata?.find((m) => m.name === outputs.scores.name);
  if (scMeta?.isTensor) {
    if (scMeta.type !== 'float32')
      problems.push(`output ${JSON.stringify(outputs.scores.name)} has element type ${scMeta.type}, expected float32`);
    compareDims(
      `output ${JSON.stringify(outputs.scores.name)}`,
      scMeta.shape,
      [1, T, classes.length],
      `([N, T, C] with T = timing.clipFrames ${T}, C = ${classes.length} classes)`,
    );
  }
  if (outputs.displacement) {
    const dMeta = session.outputMetadata?.find((m) => m.name === outputs.displacement?.name);
    if (dMeta?.isTensor) {
      if (dMeta.type !== 'float32')
        problems.push(`output ${JSON.stringify(outputs.displacement.name)} has element type ${dMeta.type}, expected float32`);
      const rank3 = dMeta.shape.length === 3;
      compareDims(
        `output ${JSON.stringify(outputs.displacement.name)}`,
        dMeta.shape,
        rank3 ? [1, T, 1] : [1, T],
        `([N, T] or [N, T, 1] with T = ${T})`,
      );
    }
  }
  if (problems.length > 0) {
    throw new MinerError(`${source} does not match ${MODEL_FILE}: ${problems.join('; ')}`, {
      hint: 'fix model.json to describe the exported model (names, dtype, layout, sizes, classes), or re-export the model',
    });
  }
}

/**
 * Fill `out` (the input tensor's data) from T tightly packed raw frames (H*W*channels bytes each, rgb
 * interleaved), applying `lut` (channel*256 + byte -> value) for float inputs, in the manifest's layout.
 */
export function packClip(
  frames: Uint8Array,
  input: ManifestInput,
  clipFrames: number,
  out: Float32Array | Uint8Array,
  lut?: Float32Array,
): void {
  const { height: H, width: W, channels: C } = input;
  const plane = H * W;
  const frameBytes = plane * C;
  if (frames.length !== clipFrames * frameBytes) throw new RangeError(`expected ${clipFrames * frameBytes} bytes, got ${frames.length}`);
  if (out.length !== frames.length) throw new RangeError(`output buffer has ${out.length} values, expected ${frames.length}`);
  const map = lut && out instanceof Float32Array ? lut : undefined;
  if (input.layout === 'NTHWC' || C === 1) {
    // Same order as the raw frames (for 1 channel all three layouts coincide).
    if (!map) {
      out.set(frames);
    } else if (C === 1) {
      for (let i = 0; i < frames.length; i++) out[i] = map[frames[i]];
    } else {
      for (let i = 0; i < frames.length; i += 3) {
        out[i] = map[frames[i]];
        out[i + 1] = map[256 + frames[i + 1]];
        out[i + 2] = map[512 + frames[i + 2]];
      }
    }
    return;
  }
  // Planar layouts: channel c of frame t goes to (NCTHW) c*T*plane + t*plane or (NTCHW) t*C*plane + c*plane.
  const channelStride = input.layout === 'NCTHW' ? clipFrames * plane : plane;
  const frameStride = input.layout === 'NCTHW' ? plane : C * plane;
  for (let t = 0; t < clipFrames; t++) {
    const src = t * frameBytes;
    const o0 = t * frameStride;
    const o1 = o0 + channelStride;
    const o2 = o1 + channelStride;
    if (map) {
      for (let p = 0, i = src; p < plane; p++, i += 3) {
        out[o0 + p] = map[frames[i]];
        out[o1 + p] = map[256 + frames[i + 1]];
        out[o2 + p] = map[512 + frames[i + 2]];
      }
    } else {
      for (let p = 0, i = src; p < plane; p++, i += 3) {
        out[o0 + p] = frames[i];
        out[o1 + p] = frames[i + 1];
        out[o2 + p] = frames[i + 2];
      }
    }
  }
}

/** byte -> (byte * scale - mean[c]) / std[c], as float32, per channel. */
export function normalisationTable(input: ManifestInput): Float32Array {
  const lut = new Float32Array(256 * input.channels);
  for (let c = 0; c < input.channels; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v * input.scale - input.mean[c]) / input.std[c];
  }
  return lut;
}

/** In place: sigmoid / softmax over each frame's C values (background included) / nothing. */
export function activate(
  values: Float32Array,
  numClasses: number,
  activation: ModelManifest['outputs']['scores']['activation'],
): Float32Array {
  if (activation === 'sigmoid') {
    for (let i = 0; i < values.length; i++) values[i] = 1 / (1 + Math.exp(-values[i]));
  } else if (activation === 'softmax') {
    for (let f = 0; f < values.length; f += numClasses) {
      let max = -Infinity;
      for (let k = 0; k < numClasses; k++) max = Math.max(max, values[f + k]);
      let sum = 0;
      const e = new Float64Array(numClasses);
      for (let k = 0; k < numClasses; k++) sum += e[k] = Math.exp(values[f + k] - max);
      for (let k = 0; k < numClasses; k++) values[f + k] = e[k] / sum;
    }
  }
  return values;
}

export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<Model> {
  const resolved = path.resolve(dir);
  const providersAsked = checkProviders(options.providers ?? ['cpu']);
  const threads = options.threads ?? 2;
  if (!Number.isInteger(threads) || threads < 1)
    throw new MinerError(`threads=${threads} is not valid: expected a positive integer`, { hint: 'set ORT_THREADS to 1 or more' });
  const manifest = loadManifest(resolved);
  const manifestPath = path.join(resolved, 'model.json');
  const modelPath = path.join(resolved, MODEL_FILE);
  if (!fs.existsSync(modelPath)) {
    throw new MinerError(`model folder ${resolved} has no ${MODEL_FILE}`, {
      hint: 'put the exported ONNX file beside model.json as model.onnx (or run `npx tsx scripts/build-model.ts` for the default)',
    });
  }
  const started = performance.now();
  const settings: SessionSettings = {
    providers: providersAsked,
    threads,
    memPattern: options.memPattern ?? false,
    graphOptimization: options.graphOptimization ?? 'extended',
  };
  const { session, providers } = await createSession(modelPath, settings);
  try {
    checkSession(manifest, session, manifestPath);
  } catch (error) {
    await session.release();
    throw error;
  }

  const { input, timing, outputs, classes } = manifest;
  const T = timing.clipFrames;
  const C = classes.length;
  const frameBytes = input.height * input.width * input.channels;
  const clipBytes = T * frameBytes;
  const data = input.dtype === 'float32' ? new Float32Array(clipBytes) : new Uint8Array(clipBytes);
  const lut = input.dtype === 'float32' ? normalisationTable(input) : undefined;
  const tensor = new ort.Tensor(input.dtype, data, inputDims(input, T));
  const fetches = outputs.displacement ? [outputs.scores.name, outputs.displacement.name] : [outputs.scores.name];
  let queue: Promise<unknown> = Promise.resolve();
  let released = false;

  const run = async (frames: Uint8Array | null): Promise<ClipOutput> => {
    if (released) throw new MinerError('the model was released', { hint: 'load it again with loadModel()' });
    if (frames === null) data.fill(0);
    else {
      if (!(frames instanceof Uint8Array) || frames.length !== clipBytes) {
        throw new MinerError(
          `inferClip expects ${T} frames of ${input.width}x${input.height} ${input.colour === 'rgb' ? 'rgb24' : 'gray8'} (${clipBytes} bytes), got ${frames instanceof Uint8Array ? frames.length : typeof frames} bytes`,
          {
            hint: 'pad the last clip to timing.clipFrames frames (repeat the last frame) and pass validFrames to the accumulator',
          },
        );
      }
      packClip(frames, input, T, data, lut);
    }
    const result = await session.run({ [input.name]: tensor }, fetches);
    const raw = result[outputs.scores.name];
    if (!(raw instanceof ort.Tensor) || !(raw.data instanceof Float32Array) || raw.data.length !== T * C) {
      throw new MinerError(
        `output ${JSON.stringify(outputs.scores.name)} has ${raw instanceof ort.Tensor ? `${raw.type} [${raw.dims.join(', ')}]` : 'no tensor'}, expected float32 with ${T} x ${C} values`,
        {
          hint: 'the scores output must be [1, timing.clipFrames, classes.length] float32',
        },
      );
    }
    const out: ClipOutput = { scores: activate(Float32Array.from(raw.data), C, outputs.scores.activation) };
    if (outputs.displacement) {
      const d = result[outputs.displacement.name];
      if (!(d instanceof ort.Tensor) || !(d.data instanceof Float32Array) || d.data.length !== T) {
        throw new MinerError(`output ${JSON.stringify(outputs.displacement.name)} is not float32 with ${T} values`, {
          hint: 'the displacement output must be [1, T] or [1, T, 1] float32',
        });
      }
      out.displacement = Float32Array.from(d.data);
    }
    return out;
  };

  const serialised = (frames: Uint8Array | null): Promise<ClipOutput> => {
    const next = queue.then(() => run(frames));
    queue = next.catch(() => undefined);
    return next;
  };

  log.info('model loaded', {
    name: manifest.name,
    version: manifest.version,
    dir: resolved,
    providers: providers.join(','),
    threads,
    mem_pattern: settings.memPattern,
    graph_optimization: settings.graphOptimization,
    input: `${input.dtype} ${input.layout} ${T}x${input.height}x${input.width}x${input.channels} @${timing.fps}fps`,
    ms: Math.round(performance.now() - started),
  });

  return {
    dir: resolved,
    manifest,
    providers,
    frameBytes,
    clipBytes,
    thresholds: manifest.postprocess.thresholds,
    nmsWindowS: manifest.postprocess.nmsWindowS,
    inferClip: (frames) => serialised(frames),
    warmup: async () => {
      const t0 = performance.now();
      await serialised(null);
      return performance.now() - t0;
    },
    release: async () => {
      await queue;
      if (released) return;
      released = true;
      await session.release();
    },
  };
}
