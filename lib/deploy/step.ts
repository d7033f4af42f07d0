/**
 * What every deploy step does around its own story: print the headline, hold the deploy lock (its own when run
 * alone; the deploy's when tasks/deploy.ts runs it inside a deploy), time it, print one result line, and record
 * the result for the deploy summary — a failure too, before the error goes on to the task's one-line cause.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { describeError } from '../core/errors.ts';
import { acquireLock, newOwner, releaseLock } from './lock.ts';
import { headline, resultLine } from './report.ts';
import type { StepName, StepRecord } from './state.ts';

/** The deploy a step runs inside: it already holds the lock and keeps the step's record for its summary. */
export interface DeployRecorder {
  record(record: StepRecord, tag?: string): Promise<void>;
}

// tasks/deploy.ts runs the steps in-process; the deploy in progress travels with the async call chain of the
// step's `main`, so a step's own code and its `main(argv, deps)` stay the same whether run alone or by the deploy.
const currentDeploy = new AsyncLocalStorage<DeployRecorder>();

/** Run `body` (a step's `main`) as part of `deploy`: runStep records into it instead of taking the lock. */
export function insideDeploy<T>(deploy: DeployRecorder, body: () => Promise<T>): Promise<T> {
  return currentDeploy.run(deploy, body);
}

// What running steps must undo when a signal stops the process (a rehearsal's container on the engine): the
// deploy's signal handler (lib/deploy/pipeline.ts), or runStep's for a step run alone, runs it first.
const undoers = new Set<() => Promise<void>>();
let stoppingBy: NodeJS.Signals | undefined;

/** Register `undo` to run if a signal stops the process; returns the function that forgets it. */
export function undoOnSignal(undo: () => Promise<void>): () => void {
  undoers.add(undo);
  return () => undoers.delete(undo);
}

/** A signal came: run every registered undo once (their failures dropped: the process is ending anyway). */
export async function undoAll(signal: NodeJS.Signals): Promise<void> {
  stoppingBy = signal;
  const pending = [...undoers];
  undoers.clear();
  await Promise.allSettled(pending.map((undo) => undo()));
}

/**
 * Once a signal came, the step's own flow waits here for the end instead of going on: what it would record now
 * (a rehearsal whose container was just removed) would be a failure of the cleanup, not of the image.
 */
export async function holdIfStopping(): Promise<void> {
  if (stoppingBy) await new Promise<never>(() => undefined);
}

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface StepContext {
  step: StepName;
  /** The folder of the deploy lock this step takes when run alone (lib/deploy/engine.ts lockHome). */
  lockHome: string;
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
  const { step, lockHome, out } = context;
  const deploy = currentDeploy.getStore();
  const ownId = `${step}-${process.pid}`;
  // Run alone, a signal undoes what the step left running and releases its lock, then ends the process by it.
  const stop = (signal: NodeJS.Signals) => {
    void undoAll(signal)
      .then(() => releaseLock(lockHome, ownId))
      .finally(() => process.kill(process.pid, signal));
  };
  if (!deploy) {
    await acquireLock(lockHome, newOwner(ownId, process.pid, `tasks/${step}.ts`));
    for (const signal of STOP_SIGNALS) process.once(signal, stop);
  }
  out(headline(step, what));
  const started = performance.now();
  const record = async (outcome: Omit<StepRecord, 'step' | 'seconds'>) => {
    const full: StepRecord = { step, seconds: (performance.now() - started) / 1000, ...outcome };
    await deploy?.record(full, context.tag);
    return full;
  };
  try {
    const outcome = await body();
    out(resultLine(await record({ result: outcome.result ?? 'ok', produced: outcome.produced })));
    return outcome;
  } catch (error) {
    out(resultLine(await record({ result: 'failed', produced: errorCause(describeError(error)) })));
    throw error;
  } finally {
    if (!deploy) {
      for (const signal of STOP_SIGNALS) process.off(signal, stop);
      await releaseLock(lockHome, ownId);
    }
  }
}

/** describeError's text -> its cause alone: the first line without "error: ". */
export function errorCause(described: string): string {
  return described.split('\n')[0].replace(/^error: /, '');
}
