/**
 * What every deploy step does around its own story: print the headline, hold the deploy lock (its own when run
 * alone, the deploy's when `just deploy` passes DEPLOY_RUN), time it, print one result line, and record the
 * result for the deploy summary — a failure too, before the error goes on to the task's one-line cause.
 */
import { describeError } from '../core/errors.ts';
import { acquireLock, appendRecord, newOwner, readRun, releaseLock } from './lock.ts';
import { headline, resultLine } from './report.ts';
import type { StepName, StepRecord } from './state.ts';

export interface StepContext {
  step: StepName;
  stateDir: string;
  env: Record<string, string | undefined>;
  out: (line: string) => void;
  tag?: string;
}

export interface StepOutcome {
  /** What the step produced, in a few words (an image id, a digest, a block). */
  produced: string;
  /** `skipped`: the work was already done (a rerun) and nothing changed. */
  result?: 'ok' | 'skipped' | 'manual';
}

export async function runStep(context: StepContext, what: string, body: () => Promise<StepOutcome>): Promise<StepOutcome> {
  const { step, stateDir, env, out } = context;
  const deployRun = env.DEPLOY_RUN;
  const insideDeploy = deployRun !== undefined && readRun(stateDir)?.owner.id === deployRun;
  const ownId = `${step}-${process.pid}`;
  if (!insideDeploy) await acquireLock(stateDir, newOwner(ownId, process.pid, `tasks/${step}.ts`));
  out(headline(step, what));
  const started = performance.now();
  const record = async (outcome: Omit<StepRecord, 'step' | 'seconds'>) => {
    const full: StepRecord = { step, seconds: (performance.now() - started) / 1000, ...outcome };
    if (insideDeploy && deployRun) await appendRecord(stateDir, deployRun, full, context.tag);
    return full;
  };
  try {
    const outcome = await body();
    out(resultLine(await record({ result: outcome.result ?? 'ok', produced: outcome.produced })));
    return outcome;
  } catch (error) {
    const cause = describeError(error)
      .split('\n')[0]
      .replace(/^error: /, '');
    out(resultLine(await record({ result: 'failed', produced: cause })));
    throw error;
  } finally {
    if (!insideDeploy) await releaseLock(stateDir, ownId);
  }
}
