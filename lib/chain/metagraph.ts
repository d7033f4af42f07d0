/**
 * Hotkey -> total stake for one subnet, from the runtime API `SubnetInfoRuntimeApi`.
 *
 *   const snap = await fetchStakes(api, 44);
 *   snap.block                        // block the snapshot was read at
 *   snap.stakes.get(hotkeyToHex(a)!)  // bigint rao, key = 0x-hex of the 32-byte hotkey public key (lower case)
 *   stakeOf(snap, ss58OrHex)          // same, 0n when absent, accepts an SS58 address too
 *
 * First `get_selective_metagraph(netuid, [52 hotkeys, 69 total stake])`; when that API is missing or answers
 * without both vectors (their numbering changes between runtime versions), the full `get_metagraph(netuid)`.
 * Values are `Compact<u64>` rao as the runtime reports them ("total stake", the same number validators use).
 */
import type { ApiPromise } from '@polkadot/api';
import { encodeAddress } from '@polkadot/util-crypto';
import { MinerError } from '../core/errors.ts';
import { hotkeyToHex } from '../protocol/signature.ts';

const METAGRAPH_INDEX_HOTKEYS = 52;
const METAGRAPH_INDEX_TOTAL_STAKE = 69;

/** The one stake-snapshot type: what fetchStakes reads; the server's stake gate (server/stake.ts) keeps block and stakes. */
export interface StakeSnapshot {
  netuid: number;
  /** Block number the snapshot was read at. */
  block: number;
  /** 0x-hex public key (lower case, lib/protocol/signature.ts hotkeyToHex) -> total stake in rao. */
  stakes: Map<string, bigint>;
  /** SS58 (prefix 42) addresses by uid. */
  hotkeys: string[];
  /** Which runtime call answered. */
  source: 'selective' | 'full';
}

/** Stake of a hotkey (SS58 or hex) in rao; 0n when it is not in the snapshot (or not a hotkey). */
export function stakeOf(snapshot: StakeSnapshot, hotkey: string): bigint {
  const key = hotkeyToHex(hotkey);
  return key === undefined ? 0n : (snapshot.stakes.get(key) ?? 0n);
}

/** Pair up hotkeys and stakes (as `.toJSON()` gives them); undefined when they are missing or mismatched. */
export function zipStakes(hotkeys: unknown, stakes: unknown): { hotkeys: string[]; stakes: Map<string, bigint> } | undefined {
  if (!Array.isArray(hotkeys) || !Array.isArray(stakes) || hotkeys.length !== stakes.length) return undefined;
  const map = new Map<string, bigint>();
  const addresses: string[] = [];
  for (let i = 0; i < hotkeys.length; i++) {
    const key = hotkeyToHex(String(hotkeys[i]));
    if (!key) return undefined;
    const value = BigInt(String(stakes[i]));
    map.set(key, (map.get(key) ?? 0n) + value);
    addresses.push(encodeAddress(key, 42));
  }
  return { hotkeys: addresses, stakes: map };
}

type RuntimeCall = (...args: unknown[]) => Promise<{ toJSON(): unknown; isNone?: boolean }>;

/** Read hotkeys and total stakes of `netuid` at the current best block. */
export async function fetchStakes(api: ApiPromise, netuid: number): Promise<StakeSnapshot> {
  const header = await api.rpc.chain.getHeader();
  const block = header.number.toNumber();
  const at = await api.at(header.hash);
  const calls = (at.call as unknown as Record<string, Record<string, RuntimeCall | undefined> | undefined>).subnetInfoRuntimeApi;
  if (!calls?.getMetagraph) {
    throw new MinerError('this chain has no SubnetInfoRuntimeApi.get_metagraph', {
      hint: 'connect to a subtensor node (BITTENSOR_SUBTENSOR_ENDPOINT)',
    });
  }

  if (calls.getSelectiveMetagraph) {
    try {
      const result = await calls.getSelectiveMetagraph(netuid, [METAGRAPH_INDEX_HOTKEYS, METAGRAPH_INDEX_TOTAL_STAKE]);
      const json = result.toJSON() as Record<string, unknown> | null;
      const zipped = json ? zipStakes(json.hotkeys, json.totalStake) : undefined;
      if (zipped) return { netuid, block, ...zipped, source: 'selective' };
    } catch {
      // fall through to the full metagraph
    }
  }

  const full = (await calls.getMetagraph(netuid)).toJSON() as Record<string, unknown> | null;
  if (!full) {
    throw new MinerError(`netuid ${netuid} does not exist on this chain`, {
      hint: 'check SCOREVISION_NETUID (Score Vision is 44 on finney) and the endpoint',
    });
  }
  const zipped = zipStakes(full.hotkeys, full.totalStake);
  if (!zipped)
    throw new MinerError(`the metagraph of netuid ${netuid} has no hotkeys/totalStake vectors of equal length`, {
      hint: 'the runtime API changed; update score-miner',
    });
  return { netuid, block, ...zipped, source: 'full' };
}
