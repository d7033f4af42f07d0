/**
 * One `just deploy` (tasks/deploy.ts): take the deploy lock for this process, run the planned steps' `main`s in
 * order in this process, keep their records in memory, and in a `finally` print the summary and release the
 * lock — after a failure, a throw or a signal too. The failed step is the one that was running: a step records
 * its own result (lib/deploy/step.ts); one that failed before it could (a missing setting) is named here with
 * the cause it printed.
 */

import { describeError } from '../core/errors.ts';
import type { TaskDeps } from '../core/task.ts';
import { acquireLock, appendRecord, newOwner, releaseLock } from './lock.ts';
import { type SummaryWhere, summaryTable } from './report.ts';
import { STEPS, type StepName, type StepRecord } from './state.ts';
import { type DeployRecorder, errorCause, insideDeploy, STOP_SIGNALS, undoAll } from './step.ts';

/** What `just deploy` will do with each step: run it, or why it is left out. */
export interface DeployPlan {
  tag: string;
  from: StepName;
  steps: { step: StepName; run: boolean; reason?: string }[];
}

/** The deps every step gets: the deploy's own (a provider for commit, say), with its output sinks. */
type StepDeps = TaskDeps & Required<Pick<TaskDeps, 'env' | 'out' | 'err'>>;

export interface DeployOptions<D extends StepDeps> {
  plan: DeployPlan;
  /** The words as given, for the lock's holder and the rerun command. */
  words: string[];
  /** The deploy lock's folder (lib/deploy/engine.ts lockHome: one per engine and container). */
  lockHome: string;
  /** Where the miner runs (the engine's label) and the profile, for the summary. */
  where: SummaryWhere;
  /** Each step's task `main`, run with `--tag TAG` as `node tasks/<step>.ts --tag TAG` would be. */
  mains: Record<StepName, (argv: string[], deps: D) => Promise<number>>;
  deps: D;
  /** Pass --verbose on to each step. */
  verbose?: boolean;
}

/** The steps run, the summary printed and the lock released; resolves to the exit code of the step that failed, else 0. */
export async function runDeploy<D extends StepDeps>(options: DeployOptions<D>): Promise<number> {
  const { plan, words, lockHome, deps } = options;
  const id = `deploy-${process.pid}-${Date.now()}`;
  const { tookOver } = await acquireLock(lockHome, newOwner(id, process.pid, `just deploy ${words.join(' ')}`), words);
  if (tookOver) deps.err(`note: took over the deploy lock left by pid ${tookOver.pid} (no longer running)`);
  const run = deployRun(lockHome, id, plan.tag, options.where);
  // Ctrl-C or a stop: what the running step left on an engine removed, the summary and the lock still, then
  // the signal's own ending.
  const stop = (signal: NodeJS.Signals) => {
    void undoAll(signal)
      .then(() => finish(`interrupted (${signal})`))
      .finally(() => process.kill(process.pid, signal));
  };
  let finished: Promise<void> | undefined;
  const finish = (failure?: string) => {
    finished ??= run.finish(words, deps.out, failure);
    return finished;
  };
  for (const signal of STOP_SIGNALS) process.once(signal, stop);
  try {
    for (const { step, run: runs, reason } of plan.steps) {
      if (!runs) await run.record({ step, result: 'skipped', produced: reason ?? '', seconds: 0 });
    }
    for (const { step } of plan.steps.filter((planned) => planned.run)) {
      const argv = ['--tag', plan.tag, ...(options.verbose ? ['--verbose'] : [])];
      const code = await run.step(step, deps.err, (err) => options.mains[step](argv, { ...deps, err }));
      if (code !== 0) return code;
    }
    return 0;
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, stop);
    await finish();
  }
}

/** The records of one deploy, the step running now, and the summary at the end. */
function deployRun(lockHome: string, id: string, tag: string, where: SummaryWhere) {
  const records: StepRecord[] = [];
  let running: { step: StepName; started: number; cause?: string; code?: number } | undefined;
  const recorder: DeployRecorder = {
    async record(record) {
      records.push(record);
      // a copy in the lock's run.json (last-run.json beside it once released)
      await appendRecord(lockHome, id, record, tag);
    },
  };
  return {
    record: recorder.record,
    /**
     * Run one step's `main` inside the deploy, its errors going on to `err`; the first `error:` it prints is
     * its cause, should it end without a record of its own.
     */
    async step(step: StepName, err: (line: string) => void, main: (err: (line: string) => void) => Promise<number>): Promise<number> {
      const current: NonNullable<typeof running> = { step, started: performance.now() };
      running = current;
      const watched = (line: string) => {
        if (current.cause === undefined && line.startsWith('error: ')) current.cause = errorCause(line);
        err(line);
      };
      try {
        current.code = await insideDeploy(recorder, () => main(watched));
      } catch (error) {
        current.cause ??= errorCause(describeError(error));
        throw error;
      }
      if (current.code === 0) running = undefined;
      return current.code;
    },
    async finish(words: readonly string[], out: (line: string) => void, failure?: string): Promise<void> {
      if (running && !records.some((record) => record.result === 'failed')) {
        const produced = running.cause ?? failure ?? `exited with ${running.code ?? 1} (cause above)`;
        await recorder.record({ step: running.step, result: 'failed', produced, seconds: (performance.now() - running.started) / 1000 });
      }
      out('');
      out(
        summaryTable(
          [...records].sort((a, b) => STEPS.indexOf(a.step) - STEPS.indexOf(b.step)),
          words,
          where,
        ),
      );
      await releaseLock(lockHome, id);
    },
  };
}
