/**
 * The model folder contract: `model.json` beside `model.onnx` (docs/model.md). `parseManifest` is pure and
 * validates every field, naming the field, the bad value and what is expected; it also fills the
 * post-processing defaults per Score action (threshold from the scoring rule, NMS window from the tolerance),
 * so the parsed manifest is complete and the server never needs to know a default.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MinerError } from '../core/errors.ts';
import { ACTIONS, type ActionName, isActionName } from '../protocol/actions.ts';

export type InputDtype = 'float32' | 'uint8';
export type InputLayout = 'NTHWC' | 'NCTHW' | 'NTCHW';
export type Colour = 'rgb' | 'gray';
export type Activation = 'sigmoid' | 'softmax' | 'none';
/** ffmpeg `scale` filter flags; the video side passes it as `scale=W:H:flags=<resize>`. */
export type ResizeMode = 'bicubic' | 'bilinear' | 'area' | 'neighbor' | 'lanczos' | 'fast_bilinear';

export interface ManifestInput {
  readonly name: string;
  readonly dtype: InputDtype;
  readonly layout: InputLayout;
  readonly height: number;
  readonly width: number;
  readonly colour: Colour;
  /** Derived from colour: 3 for rgb (rgb24 frames), 1 for gray (gray8 frames). */
  readonly channels: 1 | 3;
  readonly resize: ResizeMode;
  /** value = (byte * scale - mean[c]) / std[c]; uint8 inputs take the bytes as they are (scale 1, mean 0, std 1). */
  readonly scale: number;
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

export interface ManifestTiming {
  /** Model frame rate: frames are sampled at this rate, model frame k is at k / fps seconds. */
  readonly fps: number;
  /** T: frames per clip fed to the model. */
  readonly clipFrames: number;
  /** Start of clip i+1 minus start of clip i, in model frames (<= clipFrames; overlap = clipFrames - strideFrames). */
  readonly strideFrames: number;
  /**
   * Frames at each end of a clip whose predictions lack temporal context; where another clip covers the same
   * frame outside its margins, that clip's prediction is used instead (2 * marginFrames <= overlap).
   */
  readonly marginFrames: number;
}

export interface ManifestClass {
  readonly name: string;
  readonly action: ActionName | null;
}

export interface ModelManifest {
  readonly name: string;
  readonly version: string;
  readonly description: string;
  readonly input: ManifestInput;
  readonly timing: ManifestTiming;
  readonly outputs: {
    readonly scores: { readonly name: string; readonly activation: Activation; readonly backgroundIndex: number | null };
    readonly displacement?: { readonly name: string };
  };
  readonly classes: readonly ManifestClass[];
  readonly postprocess: {
    /** Expected localisation error (seconds) used to derive the default thresholds. */
    readonly expectedErrorS: number;
    /** Emit an event only when its probability is strictly greater than this (every action present). */
    readonly thresholds: Readonly<Record<ActionName, number>>;
    /** Half-width (seconds) of the NMS window: weaker peaks of the same action this close are dropped. */
    readonly nmsWindowS: Readonly<Record<ActionName, number>>;
  };
}

export const DEFAULT_EXPECTED_ERROR_S = 0.5;
const ACTION_NAMES = Object.keys(ACTIONS) as ActionName[];
const RESIZE_MODES: readonly ResizeMode[] = ['bicubic', 'bilinear', 'area', 'neighbor', 'lanczos', 'fast_bilinear'];

/**
 * Expected decay of a prediction `expectedErrorS` away from the truth (validator formula), and the threshold
 * that makes emitting worth it: gain p*w*d - (1-p)*w > 0 <=> p > 1/(1+d). A decay of 0 gives 1 (never emit).
 */
export function defaultThreshold(action: ActionName, expectedErrorS = DEFAULT_EXPECTED_ERROR_S): number {
  const { toleranceS, minScore } = ACTIONS[action];
  const decay = expectedErrorS >= toleranceS ? 0 : 1 - (expectedErrorS / toleranceS) * (1 - minScore);
  return 1 / (1 + Math.max(0, decay));
}

/** Duplicates of one event within the action's tolerance are penalised at full weight: suppress them. */
export function defaultNmsWindowS(action: ActionName): number {
  return ACTIONS[action].toleranceS;
}

// ---------------------------------------------------------------------------------------------------------
// Validation helpers: every failure names the field, shows the value and says what is expected.

type Obj = Record<string, unknown>;

class ManifestReader {
  readonly source: string;

