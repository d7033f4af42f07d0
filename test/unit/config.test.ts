/**
 * Configuration parsing (lib/core/config.ts through the settings table, lib/core/settings.ts): aliases, defaults, LOG_LEVEL with the rest of the variables, the same invalid-variable
 * error for every bad value, and the task helper applying LOG_LEVEL (and --verbose) to the logger.
 */

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { loadConfig, parseLogLevel, QUICKNET_PUBLIC_KEY } from '../../lib/core/config.ts';
import { MinerError } from '../../lib/core/errors.ts';
import { getLogLevel, setLogLevel } from '../../lib/core/log.ts';
import { SETTING_LIST } from '../../lib/core/settings.ts';
import { defineTask } from '../../lib/core/task.ts';

/** Asserts `fn` throws the invalid-variable MinerError naming `name`, the value and `expected`, with the .env hint. */
function assertInvalid(fn: () => unknown, name: string, value: string, expected: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof MinerError, String(error));
    assert.equal(error.message.startsWith(`${name}=${JSON.stringify(value)} is not valid: expected `), true, error.message);
    assert.match(error.message, expected);
    assert.equal(error.hint, `fix ${name} in your .env file or environment (see env.example)`);
    return true;
  });
}

afterEach(() => setLogLevel('info'));

test('LOG_LEVEL: default info; debug, info, warn, error in any case and with spaces', () => {
  assert.equal(loadConfig({}).log.level, 'info');
  assert.equal(loadConfig({ LOG_LEVEL: '' }).log.level, 'info');
  assert.equal(loadConfig({ LOG_LEVEL: '   ' }).log.level, 'info');
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    assert.equal(loadConfig({ LOG_LEVEL: level }).log.level, level);
    assert.equal(loadConfig({ LOG_LEVEL: ` ${level.toUpperCase()} ` }).log.level, level);
  }
  assert.equal(parseLogLevel({ LOG_LEVEL: 'Warn' }), 'warn');
});

test('LOG_LEVEL: anything else is the invalid-variable error, from loadConfig and on its own', () => {
  for (const bad of ['verbose', 'trace', 'warning', '10', 'info,debug']) {
    assertInvalid(() => loadConfig({ LOG_LEVEL: bad }), 'LOG_LEVEL', bad, /expected debug, info, warn, error$/);
    assertInvalid(() => parseLogLevel({ LOG_LEVEL: bad }), 'LOG_LEVEL', bad, /expected debug, info, warn, error$/);
  }
});

test('ORT_GRAPH_OPTIMIZATION: default extended; disabled, basic, extended, all in any case; anything else named', () => {
  assert.equal(loadConfig({}).model.graphOptimization, 'extended');
  for (const level of ['disabled', 'basic', 'extended', 'all'] as const) {
    assert.equal(loadConfig({ ORT_GRAPH_OPTIMIZATION: level }).model.graphOptimization, level);
    assert.equal(loadConfig({ ORT_GRAPH_OPTIMIZATION: ` ${level.toUpperCase()} ` }).model.graphOptimization, level);
  }
  for (const bad of ['99', 'ORT_ENABLE_ALL', 'layout', 'all,extended']) {
    assertInvalid(
      () => loadConfig({ ORT_GRAPH_OPTIMIZATION: bad }),
      'ORT_GRAPH_OPTIMIZATION',
      bad,
      /expected disabled, basic, extended, all$/,
    );
  }
});

