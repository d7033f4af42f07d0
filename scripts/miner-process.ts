/**
 * Start the real miner (`server/main.ts`) as a child process on a free loopback port and wait for
 * GET /docs = 200, the way Score's spot-check harness waits for readiness. Used by the demo and the benchmark.
 */
import { spawn } from 'node:child_process';
import { PROJECT_ROOT } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { withMallocHugePages } from '../lib/core/memory.ts';
import { freePort, pollUntilServing } from '../lib/deploy/container.ts';

// Tests reach for a free loopback port through this module too.
export { freePort };

export interface MinerProcess {
  url: string;
  pid: number;
  /** Milliseconds from spawning `node server/main.ts` to the first GET /docs = 200 (within pollMs). */
  readyMs: number;
  stop(): Promise<void>;
}

export interface MinerProcessOptions {
  /** Where the server's stdout goes: this process's stdout (default) or its stderr (keeps a `--json` stdout clean). */
  stdout?: 'inherit' | 'stderr';
  /** GET /docs polling interval during start-up, in ms (default 200). */
  pollMs?: number;
}

/** `env` is added to the current environment; security is off unless `env` turns it on. */
export async function startMinerProcess(
  env: Record<string, string> = {},
  readyTimeoutMs = 120_000,
  options: MinerProcessOptions = {},
): Promise<MinerProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const pollMs = options.pollMs ?? 200;
  const started = performance.now();
  const child = spawn(process.execPath, ['server/main.ts'], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      GLIBC_TUNABLES: withMallocHugePages(process.env.GLIBC_TUNABLES), // as `npm start` and the image run it
      DOTENV_DISABLE: '1',
      BLACKLIST_ENABLED: 'false',
      VERIFY_ENABLED: 'false',
      MINER_HOST: '127.0.0.1',
      MINER_PORT: String(port),
      ...env,
    },
    stdio: ['ignore', options.stdout === 'stderr' ? 2 : 'inherit', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let alive = true;
  void exited.then(() => (alive = false));
  const stop = async () => {
    if (alive) child.kill('SIGTERM');
    await exited;
  };
  const outcome = await pollUntilServing({
    urls: [`${url}/docs`],
    timeoutMs: readyTimeoutMs,
    intervalMs: pollMs,
    startedAt: started,
    stopped: async () => (alive ? undefined : 'exited'),
  });
  if (outcome.ready) return { url, pid: child.pid!, readyMs: outcome.ms, stop };
  if (outcome.stopped)
    throw new MinerError('the miner exited during start-up', { hint: 'its log above names the cause; fix that and rerun' });
  await stop();
  throw new MinerError(`the miner did not answer GET /docs within ${readyTimeoutMs / 1000} s`, {
    hint: 'check its log above; a large model may need longer to load',
  });
}
