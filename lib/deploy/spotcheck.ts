/**
 * A spot-check rehearsal (tasks/spotcheck.ts), pure parts first: which image Score's validator would pull (the
 * commitment it would choose), how the container is run (Score's harness: security off through its own
 * variable names, no wallet), Score's PASS rule (scores within 0.02), a readable diff of two answers, the
 * verdict's lines and JSON, and the record of each rehearsal kept in the deploy state folder (`spotcheck.json`,
 * keyed by digest) that tasks/status.ts reads back. Then its steps that run docker: log in and pull by digest,
 * the image's size, and one run of the image in a fresh container (lib/deploy/container.ts).
 *
 * Comparing without a ground truth: each answer stands in for the other's ground truth. The reference (the
 * live miner, else the first run) is scored against itself and the candidate against the reference, then the
 * other way round; the larger of the two differences decides. Identical answers always differ by 0; checking
 * both directions makes an empty answer against a non-empty one fail (one way round both score 0, the other
 * way round the non-empty answer scores itself 1).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type RevealedEntry, validatorFilter } from '../chain/commitment.ts';
import { writeFileAtomic } from '../core/atomic-write.ts';
import type { MinerConfig } from '../core/config.ts';
import { MinerError } from '../core/errors.ts';
import { SCORE_FPS } from '../protocol/actions.ts';
import { type GroundTruthEvent, type Prediction, scoreResponse } from '../protocol/scoring.ts';
import { type ContainerSlot, freePort, waitUntilServing } from './container.ts';
import { dockerFailure, imageSizeCommand, loginCommand, pullCommand } from './docker.ts';
import { registryHost } from './registry.ts';
import { type DockerRunOptions, docker, dockerProbe } from './run-docker.ts';

/** Score's spot check passes when the image's score is within this of the live miner's. */
export const SCORE_TOLERANCE = 0.02;

/** Score fails the spot check of an image over 30 GB (docs/protocol.md); docker counts sizes in decimal units. */
export const SCORE_IMAGE_LIMIT_GB = 30;

/** The image's size in bytes from `docker image inspect --format {{.Size}}`. */
export function parseImageSize(output: string): number {
  const text = output.trim();
  if (!/^\d+$/.test(text))
    throw new MinerError(`docker image inspect gave no size (${JSON.stringify(text.slice(0, 80))})`, {
      hint: 'this docker does not report image sizes as Docker Engine does: check `docker version`, or compare the size with 30 GB by hand',
    });
  return Number(text);
}

/** Why the spot check fails on size alone, or undefined when the image is within `limitGb`. */
export function imageSizeCause(bytes: number, limitGb: number): string | undefined {
  if (bytes <= limitGb * 1e9) return undefined;
  return `the image is ${(bytes / 1e9).toFixed(2)} GB, over Score's ${limitGb} GB limit: Score fails the spot check without running it`;
}
/** Score's harness waits about this long (at least) for `GET /docs`; the rehearsal's default. */
export const DEFAULT_READY_TIMEOUT_S = 120;
/** Score's harness gives the image's `POST /challenge` this long. */
export const SPOTCHECK_CHALLENGE_TIMEOUT_S = 120;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** The image a rehearsal pulls: always by digest. */
export interface SpotcheckImage {
  /** As committed (`user/repo` on Docker Hub, `host[:port]/user/repo` elsewhere). */
  repo: string;
  digest: string;
  /** The tag the commitment names (informational: the pull is by digest). */
  tag?: string;
  /** Block of the reveal the image came from (absent for --image). */
  block?: number;
}

/** `repo@sha256:...` (what `docker pull` takes). */
export function digestReference(image: Pick<SpotcheckImage, 'repo' | 'digest'>): string {
  return `${image.repo}@${image.digest}`;
}

/** `repo@sha256:<64 hex>` -> its parts; undefined when it is not of that form (a tag alone is not enough). */
export function parseDigestReference(reference: string): { repo: string; digest: string } | undefined {
  const at = reference.lastIndexOf('@');
  if (at <= 0) return undefined;
  const repo = reference.slice(0, at);
  const digest = reference.slice(at + 1);
  if (!DIGEST.test(digest) || /\s/.test(repo)) return undefined;
  return { repo, digest };
}

