/**
 * Evaluating a model on the miner's own labelled clips (tasks/eval.ts): the clips and their labels, a runner
 * (the server's local path, or a running miner challenged like the validator), the validator's score of each
 * clip, and the tuning glue (pre-threshold scores -> lib/inference/tuning.ts -> a checked model.json).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.ts';
import { type Env, loadConfig } from '../core/config.ts';
import { MinerError } from '../core/errors.ts';
import { MANIFEST_FILE, parseManifest } from '../inference/manifest.ts';
import { loadModel, type Model } from '../inference/model.ts';
import { ClipScorer, decodeSpecOf } from '../inference/pipeline.ts';
import { type TuningClip, type TuningReport, tuneWithCrossValidation } from '../inference/tuning.ts';
import {
  type ClipEntry,
  type ClipLabels,
  LabelError,
  type LabelMap,
  type LabelProblem,
  pairClips,
  parseLabelMap,
  parseLabels,
} from '../protocol/labels.ts';
import { type ClipMetrics, clipMetrics, type Summary, summarise } from '../protocol/metrics.ts';
import type { Prediction } from '../protocol/scoring.ts';
import { type ChallengeOptions, challenge, newChallengeId } from '../protocol/validator-client.ts';
import { resolveFfmpeg } from '../video/ffmpeg.ts';
import { decodeClips } from '../video/frames.ts';

/** Folds when --folds is not given (fewer when there are fewer clips). */
export const DEFAULT_FOLDS = 5;

// ---------------------------------------------------------------------------------------------------------
// The labelled clips

export interface LabelledClip extends ClipEntry {
  dir: string;
  parsed: ClipLabels;
}

/** Every clip of `dir` with its parsed labels; all bad labels of the folder in one LabelError. */
export async function loadLabelledClips(dir: string, labelMapFile?: string): Promise<{ clips: LabelledClip[]; labelMap?: LabelMap }> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new MinerError(`cannot read the clips folder ${dir}: ${(error as Error).message}`, {
      hint: 'pass --clips DIR, a folder of <name>.mp4 with <name>.json labels beside each',
    });
  }
  let labelMap: LabelMap | undefined;
  if (labelMapFile) {
    let text: string;
    try {
      text = await readFile(labelMapFile, 'utf8');
    } catch (error) {
      throw new MinerError(`cannot read the label map ${labelMapFile}: ${(error as Error).message}`, {
        hint: 'pass --label-map FILE, a JSON object such as {"GOAL": "goal", "DRIVE": null}',
      });
    }
    labelMap = parseLabelMap(text, labelMapFile);
  }
  const files = entries.filter((e) => e.isFile()).map((e) => e.name);
  const mapInside = labelMapFile && path.resolve(path.dirname(labelMapFile)) === path.resolve(dir) ? [path.basename(labelMapFile)] : [];
  const paired = pairClips(files, mapInside);
  const problems: LabelProblem[] = paired.problems.map((p) => ({ ...p, file: path.join(dir, p.file) }));
  const clips: LabelledClip[] = [];
  for (const entry of paired.clips) {
    const file = path.join(dir, entry.labels);
    try {
      clips.push({ ...entry, dir, parsed: parseLabels(await readFile(file, 'utf8'), file, labelMap) });
    } catch (error) {
      if (!(error instanceof LabelError)) throw error;
      problems.push(...error.problems);
    }
  }
  if (problems.length > 0) throw new LabelError(problems);
  if (clips.length === 0) {
    throw new MinerError(`no clips in ${dir}: expected <name>.mp4 files with labels beside them`, {
      hint: 'render or copy the clips there (tasks/eval.ts --help shows the label formats)',
    });
  }
  return { clips, labelMap };
}

// ---------------------------------------------------------------------------------------------------------
// Running the clips

