/**
 * A miner container's lifecycle on this host, shared by tasks/start.ts and tasks/spotcheck.ts: a free port,
 * waiting until the server answers (GET /docs 200, as Score's harness waits), its last log lines when it does
 * not, and removal. The polling itself is shared with scripts/miner-process.ts, which starts a local process.
 */
import net from 'node:net';
import { MinerError } from '../core/errors.ts';
import {
  type ContainerState,
  containerLogsCommand,
  containerStateCommand,
  healthcheckCommand,
  healthcheckExec,
  parseContainerState,
  removeContainerCommand,
} from './docker.ts';
import type { DeployEngine } from './engine.ts';
import { type DockerRunOptions, docker, dockerProbe } from './run-docker.ts';

/** A port nothing listens on at 127.0.0.1 now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

/** Whether this process could listen on `port` on every interface (as a published container port would). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, () => server.close(() => resolve(true)));
  });
}

/** GET `url` answers 200 within `timeoutMs` (at least 100 ms); the body is read so the connection is freed. */
export async function answers200(url: string, timeoutMs = 3000): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(Math.max(100, timeoutMs)) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

export interface PollOptions<S> {
  /** Every one must answer 200. */
  urls: readonly string[];
  /** And this must say yes (a check run through the engine, for a container on another machine). */
  probe?: () => Promise<boolean>;
  timeoutMs: number;
  /** Between rounds (default 500). */
  intervalMs?: number;
  /** `performance.now()` the wait counts from (default: now). */
  startedAt?: number;
  /** Asked after each round that did not answer: what shows the server cannot come up any more, if anything. */
  stopped?: () => Promise<S | undefined>;
}

export type PollOutcome<S> = { ready: true; ms: number } | { ready: false; stopped: S } | { ready: false; stopped?: undefined };

/** Poll until every URL answers 200 (ready), `stopped` reports something (stopped), or the time is up. */
export async function pollUntilServing<S>(options: PollOptions<S>): Promise<PollOutcome<S>> {
  const startedAt = options.startedAt ?? performance.now();
  const deadline = startedAt + options.timeoutMs;
  for (;;) {
    let answered = true;
    for (const url of options.urls) {
      // Each request gets at most 3 s and never outlives the deadline (by more than 100 ms).
      answered = await answers200(url, Math.min(3000, deadline - performance.now()));
      if (!answered) break;
    }
    if (answered && options.probe) answered = await options.probe();
    if (answered) return { ready: true, ms: performance.now() - startedAt };
    const stopped = await options.stopped?.();
    if (stopped !== undefined) return { ready: false, stopped };
    if (performance.now() >= deadline) return { ready: false };
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
  }
}

export interface ContainerLogs {
  /** Whether docker could read them (the container may be gone). */
  ok: boolean;
  /** What docker wrote: the log lines, else its error. */
  output: string;
}

export async function containerState(name: string, run: DockerRunOptions): Promise<ContainerState | undefined> {
  const probe = await dockerProbe(containerStateCommand(name), run);
  return probe.ok ? parseContainerState(probe.stdout) : undefined;
}

export async function containerLogs(name: string, lines: number, run: DockerRunOptions): Promise<ContainerLogs> {
  const { ok, output } = await dockerProbe(containerLogsCommand(name, lines), run);
  return { ok, output };
}

/** `docker rm -f`; a container that is already gone is not an error. */
export async function removeContainer(name: string, run: DockerRunOptions): Promise<void> {
  await dockerProbe(removeContainerCommand(name), run);
}

export interface ServingOptions {
  /** The container's name. */
  name: string;
  /** Where it listens: on 127.0.0.1, or on the remote engine's host. */
  port: number;
  /** A remote engine (DEPLOY_HOST): readiness from the engine, not from 127.0.0.1 here. */
  engine?: DeployEngine;
  timeoutMs: number;
  run: DockerRunOptions;
  /** Paths that must answer 200 (default `/docs`, what Score's harness waits for). */
  paths?: readonly string[];
  /** How many log lines a failure reports (default 20). */
  logLines?: number;
  /** `performance.now()` of `docker run` (default: now). */
  startedAt?: number;
}

