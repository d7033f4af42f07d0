/**
 * The deploy's `rehearse` step, the pure part (tasks/rehearse.ts runs it): Score's spot check played before the
 * commit. The pushed digest answers the same challenge in two fresh containers, and the image `start` will run
 * on the same engine answers it once more; Score's rule (lib/deploy/spotcheck.ts judgeRehearsal: every answer
 * within 0.02 of the first) decides. What it found is kept per tag in the deploy state, and per digest beside
 * the spot checks' records, where tasks/commit.ts and tasks/status.ts read it.
 */
import { MinerError } from '../core/errors.ts';
import { type Judgement, SCORE_TOLERANCE } from './spotcheck.ts';
import type { RehearseRecord } from './state.ts';

/** The answers compared: the digest twice (is it deterministic?), then the image start runs (is it the same?). */
export const REHEARSAL_LABELS = ['run 1', 'run 2', 'to start'] as const;

/** The command that reruns the rehearsal alone (the profile kept). */
export function rehearseCommand(tag: string, profile?: string): string {
  return `npx tsx tasks/rehearse.ts --tag ${tag}${profile ? ` --env ${profile}` : ''}`;
}

/** What identifies one rehearsal: the digest, the image start runs (by id when it is a local build), the engine. */
export type RehearsedImages = Pick<RehearseRecord, 'digest' | 'started' | 'startedImageId' | 'host'>;

/** A rerun: this digest, with this very image to start, already passed on this engine. */
export function alreadyPassed(record: RehearseRecord | undefined, now: RehearsedImages): boolean {
  return (
    record?.result === 'PASS' &&
    record.digest === now.digest &&
    record.started === now.started &&
    record.startedImageId === now.startedImageId &&
    record.host === now.host
  );
}

/** What the deploy state keeps of a rehearsal. */
export function rehearseRecord(judgement: Judgement, now: RehearsedImages, at = new Date()): RehearseRecord {
  const difference = judgement.verdict?.difference;
  return {
    ...now,
    result: judgement.pass ? 'PASS' : 'FAIL',
    ...(difference === undefined ? {} : { difference: Number(difference.toFixed(6)) }),
    ...(judgement.cause ? { cause: judgement.cause } : {}),
    at: at.toISOString(),
  };
}

/**
 * The next step after a FAIL, when it is the rehearsal's own finding: the digest answered like itself but the
 * image start would run did not (the build here is not what was pushed). Undefined: spot check's usual advice.
 */
export function rehearsalNext(judgement: Judgement, started: string, tag: string): string | undefined {
  const failing = judgement.verdict?.pairs.filter((pair) => !pair.pass) ?? [];
  if (failing.length === 0 || failing.some((pair) => pair.candidate !== 'to start')) return undefined;
  return `the image start runs (${started}) answers differently from the pushed digest: push what you built (just deploy tag=${tag}), so that what is committed is what runs`;
}

/** The deploy state's PASS, said in a few words for the summary. */
export function passedLine(judgement: Judgement, host: string): string {
  return `PASS on ${host}: ${REHEARSAL_LABELS.length} answers within ${SCORE_TOLERANCE} (largest difference ${(judgement.verdict?.difference ?? 0).toFixed(4)})`;
}

/**
 * tasks/commit.ts's check: a digest whose last rehearsal failed (tasks/rehearse.ts or tasks/spotcheck.ts) is not
 * committed — Score would spot-check it and find the same — unless --force; then the warning to print.
 */
export function rehearsalGate(
  digest: string,
  last: { result: 'PASS' | 'FAIL'; cause?: string; at: string } | undefined,
  options: { force: boolean; tag: string; profile?: string },
): string | undefined {
  if (last?.result !== 'FAIL') return undefined;
  const short = digest.slice(0, 19);
  const why = last.cause ? `: ${last.cause}` : '';
  if (options.force) return `    warning: committing ${short} although its rehearsal at ${last.at} failed${why} (--force)`;
  const env = options.profile ? ` env=${options.profile}` : '';
  throw new MinerError(`the rehearsal of ${short} at ${last.at} failed${why}`, {
    hint: `Score's spot check would find the same: fix the image, push it and rehearse again (just deploy tag=${options.tag}${env} from=rehearse after a push), or commit anyway with --force`,
  });
}
