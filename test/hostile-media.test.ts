/**
 * Hostile media against the real miner (real ffmpeg, onnxruntime in its worker, the test's video server on
 * loopback): files that would make ffmpeg open local resources (an HLS playlist served as video.mp4 naming a
 * local .ts file, a DASH manifest, a self-listing ffconcat script) are refused by name before ffmpeg starts;
 * a 16000x12000 frame bomb is refused by the pixel cap with ffmpeg's peak memory small; ffmpeg runs with a
 * built environment and an address-space limit. After each: the miner serves, no temp folder or ffmpeg left.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { ClipDecoder, decodeMemoryBound, ffmpegDecodeArgs } from '../lib/video/frames.ts';
import { GrowingFile } from '../lib/video/growing-file.ts';
import { boundedCommand, DECODE_FAILURE, FFMPEG_ADDRESS_SPACE_BYTES } from '../lib/video/media-policy.ts';
import { SplitFile, serveLoopback } from '../lib/video/range-reader.ts';
import type { RunningMiner } from '../server/app.ts';
import { logged } from './support/logged.ts';
import { clip, FLASH_AND_CUT, ffmpeg, startVideoServer, type TestVideoServer, tempDir } from './support/media.ts';
import { startLocalMiner } from './support/miner.ts';
import { childrenRunning } from './support/processes.ts';

// Job folders go to os.tmpdir() (TMPDIR): a private one, so that only this file's miner adds to it.
const privateTmp = mkdtempSync(path.join(os.tmpdir(), 'hostile-media-test-'));
const originalTmp = process.env.TMPDIR;
process.env.TMPDIR = privateTmp;
const jobFolders = () => readdirSync(privateTmp).filter((name) => /^score-miner-\d+-/.test(name));

const HANG_GUARD_MS = 120_000;

interface Reply {
  status: number;
  json: { predictions?: { frame: number; action: string }[]; detail?: string };
}

let miner: RunningMiner;
let videos: TestVideoServer;
/** A local MPEG-TS file with the white flash at frame 75: decoded, it would answer goal@75. */
let localTs: string;
let hugeClip: string;

let posted = 0;
/** Each challenge has its own id: an identical body would be answered from the miner's kept answers, not run. */
async function post(videoPath: string): Promise<Reply> {
  const response = await fetch(`${miner.url}/challenge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ challenge_id: `hostile-${++posted}`, video_url: `${videos.base}${videoPath}` }),
    signal: AbortSignal.timeout(HANG_GUARD_MS),
  });
  return { status: response.status, json: (await response.json()) as Reply['json'] };
}

/** Nothing of the challenge is left, and the miner still answers a genuine one in full. */
async function stillServing(): Promise<void> {
  for (let i = 0; i < 600 && miner.pool.depth.admitted > 0; i++) await sleep(50);
  assert.equal(miner.pool.depth.admitted, 0, 'a challenge is still held');
  assert.deepEqual(jobFolders(), [], 'temp folders left behind');
  assert.deepEqual(childrenRunning('ffmpeg'), [], 'ffmpeg left running');
  const runsBefore = miner.answers.health().runs;
  const genuine = await post('/files/good.mp4');
  assert.equal(genuine.status, 200, JSON.stringify(genuine.json));
  assert.equal(miner.answers.health().runs, runsBefore + 1, 'the genuine challenge ran (not a kept answer)');
  assert.deepEqual(
    genuine.json.predictions?.map((p) => [p.frame, p.action]),
    [
      [75, 'goal'],
      [175, 'ball_out_of_play'],
    ],
  );
}

before(async () => {
  const good = await clip('hostile-good.mp4', { width: 320, height: 180, fps: 25, seconds: 10, markers: FLASH_AND_CUT });
  localTs = path.join(tempDir, 'local-secret.ts');
  execFileSync(ffmpeg.path, ['-y', '-nostdin', '-loglevel', 'error', '-i', good, '-c', 'copy', '-f', 'mpegts', localTs]);
  hugeClip = path.join(tempDir, 'huge-16000x12000.mp4');
  // One 16000x12000 frame compresses to a few hundred KB; decoded, it is 288 MB per frame per thread.
  execFileSync(ffmpeg.path, [
    ...['-y', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'color=black:s=16000x12000:r=25'],
    ...['-frames:v', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', hugeClip],
  ]);
  videos = await startVideoServer({
    'good.mp4': good,
    'hls.mp4': Buffer.from(`#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n${localTs}\n#EXT-X-ENDLIST\n`),
    'dash.mp4': Buffer.from(
      `<?xml version="1.0" encoding="UTF-8"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT10S">` +
        `<Period><AdaptationSet mimeType="video/mp2t"><Representation id="1" bandwidth="1000"><BaseURL>file://${localTs}</BaseURL>` +
        '</Representation></AdaptationSet></Period></MPD>\n',
    ),
    // The miner's temp file is named `video`: this script lists itself (ffmpeg 4.1 crashed on it).
    'concat.mp4': Buffer.from('ffconcat version 1.0\nfile video\nfile video\n'),
    'huge.mp4': hugeClip,
  });
  miner = await startLocalMiner({ DOWNLOAD_ALLOW_PRIVATE: 'true' }); // the videos are served on loopback
});

after(async () => {
  await miner?.close();
  await videos?.close();
  process.env.TMPDIR = originalTmp;
  if (originalTmp === undefined) delete process.env.TMPDIR;
  rmSync(privateTmp, { recursive: true, force: true });
});

