import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, encodeAddress } from '@polkadot/util-crypto';
import type { StakeSnapshot } from '../lib/chain/metagraph.ts';
import { loadConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { type LogLevel, RepeatSummary } from '../lib/core/log.ts';
import { BODY_HASHES, type SignatureScheme, signRequest } from '../lib/protocol/signature.ts';
import { createGuard, createGuardFromConfig, formatStake, type GuardOptions, openGuard, type RequestGuard } from '../server/guard.ts';
import { HttpError } from '../server/http.ts';
import { NonceStore } from '../server/nonces.ts';
import { createMemoryStakeSource, SyncedStakeSource } from '../server/stake.ts';
import { logged } from './support/logged.ts';

const T0 = 1_700_000_000_000;
const TAO = 1_000_000_000n;
const BODY = Buffer.from('{"challenge_id":"c1","video_url":"https://example.com/v.mp4","frames":null}');

let alice: KeyringPair; // validator with enough stake
let bob: KeyringPair; // another key
let dave: KeyringPair; // validator with too little stake
let ferdie: KeyringPair; // exactly at the threshold
let miner: KeyringPair; // this miner

before(async () => {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  [alice, bob, dave, ferdie, miner] = ['//Alice', '//Bob', '//Dave', '//Ferdie', '//Charlie'].map((uri) => keyring.addFromUri(uri));
});

function stakes() {
  return createMemoryStakeSource({
    [alice.address]: 5_000n * TAO,
    [dave.address]: 999n * TAO + TAO / 2n,
    [u8aToHex(ferdie.publicKey)]: 1_000n * TAO,
  });
}

/** A guard on a fixed clock (T0) with both toggles on unless overridden. */
function makeGuard(overrides: Partial<GuardOptions> = {}): RequestGuard {
  return createGuard({
    blacklistEnabled: true,
    verifyEnabled: true,
    minStakeTao: 1000,
    stakeSource: stakes(),
    minerHotkey: miner.address,
    nonces: new NonceStore({ now: () => T0, startedAt: T0 - 600_000, purgeIntervalMs: 0 }),
    ...overrides,
  });
}

let sequence = 0n;

/** Signed headers at T0; central nonces are bare ns, so a counter keeps each request's nonce distinct. */
function signed(
  pair: KeyringPair,
  scheme: SignatureScheme = 'central',
  options: { nowMs?: number; nonce?: string; wrap?: boolean; minerHotkey?: string; body?: Buffer } = {},
) {
  const nonce = options.nonce ?? (scheme === 'central' ? `${BigInt(options.nowMs ?? T0) * 1_000_000n + sequence++}` : undefined);
  return signRequest(pair, scheme, options.body ?? BODY, { nowMs: T0, minerHotkey: miner.address, ...options, nonce });
}

function only(headers: Record<string, string>, prefixed: boolean): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith('X-') === prefixed));
}

function toX(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [`X-${name}`, value]));
}

async function expectRejected(promise: Promise<void>, status: number, detail: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof HttpError, `expected HttpError, got ${String(error)}`);
    assert.equal(error.status, status);
    assert.equal(error.message, detail);
    return;
  }
  assert.fail(`expected ${status} ${detail}, but the request passed`);
}

test('central scheme passes with bare headers, X- headers, or both', async () => {
  const guard = makeGuard();
  const headers = signed(alice, 'central', { nonce: `${BigInt(T0) * 1_000_000n}` });
  await guard.check({ headers, body: BODY });
  for (const prefixed of [false, true]) {
    await guard.check({
      headers: only(signed(alice, 'central', { nonce: `${BigInt(T0) * 1_000_000n + (prefixed ? 2n : 1n)}` }), prefixed),
      body: BODY,
    });
  }
  assert.equal(guard.health().nonces, 3);
  guard.close();
});

test('fiber scheme passes with bare or X- headers', async () => {
  const guard = makeGuard();
  await guard.check({ headers: signed(alice, 'fiber'), body: BODY });
  await guard.check({ headers: toX(signed(alice, 'fiber')), body: BODY });
  guard.close();
});

test('<Bytes>-wrapped signatures pass under both schemes', async () => {
  const guard = makeGuard();
  await guard.check({ headers: signed(alice, 'central', { wrap: true }), body: BODY });
  await guard.check({ headers: signed(alice, 'fiber', { wrap: true }), body: BODY });
  guard.close();
});