export type CommitmentChoice =
  | { ok: true; image: SpotcheckImage }
  | { ok: false; reason: string; problems: Array<{ problem: string; fix: string }> };

/**
 * What Score's validator uses: among the revealed commitments that pass its filter, the one with the highest
 * block (the later entry wins a tie). A rehearsal also needs its digest (the pull is by digest).
 */
export function chooseCommitment(entries: readonly RevealedEntry[], elementId: string): CommitmentChoice {
  if (entries.length === 0) return { ok: false, reason: 'no revealed commitment', problems: [] };
  let best: { entry: RevealedEntry; payload: Record<string, unknown> } | undefined;
  for (const entry of entries) {
    const verdict = validatorFilter(entry.text, elementId);
    if (verdict.ok && verdict.payload && (!best || entry.block >= best.entry.block)) best = { entry, payload: verdict.payload };
  }
  if (!best) {
    const latest = entries.reduce((a, b) => (b.block >= a.block ? b : a));
    return {
      ok: false,
      reason: `none of the ${entries.length} revealed commitment(s) passes the validator's filter`,
      problems: validatorFilter(latest.text, elementId).problems,
    };
  }
  const { entry, payload } = best;
  const digest = payload.image_digest;
  const repo = payload.image_repo as string;
  const tag = payload.image_tag as string;
  if (typeof digest !== 'string' || !DIGEST.test(digest)) {
    return {
      ok: false,
      reason: `the commitment revealed in block ${entry.block} (${repo}:${tag}) has no image_digest of the form sha256:<64 hex>`,
      problems: [
        { problem: 'Score would pull it by tag, which may not be the image you tested', fix: 'commit again with `tasks/commit.ts`' },
      ],
    };
  }
  return { ok: true, image: { repo, tag, digest, block: entry.block } };
}

/** Scores within Score's tolerance (a hair of float slack: 0.52 - 0.50 is 0.020000000000000018). */
export function withinTolerance(a: number, b: number, tolerance = SCORE_TOLERANCE): boolean {
  return Math.abs(a - b) <= tolerance + 1e-9;
}

/** How many times the image runs: N, and at least twice when there is nothing else to compare with. */
export function runCount(repeat: number, hasOtherReference: boolean): number {
  return hasOtherReference ? repeat : Math.max(2, repeat);
}

/** The container's fixed name: one per rehearsal process (runs are sequential and reuse it). */
export function spotcheckContainerName(pid: number): string {
  return `score-miner-spotcheck-${pid}`;
}

export interface SpotcheckRunSpec {
  name: string;
  /** `repo@sha256:...`. */
  image: string;
  port: number;
  netuid: number;
  walletName: string;
  hotkeyName: string;
  /** docker's --gpus value (e.g. all): Score runs spot checks on a GPU node. */
  gpus?: string;
  /**
   * docker's --network (default `host`, as Score's harness). `none` leaves the container its own loopback only:
   * the rehearsal on a deploy engine (lib/deploy/engine-run.ts) reaches it through `docker exec`, not a port.
   */
  network?: string;
}

/**
 * `docker run` like Score's harness: security off through the harness's own variable names (the image must
 * honour them: NETUID, WALLET_NAME, HOTKEY_NAME, VERIFY, BLACKLIST, SPOTCHECK_MODE), no wallet, no .env, no
 * restart policy; the host's network with MINER_PORT a free port, and DOWNLOAD_ALLOW_PRIVATE=true because the
 * rehearsal serves the clip on loopback.
 */
export function spotcheckRunCommand(spec: SpotcheckRunSpec): string[] {
  const env: Record<string, string> = {
    NETUID: String(spec.netuid),
    WALLET_NAME: spec.walletName,
    HOTKEY_NAME: spec.hotkeyName,
    VERIFY: 'false',
    BLACKLIST: 'false',
    SPOTCHECK_MODE: 'true',
    MINER_PORT: String(spec.port),
    DOWNLOAD_ALLOW_PRIVATE: 'true',
  };
  const args = ['run', '-d', '--name', spec.name, '--label', 'score-miner-spotcheck=1', '--network', spec.network ?? 'host'];
  for (const [name, value] of Object.entries(env)) args.push('-e', `${name}=${value}`);
  if (spec.gpus) args.push('--gpus', spec.gpus);
  args.push(spec.image);
  return args;
}

