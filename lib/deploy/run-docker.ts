/**
 * Runs the docker CLI for the deploy tasks through zx's `$` (each argv element quoted; input on stdin when a
 * secret must not reach the command line). Output is captured and shown only with --verbose or on failure,
 * where it becomes a one-line cause with the next step.
 */
import { $ } from 'zx';
import { dockerFailure } from './docker.ts';

export interface DockerRunOptions {
  env: Record<string, string | undefined>;
  /** Stream docker's output to stderr as it comes. */
  verbose?: boolean;
  /** Written to docker's stdin (a registry token for `docker login --password-stdin`). */
  input?: string;
}

/** What one probe hands docker besides its environment. */
export interface ProbeInput {
  /** Written to docker's stdin (a clip for `docker exec -i`). */
  input?: string | Buffer;
  /** docker is stopped (SIGTERM) after this long, and the probe answers not ok. */
  timeoutMs?: number;
}

export async function docker(args: string[], options: DockerRunOptions): Promise<string> {
  const run = $({ env: { ...process.env, ...options.env }, quiet: !options.verbose, nothrow: true, input: options.input });
  const result = await run`docker ${args}`;
  if (result.exitCode !== 0) throw dockerFailure(args, `${result.stdout}\n${result.stderr}`);
  return result.stdout.trim();
}

/**
 * Like `docker`, but a non-zero exit is an answer (e.g. `docker inspect` of a container that is not there);
 * `exitCode` is null when docker was stopped (`probe.timeoutMs`) or killed.
 */
export async function dockerProbe(
  args: string[],
  options: DockerRunOptions,
  probe: ProbeInput = {},
): Promise<{ ok: boolean; stdout: string; output: string; exitCode: number | null }> {
  const run = $({
    env: { ...process.env, ...options.env },
    quiet: !options.verbose,
    nothrow: true,
    ...(probe.input === undefined ? {} : { input: probe.input }),
    ...(probe.timeoutMs === undefined ? {} : { timeout: probe.timeoutMs }),
  });
  const result = await run`docker ${args}`;
  // `output`: stdout and stderr as written (`docker logs` replays a container's stderr on stderr).
  return { ok: result.exitCode === 0, stdout: result.stdout.trim(), output: result.toString().trim(), exitCode: result.exitCode };
}