test('fiber: our key spelled with another SS58 prefix passes; a message for another miner does not', async () => {
  const guard = makeGuard();
  const otherSpelling = encodeAddress(miner.publicKey, 0);
  await guard.check({ headers: signed(alice, 'fiber', { minerHotkey: otherSpelling }), body: BODY });
  await expectRejected(
    guard.check({ headers: signed(alice, 'fiber', { minerHotkey: bob.address }), body: BODY }),
    401,
    'Invalid signature',
  );
  guard.close();
});

test('body tampered by one byte: Invalid signature', async () => {
  const guard = makeGuard();
  for (const scheme of ['central', 'fiber'] as const) {
    const tampered = Buffer.from(BODY);
    tampered[5] ^= 0x01;
    await expectRejected(guard.check({ headers: signed(alice, scheme), body: tampered }), 401, 'Invalid signature');
  }
  guard.close();
});

test('signature made by another key: Invalid signature', async () => {
  const guard = makeGuard();
  const headers = signed(alice);
  const forged = signed(bob, 'central', { nonce: headers.nonce });
  await expectRejected(
    guard.check({ headers: { ...headers, signature: forged.signature, 'X-Signature': forged.signature }, body: BODY }),
    401,
    'Invalid signature',
  );
  guard.close();
});

test('malformed signatures (no 0x, wrong length, non-hex): Invalid signature', async () => {
  const guard = makeGuard();
  const headers = only(signed(alice), false);
  for (const bad of [headers.signature.slice(2), headers.signature.slice(0, -2), `${headers.signature}00`, `0x${'zz'.repeat(64)}`]) {
    await expectRejected(guard.check({ headers: { ...headers, signature: bad }, body: BODY }), 401, 'Invalid signature');
  }
  // None of them consumed the nonce: the genuine request still passes.
  await guard.check({ headers, body: BODY });
  guard.close();
});

test('nonce 121 s stale or 121 s ahead is rejected; exactly 120 s either way passes', async () => {
  const guard = makeGuard();
  await expectRejected(guard.check({ headers: signed(alice, 'central', { nowMs: T0 - 121_000 }), body: BODY }), 401, 'Invalid nonce');
  await expectRejected(guard.check({ headers: signed(alice, 'central', { nowMs: T0 + 121_000 }), body: BODY }), 401, 'Invalid nonce');
  await guard.check({ headers: signed(alice, 'central', { nonce: `${BigInt(T0 - 120_000) * 1_000_000n}` }), body: BODY });
  await guard.check({ headers: signed(alice, 'fiber', { nowMs: T0 + 120_000 }), body: BODY });
  guard.close();
});

test('replayed nonce is rejected', async () => {
  const guard = makeGuard();
  const headers = signed(alice, 'fiber');
  await guard.check({ headers, body: BODY });
  await expectRejected(guard.check({ headers, body: BODY }), 401, 'Invalid nonce');
  guard.close();
});

test('malformed nonces are rejected', async () => {
  const guard = makeGuard();
  for (const nonce of ['abc', '_1700000000000000000', '1e18', '170000000000000000000000']) {
    await expectRejected(guard.check({ headers: signed(alice, 'central', { nonce }), body: BODY }), 401, 'Invalid nonce');
  }
  guard.close();
});

test('a nonce sent first with a bad signature is still usable by the real request', async () => {
  const guard = makeGuard();
  const real = only(signed(alice), false);
  const forged = only(signed(bob, 'central', { nonce: real.nonce }), false);
  await expectRejected(guard.check({ headers: { ...real, signature: forged.signature }, body: BODY }), 401, 'Invalid signature');
  await expectRejected(guard.check({ headers: real, body: Buffer.from('{}') }), 401, 'Invalid signature');
  await guard.check({ headers: real, body: BODY });
  guard.close();
});

test('each missing security header is named', async () => {
  const full = only(signed(alice), false);
  for (const [name, guardOptions] of [
    ['validator-hotkey', {}],
    ['nonce', {}],
    ['signature', {}],
    ['validator-hotkey', { blacklistEnabled: false }],
  ] as const) {
    const guard = makeGuard(guardOptions);
    const headers = { ...full };
    delete headers[name];
    await expectRejected(guard.check({ headers, body: BODY }), 401, `Missing header: ${name}`);
    guard.close();
  }
  // miner-hotkey is optional: the central scheme does not sign it and the fiber scheme uses our own key.
  const guard = makeGuard();
  const withoutMiner = { ...full };
  delete withoutMiner['miner-hotkey'];
  await guard.check({ headers: withoutMiner, body: BODY });
  guard.close();
});

