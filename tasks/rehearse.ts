/**
 * The deploy's `rehearse` step: Score's spot check played on the pushed image before it is committed.
 *
 *   npx tsx tasks/rehearse.ts [--tag v1.0.0] [--clip clip.mp4] [--env hk2]
 *
 * 1. the pushed digest (tasks/push.ts's record) pulled by digest on the deploy's engine (DEPLOY_HOST, else this
 *    machine's), logged in with the registry token on stdin; its size held to Score's limit
 * 2. the clip: --clip, REHEARSAL_CLIP, else the demo's synthetic clip rendered with ffmpeg here
 * 3. three runs, each a fresh container run like Score's harness (no wallet, VERIFY=false BLACKLIST=false),
 *    driven through the engine itself (lib/deploy/engine-run.ts), so a remote engine needs nothing from here:
 *    GET /docs 200 within REHEARSAL_READY_TIMEOUT_S, then the one challenge — the digest twice, and the image
 *    `start` runs there once
 * 4. Score's rule on the three answers; the verdict kept in the deploy state (tasks/commit.ts refuses a FAIL
 *    without --force) and by digest in the spot checks' record (tasks/status.ts); a FAIL prints the predictions
 *    diff and the rerun command, and exits 1
 */
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type MinerConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { defineTask, type FlagSpec, runIfEntryPoint } from '../lib/core/task.ts';
import { containerSlot } from '../lib/deploy/container.ts';
import { dockerFailure, imageIdCommand } from '../lib/deploy/docker.ts';
import { type DeployEngine, deployEngine, engineRun, engineUnreachable, lockHome, startReference } from '../lib/deploy/engine.ts';
import { runInEngine } from '../lib/deploy/engine-run.ts';
import { alreadyPassed, passedLine, REHEARSAL_LABELS, rehearsalNext, rehearseCommand, rehearseRecord } from '../lib/deploy/rehearse.ts';
import { type DockerRunOptions, dockerProbe } from '../lib/deploy/run-docker.ts';
import {
  digestReference,
  imageSize,
  imageSizeCause,
  judgeRehearsal,
  loginToPull,
  pullImage,
  type RunOutcome,
  recordRehearsal,
  registryOf,
  rehearsalRecord,
  SCORE_IMAGE_LIMIT_GB,
  SPOTCHECK_CHALLENGE_TIMEOUT_S,
  verdictLines,
} from '../lib/deploy/spotcheck.ts';
import { readState, requirePushedTag, requireStep, writeState } from '../lib/deploy/state.ts';
import { holdIfStopping, runStep, type StepOutcome, undoOnSignal } from '../lib/deploy/step.ts';
import { deployTarget } from '../lib/deploy/target.ts';
import type { ChallengeResult } from '../lib/protocol/validator-client.ts';
import { resolveFfmpeg } from '../lib/video/ffmpeg.ts';
import { DEMO_CLIP, makeSyntheticClip } from '../lib/video/synthetic.ts';

const USAGE = `usage: npx tsx tasks/rehearse.ts [--tag TAG] [--clip FILE] [--force] [--env NAME] [--json] [--verbose]

Play Score's spot check on the pushed image before it is committed: pull the pushed digest on the deploy's
Docker engine (DEPLOY_HOST, else this machine's), run it as Score's harness does (no wallet, VERIFY=false
BLACKLIST=false), wait for GET /docs 200 (REHEARSAL_READY_TIMEOUT_S), and replay one challenge in two fresh
containers of the digest and once on the image start runs there. PASS when every answer scores within 0.02 of
the first (Score's rule). Kept in the deploy state: tasks/commit.ts refuses a digest whose rehearsal failed.

  --tag TAG     the pushed tag (default: the tag pushed last)
  --clip FILE   the mp4 to replay (default: REHEARSAL_CLIP, else a synthetic 10 s clip rendered with ffmpeg)
  --force       rehearse again even when this digest already passed on this engine
  --env NAME    the profile: .env.NAME over .env
  --json        print the verdict as JSON on stdout
  --verbose     show docker's output`;

