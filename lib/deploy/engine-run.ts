/**
 * One run of a miner image as Score's spot-check harness makes it (lib/deploy/spotcheck.ts: the harness's
 * environment, GET /docs 200 within the wait, one unsigned challenge), driven entirely through Docker's own
 * transport: `docker run -d`, `docker exec` and `docker rm`, nothing else. So it works the same on this
 * machine's engine and on a remote one (DOCKER_HOST=ssh://..., a context) where this machine cannot reach the
 * container's port and the container cannot reach this machine.
 *
 * The container runs with `--network none` (its own loopback only: no port to choose on the engine's host, no
 * clash with the live miner). Both requests are made from inside it by a small Node script handed to
 * `docker exec ... node -e` (engine-run-probe.cjs; the image has `node` on PATH): one waits for GET /docs, the
 * other reads the clip from docker's stdin, serves it on the container's loopback and POSTs the challenge.
 * The reply is judged by the validator's own rules (lib/protocol/validator-client.ts).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type ChallengeResult, judgeReply, newChallengeId, unanswered } from '../protocol/validator-client.ts';
import { type ContainerSlot, containerState } from './container.ts';
import type { ContainerState } from './docker.ts';
import { type DockerRunOptions, dockerProbe } from './run-docker.ts';
import { exitedBeforeReadyCause, notReadyCause, type RunOutcome, spotcheckRunCommand } from './spotcheck.ts';

export interface EngineRunOptions {
  /** `run 1`, `run 2`, `to start`: the start of every cause. */
  label: string;
  /** The image on the engine (`repo@sha256:...` or `name:tag`). */
  reference: string;
  /** The container's name, and its removal on every way out. */
  slot: ContainerSlot;
  /** An mp4 file on this machine. */
  clip: string;
  /** Score's harness environment (spotcheckRunCommand). */
  harness: { netuid: number; walletName: string; hotkeyName: string; gpus?: string };
  /** Score's harness wait for GET /docs 200, counted from before `docker run`. */
  readyTimeoutS: number;
  challengeTimeoutS: number;
  /** Its env carries DOCKER_HOST / DOCKER_CONTEXT for the engine. */
  run: DockerRunOptions;
  /** Where a warning goes (a reply naming another challenge_id); default: dropped. */
  warn?: (line: string) => void;
}

/** MINER_PORT inside the container: fixed, since nothing outside the container's own loopback sees it. */
export const ENGINE_MINER_PORT = 8000;

/** The miner as seen from inside its container. */
export const ENGINE_MINER_URL = `http://127.0.0.1:${ENGINE_MINER_PORT}`;

/** Log lines kept with a failed run. */
const LOG_LINES = 20;

/** How much longer than the script's own limit a `docker exec` may take (the transport, a slow ssh link) before it is stopped. */
const EXEC_MARGIN_MS = 30_000;

/** The script run inside the container (read once; `node -e` takes its text). */
let probeScript: string | undefined;
function probeSource(): string {
  probeScript ??= readFileSync(new URL('./engine-run-probe.cjs', import.meta.url), 'utf8');
  return probeScript;
}

/** `docker exec NAME node -e SCRIPT ready MS URL`: waits inside the container for GET /docs 200. */
export function readyProbeCommand(name: string, script: string, remainingMs: number): string[] {
  return ['exec', name, 'node', '-e', script, 'ready', String(Math.max(0, Math.round(remainingMs))), `${ENGINE_MINER_URL}/docs`];
}

/** `docker exec -i NAME node -e SCRIPT challenge ID TIMEOUT URL`: the clip on stdin, one JSON line on stdout. */
export function challengeProbeCommand(name: string, script: string, challengeId: string, timeoutS: number): string[] {
  return ['exec', '-i', name, 'node', '-e', script, 'challenge', challengeId, String(timeoutS), ENGINE_MINER_URL];
}

