/**
 * The settings table (lib/core/settings.ts) as the container sees it: containerEnv (lib/deploy/docker.ts) passes
 * the container's settings under their canonical names whichever alias the miner wrote, so a deployed miner reads
 * what `npm start` reads; registry credentials never pass.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../lib/core/config.ts';
import { containerEnv } from '../../lib/deploy/docker.ts';

test("containerEnv: Score's harness names and the other aliases arrive under canonical names, as npm start reads them", () => {
  const env = {
    VERIFY: 'false',
    BLACKLIST: 'false',
    NETUID: '423',
    PORT: '9000',
    SUBTENSOR_NETWORK: 'test',
    WALLET_NAME: 'cold',
    HOTKEY: 'hot',
    DOCKERHUB_REPO: 'repo',
  };
  const passed = containerEnv(env, { port: 9000, walletMounted: false });
  assert.deepEqual(passed, {
    VERIFY_ENABLED: 'false',
    BLACKLIST_ENABLED: 'false',
    SCOREVISION_NETUID: '423',
    MINER_PORT: '9000',
    BITTENSOR_SUBTENSOR_ENDPOINT: 'test',
    BITTENSOR_WALLET_COLD: 'cold',
    BITTENSOR_WALLET_HOT: 'hot',
  });
  // The container's server reads what the host's did.
  const host = loadConfig(env);
  const container = loadConfig(passed);
  assert.deepEqual([container.security, container.chain, container.server.port], [host.security, host.chain, host.server.port]);
  // The canonical name wins over an alias, as in loadConfig; a bad value stops here, before docker runs.
  assert.equal(containerEnv({ VERIFY_ENABLED: 'true', VERIFY: 'false' }, { port: 1, walletMounted: false }).VERIFY_ENABLED, 'true');
  assert.throws(() => containerEnv({ VERIFY: 'maybe' }, { port: 1, walletMounted: false }), /^MinerError: VERIFY="maybe" is not valid/);
});

test("containerEnv: the hotkey's address when given; never a registry credential, whatever the registry", () => {
  const address = '5DFwFpurRFaT5VtjdsATUnRakGhvUdgCghF61457QbWdsnJp';
  assert.equal(containerEnv({}, { port: 1, walletMounted: false, hotkeyAddress: address }).MINER_HOTKEY_SS58, address);
  const credentials = { DOCKERHUB_TOKEN: 'dckr_pat_x', REGISTRY_TOKEN: 'ghp_x', DOCKERHUB_USERNAME: 'a', REGISTRY_USERNAME: 'b' };
  for (const registry of ['dockerhub', 'ghcr', 'localhost:5000'])
    assert.deepEqual(containerEnv({ ...credentials, IMAGE_REGISTRY: registry }, { port: 1, walletMounted: false }), { MINER_PORT: '1' });
});

test('containerEnv: only allow-listed variables that are set and non-empty (trimmed); secrets and the rest never pass', () => {
  const env = {
    LOG_LEVEL: ' debug ',
    VERIFY_ENABLED: 'false',
    BITTENSOR_WALLET_COLD: 'cold',
    ORT_THREADS: '4',
    QUEUE_MAX: '',
    INFERENCE_CONCURRENCY: '   ',
    MIN_STAKE_THRESHOLD: undefined,
    DOCKERHUB_TOKEN: 'dckr_pat_secret',
    DOCKERHUB_USERNAME: 'alice',
    REGISTRY_TOKEN: 'ghp_secret',
    REGISTRY_USERNAME: 'alice',
    IMAGE_REPO: 'pt-solution',
    HOTKEY_URI: '//Alice',
    HOME: '/home/alice',
    PATH: '/usr/bin',
    SOMETHING_ELSE: 'x',
    BITTENSOR_WALLET_PATH: '/home/alice/.bittensor/wallets',
  };
  assert.deepEqual(containerEnv(env, { port: 8000, walletMounted: false }), {
    LOG_LEVEL: 'debug',
    VERIFY_ENABLED: 'false',
    BITTENSOR_WALLET_COLD: 'cold',
    ORT_THREADS: '4',
    MINER_PORT: '8000',
  });
});

test('containerEnv: MINER_PORT is forced to the given port; BITTENSOR_WALLET_PATH=/wallets only when the wallet is mounted', () => {
  assert.deepEqual(containerEnv({ MINER_PORT: '9999' }, { port: 8123, walletMounted: true }), {
    MINER_PORT: '8123',
    BITTENSOR_WALLET_PATH: '/wallets',
  });
  assert.deepEqual(containerEnv({}, { port: 8000, walletMounted: false }), { MINER_PORT: '8000' });
});