export interface PredictionChange {
  frame: number;
  action: string;
  from?: number;
  to?: number;
}

export interface PredictionDiff {
  /** In the candidate, not in the reference. */
  added: Prediction[];
  /** In the reference, not in the candidate. */
  removed: Prediction[];
  /** Same frame and action, another confidence. */
  changed: PredictionChange[];
  /** Predictions identical in both. */
  same: number;
}

const byFrame = (a: { frame: number; action: string }, b: { frame: number; action: string }) =>
  a.frame - b.frame || (a.action < b.action ? -1 : a.action > b.action ? 1 : 0);

/**
 * Predictions paired by frame and action, one to one: identical ones first, then the rest of each
 * frame-and-action group in order (a changed confidence); what is left over was added or removed.
 * `confidence: false` ignores confidences (a ground truth has none).
 */
export function diffPredictions(
  reference: readonly Prediction[],
  candidate: readonly Prediction[],
  options: { confidence?: boolean } = {},
): PredictionDiff {
  const compareConfidence = options.confidence ?? true;
  const groups = new Map<string, { reference: Prediction[]; candidate: Prediction[] }>();
  const group = (p: Prediction) => {
    const key = `${p.frame}\u0000${p.action}`;
    let found = groups.get(key);
    if (!found) {
      found = { reference: [], candidate: [] };
      groups.set(key, found);
    }
    return found;
  };
  for (const p of reference) group(p).reference.push(p);
  for (const p of candidate) group(p).candidate.push(p);
  const diff: PredictionDiff = { added: [], removed: [], changed: [], same: 0 };
  for (const { reference: before, candidate: after } of groups.values()) {
    const left = [...before];
    const right: Prediction[] = [];
    for (const p of after) {
      const exact = left.findIndex((q) => !compareConfidence || q.confidence === p.confidence);
      if (exact >= 0) {
        left.splice(exact, 1);
        diff.same++;
      } else right.push(p);
    }
    const pairs = Math.min(left.length, right.length);
    for (let i = 0; i < pairs; i++)
      diff.changed.push({ frame: right[i].frame, action: right[i].action, from: left[i].confidence, to: right[i].confidence });
    diff.removed.push(...left.slice(pairs));
    diff.added.push(...right.slice(pairs));
  }
  diff.added.sort(byFrame);
  diff.removed.sort(byFrame);
  diff.changed.sort(byFrame);
  return diff;
}

export function isSameAnswer(diff: PredictionDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && diff.changed.length === 0;
}

function confidence(value: number | undefined): string {
  return value === undefined ? '-' : value.toFixed(4);
}

function at(frame: number): string {
  return `frame ${String(frame).padStart(5)} (${(frame / SCORE_FPS).toFixed(2).padStart(6)} s)`;
}

/** One line per difference, in frame order: `+` added, `-` removed, `~` changed; at most `limit` lines. */
export function formatDiff(diff: PredictionDiff, limit = 40): string[] {
  const rows: Array<{ frame: number; action: string; line: string }> = [];
  for (const p of diff.removed)
    rows.push({ ...p, line: `- removed  ${at(p.frame)}  ${p.action.padEnd(17)} confidence ${confidence(p.confidence)}` });
  for (const p of diff.added)
    rows.push({ ...p, line: `+ added    ${at(p.frame)}  ${p.action.padEnd(17)} confidence ${confidence(p.confidence)}` });
  for (const c of diff.changed) {
    let [from, to] = [confidence(c.from), confidence(c.to)];
    if (from === to) [from, to] = [String(c.from), String(c.to)];
    rows.push({ ...c, line: `~ changed  ${at(c.frame)}  ${c.action.padEnd(17)} confidence ${from} -> ${to}` });
  }
  rows.sort(byFrame);
  const lines = rows.slice(0, limit).map((r) => r.line);
  if (rows.length > limit) lines.push(`... and ${rows.length - limit} more`);
  return lines;
}

/** One answer to the replayed challenge. */
export interface Answer {
  /** `live`, `run 1`, `run 2`, ... */
  label: string;
  predictions: Prediction[];
}

