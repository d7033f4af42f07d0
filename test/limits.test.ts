/**
 * Per-source-address limits on real sockets: a real miner (server/app.ts, both security toggles on, a memory
 * stake source) bound on `::ffff:127.0.0.1`, so every peer is reported as an IPv4-mapped IPv6 address, fed from
 * several loopback source addresses (127.0.0.2 ... 127.0.0.5). The rate is one token per 100 s, so which requests
 * pass is decided by the burst alone, never by how fast this machine is. Bounded: a few hundred requests; no
 * timing is asserted, hang guards only.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { loadConfig } from '../lib/core/config.ts';
import { signRequest } from '../lib/protocol/signature.ts';
import { type RunningMiner, startMiner } from '../server/app.ts';
import { createGuard, type RequestGuard } from '../server/guard.ts';
import { createMemoryStakeSource } from '../server/stake.ts';

const HANG_GUARD_MS = 30_000;
const BURST = 5;
const CONNECTIONS = 8;
const FLOOD = 300;

let miner: RunningMiner;
let validator: KeyringPair;
let impostor: KeyringPair;
let minerKey: KeyringPair;
/** Requests that reached the guard (past the limits). */
let guardChecks = 0;

before(async () => {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  [validator, impostor, minerKey] = ['//Alice', '//Mallory', '//Dave'].map((uri) => keyring.addFromUri(uri));
  const real = createGuard({
    blacklistEnabled: true,
    verifyEnabled: true,
    minStakeTao: 1000,
    stakeSource: createMemoryStakeSource({ [validator.address]: 5000n * 10n ** 9n }),
    minerHotkey: minerKey.address,
  });
  const guard: RequestGuard = {
    ...real,
    async check(request) {
      guardChecks++;
      return real.check(request);
    },
  };
  const config = loadConfig({
    MINER_HOST: '::ffff:127.0.0.1',
    MINER_PORT: '0',
    HEADERS_TIMEOUT_S: '60',
    REQUEST_TIMEOUT_S: '60',
    RATE_LIMIT_PER_S: '0.01',
    RATE_LIMIT_BURST: String(BURST),
    MAX_CONNECTIONS_PER_ADDRESS: String(CONNECTIONS),
  });
  miner = await startMiner(config, guard);
});