export interface ClipRun {
  predictions: Prediction[];
  /** Seconds from the start of the decode (local) or the miner's processing_time (url). */
  processingTimeS: number;
  /** Pre-threshold scores for --tune (local only). */
  raw?: { scores: Float32Array; frames: number; displacement?: Float32Array };
  error?: string;
}

export interface Runner {
  describe: string;
  /** Local runs have no deadline; a clip slower than the server's CHALLENGE_DEADLINE_S is flagged. */
  deadlineS?: number;
  run(file: string): Promise<ClipRun>;
  close(): Promise<void>;
}

/** The server's path for one clip: its decode spec and MAX_VIDEO_SECONDS, its ClipScorer, its post-processing. */
export async function runClipLocally(model: Model, ffmpegPath: string, file: string, maxSeconds: number): Promise<ClipRun> {
  const started = performance.now();
  const scorer = new ClipScorer(model);
  for await (const window of decodeClips(file, ffmpegPath, { ...decodeSpecOf(model.manifest), maxSeconds })) await scorer.add(window);
  const { predictions } = scorer.snapshot();
  return { predictions, processingTimeS: (performance.now() - started) / 1000, raw: scorer.raw() };
}

export async function localRunner(modelDir: string | undefined, env: Env): Promise<Runner & { model: Model }> {
  // MODEL_DIR keeps the server's meaning (relative to the project); --model is relative to the working directory.
  const config = loadConfig(modelDir ? { ...env, MODEL_DIR: modelDir } : env);
  const ffmpeg = resolveFfmpeg(config.video.ffmpegPath);
  const model = await loadModel(config.model.dir, config.model);
  await model.warmup();
  return {
    model,
    deadlineS: config.server.challengeDeadlineMs / 1000,
    describe: `model ${model.manifest.name} ${model.manifest.version} (${model.dir}) on ${model.providers.join(',')}, decoded by ${ffmpeg.path}`,
    async run(file) {
      try {
        return await runClipLocally(model, ffmpeg.path, file, config.video.maxVideoSeconds);
      } catch (error) {
        // The server would answer 422/500 and the validator score 0: record it, keep going.
        return { predictions: [], processingTimeS: 0, error: (error as Error).message };
      }
    },
    close: () => model.release(),
  };
}

/** How a running miner is challenged: its base URL and the validator key (lib/protocol/validator-client.ts). */
export type UrlTarget = Pick<ChallengeOptions, 'url' | 'scheme' | 'uri' | 'wallet' | 'hotkey' | 'walletPath' | 'minerHotkey' | 'timeoutS'>;

/** Each clip served on loopback and POSTed to the miner, signed like the validator; a refused clip scores 0. */
export function urlRunner(target: UrlTarget, env: Env): Runner {
  return {
    describe: `miner ${target.url} (scheme ${target.scheme})`,
    async run(file) {
      const options: ChallengeOptions = { ...target, file, wrap: false, challengeId: newChallengeId(), json: true };
      const quiet = () => {};
      const result = await challenge(options, env, { out: quiet, err: quiet });
      if (!result.ok)
        return {
          predictions: [],
          processingTimeS: result.processing_time_s ?? result.wall_s,
          error: `${result.cause} (next: ${result.next})`,
        };
      return { predictions: result.predictions as Prediction[], processingTimeS: result.processing_time_s ?? result.wall_s };
    },
    close: async () => {},
  };
}

// ---------------------------------------------------------------------------------------------------------
// Scoring a clip set

export interface ClipResult {
  clip: LabelledClip;
  run: ClipRun;
  metrics: ClipMetrics;
}

export interface Evaluation {
  results: ClipResult[];
  summary: Summary;
  /** Sum of the clips' processing times. */
  totalTimeS: number;
  /** The clips that failed (each scored 0, as with the validator). */
  failed: ClipResult[];
}

