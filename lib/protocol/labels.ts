/**
 * The miner's own labelled clips (tasks/eval.ts): which label file belongs to which clip, the ground truth in
 * Score's shape or SoccerNet's, and the map from SoccerNet labels to Score actions. Pure: names and text in,
 * events out, and every bad or ambiguous label named by file, line and JSON path, never guessed.
 *
 * Score's shape, `<name>.json` beside `<name>.mp4` (what tasks/challenge.ts --truth reads):
 *   [{"frame": 75, "action": "goal"}]           frame: an integer >= 0 at 25 fps; action: one of the 15 actions
 *
 * SoccerNet's shape, `<name>.json`, `<name>.Labels-v2.json` or `<name>.Labels-ball.json` (action spotting's
 * Labels-v2.json and ball action spotting's Labels-ball.json use the same fields):
 *   {"annotations": [{"gameTime": "1 - 00:03", "label": "GOAL", "position": "3000", ...}]}
 *   - `label`: the class name, turned into a Score action by the label map (`--label-map`), null = ignored;
 *   - `position`: milliseconds from the start of the half's video, a string of digits in SoccerNet's files (a
 *     number is accepted); the event's 25 fps frame is round(position * 25 / 1000);
 *   - `gameTime`: "<half> - <mm>:<ss>"; only its half is used (every annotation of one clip must be in the same
 *     half: a clip is one video), and its seconds when `position` is absent (second precision, as SoccerNet's own
 *     label2vector falls back to);
 *   - other fields (`team`, `visibility`, `UrlLocal`, ...) are ignored; "not shown" events are kept as events.
 * Sources: SoccerNet's sn-spotting development kit (Evaluation/README, results_spotting.json: "position" is the
 * time in milliseconds, "gameTime" is "{half} - {minutes}:{seconds}") and the SoccerNet package's label readers,
 * which take position / 1000 as seconds.
 */
import { MinerError } from '../core/errors.ts';
import { formatJsonPath, type JsonPath, JsonSyntaxError, type LocatedJson, parseJsonLocated } from '../core/json-lines.ts';
import { ACTIONS, type ActionName, isActionName, SCORE_FPS } from './actions.ts';
import type { GroundTruthEvent } from './scoring.ts';

export type LabelFormat = 'score' | 'soccernet';

/** One thing wrong with the labels: where (file, line, JSON path) and what. */
export interface LabelProblem {
  file: string;
  line?: number;
  /** JSON path inside the file (`[2].frame`, `annotations[0].label`), absent for a problem with the file itself. */
  path?: string;
  message: string;
}

