/**
 * Per-action thresholds and NMS windows that maximise the mean validator score over labelled clips, from the
 * pre-threshold per-frame scores (computed once per clip by the model). Pure and deterministic.
 *
 * The search, coordinate ascent over grids:
 *  1. Start from the model's post-processing (model.json, defaults filled by the manifest).
 *  2. For each action the model emits (action table order), try every threshold of the grid (and the current
 *     one) with everything else fixed; post-processing runs for real (postprocess.ts, only that action's score
 *     columns) and the clips are scored with the validator's formula. Then the same for the NMS windows.
 *  3. A value changes only when another scores strictly better: the current value is kept when it is among the
 *     best (so a model whose values are already right keeps them); otherwise the new value is the middle of the
 *     widest run of neighbouring best grid values (the value farthest from where the training score changes).
 *  4. Repeat until a round changes nothing (at most `maxRounds`).
 * Cross-validation: clips sorted by name, clip i in fold i mod K; each fold is scored with parameters tuned on the
 * other K−1 folds, so the out-of-sample mean is what the tuned values would score on clips they never saw.
 */
import type { ReportTuningAction } from '../core/report-html.ts';
import { ACTIONS, type ActionName } from '../protocol/actions.ts';
import { clipMetrics } from '../protocol/metrics.ts';
import { type GroundTruthEvent, scoreResponse } from '../protocol/scoring.ts';
import { type Prediction, postprocess } from './postprocess.ts';

export interface TuningClip {
  name: string;
  /** N*C per-frame class scores (after activation, before thresholds and NMS): ClipScorer.raw(). */
  scores: ArrayLike<number>;
  /** N, model-rate frames. */
  frames: number;
  displacement?: ArrayLike<number>;
  truth: readonly GroundTruthEvent[];
}

export interface Params {
  thresholds: Partial<Record<ActionName, number>>;
  nmsWindowS: Partial<Record<ActionName, number>>;
}

export interface TuningSetup {
  /** Model frame rate. */
  fps: number;
  /** One Score action (or null) per score column, as in model.json. */
  classes: ReadonlyArray<ActionName | null>;
  /** Where the search starts (the model's post-processing); must cover every action in `classes`. */
  start: Params;
  /** Thresholds tried per action (default THRESHOLD_GRID). */
  thresholdGrid?: readonly number[];
  /** NMS windows tried per action, as multiples of the action's tolerance (default WINDOW_FACTORS). */
  windowFactors?: readonly number[];
  /** Coordinate-ascent rounds at most (default 4). */
  maxRounds?: number;
}

/** 0.05, 0.10, ..., 0.95 and 1 (1: never emit, for an action that only costs). */
export const THRESHOLD_GRID: readonly number[] = [...Array.from({ length: 19 }, (_, k) => Math.round((k + 1) * 5) / 100), 1];
/** NMS half-widths tried, in units of the action's tolerance. */
export const WINDOW_FACTORS: readonly number[] = [0.25, 0.5, 1, 1.5, 2];

/** Deterministic fold of the i-th clip (clips sorted by name). */
export function foldOf(index: number, folds: number): number {
  return index % folds;
}

/** The actions a model emits (mapped score columns), in the action table's order. */
export function actionsOf(classes: ReadonlyArray<ActionName | null>): ActionName[] {
  return (Object.keys(ACTIONS) as ActionName[]).filter((a) => classes.includes(a));
}

/**
 * Scores parameters on clips: post-processing per action (cached by threshold and window), predictions merged
 * and sorted exactly as postprocess() sorts them, then the validator's score.
 */
export class ClipEvaluator {
  readonly clips: readonly TuningClip[];
  readonly fps: number;
  readonly classes: ReadonlyArray<ActionName | null>;
  readonly actions: readonly ActionName[];
  private readonly cache: Array<Map<string, Prediction[]>>;

  constructor(clips: readonly TuningClip[], fps: number, classes: ReadonlyArray<ActionName | null>) {
    this.clips = clips;
    this.fps = fps;
    this.classes = classes;
    this.actions = actionsOf(classes);
    this.cache = clips.map(() => new Map());
  }

