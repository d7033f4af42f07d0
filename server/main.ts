/**
 * `npm start`: load config (`.env`; `DEPLOY_PROFILE=hk2 npm start` reads `.env.hk2` over it), build the guard (it
 * logs the security toggles and syncs the metagraph when the stake gate is on), load + warm the model, then open
 * the port. Any start-up problem exits 1 with the cause and the next step, never a stack trace alone. Once
 * running, an uncaught exception or unhandled rejection anywhere in the process is logged with its stack and
 * exits 1 (server/fatal.ts): the container's restart policy brings the miner back. SIGTERM/SIGINT drain the
 * server and exit 0 (see `stop` below).
 */
import os from 'node:os';
import { loadConfig, loadEnvFiles } from '../lib/core/config.ts';
import { describeError, MinerError } from '../lib/core/errors.ts';
import { log, setLogLevel } from '../lib/core/log.ts';
import { startMiner } from './app.ts';
import { installFatalHandlers } from './fatal.ts';
import { createGuardFromConfig } from './guard.ts';

installFatalHandlers();

async function main(): Promise<void> {
  loadEnvFiles();
  const config = loadConfig();
  setLogLevel(config.log.level);
  // Logs the Blacklist/Verify toggles, syncs the metagraph when the stake gate is on.
  const guard = await createGuardFromConfig(config);
  let miner: Awaited<ReturnType<typeof startMiner>>;
  try {
    miner = await startMiner(config, guard);
  } catch (error) {
    guard.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new MinerError(`port ${config.server.port} is already in use`, {
        hint: 'stop the other process or set MINER_PORT to a free port',
      });
    }
    throw error;
  }
  log.info(`miner listening on ${config.server.host}:${miner.port}`, { docs: `${miner.url}/docs` });

  // SIGTERM (docker stop) or SIGINT: drain (server/app.ts close(): idle and half-received connections closed
  // at once, running challenges answer by their deadline), then exit 0. A second signal during the drain
  // exits at once with 128 + the signal number (143 SIGTERM, 130 SIGINT), cutting off what still runs.
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: exiting without waiting for the drain`);
      process.exit(128 + (os.constants.signals[signal] ?? 15));
    }
    stopping = true;
    log.info(`${signal}: draining (no new connections; running requests may finish), then exiting`);
    miner.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error('shutdown failed', { error: (error as Error)?.message ?? String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error) => {
  process.stderr.write(`${describeError(error, process.env.LOG_LEVEL === 'debug')}\n`);
  process.exit(1);
});
