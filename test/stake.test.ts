/**
 * The chain-backed stake source with its connection and metagraph read injected (the real-runtime version
 * runs against the local chain harness): first sync before returning, reconnect after a failed sync, the
 * last good snapshot kept meanwhile, connection released on close.
 */

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { ApiPromise } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { u8aToHex } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import type { StakeSnapshot } from '../lib/chain/metagraph.ts';
import { loadConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { createChainStakeSource } from '../server/stake-chain.ts';

let aliceHex: string;

before(async () => {
  await cryptoWaitReady();
  aliceHex = u8aToHex(new Keyring({ type: 'sr25519' }).addFromUri('//Alice').publicKey);
});

/** Fake connections that count disconnects; each has an id so the test sees reconnects. */
function fakeChain(answers: Array<Pick<StakeSnapshot, 'block' | 'stakes'> | Error>) {
  const state = { connects: 0, disconnects: 0, usedApis: [] as number[], netuids: [] as number[] };
  const connect = async () => {
    const id = ++state.connects;
    return { id, disconnect: async () => void state.disconnects++ } as unknown as ApiPromise;
  };
  const fetchStakes = async (api: ApiPromise, netuid: number) => {
    state.usedApis.push((api as unknown as { id: number }).id);
    state.netuids.push(netuid);
    const next = answers.shift();
    if (!next || next instanceof Error) throw next ?? new Error('no more answers');
    return next;
  };
  return { state, deps: { connect, fetchStakes } };
}

const config = loadConfig({ SCOREVISION_NETUID: '44', METAGRAPH_REFRESH_S: '300' });

test('syncs before returning, keeps one connection, reconnects after a failure, keeps the last good snapshot', async () => {
  const { state, deps } = fakeChain([
    { block: 10, stakes: new Map([[aliceHex, 7n]]) },
    { block: 11, stakes: new Map([[aliceHex, 8n]]) },
    new Error('socket hang up'),
    { block: 13, stakes: new Map([[aliceHex, 9n]]) },
  ]);
  const source = await createChainStakeSource(config, deps);
  assert.equal(source.lookup(aliceHex), 7n);
  assert.equal(await source.refresh(), true);
  assert.equal(source.lookup(aliceHex), 8n);
  assert.equal(await source.refresh(), false);
  assert.equal(source.lookup(aliceHex), 8n, 'last good snapshot kept');
  assert.equal(state.disconnects, 1, 'the failed connection is dropped');
  assert.equal(await source.refresh(), true);
  assert.equal(source.lookup(aliceHex), 9n);
  assert.deepEqual(state.usedApis, [1, 1, 1, 2]);
  assert.deepEqual(state.netuids, [44, 44, 44, 44]);
  assert.equal(source.health().source, 'netuid 44 on finney');
  source.close();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(state.disconnects, 2, 'close releases the connection');
});

test('a failed first sync rejects with a MinerError and leaves no connection behind', async () => {
  const { state, deps } = fakeChain([new Error('netuid 44 does not exist')]);
  await assert.rejects(
    createChainStakeSource(config, deps),
    (error: unknown) => error instanceof MinerError && /does not exist/.test(error.message),
  );
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(state.connects, 1);
  assert.equal(state.disconnects, 1);
});

test('an unreachable endpoint fails start-up with the way out', async () => {
  const deps = { connect: async () => Promise.reject(new MinerError('cannot reach subtensor: ECONNREFUSED')) };
  await assert.rejects(
    createChainStakeSource(config, deps),
    (error: unknown) =>
      error instanceof MinerError && /ECONNREFUSED/.test(error.message) && /BLACKLIST_ENABLED=false/.test(error.hint ?? ''),
  );
});
