/**
 * The challenge path end to end, against real servers in this process (real ffmpeg, onnxruntime in a worker
 * thread) and the test's own video servers on loopback: admission at receipt (a burst gets 503 at once, only
 * running challenges download), the deadline (a silent or stalled video server, a model window that runs past
 * it), the decode cap (a 10-hour timestamp gap in a tiny mp4), the streamed decode and its file fallback, temp
 * folders (none left, a read-only one reported clearly, a dead process's swept at start), the address policy and
 * the challenge_id type. No timing is asserted: an answer that never comes fails on the hang guard, and the
 * deadline is proven by what the answer holds (empty or partial where the whole video would give more).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, PROJECT_ROOT } from '../lib/core/config.ts';
import { type RunningMiner, startMiner } from '../server/app.ts';
import { logged } from './support/logged.ts';
import { trackSockets } from './support/loopback.ts';
import { clip, ffmpeg, tempDir } from './support/media.ts';
import { LOCAL_MINER_ENV } from './support/miner.ts';
import { childrenRunning } from './support/processes.ts';

// Job folders go to os.tmpdir() (TMPDIR): a private one, so that only this file's miners add to it.
const privateTmp = mkdtempSync(path.join(os.tmpdir(), 'challenge-path-test-'));
const originalTmp = process.env.TMPDIR;
process.env.TMPDIR = privateTmp;
const jobFolders = () => readdirSync(privateTmp).filter((name) => /^score-miner-\d+-/.test(name));

/** Hang guard only (no timing is asserted): a request never answered fails its test instead of stalling the run. */
const HANG_GUARD_MS = 120_000;
/** The 10 s clip's marks: a white flash at 1.0 s and a black cut at 8.0 s (25 fps). */
const MARKED = [
  [25, 'goal'],
  [200, 'ball_out_of_play'],
];

interface Reply {
  status: number;
  retryAfter: string | null;
  json: { challenge_id?: string; predictions?: { frame: number; action: string; confidence: number }[]; detail?: string };
}

