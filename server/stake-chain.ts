/**
 * The stake gate's chain side: a SyncedStakeSource fed by the subnet's metagraph (lib/metagraph.ts) over a
 * connection from lib/chain.ts, synced before the port opens. Kept apart from server/stake.ts so tests of the
 * gate never load @polkadot/api.
 *
 * One connection is kept between refreshes (a metadata download per sync would be wasteful); after a failed
 * sync it is dropped, so the next refresh reconnects — possibly to the fallback endpoint — instead of
 * retrying a stuck socket.
 */
import type { ApiPromise } from '@polkadot/api';
import type { StakeSnapshot } from '../lib/chain/metagraph.ts';
import type { MinerConfig } from '../lib/core/config.ts';
import { log } from '../lib/core/log.ts';
import { redactUrl } from '../lib/core/redact.ts';
import { SyncedStakeSource } from './stake.ts';

export interface ChainStakeDeps {
  /** Default: lib/chain.ts connectChain(config.chain). */
  connect?: () => Promise<ApiPromise>;
  /** Default: lib/metagraph.ts fetchStakes. */
  fetchStakes?: (api: ApiPromise, netuid: number) => Promise<Pick<StakeSnapshot, 'block' | 'stakes'>>;
}

/** A stake source over the chain, already synced once (throws MinerError when that first sync fails). */
export async function createChainStakeSource(config: MinerConfig, deps: ChainStakeDeps = {}): Promise<SyncedStakeSource> {
  const connect = deps.connect ?? (async () => (await import('../lib/chain/connection.ts')).connectChain(config.chain));
  const fetchStakes =
    deps.fetchStakes ?? (async (api: ApiPromise, netuid: number) => (await import('../lib/chain/metagraph.ts')).fetchStakes(api, netuid));
  let api: ApiPromise | undefined;

  const drop = async () => {
    const stale = api;
    api = undefined;
    await stale?.disconnect().catch(() => undefined);
  };

  const source = new SyncedStakeSource({
    label: `netuid ${config.chain.netuid} on ${config.chain.network}`,
    refreshMs: config.security.metagraphRefreshMs,
    fetchSnapshot: async () => {
      api ??= await connect();
      return fetchStakes(api, config.chain.netuid);
    },
    onSyncFailed: drop,
    onClose: drop,
  });

  try {
    await source.start();
  } catch (error) {
    source.close();
    throw error;
  }
  log.info('stake gate ready', {
    netuid: config.chain.netuid,
    endpoint: redactUrl(config.chain.endpoint),
    min_stake_tao: config.security.minStakeTao,
  });
  return source;
}
