/**
 * Load on loopback (issue: request security): 2,000 signed requests, half forged, 16 at a time, against the
 * real server with both toggles on. Every valid request passes the guard and fails fast at the download (its
 * video_url is a loopback 404 -> 502); every forged one is rejected (401). None may be lost, and the nonce
 * store must shrink back after the purge. Bounded: 2,000 requests; no timing is asserted (the elapsed time is
 * reported as a diagnostic, timings belong in the benchmark), only a generous hang guard on the test.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { loadConfig } from '../lib/core/config.ts';
import { signRequest } from '../lib/protocol/signature.ts';
import { type RunningMiner, startMiner } from '../server/app.ts';
import { createGuard } from '../server/guard.ts';
import { NonceStore } from '../server/nonces.ts';
import { createMemoryStakeSource } from '../server/stake.ts';
import { startVideoServer, type TestVideoServer } from './support/media.ts';

const TOTAL = 2000;
const CONCURRENCY = 16;
/** Hang guard only: a loaded machine may be slow, but a lost request must not stall the run forever. */
const HANG_GUARD_MS = 600_000;

let miner: RunningMiner;
let videos: TestVideoServer;
let nonces: NonceStore;
let clockOffsetMs = 0;
let validator: KeyringPair;
let impostor: KeyringPair;
let minerKey: KeyringPair;

before(async () => {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  validator = keyring.addFromUri('//Alice');
  impostor = keyring.addFromUri('//Mallory');
  minerKey = keyring.addFromUri('//Dave');
  videos = await startVideoServer({});
  nonces = new NonceStore({ now: () => Date.now() + clockOffsetMs, purgeIntervalMs: 0 });
  const guard = createGuard({
    blacklistEnabled: true,
    verifyEnabled: true,
    minStakeTao: 1000,
    stakeSource: createMemoryStakeSource({ [validator.address]: 5000n * 10n ** 9n }),
    minerHotkey: minerKey.address,
    nonces,
  });
  // DOWNLOAD_ALLOW_PRIVATE: the (missing) videos are on loopback, and each valid request must reach its 404.
  // The per-address limits are off: this loads the guard itself (test/limits.test.ts tests the limits).
  const config = loadConfig({
    MINER_HOST: '127.0.0.1',
    MINER_PORT: '0',
    QUEUE_MAX: '16',
    DOWNLOAD_ALLOW_PRIVATE: 'true',
    RATE_LIMIT_PER_S: '0',
    MAX_CONNECTIONS_PER_ADDRESS: '0',
  });
  miner = await startMiner(config, guard);
});

after(async () => {
  await miner?.close();
  await videos?.close();
});

/** Request i: even ones are genuine, odd ones forged in one of three ways (other key, tampered body, replay). */
function makeRequest(i: number): { body: string; headers: Record<string, string>; forged: boolean } {
  const body = JSON.stringify({ challenge_id: `load-${i}`, video_url: `${videos.base}/files/missing-${i}.mp4`, frames: null });
  const scheme = i % 4 < 2 ? 'central' : 'fiber';
  const nonce =
    scheme === 'central'
      ? `${BigInt(Date.now()) * 1_000_000n + BigInt(i)}`
      : `${BigInt(Date.now()) * 1_000_000n + BigInt(i)}_load${String(i).padStart(6, '0')}`;
  if (i % 2 === 0) return { body, headers: signRequest(validator, scheme, body, { nonce, minerHotkey: minerKey.address }), forged: false };
  const kind = Math.floor(i / 2) % 3;
  if (kind === 0) {
    // Signed by another key while claiming to be the validator.
    const headers = signRequest(impostor, scheme, body, { nonce, minerHotkey: minerKey.address });
    for (const name of Object.keys(headers)) if (/validator-hotkey$/i.test(name)) headers[name] = validator.address;
    return { body, headers, forged: true };
  }
  const answeredGenuine = completed.at(-1);
  if (kind === 2 && answeredGenuine) return { ...answeredGenuine, forged: true }; // an exact replay of an answered request
  // kind 1 (and kind 2 before any genuine request was answered): the body is changed after signing.
  const headers = signRequest(validator, scheme, body, { nonce, minerHotkey: minerKey.address });
  return { body: body.replace('load-', 'lxad-'), headers, forged: true };
}

/** Genuine requests already answered: their nonces are consumed, so sending them again is a replay. */
const completed: { body: string; headers: Record<string, string> }[] = [];

test(`${TOTAL} signed requests, half forged, ${CONCURRENCY} at a time: none lost, every forgery rejected`, {
  timeout: HANG_GUARD_MS,
}, async (t) => {
  const statuses = new Map<string, number>();
  let answered = 0;
  let next = 0;
  const started = performance.now();
  const heapBefore = process.memoryUsage().heapUsed;
  const mistakes: string[] = [];
  const forgedDetails = new Map<string, number>();

  async function lane(): Promise<void> {
    while (next < TOTAL) {
      const i = next++;
      const request = makeRequest(i);
      const response = await fetch(`${miner.url}/challenge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...request.headers },
        body: request.body,
      });
      const json = (await response.json()) as { detail?: string };
      answered++;
      if (!request.forged) completed.push({ body: request.body, headers: request.headers });
      const key = `${request.forged ? 'forged' : 'valid'} ${response.status}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (request.forged) forgedDetails.set(json.detail ?? '', (forgedDetails.get(json.detail ?? '') ?? 0) + 1);
      const expected = request.forged ? 401 : 502;
      if (response.status !== expected && mistakes.length < 5) mistakes.push(`#${i}: ${response.status} ${json.detail}`);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  t.diagnostic(`${answered} requests answered in ${((performance.now() - started) / 1000).toFixed(1)} s, ${CONCURRENCY} at a time`);

  assert.equal(answered, TOTAL, 'every request got an answer');
  assert.deepEqual(mistakes, []);
  assert.deepEqual(Object.fromEntries(statuses), { 'valid 502': TOTAL / 2, 'forged 401': TOTAL / 2 });
  // Other-key and tampered forgeries fail the signature; replays fail on the consumed nonce.
  assert.deepEqual([...forgedDetails.keys()].sort(), ['Invalid nonce', 'Invalid signature']);
  assert.ok(forgedDetails.get('Invalid nonce')! >= 300, `replays rejected as such: ${forgedDetails.get('Invalid nonce')}`);

  // Every genuine nonce was consumed, no forged one was recorded; after the window they are all purged.
  assert.equal(nonces.size, TOTAL / 2);
  clockOffsetMs = 121_000;
  nonces.purge();
  assert.equal(nonces.size, 0);

  const health = (await (await fetch(`${miner.url}/health`)).json()) as { queue: { admitted: number } };
  assert.equal(health.queue.admitted, 0, 'no admission leaked');
  t.diagnostic(`heap before ${(heapBefore / 1e6).toFixed(1)} MB, after ${(process.memoryUsage().heapUsed / 1e6).toFixed(1)} MB`);
});