export interface PairVerdict {
  reference: string;
  candidate: string;
  /** Against the ground truth, or (without one) with the reference's answer as the ground truth. */
  referenceScore: number;
  candidateScore: number;
  /** Without a ground truth: with the candidate's answer as the ground truth. */
  reverse?: { referenceScore: number; candidateScore: number };
  /** The difference the PASS rule looks at (without a ground truth, the larger of both directions). */
  difference: number;
  pass: boolean;
  /** What the candidate predicted differently from the reference. */
  diff: PredictionDiff;
}

export interface Verdict {
  /** `truth`: scored against --truth; `answers`: each answer is the other's ground truth. */
  mode: 'truth' | 'answers';
  pass: boolean;
  pairs: PairVerdict[];
  /** The largest difference over all pairs. */
  difference: number;
}

/**
 * Score's rule on each candidate against the reference: PASS only when every difference is at most 0.02.
 * `confidence: false` leaves confidences out of the diff (a reference made from the ground truth has none).
 */
export function compareAnswers(
  reference: Answer,
  candidates: readonly Answer[],
  truth?: readonly GroundTruthEvent[],
  options: { confidence?: boolean } = {},
): Verdict {
  const pairs = candidates.map((candidate): PairVerdict => {
    const diff = diffPredictions(reference.predictions, candidate.predictions, options);
    if (truth) {
      const referenceScore = scoreResponse(reference.predictions, truth);
      const candidateScore = scoreResponse(candidate.predictions, truth);
      const difference = Math.abs(referenceScore - candidateScore);
      return {
        reference: reference.label,
        candidate: candidate.label,
        referenceScore,
        candidateScore,
        difference,
        pass: withinTolerance(referenceScore, candidateScore),
        diff,
      };
    }
    const referenceScore = scoreResponse(reference.predictions, reference.predictions);
    const candidateScore = scoreResponse(candidate.predictions, reference.predictions);
    const reverse = {
      referenceScore: scoreResponse(reference.predictions, candidate.predictions),
      candidateScore: scoreResponse(candidate.predictions, candidate.predictions),
    };
    const difference = Math.max(Math.abs(referenceScore - candidateScore), Math.abs(reverse.referenceScore - reverse.candidateScore));
    return {
      reference: reference.label,
      candidate: candidate.label,
      referenceScore,
      candidateScore,
      reverse,
      difference,
      pass: withinTolerance(referenceScore, candidateScore) && withinTolerance(reverse.referenceScore, reverse.candidateScore),
      diff,
    };
  });
  return {
    mode: truth ? 'truth' : 'answers',
    pass: pairs.every((p) => p.pass),
    pairs,
    difference: pairs.reduce((max, p) => Math.max(max, p.difference), 0),
  };
}

/** What one rehearsal found, kept per digest in `<stateDir>/spotcheck.json`. */
export interface RehearsalRecord {
  digest: string;
  repo: string;
  tag?: string;
  result: 'PASS' | 'FAIL';
  /** What the image's answers were compared with. */
  compared: 'truth' | 'live' | 'runs';
  /** Score of each answer (`live`, `run 1`, ...): against the truth, or with the reference's answer as the truth. */
  scores: Record<string, number>;
  /** The largest score difference (absent when a run failed before answering). */
  difference?: number;
  /** Seconds until each run answered GET /docs. */
  readySeconds: number[];
  /** Why it failed. */
  cause?: string;
  /** ISO time the rehearsal finished, and how long it took. */
  at: string;
  seconds: number;
}

export const REHEARSALS_FILE = 'spotcheck.json';

export function rehearsalsFile(stateDir: string): string {
  return path.join(stateDir, REHEARSALS_FILE);
}

/** Every recorded rehearsal by digest; an unreadable file counts as none (the next rehearsal rewrites it). */
export function readRehearsals(stateDir: string): Record<string, RehearsalRecord> {
  const file = rehearsalsFile(stateDir);
  if (!existsSync(file)) return {};
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, RehearsalRecord>) : {};
  } catch {
    return {};
  }
}

/** Keep `record` as the digest's latest rehearsal (atomic rename, so a killed write leaves the old file). */
export async function recordRehearsal(stateDir: string, record: RehearsalRecord): Promise<string> {
  const file = rehearsalsFile(stateDir);
  const all = { ...readRehearsals(stateDir), [record.digest]: record };
  await writeFileAtomic(file, `${JSON.stringify(all, null, 2)}\n`);
  return file;
}