  constructor(source: string) {
    this.source = source;
  }

  fail(field: string, value: unknown, expected: string): MinerError {
    const shown = value === undefined ? 'missing' : `${JSON.stringify(value)} is not valid`;
    return new MinerError(`${this.source}: ${field} ${shown}: expected ${expected}`, {
      hint: 'fix model.json (README, section "Model folder") or point MODEL_DIR at another model folder',
    });
  }

  object(value: unknown, field: string, allowed: readonly string[]): Obj {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw this.fail(field, value, 'an object');
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key) && !key.startsWith('_')) {
        throw new MinerError(
          `${this.source}: ${field ? `${field}.` : ''}${key} is not a known field: expected one of ${allowed.join(', ')} (keys starting with "_" are comments)`,
          {
            hint: 'fix the spelling in model.json or remove the field',
          },
        );
      }
    }
    return value as Obj;
  }

  string(value: unknown, field: string, allowEmpty = false): string {
    if (typeof value !== 'string' || (!allowEmpty && value.trim() === ''))
      throw this.fail(field, value, allowEmpty ? 'a string' : 'a non-empty string');
    return value;
  }

  oneOf<T extends string>(value: unknown, field: string, options: readonly T[]): T {
    if (typeof value !== 'string' || !(options as readonly string[]).includes(value))
      throw this.fail(field, value, `one of ${options.map((o) => JSON.stringify(o)).join(', ')}`);
    return value as T;
  }

  integer(value: unknown, field: string, min: number, max: number): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
      throw this.fail(field, value, `an integer from ${min} to ${max}`);
    return value;
  }

  number(value: unknown, field: string, min: number, max: number, minExclusive = false): number {
    const ok = typeof value === 'number' && Number.isFinite(value) && (minExclusive ? value > min : value >= min) && value <= max;
    if (!ok)
      throw this.fail(
        field,
        value,
        `a number ${minExclusive ? 'greater than' : 'from'} ${min}${minExclusive ? ' and at most' : ' to'} ${max}`,
      );
    return value as number;
  }

  numbers(value: unknown, field: string, length: number, check: (n: unknown, f: string) => number): number[] {
    if (!Array.isArray(value) || value.length !== length)
      throw this.fail(field, value, `an array of ${length} number${length === 1 ? '' : 's'}`);
    return value.map((n, i) => check(n, `${field}[${i}]`));
  }

  actionMap(value: unknown, field: string, check: (n: unknown, f: string) => number): Partial<Record<ActionName, number>> {
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw this.fail(field, value, 'an object mapping Score action names to numbers');
    const out: Partial<Record<ActionName, number>> = {};
    for (const [key, n] of Object.entries(value)) {
      if (key.startsWith('_')) continue;
      if (!isActionName(key)) throw this.fail(`${field}.${key}`, key, `a Score action name (${ACTION_NAMES.join(', ')})`);
      out[key] = check(n, `${field}.${key}`);
    }
    return out;
  }
}

