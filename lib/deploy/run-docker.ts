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

export async function docker(args: string[], options: DockerRunOptions): Promise<string> {
  const run = $({ env: { ...process.env, ...options.env }, quiet: !options.verbose, nothrow: true, input: options.input });
  const result = await run`docker ${args}`;
  if (result.exitCode !== 0) throw dockerFailure(args, `${result.stdout}\n${result.stderr}`);
  return result.stdout.trim();
}

/** Like `docker`, but a non-zero exit is an answer (e.g. `docker inspect` of a container that is not there). */
export async function dockerProbe(args: string[], options: DockerRunOptions): Promise<{ ok: boolean; stdout: string; output: string }> {
  const run = $({ env: { ...process.env, ...options.env }, quiet: !options.verbose, nothrow: true });
  const result = await run`docker ${args}`;
  // `output`: stdout and stderr as written (`docker logs` replays a container's stderr on stderr).
  return { ok: result.exitCode === 0, stdout: result.stdout.trim(), output: result.toString().trim() };
}