test('other variables: integers, booleans, sizes, IPv4 and endpoints are validated the same way', () => {
  assertInvalid(() => loadConfig({ MINER_PORT: '70000' }), 'MINER_PORT', '70000', /an integer from 0 to 65535/);
  assertInvalid(() => loadConfig({ PORT: '80.5' }), 'PORT', '80.5', /an integer from 0 to 65535/);
  assertInvalid(() => loadConfig({ BLACKLIST_ENABLED: 'maybe' }), 'BLACKLIST_ENABLED', 'maybe', /true\/false/);
  assertInvalid(() => loadConfig({ MAX_BODY_BYTES: '12 parsecs' }), 'MAX_BODY_BYTES', '12 parsecs', /a size such as/);
  assertInvalid(() => loadConfig({ AXON_IP: '203.0.113.256' }), 'AXON_IP', '203.0.113.256', /an IPv4 address/);
  assertInvalid(() => loadConfig({ AXON_IP: '010.0.0.1' }), 'AXON_IP', '010.0.0.1', /an IPv4 address/);
  assertInvalid(
    () => loadConfig({ BITTENSOR_SUBTENSOR_ENDPOINT: 'mainnet' }),
    'BITTENSOR_SUBTENSOR_ENDPOINT',
    'mainnet',
    /finney, test, local/,
  );
  const ok = loadConfig({
    MINER_PORT: '0',
    BLACKLIST_ENABLED: 'off',
    MAX_BODY_BYTES: '64KiB',
    AXON_IP: '203.0.113.7',
    SUBTENSOR_NETWORK: 'local',
  });
  assert.deepEqual(
    [ok.server.port, ok.security.blacklistEnabled, ok.server.bodyMaxBytes, ok.axon.ip, ok.chain.endpoint],
    [0, false, 65536, '203.0.113.7', 'ws://127.0.0.1:9944'],
  );
  // the first non-empty alias wins and is the one named in the error
  assert.equal(loadConfig({ MINER_PORT: '', PORT: '9000' }).server.port, 9000);
  assertInvalid(() => loadConfig({ MINER_PORT: ' ', PORT: 'x' }), 'PORT', 'x', /an integer/);
});

test('the task helper applies LOG_LEVEL from the task environment; --verbose means debug; a bad value fails the task', async () => {
  const seen: string[] = [];
  const task = defineTask({
    usage: 'usage: probe',
    flags: {},
    async run() {
      seen.push(getLogLevel());
      return 0;
    },
  });
  const err: string[] = [];
  const deps = (env: Record<string, string>) => ({ env, out: () => undefined, err: (l: string) => err.push(l) });
  assert.equal(await task([], deps({ LOG_LEVEL: 'warn' })), 0);
  assert.equal(await task(['--verbose'], deps({ LOG_LEVEL: 'error' })), 0);
  assert.equal(await task([], deps({})), 0);
  assert.deepEqual(seen, ['warn', 'debug', 'info']);
  assert.equal(await task([], deps({ LOG_LEVEL: 'chatty' })), 1);
  assert.deepEqual(seen.length, 3, 'the task does not run with a bad LOG_LEVEL');
  assert.match(err.join('\n'), /^error: LOG_LEVEL="chatty" is not valid: expected debug, info, warn, error\n {2}next: fix LOG_LEVEL/);
  assert.equal(await task(['--json'], deps({})), 2, 'a task that does not report has no --json');
});

test('request limits: an 8 KiB body, 16 connections and 5 requests a second (10 at once) per address by default; 0 is off', () => {
  const { server } = loadConfig({});
  assert.deepEqual([server.bodyMaxBytes, server.connectionsPerAddress, server.requestsPerSecond, server.requestBurst], [8192, 16, 5, 10]);
  const custom = loadConfig({ MAX_CONNECTIONS_PER_ADDRESS: '0', RATE_LIMIT_PER_S: '0.5', RATE_LIMIT_BURST: '3' }).server;
  assert.deepEqual([custom.connectionsPerAddress, custom.requestsPerSecond, custom.requestBurst], [0, 0.5, 3]);
  assertInvalid(() => loadConfig({ RATE_LIMIT_PER_S: '-1' }), 'RATE_LIMIT_PER_S', '-1', /a number from 0/);
  assertInvalid(() => loadConfig({ RATE_LIMIT_BURST: '0' }), 'RATE_LIMIT_BURST', '0', /an integer from 1/);
  assertInvalid(() => loadConfig({ MAX_CONNECTIONS_PER_ADDRESS: 'many' }), 'MAX_CONNECTIONS_PER_ADDRESS', 'many', /an integer from 0/);
});