export type Serving =
  | { ok: true; readyS: number }
  | {
      ok: false;
      /** `exited`: stopped, gone, or restarted by its policy; `timeout`: still running, not answering. */
      reason: 'exited' | 'timeout';
      /** The exit code, when `exited` and docker still knows the container. */
      exitCode?: number;
      logs: ContainerLogs;
    };

/**
 * Wait until the container answers GET /docs 200 (and any other `paths`), it stops, or `timeoutMs` passes.
 * On failure the result holds its last log lines; the container is left for the caller to remove.
 */
export async function waitUntilServing(options: ServingOptions): Promise<Serving> {
  const { name, port, run } = options;
  const remote = options.engine?.remote ? await remoteReadiness(name, port, options.engine, run) : undefined;
  const outcome = await pollUntilServing({
    urls: remote ? remote.urls : (options.paths ?? ['/docs']).map((p) => `http://127.0.0.1:${port}${p}`),
    probe: remote?.probe,
    timeoutMs: options.timeoutMs,
    startedAt: options.startedAt,
    stopped: async () => {
      const state = await containerState(name, run);
      if (!state) return { exitCode: undefined };
      return !state.running || state.restarts > 0 ? { exitCode: state.running ? undefined : state.exitCode } : undefined;
    },
  });
  if (outcome.ready) return { ok: true, readyS: outcome.ms / 1000 };
  const logs = await containerLogs(name, options.logLines ?? 20, run);
  if (outcome.stopped) return { ok: false, reason: 'exited', exitCode: outcome.stopped.exitCode, logs };
  return { ok: false, reason: 'timeout', logs };
}

/**
 * How a container on another machine shows it is ready: its image's own HEALTHCHECK command, run now in the
 * container through the engine (`docker exec`: nothing to wait for docker's health interval, no port to reach
 * from here); an image without one, on an ssh:// engine, by GET /docs on the host's published port.
 */
async function remoteReadiness(
  name: string,
  port: number,
  engine: DeployEngine,
  run: DockerRunOptions,
): Promise<{ urls: string[]; probe?: () => Promise<boolean> }> {
  const inspected = await dockerProbe(healthcheckCommand(name), run);
  const check = inspected.ok ? healthcheckExec(inspected.stdout) : undefined;
  if (check) return { urls: [], probe: async () => (await dockerProbe(['exec', name, ...check], run)).ok };
  if (engine.hostname) return { urls: [`http://${engine.hostname}:${port}/docs`] };
  throw new MinerError(`the image has no HEALTHCHECK, so readiness on ${engine.label} cannot be seen from here`, {
    hint: "keep Dockerfile.miner's HEALTHCHECK in your image, or use DEPLOY_HOST=ssh://user@host so its port can be asked",
  });
}

/**
 * One container name used by runs one after another (the spot-check rehearsal): it remembers whether a
 * container may be up, so `cleanUp` (the way out, also on a signal) removes it, waiting for a launch under way.
 */
export interface ContainerSlot {
  readonly name: string;
  /** Removes a leftover of the same name, then `docker run -d` (the command names the container). */
  start(command: string[]): Promise<string>;
  remove(): Promise<void>;
  /** Its last log lines (undefined when docker cannot read them), then remove it. */
  logsThenRemove(lines: number): Promise<string | undefined>;
  cleanUp(): Promise<void>;
}

export function containerSlot(name: string, run: DockerRunOptions): ContainerSlot {
  let up = false;
  let launching: Promise<unknown> | undefined;
  const remove = async () => {
    await removeContainer(name, run);
    up = false;
  };
  return {
    name,
    async start(command) {
      up = true;
      await removeContainer(name, run);
      const launched = docker(command, run);
      launching = launched;
      return launched;
    },
    remove,
    async logsThenRemove(lines) {
      const logs = await containerLogs(name, lines, run);
      await remove();
      return logs.ok ? logs.output : undefined;
    },
    async cleanUp() {
      await launching?.catch(() => undefined);
      if (up) await remove();
    },
  };
}
