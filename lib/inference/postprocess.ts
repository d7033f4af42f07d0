/**
 * Per-frame class probabilities -> timed Score predictions. Pure and deterministic:
 *  - WindowAccumulator averages overlapping clips frame by frame (clip margins give way to clips with context);
 *  - postprocess() merges the classes mapped to one action (max), picks peaks with greedy NMS per action,
 *    keeps those strictly above the action's threshold, applies the displacement, converts model frames to
 *    25 fps frame indices and sorts.
 */
import { type ActionName, SCORE_FPS } from '../protocol/actions.ts';
import type { Prediction as ResponsePrediction } from '../protocol/scoring.ts';

/** What the miner emits: a response prediction with a known action and a confidence always present. */
export interface Prediction extends ResponsePrediction {
  action: ActionName;
  confidence: number;
}

/**
 * Averages per-frame scores of overlapping clips. `add(startFrame, scores, validFrames)` takes one clip's
 * scores (T*C, frame-major) starting at model frame `startFrame`; only its first `validFrames` frames are used
 * (a last clip padded to T frames). With `marginFrames` > 0, the first and last `marginFrames` frames of a clip
 * count only where no clip covers the frame outside its own margins (the first clip's head, which starts at
 * frame 0, always counts). Frames no clip covered are 0.
 */
export class WindowAccumulator {
  readonly numClasses: number;
  readonly marginFrames: number;
  private capacity = 0;
  private frames = 0;
  private sumIn = new Float64Array(0);
  private sumAll = new Float64Array(0);
  private countIn = new Uint32Array(0);
  private countAll = new Uint32Array(0);

  constructor(numClasses: number, options: { marginFrames?: number } = {}) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
    const margin = options.marginFrames ?? 0;
    if (!Number.isInteger(margin) || margin < 0) throw new RangeError(`marginFrames must be a non-negative integer, got ${margin}`);
    this.numClasses = numClasses;
    this.marginFrames = margin;
  }

  /** Frames covered so far (the N of result()). */
  get numFrames(): number {
    return this.frames;
  }

  private grow(frames: number): void {
    if (frames <= this.capacity) return;
    const capacity = Math.max(frames, this.capacity * 2, 256);
    const c = this.numClasses;
    const sumIn = new Float64Array(capacity * c);
    sumIn.set(this.sumIn);
    const sumAll = new Float64Array(capacity * c);
    sumAll.set(this.sumAll);
    const countIn = new Uint32Array(capacity);
    countIn.set(this.countIn);
    const countAll = new Uint32Array(capacity);
    countAll.set(this.countAll);
    this.sumIn = sumIn;
    this.sumAll = sumAll;
    this.countIn = countIn;
    this.countAll = countAll;
    this.capacity = capacity;
  }

  add(startFrame: number, scores: ArrayLike<number>, validFrames: number): void {
    const c = this.numClasses;
    if (!Number.isInteger(startFrame) || startFrame < 0)
      throw new RangeError(`startFrame must be a non-negative integer, got ${startFrame}`);
    if (scores.length % c !== 0) throw new RangeError(`scores has ${scores.length} values, not a multiple of ${c} classes`);
    const clipFrames = scores.length / c;
    if (!Number.isInteger(validFrames) || validFrames < 0 || validFrames > clipFrames) {
      throw new RangeError(`validFrames must be an integer from 0 to ${clipFrames}, got ${validFrames}`);
    }
    this.grow(startFrame + validFrames);
    const m = this.marginFrames;
    for (let j = 0; j < validFrames; j++) {
      const f = startFrame + j;
      const inside = (j >= m || startFrame === 0) && j < clipFrames - m;
      this.countAll[f]++;
      if (inside) this.countIn[f]++;
      for (let k = 0; k < c; k++) {
        const v = scores[j * c + k];
        this.sumAll[f * c + k] += v;
        if (inside) this.sumIn[f * c + k] += v;
      }
    }
    this.frames = Math.max(this.frames, startFrame + validFrames);
  }

  /** N*C averaged scores (N = numFrames). */
  result(): Float32Array {
    const c = this.numClasses;
    const out = new Float32Array(this.frames * c);
    for (let f = 0; f < this.frames; f++) {
      const useIn = this.countIn[f] > 0;
      const n = useIn ? this.countIn[f] : this.countAll[f];
      if (n === 0) continue;
      const sums = useIn ? this.sumIn : this.sumAll;
      for (let k = 0; k < c; k++) out[f * c + k] = sums[f * c + k] / n;
    }
    return out;
  }
}

