/**
 * `just deploy tag=v1.0.0 [push=false] [share=false] [commit=false] [start=false] [from=STEP]`: checks the words as
 * the miner guide writes them, takes the deploy lock (held by this process), runs the steps in order in this
 * process (each one's `main`, as `node tasks/<step>.ts --tag TAG` would), and prints the summary table — after a
 * failure too, naming the step that failed and the command that reruns from there — then releases the lock.
 *
 * The one task that imports other tasks: the pipeline is the steps' own `main`s, run in order; each step stays
 * a task of its own (`just push`, `node tasks/push.ts`).
 */
import { loadConfig } from '../lib/core/config.ts';
import { describeError, type MinerError } from '../lib/core/errors.ts';
import { type ChainTaskDeps, defineTask, runIfEntryPoint, UsageError } from '../lib/core/task.ts';
import { acquireLock, appendRecord, newOwner, releaseLock } from '../lib/deploy/lock.ts';
import { checkTag } from '../lib/deploy/registry.ts';
import { summaryTable } from '../lib/deploy/report.ts';
import { STEPS, type StepName, type StepRecord } from '../lib/deploy/state.ts';
import { type DeployRecorder, errorCause, insideDeploy } from '../lib/deploy/step.ts';
import { main as build } from './build.ts';
import { main as commit } from './commit.ts';
import { main as push } from './push.ts';
import { main as share } from './share.ts';
import { main as start } from './start.ts';

/** Each step's task, run with `--tag TAG` as `node tasks/<step>.ts --tag TAG` would be. */
const STEP_MAINS: Record<StepName, (argv: string[], deps: ChainTaskDeps) => Promise<number>> = { build, push, share, commit, start };

const USAGE = `usage: just deploy tag=TAG [push=false] [share=false] [commit=false] [start=false] [from=STEP]

Build, push, share, commit and start the miner image, in that order; each step is also a recipe of its own
(just build tag=TAG, ...) and a task (npx tsx tasks/build.ts --tag TAG, ...). Rerunning is safe: finished
work is recognised and skipped. from=STEP resumes at STEP (build, push, share, commit or start).

  tag=TAG          the image tag, e.g. v1.0.0 (required)
  push=false       build only (share and commit need a pushed image: they are left out too unless given as =true)
  share=false      do not add Score's account to the repository
  commit=false     do not publish the commitment on chain
  start=false      do not start the container here
  --verbose        each step shows docker's output and debug logs`;

export interface DeployPlan {
  tag: string;
  from: StepName;
  /** Each step: run it, or why it is left out. */
  steps: { step: StepName; run: boolean; reason?: string }[];
}

/** The deploy words -> what to run. Pure; a wrong word is a UsageError naming it. */
export function planDeploy(words: readonly string[]): DeployPlan {
  const switches: Partial<Record<StepName, boolean>> = {};
  let tag: string | undefined;
  let from: StepName = 'build';
  for (const word of words) {
    const match = /^([a-z]+)=(.*)$/.exec(word);
    if (!match)
      throw new UsageError(`${JSON.stringify(word)} is not NAME=VALUE`, 'write the words as in: just deploy tag=v1.0.0 share=false');
    const [, name, value] = match;
    if (name === 'tag') {
      try {
        tag = checkTag(value);
      } catch (error) {
        throw new UsageError((error as MinerError).message, (error as MinerError).hint);
      }
    } else if (name === 'from') {
      if (!(STEPS as readonly string[]).includes(value))
        throw new UsageError(`from=${value} is not a step`, `use one of ${STEPS.join(', ')}`);
      from = value as StepName;
    } else if ((STEPS as readonly string[]).includes(name) && name !== 'build') {
      if (value !== 'true' && value !== 'false') throw new UsageError(`${name}=${value}: expected ${name}=true or ${name}=false`);
      switches[name as StepName] = value === 'true';
    } else throw new UsageError(`unknown word ${JSON.stringify(word)}`, 'the words are tag=, push=, share=, commit=, start= and from=');
  }
  if (!tag) throw new UsageError('tag= is required', 'e.g. just deploy tag=v1.0.0');
  // Share and commit work on the pushed image: without a push they have nothing new to work on.
  const withoutPush = switches.push === false;
  const steps = STEPS.map((step) => {
    if (STEPS.indexOf(step) < STEPS.indexOf(from)) return { step, run: false, reason: `before from=${from}` };
    if (switches[step] === false) return { step, run: false, reason: `${step}=false` };
    if (withoutPush && (step === 'share' || step === 'commit') && switches[step] !== true)
      return { step, run: false, reason: 'push=false' };
    return { step, run: true };
  });
  return { tag, from, steps };
}