const FLAGS = { tag: { type: 'string' }, clip: { type: 'string' }, force: { type: 'boolean' } } satisfies FlagSpec;

type Say = (line: string) => void;

/** The clip to replay, and the folder to remove after (a synthetic clip's). */
async function rehearsalClip(given: string | undefined, ffmpegPath: string | undefined): Promise<{ clip: string; scratch?: string }> {
  if (given) {
    const clip = path.resolve(given);
    if (!existsSync(clip) || !statSync(clip).isFile())
      throw new MinerError(`the rehearsal clip ${clip} is not a file`, {
        hint: 'set REHEARSAL_CLIP (or --clip) to an mp4 on this machine, or leave it unset for the synthetic clip',
      });
    return { clip };
  }
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'score-miner-rehearse-'));
  const ffmpeg = resolveFfmpeg(ffmpegPath);
  return { clip: await makeSyntheticClip(ffmpeg.path, DEMO_CLIP, path.join(scratch, 'rehearsal.mp4')), scratch };
}

/**
 * A remote engine answers before anything is asked of it: unreachable (ssh refused, a key denied) is named as such
 * with ssh's words, not as a registry that refused the login or the pull.
 */
async function reachEngine(engine: DeployEngine, run: DockerRunOptions): Promise<void> {
  if (!engine.remote) return;
  const probe = await dockerProbe(['version', '--format', '{{.Server.Version}}'], run);
  if (probe.ok) return;
  throw engineUnreachable(engine, probe.output) ?? dockerFailure(['version'], probe.output);
}

/** The image id of `reference` on the engine, if it is there. */
async function imageIdOn(reference: string, run: DockerRunOptions): Promise<string | undefined> {
  const inspected = await dockerProbe(imageIdCommand(reference), run);
  return inspected.ok ? inspected.stdout : undefined;
}

/** The three runs, each a fresh container; stops at the first that fails. */
async function runAll(
  references: Record<(typeof REHEARSAL_LABELS)[number], string>,
  clip: string,
  config: MinerConfig,
  run: DockerRunOptions,
  say: Say,
): Promise<RunOutcome<ChallengeResult>[]> {
  const slot = containerSlot(`score-miner-rehearse-${process.pid}`, run);
  // Ctrl-C (or the deploy stopped): the container goes before the process does.
  const forget = undoOnSignal(() => slot.cleanUp());
  const outcomes: RunOutcome<ChallengeResult>[] = [];
  try {
    for (const label of REHEARSAL_LABELS) {
      const outcome = await runInEngine({
        label,
        reference: references[label],
        slot,
        clip,
        harness: {
          netuid: config.chain.netuid,
          walletName: config.wallet.coldkey,
          hotkeyName: config.wallet.hotkey,
          gpus: config.deploy.gpus,
        },
        readyTimeoutS: config.deploy.rehearsalReadyTimeoutMs / 1000,
        challengeTimeoutS: SPOTCHECK_CHALLENGE_TIMEOUT_S,
        run,
      });
      await holdIfStopping();
      outcomes.push(outcome);
      if (!outcome.ok) break;
      const answer = outcome.result as ChallengeResult;
      say(
        `    ${label.padEnd(8)} ready in ${outcome.readyS?.toFixed(1)} s (GET /docs 200); ${answer.predictions?.length} predictions in ${answer.wall_s.toFixed(2)} s`,
      );
    }
  } finally {
    forget();
    await slot.cleanUp();
  }
  return outcomes;
}

interface Rehearsal {
  config: MinerConfig;
  engine: DeployEngine;
  run: DockerRunOptions;
  repo: string;
  tag: string;
  clip?: string;
  /** FFMPEG_PATH from the task's environment (a task reads deps.env, never process.env). */
  ffmpegPath?: string;
  force: boolean;
  say: Say;
}

