/** The miner as most tests run it: in this process, on 127.0.0.1, an ephemeral port, security off. */
import { loadConfig } from '../../lib/core/config.ts';
import { type RunningMiner, startMiner } from '../../server/app.ts';

/**
 * Security off, loopback, port 0, and the per-address limits off: these tests send bursts from one loopback
 * address (test/limits.test.ts tests the limits themselves).
 */
export const LOCAL_MINER_ENV: Record<string, string> = {
  BLACKLIST_ENABLED: 'false',
  VERIFY_ENABLED: 'false',
  MINER_HOST: '127.0.0.1',
  MINER_PORT: '0',
  RATE_LIMIT_PER_S: '0',
  MAX_CONNECTIONS_PER_ADDRESS: '0',
};

/** Starts a local miner with LOCAL_MINER_ENV and `env` over it. */
export function startLocalMiner(env: Record<string, string> = {}): Promise<RunningMiner> {
  return startMiner(loadConfig({ ...LOCAL_MINER_ENV, ...env }));
}