async function post(miner: RunningMiner, body: object | string): Promise<Reply> {
  const response = await fetch(`${miner.url}/challenge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(HANG_GUARD_MS),
  });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), json: (await response.json()) as Reply['json'] };
}

const marks = (reply: Reply) => reply.json.predictions?.map((p) => [p.frame, p.action]);

/** Waits (bounded) until the miner holds no challenge: only then must everything be cleaned up. */
async function idle(miner: RunningMiner): Promise<void> {
  for (let i = 0; i < 600 && miner.pool.depth.admitted > 0; i++) await sleep(50);
  assert.equal(miner.pool.depth.admitted, 0, 'a challenge is still held');
}

async function nothingLeft(miner: RunningMiner): Promise<void> {
  await idle(miner);
  assert.deepEqual(jobFolders(), [], 'temp folders left behind');
  assert.deepEqual(childrenRunning('ffmpeg'), [], 'ffmpeg left running');
}

/**
 * The test's video server. /files/<name>: the whole file, held while the gate is closed (a burst's downloads
 * wait there, so that every 503 provably came before any download finished); /half/<name>: half the file, then
 * nothing more (a stalled download). Counts downloads and the most running at once.
 */
function videoServer(files: Map<string, Buffer>) {
  const state = { downloads: 0, running: 0, mostRunning: 0, gate: Promise.resolve(), openGate: () => {} };
  const server = http.createServer(async (request, response) => {
    const [, route, name] = (request.url ?? '').split('/');
    const body = files.get(name ?? '');
    if (!body) return void response.writeHead(404).end();
    if (route === 'ranged') return serveRanged(request, response, body);
    response.writeHead(200, { 'content-type': 'video/mp4', 'content-length': body.length });
    if (route === 'half') return void response.write(body.subarray(0, body.length >> 1));
    state.downloads++;
    state.running++;
    state.mostRunning = Math.max(state.mostRunning, state.running);
    response.on('close', () => state.running--);
    await state.gate;
    response.end(body);
  });
  /**
   * /ranged/<name>: Accept-Ranges, Range requests answered 206 (counted in `ranges`, bytes in `rangedBytes`); the
   * whole-file request sends 32 KiB, then waits (hang guard 15 s) until a Range request was answered: the tail
   * then provably came while the front was still downloading.
   */
  let rangeAnswered = () => {};
  async function serveRanged(request: http.IncomingMessage, response: http.ServerResponse, body: Buffer) {
    const headers = { 'content-type': 'video/mp4', 'accept-ranges': 'bytes' };
    const match = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
    if (match) {
      const start = Number(match[1]);
      const end = match[2] ? Math.min(Number(match[2]), body.length - 1) : body.length - 1;
      rangeState.ranges.push(request.headers.range ?? '');
      rangeState.bytes += end - start + 1;
      response.writeHead(206, { ...headers, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${body.length}` });
      response.end(body.subarray(start, end + 1));
      rangeAnswered();
      return;
    }
    const answered = new Promise<void>((resolve) => {
      rangeAnswered = resolve;
    });
    response.writeHead(200, { ...headers, 'content-length': body.length });
    response.write(body.subarray(0, 32 * 1024));
    rangeState.bytes += 32 * 1024;
    const guard = setTimeout(rangeAnswered, 15_000);
    await Promise.race([answered, new Promise((resolve) => response.once('close', resolve))]);
    clearTimeout(guard);
    if (response.destroyed) return;
    rangeState.bytes += body.length - 32 * 1024;
    response.end(body.subarray(32 * 1024));
  }
  const rangeState = { ranges: [] as string[], bytes: 0 };
  const sockets = trackSockets(server);
  return {
    state,
    rangeState,
    sockets,
    closeGate() {
      state.gate = new Promise((resolve) => {
        state.openGate = resolve;
      });
    },
    async listen(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function remux(input: string, name: string, extra: string[]): string {
  const out = path.join(tempDir, name);
  execFileSync(ffmpeg.path, ['-y', '-nostdin', '-loglevel', 'error', '-i', input, '-c', 'copy', ...extra, out]);
  return out;
}

let videos: ReturnType<typeof videoServer>;
let base: string;
/** Default deadline (27 s), capacity 3 (1 running + 2 waiting), MAX_VIDEO_SECONDS 20. */
let roomy: RunningMiner;
/** CHALLENGE_DEADLINE_S 3, downloads allowed 20 s: an answer after 3 s with less than the video is the deadline's. */
let hasty: RunningMiner;
/** DOWNLOAD_ALLOW_PRIVATE off (the default). */
let strict: RunningMiner;
/** A tiny mp4 whose timestamps jump 10 hours after 1.6 s (a flash at 1.0 s). */
let gapFile: string;

// Bursts of 50 from one address test admission: the per-address limits (test/limits.test.ts) are off here.
const baseEnv = LOCAL_MINER_ENV;

before(async () => {
  const end = await clip('marked.mp4', {
    width: 320,
    height: 180,
    fps: 25,
    seconds: 10,
    markers: [
      { from: 25, to: 26, colour: 'white' },
      { from: 200, to: 201, colour: 'black' },
    ],
  });
  const front = remux(end, 'marked-front.mp4', ['-movflags', '+faststart']);
  gapFile = path.join(tempDir, 'gap.mp4');
  execFileSync(ffmpeg.path, [
    ...['-y', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-t', '2', '-i', 'testsrc2=size=320x180:rate=25'],
    ...['-vf', "drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='between(n,25,26)',setpts='if(gte(N,40),PTS+36000/TB,PTS)'"],
    ...['-vsync', 'passthrough', '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', gapFile],
  ]);
  videos = videoServer(
    new Map([
      ['end.mp4', await readFile(end)],
      ['front.mp4', await readFile(front)],
      ['gap.mp4', await readFile(gapFile)],
      ['junk.mp4', Buffer.from('<html>not a video</html>'.repeat(200))],
      ['truncated.mp4', (await readFile(end)).subarray(0, 60_000)],
    ]),
  );
  base = await videos.listen();
  const allow = { DOWNLOAD_ALLOW_PRIVATE: 'true' }; // the videos are served on loopback
  roomy = await startMiner(loadConfig({ ...baseEnv, ...allow, QUEUE_MAX: '2', MAX_VIDEO_SECONDS: '20' }));
  hasty = await startMiner(loadConfig({ ...baseEnv, ...allow, QUEUE_MAX: '2', CHALLENGE_DEADLINE_S: '3', DOWNLOAD_TIMEOUT_S: '20' }));
  strict = await startMiner(loadConfig({ ...baseEnv, QUEUE_MAX: '0' }));
});

after(async () => {
  await Promise.all([roomy, hasty, strict].map((miner) => miner?.close()));
  await videos?.close();
  process.env.TMPDIR = originalTmp;
  if (originalTmp === undefined) delete process.env.TMPDIR;
  rmSync(privateTmp, { recursive: true, force: true });
});

describe('admission at receipt', () => {
  for (let round = 1; round <= 3; round++) {
    it(`a burst of 50 at capacity 3 (round ${round}): 47 get 503 at once, 3 are answered, only the running one downloads, nothing is left`, async () => {
      const CAPACITY = 3;
      const BURST = 50;
      videos.closeGate();
      videos.state.downloads = 0;
      videos.state.mostRunning = 0;
      let refused = 0;
      let downloadsAtGate = -1;
      const open = () => {
        if (downloadsAtGate === -1) downloadsAtGate = videos.state.downloads;
        videos.state.openGate();
      };
      // Hang guard: with admission after the download, no 503 would come while the downloads wait at the gate.
      const guard = setTimeout(open, 30_000);
      const replies = await Promise.all(
        Array.from({ length: BURST }, (_, i) =>
          post(roomy, { challenge_id: `burst-${round}-${i}`, video_url: `${base}/files/front.mp4` }).then((reply) => {
            if (reply.status === 503 && ++refused === BURST - CAPACITY) open();
            return reply;
          }),
        ),
      );
      clearTimeout(guard);
      const answered = replies.filter((r) => r.status === 200);
      const busy = replies.filter((r) => r.status === 503);
      assert.deepEqual([answered.length, busy.length], [CAPACITY, BURST - CAPACITY]);
      for (const reply of busy) {
        assert.equal(reply.retryAfter, '5');
        assert.match(reply.json.detail!, /queue full/);
      }
      for (const reply of answered) assert.deepEqual(marks(reply), MARKED);
      // The running challenge's download may not have reached the server yet when the last 503 went out.
      assert.ok(downloadsAtGate <= 1, `${downloadsAtGate} downloads before the gate: challenges that were waiting (or refused) downloaded`);
      assert.equal(videos.state.mostRunning, 1, 'more downloads at once than challenges running');
      assert.equal(videos.state.downloads, CAPACITY);
      await nothingLeft(roomy);
    });
  }
});

describe('the deadline (CHALLENGE_DEADLINE_S=3)', () => {
  it('a video server that never answers: 200 with no predictions at the deadline, the connection closed', async () => {
    const open = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      open.add(socket);
      socket.resume();
      socket.on('close', () => open.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/video.mp4`;
      const { value: reply, lines } = await logged(() => post(hasty, { challenge_id: 'silent', video_url: url }));
      // Without the deadline this would be a 502 after DOWNLOAD_TIMEOUT_S (20 s).
      assert.equal(reply.status, 200);
      assert.equal(reply.json.challenge_id, 'silent');
      assert.deepEqual(reply.json.predictions, []);
      assert.ok(
        lines.some((l) =>
          /WARN +challenge answered with part of the video challenge_id=silent .*frames_inferred=0 .*stage=download/.test(l),
        ),
        lines.join(''),
      );
      for (let i = 0; i < 100 && open.size > 0; i++) await sleep(50);
      assert.equal(open.size, 0, 'the download connection is still open');
      await nothingLeft(hasty);
    } finally {
      for (const socket of open) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('a download that stalls halfway: 200 at the deadline with what the first half held (the flash, not the cut)', async () => {
    const { value: reply, lines } = await logged(() => post(hasty, { challenge_id: 'stalled', video_url: `${base}/half/front.mp4` }));
    assert.equal(reply.status, 200);
    assert.deepEqual(marks(reply), [[25, 'goal']]); // the cut at 8 s is in the half never sent
    assert.ok(
      lines.some((l) =>
        /WARN +challenge answered with part of the video challenge_id=stalled .*decoded_from=stream .*stage=download/.test(l),
      ),
      lines.join(''),
    );
    await nothingLeft(hasty);
  });

  it('a model window still running past the deadline: answered at the deadline plus the grace without it, its late result dropped', async () => {
    // The first window (it holds the flash) blocks its worker for 6 s, twice the deadline.
    hasty.pool.stallNextWindowForTesting(6000);
    const { value: reply, lines } = await logged(() => post(hasty, { challenge_id: 'stuck', video_url: `${base}/files/front.mp4` }));
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json.predictions, [], 'the answer waited for the stalled window');
    assert.ok(lines.some((l) => /WARN +challenge answered with part of the video challenge_id=stuck .*stage=inference/.test(l)));
    await nothingLeft(hasty);
    // The slot is free again and the next challenge gets its own, whole answer.
    assert.deepEqual(marks(await post(hasty, { challenge_id: 'after', video_url: `${base}/files/front.mp4` })), MARKED);
  });

  it('a challenge waiting for the slot past its deadline is answered empty', async () => {
    hasty.pool.stallNextWindowForTesting(5000);
    const running = post(hasty, { challenge_id: 'holder', video_url: `${base}/files/front.mp4` });
    for (let i = 0; i < 200 && hasty.pool.depth.running === 0; i++) await sleep(10);
    const { value: waiting, lines } = await logged(() => post(hasty, { challenge_id: 'waiter', video_url: `${base}/files/front.mp4` }));
    assert.equal(waiting.status, 200);
    assert.ok(lines.some((l) => /WARN +challenge answered with part of the video challenge_id=waiter .*stage=queued/.test(l)));
    assert.deepEqual(waiting.json.predictions, []);
    assert.equal((await running).status, 200);
    await nothingLeft(hasty);
  });
});

describe('every other ending leaves nothing behind', () => {
  const endings: Array<[string, () => void, string, number, RegExp]> = [
    ['an HTTP 404', () => {}, '/files/missing.mp4', 502, /^could not download the video: HTTP error$/],
    ['bytes that are not a video', () => {}, '/files/junk.mp4', 422, /Video could not be decoded/],
    ['a truncated mp4', () => {}, '/files/truncated.mp4', 422, /Video could not be decoded/],
    ['a worker that dies mid-challenge', () => roomy.pool.crashNextJobForTesting(), '/files/front.mp4', 500, /^Internal server error$/],
  ];
  for (const [name, arrange, videoPath, status, detail] of endings) {
    it(`${name}: ${status}, no temp folder, no ffmpeg, and the next challenge is answered whole`, async () => {
      arrange();
      const reply = await post(roomy, { challenge_id: 'ending', video_url: `${base}${videoPath}` });
      assert.equal(reply.status, status);
      assert.match(reply.json.detail!, detail);
      await nothingLeft(roomy);
      // Its own challenge_id: an identical body would be answered from the last one's run (server/replays.ts).
      assert.deepEqual(marks(await post(roomy, { challenge_id: `next after ${name}`, video_url: `${base}/files/front.mp4` })), MARKED);
    });
  }
});

describe('decode', () => {
  it('a 10-hour timestamp gap in a tiny mp4 is answered with the flash, by the duration cap or by the deadline', async () => {
    assert.ok((await readFile(gapFile)).length < 100_000);
    // Where the flash lands, by ffmpeg alone: the first 1.6 s (before the gap) as 16x9 gray frames at 25 fps.
    // Timestamps clamped at 1.6 s, or ffmpeg 5.1's fps filter fills the 10 hours before -t stops it (lib/video/frames.ts).
    const head = execFileSync(ffmpeg.path, [
      ...['-nostdin', '-loglevel', 'error', '-i', gapFile, '-t', '1.6', '-vf', 'setpts=min(PTS-STARTPTS\\,1.6/TB),fps=25,scale=16:9'],
      ...['-pix_fmt', 'gray', '-f', 'rawvideo', 'pipe:1'],
    ]);
    const flash = Array.from({ length: head.length / 144 }, (_, f) => head.subarray(f * 144, (f + 1) * 144)).findIndex(
      (frame) => frame.reduce((sum, v) => sum + v, 0) / 144 > 240,
    );
    assert.ok(flash > 0, 'no flash in the gap file');
    for (const [miner, name] of [
      [roomy, 'MAX_VIDEO_SECONDS=20'],
      [hasty, 'CHALLENGE_DEADLINE_S=3'],
    ] as const) {
      const { value: reply, lines } = await logged(() => post(miner, { challenge_id: 'gap', video_url: `${base}/files/gap.mp4` }));
      assert.equal(reply.status, 200, name);
      assert.deepEqual(marks(reply), [[flash, 'goal']], name);
      // The cap: 20 s at 25 fps, the whole (capped) video, not cut by the deadline.
      if (miner === roomy)
        assert.ok(lines.some((l) => /INFO +challenge answered challenge_id=gap .*frames_decoded=500 frames_inferred=500 /.test(l)));
      await nothingLeft(miner);
    }
  });

  it('a moov-at-end mp4 is decoded from the completed file, with the same predictions as its faststart twin', async () => {
    const { value, lines } = await logged(async () => ({
      end: await post(roomy, { challenge_id: 'end', video_url: `${base}/files/end.mp4` }),
      front: await post(roomy, { challenge_id: 'front', video_url: `${base}/files/front.mp4` }),
    }));
    assert.deepEqual(marks(value.end), MARKED);
    assert.deepEqual(value.end.json.predictions, value.front.json.predictions); // confidences included
    assert.ok(lines.some((l) => /challenge answered challenge_id=end .*decoded_from=file/.test(l)));
    assert.ok(lines.some((l) => /challenge answered challenge_id=front .*decoded_from=stream/.test(l)));
    await nothingLeft(roomy);
  });

  it('a moov-at-end mp4 from an origin that answers Range requests is decoded from the loopback range server while it downloads, the same predictions', async () => {
    videos.rangeState.ranges.length = 0;
    const { value, lines } = await logged(async () => ({
      ranged: await post(roomy, { challenge_id: 'ranged', video_url: `${base}/ranged/end.mp4` }),
      front: await post(roomy, { challenge_id: 'front', video_url: `${base}/files/front.mp4` }),
    }));
    assert.deepEqual(marks(value.ranged), MARKED);
    assert.deepEqual(value.ranged.json.predictions, value.front.json.predictions); // confidences included
    assert.ok(
      lines.some((l) => /challenge answered challenge_id=ranged .*decoded_from=range/.test(l)),
      lines.join(''),
    );
    // One Range request, for the tail only (the index): far less than the file.
    assert.equal(videos.rangeState.ranges.length, 1);
    assert.match(videos.rangeState.ranges[0]!, /^bytes=\d+-\d+$/);
    await nothingLeft(roomy);
  });

  it('is deterministic: the same video twice gives byte-identical answers', async () => {
    // Two challenge_ids, so two runs: the same body twice would share one (server/replays.ts).
    const first = await post(roomy, { challenge_id: 'again-1', video_url: `${base}/files/front.mp4` });
    const second = await post(roomy, { challenge_id: 'again-2', video_url: `${base}/files/front.mp4` });
    assert.deepEqual(marks(first), MARKED);
    assert.equal(JSON.stringify(second.json.predictions), JSON.stringify(first.json.predictions));
  });
});

describe('temp folders', () => {
  it('a temp folder that cannot be made: start-up exits 1 naming the folder and the fix', async () => {
    const notADir = path.join(privateTmp, 'not-a-folder');
    writeFileSync(notADir, 'a file where TMPDIR should be a folder');
    const child = spawn(process.execPath, ['server/main.ts'], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', DOTENV_DISABLE: '1', ...baseEnv, TMPDIR: notADir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    rmSync(notADir);
    assert.equal(code, 1, stderr);
    assert.match(
      stderr,
      new RegExp(`^error: cannot create a temp folder in ${notADir} \\(ENOTDIR\\): set TMPDIR to a writable folder$`, 'm'),
    );
    assert.match(stderr, /^ {2}next: .*docker run --tmpfs \/tmp/m);
  });

  it('one that breaks while serving: that challenge is a 500, the log names the folder and the fix, the next one is fine', async () => {
    const notADir = path.join(privateTmp, 'broken');
    writeFileSync(notADir, '');
    process.env.TMPDIR = notADir;
    let reply: Reply;
    let lines: string[];
    try {
      ({ value: reply, lines } = await logged(() => post(roomy, { challenge_id: 'tmp', video_url: `${base}/files/front.mp4` })));
    } finally {
      process.env.TMPDIR = privateTmp;
      rmSync(notADir);
    }
    assert.equal(reply.status, 500);
    assert.deepEqual(reply.json, { detail: 'Internal server error' });
    assert.ok(lines.some((l) => l.includes(`cannot create a temp folder in ${notADir} (ENOTDIR): set TMPDIR to a writable folder`)));
    assert.deepEqual(marks(await post(roomy, { challenge_id: 'tmp-ok', video_url: `${base}/files/front.mp4` })), MARKED);
    await nothingLeft(roomy);
  });

  it("a dead process's folders are removed at start-up; live ones and other names are kept", async () => {
    const deadPid = spawnSync('true').pid!; // exited: its pid names no process
    const make = (name: string) => {
      mkdirSync(path.join(privateTmp, name));
      writeFileSync(path.join(privateTmp, name, 'video'), 'partial download');
      return name;
    };
    const dead = make(`score-miner-${deadPid}-k2j3h4-Ab12Cd`);
    const earlierLife = make(`score-miner-${process.pid}-zz-Ab12Cd`); // this pid, another start: a restarted container
    const live = make(`score-miner-${process.ppid}-k2j3h4-Ab12Cd`); // the test runner: alive
    const other = make('score-miner-test-keep');
    const miner = await startMiner(loadConfig({ ...baseEnv, DOWNLOAD_ALLOW_PRIVATE: 'true' }));
    await miner.close();
    const left = readdirSync(privateTmp);
    for (const name of [live, other]) {
      assert.ok(left.includes(name), `${name} was removed`);
      rmSync(path.join(privateTmp, name), { recursive: true });
    }
    for (const name of [dead, earlierLife]) assert.ok(!left.includes(name), `${name} was kept`);
  });
});

describe('request checks', () => {
  it('a numeric challenge_id is a 400 naming the field (it used to come back as "1.2345678901234568e+22")', async () => {
    const reply = await post(roomy, `{"challenge_id": 12345678901234567890123, "video_url": "${base}/files/front.mp4"}`);
    assert.equal(reply.status, 400);
    assert.equal(reply.json.detail, 'Field challenge_id must be a string');
  });

  describe('video_url on loopback with DOWNLOAD_ALLOW_PRIVATE off', () => {
    const counted = { v4: 0, v6: 0 };
    let v4: http.Server;
    let v6: http.Server;
    let ports: { v4: number; v6: number };
    before(async () => {
      const serve = async (host: string, count: () => void) => {
        const server = http.createServer((_request, response) => response.end());
        server.on('connection', count);
        await new Promise<void>((resolve) => server.listen(0, host, resolve));
        return server;
      };
      v4 = await serve('127.0.0.1', () => counted.v4++);
      v6 = await serve('::1', () => counted.v6++);
      ports = { v4: (v4.address() as net.AddressInfo).port, v6: (v6.address() as net.AddressInfo).port };
    });
    after(async () => {
      for (const server of [v4, v6]) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('every literal spelling is a 400 naming the host and the setting, and no connection is made', async () => {
      const cases: Array<[string, string]> = [
        [`http://127.0.0.1:${ports.v4}/v.mp4`, '127.0.0.1'],
        [`http://127.1:${ports.v4}/v.mp4`, '127.0.0.1'],
        [`http://0x7f000001:${ports.v4}/v.mp4`, '127.0.0.1'],
        [`http://[::1]:${ports.v6}/v.mp4`, '::1'],
        [`http://[::ffff:127.0.0.1]:${ports.v4}/v.mp4`, '::ffff:7f00:1'],
      ];
      for (const [url, host] of cases) {
        const reply = await post(strict, { challenge_id: 'ssrf', video_url: url });
        assert.equal(reply.status, 400, url);
        assert.equal(
          reply.json.detail,
          `video_url host ${host} resolves to a loopback address, which is refused (DOWNLOAD_ALLOW_PRIVATE=true allows it for local testing)`,
        );
      }
      // A name is resolved first: the caller hears what a name that does not resolve gets, the log says why.
      const { value: named, lines } = await logged(() =>
        post(strict, { challenge_id: 'ssrf-name', video_url: `http://localhost:${ports.v4}/v.mp4?sig=s3cret` }),
      );
      assert.deepEqual([named.status, named.json.detail], [502, 'could not download the video: network error']);
      const logLine = lines.find((line) => line.includes('could not download the video: network error')) ?? '';
      assert.match(logLine, new RegExp(`GET http://localhost:${ports.v4}/v\\.mp4: localhost resolves to a loopback address`));
      assert.ok(!logLine.includes('s3cret'), logLine);
      await sleep(20);
      assert.deepEqual(counted, { v4: 0, v6: 0 }, 'a refused video_url reached its server');
      // The same server is reachable by a miner that allows it: the refusal was the policy.
      await post(roomy, { challenge_id: 'reach', video_url: `http://127.0.0.1:${ports.v4}/v.mp4` });
      assert.ok(counted.v4 > 0);
      await nothingLeft(strict);
    });
  });
});
