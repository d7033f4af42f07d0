/**
 * The stake gate against the real subtensor runtime (chopsticks + spec 300 wasm), reached the way the
 * server reaches finney: by URL (the harness serves JSON-RPC over a loopback WebSocket), metagraph via the
 * runtime API, synced before the guard is returned and refreshed in the background.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { KeyringPair } from '@polkadot/keyring/types';
import { fetchStakes, stakeOf } from '../lib/chain/metagraph.ts';
import { loadConfig } from '../lib/core/config.ts';
import { signRequest } from '../lib/protocol/signature.ts';
import { startMiner } from '../server/app.ts';
import { createGuardFromConfig, formatStake, type RequestGuard } from '../server/guard.ts';
import { HttpError } from '../server/http.ts';
import { type LocalChain, startLocalChain, TEST_NETUID } from './support/localchain.ts';
import { startVideoServer } from './support/media.ts';

let local: LocalChain;
let ws: { url: string; close(): Promise<void> };
let validator: KeyringPair; // registered and staked
let newcomer: KeyringPair; // registered, no stake yet
let stranger: KeyringPair; // not in the metagraph
let minerKey: KeyringPair;
let validatorTao: number;

const BODY = Buffer.from(JSON.stringify({ challenge_id: 'c1', video_url: 'http://127.0.0.1:9/v.mp4', frames: null }));

before(async () => {
  local = await startLocalChain();
  ws = await local.serveWs();
  validator = local.dev.Dave;
  newcomer = local.dev.Ferdie;
  stranger = local.dev.Eve;
  minerKey = local.dev.Charlie;
  await local.registerHotkey(TEST_NETUID, validator.address);
  await local.registerHotkey(TEST_NETUID, newcomer.address);
  await local.addStake(validator.address, TEST_NETUID, 100n * 10n ** 9n);
  validatorTao = Number(stakeOf(await fetchStakes(local.api, TEST_NETUID), validator.address)) / 1e9;
  assert.ok(validatorTao > 0, 'the validator has stake on chain');
});

after(async () => {
  await ws?.close();
  await local?.close();
});

function configFor(env: Record<string, string>) {
  return loadConfig({
    BITTENSOR_SUBTENSOR_ENDPOINT: ws.url,
    SCOREVISION_NETUID: String(TEST_NETUID),
    CHAIN_CONNECT_TIMEOUT_S: '20',
    MINER_HOST: '127.0.0.1',
    MINER_PORT: '0',
    ...env,
  });
}

async function guardFor(env: Record<string, string>): Promise<RequestGuard> {
  return createGuardFromConfig(configFor(env), { loadMinerHotkey: async () => minerKey.address });
}

function signedBy(pair: KeyringPair) {
  return { headers: signRequest(pair, 'central', BODY, { minerHotkey: minerKey.address }), body: BODY };
}

async function expect403(promise: Promise<void>, detail: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof HttpError && error.status === 403 && error.message === detail);
}

test('stake below, at and above the threshold, and a hotkey absent from the metagraph', async () => {
  const at = await guardFor({ MIN_STAKE_THRESHOLD: String(validatorTao) });
  const above = await guardFor({ MIN_STAKE_THRESHOLD: String(validatorTao / 2) });
  const below = await guardFor({ MIN_STAKE_THRESHOLD: String(validatorTao * 1.001) });
  try {
    await at.check(signedBy(validator));
    await above.check(signedBy(validator));
    await expect403(below.check(signedBy(validator)), `Insufficient stake of ${formatStake(validatorTao)}`);
    await expect403(at.check(signedBy(newcomer)), 'Insufficient stake of 0.0');
    await expect403(at.check(signedBy(stranger)), 'Hotkey not found in metagraph');
    const health = at.health() as { metagraph: { synced: boolean; hotkeys: number; block: number } };
    assert.equal(health.metagraph.synced, true);
    assert.ok(health.metagraph.hotkeys >= 2);
    assert.ok(health.metagraph.block > 0);
  } finally {
    for (const guard of [at, above, below]) guard.close();
  }
});

test('the allow-list bypasses the stake lookup but not the signature', async () => {
  const guard = await guardFor({ VALIDATOR_ALLOWLIST: stranger.address });
  try {
    await guard.check(signedBy(stranger));
    const forged = signedBy(stranger);
    await assert.rejects(guard.check({ ...forged, body: Buffer.from(`${BODY} `) }), /Invalid signature/);
  } finally {
    guard.close();
  }
});

test('the background refresh picks up new stake without a restart', async () => {
  // Staking into this young subnet's pool buys little alpha (50 TAO -> about 0.28): a threshold of 0.1 TAO.
  const guard = await guardFor({ MIN_STAKE_THRESHOLD: '0.1', METAGRAPH_REFRESH_S: '1' });
  try {
    await expect403(guard.check(signedBy(newcomer)), 'Insufficient stake of 0.0');
    await local.addStake(newcomer.address, TEST_NETUID, 50n * 10n ** 9n);
    let passed = false;
    for (let i = 0; i < 40 && !passed; i++) {
      await new Promise((r) => setTimeout(r, 250));
      passed = await guard.check(signedBy(newcomer)).then(
        () => true,
        () => false,
      );
    }
    assert.ok(passed, 'the newcomer passes once the refreshed metagraph shows its stake');
  } finally {
    guard.close();
  }
});

test('through the server: the staked validator reaches the download, the stranger gets 403, /health shows the sync', async () => {
  const videos = await startVideoServer({});
  // The video server is on loopback: let the miner fetch from it (refused by default).
  const config = configFor({ MIN_STAKE_THRESHOLD: String(validatorTao), DOWNLOAD_ALLOW_PRIVATE: 'true' });
  const guard = await createGuardFromConfig(config, { loadMinerHotkey: async () => minerKey.address });
  const miner = await startMiner(config, guard);
  try {
    const post = (pair: KeyringPair) => {
      const body = JSON.stringify({ challenge_id: 'c1', video_url: `${videos.base}/files/none.mp4`, frames: null });
      return fetch(`${miner.url}/challenge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signRequest(pair, 'central', body, { minerHotkey: minerKey.address }) },
        body,
      });
    };
    const accepted = await post(validator);
    assert.equal(accepted.status, 502);
    assert.equal(((await accepted.json()) as { detail: string }).detail, 'could not download the video: HTTP error');
    const refused = await post(stranger);
    assert.equal(refused.status, 403);
    assert.deepEqual(await refused.json(), { detail: 'Hotkey not found in metagraph' });
    const health = (await (await fetch(`${miner.url}/health`)).json()) as {
      security: { blacklist: boolean; verify: boolean; metagraph: { synced: boolean } };
    };
    assert.equal(health.security.blacklist, true);
    assert.equal(health.security.verify, true);
    assert.equal(health.security.metagraph.synced, true);
  } finally {
    await miner.close();
    await videos.close();
  }
});