test('stake gate: below the threshold, exactly at it, above it, absent', async () => {
  const guard = makeGuard();
  await expectRejected(guard.check({ headers: signed(dave), body: BODY }), 403, 'Insufficient stake of 999.5');
  await guard.check({ headers: signed(ferdie), body: BODY });
  await guard.check({ headers: signed(alice), body: BODY });
  await expectRejected(guard.check({ headers: signed(bob), body: BODY }), 403, 'Hotkey not found in metagraph');
  await expectRejected(guard.check({ headers: { 'validator-hotkey': 'nonsense' }, body: BODY }), 403, 'Hotkey not found in metagraph');
  guard.close();
});

test('stake gate runs before the signature check', async () => {
  const guard = makeGuard();
  // Dave's request is also unsigned: the stake verdict comes first.
  await expectRejected(guard.check({ headers: { 'validator-hotkey': dave.address }, body: BODY }), 403, 'Insufficient stake of 999.5');
  // Alice passes the gate, then fails on the missing signature headers.
  await expectRejected(guard.check({ headers: { 'X-Validator-Hotkey': alice.address }, body: BODY }), 401, 'Missing header: nonce');
  guard.close();
});

test('stake gate alone (verify off) needs only the hotkey header', async () => {
  const guard = makeGuard({ verifyEnabled: false });
  await guard.check({ headers: { 'validator-hotkey': alice.address }, body: BODY });
  await guard.check({ headers: { 'x-validator-hotkey': encodeAddress(alice.publicKey, 0) }, body: BODY });
  await expectRejected(guard.check({ headers: { 'validator-hotkey': bob.address }, body: BODY }), 403, 'Hotkey not found in metagraph');
  assert.equal(guard.health().nonces, undefined);
  guard.close();
});

test('allow-list bypasses the stake lookup (any prefix) but not the signature', async () => {
  const guard = makeGuard({ validatorAllowlist: [encodeAddress(bob.publicKey, 0)] });
  await guard.check({ headers: signed(bob), body: BODY });
  const unsigned = only(signed(bob), false);
  unsigned.signature = signed(alice, 'central', { nonce: unsigned.nonce }).signature;
  await expectRejected(guard.check({ headers: unsigned, body: BODY }), 401, 'Invalid signature');
  assert.throws(() => makeGuard({ validatorAllowlist: ['not-an-address'] }), /VALIDATOR_ALLOWLIST/);
  guard.close();
});

test('both toggles off: no headers needed', async () => {
  const guard = createGuard({ blacklistEnabled: false, verifyEnabled: false, minStakeTao: 1000 });
  await guard.check({ headers: {}, body: Buffer.from('anything') });
  assert.deepEqual(guard.health().blacklist, false);
  await openGuard.check({ headers: {}, body: Buffer.alloc(0) });
  const fromConfig = await createGuardFromConfig(loadConfig({ BLACKLIST_ENABLED: 'false', VERIFY_ENABLED: '0' }));
  assert.equal(fromConfig, openGuard);
  guard.close();
});

test('blacklist on without a stake source is a configuration error', () => {
  assert.throws(() => createGuard({ blacklistEnabled: true, verifyEnabled: false, minStakeTao: 1 }), MinerError);
});

test('formatStake prints like Python floats', () => {
  assert.equal(formatStake(999.5), '999.5');
  assert.equal(formatStake(12), '12.0');
  assert.equal(formatStake(0), '0.0');
});

test('synced stake source: keeps the last good snapshot when a refresh fails', async () => {
  const answers: Array<Pick<StakeSnapshot, 'block' | 'stakes'> | Error> = [
    { block: 100, stakes: new Map([[alice.address, 5_000n * TAO]]) },
    new Error('connection reset'),
    { block: 102, stakes: new Map() }, // an empty metagraph is a decode problem, not news
    { block: 103, stakes: new Map([[u8aToHex(bob.publicKey), 2_000n * TAO]]) },
  ];
  const source = new SyncedStakeSource({
    refreshMs: 0,
    fetchSnapshot: async () => {
      const next = answers.shift();
      if (!next || next instanceof Error) throw next ?? new Error('no more answers');
      return next;
    },
  });
  await source.start();
  const aliceHex = u8aToHex(alice.publicKey);
  assert.equal(source.lookup(aliceHex), 5_000n * TAO);
  assert.equal(await source.refresh(), false);
  assert.equal(source.lookup(aliceHex), 5_000n * TAO);
  assert.equal(source.health().consecutive_failures, 1);
  assert.equal(source.health().last_error, 'connection reset');
  assert.equal(await source.refresh(), false);
  assert.equal(source.lookup(aliceHex), 5_000n * TAO);
  assert.equal(source.health().block, '100');
  assert.equal(await source.refresh(), true);
  assert.equal(source.lookup(aliceHex), undefined);
  assert.equal(source.lookup(u8aToHex(bob.publicKey)), 2_000n * TAO);
  assert.deepEqual([source.health().block, source.health().hotkeys, source.health().consecutive_failures], ['103', 1, 0]);
  source.close();
});