/** `file:line: path: message`. */
export function formatProblem(problem: LabelProblem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`;
  return problem.path === undefined ? `${where}: ${problem.message}` : `${where}: ${problem.path}: ${problem.message}`;
}

/** Bad labels: every problem found (a whole file is read before failing), one per line in the message. */
export class LabelError extends MinerError {
  readonly problems: readonly LabelProblem[];

  constructor(problems: readonly LabelProblem[], hint = 'fix the labels named above; nothing was evaluated') {
    const lines = problems.map(formatProblem);
    const message = lines.length === 1 ? `bad labels: ${lines[0]}` : `${lines.length} problems with the labels:\n  ${lines.join('\n  ')}`;
    super(message, { hint, kind: 'invalid-input' });
    this.name = 'LabelError';
    this.problems = problems;
  }
}

const ACTION_NAMES = Object.keys(ACTIONS) as ActionName[];

/** " (did you mean "goal"?)" when `name` is a Score action up to case, spaces and dashes. */
function actionSuggestion(name: string): string {
  const normalised = name
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
  return normalised !== name && isActionName(normalised) ? ` (did you mean ${JSON.stringify(normalised)}?)` : '';
}

function describe(value: unknown): string {
  return value === undefined ? 'missing' : JSON.stringify(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects problems with their lines for one file. */
class Reporter {
  readonly problems: LabelProblem[] = [];
  readonly file: string;
  private readonly json: LocatedJson;

  constructor(file: string, json: LocatedJson) {
    this.file = file;
    this.json = json;
  }

  /** A missing field has no line of its own: it is reported at the nearest enclosing value. */
  add(path: JsonPath, message: string): void {
    let line: number | undefined;
    for (let n = path.length; line === undefined && n >= 0; n--) line = this.json.lineOf(path.slice(0, n));
    this.problems.push({ file: this.file, line, path: formatJsonPath(path), message });
  }

  throwIfAny(): void {
    if (this.problems.length > 0) throw new LabelError(this.problems);
  }
}

/** parseJsonLocated, with a syntax error reported as a LabelError naming the file. */
function readJson(text: string, file: string): LocatedJson {
  try {
    return parseJsonLocated(text, file);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new LabelError([{ file, message: `is not valid JSON: ${error.reason}` }]);
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Label map

export interface LabelMap {
  file: string;
  /** SoccerNet label -> Score action, or null (ignored). */
  entries: ReadonlyMap<string, ActionName | null>;
}

/** `{"GOAL": "goal", "PASS": "pass", "DRIVE": null}`; keys starting with "_" are comments. */
export function parseLabelMap(text: string, file: string): LabelMap {
  const json = readJson(text, file);
  const report = new Reporter(file, json);
  const entries = new Map<string, ActionName | null>();
  if (!isRecord(json.value)) {
    report.add(
      [],
      `expected an object mapping labels to Score actions, e.g. {"GOAL": "goal", "DRIVE": null} (got ${describe(json.value)})`,
    );
  } else {
    for (const [label, action] of Object.entries(json.value)) {
      if (label.startsWith('_')) continue;
      if (action === null) entries.set(label, null);
      else if (typeof action === 'string' && isActionName(action)) entries.set(label, action);
      else
        report.add(
          [label],
          `${describe(action)} is not a Score action${typeof action === 'string' ? actionSuggestion(action) : ''}: expected one of ${ACTION_NAMES.join(', ')}, or null to ignore the label`,
        );
    }
  }
  report.throwIfAny();
  return { file, entries };
}

// ---------------------------------------------------------------------------------------------------------
// Label files

export interface ClipLabels {
  file: string;
  format: LabelFormat;
  /** The ground truth, in file order (25 fps frames, Score actions). */
  events: GroundTruthEvent[];
  /** SoccerNet annotations whose label maps to null. */
  ignored: number;
}

/** A SoccerNet position (ms) as a 25 fps frame index. */
export function frameOfMs(positionMs: number): number {
  return Math.round((positionMs * SCORE_FPS) / 1000);
}

const GAME_TIME = /^\s*(\d+)\s*-\s*(\d+):(\d{1,2})\s*$/;

function parseScoreShape(list: unknown[], report: Reporter): GroundTruthEvent[] {
  const events: GroundTruthEvent[] = [];
  list.forEach((item, i) => {
    if (!isRecord(item)) {
      report.add([i], `expected {"frame": integer >= 0, "action": "<Score action>"} (got ${describe(item)})`);
      return;
    }
    const { frame, action } = item;
    let ok = true;
    if (typeof frame !== 'number' || !Number.isInteger(frame) || frame < 0) {
      const why = typeof frame === 'number' && frame < 0 ? 'negative' : typeof frame === 'number' ? 'not an integer' : 'not a number';
      report.add([i, 'frame'], `${describe(frame)} is ${frame === undefined ? 'required' : why}: expected an integer frame >= 0 at 25 fps`);
      ok = false;
    }
    if (typeof action !== 'string' || !isActionName(action)) {
      report.add(
        [i, 'action'],
        `${describe(action)} is not a Score action${typeof action === 'string' ? actionSuggestion(action) : ''}: expected one of ${ACTION_NAMES.join(', ')}`,
      );
      ok = false;
    }
    if (ok) events.push({ frame: frame as number, action: action as string });
  });
  return events;
}

function parseSoccerNetShape(
  root: Record<string, unknown>,
  report: Reporter,
  labelMap: LabelMap | undefined,
): { events: GroundTruthEvent[]; ignored: number } {
  const events: GroundTruthEvent[] = [];
  let ignored = 0;
  const annotations = root.annotations;
  if (!Array.isArray(annotations)) {
    report.add(['annotations'], `expected a list of {"gameTime", "label", "position"} (got ${describe(annotations)})`);
    return { events, ignored };
  }
  if (!labelMap) {
    report.add([], 'SoccerNet labels need a label map: pass --label-map FILE, e.g. {"GOAL": "goal", "PASS": "pass", "DRIVE": null}');
    return { events, ignored };
  }
  let firstHalf: { half: number; index: number } | undefined;
  annotations.forEach((item, i) => {
    const at = (field?: string): JsonPath => (field === undefined ? ['annotations', i] : ['annotations', i, field]);
    if (!isRecord(item)) {
      report.add(at(), `expected {"gameTime", "label", "position"} (got ${describe(item)})`);
      return;
    }
    let ok = true;
    let action: ActionName | null = null;
    const { label, position, gameTime } = item;
    if (typeof label !== 'string') {
      report.add(at('label'), `${describe(label)} is not a label: expected a string such as "GOAL"`);
      ok = false;
    } else if (!labelMap.entries.has(label)) {
      const near = [...labelMap.entries.keys()].find((k) => k.toLowerCase() === label.toLowerCase());
      report.add(
        at('label'),
        `${JSON.stringify(label)} is not in the label map ${labelMap.file}${near ? ` (it has ${JSON.stringify(near)}: labels are case-sensitive)` : ''}: add "${label}": "<Score action>", or null to ignore it`,
      );
      ok = false;
    } else {
      action = labelMap.entries.get(label) ?? null;
    }

    let half: number | undefined;
    let gameSeconds: number | undefined;
    if (gameTime !== undefined) {
      const m = typeof gameTime === 'string' ? GAME_TIME.exec(gameTime) : null;
      if (!m || Number(m[3]) > 59) {
        report.add(at('gameTime'), `${describe(gameTime)} is not a game time: expected "<half> - <mm>:<ss>", e.g. "1 - 00:03"`);
        ok = false;
      } else {
        half = Number(m[1]);
        gameSeconds = Number(m[2]) * 60 + Number(m[3]);
      }
    }

    let frame: number | undefined;
    if (position !== undefined) {
      const ms = typeof position === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(position) ? Number(position) : position;
      if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0) {
        const why =
          typeof ms === 'number' && ms < 0 ? 'negative' : typeof ms === 'number' ? 'not a whole number of milliseconds' : 'not a number';
        report.add(at('position'), `${describe(position)} is ${why}: expected milliseconds from the start of the video, e.g. "3000"`);
        ok = false;
      } else {
        frame = frameOfMs(ms);
      }
    } else if (gameSeconds !== undefined) {
      frame = gameSeconds * SCORE_FPS;
    } else if (gameTime === undefined) {
      report.add(at(), 'has neither "position" (milliseconds) nor "gameTime": the event has no time');
      ok = false;
    }

    if (half !== undefined) {
      if (!firstHalf) firstHalf = { half, index: i };
      else if (half !== firstHalf.half) {
        report.add(
          at('gameTime'),
          `half ${half} differs from half ${firstHalf.half} of annotations[${firstHalf.index}]: a clip is one video, so its labels must be from one half (split the file per half)`,
        );
        ok = false;
      }
    }
    if (!ok || frame === undefined) return;
    if (action === null) ignored++;
    else events.push({ frame, action });
  });
  return { events, ignored };
}

/**
 * Parse one label file; its shape decides the format (a list: Score's; an object with "annotations": SoccerNet's,
 * which needs `labelMap`). Throws a LabelError listing every problem in the file.
 */
export function parseLabels(text: string, file: string, labelMap?: LabelMap): ClipLabels {
  const json = readJson(text, file);
  const report = new Reporter(file, json);
  const root = json.value;
  let result: ClipLabels;
  if (Array.isArray(root)) {
    result = { file, format: 'score', events: parseScoreShape(root, report), ignored: 0 };
  } else if (isRecord(root) && Object.hasOwn(root, 'annotations')) {
    result = { file, format: 'soccernet', ...parseSoccerNetShape(root, report, labelMap) };
  } else {
    report.add(
      [],
      `neither label format: expected a list [{"frame": 75, "action": "goal"}] (Score's) or {"annotations": [{"gameTime", "label", "position"}]} (SoccerNet's) (got ${
        isRecord(root)
          ? `an object with ${
              Object.keys(root)
                .map((k) => JSON.stringify(k))
                .join(', ') || 'no keys'
            }`
          : describe(root)
      })`,
    );
    result = { file, format: 'score', events: [], ignored: 0 };
  }
  report.throwIfAny();
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// Which label file belongs to which clip

export const VIDEO_EXTENSION = '.mp4';
/** Label file names for clip `<name>.mp4`: `<name>` + one of these. */
export const LABEL_SUFFIXES = ['.json', '.Labels-v2.json', '.Labels-ball.json'] as const;

export interface ClipEntry {
  /** The clip's base name (`<name>` of `<name>.mp4`). */
  name: string;
  /** File names (not paths) in the folder. */
  video: string;
  labels: string;
}

/**
 * Pair the clips and label files of one folder (`files`: the names of its plain files). Every `.mp4` needs
 * exactly one label file; a `.json` that belongs to no clip is a problem too (a misspelt name), except the names
 * in `ignore` (e.g. the label map kept in the same folder). Other files are left alone. Sorted by clip name.
 */
export function pairClips(files: readonly string[], ignore: readonly string[] = []): { clips: ClipEntry[]; problems: LabelProblem[] } {
  const names = [...files].sort();
  const present = new Set(names);
  const claimed = new Set<string>();
  const clips: ClipEntry[] = [];
  const problems: LabelProblem[] = [];
  for (const video of names) {
    if (!video.endsWith(VIDEO_EXTENSION)) continue;
    const name = video.slice(0, -VIDEO_EXTENSION.length);
    const labels = LABEL_SUFFIXES.map((suffix) => name + suffix).filter((candidate) => present.has(candidate));
    for (const file of labels) claimed.add(file);
    if (labels.length === 0) {
      problems.push({
        file: video,
        message: `has no labels: expected ${name}.json (Score's [{"frame", "action"}] or SoccerNet's {"annotations"}), ${name}.Labels-v2.json or ${name}.Labels-ball.json beside it`,
      });
    } else if (labels.length > 1) {
      problems.push({
        file: video,
        message: `has ${labels.length} label files (${labels.join(', ')}): keep exactly one, the labels are ambiguous otherwise`,
      });
    } else {
      clips.push({ name, video, labels: labels[0] });
    }
  }
  for (const file of names) {
    if (file.endsWith('.json') && !claimed.has(file) && !ignore.includes(file)) {
      problems.push({
        file,
        message: `belongs to no clip: label files are named after their clip (<name>.mp4 -> ${LABEL_SUFFIXES.map((s) => `<name>${s}`).join(', ')})`,
      });
    }
  }
  return { clips, problems };
}