test('every alias gives the same configuration as its canonical name (and differs from the default)', () => {
  const samples: Record<string, string> = {
    MINER_PORT: '9001',
    BLACKLIST_ENABLED: 'false',
    VERIFY_ENABLED: 'false',
    BITTENSOR_SUBTENSOR_ENDPOINT: 'local',
    SCOREVISION_NETUID: '423',
    BITTENSOR_WALLET_COLD: 'cold',
    BITTENSOR_WALLET_HOT: 'hot',
    IMAGE_REPO: 'repo',
  };
  const withAliases = SETTING_LIST.filter((setting) => setting.aliases?.length);
  assert.deepEqual(withAliases.map((s) => s.name).sort(), Object.keys(samples).sort(), 'give a sample for each setting with aliases');
  for (const { name, aliases = [] } of withAliases) {
    const canonical = loadConfig({ [name]: samples[name] });
    assert.notDeepEqual(canonical, loadConfig({}), name);
    for (const alias of aliases) assert.deepEqual(loadConfig({ [alias]: samples[name] }), canonical, `${alias} reads as ${name}`);
  }
});

test('the defaults: every setting with a default parses it, and loadConfig({}) holds them', () => {
  for (const setting of SETTING_LIST) {
    if (setting.default !== undefined) assert.doesNotThrow(() => setting.parse(setting.default as string, setting.name), setting.name);
  }
  const config = loadConfig({});
  assert.deepEqual(
    [config.server.port, config.server.host, config.security.verifyEnabled, config.security.blacklistEnabled, config.chain.netuid],
    [8000, '0.0.0.0', true, true, 44],
  );
  assert.deepEqual([config.chain.network, config.chain.endpoint], ['finney', 'wss://entrypoint-finney.opentensor.ai:443']);
  assert.equal(config.chain.drandPublicKeyHex, QUICKNET_PUBLIC_KEY);
  assert.deepEqual(
    [config.deploy.hubApiUrl, config.deploy.dockerhubHost, config.deploy.startTimeoutMs],
    ['https://hub.docker.com', 'docker.io', 120_000],
  );
  assert.deepEqual(
    [config.axon.ip, config.axon.port, config.chain.fallbackEndpoint, config.server.health.token],
    [undefined, undefined, undefined, undefined],
  );
  assert.deepEqual(config.model.providers, ['cpu']);
});

test('registry credentials come from the pair IMAGE_REGISTRY chooses', () => {
  const env = { DOCKERHUB_USERNAME: 'hub', DOCKERHUB_TOKEN: 'hubtoken', REGISTRY_USERNAME: 'gh', REGISTRY_TOKEN: 'ghtoken' };
  assert.deepEqual([loadConfig(env).deploy.username, loadConfig(env).deploy.token], ['hub', 'hubtoken']);
  const ghcr = loadConfig({ ...env, IMAGE_REGISTRY: 'GHCR' }).deploy;
  assert.deepEqual([ghcr.registry, ghcr.username, ghcr.token, ghcr.credentialNames.token], ['ghcr', 'gh', 'ghtoken', 'REGISTRY_TOKEN']);
});

test('HEALTH_TOKEN: a bad one is named without repeating it', () => {
  assert.throws(
    () => loadConfig({ HEALTH_TOKEN: 'short secret' }),
    (error: unknown) =>
      error instanceof MinerError && !error.message.includes('short secret') && /^HEALTH_TOKEN is not valid/.test(error.message),
  );
  assert.equal(loadConfig({ HEALTH_TOKEN: '0123456789abcdef' }).server.health.token, '0123456789abcdef');
});