describe('containers that open other resources are refused before ffmpeg starts', () => {
  const cases: Array<[string, string, string]> = [
    ['an HLS playlist served as video.mp4, naming a local .ts file', '/files/hls.mp4', 'HLS playlist'],
    ['a DASH manifest naming a local file', '/files/dash.mp4', 'DASH manifest'],
    ['an ffconcat script that lists itself', '/files/concat.mp4', 'ffconcat script'],
  ];
  for (const [label, route, name] of cases) {
    it(`${label}: 422 naming it, nothing decoded`, async () => {
      const reply = await post(route);
      assert.equal(reply.status, 422);
      assert.deepEqual(reply.json, { detail: `Video could not be decoded: unsupported container (${name}); only MP4/MOV is accepted` });
      await stillServing();
    });
  }
});

describe('bounds', () => {
  it('a 16000x12000 mp4 is refused by the pixel cap with the fixed message', async () => {
    assert.ok((await readFile(hugeClip)).length < 2 * 1024 * 1024, 'the bomb is small');
    const { value: reply, lines } = await logged(() => post('/files/huge.mp4'));
    assert.equal(reply.status, 422);
    assert.deepEqual(reply.json, { detail: DECODE_FAILURE.tooLarge });
    // ffmpeg's own words reach the log, never the caller.
    assert.ok(
      lines.some((l) =>
        /WARN .*frame size is above.* detail=.*ffmpeg \(file\) exited with code \d+: .*exceeds specified max pixel count/.test(l),
      ),
      lines.join('\n'),
    );
    await stillServing();
  });
  it("the miner's own ffmpeg command on the 16000x12000 clip peaks under 300 MB (GNU time's max RSS)", async () => {
    const spec = { fps: 12.5, width: 398, height: 224, colour: 'rgb' as const, resize: 'bilinear' };
    const command = boundedCommand(ffmpeg.path, ffmpegDecodeArgs(hugeClip, spec, 'null'), decodeMemoryBound());
    const run = await execa('/usr/bin/time', ['-f', 'maxrss_kb=%M', command.file, ...command.args], { reject: false });
    assert.notEqual(run.exitCode, 0, 'the decode must fail');
    const kb = Number(/maxrss_kb=(\d+)/.exec(run.stderr)?.[1]);
    assert.ok(kb > 0 && kb < 300 * 1024, `ffmpeg peaked at ${kb} KB: ${run.stderr.slice(-400)}`);
  });
});

describe("ffmpeg's process", () => {
  it('sees PATH and a locale only (no token from the miner environment), under the address-space limit', async () => {
    process.env.DOCKERHUB_TOKEN = 'dckr_pat_not-for-ffmpeg';
    const file = await clip('hostile-environ.mp4', { width: 160, height: 90, fps: 25, seconds: 2 });
    const bytes = await readFile(file);
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The front of the file, then nothing until the test has looked at the running ffmpeg.
    async function* slowly(): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 4096);
      await held;
      yield bytes.subarray(4096);
    }
    const spec = { fps: 12.5, width: 64, height: 36, colour: 'gray' as const, resize: 'bilinear', clipFrames: 4, strideFrames: 4 };
    const decoder = new ClipDecoder('pipe:0', ffmpeg.path, spec, { stdin: slowly() });
    const consumed = (async () => {
      let windows = 0;
      for await (const _ of decoder.windows()) windows++;
      return windows;
    })();
    try {
      let pid: number | undefined;
      for (let i = 0; i < 400 && pid === undefined; i++) {
        pid = childrenRunning('ffmpeg')[0];
        if (pid === undefined) await sleep(10);
      }
      assert.ok(pid, 'no ffmpeg found running');
      // prlimit execs ffmpeg in place: give it a moment to have done so.
      for (let i = 0; i < 100 && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(ffmpeg.path); i++) await sleep(10);
      const names = readFileSync(`/proc/${pid}/environ`, 'utf8')
        .split('\0')
        .filter(Boolean)
        .map((entry) => entry.slice(0, entry.indexOf('=')))
        .sort();
      assert.deepEqual(names, ['LC_ALL', 'PATH']);
      if (existsSync('/usr/bin/prlimit')) {
        const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
        const line = limits.split('\n').find((l) => l.startsWith('Max address space'));
        assert.match(
          line ?? '',
          new RegExp(`^Max address space\\s+${FFMPEG_ADDRESS_SPACE_BYTES}\\s+${FFMPEG_ADDRESS_SPACE_BYTES}\\s+bytes`),
        );
      }
    } finally {
      release();
      delete process.env.DOCKERHUB_TOKEN;
    }
    assert.equal(await consumed, 7, '2 s at 12.5 fps = 25 frames: 7 windows of 4 (the last padded)');
  });
});

describe('the loopback range server', () => {
  it('an error after it listens is logged, closes it and fails that challenge only (no uncaught error event)', async () => {
    const file = await GrowingFile.create(path.join(privateTmp, 'range-error-video'));
    const split = new SplitFile(file, 10, 20);
    const failures: Error[] = [];
    const server = await serveLoopback(split, (error) => failures.push(error));
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/[0-9a-f]{24}$/);
      assert.equal(server.server.listenerCount('error'), 1, 'one permanent error listener');
      server.server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }));
      assert.deepEqual(
        failures.map((e) => e.message),
        ['accept EMFILE'],
      );
      await server.close();
      assert.equal(server.server.listening, false);
      await assert.rejects(fetch(server.url, { signal: AbortSignal.timeout(5000) }), 'nothing listens any more');
    } finally {
      await server.close();
      await file.close();
    }
  });
});
