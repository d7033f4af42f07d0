/**
 * The chain layer against a real subtensor runtime (spec 300 wasm) running in-process (test/support/localchain.ts).
 * One chain for the whole file; each test uses its own hotkeys so the order does not matter.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { u8aToHex } from '@polkadot/util';
import { mnemonicGenerate, mnemonicToMiniSecret, sr25519PairFromSeed, encodeAddress } from '@polkadot/util-crypto';
import { startLocalChain, TEST_NETUID, type LocalChain } from './support/localchain.ts';
import { ChainError, submitTx, uidOf } from '../lib/chain.ts';
import { buildPayload, commitmentInfo, payloadJson } from '../lib/commitment.ts';
import { encryptCommitmentJson, revealRoundFor, QUICKNET_GENESIS_SECS } from '../lib/timelock.ts';
import { readPending, readRevealed } from '../lib/neuron.ts';
import { QUICKNET_PUBLIC_KEY } from '../lib/config.ts';
import { loadHotkey } from '../lib/wallet.ts';
import { main as commitMain } from '../tasks/commit.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
let local: LocalChain;
let walletDir: string;

before(async () => {
  local = await startLocalChain();
  walletDir = mkdtempSync(path.join(os.tmpdir(), 'score-chain-wallets-'));
});
after(async () => {
  await local?.close();
  if (walletDir) rmSync(walletDir, { recursive: true, force: true });
});

/** A fresh hotkey written as a real wallet file (secretPhrase + secretSeed + ss58Address). */
function makeWalletHotkey(name: string): string {
  const phrase = mnemonicGenerate(12);
  const seed = mnemonicToMiniSecret(phrase);
  const pair = sr25519PairFromSeed(seed);
  const address = encodeAddress(pair.publicKey, 42);
  const dir = path.join(walletDir, 'cold', 'hotkeys');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, name), JSON.stringify({ secretPhrase: phrase, secretSeed: u8aToHex(seed), publicKey: u8aToHex(pair.publicKey), accountId: u8aToHex(pair.publicKey), ss58Address: address }), { mode: 0o600 });
  return address;
}

function envFor(hotkeyName: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DOTENV_DISABLE: '1',
    BITTENSOR_SUBTENSOR_ENDPOINT: 'local',
    BITTENSOR_WALLET_PATH: walletDir,
    BITTENSOR_WALLET_COLD: 'cold',
    BITTENSOR_WALLET_HOT: hotkeyName,
    SCOREVISION_NETUID: String(TEST_NETUID),
    DRAND_PUBLIC_KEY: local.drand.publicKeyHex,
    ...extra,
  };
}

