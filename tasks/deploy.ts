/**
 * `just deploy tag=v1.0.0 [push=false] [share=false] [commit=false] [start=false] [from=STEP]`: checks the words as
 * the miner guide writes them and runs the steps in order in this process under one deploy lock, ending with the
 * summary table (lib/deploy/pipeline.ts).
 *
 * The one task that imports other tasks: the pipeline is the steps' own `main`s, run in order; each step stays
 * a task of its own (`just push`, `node tasks/push.ts`).
 */
import { loadConfig } from '../lib/core/config.ts';
import type { MinerError } from '../lib/core/errors.ts';
import { type ChainTaskDeps, defineTask, runIfEntryPoint, UsageError } from '../lib/core/task.ts';
import { deployEngine, lockHome } from '../lib/deploy/engine.ts';
import { type DeployPlan, runDeploy } from '../lib/deploy/pipeline.ts';
import { checkTag } from '../lib/deploy/registry.ts';
import { STEPS, type StepName } from '../lib/deploy/state.ts';
import { main as build } from './build.ts';
import { main as commit } from './commit.ts';
import { main as push } from './push.ts';
import { main as rehearse } from './rehearse.ts';
import { main as share } from './share.ts';
import { main as start } from './start.ts';

/** Each step's task `main`: runDeploy runs them with `--tag TAG`, as `node tasks/<step>.ts --tag TAG` would. */
const STEP_MAINS = { build, push, rehearse, share, commit, start };

const USAGE = `usage: just deploy tag=TAG [env=NAME] [push=false] [rehearse=false] [share=false] [commit=false] [start=false] [from=STEP]

Build, push, rehearse, share, commit and start the miner image, in that order; each step is also a recipe of
its own (just build tag=TAG, ...) and a task (npx tsx tasks/build.ts --tag TAG, ...). Rerunning is safe:
finished work is recognised and skipped. from=STEP resumes at STEP (build, push, rehearse, share, commit or
start). With DEPLOY_HOST set, rehearse and start run on that Docker engine (ssh://user@host or a context).

  tag=TAG          the image tag, e.g. v1.0.0 (required)
  env=NAME         the profile: .env.NAME over .env (its own hotkey, port, container, commit)
  push=false       build only (rehearse, share and commit need a pushed image: left out too unless given =true)
  rehearse=false   commit without replaying a challenge on the pushed image (Score's spot check, rehearsed)
  share=false      do not add Score's account to the repository
  commit=false     do not publish the commitment on chain
  start=false      do not start the container here
  --verbose        each step shows docker's output and debug logs`;

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
    } else
      throw new UsageError(
        `unknown word ${JSON.stringify(word)}`,
        'the words are tag=, env=, push=, rehearse=, share=, commit=, start= and from=',
      );
  }
  if (!tag) throw new UsageError('tag= is required', 'e.g. just deploy tag=v1.0.0');
  // Rehearse, share and commit work on the pushed image: without a push they have nothing new to work on.
  const withoutPush = switches.push === false;
  const steps = STEPS.map((step) => {
    if (STEPS.indexOf(step) < STEPS.indexOf(from)) return { step, run: false, reason: `before from=${from}` };
    if (switches[step] === false) return { step, run: false, reason: `${step}=false` };
    if (withoutPush && (step === 'rehearse' || step === 'share' || step === 'commit') && switches[step] !== true)
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
    const { deploy } = loadConfig(env);
    const where = { host: deployEngine(deploy.host).label, profile: deploy.profile };
    return runDeploy({
      plan,
      // runIfEntryPoint took env=NAME off the command line: put it back so the rerun command keeps the profile
      words: deploy.profile ? [...words, `env=${deploy.profile}`] : words,
      lockHome: lockHome(deploy),
      where,
      mains: STEP_MAINS,
      deps: { ...deps, env, out, err },
      verbose: flags.verbose,
    });
  },
});

runIfEntryPoint(import.meta.url, main);