export interface PostprocessOptions {
  /** Model frame rate: model frame k is at k / fps seconds. */
  fps: number;
  /**
   * One entry per score column: the Score action it maps to, or null (dropped, e.g. background); manifest
   * classes ({name, action}) are accepted as they are.
   */
  classes: ReadonlyArray<ActionName | null | { readonly action: ActionName | null }>;
  /** Emit only where the merged probability is strictly greater than the action's threshold. */
  thresholds: Readonly<Partial<Record<ActionName, number>>>;
  /** NMS half-width in seconds per action: weaker peaks within this distance of a kept one are dropped. */
  nmsWindowS: Readonly<Partial<Record<ActionName, number>>>;
  /** Optional per-model-frame displacement (N values, model frames): the event is at frame k + displacement[k]. */
  displacement?: ArrayLike<number>;
}

interface Peak {
  action: ActionName;
  time: number; // model frames (fractional after displacement)
  score: number;
}

/**
 * `perFrame` is N*C (numFrames rows of C probabilities). Returns one prediction per detected event, sorted by
 * frame then action name; frames are integer 25 fps indices >= 0, confidences in [0, 1].
 */
export function postprocess(perFrame: ArrayLike<number>, numFrames: number, options: PostprocessOptions): Prediction[] {
  const { fps, classes, thresholds, nmsWindowS, displacement } = options;
  const c = classes.length;
  if (!(fps > 0) || !Number.isFinite(fps)) throw new RangeError(`fps must be a positive number, got ${fps}`);
  if (!Number.isInteger(numFrames) || numFrames < 0) throw new RangeError(`numFrames must be a non-negative integer, got ${numFrames}`);
  if (c === 0 || perFrame.length < numFrames * c)
    throw new RangeError(`perFrame has ${perFrame.length} values, expected ${numFrames} frames x ${c} classes`);
  if (displacement && displacement.length < numFrames)
    throw new RangeError(`displacement has ${displacement.length} values, expected ${numFrames}`);

  // Group score columns by action (first-seen order; output order is fixed by the final sort anyway).
  const columns = new Map<ActionName, number[]>();
  classes.forEach((entry, k) => {
    const action = entry !== null && typeof entry === 'object' ? entry.action : entry;
    if (action === null) return;
    const list = columns.get(action);
    if (list) list.push(k);
    else columns.set(action, [k]);
  });

  const peaks: Peak[] = [];
  const merged = new Float64Array(numFrames);
  for (const [action, cols] of columns) {
    const threshold = thresholds[action];
    const windowS = nmsWindowS[action];
    if (threshold === undefined || windowS === undefined) throw new RangeError(`no threshold / nmsWindowS for action ${action}`);
    const windowFrames = windowS * fps;

    // Merge (max) and collect candidates strictly above the threshold; NaN never passes.
    const candidates: number[] = [];
    for (let f = 0; f < numFrames; f++) {
      let best = -Infinity;
      for (const k of cols) {
        const v = perFrame[f * c + k];
        if (v > best) best = v;
      }
      merged[f] = best;
      if (best > threshold) candidates.push(f);
    }
    // Greedy NMS: strongest first, earliest frame wins a tie.
    candidates.sort((a, b) => merged[b] - merged[a] || a - b);
    const kept: Peak[] = [];
    const suppressed = new Uint8Array(numFrames);
    for (const f of candidates) {
      if (suppressed[f]) continue;
      const time = displacement ? f + finiteOr0(displacement[f]) : f;
      kept.push({ action, time, score: merged[f] });
      const lo = Math.max(0, Math.ceil(f - windowFrames));
      const hi = Math.min(numFrames - 1, Math.floor(f + windowFrames));
      for (let g = lo; g <= hi; g++) suppressed[g] = 1;
    }
    // Displacement can move two kept peaks closer than the window: keep the stronger (earlier on a tie).
    if (displacement) {
      kept.sort((a, b) => b.score - a.score || a.time - b.time);
      const final: Peak[] = [];
      for (const p of kept) if (!final.some((q) => Math.abs(q.time - p.time) <= windowFrames)) final.push(p);
      peaks.push(...final);
    } else {
      peaks.push(...kept);
    }
  }

  const lastFrame = numFrames > 0 ? Math.round(((numFrames - 1) * SCORE_FPS) / fps) : 0;
  const out: Prediction[] = peaks.map((p) => ({
    frame: Math.min(lastFrame, Math.max(0, Math.round((p.time * SCORE_FPS) / fps))),
    action: p.action,
    confidence: Math.min(1, Math.max(0, p.score)),
  }));
  out.sort((a, b) => a.frame - b.frame || (a.action < b.action ? -1 : a.action > b.action ? 1 : 0));
  return out;
}

function finiteOr0(v: number): number {
  return Number.isFinite(v) ? v : 0;
}