async function runCommit(argv: string[], env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await commitMain(argv, { env, provider: local.newProvider(), pollMs: 200, out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('register a hotkey and commit a TimelockEncrypted field -> Commitment event, pending entry, harness reveal', async () => {
  const hk = await loadHotkey({ path: walletDir, coldkey: 'cold', hotkey: 'direct' }, { env: {} }).catch(() => undefined);
  assert.equal(hk, undefined);
  const address = makeWalletHotkey('direct');
  const hotkey = await loadHotkey({ path: walletDir, coldkey: 'cold', hotkey: 'direct' }, { env: {} });
  const uid = await local.registerHotkey(TEST_NETUID, address);
  assert.equal(await uidOf(local.api, TEST_NETUID, address), uid);

  const json = payloadJson(buildPayload({ imageRepo: 'user/repo', imageTag: 'v1.0.0', imageDigest: DIGEST, elementId: 'manako/DetectFootballEvent', hotkey: address }));
  const round = revealRoundFor(Math.floor(Date.now() / 1000), 1);
  const ciphertext = encryptCommitmentJson(json, round, local.drand.publicKeyHex);
  const result = await submitTx(local.api, local.api.tx.commitments.setCommitment(TEST_NETUID, commitmentInfo(ciphertext, round)), hotkey.pair);
  const names = result.events.map((e) => `${e.event.section}.${e.event.method}`);
  // this runtime emits TimelockCommitment (netuid, who, reveal_round) for a timelocked field, Commitment for plain ones
  const ev = result.events.find((e) => e.event.section === 'commitments' && ['Commitment', 'TimelockCommitment'].includes(e.event.method));
  assert.ok(ev, names.join(','));
  assert.equal(ev.event.data[0].toString(), String(TEST_NETUID));
  assert.equal(ev.event.data[1].toString(), address);
  if (ev.event.method === 'TimelockCommitment') assert.equal(ev.event.data[2].toString(), String(round));

  const pending = await readPending(local.api, TEST_NETUID, address);
  assert.ok(pending);
  assert.deepEqual(pending.revealRounds, [BigInt(round)]);
  assert.equal(pending.ciphertexts[0], u8aToHex(ciphertext));
  assert.equal(pending.block, result.blockNumber);

  const revealed = await local.revealPending(TEST_NETUID);
  assert.deepEqual(revealed.map((r) => [r.hotkey, r.text]), [[address, json]]);
  assert.equal(await readPending(local.api, TEST_NETUID, address), undefined);
  const entries = await readRevealed(local.api, TEST_NETUID, address);
  assert.equal(entries.length, 1);
  assert.equal(entries[0].text, json);
  assert.equal(entries[0].block, revealed[0].block);
});

test('an unregistered hotkey gets commitments.AccountNotAllowedCommit with the one-line hint', async () => {
  const bob = local.dev.Bob;
  const ciphertext = encryptCommitmentJson('{"x":1}', 1000, local.drand.publicKeyHex);
  await assert.rejects(
    submitTx(local.api, local.api.tx.commitments.setCommitment(TEST_NETUID, commitmentInfo(ciphertext, 1000)), bob, { context: { hotkey: bob.address, netuid: TEST_NETUID } }),
    (error: unknown) => {
      assert.ok(error instanceof ChainError);
      assert.equal(error.chainError, 'commitments.AccountNotAllowedCommit');
      assert.equal(error.message, `commitments.AccountNotAllowedCommit: hotkey ${bob.address} is not registered on netuid ${TEST_NETUID}`);
      assert.match(error.hint ?? '', /register it first/);
      return true;
    },
  );
  // the next transaction from the same account still goes through (explicit nonce from the node)
  const next = await submitTx(local.api, local.api.tx.system.remark('0x01'), bob);
  assert.ok(next.blockNumber > 0);
});

test('tasks/commit.ts main: commits, observes the (simulated) reveal, prints the result', async () => {
  const address = makeWalletHotkey('miner');
  await local.registerHotkey(TEST_NETUID, address);
  const stop = local.autoReveal(TEST_NETUID, 200);
  try {
    const r = await runCommit(['--image', 'user/repo', '--tag', 'v1.2.3', '--digest', DIGEST, '--json', '--reveal-timeout', '60'], envFor('miner'));
    assert.equal(r.code, 0, r.err);
    const result = JSON.parse(r.out);
    assert.equal(result.hotkey, address);
    assert.deepEqual(Object.keys(result.payload), ['role', 'track', 'image_repo', 'image_tag', 'image_digest', 'element_id', 'hotkey']);
    assert.equal(result.payload.image_tag, 'v1.2.3');
    assert.ok(result.reveal_block > result.commit_block, JSON.stringify(result));
    const entries = await readRevealed(local.api, TEST_NETUID, address);
    const last = entries[entries.length - 1];
    assert.equal(last.block, result.reveal_block);
    assert.deepEqual(JSON.parse(last.text), result.payload);
  } finally {
    await stop();
  }
});

test('tasks/commit.ts main: a commit that is never revealed fails with the cause (still pending)', async () => {
  const address = makeWalletHotkey('stuck');
  await local.registerHotkey(TEST_NETUID, address);
  const r = await runCommit(['--image', 'user/repo', '--tag', 'v1', '--digest', DIGEST, '--reveal-timeout', '1.5'], envFor('stuck'));
  assert.equal(r.code, 1);
  assert.match(r.err, /was not revealed within 1.5 s; it is still pending on chain/);
  assert.match(r.err, /next: /);
  assert.ok(await readPending(local.api, TEST_NETUID, address));
});

test('tasks/commit.ts main: a commitment the chain cannot decrypt (wrong drand key) is reported as dropped', async () => {
  const address = makeWalletHotkey('wrongkey');
  await local.registerHotkey(TEST_NETUID, address);
  const stop = local.autoReveal(TEST_NETUID, 200);
  try {
    const r = await runCommit(['--image', 'user/repo', '--tag', 'v1', '--digest', DIGEST, '--reveal-timeout', '3'], envFor('wrongkey', { DRAND_PUBLIC_KEY: QUICKNET_PUBLIC_KEY }));
    assert.equal(r.code, 1);
    assert.match(r.err, /no longer pending: the chain could not decrypt it/);
    assert.match(r.err, /DRAND_PUBLIC_KEY/);
  } finally {
    await stop();
  }
  assert.deepEqual(await readRevealed(local.api, TEST_NETUID, address), []);
});

test('tasks/commit.ts main: an unregistered hotkey is refused before submitting', async () => {
  const address = makeWalletHotkey('unregistered');
  const r = await runCommit(['--image', 'user/repo', '--tag', 'v1', '--digest', DIGEST], envFor('unregistered'));
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`hotkey ${address} is not registered on netuid ${TEST_NETUID}`));
  assert.equal(await readPending(local.api, TEST_NETUID, address), undefined);
});

test('SpaceLimitExceeded is explained with the blocks until the next epoch', async () => {
  const address = makeWalletHotkey('budget');
  await local.registerHotkey(TEST_NETUID, address);
  const hotkey = await loadHotkey({ path: walletDir, coldkey: 'cold', hotkey: 'budget' }, { env: {} });
  await local.setStorage({ Commitments: { MaxSpace: 400 } });
  try {
    const ct = encryptCommitmentJson('{"a":1}', 5, local.drand.publicKeyHex);
    const send = () => submitTx(local.api, local.api.tx.commitments.setCommitment(TEST_NETUID, commitmentInfo(ct, 5)), hotkey.pair, { context: { hotkey: address, netuid: TEST_NETUID } });
    await send();
    await assert.rejects(send(), (error: unknown) => {
      assert.ok(error instanceof ChainError);
      assert.equal(error.chainError, 'commitments.SpaceLimitExceeded');
      assert.match(error.message, /^commitments\.SpaceLimitExceeded: commit budget for this epoch used; next epoch in \d+ blocks$/);
      return true;
    });
  } finally {
    await local.setStorage({ Commitments: { MaxSpace: 3100 } });
  }
  void QUICKNET_GENESIS_SECS;
});
