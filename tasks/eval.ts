#!/usr/bin/env -S npx tsx
/**
 * Score a model on the miner's own labelled clips with the validator's formula, and tune its post-processing.
 *
 * Local (default): the model folder the server would load (--model, else MODEL_DIR), the server's decode
 * (decodeClips with the model's decode spec and MAX_VIDEO_SECONDS) and its ClipScorer (window averaging and
 * post-processing from model.json), so the predictions are the ones /challenge answers for the same clip.
 * --url: the clips are sent to a running miner instead, signed like the validator (lib/protocol/validator-client.ts).
 * --tune: per-action thresholds and NMS windows searched on the pre-threshold scores, k-fold cross-validated
 * (lib/inference/tuning.ts), written as the postprocess block of a new model.json.
 *
 *   node tasks/eval.ts --clips data/clips
 *   node tasks/eval.ts --clips data/sn --label-map data/sn-map.json --report out/eval --tune --folds 5
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Env } from '../lib/core/config.ts';
import { renderReport } from '../lib/core/report-html.ts';
import { defineTask, type FlagSpec, type FlagValues, runIfEntryPoint, type TaskDeps, UsageError } from '../lib/core/task.ts';
import { baseUrlFlag } from '../lib/core/url-flag.ts';
import {
  DEFAULT_FOLDS,
  type Evaluation,
  evaluateClips,
  loadLabelledClips,
  localRunner,
  type Runner,
  tune,
  urlRunner,
  writeTunedManifest,
} from '../lib/eval/evaluate.ts';
import { evaluationJson, printText, printTuning, reportData } from '../lib/eval/format.ts';
import { MANIFEST_FILE } from '../lib/inference/manifest.ts';
import type { Model } from '../lib/inference/model.ts';
import type { TuningReport } from '../lib/inference/tuning.ts';
import { parseScheme, SIGNING_FLAGS } from '../lib/protocol/validator-client.ts';

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

/** --url and the signing flags as the miner to challenge. */
function urlTarget(flags: Flags, env: Env): Runner {
  const timeoutS = flags.timeout === undefined ? 30 : Number(flags.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0)
    throw new UsageError(`--timeout must be a number of seconds (got ${JSON.stringify(flags.timeout)})`);
  const target = {
    url: baseUrlFlag('url', flags.url as string),
    scheme: parseScheme(flags.scheme),
    uri: flags.uri || undefined,
    wallet: flags.wallet || undefined,
    hotkey: flags.hotkey || undefined,
    walletPath: flags['wallet-path'] || undefined,
    minerHotkey: flags['miner-hotkey'] || undefined,
    timeoutS,
  };
  return urlRunner(target, env);
}

/** --tune: tune, write the model.json (--out, --write or model.tuned.json); the report and where it went. */
async function tuneAndWrite(
  flags: Flags,
  evaluation: Evaluation,
  model: Model,
  folds: number,
  err: (line: string) => void,
): Promise<{ tuning: TuningReport; written: string }> {
  const tuning = tune(evaluation, model, folds, err);
  const target = flags.write ? path.join(model.dir, MANIFEST_FILE) : path.resolve(flags.out ?? path.join(model.dir, 'model.tuned.json'));
  await writeTunedManifest(model.dir, tuning, target);
  return { tuning, written: target };
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

    const runner = flags.url ? urlTarget(flags, env) : await localRunner(flags.model ? path.resolve(flags.model) : undefined, env);
    let evaluation: Evaluation;
    try {
      evaluation = await evaluateClips(clips, runner, err);
    } finally {
      await runner.close();
    }
    const { results, summary, totalTimeS, failed } = evaluation;

    const tuned = flags.tune
      ? await tuneAndWrite(
          flags,
          evaluation,
          (runner as Runner & { model: Model }).model,
          foldsFlag ?? Math.min(DEFAULT_FOLDS, clips.length),
          err,
        )
      : undefined;

    let reportFile: string | undefined;
    if (flags.report) {
      const dir = path.resolve(flags.report);
      await mkdir(dir, { recursive: true });
      reportFile = path.join(dir, 'index.html');
      await writeFile(reportFile, renderReport(reportData(runner.describe, results, summary, totalTimeS, tuned?.tuning)));
    }

    if (flags.json) {
      const context = { source: flags.url ? ('url' as const) : ('local' as const), describe: runner.describe, clipsDir, labelMap };
      out(JSON.stringify(evaluationJson(evaluation, context, { ...tuned, reportFile })));
    } else {
      printText(out, runner.describe, results, summary, totalTimeS);
      if (tuned) {
        printTuning(out, tuned.tuning);
        out(
          `wrote ${tuned.written} (the postprocess block${flags.write ? ', in place' : `; to use it, copy it over model.json or merge its postprocess block`})`,
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