/** Every clip through `runner`, scored with the validator's formula; one progress line per clip on `progress`. */
export async function evaluateClips(clips: readonly LabelledClip[], runner: Runner, progress: (line: string) => void): Promise<Evaluation> {
  const results: ClipResult[] = [];
  const started = performance.now();
  for (const [i, clip] of clips.entries()) {
    const run = await runner.run(path.join(clip.dir, clip.video));
    const metrics = clipMetrics(run.predictions, clip.parsed.events);
    results.push({ clip, run, metrics });
    const elapsed = (performance.now() - started) / 1000;
    if (runner.deadlineS !== undefined && run.processingTimeS > runner.deadlineS)
      progress(
        `warning: ${clip.name} took ${run.processingTimeS.toFixed(1)} s, over CHALLENGE_DEADLINE_S (${runner.deadlineS} s): the server would answer with the part inferred by then`,
      );
    progress(
      `[${i + 1}/${clips.length}] ${clip.name}: ${run.error ? `failed (${run.error})` : `score ${metrics.score.toFixed(4)}`}  ${run.processingTimeS.toFixed(2)} s  (elapsed ${elapsed.toFixed(1)} s)`,
    );
  }
  return {
    results,
    summary: summarise(results.map((r) => r.metrics)),
    totalTimeS: results.reduce((sum, r) => sum + r.run.processingTimeS, 0),
    failed: results.filter((r) => r.run.error),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Tuning

/** Thresholds and NMS windows tuned on the local run's pre-threshold scores, k-fold cross-validated. */
export function tune(evaluation: Evaluation, model: Model, folds: number, progress: (line: string) => void): TuningReport {
  const { failed, results } = evaluation;
  if (failed.length > 0)
    throw new MinerError(`cannot tune: ${failed.length} clip(s) failed (${failed.map((r) => r.clip.name).join(', ')})`, {
      hint: 'fix or remove those clips, then tune again',
    });
  const { manifest } = model;
  const tuningClips: TuningClip[] = results.map(({ clip, run }) => ({
    name: clip.name,
    scores: run.raw!.scores,
    frames: run.raw!.frames,
    displacement: run.raw!.displacement,
    truth: clip.parsed.events,
  }));
  progress(`tuning: ${manifest.classes.filter((c) => c.action).length} score column(s), ${results.length} clips, ${folds} fold(s)`);
  return tuneWithCrossValidation(
    tuningClips,
    {
      fps: manifest.timing.fps,
      classes: manifest.classes.map((c) => c.action),
      start: { thresholds: manifest.postprocess.thresholds, nmsWindowS: manifest.postprocess.nmsWindowS },
    },
    folds,
  );
}

/** The model's model.json with the tuned values merged into its postprocess block, checked as a manifest. */
export async function tunedManifest(modelDir: string, t: TuningReport, target: string): Promise<string> {
  const source = path.join(modelDir, MANIFEST_FILE);
  const json = JSON.parse(await readFile(source, 'utf8')) as Record<string, unknown>;
  const old = (json.postprocess ?? {}) as Record<string, unknown>;
  const note = `tasks/eval.ts --tune on ${t.clips} clips, ${t.folds}-fold: mean score ${t.before.toFixed(4)} -> ${t.inSample.toFixed(4)} in-sample${t.outOfSample === null ? '' : `, ${t.outOfSample.toFixed(4)} out-of-sample`}`;
  json.postprocess = {
    ...old,
    _tuned: note,
    thresholds: { ...((old.thresholds as object | undefined) ?? {}), ...t.params.thresholds },
    nmsWindowS: { ...((old.nmsWindowS as object | undefined) ?? {}), ...t.params.nmsWindowS },
  };
  parseManifest(json, target); // the server must accept what is written
  return `${JSON.stringify(json, null, 2)}\n`;
}

/** Write the tuned model.json to `target` (atomically: a killed write leaves the old file). */
export async function writeTunedManifest(modelDir: string, t: TuningReport, target: string): Promise<void> {
  await writeFileAtomic(target, await tunedManifest(modelDir, t, target));
}
