/**
 * Payload building, the 778-byte limit, reading back revealed commitments, the validator's filter, and the
 * commit task's offline paths (`--dry-run --json` as a real subprocess, argument errors), plus connection
 * failures (no chain needed).
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { hexToU8a, stringToU8a, u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, encodeAddress, sr25519PairFromSeed } from '@polkadot/util-crypto';
import {
  buildPayload,
  checkPayloadSize,
  decodeRevealedText,
  isSamePayload,
  latestRevealed,
  MAX_PAYLOAD_BYTES,
  parseRevealedCommitments,
  payloadJson,
  validateDigest,
  validatorFilter,
} from '../../lib/chain/commitment.ts';
import { applyExtensionOverrides, connectChain } from '../../lib/chain/connection.ts';
import {
  decryptTimelock,
  drandPublicKeyFromSecret,
  scaleDecodeString,
  scaleEncodeString,
  signDrandRound,
} from '../../lib/chain/timelock.ts';
import { PROJECT_ROOT } from '../../lib/core/config.ts';
import { MinerError } from '../../lib/core/errors.ts';
import { main as commitMain } from '../../tasks/commit.ts';

const run = promisify(execFile);
const HOTKEY = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;
const ELEMENT = 'manako/DetectFootballEvent';
const input = { imageRepo: 'user/repo', imageTag: 'v1.0.0', imageDigest: DIGEST, elementId: ELEMENT, hotkey: HOTKEY };

let walletDir: string;
let walletAddress: string;

before(async () => {
  await cryptoWaitReady();
  walletDir = mkdtempSync(path.join(os.tmpdir(), 'score-commit-'));
  const seed = new Uint8Array(32).fill(5);
  const pair = sr25519PairFromSeed(seed);
  walletAddress = encodeAddress(pair.publicKey, 42);
  mkdirSync(path.join(walletDir, 'cold', 'hotkeys'), { recursive: true });
  writeFileSync(
    path.join(walletDir, 'cold', 'hotkeys', 'hot'),
    JSON.stringify({ secretSeed: u8aToHex(seed), ss58Address: walletAddress }),
    { mode: 0o600 },
  );
});
after(() => rmSync(walletDir, { recursive: true, force: true }));

test('payload: exact key order and JSON text', () => {
  const json = payloadJson(buildPayload(input));
  assert.equal(
    json,
    `{"role":"miner","track":"private","image_repo":"user/repo","image_tag":"v1.0.0","image_digest":"${DIGEST}","element_id":"${ELEMENT}","hotkey":"${HOTKEY}"}`,
  );
  assert.equal(validatorFilter(json, ELEMENT).ok, true);
});

test('payload: digest, repo and tag are validated', () => {
  for (const bad of ['sha256:abc', `sha256:${'A'.repeat(64)}`, `sha512:${'a'.repeat(64)}`, 'a'.repeat(64), `${DIGEST} `]) {
    assert.throws(
      () => validateDigest(bad),
      (e: unknown) => e instanceof MinerError && /not of the form sha256:<64 hex>/.test(e.message),
      bad,
    );
  }
  assert.equal(validateDigest(DIGEST), DIGEST);
  assert.throws(() => buildPayload({ ...input, imageRepo: 'User/Repo' }), /not a valid repository name/);
  assert.throws(() => buildPayload({ ...input, imageRepo: 'user/repo:v1' }), /not a valid repository name/);
  assert.throws(() => buildPayload({ ...input, imageTag: 'bad tag' }), /not a valid tag/);
  assert.doesNotThrow(() => buildPayload({ ...input, imageRepo: 'ghcr.io/user/repo' }));
  assert.doesNotThrow(() => buildPayload({ ...input, imageRepo: 'localhost:5000/user/my-repo' }));
});

test('size limit: 778 UTF-8 bytes pass, 779 are refused', () => {
  assert.equal(MAX_PAYLOAD_BYTES, 778);
  assert.equal(checkPayloadSize('x'.repeat(778)), 778);
  assert.throws(() => checkPayloadSize('x'.repeat(779)), /779 bytes; the limit is 778/);
  assert.throws(() => checkPayloadSize('é'.repeat(390)), /780 bytes/); // 2 bytes each in UTF-8
  const big = payloadJson(buildPayload({ ...input, imageTag: 'v'.repeat(128), imageRepo: `user/${'r'.repeat(400)}` }));
  assert.throws(() => checkPayloadSize(big), /limit is 778/);
});

test('revealed commitments: SCALE prefix stripped, newest by block, identity with the committed payload', () => {
  const json = payloadJson(buildPayload(input));
  assert.equal(decodeRevealedText(scaleEncodeString(json)), json);
  assert.equal(decodeRevealedText(u8aToHex(scaleEncodeString(json))), json);
  assert.equal(decodeRevealedText(stringToU8a('{"raw":1}')), '{"raw":1}'); // unprefixed bytes fall back to UTF-8
  const entries = parseRevealedCommitments([
    [u8aToHex(scaleEncodeString('{"a":1}')), 10],
    [u8aToHex(scaleEncodeString(json)), 30],
    [u8aToHex(scaleEncodeString('{"b":2}')), 20],
  ]);
  assert.deepEqual(
    entries.map((e) => e.block),
    [10, 30, 20],
  );
  assert.equal(latestRevealed(entries)?.text, json);
  assert.equal(latestRevealed([]), undefined);
  assert.equal(isSamePayload(json, json), true);
  assert.equal(isSamePayload(JSON.stringify(JSON.parse(json), null, 1), json), true);
  assert.equal(isSamePayload(json.replace('v1.0.0', 'v1.0.1'), json), false);
  assert.equal(isSamePayload('not json', json), false);
});

test('validator filter: each reason it would skip a commitment', () => {
  const base = JSON.parse(payloadJson(buildPayload(input)));
  const cases: Array<[Record<string, unknown> | string, RegExp | null]> = [
    [base, null],
    [{ ...base, role: undefined }, null],
    [{ ...base, track: 'public' }, /track is "public", not "private"/],
    [{ ...base, track: undefined }, /track is undefined/],
    [{ ...base, role: 'validator' }, /role is "validator", not "miner"/],
    [{ ...base, element_id: 'other/Element' }, /element_id is "other\/Element"/],
    [{ ...base, image_repo: '' }, /image_repo is missing or empty/],
    [{ image_repo: 'a/b', image_tag: 'v1' }, /track is undefined/], // the miner guide's bare payload
    ['not json', /not JSON/],
    ['[1]', /not a JSON object/],
  ];
  for (const [value, problem] of cases) {
    const verdict = validatorFilter(typeof value === 'string' ? value : JSON.stringify(value), ELEMENT);
    if (problem === null) assert.equal(verdict.ok, true, JSON.stringify(verdict.problems));
    else {
      assert.equal(verdict.ok, false);
      assert.ok(
        verdict.problems.some((p) => problem.test(p.problem) && p.fix.length > 0),
        `${JSON.stringify(value)} -> ${JSON.stringify(verdict.problems)}`,
      );
    }
  }
});

test('tasks/commit.ts --dry-run --json as a subprocess: payload, round, a ciphertext the test drand key opens', async () => {
  const sk = hexToU8a(`0x${'11'.repeat(31)}07`);
  const pk = drandPublicKeyFromSecret(sk);
  const before = Math.floor(Date.now() / 1000);
  const { stdout } = await run(
    process.execPath,
    ['tasks/commit.ts', '--image', 'user/repo', '--tag', 'v2', '--digest', DIGEST, '--dry-run', '--json'],
    {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        DOTENV_DISABLE: '1',
        BITTENSOR_WALLET_PATH: walletDir,
        BITTENSOR_WALLET_COLD: 'cold',
        BITTENSOR_WALLET_HOT: 'hot',
        DRAND_PUBLIC_KEY: pk,
        SCOREVISION_NETUID: '44',
        BITTENSOR_SUBTENSOR_ENDPOINT: 'finney',
        BITTENSOR_SUBTENSOR_FALLBACK: '',
      },
    },
  );
  const result = JSON.parse(stdout);
  assert.deepEqual(Object.keys(result), ['payload', 'reveal_round', 'ciphertext_hex']);
  assert.equal(result.payload.hotkey, walletAddress);
  assert.equal(result.payload.image_tag, 'v2');
  // drand quicknet (genesis 1692803367, a round every 3 s), one 12 s block ahead, written out rather than computed
  // with the code under test; the exact round under a fixed clock is checked in-process below
  const expected = Math.floor((before - 1692803367 + 12) / 3);
  assert.ok(result.reveal_round >= expected && result.reveal_round <= expected + 20, `${result.reveal_round} vs ${expected}`);
  const plaintext = decryptTimelock(hexToU8a(result.ciphertext_hex), signDrandRound(sk, result.reveal_round));
  assert.equal(scaleDecodeString(plaintext), JSON.stringify(result.payload));
});

/** tasks/commit.ts main in-process with the test wallet. */
async function runCommitMain(argv: string[], env: Record<string, string>, now?: () => number) {
  const err: string[] = [];
  const out: string[] = [];
  const code = await commitMain(argv, { env, now, out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, err: err.join('\n'), out: out.join('\n') };
}

test('tasks/commit.ts --dry-run under a fixed clock: the exact reveal round, one block ahead', async () => {
  const sk = hexToU8a(`0x${'11'.repeat(31)}07`);
  const env = {
    DOTENV_DISABLE: '1',
    BITTENSOR_WALLET_PATH: walletDir,
    BITTENSOR_WALLET_COLD: 'cold',
    BITTENSOR_WALLET_HOT: 'hot',
    DRAND_PUBLIC_KEY: drandPublicKeyFromSecret(sk),
  };
  // 2026-01-01T00:00:02.900Z: floor((1767225602 - 1692803367 + round(1 * 12)) / 3) = floor(74422247 / 3) = 24807415
  // (3 blocks ahead would be 24807423; rounding the milliseconds up, 24807416)
  const r = await runCommitMain(
    ['--image', 'user/repo', '--tag', 'v2', '--digest', DIGEST, '--dry-run', '--json'],
    env,
    () => 1_767_225_602_900,
  );
  assert.equal(r.code, 0, r.err);
  const result = JSON.parse(r.out);
  assert.equal(result.reveal_round, 24807415);
  const plaintext = decryptTimelock(hexToU8a(result.ciphertext_hex), signDrandRound(sk, 24807415));
  assert.equal(scaleDecodeString(plaintext), JSON.stringify(result.payload));
});

test('tasks/commit.ts: usage errors exit 2, failures exit 1, each with the cause and a next step', async () => {
  const env = {
    DOTENV_DISABLE: '1',
    BITTENSOR_WALLET_PATH: walletDir,
    BITTENSOR_WALLET_COLD: 'cold',
    BITTENSOR_WALLET_HOT: 'hot',
    DEPLOY_STATE_DIR: path.join(walletDir, 'no-deploy-state'),
  };
  const runMain = (argv: string[], e: Record<string, string> = env) => runCommitMain(argv, e);
  // Without --digest the digest comes from the deploy state, which names the step to run first.
  let r = await runMain(['--image', 'user/repo', '--tag', 'v1']);
  assert.equal(r.code, 1);
  assert.match(r.err, /^error: no pushed digest for user\/repo:v1: run tasks\/push\.ts first\n {2}next: /);
  r = await runMain(['--image', 'user/repo', '--tag', 'v1', '--digest', DIGEST, '--dry-run', '--bogus']);
  assert.equal(r.code, 2);
  assert.match(r.err, /^error: unknown option --bogus\n {2}next: see the usage below\n\nusage: npx tsx tasks\/commit\.ts/);
  r = await runMain(['--image', 'user/repo', '--tag', '--digest', DIGEST]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^error: --tag needs a value/);
  r = await runMain(['--image', 'user/repo', '--tag', 'v1', '--digest', DIGEST, '--reveal-timeout', '-1']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--reveal-timeout -1 is not a positive number of seconds/);
  r = await runMain(['--image', 'user/repo', '--tag', 'v1', '--digest', DIGEST, 'extra']);
  assert.equal(r.code, 2);
  assert.match(r.err, /unexpected argument "extra"/);
  r = await runMain(['--image', 'user/repo', '--tag', 'v1', '--digest', 'sha256:123', '--dry-run']);
  assert.equal(r.code, 1);
  assert.match(r.err, /not of the form sha256:<64 hex>/);
  r = await runMain(['--image', `user/${'r'.repeat(600)}`, '--tag', 'v1', '--digest', DIGEST, '--dry-run']);
  assert.equal(r.code, 1);
  assert.match(r.err, /limit is 778 UTF-8 bytes/);
  r = await runMain(['--image', 'user/repo', '--tag', 'v1', '--digest', DIGEST, '--dry-run'], { ...env, BITTENSOR_WALLET_HOT: 'missing' });
  assert.equal(r.code, 1);
  assert.match(r.err, /hotkey file not found: .*cold\/hotkeys\/missing/);
  r = await runMain(['--image', 'user/repo', '--tag', 'v1', '--digest', DIGEST, '--dry-run'], { ...env, LOG_LEVEL: 'loud' });
  assert.equal(r.code, 1);
  assert.match(r.err, /^error: LOG_LEVEL="loud" is not valid: expected debug, info, warn, error\n {2}next: fix LOG_LEVEL/);
  r = await runMain(['--nope', '-h']);
  assert.equal(r.code, 0, 'help wins over a bad flag');
  assert.match(r.out, /^usage: npx tsx tasks\/commit\.ts/);
  r = await runMain(['--image', 'user/repo', '--tag', 'v1', '--digest', DIGEST, '--dry-run']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /dry run: payload/);
});

// A connect that ignored its timeout would never settle against the hanging server: the test's own timeout fails it.
test('connectChain: falls back, then fails within the timeout naming both endpoints', { timeout: 15_000 }, async () => {
  // one endpoint accepts TCP but never answers the WebSocket handshake (timeout path), the other refuses
  const sockets = new Set<net.Socket>();
  const hang = net.createServer((s) => sockets.add(s));
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  const hangPort = (hang.address() as net.AddressInfo).port;
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  try {
    await assert.rejects(
      connectChain({ endpoint: `ws://127.0.0.1:${hangPort}`, fallbackEndpoint: `ws://127.0.0.1:${closedPort}`, connectTimeoutMs: 1500 }),
      (error: unknown) => {
        assert.ok(error instanceof MinerError);
        assert.match(
          error.message,
          new RegExp(
            `cannot reach subtensor: could not connect to ws://127.0.0.1:${hangPort} within 2 s; could not connect to ws://127.0.0.1:${closedPort}`,
          ),
        );
        assert.match(error.hint ?? '', /BITTENSOR_SUBTENSOR_FALLBACK/);
        return true;
      },
    );
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => hang.close(() => r()));
  }
});

test('applyExtensionOverrides refuses a runtime with an unknown transaction extension', () => {
  let applied: unknown;
  const fake = (signedExtensions: string[]) =>
    ({
      registry: {
        signedExtensions,
        setSignedExtensions: (...args: unknown[]) => {
          applied = args;
        },
      },
    }) as unknown as Parameters<typeof applyExtensionOverrides>[0];
  assert.throws(
    () => applyExtensionOverrides(fake(['CheckNonce', 'ChargeTransactionPayment', 'BrandNewExtension'])),
    /does not know: BrandNewExtension/,
  );
  assert.equal(applied, undefined);
  assert.deepEqual(applyExtensionOverrides(fake(['CheckNonce', 'DrandPriority'])), ['CheckNonce', 'DrandPriority']);
  assert.deepEqual(Object.keys((applied as unknown as [string[], Record<string, unknown>])[1]), ['DrandPriority']);
});