export const main = defineTask<Record<string, never>, ChainTaskDeps>({
  usage: USAGE,
  flags: {},
  positionals: true,
  async run({ flags, env, out, err, deps, positionals: words }) {
    const plan = planDeploy(words);
    const { stateDir } = loadConfig(env).deploy;
    const id = `deploy-${process.pid}-${Date.now()}`;
    const { tookOver } = await acquireLock(stateDir, newOwner(id, process.pid, `just deploy ${words.join(' ')}`), words);
    if (tookOver) err(`note: took over the deploy lock left by pid ${tookOver.pid} (no longer running)`);
    // The summary's source; the lock's run.json (last-run.json once released) keeps a copy.
    const records: StepRecord[] = [];
    const deploy: DeployRecorder = {
      async record(record) {
        records.push(record);
        await appendRecord(stateDir, id, record, plan.tag);
      },
    };
    let running: { step: StepName; started: number; cause?: string } | undefined;
    let code = 0;
    let finished: Promise<void> | undefined;
    // Once, whichever comes first: the end of the steps or a signal.
    const finish = (failure?: string) => {
      finished ??= (async () => {
        // A step that failed before it could record (a missing setting, say) is named with the cause it printed.
        if (running && !records.some((record) => record.result === 'failed')) {
          const produced = running.cause ?? failure ?? `exited with ${code} (cause above)`;
          await deploy.record({ step: running.step, result: 'failed', produced, seconds: (performance.now() - running.started) / 1000 });
        }
        out('');
        out(
          summaryTable(
            [...records].sort((a, b) => STEPS.indexOf(a.step) - STEPS.indexOf(b.step)),
            words,
          ),
        );
        await releaseLock(stateDir, id);
      })();
      return finished;
    };
    // Ctrl-C or a stop: the summary and the lock still, then the signal's own ending.
    const stop = (signal: NodeJS.Signals) => {
      void finish(`interrupted (${signal})`).finally(() => process.kill(process.pid, signal));
    };
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const signal of signals) process.once(signal, stop);
    try {
      for (const { step, run, reason } of plan.steps) {
        if (!run) await deploy.record({ step, result: 'skipped', produced: reason ?? '', seconds: 0 });
      }
      for (const { step } of plan.steps.filter((planned) => planned.run)) {
        const current: NonNullable<typeof running> = { step, started: performance.now() };
        running = current;
        const stepErr = (line: string) => {
          if (current.cause === undefined && line.startsWith('error: ')) current.cause = errorCause(line);
          err(line);
        };
        const argv = ['--tag', plan.tag, ...(flags.verbose ? ['--verbose'] : [])];
        code = await insideDeploy(deploy, () => STEP_MAINS[step](argv, { ...deps, env, out, err: stepErr }));
        if (code !== 0) break;
        running = undefined;
      }
    } catch (error) {
      code = 1;
      if (running) running.cause ??= errorCause(describeError(error));
      throw error;
    } finally {
      for (const signal of signals) process.off(signal, stop);
      await finish();
    }
    return code;
  },
});

runIfEntryPoint(import.meta.url, main);
