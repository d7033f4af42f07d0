/**
 * The miner end to end: a real server on an ephemeral port (model in a worker thread, real ffmpeg and
 * onnxruntime), real fetch, videos rendered by ffmpeg and served by the test's own loopback server.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { type Marker, markerFrameAt25 } from '../lib/video/synthetic.ts';
import { type RunningMiner, startMiner } from '../server/app.ts';
import { openGuard, type RequestGuard } from '../server/guard.ts';
import { clip, startVideoServer, type TestVideoServer } from './support/media.ts';

const FLASH: Marker = { from: 60, to: 62, colour: 'white' }; // 30 fps: 2.0 s -> 25 fps frame 50
const CUT: Marker = { from: 150, to: 152, colour: 'black' }; // 30 fps: 5.0 s -> 25 fps frame 125

interface ChallengeReply {
  challenge_id?: string;
  predictions?: { frame: number; action: string; confidence: number }[];
  processing_time?: number;
  detail?: string;
}

// Hang guard only (no timing is asserted): a request the server never answers fails its test instead of
// stalling the run. Generous, for a loaded machine.
const HANG_GUARD_MS = 120_000;

let miner: RunningMiner;
let videos: TestVideoServer;

/** The open guard, except that a test can make the next /challenge fail inside the server with this error. */
let internalFailure: Error | undefined;
const guard: RequestGuard = {
  ...openGuard,
  async check(request) {
    const failure = internalFailure;
    internalFailure = undefined;
    if (failure) throw failure;
    return openGuard.check(request);
  },
};