/** The command a miner runs to rehearse (the clip and truth are theirs to choose). */
export const REHEARSE_COMMAND = 'npx tsx tasks/spotcheck.ts --file clip.mp4 [--truth truth.json] [--live http://<ip>:<port>]';

/** tasks/status.ts's line about the committed digest's last rehearsal. */
export function describeRehearsal(digest: string, record: RehearsalRecord | undefined): string {
  const short = digest.slice(0, 19);
  if (!record) return `the committed digest ${short} was never rehearsed: ${REHEARSE_COMMAND}`;
  const against =
    record.compared === 'truth' ? 'against --truth' : record.compared === 'live' ? 'against the live miner' : 'run against run';
  const difference = record.difference === undefined ? '' : `, largest score difference ${record.difference.toFixed(4)}`;
  const cause = record.result === 'FAIL' && record.cause ? `: ${record.cause}` : '';
  return `${record.result} for ${short} at ${record.at} (${against}${difference})${cause}`;
}

/** The registry host of an image name, the way docker reads it (`user/repo` -> docker.io). */
export function registryOf(repo: string): string {
  const slash = repo.indexOf('/');
  const first = slash < 0 ? '' : repo.slice(0, slash);
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    const host = first.toLowerCase();
    return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
  }
  return 'docker.io';
}

/** A failed `docker pull` of `reference` as the cause and the next step. */
export function pullFailure(reference: string, output: string): MinerError {
  const lines = output
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const said = (
    lines.findLast((line) => /error|denied|unauthorized|not found|unknown|does not exist/i.test(line)) ??
    lines.at(-1) ??
    'no output'
  ).slice(0, 300);
  if (/pull access denied|unauthorized|authentication required|no basic auth credentials|denied/i.test(output)) {
    return new MinerError(`the registry refused to let this machine pull ${reference} (${said})`, {
      hint:
        'set the registry account and token in .env (DOCKERHUB_USERNAME/DOCKERHUB_TOKEN, or REGISTRY_USERNAME/REGISTRY_TOKEN) so the rehearsal logs in; ' +
        "check the repository exists, and that Score's account may read it (tasks/share.ts)",
    });
  }
  if (/manifest unknown|not found|name unknown|does not exist|no such manifest/i.test(output)) {
    return new MinerError(`the registry has no image ${reference} (${said})`, {
      hint:
        'Score pulls exactly this digest and would fail the same way: push the image (tasks/push.ts) and commit the digest the registry reports (tasks/commit.ts); ' +
        'with --image, check the digest (`docker inspect --format "{{index .RepoDigests 0}}" IMAGE`)',
    });
  }
  return dockerFailure(pullCommand(reference), output);
}

/** What one answer to the replayed challenge looks like (lib/protocol's challenge result). */
export interface ChallengeAnswer {
  /** Absent when there was no valid answer. */
  predictions?: unknown[];
  wall_s: number;
  /** False with predictions: an answer that would still score, with a warning in `cause`. */
  ok: boolean;
  cause?: string;
}

/** One run of the image: a fresh container, GET /docs 200, one unsigned challenge. */
export interface RunOutcome<R extends ChallengeAnswer = ChallengeAnswer> {
  label: string;
  ok: boolean;
  /** Seconds from `docker run` to GET /docs 200. */
  readyS?: number;
  result?: R;
  cause?: string;
  /** The container's last log lines, when it failed. */
  logs?: string;
}

/** What the image's answers are compared with: the live miner, else the ground truth, else each other. */
export function comparedWith(live: boolean, truth: boolean): RehearsalRecord['compared'] {
  return live ? 'live' : truth ? 'truth' : 'runs';
}

export interface Judgement {
  compared: RehearsalRecord['compared'];
  pass: boolean;
  verdict?: Verdict;
  cause?: string;
  /** The run that failed, when one did (the runs stop at the first failure). */
  failedRun?: RunOutcome;
  /** Each answer's score (`live`, `run 1`, ...), rounded to 6 digits. */
  scores: Record<string, number>;
}

/**
 * Score's verdict on a rehearsal: FAIL on size alone, on a run that failed, or on a score difference over the
 * tolerance. The reference is the live miner's answer, else the ground truth, else the first run's answer.
 */
