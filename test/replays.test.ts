/**
 * Replayed challenges against the real miner (server/replays.ts): a real server with request verification
 * on, the real model in its worker, real ffmpeg, and the test's own loopback video server, which holds one
 * video back until the test lets it go, so the first challenge is certainly still running when its replays
 * arrive. Each replay is the same body signed afresh (a new nonce): what another miner forwarding a genuine
 * challenge, or the validator signing it again, would send. With the default capacity (1 running, 4 waiting)
 * ten of them would fill the miner; shared, they take no place and the miner still answers a different
 * genuine challenge in full.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { loadConfig } from '../lib/core/config.ts';
import { signRequest } from '../lib/protocol/signature.ts';
import { type RunningMiner, startMiner } from '../server/app.ts';
import { createGuard } from '../server/guard.ts';
import { trackSockets } from './support/loopback.ts';
import { flashAndCutClip } from './support/media.ts';

const REPLAYS = 10;
/** Hang guard only (no timing is asserted): a request never answered fails the test instead of stalling it. */
const HANG_GUARD_MS = 120_000;

interface ChallengeReply {
  challenge_id?: string;
  predictions?: { frame: number; action: string; confidence: number }[];
  detail?: string;
}

let miner: RunningMiner;
let validator: KeyringPair;
let clipBytes: Buffer;
let videoServer: http.Server;
let videoBase: string;
let sockets: Set<Socket>;
const hits = new Map<string, number>();
/** The held route answers once this resolves. */
let release!: () => void;
const released = new Promise<void>((resolve) => {
  release = resolve;
});

before(async () => {
  await cryptoWaitReady();
  validator = new Keyring({ type: 'sr25519' }).addFromUri('//Alice');
  clipBytes = await readFile(await flashAndCutClip('replays.mp4'));
  // /files/clip.mp4 at once; /held/clip.mp4 only after release().
  videoServer = http.createServer(async (request, response) => {
    const path = request.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/held/clip.mp4') await released;
    else if (path !== '/files/clip.mp4') return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'video/mp4', 'content-length': clipBytes.length }).end(clipBytes);
  });
  sockets = trackSockets(videoServer);
  await new Promise<void>((resolve) => videoServer.listen(0, '127.0.0.1', resolve));
  videoBase = `http://127.0.0.1:${(videoServer.address() as AddressInfo).port}`;
  // Verification on (each replay needs its own valid nonce); no stake gate, which needs a metagraph.
  const guard = createGuard({ blacklistEnabled: false, verifyEnabled: true, minStakeTao: 1000 });
  // The default capacity: 1 running, 4 waiting. DOWNLOAD_ALLOW_PRIVATE: the videos are on loopback. No rate
  // limit: all 15 requests come from 127.0.0.1, as forwarded replays would not (each forwarding miner has its own).
  const config = loadConfig({
    MINER_HOST: '127.0.0.1',
    MINER_PORT: '0',
    DOWNLOAD_ALLOW_PRIVATE: 'true',
    CHALLENGE_DEADLINE_S: '60',
    RATE_LIMIT_PER_S: '0',
  });
  assert.equal(config.server.concurrency + config.server.queueMax, 5);
  miner = await startMiner(config, guard);
});

after(async () => {
  release();
  await miner?.close();
  for (const socket of sockets ?? []) socket.destroy();
  await new Promise<void>((resolve) => videoServer?.close(() => resolve()));
});

let sequence = 0n;
/** Central-scheme headers with a nonce of their own (a bare-ns nonce made unique by a counter). */
function signed(body: string): Record<string, string> {
  const nonce = `${BigInt(Date.now()) * 1_000_000n + sequence++}`;
  return signRequest(validator, 'central', body, { nonce });
}

async function post(body: string, headers: Record<string, string> = signed(body)): Promise<{ status: number; text: string }> {
  const response = await fetch(`${miner.url}/challenge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
    signal: AbortSignal.timeout(HANG_GUARD_MS),
  });
  return { status: response.status, text: await response.text() };
}

const body = (id: string, path: string) => JSON.stringify({ challenge_id: id, video_url: `${videoBase}${path}`, frames: null });

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(condition(), `never happened: ${what}`);
}

test(`${REPLAYS} replays of a running challenge share its one run, and a different challenge still gets the miner`, {
  timeout: HANG_GUARD_MS,
}, async () => {
  // The answer the miner gives the different challenge on its own (another challenge_id: not the same body).
  const solo = await post(body('solo', '/files/clip.mp4'));
  assert.equal(solo.status, 200, solo.text);
  const soloPredictions = (JSON.parse(solo.text) as ChallengeReply).predictions!;
  assert.deepEqual(
    soloPredictions.map((p) => p.action),
    ['goal', 'ball_out_of_play'],
  );

  const start = miner.answers.health();
  // The genuine challenge: its video is held, so it stays running while the replays arrive.
  const original = body('original', '/held/clip.mp4');
  const originalHeaders = signed(original);
  const first = post(original, originalHeaders);
  await until('the original is running and downloading', () => miner.pool.depth.running === 1 && hits.get('/held/clip.mp4') === 1);

  const replays = Array.from({ length: REPLAYS }, () => post(original));
  await until(
    `${REPLAYS} replays joined the running challenge`,
    () => miner.answers.health().shared_running === start.shared_running + REPLAYS,
  );
  // One admission for all eleven: the replays hold no place in the pool.
  assert.deepEqual(miner.pool.depth, { admitted: 1, running: 1, waiting: 0, capacity: 5 });

  // The exact bytes again, headers and all: its nonce was used, so the guard still refuses it.
  const exact = await post(original, originalHeaders);
  assert.equal(exact.status, 401);
  assert.deepEqual(JSON.parse(exact.text), { detail: 'Invalid nonce' });

  // A different genuine challenge finds room (it waits for the one slot), then the held video is let go.
  const different = post(body('different', '/files/clip.mp4'));
  await until('the different challenge is admitted', () => miner.pool.depth.admitted === 2);
  release();

  const answer = await first;
  assert.equal(answer.status, 200, answer.text);
  const parsed = JSON.parse(answer.text) as ChallengeReply;
  assert.equal(parsed.challenge_id, 'original');
  assert.deepEqual(parsed.predictions, soloPredictions);
  for (const replay of await Promise.all(replays)) {
    assert.equal(replay.status, 200);
    assert.equal(replay.text, answer.text, 'a replay gets the same JSON bytes');
  }

  const other = await different;
  assert.equal(other.status, 200, other.text);
  const otherReply = JSON.parse(other.text) as ChallengeReply;
  assert.equal(otherReply.challenge_id, 'different');
  assert.deepEqual(otherReply.predictions, soloPredictions, 'answered in full, as on its own');

  // Kept after it was sent: one more replay, signed afresh, is answered without a run.
  const late = await post(original);
  assert.equal(late.text, answer.text);

  // The held video was fetched once for all of them, and three challenges ran: solo, original, different.
  assert.equal(hits.get('/held/clip.mp4'), 1);
  assert.equal(hits.get('/files/clip.mp4'), 2);
  const health = miner.answers.health();
  assert.equal(health.runs - start.runs, 2, 'the original and the different challenge');
  assert.equal(health.shared_running - start.shared_running, REPLAYS);
  assert.equal(health.shared_kept - start.shared_kept, 1);
  assert.equal(miner.pool.depth.admitted, 0, 'no admission leaked');
  // The same counts in /health's details (this test calls from loopback, which sees them).
  const details = (await (await fetch(`${miner.url}/health`)).json()) as { shared?: unknown };
  assert.deepEqual(details.shared, health);
});
