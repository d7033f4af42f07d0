/**
 * A deploy task or a justfile recipe run the way a miner runs it: a child process in the project root with exactly
 * the environment given (nothing inherited, so no setting of this machine leaks in), its stdout and stderr
 * interleaved as the miner would see them.
 */
import { execa } from 'execa';
import { PROJECT_ROOT } from '../../lib/core/config.ts';

export interface TaskRun {
  /** The exit code; -1 when it was killed (its timeout). */
  code: number;
  /** stdout and stderr as written. */
  output: string;
  stdout: string;
}

async function runIn(file: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<TaskRun> {
  const result = await execa(file, args, { cwd: PROJECT_ROOT, env, extendEnv: false, reject: false, all: true, timeout: timeoutMs });
  return { code: result.exitCode ?? -1, output: result.all ?? '', stdout: result.stdout ?? '' };
}

/** `node tasks/NAME.ts ARGS` with `env` as its whole environment. */
export function runTask(name: string, args: string[], env: Record<string, string>, timeoutMs = 300_000): Promise<TaskRun> {
  return runIn(process.execPath, [`tasks/${name}.ts`, ...args], env, timeoutMs);
}

/** `just WORDS` (the project's justfile) with `env` as its whole environment. */
export function runJust(words: string[], env: Record<string, string>, timeoutMs = 600_000): Promise<TaskRun> {
  return runIn('just', words, env, timeoutMs);
}
