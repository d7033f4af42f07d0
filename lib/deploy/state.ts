/**
 * What each deploy step produced, kept for reruns: one small JSON file per image and tag under `.deploy/`
 * (git-ignored). A step reads what earlier steps recorded (the pushed digest, say) and refuses with the step to
 * run first when it is missing; it records its own result when it finishes. Writes are atomic (rename), so a
 * step killed half-way leaves the previous state intact.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.ts';
import { MinerError } from '../core/errors.ts';
import { UsageError } from '../core/task.ts';
import { checkTag } from './registry.ts';

export const STEPS = ['build', 'push', 'rehearse', 'share', 'commit', 'start'] as const;
export type StepName = (typeof STEPS)[number];

export interface DeployState {
  /** The image as committed on chain: `user/repo` on Docker Hub, `host/user/repo` elsewhere. */
  repo: string;
  tag: string;
  build?: { imageId: string; reference: string; at: string };
  /** imageId: the local image pushed (absent in state from before it was kept: pushed again on a rerun). */
  push?: { reference: string; digest: string; imageId?: string; at: string };
  share?: { registry: string; collaborator?: string; result: string; detail: string; at: string };
  /** The last rehearsal of the pushed digest (tasks/rehearse.ts); commit refuses a FAIL without --force. */
  rehearse?: RehearseRecord;
  /** Kept per profile (the profile's own state folder, config.deploy.profileDir): each hotkey commits itself. */
  commit?: { block: number; revealBlock: number; at: string };
  /** Kept per profile: each profile runs its own container. */
  start?: { containerId: string; name: string; port: number; host?: string; at: string };
}

export interface RehearseRecord {
  digest: string;
  result: 'PASS' | 'FAIL';
  /** The engine it ran on (lib/deploy/engine.ts label). */
  host: string;
  /** The image `start` runs there, rehearsed beside the digest. */
  started: string;
  /** Its image id, when it is a local build (not the digest itself). */
  startedImageId?: string;
  difference?: number;
  cause?: string;
  at: string;
}

/** One line of the deploy summary: how a step ended, what it produced, how long it took. */
export interface StepRecord {
  step: StepName;
  /** skipped: already done (a rerun); manual: a step the miner must finish by hand. */
  result: 'ok' | 'skipped' | 'manual' | 'failed';
  produced: string;
  seconds: number;
}

/** `user/repo` + `v1.0.0` -> `<dir>/user_repo/v1.0.0.json` (registry hosts and ports flattened the same way). */
export function stateFile(dir: string, repo: string, tag: string): string {
  return path.join(dir, repo.replace(/[/:]/g, '_'), `${tag}.json`);
}

export function readState(dir: string, repo: string, tag: string): DeployState {
  const file = stateFile(dir, repo, tag);
  if (!existsSync(file)) return { repo, tag };
  try {
    return { ...(JSON.parse(readFileSync(file, 'utf8')) as DeployState), repo, tag };
  } catch (error) {
    throw new MinerError(`the deploy state ${file} is not valid JSON: ${(error as Error).message}`, {
      hint: 'delete that file and rerun from tasks/build.ts (each step is safe to repeat)',
    });
  }
}

export async function writeState(dir: string, state: DeployState): Promise<void> {
  await writeFileAtomic(stateFile(dir, state.repo, state.tag), `${JSON.stringify(state, null, 2)}\n`);
}

/** A prerequisite an earlier step should have recorded, or the error that names the step to run first. */
export function requireStep<K extends 'build' | 'push' | 'start'>(
  state: DeployState,
  key: K,
  missing: string,
): NonNullable<DeployState[K]> {
  const value = state[key];
  if (!value) {
    throw new MinerError(`no ${missing} for ${state.repo}:${state.tag}: run tasks/${key}.ts first`, {
      hint: `npx tsx tasks/${key}.ts --tag ${state.tag} (or the whole pipeline: just deploy tag=${state.tag})`,
    });
  }
  return value as NonNullable<DeployState[K]>;
}

/** Tags started by this profile, newest last: what `just rollback` goes back to (on the same engine). */
export interface StartHistory {
  started: { tag: string; digest?: string; containerId: string; host?: string; at: string }[];
}

export function readHistory(dir: string, repo: string): StartHistory {
  const file = path.join(dir, repo.replace(/[/:]/g, '_'), 'started.json');
  if (!existsSync(file)) return { started: [] };
  return JSON.parse(readFileSync(file, 'utf8')) as StartHistory;
}

export async function writeHistory(dir: string, repo: string, history: StartHistory): Promise<void> {
  await writeFileAtomic(path.join(dir, repo.replace(/[/:]/g, '_'), 'started.json'), `${JSON.stringify(history, null, 2)}\n`);
}

/** The tag a deploy step works on: --tag as given (checked), else the one pushed last; undefined when neither. */
export function resolveTag(dir: string, repo: string, given: string | undefined): string | undefined {
  return given ? checkTag(given) : latestPushedTag(dir, repo);
}

/** resolveTag for a step that works on the pushed image (share, rehearse): the tag, or the push to run first. */
export function requirePushedTag(dir: string, repo: string, given: string | undefined): string {
  const tag = resolveTag(dir, repo, given);
  if (!tag) throw new UsageError(`no pushed image of ${repo} in the deploy state`, 'run tasks/push.ts first, or give --tag');
  return tag;
}

/** The tag pushed most recently for `repo` (what a step run without --tag works on), if any. */
export function latestPushedTag(dir: string, repo: string): string | undefined {
  const folder = path.join(dir, repo.replace(/[/:]/g, '_'));
  if (!existsSync(folder)) return undefined;
  let latest: { tag: string; at: string } | undefined;
  for (const name of readdirSync(folder)) {
    if (!name.endsWith('.json') || name === 'started.json') continue;
    const state = readState(dir, repo, name.slice(0, -'.json'.length));
    if (state.push && (!latest || state.push.at > latest.at)) latest = { tag: state.tag, at: state.push.at };
  }
  return latest?.tag;
}
