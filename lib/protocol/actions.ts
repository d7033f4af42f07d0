/**
 * Score's action table as data (docs/protocol.md): name, weight, min_score, tolerance in seconds.
 * A change upstream is a one-line edit here.
 */
export interface ActionSpec {
  readonly weight: number;
  readonly minScore: number;
  readonly toleranceS: number;
}

export const ACTIONS = {
  pass: { weight: 1.0, minScore: 0.0, toleranceS: 1.0 },
  pass_received: { weight: 1.4, minScore: 0.0, toleranceS: 1.0 },
  recovery: { weight: 1.5, minScore: 0.0, toleranceS: 1.5 },
  tackle: { weight: 2.5, minScore: 0.1, toleranceS: 1.5 },
  interception: { weight: 2.8, minScore: 0.5, toleranceS: 2.0 },
  ball_out_of_play: { weight: 2.9, minScore: 0.5, toleranceS: 2.0 },
  clearance: { weight: 3.1, minScore: 0.5, toleranceS: 2.0 },
  take_on: { weight: 3.2, minScore: 0.5, toleranceS: 2.0 },
  substitution: { weight: 4.2, minScore: 0.5, toleranceS: 2.0 },
  block: { weight: 4.2, minScore: 0.5, toleranceS: 2.0 },
  aerial_duel: { weight: 4.3, minScore: 0.5, toleranceS: 2.0 },
  shot: { weight: 4.7, minScore: 0.5, toleranceS: 2.0 },
  save: { weight: 7.3, minScore: 0.5, toleranceS: 2.0 },
  foul: { weight: 7.7, minScore: 0.5, toleranceS: 2.5 },
  goal: { weight: 10.9, minScore: 0.5, toleranceS: 3.0 },
} as const satisfies Record<string, ActionSpec>;

export type ActionName = keyof typeof ACTIONS;

/** Frames in a response are indices at this rate, whatever the clip's native rate. */
export const SCORE_FPS = 25;

export function isActionName(name: string): name is ActionName {
  return Object.hasOwn(ACTIONS, name);
}