after(async () => {
  await miner?.close();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  json?: { detail?: string };
}

/** One request to the miner from `from` (a loopback source address), over `agent` or a connection of its own. */
function send(
  from: string,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: http.Agent } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port: miner.port,
        method: options.method ?? 'GET',
        path: options.path ?? '/docs',
        headers: options.headers,
        localAddress: options.agent ? undefined : from,
        agent: options.agent ?? false,
        timeout: HANG_GUARD_MS,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const isJson = /^application\/json/.test(response.headers['content-type'] ?? '');
          resolve({ status: response.statusCode ?? 0, headers: response.headers, json: isJson ? JSON.parse(text) : undefined });
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer from the miner within ${HANG_GUARD_MS} ms`)));
    request.on('error', reject);
    request.end(options.body);
  });
}

/** A forged challenge as an attacker sends it: Alice's (staked) hotkey claimed, Mallory's signature, an 8 KiB body. */
function forged(): { headers: Record<string, string>; body: string } {
  const head = JSON.stringify({ challenge_id: 'flood', video_url: 'https://example.com/v.mp4', frames: null, pad: '' });
  const body = head.replace('"pad":""', `"pad":"${'x'.repeat(8 * 1024 - head.length)}"`);
  const headers = signRequest(impostor, 'central', body);
  for (const name of Object.keys(headers)) if (/validator-hotkey$/i.test(name)) headers[name] = validator.address;
  return { headers: { ...headers, 'content-type': 'application/json' }, body };
}

function statusCounts(answers: Answer[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const answer of answers) counts[answer.status] = (counts[answer.status] ?? 0) + 1;
  return counts;
}

describe('per-address request rate', () => {
  it(`the first ${BURST} requests of an address pass; the next get 429 with Retry-After and JSON, before the guard runs`, async () => {
    const checksBefore = guardChecks;
    const { headers, body } = forged();
    const answers: Answer[] = [];
    for (let i = 0; i < BURST + 3; i++) answers.push(await send('127.0.0.3', { method: 'POST', path: '/challenge', headers, body }));
    assert.deepEqual(
      answers.map((a) => a.status),
      [...Array(BURST).fill(401), 429, 429, 429],
    );
    assert.equal(answers[0].json?.detail, 'Invalid signature');
    for (const answer of answers.slice(BURST)) {
      const retryAfter = Number(answer.headers['retry-after']);
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 100, `Retry-After: ${answer.headers['retry-after']}`);
      assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
      // The peer is ::ffff:127.0.0.3 on this dual-stack socket: limited and named as the IPv4 address it is.
      assert.match(
        answer.json?.detail ?? '',
        /^Too many requests from 127\.0\.0\.3: at most 0\.01 per second \(5 at once\); retry after \d+ s$/,
      );
    }
    assert.equal(guardChecks - checksBefore, BURST, 'the refused requests never reached the guard');
    // Every route counts: this address is out of tokens for /docs too.
    assert.equal((await send('127.0.0.3')).status, 429);
  });

  it(`a flood of ${FLOOD} forged requests from one address does not stop another (127.0.0.2) from being served`, async () => {
    const checksBefore = guardChecks;
    const flooder = new http.Agent({ keepAlive: true, maxSockets: 4, localAddress: '127.0.0.4' });
    const { headers, body } = forged();
    try {
      const flood = Promise.all(
        Array.from({ length: FLOOD }, () => send('127.0.0.4', { method: 'POST', path: '/challenge', headers, body, agent: flooder })),
      );
      // Meanwhile the validator's address: a health probe, the docs, and a signed challenge that passes the guard
      // (its body lacks video_url, so the answer is the body check's 400 without any download).
      const genuineBody = JSON.stringify({ challenge_id: 'genuine' });
      const genuine = await Promise.all([
        send('127.0.0.2', { path: '/health' }),
        send('127.0.0.2'),
        send('127.0.0.2', {
          method: 'POST',
          path: '/challenge',
          headers: { ...signRequest(validator, 'central', genuineBody), 'content-type': 'application/json' },
          body: genuineBody,
        }),
      ]);
      assert.deepEqual(
        genuine.map((a) => a.status),
        [200, 200, 400],
      );
      assert.equal(genuine[2].json?.detail, 'Missing field: video_url');
      const answers = await flood;
      assert.deepEqual(statusCounts(answers), { 401: BURST, 429: FLOOD - BURST });
      assert.equal(guardChecks - checksBefore, BURST + 1, "the flood's burst and the genuine challenge reached the guard");
    } finally {
      flooder.destroy();
    }
  });
});

/** A raw connection from `from`: what it received, and a promise settled when it closes (hang guard: rejects). */
function connect(from: string): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: miner.port, localAddress: from });
    let data = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (data += chunk));
    socket.on('error', () => {}); // a refused connection may be reset: what matters is that it closes
    const closed = new Promise<void>((resolveClosed, rejectClosed) => {
      const timer = setTimeout(() => rejectClosed(new Error('the connection stayed open')), HANG_GUARD_MS);
      socket.on('close', () => {
        clearTimeout(timer);
        resolveClosed();
      });
    });
    closed.catch(() => {});
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('error', reject);
  });
}

describe('per-address connections', () => {
  it(`connection ${CONNECTIONS + 1} from one address is closed at once, unanswered; other addresses still connect`, async () => {
    const held = [];
    for (let i = 0; i < CONNECTIONS; i++) held.push(await connect('127.0.0.5'));
    try {
      const refused = await connect('127.0.0.5');
      await refused.closed;
      assert.equal(refused.received(), '', 'no answer on a refused connection');
      for (const connection of held) assert.equal(connection.socket.destroyed, false, 'the held connections stay open');
      assert.equal((await send('127.0.0.6')).status, 200, 'another address is served');

      // One held connection closes: the address may open one again (once the server has seen the close).
      held.pop()?.socket.destroy();
      const deadline = Date.now() + HANG_GUARD_MS;
      let status = 0;
      while (status !== 200 && Date.now() < deadline) {
        status = await send('127.0.0.5').then(
          (answer) => answer.status,
          () => 0, // refused: the close is not counted yet
        );
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(status, 200);
    } finally {
      for (const connection of held) connection.socket.destroy();
    }
  });
});
