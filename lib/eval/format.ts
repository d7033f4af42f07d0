/**
 * What tasks/eval.ts shows of an evaluation: the text tables, the JSON object (--json) and the HTML report's data.
 */
import path from 'node:path';
import type { ReportData } from '../core/report-html.ts';
import type { TuningReport } from '../inference/tuning.ts';
import type { ActionName } from '../protocol/actions.ts';
import type { LabelMap } from '../protocol/labels.ts';
import type { ActionMetrics, Summary } from '../protocol/metrics.ts';
import type { ClipResult, Evaluation } from './evaluate.ts';

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

export function tuningJson(t: TuningReport, written: string | undefined) {
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

export function printText(
  out: (line: string) => void,
  describe: string,
  results: ClipResult[],
  summary: Summary,
  totalTimeS: number,
): void {
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

export function printTuning(out: (line: string) => void, t: TuningReport): void {
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

export function reportData(
  describe: string,
  results: ClipResult[],
  summary: Summary,
  totalTimeS: number,
  tuning?: TuningReport,
): ReportData {
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

/** The --json object. */
export function evaluationJson(
  e: Evaluation,
  context: { source: 'url' | 'local'; describe: string; clipsDir: string; labelMap?: LabelMap },
  extra: { tuning?: TuningReport; written?: string; reportFile?: string },
) {
  const { results, summary, totalTimeS } = e;
  return {
    ok: e.failed.length === 0,
    source: context.source,
    describe: context.describe,
    clips_dir: context.clipsDir,
    label_map: context.labelMap?.file ?? null,
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
    ...(extra.tuning ? { tuning: tuningJson(extra.tuning, extra.written) } : {}),
    ...(extra.reportFile ? { report: extra.reportFile } : {}),
  };
}
