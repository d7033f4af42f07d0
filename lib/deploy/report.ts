/**
 * How the deploy speaks: a headline when a step starts, one result line when it ends, and after `just deploy`
 * a summary table (step, result, what it produced, time) that is printed on failure too, ending with the exact
 * command that reruns from the failed step. Pure functions returning text; the tasks print it.
 */
import { STEPS, type StepName, type StepRecord } from './state.ts';

export function headline(step: StepName, what: string): string {
  return `==> ${step}: ${what}`;
}

export function resultLine(record: StepRecord): string {
  return `    ${record.result === 'ok' ? 'done' : record.result}: ${record.produced} (${record.seconds.toFixed(1)} s)`;
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

/** The deploy words with `from=` set to the step to resume at (other words kept as given). */
export function rerunCommand(words: readonly string[], from: StepName): string {
  const kept = words.filter((word) => !word.startsWith('from='));
  return ['just', 'deploy', ...kept, ...(from === 'build' ? [] : [`from=${from}`])].join(' ');
}

/** Where the deploy's miner runs: the engine (this machine, or DEPLOY_HOST) and the profile, if any. */
export interface SummaryWhere {
  host: string;
  profile?: string;
}

/**
 * The summary of one `just deploy`: every step in order — what it recorded, or `not run` for the steps after a
 * failure — the total time, and for a failure the command that resumes there.
 */
export function summaryTable(records: readonly StepRecord[], words: readonly string[], where: SummaryWhere): string {
  const byStep = new Map(records.map((record) => [record.step, record]));
  const failed = records.find((record) => record.result === 'failed');
  const rows = STEPS.map((step) => {
    const record = byStep.get(step);
    if (!record) return [step, failed ? 'not run' : 'skipped', '', ''];
    return [step, record.result, record.produced, `${record.seconds.toFixed(1)} s`];
  });
  const header = ['step', 'result', 'produced', 'time'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => pad(cell, widths[column]))
      .join('  ')
      .trimEnd();
  const total = records.reduce((sum, record) => sum + record.seconds, 0);
  const lines = [
    line(header),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.map(line),
    '',
    `miner on ${where.host}${where.profile ? ` (profile ${where.profile})` : ''}; total ${total.toFixed(1)} s`,
  ];
  if (failed)
    lines.push(`deploy failed at ${failed.step}; after fixing the cause, rerun from there:`, `  ${rerunCommand(words, failed.step)}`);
  else lines.push('deploy finished');
  return lines.join('\n');
}