test('synced stake source: a failed first sync fails start-up with the way out', async () => {
  const source = new SyncedStakeSource({ refreshMs: 1000, fetchSnapshot: async () => Promise.reject(new Error('ECONNREFUSED')) });
  await assert.rejects(
    source.start(),
    (error: unknown) =>
      error instanceof MinerError && /ECONNREFUSED/.test(error.message) && /BLACKLIST_ENABLED=false/.test(error.hint ?? ''),
  );
  assert.equal(source.synced, false);
  source.close();
});

test('createGuardFromConfig: no hotkey address or unreachable chain fails at start-up with the ways out', async () => {
  const config = loadConfig({ BLACKLIST_ENABLED: 'true', VERIFY_ENABLED: 'true', BITTENSOR_WALLET_PATH: '/nonexistent/wallets' });
  // The real address loader: no setting, no public file, no hotkey file.
  await assert.rejects(createGuardFromConfig(config, { createStakeSource: async () => stakes() }), (error: unknown) => {
    assert.ok(error instanceof MinerError);
    assert.match(error.message, /miner hotkey's address cannot be found: no address for the miner hotkey: MINER_HOTKEY_SS58 is not set/);
    assert.match(
      error.message,
      /\/nonexistent\/wallets\/default\/hotkeys\/defaultpub\.txt nor \/nonexistent\/wallets\/default\/hotkeys\/default exists/,
    );
    assert.match(error.hint ?? '', /set MINER_HOTKEY_SS58/);
    assert.match(error.hint ?? '', /read-only/);
    assert.match(error.hint ?? '', /BLACKLIST_ENABLED=false and VERIFY_ENABLED=false/);
    return true;
  });
  await assert.rejects(
    createGuardFromConfig(config, {
      loadMinerHotkey: async () => miner.address,
      createStakeSource: async () => Promise.reject(new Error('timeout connecting')),
    }),
    (error: unknown) =>
      error instanceof MinerError &&
      /netuid 44/.test(error.message) &&
      /timeout connecting/.test(error.message) &&
      /VERIFY_ENABLED=false/.test(error.hint ?? ''),
  );
});

test('createGuardFromConfig: with wallet and stake source, the guard enforces both checks', async () => {
  const config = loadConfig({ MIN_STAKE_THRESHOLD: '1000', VALIDATOR_ALLOWLIST: bob.address });
  const guard = await createGuardFromConfig(config, {
    loadMinerHotkey: async () => miner.address,
    createStakeSource: async () => stakes(),
  });
  const now = Date.now();
  await guard.check({ headers: signRequest(alice, 'fiber', BODY, { minerHotkey: miner.address, nowMs: now }), body: BODY });
  await guard.check({ headers: signRequest(bob, 'central', BODY, { nowMs: now }), body: BODY });
  await expectRejected(
    guard.check({ headers: signRequest(dave, 'central', BODY, { nowMs: now }), body: BODY }),
    403,
    'Insufficient stake of 999.5',
  );
  const health = guard.health();
  assert.deepEqual(
    [health.blacklist, health.verify, health.miner_hotkey, health.allowlist, health.nonces],
    [true, true, miner.address, 1, 2],
  );
  guard.close();
});

test('createGuardFromConfig: MINER_HOTKEY_SS58 alone (no wallet) is what fiber signatures are checked against', async () => {
  const config = loadConfig({
    BLACKLIST_ENABLED: 'false',
    VERIFY_ENABLED: 'true',
    MINER_HOTKEY_SS58: encodeAddress(miner.publicKey, 0), // another prefix's spelling of the same key
    BITTENSOR_WALLET_PATH: '/nonexistent/wallets',
  });
  const guard = await createGuardFromConfig(config);
  assert.equal(guard.health().miner_hotkey, miner.address);
  const now = Date.now();
  await guard.check({ headers: signRequest(alice, 'fiber', BODY, { minerHotkey: miner.address, nowMs: now }), body: BODY });
  await expectRejected(
    guard.check({ headers: signRequest(alice, 'fiber', BODY, { minerHotkey: bob.address, nowMs: now }), body: BODY }),
    401,
    'Invalid signature',
  );
  guard.close();
});

test("createGuardFromConfig: the address from the wallet's public file; a readable hotkey file beside it is warned about", async () => {
  const wallets = mkdtempSync(path.join(os.tmpdir(), 'score-guard-wallet-'));
  try {
    const hotkeys = path.join(wallets, 'cold', 'hotkeys');
    mkdirSync(hotkeys, { recursive: true });
    writeFileSync(path.join(hotkeys, 'minerpub.txt'), JSON.stringify({ ss58Address: miner.address, publicKey: u8aToHex(miner.publicKey) }));
    const config = loadConfig({
      BLACKLIST_ENABLED: 'false',
      VERIFY_ENABLED: 'true',
      BITTENSOR_WALLET_PATH: wallets,
      BITTENSOR_WALLET_COLD: 'cold',
      BITTENSOR_WALLET_HOT: 'miner',
    });
    const alone = await logged(() => createGuardFromConfig(config));
    assert.equal(alone.value.health().miner_hotkey, miner.address);
    assert.ok(alone.lines.some((line) => /miner hotkey address source="public file" file=\S+minerpub\.txt/.test(line)));
    assert.ok(!alone.lines.some((line) => /secret is readable/.test(line)));
    alone.value.close();

    writeFileSync(path.join(hotkeys, 'miner'), JSON.stringify({ secretSeed: '0x00', ss58Address: miner.address }), { mode: 0o600 });
    const beside = await logged(() => createGuardFromConfig(config));
    assert.equal(beside.value.health().miner_hotkey, miner.address);
    assert.ok(beside.lines.some((line) => /WARN .*the hotkey file with its secret is readable by the miner/.test(line)));
    beside.value.close();
  } finally {
    rmSync(wallets, { recursive: true, force: true });
  }
});

test('a forged request claiming a staked hotkey: its body hashed once, by the one scheme its nonce names', async () => {
  const calls = { sha256: 0, blake2b256: 0 };
  const guard = makeGuard({
    bodyHashes: {
      sha256: (bytes) => {
        calls.sha256++;
        return BODY_HASHES.sha256(bytes);
      },
      blake2b256: (bytes) => {
        calls.blake2b256++;
        return BODY_HASHES.blake2b256(bytes);
      },
    },
  });
  const big = Buffer.alloc(8 * 1024, 'x');
  for (const scheme of ['central', 'fiber'] as const) {
    // Signed by Bob, claiming Alice (staked), with our miner key spelled two ways: still one message to check.
    const headers: Record<string, string> = {
      ...signed(bob, scheme, { body: big }),
      'validator-hotkey': alice.address,
      'X-Validator-Hotkey': alice.address,
    };
    if (scheme === 'fiber') headers['miner-hotkey'] = encodeAddress(miner.publicKey, 0);
    await expectRejected(guard.check({ headers, body: big }), 401, 'Invalid signature');
  }
  assert.deepEqual(calls, { sha256: 1, blake2b256: 1 });
  await guard.check({ headers: signed(alice, 'central'), body: BODY });
  assert.deepEqual(calls, { sha256: 1, blake2b256: 2 });
  guard.close();
});

test('rejections: the first of each reason logged with the caller strings cut short, repeats counted per interval', async () => {
  let now = 0;
  const lines: Array<{ level: LogLevel; message: string; fields?: Record<string, unknown> }> = [];
  const rejections = new RepeatSummary({
    intervalMs: 60_000,
    now: () => now,
    write: (level, message, fields) => lines.push({ level, message, fields }),
  });
  const guard = makeGuard({ rejections });
  const huge = `5${'x'.repeat(16_000)}`;
  for (let i = 0; i < 50; i++) {
    await expectRejected(guard.check({ headers: { 'validator-hotkey': huge }, body: BODY }), 403, 'Hotkey not found in metagraph');
    await expectRejected(guard.check({ headers: signed(bob), body: BODY }), 403, 'Hotkey not found in metagraph');
  }
  assert.equal(lines.length, 2, 'one line per reason');
  assert.deepEqual(
    lines.map((line) => [line.level, line.message, line.fields?.reason]),
    [
      ['info', 'request rejected', 'hotkey is not SS58'],
      ['info', 'request rejected', 'not in metagraph'],
    ],
  );
  const logged = lines[0].fields?.hotkey as string;
  assert.ok(logged.length < 100, `hotkey logged with ${logged.length} characters`);
  assert.match(logged, /…\(16001 chars\)$/);
  now = 61_000;
  rejections.flush();
  assert.deepEqual(
    lines.slice(2).map((line) => [line.fields?.key, line.fields?.repeated, line.fields?.over_s]),
    [
      ['403 hotkey is not SS58', 49, 61],
      ['403 not in metagraph', 49, 61],
    ],
  );
  guard.close();
});