function post(body: string | object, headers: Record<string, string> = {}) {
  return fetch(`${miner.url}/challenge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(HANG_GUARD_MS),
  });
}

let sequence = 0;

/** Each call is a new challenge_id: identical bodies within 120 s would share one run (server/replays.ts). */
async function challenge(
  videoPath: string,
  extra: object = {},
): Promise<{ id: string; status: number; json: ChallengeReply; headers: Headers }> {
  const id = `c${++sequence}`;
  const response = await post({ challenge_id: id, video_url: `${videos.base}${videoPath}`, ...extra });
  return { id, status: response.status, json: (await response.json()) as ChallengeReply, headers: response.headers };
}

async function assertHealthy(): Promise<void> {
  const response = await fetch(`${miner.url}/health`);
  assert.equal(response.status, 200);
  assert.equal(((await response.json()) as { status: string }).status, 'ok');
}

before(async () => {
  const marked = await clip('marked30.mp4', { width: 640, height: 360, fps: 30, seconds: 8, markers: [FLASH, CUT] });
  const plain = await clip('plain25.mp4', { width: 320, height: 180, fps: 25, seconds: 4 });
  const long = await clip('long.mp4', { width: 640, height: 360, fps: 25, seconds: 60 });
  const bytes = await readFile(marked);
  videos = await startVideoServer({
    'marked30.mp4': marked,
    'plain25.mp4': plain,
    'long.mp4': long,
    'junk.mp4': Buffer.from('<html>not a video</html>'.repeat(50)),
    'truncated.mp4': bytes.subarray(0, Math.floor(bytes.length * 0.6)),
  });
  const config = loadConfig({
    BLACKLIST_ENABLED: 'false',
    VERIFY_ENABLED: 'false',
    MINER_HOST: '127.0.0.1',
    MINER_PORT: '0',
    QUEUE_MAX: '0',
    DOWNLOAD_TIMEOUT_S: '1',
    DOWNLOAD_ALLOW_PRIVATE: 'true', // the videos are served on loopback
    RATE_LIMIT_PER_S: '0', // every request comes from 127.0.0.1, /health probed every 25 ms: test/limits.test.ts tests the limit
  });
  miner = await startMiner(config, guard);
});

after(async () => {
  await miner?.close();
  await videos?.close();
});

describe('POST /challenge', () => {
  it('finds the marks of a 30 fps clip at their 25 fps frame indices', async () => {
    const { id, status, json } = await challenge('/files/marked30.mp4');
    assert.equal(status, 200);
    assert.equal(json.challenge_id, id);
    assert.deepEqual(
      json.predictions!.map((p) => [p.frame, p.action]),
      [
        [markerFrameAt25(FLASH, 30), 'goal'],
        [markerFrameAt25(CUT, 30), 'ball_out_of_play'],
      ],
    );
    for (const p of json.predictions!) {
      assert.ok(Number.isInteger(p.frame) && p.frame >= 0);
      assert.ok(p.confidence >= 0.5 && p.confidence <= 1, `confidence ${p.confidence}`);
    }
    assert.equal(typeof json.processing_time, 'number');
    assert.ok(json.processing_time! > 0);
  });

  it('is deterministic: the same clip gives identical predictions', async () => {
    const first = await challenge('/files/marked30.mp4');
    const second = await challenge('/files/marked30.mp4');
    assert.deepEqual(second.json.predictions, first.json.predictions);
  });

  it('emits nothing on plain content', async () => {
    const { status, json } = await challenge('/files/plain25.mp4');
    assert.equal(status, 200);
    assert.deepEqual(json.predictions, []);
  });

  it('tolerates extra fields such as frames and image_url', async () => {
    const { status } = await challenge('/files/plain25.mp4', { frames: null, image_url: null, something_new: [1, 2] });
    assert.equal(status, 200);
  });

  const badBodies: [string, string | object, RegExp][] = [
    ['invalid JSON', '{"challenge_id": "c1", ', /^Invalid JSON body/],
    ['a JSON array', '[1, 2]', /^Body must be a JSON object/],
    ['missing video_url', { challenge_id: 'c1' }, /^Missing field: video_url$/],
    ['video_url not a string', { challenge_id: 'c1', video_url: 42 }, /^Field video_url must be a string$/],
    ['video_url not http(s)', { challenge_id: 'c1', video_url: 'ftp://x/y.mp4' }, /^Field video_url must be an http\(s\) URL$/],
    ['missing challenge_id', { video_url: 'http://127.0.0.1/x.mp4' }, /^Missing field: challenge_id$/],
    ['challenge_id an object', { challenge_id: {}, video_url: 'http://127.0.0.1/x.mp4' }, /^Field challenge_id must be a string$/],
    // Was accepted and echoed back reformatted as "1.2345678901234568e+22".
    [
      'challenge_id a number',
      '{"challenge_id": 12345678901234567890123, "video_url": "http://127.0.0.1/x.mp4"}',
      /^Field challenge_id must be a string$/,
    ],
  ];
  for (const [name, body, detail] of badBodies) {
    it(`400 for ${name}, naming the problem`, async () => {
      const response = await post(body);
      assert.equal(response.status, 400);
      assert.match(((await response.json()) as ChallengeReply).detail!, detail);
      await assertHealthy();
    });
  }

  const badVideos: [string, string, number, RegExp][] = [
    ['a 404 video', '/files/missing.mp4', 502, /^could not download the video: HTTP error$/],
    ['a server slower than the download timeout', '/slow', 502, /^could not download the video: timeout$/],
    ['bytes that are not a video', '/files/junk.mp4', 422, /Video could not be decoded/],
    ['a truncated mp4', '/files/truncated.mp4', 422, /Video could not be decoded/],
  ];
  for (const [name, videoPath, status, detail] of badVideos) {
    it(`${status} for ${name}`, async () => {
      const reply = await challenge(videoPath);
      assert.equal(reply.status, status);
      assert.match(reply.json.detail!, detail);
      await assertHealthy();
    });
  }

  it('413 for a body over the cap, and keeps serving', async () => {
    const response = await post({ challenge_id: 'c1', video_url: 'http://127.0.0.1/x.mp4', pad: 'x'.repeat(70 * 1024) });
    assert.equal(response.status, 413);
    assert.match(((await response.json()) as ChallengeReply).detail!, /larger than 8192 bytes/);
    await assertHealthy();
  });

  it('answers /health while inference runs, and 503 with Retry-After when the queue is full', async () => {
    const running = challenge('/files/long.mp4');
    // Wait until the long challenge holds the only worker, probing /health all along.
    let depth: { running: number } | undefined;
    for (let i = 0; i < 200 && depth?.running !== 1; i++) {
      const response = await fetch(`${miner.url}/health`);
      assert.equal(response.status, 200);
      depth = ((await response.json()) as { queue: { running: number } }).queue;
      if (depth.running !== 1) await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(depth?.running, 1, 'the long challenge never started');
    const busy = await challenge('/files/plain25.mp4');
    assert.equal(busy.status, 503);
    assert.equal(busy.headers.get('retry-after'), '5');
    assert.match(busy.json.detail!, /queue full/);
    await assertHealthy();
    assert.equal((await running).status, 200);
    // Room again once it finished.
    assert.equal((await challenge('/files/plain25.mp4')).status, 200);
  });
});

describe('failures inside the server', () => {
  const INTERNAL = 'ENOENT: open /srv/miner/secret-internal.key (at readKey, internal.ts:12)';
  const GENERIC = '{"detail":"Internal server error"}';
  const internalErrors: [string, Error][] = [
    ['a plain TypeError', new TypeError(INTERNAL)],
    ['a MinerError of kind failed', new MinerError(INTERNAL, { hint: 'internal hint' })],
  ];
  for (const [name, error] of internalErrors) {
    it(`500 for ${name} during /challenge: exactly the generic body, never the internal message`, async () => {
      internalFailure = error;
      const response = await post({ challenge_id: 'c1', video_url: `${videos.base}/files/plain25.mp4` });
      const text = await response.text();
      assert.equal(internalFailure, undefined, 'the failure was not triggered');
      assert.equal(response.status, 500);
      assert.match(response.headers.get('content-type')!, /^application\/json/);
      assert.equal(text, GENERIC);
      assert.ok(!text.includes('secret-internal') && !text.includes('internal hint'), text);
      await assertHealthy();
    });
  }

  it('a worker that dies mid-challenge: that challenge gets a JSON 500, a new worker replaces it, the next one is 200', async () => {
    miner.pool.crashNextJobForTesting();
    const crashed = await post({ challenge_id: 'crashed', video_url: `${videos.base}/files/plain25.mp4` });
    const text = await crashed.text();
    assert.equal(crashed.status, 500);
    assert.match(crashed.headers.get('content-type')!, /^application\/json/);
    assert.equal(text, GENERIC);
    assert.ok(!/worker|exited/i.test(text), text);
    await assertHealthy();
    // The pool has one worker (concurrency 1) and it died: this answer needs its replacement.
    // Marks at 30 fps frames 60 and 150: 2.0 s and 5.0 s -> 25 fps frames 50 and 125.
    const next = await challenge('/files/marked30.mp4');
    assert.equal(next.status, 200);
    assert.deepEqual(
      next.json.predictions!.map((p) => [p.frame, p.action]),
      [
        [50, 'goal'],
        [125, 'ball_out_of_play'],
      ],
    );
    const health = (await (await fetch(`${miner.url}/health`)).json()) as { queue: unknown };
    assert.deepEqual(health.queue, { admitted: 0, running: 0, waiting: 0, capacity: 1 });
  });
});

describe('other routes', () => {
  it('GET /docs is an HTML 200 (the spot-check readiness probe)', async () => {
    const response = await fetch(`${miner.url}/docs`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /text\/html/);
    assert.match(await response.text(), /POST \/challenge/);
  });
  it('GET /openapi.json describes /challenge', async () => {
    const json = (await (await fetch(`${miner.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    assert.ok(json.paths['/challenge']);
  });
  it('GET /health from loopback reports model, ffmpeg, providers, queue and security', async () => {
    const json = (await (await fetch(`${miner.url}/health`)).json()) as Record<string, any>;
    assert.equal(json.ready, true);
    assert.equal(json.model.name, 'default-flash-cut');
    assert.match(json.model.dir, /models\/default$/);
    assert.deepEqual(json.providers, ['cpu']);
    assert.match(json.ffmpeg.version, /^ffmpeg version/);
    assert.deepEqual(json.queue, { admitted: 0, running: 0, waiting: 0, capacity: 1 });
    assert.equal(json.security.verify, false);
    assert.equal(json.security.blacklist, false);
    assert.equal(typeof json.uptime_s, 'number');
  });
  it('unknown paths are 404 and wrong methods 405, as JSON', async () => {
    const missing = await fetch(`${miner.url}/nope`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as ChallengeReply).detail!, /Not found/);
    const wrong = await fetch(`${miner.url}/challenge`);
    assert.equal(wrong.status, 405);
  });
});