/** Validate `json` (the parsed model.json) and fill defaults. `source` names the file in error messages. */
export function parseManifest(json: unknown, source: string): ModelManifest {
  const r = new ManifestReader(source);
  const root = r.object(json, '', ['name', 'version', 'description', 'input', 'timing', 'outputs', 'classes', 'postprocess']);
  const name = r.string(root.name, 'name');
  const version = r.string(root.version, 'version');
  const description = root.description === undefined ? '' : r.string(root.description, 'description', true);

  // input
  const inp = r.object(root.input, 'input', ['name', 'dtype', 'layout', 'height', 'width', 'colour', 'resize', 'scale', 'mean', 'std']);
  const dtype = r.oneOf<InputDtype>(inp.dtype, 'input.dtype', ['float32', 'uint8']);
  const colour = r.oneOf<Colour>(inp.colour, 'input.colour', ['rgb', 'gray']);
  const channels: 1 | 3 = colour === 'rgb' ? 3 : 1;
  const scale = inp.scale === undefined ? 1 : r.number(inp.scale, 'input.scale', 0, 1e6, true);
  const mean =
    inp.mean === undefined
      ? new Array<number>(channels).fill(0)
      : r.numbers(inp.mean, 'input.mean', channels, (n, f) => r.number(n, f, -1e6, 1e6));
  const std =
    inp.std === undefined
      ? new Array<number>(channels).fill(1)
      : r.numbers(inp.std, 'input.std', channels, (n, f) => r.number(n, f, 0, 1e6, true));
  if (dtype === 'uint8') {
    if (scale !== 1) throw r.fail('input.scale', scale, '1 (or no scale) for a uint8 input: the model gets the raw bytes');
    if (mean.some((m) => m !== 0)) throw r.fail('input.mean', mean, 'zeros (or no mean) for a uint8 input: normalise inside the model');
    if (std.some((s) => s !== 1)) throw r.fail('input.std', std, 'ones (or no std) for a uint8 input: normalise inside the model');
  }
  const input: ManifestInput = {
    name: r.string(inp.name, 'input.name'),
    dtype,
    layout: r.oneOf<InputLayout>(inp.layout, 'input.layout', ['NTHWC', 'NCTHW', 'NTCHW']),
    height: r.integer(inp.height, 'input.height', 1, 4320),
    width: r.integer(inp.width, 'input.width', 1, 7680),
    colour,
    channels,
    resize: inp.resize === undefined ? 'bicubic' : r.oneOf<ResizeMode>(inp.resize, 'input.resize', RESIZE_MODES),
    scale,
    mean,
    std,
  };

  // timing
  const tim = r.object(root.timing, 'timing', ['fps', 'clipFrames', 'strideFrames', 'marginFrames']);
  const fps = r.number(tim.fps, 'timing.fps', 0, 240, true);
  const clipFrames = r.integer(tim.clipFrames, 'timing.clipFrames', 1, 100000);
  const strideFrames = r.integer(tim.strideFrames, 'timing.strideFrames', 1, clipFrames);
  const overlap = clipFrames - strideFrames;
  const marginFrames = tim.marginFrames === undefined ? 0 : r.integer(tim.marginFrames, 'timing.marginFrames', 0, Math.floor(overlap / 2));
  const timing: ManifestTiming = { fps, clipFrames, strideFrames, marginFrames };

  // classes
  if (!Array.isArray(root.classes) || root.classes.length === 0)
    throw r.fail('classes', root.classes, 'a non-empty array of {"name", "action"}');
  const seen = new Set<string>();
  const classes: ManifestClass[] = root.classes.map((c: unknown, i: number) => {
    const o = r.object(c, `classes[${i}]`, ['name', 'action']);
    const className = r.string(o.name, `classes[${i}].name`);
    if (seen.has(className)) throw r.fail(`classes[${i}].name`, className, 'a class name not used by an earlier class');
    seen.add(className);
    if (o.action !== null && (typeof o.action !== 'string' || !isActionName(o.action))) {
      throw r.fail(
        `classes[${i}].action`,
        o.action,
        `a Score action name (${ACTION_NAMES.join(', ')}) or null for a class the miner drops`,
      );
    }
    return { name: className, action: o.action as ActionName | null };
  });
  if (!classes.some((c) => c.action !== null))
    throw r.fail(
      'classes',
      classes.map((c) => c.action),
      'at least one class mapped to a Score action',
    );

  // outputs
  const outs = r.object(root.outputs, 'outputs', ['scores', 'displacement']);
  const sc = r.object(outs.scores, 'outputs.scores', ['name', 'activation', 'backgroundIndex']);
  const backgroundIndex =
    sc.backgroundIndex === undefined || sc.backgroundIndex === null
      ? null
      : r.integer(sc.backgroundIndex, 'outputs.scores.backgroundIndex', 0, classes.length - 1);
  if (backgroundIndex !== null && classes[backgroundIndex].action !== null) {
    throw r.fail(
      `classes[${backgroundIndex}].action`,
      classes[backgroundIndex].action,
      'null: this class is outputs.scores.backgroundIndex',
    );
  }
  const scores = {
    name: r.string(sc.name, 'outputs.scores.name'),
    activation: r.oneOf<Activation>(sc.activation, 'outputs.scores.activation', ['sigmoid', 'softmax', 'none']),
    backgroundIndex,
  };
  let displacement: { name: string } | undefined;
  if (outs.displacement !== undefined && outs.displacement !== null) {
    const d = r.object(outs.displacement, 'outputs.displacement', ['name']);
    displacement = { name: r.string(d.name, 'outputs.displacement.name') };
    if (displacement.name === scores.name)
      throw r.fail('outputs.displacement.name', displacement.name, 'a different output than outputs.scores.name');
  }

  // postprocess
  const pp =
    root.postprocess === undefined ? {} : r.object(root.postprocess, 'postprocess', ['expectedErrorS', 'thresholds', 'nmsWindowS']);
  const expectedErrorS =
    pp.expectedErrorS === undefined ? DEFAULT_EXPECTED_ERROR_S : r.number(pp.expectedErrorS, 'postprocess.expectedErrorS', 0, 60);
  const givenThresholds = r.actionMap(pp.thresholds, 'postprocess.thresholds', (n, f) => r.number(n, f, 0, 1));
  const givenWindows = r.actionMap(pp.nmsWindowS, 'postprocess.nmsWindowS', (n, f) => r.number(n, f, 0, 600));
  const thresholds = {} as Record<ActionName, number>;
  const nmsWindowS = {} as Record<ActionName, number>;
  for (const action of ACTION_NAMES) {
    thresholds[action] = givenThresholds[action] ?? defaultThreshold(action, expectedErrorS);
    nmsWindowS[action] = givenWindows[action] ?? defaultNmsWindowS(action);
  }

  return {
    name,
    version,
    description,
    input,
    timing,
    outputs: displacement ? { scores, displacement } : { scores },
    classes,
    postprocess: { expectedErrorS, thresholds, nmsWindowS },
  };
}

