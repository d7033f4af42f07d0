/**
 * Per-action evaluation metrics over the validator's own matching (scoring.ts `matchPredictions`), so the
 * counts and the score always come from one computation. Pure.
 *
 * Per clip and action: truth events, predictions, matched, missed (truth left unmatched), false positives
 * (predictions left unmatched, duplicates included), the decays of the matches, and the action's share of the
 * score: (Σ weight·decay − weight·false positives) / the clip's ground-truth weight. The shares of a clip sum to
 * its score before the validator clamps it to [0, 1].
 */
import { ACTIONS, type ActionName, isActionName } from './actions.ts';
import { type GroundTruthEvent, matchPredictions, type Prediction, scoreResponse } from './scoring.ts';

export interface ActionCounts {
  truth: number;
  predicted: number;
  matched: number;
  missed: number;
  falsePositives: number;
  /** Σ decay over the matches (mean decay = decaySum / matched). */
  decaySum: number;
}

export interface ActionMetrics extends ActionCounts {
  /** decaySum / matched; null without a match. */
  meanDecay: number | null;
  /** The action's share of the (unclamped) score, see the module comment; mean over clips in a summary. */
  share: number;
}

export interface ClipMetrics {
  /** The validator's score. */
  score: number;
  /** Its value before the clamp to [0, 1]: Σ shares. */
  rawScore: number;
  gtWeight: number;
  matched: number;
  missed: number;
  falsePositives: number;
  /** Predictions with an unknown action (the validator ignores them). */
  ignored: number;
  /** Mean decay over all matches; null without a match. */
  meanDecay: number | null;
  /** Only actions present in the truth or the predictions, in the action table's order. */
  actions: Partial<Record<ActionName, ActionMetrics>>;
}

const ACTION_ORDER = Object.keys(ACTIONS) as ActionName[];

function emptyCounts(): ActionCounts {
  return { truth: 0, predicted: 0, matched: 0, missed: 0, falsePositives: 0, decaySum: 0 };
}

function ordered<T>(record: Partial<Record<ActionName, T>>): Partial<Record<ActionName, T>> {
  const out: Partial<Record<ActionName, T>> = {};
  for (const action of ACTION_ORDER) if (record[action] !== undefined) out[action] = record[action];
  return out;
}

/** Counts, decays and score of one response against its ground truth. */
export function clipMetrics(predictions: readonly Prediction[], truth: readonly GroundTruthEvent[]): ClipMetrics {
  const matching = matchPredictions(predictions, truth);
  const counts: Partial<Record<ActionName, ActionCounts>> = {};
  const of = (action: ActionName) => {
    counts[action] ??= emptyCounts();
    return counts[action];
  };
  for (const event of truth) if (isActionName(event.action)) of(event.action).truth++;
  for (const p of predictions) if (isActionName(p.action)) of(p.action).predicted++;
  let decaySum = 0;
  for (const m of matching.matches) {
    const c = of(m.prediction.action as ActionName);
    c.matched++;
    c.decaySum += m.decay;
    decaySum += m.decay;
  }
  for (const e of matching.missed) of(e.action as ActionName).missed++;
  for (const p of matching.falsePositives) of(p.action as ActionName).falsePositives++;

  const actions: Partial<Record<ActionName, ActionMetrics>> = {};
  let rawScore = 0;
  for (const [action, c] of Object.entries(counts) as [ActionName, ActionCounts][]) {
    const { weight } = ACTIONS[action];
    const share = matching.gtWeight > 0 ? (weight * c.decaySum - weight * c.falsePositives) / matching.gtWeight : 0;
    rawScore += share;
    actions[action] = { ...c, meanDecay: c.matched > 0 ? c.decaySum / c.matched : null, share };
  }
  return {
    score: scoreResponse(predictions, truth),
    rawScore: matching.truthCount > 0 && matching.gtWeight > 0 ? rawScore : 0,
    gtWeight: matching.gtWeight,
    matched: matching.matches.length,
    missed: matching.missed.length,
    falsePositives: matching.falsePositives.length,
    ignored: matching.ignored.length,
    meanDecay: matching.matches.length > 0 ? decaySum / matching.matches.length : null,
    actions: ordered(actions),
  };
}

export interface Summary {
  clips: number;
  meanScore: number;
  matched: number;
  missed: number;
  falsePositives: number;
  /** Mean decay over every match of every clip; null without a match. */
  meanDecay: number | null;
  /** Counts summed over the clips; `share` is the mean over all clips (0 where the action is absent). */
  actions: Partial<Record<ActionName, ActionMetrics>>;
}

/** Totals over clips: mean score, summed counts, mean decay over all matches, mean share per action. */
export function summarise(clips: readonly ClipMetrics[]): Summary {
  const counts: Partial<Record<ActionName, ActionCounts & { shareSum: number }>> = {};
  let scoreSum = 0;
  let decaySum = 0;
  let matched = 0;
  let missed = 0;
  let falsePositives = 0;
  for (const clip of clips) {
    scoreSum += clip.score;
    matched += clip.matched;
    missed += clip.missed;
    falsePositives += clip.falsePositives;
    for (const [action, a] of Object.entries(clip.actions) as [ActionName, ActionMetrics][]) {
      counts[action] ??= { ...emptyCounts(), shareSum: 0 };
      const c = counts[action];
      c.truth += a.truth;
      c.predicted += a.predicted;
      c.matched += a.matched;
      c.missed += a.missed;
      c.falsePositives += a.falsePositives;
      c.decaySum += a.decaySum;
      c.shareSum += a.share;
      decaySum += a.decaySum;
    }
  }
  const actions: Partial<Record<ActionName, ActionMetrics>> = {};
  for (const [action, c] of Object.entries(counts) as [ActionName, ActionCounts & { shareSum: number }][]) {
    const { shareSum, ...rest } = c;
    actions[action] = {
      ...rest,
      meanDecay: c.matched > 0 ? c.decaySum / c.matched : null,
      share: clips.length > 0 ? shareSum / clips.length : 0,
    };
  }
  return {
    clips: clips.length,
    meanScore: clips.length > 0 ? scoreSum / clips.length : 0,
    matched,
    missed,
    falsePositives,
    meanDecay: matched > 0 ? decaySum / matched : null,
    actions: ordered(actions),
  };
}