export function judgeRehearsal(input: {
  compared: RehearsalRecord['compared'];
  sizeCause?: string;
  outcomes: readonly RunOutcome[];
  live?: ChallengeAnswer;
  truth?: readonly GroundTruthEvent[];
}): Judgement {
  const { compared, truth } = input;
  const failedRun = input.outcomes.find((o) => !o.ok);
  let verdict: Verdict | undefined;
  let cause = input.sizeCause ?? failedRun?.cause;
  if (!input.sizeCause && !failedRun) {
    const answers: Answer[] = input.outcomes.map((o) => ({ label: o.label, predictions: o.result?.predictions as Prediction[] }));
    const reference: Answer = input.live
      ? { label: 'live', predictions: input.live.predictions as Prediction[] }
      : truth
        ? { label: 'truth', predictions: truth.map((t) => ({ frame: t.frame, action: t.action })) }
        : answers[0];
    verdict = compareAnswers(reference, reference === answers[0] ? answers.slice(1) : answers, truth, {
      confidence: reference.label !== 'truth',
    });
    const worst = verdict.pairs.find((p) => !p.pass);
    if (worst)
      cause = `${worst.candidate} scores ${worst.candidateScore.toFixed(4)} where ${worst.reference} scores ${worst.referenceScore.toFixed(4)} (difference ${worst.difference.toFixed(4)} > ${SCORE_TOLERANCE})`;
  }
  const scores: Record<string, number> = {};
  for (const p of verdict?.pairs ?? []) {
    scores[p.reference] = round(p.referenceScore, 6);
    scores[p.candidate] = round(p.candidateScore, 6);
  }
  return { compared, pass: !cause, verdict, cause, failedRun, scores };
}

const round = (value: number, digits = 3) => Number(value.toFixed(digits));

/** The record kept for the digest (tasks/status.ts reports it). */
export function rehearsalRecord(
  image: SpotcheckImage,
  judgement: Judgement,
  outcomes: readonly RunOutcome[],
  seconds: number,
  at = new Date(),
): RehearsalRecord {
  const { verdict, cause } = judgement;
  return {
    digest: image.digest,
    repo: image.repo,
    ...(image.tag ? { tag: image.tag } : {}),
    result: judgement.pass ? 'PASS' : 'FAIL',
    compared: judgement.compared,
    scores: judgement.scores,
    ...(verdict ? { difference: round(verdict.difference, 6) } : {}),
    readySeconds: outcomes.filter((o) => o.readyS !== undefined).map((o) => round(o.readyS as number, 2)),
    ...(cause ? { cause } : {}),
    at: at.toISOString(),
    seconds: round(seconds, 1),
  };
}

/** The scores of every answer, and the predictions that differ within the tolerance. */
export function scoreLines(verdict: Verdict, withTruth: boolean): string[] {
  if (verdict.pairs.length === 0) return [];
  const lines: string[] = [];
  const how = withTruth ? 'against --truth' : `with ${verdict.pairs[0].reference}'s answer as the ground truth`;
  const parts = [`${verdict.pairs[0].reference} ${verdict.pairs[0].referenceScore.toFixed(4)}`];
  for (const p of verdict.pairs) parts.push(`${p.candidate} ${p.candidateScore.toFixed(4)}`);
  lines.push(`  scores   ${parts.join(', ')} (${how})`);
  for (const p of verdict.pairs) {
    if (p.reverse)
      lines.push(
        `           with ${p.candidate}'s answer as the ground truth: ${p.reference} ${p.reverse.referenceScore.toFixed(4)}, ${p.candidate} ${p.reverse.candidateScore.toFixed(4)}`,
      );
    if (p.pass && !isSameAnswer(p.diff)) {
      lines.push(`  note: ${p.candidate}'s predictions differ from ${p.reference}'s, within the tolerance:`);
      for (const line of formatDiff(p.diff)) lines.push(`    ${line}`);
    }
  }
  return lines;
}

/** How a failing pair's predictions differ. */
export function diffLines(pair: PairVerdict): string[] {
  const { added, removed, changed } = pair.diff;
  return [
    `  predictions of ${pair.candidate} against ${pair.reference}: ${added.length} added, ${removed.length} removed, ${changed.length} changed, ${pair.diff.same} the same`,
    ...formatDiff(pair.diff).map((line) => `    ${line}`),
  ];
}

