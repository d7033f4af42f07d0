/**
 * The chain layer against a real subtensor runtime (spec 300 wasm) running in-process (test/support/localchain.ts).
 * One chain for the whole file; each test uses its own hotkeys so the order does not matter.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { u8aToHex } from '@polkadot/util';
import { encodeAddress, mnemonicGenerate, mnemonicToMiniSecret, sr25519PairFromSeed } from '@polkadot/util-crypto';
import { buildPayload, commitmentInfo, type Payload, payloadJson } from '../lib/chain/commitment.ts';
import { ChainError, connectChain, submitTx, uidOf } from '../lib/chain/connection.ts';
import { fetchStakes, stakeOf, zipStakes } from '../lib/chain/metagraph.ts';
import { readPending, readRevealed } from '../lib/chain/neuron.ts';
import { encryptCommitmentJson, revealRoundFor, scaleEncodeString } from '../lib/chain/timelock.ts';
import { loadHotkey } from '../lib/chain/wallet.ts';
import { PROJECT_ROOT, QUICKNET_PUBLIC_KEY } from '../lib/core/config.ts';
import { main as axonMain } from '../tasks/axon.ts';
import { main as commitMain } from '../tasks/commit.ts';
import { main as statusMain } from '../tasks/status.ts';
import { type LocalChain, startLocalChain, TEST_NETUID } from './support/localchain.ts';

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
  writeFileSync(
    path.join(dir, name),
    JSON.stringify({
      secretPhrase: phrase,
      secretSeed: u8aToHex(seed),
      publicKey: u8aToHex(pair.publicKey),
      accountId: u8aToHex(pair.publicKey),
      ss58Address: address,
    }),
    { mode: 0o600 },
  );
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
    // The deploy lock and state of these commits stay in the test's own folder.
    DEPLOY_STATE_DIR: path.join(walletDir, 'deploy-state'),
    ...extra,
  };
}

async function runTask(
  task: 'commit' | 'axon' | 'status',
  argv: string[],
  env: Record<string, string>,
  extra: { now?: () => number } = {},
) {
  const out: string[] = [];
  const err: string[] = [];
  const deps = {
    env,
    provider: local.newProvider(),
    pollMs: 200,
    out: (l: string) => out.push(l),
    err: (l: string) => err.push(l),
    ...extra,
  };
  const code = await (task === 'commit' ? commitMain : task === 'axon' ? axonMain : statusMain)(argv, deps);
  return { code, out: out.join('\n'), err: err.join('\n') };
}
const runCommit = (argv: string[], env: Record<string, string>) => runTask('commit', argv, env);

test('register a hotkey and commit a TimelockEncrypted field -> Commitment event, pending entry, harness reveal', async () => {
  const hk = await loadHotkey({ path: walletDir, coldkey: 'cold', hotkey: 'direct' }, { env: {} }).catch(() => undefined);
  assert.equal(hk, undefined);
  const address = makeWalletHotkey('direct');
  const hotkey = await loadHotkey({ path: walletDir, coldkey: 'cold', hotkey: 'direct' }, { env: {} });
  const uid = await local.registerHotkey(TEST_NETUID, address);
  assert.equal(await uidOf(local.api, TEST_NETUID, address), uid);

  const json = payloadJson(
    buildPayload({
      imageRepo: 'user/repo',
      imageTag: 'v1.0.0',
      imageDigest: DIGEST,
      elementId: 'manako/DetectFootballEvent',
      hotkey: address,
    }),
  );
  const round = revealRoundFor(Math.floor(Date.now() / 1000), 1);
  const ciphertext = encryptCommitmentJson(json, round, local.drand.publicKeyHex);
  const result = await submitTx(
    local.api,
    local.api.tx.commitments.setCommitment(TEST_NETUID, commitmentInfo(ciphertext, round)),
    hotkey.pair,
  );
  const names = result.events.map((e) => `${e.event.section}.${e.event.method}`);
  // this runtime emits TimelockCommitment (netuid, who, reveal_round) for a timelocked field, Commitment for plain ones
  const ev = result.events.find((e) => e.event.section === 'commitments' && ['Commitment', 'TimelockCommitment'].includes(e.event.method));
  assert.ok(ev, names.join(','));
  assert.equal(ev.event.data[0].toString(), String(TEST_NETUID));
  assert.equal(ev.event.data[1].toString(), address);
  if (ev.event.method === 'TimelockCommitment') assert.equal(ev.event.data[2].toString(), String(round));

  // the extrinsic in the block: signed by the hotkey with a mortal era of 128 blocks
  const block = await local.api.rpc.chain.getBlock(result.blockHash);
  const ext = block.block.extrinsics.find((x) => x.isSigned && x.signer.toString() === address);
  assert.ok(ext);
  assert.equal(`${ext.method.section}.${ext.method.method}`, 'commitments.setCommitment');
  assert.equal(ext.era.isMortalEra, true);
  assert.equal(ext.era.asMortalEra.period.toNumber(), 128);

  const pending = await readPending(local.api, TEST_NETUID, address);
  assert.ok(pending);
  assert.deepEqual(pending.revealRounds, [BigInt(round)]);
  assert.equal(pending.ciphertexts[0], u8aToHex(ciphertext));
  assert.equal(pending.block, result.blockNumber);

  const revealed = await local.revealPending(TEST_NETUID);
  assert.deepEqual(
    revealed.map((r) => [r.hotkey, r.text]),
    [[address, json]],
  );
  assert.equal((await readPending(local.api, TEST_NETUID, address))?.revealRounds.length ?? 0, 0);
  const entries = await readRevealed(local.api, TEST_NETUID, address);
  assert.equal(entries.length, 1);
  assert.equal(entries[0].text, json);
  assert.equal(entries[0].block, revealed[0].block);
});

test('an unregistered hotkey gets commitments.AccountNotAllowedCommit with the one-line hint', async () => {
  const bob = local.dev.Bob;
  const ciphertext = encryptCommitmentJson('{"x":1}', 1000, local.drand.publicKeyHex);
  await assert.rejects(
    submitTx(local.api, local.api.tx.commitments.setCommitment(TEST_NETUID, commitmentInfo(ciphertext, 1000)), bob, {
      context: { hotkey: bob.address, netuid: TEST_NETUID },
    }),
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
    const r = await runCommit(
      ['--image', 'user/repo', '--tag', 'v1.2.3', '--digest', DIGEST, '--json', '--reveal-timeout', '60'],
      envFor('miner'),
    );
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
    const r = await runCommit(
      ['--image', 'user/repo', '--tag', 'v1', '--digest', DIGEST, '--reveal-timeout', '3'],
      envFor('wrongkey', { DRAND_PUBLIC_KEY: QUICKNET_PUBLIC_KEY }),
    );
    assert.equal(r.code, 1);
    assert.match(r.err, /no longer pending: the chain could not decrypt it/);
    assert.match(r.err, /DRAND_PUBLIC_KEY/);
  } finally {
    await stop();
  }
  assert.deepEqual(await readRevealed(local.api, TEST_NETUID, address), []);
});

test('tasks/commit.ts main: the same payload committed again is done only at its own reveal, not an earlier identical one', async () => {
  const address = makeWalletHotkey('twice');
  await local.registerHotkey(TEST_NETUID, address);
  const env = envFor('twice');
  const argv = ['--image', 'user/repo', '--tag', 'v5', '--digest', DIGEST, '--json'];
  let stop = local.autoReveal(TEST_NETUID, 200);
  let first: { payload: Payload; commit_block: number; reveal_block: number };
  try {
    const r = await runCommit([...argv, '--reveal-timeout', '60'], env);
    assert.equal(r.code, 0, r.err);
    first = JSON.parse(r.out);
  } finally {
    await stop();
  }
  const json = payloadJson(first.payload);

  // 0. a plain rerun sees its payload already revealed and submits nothing
  const rerun = await runCommit(argv, env);
  assert.equal(rerun.code, 0, rerun.err);
  assert.deepEqual([JSON.parse(rerun.out).unchanged, JSON.parse(rerun.out).reveal_block], [true, first.reveal_block]);
  assert.equal(await readPending(local.api, TEST_NETUID, address), undefined);

  // 1. --force commits again; nobody reveals the second commitment: the identical text revealed before it was submitted is not its reveal
  const second = await runCommit([...argv, '--force', '--reveal-timeout', '1.5'], env);
  assert.equal(second.code, 1, `accepted an earlier reveal as its own: ${second.out}`);
  assert.match(second.err, /was not revealed within 1.5 s; it is still pending on chain/);
  const pending = await readPending(local.api, TEST_NETUID, address);
  assert.ok(pending && pending.block > first.reveal_block);
  assert.deepEqual(
    (await readRevealed(local.api, TEST_NETUID, address)).map((e) => [e.text, e.block]),
    [[json, first.reveal_block]],
  );

  // 2. an older commitment revealed in the very block that includes the new one (the pallet reveals in
  //    on_initialize, before the block's extrinsics) is not the new one's reveal either
  await local.revealPending(TEST_NETUID);
  const revealedKey = local.api.query.commitments.revealedCommitments.key(TEST_NETUID, address);
  const existing = (await local.api.query.commitments.revealedCommitments(TEST_NETUID, address)).toJSON() as Array<[string, number]>;
  const commitBlock = local.head() + 1; // Instant mode: the commit's own transaction builds the next block
  const seeded = [...existing, [u8aToHex(scaleEncodeString(json)), commitBlock]];
  await local.setStorage([[revealedKey, u8aToHex(local.api.createType('Vec<(Bytes, u64)>', seeded).toU8a())]]);
  stop = local.autoReveal(TEST_NETUID, 200);
  try {
    const third = await runCommit([...argv, '--force', '--reveal-timeout', '60'], env);
    assert.equal(third.code, 0, third.err);
    const result = JSON.parse(third.out);
    assert.equal(result.commit_block, commitBlock, 'the seeded reveal is in the block that includes the commitment');
    assert.ok(result.reveal_block > result.commit_block, `accepted the reveal in its own inclusion block: ${third.out}`);
    const entries = await readRevealed(local.api, TEST_NETUID, address);
    assert.deepEqual(entries.at(-1), { text: json, block: result.reveal_block });
    assert.equal(entries.filter((e) => e.text === json).length, 4);
  } finally {
    await stop();
  }
});

test('tasks/commit.ts main under a fixed clock: the commitment carries the literal reveal round, one block ahead', async () => {
  const address = makeWalletHotkey('clock');
  await local.registerHotkey(TEST_NETUID, address);
  // now = 2026-01-01T00:00:02.900Z; drand quicknet genesis 1692803367, a round every 3 s, one 12 s block ahead:
  // floor((1767225602 - 1692803367 + 12) / 3) = floor(74422247 / 3) = 24807415 (three blocks ahead: 24807423)
  const r = await runTask('commit', ['--image', 'user/repo', '--tag', 'v6', '--digest', DIGEST, '--reveal-timeout', '1'], envFor('clock'), {
    now: () => 1_767_225_602_900,
  });
  assert.equal(r.code, 1);
  assert.match(r.err, /the commitment \(reveal round 24807415\) was not revealed within 1 s; it is still pending on chain/);
  const pending = await readPending(local.api, TEST_NETUID, address);
  assert.deepEqual(pending?.revealRounds, [24807415n]);
  // the ciphertext opens with drand's signature of exactly that round
  const revealed = (await local.revealPending(TEST_NETUID)).filter((x) => x.hotkey === address);
  assert.deepEqual(
    revealed.map((x) => [x.round, JSON.parse(x.text).image_tag]),
    [[24807415n, 'v6']],
  );
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
    const send = () =>
      submitTx(local.api, local.api.tx.commitments.setCommitment(TEST_NETUID, commitmentInfo(ct, 5)), hotkey.pair, {
        context: { hotkey: address, netuid: TEST_NETUID },
      });
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
});

test('tasks/axon.ts main: serve_axon round trip, skip when unchanged, refuse private addresses, rate limit explained', async () => {
  const address = makeWalletHotkey('axon');
  await local.registerHotkey(TEST_NETUID, address);
  const env = envFor('axon', { AXON_IP: '203.0.113.7', AXON_PORT: '8091' });
  // a young chain is still inside the first serving-rate-limit window: open it for the first publish
  await local.setStorage({ SubtensorModule: { ServingRateLimit: [[[TEST_NETUID], 0]] } });

  const first = await runTask('axon', ['--json'], env);
  assert.equal(first.code, 0, first.err);
  const r1 = JSON.parse(first.out);
  assert.equal(r1.changed, true);
  assert.deepEqual([r1.axon.ip, r1.axon.port, r1.axon.ipType, r1.axon.protocol], ['203.0.113.7', 8091, 4, 4]);
  const stored = (await local.api.query.subtensorModule.axons(TEST_NETUID, address)).toJSON() as {
    ip: number | string;
    port: number;
    version: number;
  };
  assert.equal(BigInt(stored.ip), 3405803783n);
  assert.equal(stored.port, 8091);
  assert.equal(stored.version, 1000); // package version 0.1.0

  const second = await runTask('axon', [], env);
  assert.equal(second.code, 0, second.err);
  assert.match(second.out, /already published/);

  const priv = await runTask('axon', [], envFor('axon', { AXON_IP: '192.168.1.20' }));
  assert.equal(priv.code, 1);
  assert.match(priv.err, /AXON_IP 192\.168\.1\.20 is private \(RFC 1918\)/);

  const noIp = await runTask('axon', [], envFor('axon'));
  assert.equal(noIp.code, 1);
  assert.match(noIp.err, /AXON_IP is not set/);

  // a new port right away: the chain's serving rate limit, explained
  await local.setStorage({ SubtensorModule: { ServingRateLimit: [[[TEST_NETUID], 50]] } });
  const again = await runTask('axon', ['--force'], envFor('axon', { AXON_IP: '10.0.0.5', AXON_PORT: '9000' }));
  assert.equal(again.code, 1, again.out);
  assert.match(again.err, /ServingRateLimitExceeded/);
  assert.match(again.err, /next: .*wait about 10 minutes/);
});

test('metagraph: stake a hotkey and see it in fetchStakes (selective call, same as the full metagraph)', async () => {
  const hotkey = local.keyring.addFromUri('//StakeTestHotkey').address;
  await local.registerHotkey(TEST_NETUID, hotkey);
  const before = await fetchStakes(local.api, TEST_NETUID);
  assert.ok(before.hotkeys.includes(hotkey));
  assert.equal(stakeOf(before, hotkey), 0n);

  await local.addStake(hotkey, TEST_NETUID, 100n * 10n ** 9n);
  const after = await fetchStakes(local.api, TEST_NETUID);
  assert.ok(after.block > before.block);
  const stake = stakeOf(after, hotkey);
  assert.ok(stake > 0n, `stake after add_stake: ${stake}`);
  assert.equal(after.stakes.get(u8aToHex(local.keyring.decodeAddress(hotkey))), stake);

  const full = (await local.api.call.subnetInfoRuntimeApi.getMetagraph(TEST_NETUID)).toJSON() as {
    hotkeys: string[];
    totalStake: Array<number | string>;
  };
  const fromFull = zipStakes(full.hotkeys, full.totalStake)!;
  assert.equal(fromFull.stakes.get(u8aToHex(local.keyring.decodeAddress(hotkey))), stake);
  assert.equal(after.source, 'selective');
  assert.deepEqual(after.hotkeys, fromFull.hotkeys);
  assert.equal(stakeOf(after, local.dev.Ferdie.address), 0n);

  // a runtime whose selective call answers without the two vectors: the full metagraph is used instead
  const selectiveNulls = {
    rpc: local.api.rpc,
    at: async (hash: string) => {
      const at = await local.api.at(hash);
      return {
        call: {
          subnetInfoRuntimeApi: {
            getMetagraph: at.call.subnetInfoRuntimeApi.getMetagraph,
            getSelectiveMetagraph: async () => ({ toJSON: () => ({ netuid: TEST_NETUID, hotkeys: null, totalStake: null }) }),
          },
        },
      };
    },
  } as unknown as typeof local.api;
  const viaFull = await fetchStakes(selectiveNulls, TEST_NETUID);
  assert.equal(viaFull.source, 'full');
  assert.equal(stakeOf(viaFull, hotkey), stake);
  await assert.rejects(fetchStakes(local.api, 4242), /netuid 4242 does not exist/);
});

test('tasks/status.ts main: a complete miner has only the test-network warnings; a bare hotkey gets each fix', async () => {
  const address = makeWalletHotkey('complete');
  await local.registerHotkey(TEST_NETUID, address);
  const env = envFor('complete', { AXON_IP: '198.51.100.9', AXON_PORT: '8000' });
  assert.equal((await runTask('axon', [], env)).code, 0);
  const stop = local.autoReveal(TEST_NETUID, 200);
  try {
    const c = await runCommit(['--image', 'user/repo', '--tag', 'v9', '--digest', DIGEST, '--reveal-timeout', '60'], env);
    assert.equal(c.code, 0, c.err);
  } finally {
    await stop();
  }
  const s = await runTask('status', ['--json'], env);
  const report = JSON.parse(s.out);
  assert.equal(report.registered, true);
  assert.equal(report.hotkey, address);
  assert.deepEqual(report.axon && [report.axon.ip, report.axon.port], ['198.51.100.9', 8000]);
  assert.equal(report.pending, null);
  assert.equal(report.revealed.passes_filter, true);
  assert.equal(report.revealed.payload.image_tag, 'v9');
  assert.deepEqual(
    report.problems.map((p: { problem: string }) => p.problem),
    ['netuid is 1, not 44 (Score Vision on finney)', 'network is local, not finney'],
  );
  assert.equal(s.code, 1); // the test-network warnings count as problems

  const bareAddress = makeWalletHotkey('bare');
  const bare = await runTask('status', [], envFor('bare'));
  assert.equal(bare.code, 1);
  assert.match(bare.out, new RegExp(`problem: hotkey ${bareAddress} is not registered on netuid 1\n  next: btcli subnet register`));
  assert.match(bare.out, /registered NO/);
});

test('every chain task: --help prints usage and exits 0; an unknown flag exits 2 with the usage, before connecting', async () => {
  for (const task of ['commit', 'axon', 'status'] as const) {
    const r = await runTask(task, ['--help'], envFor('none'));
    assert.equal(r.code, 0);
    assert.match(r.out, new RegExp(`^usage: npx tsx tasks/${task}\\.ts`));
    const bad = await runTask(task, ['--json', '--frobnicate'], envFor('none'));
    assert.equal(bad.code, 2);
    assert.match(
      bad.err,
      new RegExp(`^error: unknown option --frobnicate\n {2}next: see the usage below\n\nusage: npx tsx tasks/${task}\\.ts`),
    );
    assert.equal(bad.out, '');
  }
});

test('connectChain over WebSocket: the primary endpoint is down, the fallback answers', async () => {
  const ws = await local.serveWs();
  try {
    const api = await connectChain({ endpoint: 'ws://127.0.0.1:1', fallbackEndpoint: ws.url, connectTimeoutMs: 20_000 });
    try {
      assert.equal(api.genesisHash.toHex(), local.api.genesisHash.toHex());
      assert.equal(api.runtimeVersion.specVersion.toNumber(), 300);
      assert.deepEqual([...api.registry.signedExtensions], [...local.api.registry.signedExtensions]);
      assert.equal(await uidOf(api, TEST_NETUID, local.dev.Ferdie.address), undefined);
    } finally {
      await api.disconnect();
    }
  } finally {
    await ws.close();
  }
});

test('tasks/commit.ts run alone as a subprocess over WebSocket: commits and sees the reveal', async () => {
  const address = makeWalletHotkey('subprocess');
  await local.registerHotkey(TEST_NETUID, address);
  const ws = await local.serveWs();
  const stop = local.autoReveal(TEST_NETUID, 200);
  try {
    const { stdout } = await promisify(execFile)(
      'npx',
      ['tsx', 'tasks/commit.ts', '--image', 'user/repo', '--tag', 'v7', '--digest', DIGEST, '--json', '--reveal-timeout', '60'],
      {
        cwd: PROJECT_ROOT,
        env: { ...process.env, ...envFor('subprocess', { BITTENSOR_SUBTENSOR_ENDPOINT: ws.url, CHAIN_CONNECT_TIMEOUT_S: '20' }) },
      },
    );
    const result = JSON.parse(stdout);
    assert.equal(result.hotkey, address);
    assert.ok(result.reveal_block > result.commit_block);
    const entries = await readRevealed(local.api, TEST_NETUID, address);
    assert.equal(JSON.parse(entries[entries.length - 1].text).image_tag, 'v7');
  } finally {
    await stop();
    await ws.close();
  }
});

test('harness: fund sets the free balance and keeps Balances.TotalIssuance consistent', async () => {
  const who = local.keyring.addFromUri('//FundMe').address;
  const issuance = async () => BigInt((await local.api.query.balances.totalIssuance()).toString());
  const free = async () => BigInt(((await local.api.query.system.account(who)).toJSON() as { data: { free: number | string } }).data.free);
  const before = await issuance();
  await local.fund(who, 5n * 10n ** 9n);
  assert.equal(await free(), 5n * 10n ** 9n);
  assert.equal(await issuance(), before + 5n * 10n ** 9n);
  await local.fund(who, 2n * 10n ** 9n);
  assert.equal(await free(), 2n * 10n ** 9n);
  assert.equal(await issuance(), before + 2n * 10n ** 9n);
  // the funded account can pay for a transaction
  const pair = local.keyring.addFromUri('//FundMe');
  const r = await local.send(local.api.tx.system.remark('0x02'), pair);
  assert.ok(r.blockNumber > 0);
  assert.ok((await free()) < 2n * 10n ** 9n);
});
