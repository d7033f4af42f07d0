/**
 * The stake gate's chain side: a SyncedStakeSource fed by the subnet's metagraph, synced before the port
 * opens. Kept apart from server/stake.ts so tests of the gate never load @polkadot/api.
 */
import type { MinerConfig } from '../lib/config.ts';
import { MinerError } from '../lib/errors.ts';
import { SyncedStakeSource } from './stake.ts';

export async function createChainStakeSource(config: MinerConfig): Promise<SyncedStakeSource> {
  // Placeholder until lib/metagraph.ts lands: fail at start-up with the way out, never at the first request.
  throw new MinerError(`reading the metagraph of netuid ${config.chain.netuid} is not wired yet`, {
    hint: 'set BLACKLIST_ENABLED=false for now',
  });
}