  /** One action's predictions on clip `index` (postprocess over that action's columns only). */
  actionPredictions(index: number, action: ActionName, threshold: number, windowS: number): Prediction[] {
    const key = `${action}|${threshold}|${windowS}`;
    const cached = this.cache[index].get(key);
    if (cached) return cached;
    const clip = this.clips[index];
    const predictions = postprocess(clip.scores, clip.frames, {
      fps: this.fps,
      classes: this.classes.map((a) => (a === action ? a : null)),
      thresholds: { [action]: threshold },
      nmsWindowS: { [action]: windowS },
      displacement: clip.displacement,
    });
    this.cache[index].set(key, predictions);
    return predictions;
  }

  /** What postprocess() with these parameters returns for clip `index`. */
  predictions(index: number, params: Params): Prediction[] {
    const all: Prediction[] = [];
    for (const action of this.actions)
      all.push(...this.actionPredictions(index, action, paramOf(params.thresholds, action), paramOf(params.nmsWindowS, action)));
    // Stable, like postprocess's final sort: frame, then action name.
    return all.sort((a, b) => a.frame - b.frame || (a.action < b.action ? -1 : a.action > b.action ? 1 : 0));
  }

  score(index: number, params: Params): number {
    return scoreResponse(this.predictions(index, params), this.clips[index].truth);
  }

  meanScore(indices: readonly number[], params: Params): number {
    if (indices.length === 0) return 0;
    let sum = 0;
    for (const i of indices) sum += this.score(i, params);
    return sum / indices.length;
  }
}

function paramOf(map: Partial<Record<ActionName, number>>, action: ActionName): number {
  const value = map[action];
  if (value === undefined) throw new RangeError(`no threshold / NMS window for action ${action}`);
  return value;
}

/**
 * The value to keep among `candidates` (sorted ascending, distinct, `current` among them) with mean scores
 * `scores`: `current` when it is among the best; else the middle (lower middle for an even run) of the widest
 * run of neighbouring best values, the first such run on a tie.
 */
export function pickBest(candidates: readonly number[], scores: readonly number[], current: number): number {
  const EPS = 1e-12;
  const best = Math.max(...scores);
  const at = candidates.indexOf(current);
  if (at >= 0 && scores[at] >= best - EPS) return current;
  let bestRun: [number, number] = [0, 0];
  let start = -1;
  for (let i = 0; i <= candidates.length; i++) {
    const good = i < candidates.length && scores[i] >= best - EPS;
    if (good && start < 0) start = i;
    if (!good && start >= 0) {
      if (i - start > bestRun[1] - bestRun[0]) bestRun = [start, i];
      start = -1;
    }
  }
  return candidates[bestRun[0] + Math.floor((bestRun[1] - bestRun[0] - 1) / 2)];
}

