/**
 * Score's validator formula (docs/protocol.md, "Scoring") and its response schema check.
 * Pure: the server never scores itself; the challenge client and benchmarks use this to predict what the
 * validator will award. Floating-point order matters at the tolerance edge, so every expression below keeps
 * the validator's order of operations.
 */
import { ACTIONS, isActionName, SCORE_FPS } from './actions.ts';

export interface Prediction {
  frame: number;
  action: string;
  confidence?: number;
}

export interface GroundTruthEvent {
  frame: number;
  action: string;
}

/**
 * Seconds between a prediction and a ground-truth event: `|p/25 - g/25|`, divided first and subtracted
 * after, exactly like the validator (frames 4 and 29 give 0.9999999999999999, not 1).
 */
export function timeDelta(predFrame: number, truthFrame: number): number {
  return Math.abs(predFrame / SCORE_FPS - truthFrame / SCORE_FPS);
}

/** Decay for a candidate match; 0 or less means "no match" (including dt exactly at tolerance with min_score 0). */
export function matchDecay(dt: number, toleranceS: number, minScore: number): number {
  if (dt > toleranceS) return 0;
  return 1 - (dt / toleranceS) * (1 - minScore);
}

/** One prediction the validator credits: the ground-truth event it used up and the decay it earned. */
export interface Match {
  prediction: Prediction;
  truth: GroundTruthEvent;
  /** Index of `truth` in the ground-truth list given to matchPredictions. */
  truthIndex: number;
  /** In (0, 1]: the prediction earns `weight * decay`. */
  decay: number;
}

/** How the validator pairs one response with its ground truth (the part of the score before the arithmetic). */
export interface Matching {
  /** In the validator's order: predictions sorted by frame (stable). */
  matches: Match[];
  /** Ground-truth events with a valid action that no prediction used, in ground-truth order. */
  missed: GroundTruthEvent[];
  /** Predictions with a valid action and no event left to match (duplicates included), each costing its full weight. */
  falsePositives: Prediction[];
  /** Predictions with an unknown action: no credit, no penalty. */
  ignored: Prediction[];
  /** Ground-truth events with a valid action (the others carry no weight). */
  truthCount: number;
  /** Σ weight over the valid ground truth. */
  gtWeight: number;
  /** Σ weight * decay over the matches, summed in the validator's order. */
  matchedWeight: number;
  /** Σ weight over the false positives, summed in the validator's order. */
  penalty: number;
}

/**
 * The validator's matching (docs/protocol.md, "Scoring" steps 1-3), exposed so per-action counts and the score
 * come from one computation: predictions sorted by frame, each takes the unused same-action event with the
 * largest decay (> 0, the first on a tie), else it is a false positive. Unknown actions are ignored on both sides.
 */
export function matchPredictions(predictions: readonly Prediction[], groundTruth: readonly GroundTruthEvent[]): Matching {
  const truthIndex: number[] = [];
  groundTruth.forEach((event, i) => {
    if (isActionName(event.action)) truthIndex.push(i);
  });
  const truth = truthIndex.map((i) => groundTruth[i]);
  let gtWeight = 0;
  for (const event of truth) gtWeight += ACTIONS[event.action as keyof typeof ACTIONS].weight;

  // Stable sort by frame: equal frames keep their response order, as Python's sorted() does.
  const ordered = [...predictions].sort((a, b) => a.frame - b.frame);
  const used = new Array<boolean>(truth.length).fill(false);
  const matches: Match[] = [];
  const falsePositives: Prediction[] = [];
  const ignored: Prediction[] = [];
  let matched = 0;
  let penalty = 0;

  for (const prediction of ordered) {
    if (!isActionName(prediction.action)) {
      ignored.push(prediction);
      continue;
    }
    const spec = ACTIONS[prediction.action];
    let best = -1;
    let bestDecay = 0;
    for (let i = 0; i < truth.length; i++) {
      if (used[i] || truth[i].action !== prediction.action) continue;
      const decay = matchDecay(timeDelta(prediction.frame, truth[i].frame), spec.toleranceS, spec.minScore);
      // Strictly greater: the first of equally good events wins, and decay 0 never matches.
      if (decay > bestDecay) {
        best = i;
        bestDecay = decay;
      }
    }
    if (best >= 0) {
      used[best] = true;
      matched += spec.weight * bestDecay;
      matches.push({ prediction, truth: truth[best], truthIndex: truthIndex[best], decay: bestDecay });
    } else {
      // A false positive (or a duplicate of an already matched event) costs the action's full weight.
      penalty += spec.weight;
      falsePositives.push(prediction);
    }
  }

  const missed = truth.filter((_, i) => !used[i]);
  return { matches, missed, falsePositives, ignored, truthCount: truth.length, gtWeight, matchedWeight: matched, penalty };
}

/**
 * The score the validator gives one response against its ground truth, in [0, 1] (step 4 over
 * matchPredictions). Unknown actions are ignored on both sides (no credit, no penalty, no weight).
 */
export function scoreResponse(predictions: readonly Prediction[], groundTruth: readonly GroundTruthEvent[]): number {
  const { truthCount, gtWeight, matchedWeight, penalty } = matchPredictions(predictions, groundTruth);
  if (truthCount === 0 || gtWeight <= 0) return 0;
  const raw = (matchedWeight - penalty) / gtWeight;
  return Math.min(1, Math.max(0, raw));
}

export interface ValidResponse {
  ok: true;
  challengeId?: string;
  predictions: Prediction[];
  processingTime: number;
}

export interface InvalidResponse {
  ok: false;
  /** One line naming the offending field, e.g. `predictions[3].frame must be an integer >= 0 (got 1.5)`. */
  reason: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

/**
 * Would the validator accept this parsed JSON body? One bad prediction invalidates the whole response
 * (score 0), so this stops at the first problem and names it.
 */
export function validateResponse(json: unknown): ValidResponse | InvalidResponse {
  if (!isRecord(json)) return { ok: false, reason: `response must be a JSON object (got ${describe(json)})` };
  const { challenge_id: challengeId, predictions, processing_time: processingTime } = json;

  if (challengeId !== undefined && typeof challengeId !== 'string') {
    return { ok: false, reason: `challenge_id must be a string (got ${describe(challengeId)})` };
  }
  if (typeof processingTime !== 'number' || !Number.isFinite(processingTime)) {
    return { ok: false, reason: `processing_time must be a number of seconds (got ${describe(processingTime)})` };
  }
  if (!Array.isArray(predictions)) {
    return { ok: false, reason: `predictions must be a list (got ${describe(predictions)})` };
  }

  const out: Prediction[] = [];
  for (let i = 0; i < predictions.length; i++) {
    const item: unknown = predictions[i];
    const at = `predictions[${i}]`;
    if (!isRecord(item)) return { ok: false, reason: `${at} must be an object (got ${describe(item)})` };
    const { frame, action, confidence } = item;
    if (typeof frame !== 'number' || !Number.isInteger(frame) || frame < 0) {
      return { ok: false, reason: `${at}.frame must be an integer >= 0 (got ${describe(frame)})` };
    }
    if (typeof action !== 'string') {
      return { ok: false, reason: `${at}.action must be a string (got ${describe(action)})` };
    }
    if (confidence !== undefined && confidence !== null) {
      if (typeof confidence !== 'number' || !(confidence >= 0 && confidence <= 1)) {
        return { ok: false, reason: `${at}.confidence must be a number in [0, 1] (got ${describe(confidence)})` };
      }
      out.push({ frame, action, confidence });
    } else {
      out.push({ frame, action });
    }
  }
  return { ok: true, challengeId, predictions: out, processingTime };
}
