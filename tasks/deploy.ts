/**
 * The bookkeeping around `just deploy` (the chain itself lives in the justfile):
 *
 *   node tasks/deploy.ts --begin tag=v1.0.0 [push=false] [share=false] [commit=false] [start=false] [from=STEP]
 *       checks the words as the miner guide writes them, takes the deploy lock for the run (DEPLOY_RUN), records
 *       the steps left out, and prints "TAG STEP..." — the tag and the steps to run
 *   node tasks/deploy.ts --end --status N --step STEP
 *       prints the summary table (also after a failure) with the command that reruns from the failed step,
 *       and releases the lock
 */
import { loadConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { defineTask, runIfEntryPoint, UsageError } from '../lib/core/task.ts';
import { acquireLock, appendRecord, newOwner, readRun, releaseLock } from '../lib/deploy/lock.ts';
import { checkTag } from '../lib/deploy/registry.ts';
import { summaryTable } from '../lib/deploy/report.ts';
import { STEPS, type StepName } from '../lib/deploy/state.ts';

const USAGE = `usage: just deploy tag=TAG [push=false] [share=false] [commit=false] [start=false] [from=STEP]

Build, push, share, commit and start the miner image, in that order; each step is also a recipe of its own
(just build tag=TAG, ...) and a task (npx tsx tasks/build.ts --tag TAG, ...). Rerunning is safe: finished
work is recognised and skipped. from=STEP resumes at STEP (build, push, share, commit or start).

  tag=TAG          the image tag, e.g. v1.0.0 (required)
  push=false       build only (share and commit need a pushed image: they are left out too unless given as =true)
  share=false      do not add Score's account to the repository
  commit=false     do not publish the commitment on chain
  start=false      do not start the container here`;

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

export const main = defineTask({
  usage: USAGE,
  flags: { begin: { type: 'boolean' }, end: { type: 'boolean' }, status: { type: 'string' }, step: { type: 'string' } },
  positionals: true,
  async run({ flags, env, out, positionals }) {
    const { stateDir } = loadConfig(env).deploy;
    const runId = env.DEPLOY_RUN;
    if (!runId) throw new UsageError('DEPLOY_RUN is not set', 'run the pipeline through just: just deploy tag=v1.0.0');
    if (flags.begin === flags.end) throw new UsageError('give --begin or --end');
    if (flags.begin) {
      const plan = planDeploy(positionals);
      const { tookOver } = await acquireLock(stateDir, newOwner(runId, process.ppid, `just deploy ${positionals.join(' ')}`), positionals);
      if (tookOver) process.stderr.write(`note: took over the deploy lock left by pid ${tookOver.pid} (no longer running)\n`);
      for (const { step, run, reason } of plan.steps) {
        if (!run) await appendRecord(stateDir, runId, { step, result: 'skipped', produced: reason ?? '', seconds: 0 }, plan.tag);
      }
      out([plan.tag, ...plan.steps.filter((s) => s.run).map((s) => s.step)].join(' '));
      return 0;
    }
    const deployRun = readRun(stateDir);
    if (!deployRun || deployRun.owner.id !== runId)
      throw new MinerError('this deploy does not hold the lock any more', { hint: 'look at .deploy/last-run.json' });
    // A step that failed before it could record (a missing setting, say) is named from the exit status.
    const status = Number(flags.status ?? 0);
    const current = flags.step as StepName | undefined;
    if (status !== 0 && current && STEPS.includes(current) && !deployRun.records.some((r) => r.result === 'failed')) {
      deployRun.records.push({ step: current, result: 'failed', produced: `exited with ${status} (cause above)`, seconds: 0 });
    }
    const ordered = [...deployRun.records].sort((a, b) => STEPS.indexOf(a.step) - STEPS.indexOf(b.step));
    out('');
    out(summaryTable(ordered, deployRun.words));
    await releaseLock(stateDir, runId);
    return 0;
  },
});

runIfEntryPoint(import.meta.url, main);
