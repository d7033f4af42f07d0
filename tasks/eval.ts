#!/usr/bin/env -S npx tsx
/**
 * Score a model on the miner's own labelled clips with the validator's formula, and tune its post-processing.
 *
 * Local (default): the model folder the server would load (--model, else MODEL_DIR), the server's decode
 * (decodeClips with the model's decode spec and MAX_VIDEO_SECONDS) and its ClipScorer (window averaging and
 * post-processing from model.json), so the predictions are the ones /challenge answers for the same clip.
 * --url: the clips are sent to a running miner instead, signed like the validator (tasks/challenge.ts).
 * --tune: per-action thresholds and NMS windows searched on the pre-threshold scores, k-fold cross-validated
 * (lib/inference/tuning.ts), written as the postprocess block of a new model.json.
 *
 *   node tasks/eval.ts --clips data/clips
 *   node tasks/eval.ts --clips data/sn --label-map data/sn-map.json --report out/eval --tune --folds 5
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Env, loadConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { type ReportData, renderReport } from '../lib/core/report-html.ts';
import { defineTask, type FlagSpec, type FlagValues, runIfEntryPoint, type TaskDeps, UsageError } from '../lib/core/task.ts';
import { baseUrlFlag } from '../lib/core/url-flag.ts';
import { MANIFEST_FILE, parseManifest } from '../lib/inference/manifest.ts';
import { loadModel, type Model } from '../lib/inference/model.ts';
import { ClipScorer, decodeSpecOf } from '../lib/inference/pipeline.ts';
import { type TuningClip, type TuningReport, tuneWithCrossValidation } from '../lib/inference/tuning.ts';
import type { ActionName } from '../lib/protocol/actions.ts';
import {
  type ClipEntry,
  type ClipLabels,
  LabelError,
  type LabelMap,
  type LabelProblem,
  pairClips,
  parseLabelMap,
  parseLabels,
} from '../lib/protocol/labels.ts';
import { type ActionMetrics, type ClipMetrics, clipMetrics, type Summary, summarise } from '../lib/protocol/metrics.ts';
import type { Prediction } from '../lib/protocol/scoring.ts';
import { type ChallengeOptions, challenge, newChallengeId, parseScheme, SIGNING_FLAGS } from '../lib/protocol/validator-client.ts';
import { resolveFfmpeg } from '../lib/video/ffmpeg.ts';
import { decodeClips } from '../lib/video/frames.ts';

const DEFAULT_FOLDS = 5;

const HELP = `Usage: node tasks/eval.ts --clips DIR [options]

Score a model on your own labelled clips with Score's validator formula: per clip and overall, the score,
matched / missed / false positives per action, the mean decay of the matches and the processing time.

Clips:
  --clips DIR           folder of <name>.mp4, each with one label file beside it:
                          <name>.json                Score's shape [{"frame": 75, "action": "goal"}] (25 fps)
                          <name>.json, <name>.Labels-v2.json or <name>.Labels-ball.json
                                                     SoccerNet's {"annotations": [{"gameTime": "1 - 00:03",
                                                     "label": "GOAL", "position": "3000"}]} (position in ms)
  --label-map FILE      SoccerNet label -> Score action, e.g. {"GOAL": "goal", "PASS": "pass", "DRIVE": null}
                        (null: ignore the label); every label used must be in it
Model (local, the default: the server's decode, model and post-processing):
  --model DIR           model folder (default MODEL_DIR, else models/default); ORT_PROVIDERS, ORT_THREADS,
                        FFMPEG_PATH and MAX_VIDEO_SECONDS apply as for the server. No deadline: a clip slower
                        than CHALLENGE_DEADLINE_S is flagged (the server would answer with part of it)
Or a running miner:
  --url URL             POST each clip to URL/challenge (served on a loopback file server: the miner must run
                        on this machine), signed like the validator
  --scheme S            central (default) | fiber | none
  --uri URI | --wallet NAME --hotkey NAME [--wallet-path DIR]   the validator key (see tasks/challenge.ts)
  --miner-hotkey SS58   for --scheme fiber (default: the miner's /health)
  --timeout S           per clip (default 30)
Output:
  --report DIR          write DIR/index.html: a self-contained page with the charts (score per clip; matched,
                        missed and false positives per action) and the tables
  --json                one JSON object on stdout (progress stays on stderr)
Tuning (local only):
  --tune                search per-action thresholds, then NMS windows, for the best mean score (coordinate
                        ascent over a grid, on the pre-threshold scores); report before/after per action,
                        in-sample and out-of-sample
  --folds K             k-fold cross-validation, clips in name order, clip i in fold i mod K (default ${DEFAULT_FOLDS},
                        or the number of clips if fewer; 1 = no out-of-sample estimate)
  --out FILE            write the tuned model.json there (default <model>/model.tuned.json)
  --write               update <model>/model.json in place instead
  --verbose             debug logging and stack traces on failure
  -h, --help            this text

Exit status: 0 when every clip was evaluated, 1 when a clip failed (it scores 0, as with the validator) or a
label is bad (each named with file, line and JSON path), 2 for a wrong command line.`;

const FLAGS = {
  clips: { type: 'string' },
  'label-map': { type: 'string' },
  model: { type: 'string' },
  url: { type: 'string' },
  ...SIGNING_FLAGS,
  timeout: { type: 'string' },
  report: { type: 'string' },
  tune: { type: 'boolean' },
  folds: { type: 'string' },
  out: { type: 'string' },
  write: { type: 'boolean' },
} satisfies FlagSpec;

type Flags = FlagValues<typeof FLAGS> & { json: boolean };

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

interface Runner {
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

async function localRunner(modelDir: string | undefined, env: Env): Promise<Runner & { model: Model }> {
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

function urlRunner(flags: Flags, env: Env): Runner {
  const url = baseUrlFlag('url', flags.url as string);
  const scheme = parseScheme(flags.scheme);
  const timeoutS = flags.timeout === undefined ? 30 : Number(flags.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0)
    throw new UsageError(`--timeout must be a number of seconds (got ${JSON.stringify(flags.timeout)})`);
  return {
    describe: `miner ${url} (scheme ${scheme})`,
    async run(file) {
      const options: ChallengeOptions = {
        url,
        file,
        scheme,
        uri: flags.uri || undefined,
        wallet: flags.wallet || undefined,
        hotkey: flags.hotkey || undefined,
        walletPath: flags['wallet-path'] || undefined,
        wrap: false,
        minerHotkey: flags['miner-hotkey'] || undefined,
        challengeId: newChallengeId(),
        timeoutS,
        json: true,
      };
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
// Output

interface ClipResult {
  clip: LabelledClip;
  run: ClipRun;
  metrics: ClipMetrics;
}

function actionsJson(actions: Partial<Record<ActionName, ActionMetrics>>) {
  return Object.fromEntries(
    Object.entries(actions).map(([action, a]) => [
      action,
      {
        truth: a.truth,
        predicted: a.predicted,
        matched: a.matched,
        missed: a.missed,
        false_positives: a.falsePositives,
        mean_decay: a.meanDecay,
        share: a.share,
      },
    ]),
  );
}

function tuningJson(t: TuningReport, written: string | undefined) {
  return {
    clips: t.clips,
    folds: t.folds,
    rounds: t.rounds,
    mean_score: { before: t.before, in_sample: t.inSample, out_of_sample: t.outOfSample },
    actions: t.actions.map((a) => ({
      action: a.action,
      threshold: { before: a.before.threshold, after: a.after.threshold },
      nms_window_s: { before: a.before.nmsWindowS, after: a.after.nmsWindowS },
      share: { before: a.shareBefore, in_sample: a.shareInSample, out_of_sample: a.shareOutOfSample },
    })),
    per_fold: t.perFold.map((f) => ({
      fold: f.fold,
      clips: f.clips,
      train_score: f.trainScore,
      test_score: f.testScore,
      params: f.params,
    })),
    per_clip: t.perClip.map((c) => ({ name: c.name, before: c.before, in_sample: c.inSample, out_of_sample: c.outOfSample })),
    postprocess: t.params,
    written,
  };
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
const decayText = (d: number | null) => (d === null ? '-' : d.toFixed(3));

function actionTable(actions: Partial<Record<ActionName, ActionMetrics>>, indent: string): string[] {
  const lines = [
    `${indent}${'action'.padEnd(18)}${pad('truth', 6)}${pad('pred', 6)}${pad('matched', 9)}${pad('missed', 8)}${pad('fp', 5)}${pad('mean decay', 12)}${pad('share', 9)}`,
  ];
  for (const [action, a] of Object.entries(actions) as [ActionName, ActionMetrics][]) {
    lines.push(
      `${indent}${action.padEnd(18)}${pad(a.truth, 6)}${pad(a.predicted, 6)}${pad(a.matched, 9)}${pad(a.missed, 8)}${pad(a.falsePositives, 5)}${pad(decayText(a.meanDecay), 12)}${pad((a.share >= 0 ? '+' : '') + a.share.toFixed(3), 9)}`,
    );
  }
  return lines;
}

function printText(out: (line: string) => void, describe: string, results: ClipResult[], summary: Summary, totalTimeS: number): void {
  out(`${results.length} clip${results.length === 1 ? '' : 's'}, ${describe}`);
  for (const { clip, run, metrics } of results) {
    out('');
    out(
      `${clip.name}  score ${metrics.score.toFixed(4)}  time ${run.processingTimeS.toFixed(2)} s  matched ${metrics.matched}  missed ${metrics.missed}  fp ${metrics.falsePositives}  mean decay ${decayText(metrics.meanDecay)}`,
    );
    if (run.error) out(`  error: ${run.error} (scored 0, as the validator would)`);
    for (const line of actionTable(metrics.actions, '  ')) out(line);
  }
  out('');
  out(
    `overall  mean score ${summary.meanScore.toFixed(4)} over ${summary.clips} clip${summary.clips === 1 ? '' : 's'}  time ${totalTimeS.toFixed(2)} s  matched ${summary.matched}  missed ${summary.missed}  fp ${summary.falsePositives}  mean decay ${decayText(summary.meanDecay)}`,
  );
  for (const line of actionTable(summary.actions, '  ')) out(line);
}

function printTuning(out: (line: string) => void, t: TuningReport): void {
  out('');
  out(
    `tuning on ${t.clips} clip${t.clips === 1 ? '' : 's'}, ${t.folds >= 2 ? `${t.folds}-fold cross-validation (clips in name order, clip i in fold i mod ${t.folds})` : 'no cross-validation (1 fold)'}, ${t.rounds} round${t.rounds === 1 ? '' : 's'}`,
  );
  out(
    `  ${'action'.padEnd(18)}${'threshold'.padEnd(18)}${'NMS window'.padEnd(18)}${pad('share before', 13)}${pad('in-sample', 11)}${pad('out-of-sample', 15)}`,
  );
  const sign = (n: number | null) => (n === null ? '-' : (n >= 0 ? '+' : '') + n.toFixed(3));
  for (const a of t.actions) {
    out(
      `  ${a.action.padEnd(18)}${`${a.before.threshold.toFixed(3)} -> ${a.after.threshold.toFixed(3)}`.padEnd(18)}${`${a.before.nmsWindowS} s -> ${a.after.nmsWindowS} s`.padEnd(18)}${pad(sign(a.shareBefore), 13)}${pad(sign(a.shareInSample), 11)}${pad(sign(a.shareOutOfSample), 15)}`,
    );
  }
  out(
    `  ${'mean score'.padEnd(18)}${`${t.before.toFixed(4)} (model values)`.padEnd(36)}${pad(t.inSample.toFixed(4), 24)}${pad(t.outOfSample === null ? '-' : t.outOfSample.toFixed(4), 15)}`,
  );
  if (t.outOfSample !== null) {
    const gain = t.outOfSample - t.before;
    out(
      `  out-of-sample gain ${(gain >= 0 ? '+' : '') + gain.toFixed(4)} (the in-sample gain ${(t.inSample - t.before >= 0 ? '+' : '') + (t.inSample - t.before).toFixed(4)} is optimistic)`,
    );
  }
}

function reportData(describe: string, results: ClipResult[], summary: Summary, totalTimeS: number, tuning?: TuningReport): ReportData {
  return {
    title: 'score-miner evaluation',
    subtitle: describe,
    meanScore: summary.meanScore,
    meanDecay: summary.meanDecay,
    processingTimeS: totalTimeS,
    clips: results.map(({ clip, run, metrics }) => ({
      name: clip.name,
      score: metrics.score,
      processingTimeS: run.processingTimeS,
      matched: metrics.matched,
      missed: metrics.missed,
      falsePositives: metrics.falsePositives,
      meanDecay: metrics.meanDecay,
      error: run.error,
    })),
    actions: (Object.entries(summary.actions) as [ActionName, ActionMetrics][]).map(([action, a]) => ({ action, ...a })),
    tuning: tuning && {
      folds: tuning.folds,
      before: tuning.before,
      inSample: tuning.inSample,
      outOfSample: tuning.outOfSample,
      actions: tuning.actions,
    },
  };
}

/** The model's model.json with the tuned values merged into its postprocess block, checked as a manifest. */
async function tunedManifest(modelDir: string, t: TuningReport, target: string): Promise<string> {
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

// ---------------------------------------------------------------------------------------------------------

function checkFlags(flags: Flags): { folds?: number } {
  if (!flags.clips) throw new UsageError('--clips DIR is required: a folder of <name>.mp4 with labels beside each');
  const urlOnly = (['scheme', 'uri', 'wallet', 'hotkey', 'wallet-path', 'miner-hotkey', 'timeout'] as const).filter(
    (f) => flags[f] !== undefined,
  );
  if (!flags.url && urlOnly.length > 0) throw new UsageError(`--${urlOnly[0]} is for --url (evaluating a running miner)`);
  if (flags.url && flags.model) throw new UsageError('--model is for local evaluation: with --url the miner uses its own model');
  if (flags.url && flags.tune) throw new UsageError('--tune needs the pre-threshold scores, which only a local run has: drop --url');
  const tuneOnly = (['folds', 'out'] as const).filter((f) => flags[f] !== undefined);
  if (!flags.tune && (tuneOnly.length > 0 || flags.write)) throw new UsageError(`--${tuneOnly[0] ?? 'write'} is for --tune`);
  if (flags.out && flags.write) throw new UsageError('pass --out FILE or --write, not both');
  if (flags.folds === undefined) return {};
  const folds = Number(flags.folds);
  if (!Number.isInteger(folds) || folds < 1)
    throw new UsageError(`--folds must be a whole number >= 1 (got ${JSON.stringify(flags.folds)})`);
  return { folds };
}

export const main = defineTask<typeof FLAGS, TaskDeps>({
  usage: HELP,
  flags: FLAGS,
  json: true,
  async run({ flags, env, out, err }) {
    const { folds: foldsFlag } = checkFlags(flags);
    const clipsDir = path.resolve(flags.clips as string);
    const { clips, labelMap } = await loadLabelledClips(clipsDir, flags['label-map'] ? path.resolve(flags['label-map']) : undefined);
    if (foldsFlag !== undefined && foldsFlag > clips.length)
      throw new UsageError(`--folds ${foldsFlag} is more than the ${clips.length} clip${clips.length === 1 ? '' : 's'} in ${clipsDir}`);

    const modelDir = flags.model ? path.resolve(flags.model) : undefined;
    const runner = flags.url ? urlRunner(flags, env) : await localRunner(modelDir, env);
    const results: ClipResult[] = [];
    const started = performance.now();
    try {
      for (const [i, clip] of clips.entries()) {
        const run = await runner.run(path.join(clip.dir, clip.video));
        const metrics = clipMetrics(run.predictions, clip.parsed.events);
        results.push({ clip, run, metrics });
        const elapsed = (performance.now() - started) / 1000;
        if (runner.deadlineS !== undefined && run.processingTimeS > runner.deadlineS)
          err(
            `warning: ${clip.name} took ${run.processingTimeS.toFixed(1)} s, over CHALLENGE_DEADLINE_S (${runner.deadlineS} s): the server would answer with the part inferred by then`,
          );
        err(
          `[${i + 1}/${clips.length}] ${clip.name}: ${run.error ? `failed (${run.error})` : `score ${metrics.score.toFixed(4)}`}  ${run.processingTimeS.toFixed(2)} s  (elapsed ${elapsed.toFixed(1)} s)`,
        );
      }
    } finally {
      await runner.close();
    }
    const totalTimeS = results.reduce((sum, r) => sum + r.run.processingTimeS, 0);
    const summary = summarise(results.map((r) => r.metrics));
    const failed = results.filter((r) => r.run.error);

    let tuning: TuningReport | undefined;
    let written: string | undefined;
    if (flags.tune) {
      if (failed.length > 0)
        throw new MinerError(`cannot tune: ${failed.length} clip(s) failed (${failed.map((r) => r.clip.name).join(', ')})`, {
          hint: 'fix or remove those clips, then tune again',
        });
      const model = (runner as Runner & { model: Model }).model;
      const { manifest } = model;
      const folds = foldsFlag ?? Math.min(DEFAULT_FOLDS, clips.length);
      const tuningClips: TuningClip[] = results.map(({ clip, run }) => ({
        name: clip.name,
        scores: run.raw!.scores,
        frames: run.raw!.frames,
        displacement: run.raw!.displacement,
        truth: clip.parsed.events,
      }));
      err(`tuning: ${manifest.classes.filter((c) => c.action).length} score column(s), ${clips.length} clips, ${folds} fold(s)`);
      tuning = tuneWithCrossValidation(
        tuningClips,
        {
          fps: manifest.timing.fps,
          classes: manifest.classes.map((c) => c.action),
          start: { thresholds: manifest.postprocess.thresholds, nmsWindowS: manifest.postprocess.nmsWindowS },
        },
        folds,
      );
      const target = flags.write
        ? path.join(model.dir, MANIFEST_FILE)
        : path.resolve(flags.out ?? path.join(model.dir, 'model.tuned.json'));
      const text = await tunedManifest(model.dir, tuning, target);
      await mkdir(path.dirname(target), { recursive: true });
      const temp = `${target}.${process.pid}.tmp`;
      await writeFile(temp, text);
      await rename(temp, target);
      written = target;
    }

    let reportFile: string | undefined;
    if (flags.report) {
      const dir = path.resolve(flags.report);
      await mkdir(dir, { recursive: true });
      reportFile = path.join(dir, 'index.html');
      await writeFile(reportFile, renderReport(reportData(runner.describe, results, summary, totalTimeS, tuning)));
    }

    if (flags.json) {
      out(
        JSON.stringify({
          ok: failed.length === 0,
          source: flags.url ? 'url' : 'local',
          describe: runner.describe,
          clips_dir: clipsDir,
          label_map: labelMap?.file ?? null,
          clips: results.map(({ clip, run, metrics }) => ({
            name: clip.name,
            video: path.join(clip.dir, clip.video),
            labels: path.join(clip.dir, clip.labels),
            format: clip.parsed.format,
            ignored_labels: clip.parsed.ignored,
            truth: clip.parsed.events,
            predictions: run.predictions,
            score: metrics.score,
            raw_score: metrics.rawScore,
            processing_time_s: run.processingTimeS,
            matched: metrics.matched,
            missed: metrics.missed,
            false_positives: metrics.falsePositives,
            mean_decay: metrics.meanDecay,
            actions: actionsJson(metrics.actions),
            ...(run.error ? { error: run.error } : {}),
          })),
          overall: {
            clips: summary.clips,
            mean_score: summary.meanScore,
            processing_time_s: totalTimeS,
            matched: summary.matched,
            missed: summary.missed,
            false_positives: summary.falsePositives,
            mean_decay: summary.meanDecay,
            actions: actionsJson(summary.actions),
          },
          ...(tuning ? { tuning: tuningJson(tuning, written) } : {}),
          ...(reportFile ? { report: reportFile } : {}),
        }),
      );
    } else {
      printText(out, runner.describe, results, summary, totalTimeS);
      if (tuning) {
        printTuning(out, tuning);
        out(
          `wrote ${written} (the postprocess block${flags.write ? ', in place' : `; to use it, copy it over model.json or merge its postprocess block`})`,
        );
      }
      if (reportFile) out(`report: ${reportFile}`);
      if (failed.length > 0)
        err(`error: ${failed.length} clip(s) failed: ${failed.map((r) => r.clip.name).join(', ')}\n  next: read the causes above`);
    }
    return failed.length > 0 ? 1 : 0;
  },
});

runIfEntryPoint(import.meta.url, main);