/** The step's body: skip a PASS already recorded, else pull, run three times, judge, record; a FAIL throws. */
async function rehearse(r: Rehearsal): Promise<StepOutcome> {
  const { config, engine, run, repo, tag, say } = r;
  const { deploy } = config;
  const state = readState(deploy.stateDir, repo, tag);
  const pushed = requireStep(state, 'push', 'pushed digest');
  const image = { repo, digest: pushed.digest, tag };
  const reference = digestReference(image);
  const started = startReference(state, engine) as string;
  // The image start runs, by its id where it is a local build (a rebuild without a push is another image).
  const startedImageId = started === reference ? undefined : await imageIdOn(started, run);
  const now = { digest: pushed.digest, started, host: engine.label, ...(startedImageId ? { startedImageId } : {}) };
  if (!r.force && alreadyPassed(state.rehearse, now))
    return { result: 'skipped', produced: `PASS recorded for ${pushed.digest.slice(0, 19)} on ${engine.label} at ${state.rehearse?.at}` };

  const t0 = performance.now();
  await reachEngine(engine, run);
  const login = await loginToPull(registryOf(repo), deploy, run);
  const pullS = await pullImage(reference, run);
  const bytes = await imageSize(reference, run);
  const sizeCause = imageSizeCause(bytes, SCORE_IMAGE_LIMIT_GB);
  say(`    pulled ${reference} on ${engine.label} ${login}: ${pullS.toFixed(1)} s, ${(bytes / 1e9).toFixed(2)} GB`);
  say(`    start runs ${started === reference ? 'the pushed digest' : started} there`);

  const { clip, scratch } = await rehearsalClip(r.clip ?? deploy.rehearsalClip, r.ffmpegPath);
  let outcomes: RunOutcome<ChallengeResult>[] = [];
  try {
    say(`    clip ${clip}`);
    if (!sizeCause) outcomes = await runAll({ 'run 1': reference, 'run 2': reference, 'to start': started }, clip, config, run, say);
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }

  await holdIfStopping();
  const judgement = judgeRehearsal({ compared: 'runs', sizeCause, outcomes });
  const seconds = (performance.now() - t0) / 1000;
  await recordRehearsal(deploy.stateDir, rehearsalRecord(image, judgement, outcomes, seconds));
  await writeState(deploy.stateDir, { ...readState(deploy.stateDir, repo, tag), rehearse: rehearseRecord(judgement, now) });
  const next = rehearsalNext(judgement, started, tag);
  for (const line of verdictLines(judgement, { withTruth: false, sizeFailed: Boolean(sizeCause), seconds, next })) say(`  ${line}`);
  if (!judgement.pass) {
    say(`    after fixing the cause, rehearse alone: ${rehearseCommand(tag, deploy.profile)}`);
    throw new MinerError(`rehearsal FAIL on ${engine.label}: ${judgement.cause}`, {
      hint: 'nothing was committed; the predictions diff and the log lines are above',
    });
  }
  return { produced: passedLine(judgement, engine.label) };
}

export const main = defineTask({
  usage: USAGE,
  flags: FLAGS,
  json: true,
  async run({ flags, env, out, err }) {
    const config = loadConfig(env);
    const { deploy } = config;
    const target = deployTarget(deploy);
    const tag = requirePushedTag(deploy.stateDir, target.repo, flags.tag);
    const engine = deployEngine(deploy.host);
    const say = flags.json ? err : out;
    const rehearsal: Rehearsal = {
      config,
      engine,
      run: engineRun(env, engine, flags.verbose),
      repo: target.repo,
      tag,
      clip: flags.clip,
      ffmpegPath: env.FFMPEG_PATH,
      force: Boolean(flags.force),
      say,
    };
    await runStep(
      { step: 'rehearse', lockHome: lockHome(deploy), out: say, tag },
      `replay one challenge on ${target.repo}:${tag} as Score's spot check would, on ${engine.label}`,
      () => rehearse(rehearsal),
    );
    if (flags.json) out(JSON.stringify({ tag, rehearse: readState(deploy.stateDir, target.repo, tag).rehearse ?? null }));
    return 0;
  },
});

runIfEntryPoint(import.meta.url, main);