export const SLIM_IMAGE =
  "slim the image: keep Dockerfile.miner's slim Node base and one model folder, no build tools, caches or datasets in the final stage (docs/deploy.md), rebuild, push and commit";

/** What to do after a FAIL that was not about the size. */
export function nextStep(failedRun: RunOutcome | undefined, compared: RehearsalRecord['compared']): string {
  if (failedRun?.readyS === undefined && failedRun)
    return "the image must come up without a wallet and with VERIFY=false BLACKLIST=false, and answer GET /docs 200 within Score's wait: read the log lines above (a slow model load needs a faster start, not only a longer --ready-timeout)";
  if (failedRun) return 'the image must answer one unsigned POST /challenge validly within 120 s: read the log lines above';
  if (compared === 'runs')
    return 'the image answers the same challenge differently from run to run: make inference deterministic (fixed threads, no random ops, no time-dependent post-processing; see docs/model.md), rebuild, push and commit';
  if (compared === 'live')
    return 'the image does not answer like the live miner: run the committed digest live (tasks/start.ts), or push and commit what runs live; check both run the same model and settings';
  return "the image's answer misses the ground truth: check the model baked into the image (MODEL_SRC) and the truth file, and rehearse with --live against the live miner";
}

/** The verdict as printed: scores, then PASS, or FAIL with the cause, the log lines, the diffs and the next step. */
export function verdictLines(
  judgement: Judgement,
  options: { withTruth: boolean; sizeFailed: boolean; seconds: number; next?: string },
): string[] {
  const { verdict, compared, failedRun } = judgement;
  const lines = verdict ? scoreLines(verdict, options.withTruth) : [];
  if (judgement.pass) {
    const against = compared === 'live' ? 'the live miner' : compared === 'truth' ? 'the ground truth' : 'run 1';
    lines.push(
      `PASS: every run scores within ${SCORE_TOLERANCE} of ${against} (largest difference ${(verdict?.difference ?? 0).toFixed(4)}), in ${options.seconds.toFixed(1)} s`,
    );
    return lines;
  }
  lines.push(`FAIL: ${judgement.cause}`);
  if (failedRun?.logs) {
    lines.push('  last log lines of the container:');
    for (const line of failedRun.logs.split('\n')) lines.push(`    ${line}`);
  }
  for (const p of verdict?.pairs.filter((pair) => !pair.pass) ?? []) lines.push(...diffLines(p));
  lines.push(`  next: ${options.sizeFailed ? SLIM_IMAGE : (options.next ?? nextStep(failedRun, compared))}`);
  return lines;
}

/** `--json`'s object (snake_case, nulls for what is absent). */
export function rehearsalJson(input: {
  record: RehearsalRecord;
  judgement: Judgement;
  image: SpotcheckImage;
  imageBytes: number;
  gpus?: string;
  live?: { url: string; result: ChallengeAnswer };
  outcomes: readonly RunOutcome[];
  pullS: number;
  seconds: number;
  recorded: string;
}): Record<string, unknown> {
  const { record, judgement, image, live } = input;
  return {
    result: record.result,
    image: digestReference(image),
    repo: image.repo,
    digest: image.digest,
    tag: image.tag ?? null,
    block: image.block ?? null,
    image_bytes: input.imageBytes,
    gpus: input.gpus ?? null,
    compared: judgement.compared,
    tolerance: SCORE_TOLERANCE,
    scores: judgement.scores,
    difference: record.difference ?? null,
    cause: judgement.cause ?? null,
    live: live ? { url: live.url, wall_s: round(live.result.wall_s), predictions: live.result.predictions } : null,
    runs: input.outcomes.map((o) => ({
      label: o.label,
      ok: o.ok,
      ready_s: o.readyS === undefined ? null : round(o.readyS, 2),
      wall_s: o.result ? round(o.result.wall_s) : null,
      predictions: o.result?.predictions ?? null,
      cause: o.cause ?? null,
    })),
    pairs: (judgement.verdict?.pairs ?? []).map((p) => ({
      reference: p.reference,
      candidate: p.candidate,
      reference_score: p.referenceScore,
      candidate_score: p.candidateScore,
      difference: p.difference,
      pass: p.pass,
      diff: p.diff,
    })),
    pull_s: round(input.pullS, 2),
    seconds: round(input.seconds, 1),
    recorded: input.recorded,
  };
}