function sortedDistinct(values: readonly number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

export interface TuneResult {
  params: Params;
  /** Mean score on the clips tuned on, before and after. */
  before: number;
  after: number;
  rounds: number;
}

/** Coordinate ascent (see the module comment) on the clips at `indices`. */
export function tune(evaluator: ClipEvaluator, indices: readonly number[], setup: TuningSetup): TuneResult {
  const grid = setup.thresholdGrid ?? THRESHOLD_GRID;
  const factors = setup.windowFactors ?? WINDOW_FACTORS;
  const maxRounds = setup.maxRounds ?? 4;
  const params: Params = { thresholds: {}, nmsWindowS: {} };
  for (const action of evaluator.actions) {
    params.thresholds[action] = paramOf(setup.start.thresholds, action);
    params.nmsWindowS[action] = paramOf(setup.start.nmsWindowS, action);
  }
  const before = evaluator.meanScore(indices, params);
  let rounds = 0;
  for (let changed = true; changed && rounds < maxRounds; ) {
    changed = false;
    rounds++;
    for (const kind of ['thresholds', 'nmsWindowS'] as const) {
      for (const action of evaluator.actions) {
        const current = params[kind][action] as number;
        const options =
          kind === 'thresholds'
            ? sortedDistinct([...grid, current])
            : sortedDistinct([...factors.map((f) => Math.round(f * ACTIONS[action].toleranceS * 1000) / 1000), current]);
        const scores = options.map((value) => evaluator.meanScore(indices, { ...params, [kind]: { ...params[kind], [action]: value } }));
        const chosen = pickBest(options, scores, current);
        if (chosen !== current) {
          params[kind][action] = chosen;
          changed = true;
        }
      }
    }
  }
  return { params, before, after: evaluator.meanScore(indices, params), rounds };
}

export interface FoldResult {
  fold: number;
  /** Names of the held-out clips. */
  clips: string[];
  params: Params;
  /** Mean score on the other folds (tuned on) and on this fold (held out). */
  trainScore: number;
  testScore: number;
}

/** One action's values before and after, and its mean share of the score (metrics.ts) with the model's values,
 * the tuned values in-sample, and out-of-sample: the shape eval's HTML report draws. */
export interface ActionReport extends ReportTuningAction {
  action: ActionName;
}

export interface TuningReport {
  clips: number;
  folds: number;
  /** Mean validator score with the model's post-processing. */
  before: number;
  /** With the values tuned on every clip, on those same clips. */
  inSample: number;
  /** Each clip scored with the values tuned without its fold; null with fewer than 2 folds. */
  outOfSample: number | null;
  params: Params;
  rounds: number;
  actions: ActionReport[];
  perFold: FoldResult[];
  /** Per clip (name order): score before, in-sample after, out-of-sample (null without folds). */
  perClip: Array<{ name: string; before: number; inSample: number; outOfSample: number | null }>;
}

/**
 * Tune on all clips (the values to ship) and, with `folds` >= 2, cross-validate: K tunings, each scored on its
 * held-out fold. Clips are taken in name order for the fold assignment.
 */
export function tuneWithCrossValidation(clipsIn: readonly TuningClip[], setup: TuningSetup, folds: number): TuningReport {
  if (clipsIn.length === 0) throw new RangeError('no clips to tune on');
  if (!Number.isInteger(folds) || folds < 1 || folds > clipsIn.length)
    throw new RangeError(`folds must be an integer from 1 to the number of clips (${clipsIn.length}), got ${folds}`);
  const clips = [...clipsIn].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const evaluator = new ClipEvaluator(clips, setup.fps, setup.classes);
  const all = clips.map((_, i) => i);
  const full = tune(evaluator, all, setup);

  const perFold: FoldResult[] = [];
  const heldOutParams: Array<Params | undefined> = clips.map(() => undefined);
  if (folds >= 2) {
    for (let k = 0; k < folds; k++) {
      const test = all.filter((i) => foldOf(i, folds) === k);
      const train = all.filter((i) => foldOf(i, folds) !== k);
      const result = tune(evaluator, train, setup);
      for (const i of test) heldOutParams[i] = result.params;
      perFold.push({
        fold: k,
        clips: test.map((i) => clips[i].name),
        params: result.params,
        trainScore: result.after,
        testScore: evaluator.meanScore(test, result.params),
      });
    }
  }

  const start: Params = { thresholds: {}, nmsWindowS: {} };
  for (const action of evaluator.actions) {
    start.thresholds[action] = paramOf(setup.start.thresholds, action);
    start.nmsWindowS[action] = paramOf(setup.start.nmsWindowS, action);
  }
  const metricsWith = (i: number, params: Params) => clipMetrics(evaluator.predictions(i, params), clips[i].truth);
  const beforeMetrics = all.map((i) => metricsWith(i, start));
  const inMetrics = all.map((i) => metricsWith(i, full.params));
  const outMetrics = folds >= 2 ? all.map((i) => metricsWith(i, heldOutParams[i] as Params)) : undefined;
  const meanShare = (list: ReturnType<typeof clipMetrics>[], action: ActionName) =>
    list.reduce((sum, m) => sum + (m.actions[action]?.share ?? 0), 0) / list.length;
  const mean = (list: ReturnType<typeof clipMetrics>[]) => list.reduce((sum, m) => sum + m.score, 0) / list.length;

  return {
    clips: clips.length,
    folds,
    before: mean(beforeMetrics),
    inSample: mean(inMetrics),
    outOfSample: outMetrics ? mean(outMetrics) : null,
    params: full.params,
    rounds: full.rounds,
    actions: evaluator.actions.map((action) => ({
      action,
      before: { threshold: start.thresholds[action] as number, nmsWindowS: start.nmsWindowS[action] as number },
      after: { threshold: full.params.thresholds[action] as number, nmsWindowS: full.params.nmsWindowS[action] as number },
      shareBefore: meanShare(beforeMetrics, action),
      shareInSample: meanShare(inMetrics, action),
      shareOutOfSample: outMetrics ? meanShare(outMetrics, action) : null,
    })),
    perFold,
    perClip: clips.map((clip, i) => ({
      name: clip.name,
      before: beforeMetrics[i].score,
      inSample: inMetrics[i].score,
      outOfSample: outMetrics ? outMetrics[i].score : null,
    })),
  };
}