/** What the challenge script printed. */
export interface ProbeReply {
  /** The miner's HTTP status; 0 when no reply came. */
  status: number;
  text: string;
  wall_s: number;
  /** Why no reply came (status 0). */
  error?: string;
  timed_out?: boolean;
}

/** The challenge script's JSON line (its last line that is one); undefined when there is none. */
export function parseProbeReply(output: string): ProbeReply | undefined {
  const lines = output.split('\n').map((line) => line.trim());
  for (const line of lines.reverse()) {
    if (!line.startsWith('{')) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    const reply = value as Partial<ProbeReply>;
    if (
      typeof reply.status !== 'number' ||
      !Number.isInteger(reply.status) ||
      typeof reply.text !== 'string' ||
      typeof reply.wall_s !== 'number' ||
      !Number.isFinite(reply.wall_s)
    )
      continue;
    return {
      status: reply.status,
      text: reply.text,
      wall_s: reply.wall_s,
      ...(typeof reply.error === 'string' ? { error: reply.error } : {}),
      ...(reply.timed_out === true ? { timed_out: true } : {}),
    };
  }
  return undefined;
}

/** The reply judged by the validator's rules (lib/protocol/validator-client.ts), as tasks/spotcheck.ts judges its runs. */
export function judgeProbeReply(
  reply: ProbeReply,
  challengeId: string,
  timeoutS: number,
  warn: (line: string) => void = () => undefined,
): ChallengeResult {
  const base = { url: ENGINE_MINER_URL, challenge_id: challengeId, scheme: 'none', status: reply.status, wall_s: reply.wall_s };
  if (reply.status === 0) return unanswered(base, reply.timed_out === true, reply.error ?? 'no reply', { url: ENGINE_MINER_URL, timeoutS });
  return judgeReply(base, reply.text, { challengeId }, undefined, { err: warn });
}

/** What `docker exec` of a probe gave. */
export interface ExecAnswer {
  /** null when docker was stopped or killed. */
  exitCode: number | null;
  stdout: string;
  /** stdout and stderr together. */
  output: string;
}

export type Readiness =
  | { kind: 'ready' }
  | { kind: 'exited'; exitCode?: number }
  | { kind: 'timeout' }
  /** The probe could not run, the container still up (no node on PATH, docker failed): `said` is docker's last line. */
  | { kind: 'probe-failed'; said: string };

/**
 * The readiness probe's answer and (when it did not say `ready`) the container's state -> what happened. A
 * container gone, stopped or restarted exited, whatever the probe said; else the probe's `not-ready` is the wait
 * running out.
 */
export function readiness(probe: ExecAnswer, state: ContainerState | undefined): Readiness {
  if (saidReady(probe)) return { kind: 'ready' };
  if (!state) return { kind: 'exited' };
  if (!state.running) return { kind: 'exited', exitCode: state.exitCode };
  if (state.restarts > 0) return { kind: 'exited' };
  if (saidNotReady(probe)) return { kind: 'timeout' };
  return { kind: 'probe-failed', said: saidBy(probe) };
}

/** The readiness probe said `not-ready`: the wait ran out with the container up. */
export const saidNotReady = (probe: ExecAnswer) => lastLine(probe.stdout) === 'not-ready';

/** The readiness probe saw GET /docs answer 200. */
export const saidReady = (probe: ExecAnswer) => probe.exitCode === 0 && lastLine(probe.stdout) === 'ready';

const lastLine = (text: string) => text.trim().split('\n').at(-1)?.trim() ?? '';

/** docker's (or the script's) last words, for a cause. */
function saidBy(probe: ExecAnswer): string {
  const said = lastLine(probe.output);
  if (probe.exitCode === null) return `stopped after no answer${said ? `; last output: ${said.slice(0, 200)}` : ''}`;
  return `exit ${probe.exitCode}${said ? `: ${said.slice(0, 200)}` : ''}`;
}

/** Why a run failed when the readiness probe itself could not run. */
export function probeFailedCause(label: string, said: string): string {
  return `${label}: could not ask GET /docs inside the container (docker exec ${said}): the rehearsal on the engine needs \`node\` on the image's PATH, as Dockerfile.miner has it`;
}