// The steps that run docker.

/**
 * `docker login` (token on stdin) when the config holds credentials for the image's registry host; returns how
 * the pull is made (`as USER`, or anonymously).
 */
export async function loginToPull(host: string, deploy: MinerConfig['deploy'], run: DockerRunOptions): Promise<string> {
  let configuredHost: string | undefined;
  try {
    configuredHost = registryHost(deploy.registry, { dockerhubHost: deploy.dockerhubHost });
  } catch {
    configuredHost = undefined;
  }
  if (!deploy.username || !deploy.token || configuredHost !== host)
    return 'anonymously (no registry credentials for this host in the config)';
  const username = deploy.username.toLowerCase();
  await docker(loginCommand(host, username), { ...run, input: deploy.token });
  return `as ${username}`;
}

/** `docker pull` by digest; the seconds it took, or the cause and next step (pullFailure). */
export async function pullImage(reference: string, run: DockerRunOptions): Promise<number> {
  const started = performance.now();
  const pulled = await dockerProbe(pullCommand(reference), run);
  if (!pulled.ok) throw pullFailure(reference, pulled.output);
  return (performance.now() - started) / 1000;
}

/** The pulled image's size in bytes. */
export async function imageSize(reference: string, run: DockerRunOptions): Promise<number> {
  const inspected = await dockerProbe(imageSizeCommand(reference), run);
  if (!inspected.ok)
    throw new MinerError(`docker image inspect ${reference} failed: ${inspected.output.trim().split('\n').pop()}`, {
      hint: 'the image was pulled a moment ago: check that dockerd is still running (docker info), then rerun the rehearsal',
    });
  return parseImageSize(inspected.stdout);
}

export interface ImageRunOptions<R extends ChallengeAnswer> {
  /** `run 1`, `run 2`, ... */
  label: string;
  /** The container's name, and its removal on the way out. */
  slot: ContainerSlot;
  /** How to run it (the slot's name and a free port are added). */
  spec: Omit<SpotcheckRunSpec, 'name' | 'port'>;
  readyTimeoutS: number;
  run: DockerRunOptions;
  /** Send the challenge to the container's base URL. */
  ask: (url: string) => Promise<R>;
}

/** Why a run failed when its container stopped before GET /docs answered 200 (`code ?` when docker lost it). */
export function exitedBeforeReadyCause(label: string, exitCode: number | undefined): string {
  return `${label}: the container exited (code ${exitCode ?? '?'}) before GET /docs answered 200`;
}

/** Why a run failed when GET /docs did not answer 200 within Score's wait. */
export function notReadyCause(label: string, readyTimeoutS: number): string {
  return `${label}: GET /docs did not answer 200 within ${readyTimeoutS} s (Score's harness gives up and fails the check)`;
}

/**
 * One run as Score's harness makes it: a fresh container on a free port, GET /docs 200 within the wait, one
 * challenge; the container removed after, its last log lines kept when the run failed.
 */
export async function runImageOnce<R extends ChallengeAnswer>(options: ImageRunOptions<R>): Promise<RunOutcome<R>> {
  const { label, slot, run } = options;
  const port = await freePort();
  const failed = async (cause: string, readyS?: number): Promise<RunOutcome<R>> => {
    const logs = await slot.logsThenRemove(20);
    return { label, ok: false, cause, readyS, logs };
  };
  const startedAt = performance.now();
  try {
    await slot.start(spotcheckRunCommand({ ...options.spec, name: slot.name, port }));
  } catch (error) {
    return failed(`docker run of the image failed: ${(error as Error).message}`);
  }
  const serving = await waitUntilServing({ name: slot.name, port, timeoutMs: options.readyTimeoutS * 1000, run, startedAt });
  if (!serving.ok) {
    await slot.remove();
    const cause =
      serving.reason === 'exited' ? exitedBeforeReadyCause(label, serving.exitCode) : notReadyCause(label, options.readyTimeoutS);
    return { label, ok: false, cause, logs: serving.logs.ok ? serving.logs.output : undefined };
  }
  const result = await options.ask(`http://127.0.0.1:${port}`);
  if (!result.predictions) return failed(`${label}: ${result.cause}`, serving.readyS);
  await slot.remove();
  return { label, ok: true, readyS: serving.readyS, result };
}