export const MANIFEST_FILE = 'model.json';
export const MODEL_FILE = 'model.onnx';

/** Read and validate `<dir>/model.json`. */
export function loadManifest(dir: string): ModelManifest {
  const file = path.join(dir, MANIFEST_FILE);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new MinerError(`model folder ${dir} does not exist`, {
      hint: 'set MODEL_DIR to a folder holding model.onnx and model.json (default: models/default)',
    });
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new MinerError(`model folder ${dir} has no readable ${MANIFEST_FILE}`, {
      hint: 'every model folder needs model.json beside model.onnx (README, section "Model folder")',
      cause,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new MinerError(`${file} is not valid JSON: ${(cause as Error).message}`, { hint: 'fix the JSON syntax of model.json', cause });
  }
  return parseManifest(json, file);
}

/** The options `postprocess()` needs, from a parsed manifest. */
export function postprocessOptionsFrom(manifest: ModelManifest): {
  fps: number;
  classes: Array<ActionName | null>;
  thresholds: Readonly<Record<ActionName, number>>;
  nmsWindowS: Readonly<Record<ActionName, number>>;
} {
  return {
    fps: manifest.timing.fps,
    classes: manifest.classes.map((c) => c.action),
    thresholds: manifest.postprocess.thresholds,
    nmsWindowS: manifest.postprocess.nmsWindowS,
  };
}