/** Why a run failed when the challenge script printed no reply line. */
export function noReplyLineCause(label: string, state: ContainerState | undefined, said: string): string {
  if (!state?.running) return `${label}: the container exited (code ${state?.exitCode ?? '?'}) during the challenge, before it answered`;
  return `${label}: the challenge sent inside the container gave no reply line (docker exec ${said})`;
}

/**
 * The container's state once a `docker exec` in it ended without its script's last word: a container whose
 * main process just exited kills the exec at once, while the engine may report it running for a moment
 * longer, so it is asked again (every 250 ms, for up to 2 s) until it is gone or stopped.
 */
async function stateAfterBrokenExec(name: string, run: DockerRunOptions): Promise<ContainerState | undefined> {
  let state = await containerState(name, run);
  for (let tries = 0; tries < 8 && state?.running && state.restarts === 0; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    state = await containerState(name, run);
  }
  return state;
}

/**
 * One run on the engine of `options.run`: a fresh container (`--network none`, Score's harness environment,
 * MINER_PORT 8000), GET /docs 200 within `readyTimeoutS` (asked from inside it), one unsigned challenge with
 * the clip served on its loopback, the reply judged. The container is removed on every way out, its last log
 * lines kept when the run failed.
 */
export async function runInEngine(options: EngineRunOptions): Promise<RunOutcome<ChallengeResult>> {
  const { label, slot, run } = options;
  const clip = await readFile(options.clip);
  const script = probeSource();
  let removed = false;
  const failed = async (cause: string, readyS?: number): Promise<RunOutcome<ChallengeResult>> => {
    const logs = await slot.logsThenRemove(LOG_LINES);
    removed = true;
    return { label, ok: false, cause, ...(readyS === undefined ? {} : { readyS }), ...(logs ? { logs } : {}) };
  };
  const startedAt = performance.now();
  try {
    const command = spotcheckRunCommand({
      ...options.harness,
      name: slot.name,
      image: options.reference,
      port: ENGINE_MINER_PORT,
      network: 'none',
    });
    try {
      await slot.start(command);
    } catch (error) {
      return await failed(`docker run of the image failed: ${(error as Error).message}`);
    }

    const remainingMs = Math.max(0, startedAt + options.readyTimeoutS * 1000 - performance.now());
    const probe = await dockerProbe(readyProbeCommand(slot.name, script, remainingMs), run, { timeoutMs: remainingMs + EXEC_MARGIN_MS });
    const readyS = (performance.now() - startedAt) / 1000;
    const state = saidReady(probe)
      ? undefined
      : saidNotReady(probe)
        ? await containerState(slot.name, run)
        : await stateAfterBrokenExec(slot.name, run);
    const ready = readiness(probe, state);
    if (ready.kind === 'exited') return await failed(exitedBeforeReadyCause(label, ready.exitCode));
    if (ready.kind === 'timeout') return await failed(notReadyCause(label, options.readyTimeoutS));
    if (ready.kind === 'probe-failed') return await failed(probeFailedCause(label, ready.said));

    const challengeId = newChallengeId();
    const asked = await dockerProbe(challengeProbeCommand(slot.name, script, challengeId, options.challengeTimeoutS), run, {
      input: clip,
      timeoutMs: options.challengeTimeoutS * 1000 + EXEC_MARGIN_MS,
    });
    const reply = parseProbeReply(asked.stdout);
    if (!reply) return await failed(noReplyLineCause(label, await stateAfterBrokenExec(slot.name, run), saidBy(asked)), readyS);
    const result = judgeProbeReply(reply, challengeId, options.challengeTimeoutS, options.warn);
    if (!result.predictions) return await failed(`${label}: ${result.cause}`, readyS);
    return { label, ok: true, readyS, result };
  } finally {
    if (!removed) await slot.remove();
  }
}
