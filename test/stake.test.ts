/**
 * The chain-backed stake source with its connection and metagraph read injected (the real-runtime version
 * runs against the local chain harness): first sync before returning, reconnect after a failed sync, the
 * last good snapshot kept meanwhile, connection released on close; an endpoint's secrets never shown.
 */

import assert from 'node:assert/strict';
import net from 'node:net';
import { before, test } from 'node:test';
import type { ApiPromise } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { u8aToHex } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import type { StakeSnapshot } from '../lib/chain/metagraph.ts';
import { loadConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { createChainStakeSource } from '../server/stake-chain.ts';
import { logged } from './support/logged.ts';

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

test("an endpoint's API key and credentials reach neither /health's last_error, the start-up error nor the log", async () => {
  const endpoint = 'wss://alice:s3cret@rpc.example/ws?apikey=k3y-0123';
  const keyed = loadConfig({ BITTENSOR_SUBTENSOR_ENDPOINT: endpoint });
  const failure = () => new Error(`could not connect to ${endpoint}: 1006 abnormal closure (see ${endpoint}#docs)`);
  const clean = (text: string) => {
    for (const secret of ['s3cret', 'alice', 'k3y-0123', 'apikey', '#docs']) assert.ok(!text.includes(secret), text);
  };
  // The first sync fails: the start-up error and its log line.
  const first = fakeChain([failure()]);
  const { value: startError, lines } = await logged(() =>
    createChainStakeSource(keyed, first.deps).then(
      () => undefined,
      (error) => error,
    ),
  );
  assert.ok(startError instanceof MinerError);
  assert.match(
    startError.message,
    /could not connect to wss:\/\/rpc\.example\/ws: 1006 abnormal closure \(see wss:\/\/rpc\.example\/ws\)$/,
  );
  clean(startError.message);
  assert.ok(
    lines.some((line) => line.includes('metagraph sync failed')),
    'the failure was not logged',
  );
  for (const line of lines) clean(line);
  // A later refresh fails: last_error in /health's security.metagraph.
  const later = fakeChain([{ block: 10, stakes: new Map([[aliceHex, 7n]]) }, failure()]);
  const { value: source, lines: refreshLines } = await logged(async () => {
    const started = await createChainStakeSource(keyed, later.deps);
    assert.equal(await started.refresh(), false);
    return started;
  });
  try {
    const lastError = String(source.health().last_error);
    assert.equal(lastError, 'could not connect to wss://rpc.example/ws: 1006 abnormal closure (see wss://rpc.example/ws)');
    for (const line of refreshLines) clean(line);
    assert.ok(refreshLines.some((line) => line.includes('stake gate ready') && line.includes('endpoint=wss://rpc.example/ws')));
  } finally {
    source.close();
  }
});

test('through the real connection (lib/chain/connection.ts): an unreachable keyed endpoint is shown without its key', async () => {
  // A loopback port nobody listens on: the connection is refused at once.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const keyed = loadConfig({
    BITTENSOR_SUBTENSOR_ENDPOINT: `ws://alice:s3cret@127.0.0.1:${port}/ws?apikey=k3y-0123`,
    CHAIN_CONNECT_TIMEOUT_S: '5',
  });
  const { value: error, lines } = await logged(() =>
    createChainStakeSource(keyed).then(
      () => undefined,
      (failure) => failure,
    ),
  );
  assert.ok(error instanceof MinerError, String(error));
  assert.match(error.message, new RegExp(`ws://127\\.0\\.0\\.1:${port}/ws`));
  const shown = [error.message, ...lines].join('\n');
  for (const secret of ['s3cret', 'alice', 'k3y-0123', 'apikey']) assert.ok(!shown.includes(secret), shown);
  assert.ok(
    lines.some((line) => line.includes(`connecting to subtensor endpoint=ws://127.0.0.1:${port}/ws`)),
    lines.join(''),
  );
});
