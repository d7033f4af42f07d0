/**
 * tasks/challenge.ts against a stand-in miner on a real socket: the stand-in runs the real guard, so this
 * proves the client's headers survive HTTP and pass the miner's checks, that every failure exits 1 with
 * the cause, and that a wrong command line exits 2.
 */

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { u8aToHex } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import type { MinerError } from '../lib/core/errors.ts';
import { createGuard, type RequestGuard } from '../server/guard.ts';
import { statusOf } from '../server/http.ts';
import { createMemoryStakeSource } from '../server/stake.ts';
import { main } from '../tasks/challenge.ts';

let miner: KeyringPair;
let guard: RequestGuard;
let server: http.Server;
let url: string;
let dir: string;
/** What the stand-in answers on 200; tests swap it. */
let reply: (request: { challenge_id: string; videoBytes: number }) => unknown;
const seen: Array<{ headers: http.IncomingHttpHeaders; videoBytes: number }> = [];

before(async () => {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  const alice = keyring.addFromUri('//Alice');
  miner = keyring.addFromUri('//Charlie');
  // A hotkey file like btcli writes (secretSeed + ss58Address), for --wallet.
  const seed = new Uint8Array(32).fill(42);
  const walletKey = keyring.addFromSeed(seed);
  dir = await mkdtemp(path.join(os.tmpdir(), 'challenge-test-'));
  await mkdir(path.join(dir, 'wallets', 'cold', 'hotkeys'), { recursive: true });
  await writeFile(
    path.join(dir, 'wallets', 'cold', 'hotkeys', 'hot'),
    JSON.stringify({ secretSeed: u8aToHex(seed), ss58Address: walletKey.address }),
  );
  guard = createGuard({
    blacklistEnabled: true,
    verifyEnabled: true,
    minStakeTao: 1000,
    stakeSource: createMemoryStakeSource({ [alice.address]: 2_000n * 1_000_000_000n, [walletKey.address]: 1_000n * 1_000_000_000n }),
    minerHotkey: miner.address,
  });
  server = http.createServer(async (req, res) => {
    const send = (status: number, json: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    if (req.method === 'GET' && req.url === '/health') return send(200, { status: 'ok', security: guard.health() });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    try {
      await guard.check({ headers: req.headers, body });
    } catch (error) {
      return send(statusOf(error), { detail: (error as MinerError).message });
    }
    const request = JSON.parse(body.toString()) as { challenge_id: string; video_url: string };
    const video = await fetch(request.video_url).catch(() => undefined);
    if (!video?.ok) return send(502, { detail: `cannot fetch ${request.video_url}` });
    const videoBytes = (await video.arrayBuffer()).byteLength;
    seen.push({ headers: req.headers, videoBytes });
    return send(200, reply({ challenge_id: request.challenge_id, videoBytes }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await writeFile(path.join(dir, 'clip.mp4'), Buffer.alloc(1234, 7));
  await writeFile(
    path.join(dir, 'truth.json'),
    JSON.stringify([
      { frame: 100, action: 'pass' },
      { frame: 310, action: 'goal' },
    ]),
  );
});

after(async () => {
  guard.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** The task in-process with its own environment (never this process's: no .env, no wallet of the machine). */
async function runMain(argv: string[], env: Record<string, string> = { DOTENV_DISABLE: '1' }) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { env, out: (line) => out.push(line), err: (line) => err.push(line) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const goodReply = ({ challenge_id }: { challenge_id: string }) => ({
  challenge_id,
  predictions: [
    { frame: 310, action: 'goal', confidence: 0.9 },
    { frame: 600, action: 'pass', confidence: 0.6 },
  ],
  processing_time: 1.25,
});

test('central scheme with --file: the miner fetches the clip, the reply is accepted and scored', async () => {
  reply = goodReply;
  const { code, out, err } = await runMain([
    '--url',
    url,
    '--file',
    path.join(dir, 'clip.mp4'),
    '--uri',
    '//Alice',
    '--truth',
    path.join(dir, 'truth.json'),
    '--challenge-id',
    'abc',
  ]);
  assert.equal(code, 0, err);
  assert.equal(seen.at(-1)?.videoBytes, 1234);
  const headers = seen.at(-1)!.headers;
  assert.equal(headers['x-nonce'], headers.nonce, 'central sends every header twice');
  assert.match(out, /2 predictions/);
  assert.match(out, /frame\s+310\s+12\.40 s\s+goal/);
  assert.match(out, /miner processing_time 1\.25 s/);
  assert.match(out, new RegExp(`score: ${((10.9 - 1.0) / 11.9).toFixed(4)}`));
  assert.match(out, /ok: the validator would accept/);
});

test('fiber scheme takes the miner hotkey from /health and passes the guard', async () => {
  reply = goodReply;
  const { code, err, out } = await runMain([
    '--url',
    url,
    '--file',
    path.join(dir, 'clip.mp4'),
    '--uri',
    '//Alice',
    '--scheme',
    'fiber',
    '--json',
  ]);
  assert.equal(code, 0, err);
  const result = JSON.parse(out) as { ok: boolean; scheme: string; status: number };
  assert.deepEqual([result.ok, result.scheme, result.status], [true, 'fiber', 200]);
  assert.equal(seen.at(-1)?.headers['miner-hotkey'], miner.address);
  assert.equal(seen.at(-1)?.headers['x-nonce'], undefined, 'fiber sends bare headers only');
});

test('--wallet/--hotkey/--wallet-path sign with a hotkey file (lib/wallet.ts)', async () => {
  reply = goodReply;
  const wallet = ['--wallet-path', path.join(dir, 'wallets'), '--wallet', 'cold', '--hotkey', 'hot'];
  const { code, err } = await runMain(['--url', url, '--file', path.join(dir, 'clip.mp4'), ...wallet]);
  assert.equal(code, 0, err);
  assert.match(err, /signer=5/);
  const missing = await runMain([
    '--url',
    url,
    '--file',
    path.join(dir, 'clip.mp4'),
    '--wallet-path',
    path.join(dir, 'wallets'),
    '--wallet',
    'cold',
    '--hotkey',
    'nope',
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /hotkey file not found/);
});

test('the wallet comes from the injected environment; a bad variable there fails before sending', async () => {
  reply = goodReply;
  const env = { BITTENSOR_WALLET_PATH: path.join(dir, 'wallets'), BITTENSOR_WALLET_COLD: 'cold', BITTENSOR_WALLET_HOT: 'hot' };
  const before = seen.length;
  const { code, err } = await runMain(['--url', url, '--file', path.join(dir, 'clip.mp4')], env);
  assert.equal(code, 0, err);
  assert.equal(seen.length, before + 1);
  const signer = /signer=(\w+)/.exec(err)?.[1];
  assert.equal(seen.at(-1)?.headers['validator-hotkey'], signer);
  // HOTKEY_URI in the environment is ignored without --uri: the file key signs
  const withUri = await runMain(['--url', url, '--file', path.join(dir, 'clip.mp4')], { ...env, HOTKEY_URI: '//Bob', ALLOW_DEV_KEYS: '1' });
  assert.equal(withUri.code, 0, withUri.err);
  assert.match(withUri.err, new RegExp(`signer=${signer}`));
  const bad = await runMain(['--url', url, '--file', path.join(dir, 'clip.mp4')], { ...env, MIN_STAKE_THRESHOLD: 'lots' });
  assert.equal(bad.code, 1);
  assert.match(bad.err, /^error: MIN_STAKE_THRESHOLD="lots" is not valid/);
  assert.equal(seen.length, before + 2);
});

test('--verbose adds the stack trace to a failure', async () => {
  const args = ['--url', url, '--file', path.join(dir, 'clip.mp4'), '--wallet-path', path.join(dir, 'wallets'), '--wallet', 'cold'];
  const quiet = await runMain([...args, '--hotkey', 'nope']);
  assert.equal(quiet.code, 1);
  assert.doesNotMatch(quiet.err, /\n\s+at /);
  const verbose = await runMain([...args, '--hotkey', 'nope', '--verbose']);
  assert.equal(verbose.code, 1);
  assert.match(verbose.err, /^error: hotkey file not found: .*\n {2}next: .*\nMinerError: hotkey file not found/);
  assert.match(verbose.err, /\n\s+at .*wallet\.ts/);
});

test('a rejected request exits 1 with the status, the detail and the next step', async () => {
  const { code, err } = await runMain(['--url', url, '--video-url', 'http://127.0.0.1:9/none.mp4', '--uri', '//Bob']);
  assert.equal(code, 1);
  assert.match(err, /miner answered 403: Hotkey not found in metagraph/);
  assert.match(err, /VALIDATOR_ALLOWLIST/);
  const unsigned = await runMain(['--url', url, '--video-url', 'http://127.0.0.1:9/none.mp4', '--scheme', 'none']);
  assert.equal(unsigned.code, 1);
  assert.match(unsigned.err, /miner answered 401: Missing header: validator-hotkey/);
});

test('a reply the validator would reject exits 1 naming the field', async () => {
  reply = ({ challenge_id }) => ({ challenge_id, predictions: [{ frame: 1.5, action: 'pass' }], processing_time: 1 });
  const { code, err } = await runMain(['--url', url, '--file', path.join(dir, 'clip.mp4'), '--uri', '//Alice']);
  assert.equal(code, 1);
  assert.match(err, /invalid reply: predictions\[0\]\.frame must be an integer >= 0/);
  reply = ({ challenge_id }) => ({ challenge_id, predictions: [] });
  const missing = await runMain(['--url', url, '--file', path.join(dir, 'clip.mp4'), '--uri', '//Alice']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /processing_time/);
});

test('usage errors exit 2 with the cause (and the usage for a bad flag); --help exits 0', async () => {
  const nope = await runMain(['--nope']);
  assert.equal(nope.code, 2);
  assert.match(nope.err, /^error: unknown option --nope\n {2}next: see the usage below\n\nUsage: npx tsx tasks\/challenge\.ts/);
  const scheme = await runMain(['--scheme', 'rsa']);
  assert.equal(scheme.code, 2);
  assert.match(scheme.err, /^error: --scheme must be central, fiber or none \(got "rsa"\)\n {2}next: run with --help/);
  assert.equal((await runMain(['--timeout', 'soon'])).code, 2);
  assert.equal((await runMain(['--url', 'ftp://x'])).code, 2);
  assert.equal((await runMain(['--url'])).code, 2);
  assert.equal((await runMain(['http://127.0.0.1:8000'])).code, 2);
  assert.equal((await runMain(['--json=yes'])).code, 2);
  for (const flag of ['--help', '-h']) {
    const help = await runMain([flag]);
    assert.equal(help.code, 0);
    assert.match(help.out, /--video-url URL/);
    assert.equal(help.err, '');
  }
  const both = await runMain(['--video-url', 'http://x/y.mp4', '--file', 'y.mp4', '--uri', '//Alice']);
  assert.equal(both.code, 2);
  assert.match(both.err, /exactly one of --video-url URL or --file PATH/);
  const badHotkey = await runMain(['--video-url', 'http://x/y.mp4', '--miner-hotkey', '0x1234', '--scheme', 'none']);
  assert.equal(badHotkey.code, 2);
  assert.match(badHotkey.err, /--miner-hotkey "0x1234" is not an SS58 address/);
});
