import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ErrorKind, MinerError } from '../lib/core/errors.ts';
import { markerFrameAt25 } from '../lib/inference/synthetic.ts';
import { type DecodeSpec, decodeClips, downloadVideo, ffmpegDecodeArgs, frameBytes, resolveFfmpeg } from '../lib/inference/video.ts';
import { clip, ffmpeg, startVideoServer, type TestVideoServer, tempDir } from './support/media.ts';

const download = { timeoutMs: 2000, maxBytes: 1024 * 1024, maxRedirects: 3 };

async function rejectsWith(promise: Promise<unknown>, kind: ErrorKind, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof MinerError, `expected MinerError, got ${String(error)}`);
    assert.equal(error.kind, kind);
    assert.match(error.message, pattern);
    return true;
  });
}

/** Mean of each frame's bytes: white flashes ~255, black cuts ~0, testsrc2 in between. */
function frameMeans(frames: Uint8Array, count: number, size: number): number[] {
  return Array.from({ length: count }, (_, f) => {
    let sum = 0;
    for (let i = f * size; i < (f + 1) * size; i++) sum += frames[i];
    return sum / size;
  });
}

async function collect(file: string, spec: DecodeSpec) {
  const windows: { startFrame: number; validFrames: number; means: number[] }[] = [];
  for await (const w of decodeClips(file, ffmpeg.path, spec)) {
    windows.push({ startFrame: w.startFrame, validFrames: w.validFrames, means: frameMeans(w.frames, spec.clipFrames, frameBytes(spec)) });
  }
  return windows;
}

describe('ffmpeg resolution', () => {
  it('uses the packaged binary by default and reports its version', () => {
    const found = resolveFfmpeg();
    assert.equal(found.source, '@ffmpeg-installer/ffmpeg');
    assert.match(found.version, /^ffmpeg version /);
  });
  it('refuses a FFMPEG_PATH that does not run, naming it', () => {
    assert.throws(() => resolveFfmpeg('/nonexistent/ffmpeg'), /FFMPEG_PATH=\/nonexistent\/ffmpeg does not run/);
  });
  it('builds a decode command with the fps filter, not -r', () => {
    const args = ffmpegDecodeArgs('in.mp4', { fps: 12.5, width: 64, height: 36, colour: 'gray', resize: 'bicubic' });
    assert.ok(args.includes('setpts=PTS-STARTPTS,fps=12.5,scale=64:36:flags=bicubic'));
    assert.ok(!args.includes('-r'));
    assert.deepEqual(args.slice(-5), ['-pix_fmt', 'gray', '-f', 'rawvideo', 'pipe:1']);
  });
});

describe('download', () => {
  let server: TestVideoServer;
  let small: string;
  before(async () => {
    small = await clip('small.mp4', { width: 160, height: 90, fps: 25, seconds: 1 });
    server = await startVideoServer({ 'small.mp4': small, 'big.bin': Buffer.alloc(2 * 1024 * 1024, 7) });
  });
  after(() => server.close());

  it('streams a file to a temp path and cleanup deletes it', async () => {
    const video = await downloadVideo(`${server.base}/files/small.mp4`, download);
    assert.deepEqual(await readFile(video.path), await readFile(small));
    await video.cleanup();
    assert.equal(existsSync(video.path), false);
    await video.cleanup(); // twice is harmless
  });
  it('follows redirects up to the limit', async () => {
    const video = await downloadVideo(`${server.base}/redirect/3/small.mp4`, download);
    assert.ok(video.bytes > 0);
    await video.cleanup();
    await rejectsWith(downloadVideo(`${server.base}/redirect/4/small.mp4`, download), 'download-failed', /more than 3 redirects/);
  });
  it('404 is a 502 naming the status', () =>
    rejectsWith(downloadVideo(`${server.base}/files/missing.mp4`, download), 'download-failed', /HTTP 404/));
  it('a stalled server times out as a 502', () =>
    rejectsWith(downloadVideo(`${server.base}/slow`, { ...download, timeoutMs: 300 }), 'download-failed', /timed out after 0.3 s/));
  it('a declared size over the cap is refused before reading', () =>
    rejectsWith(downloadVideo(`${server.base}/huge`, download), 'download-failed', /larger than the 1048576-byte cap/));
  it('a body over the cap is cut off while streaming', () =>
    rejectsWith(downloadVideo(`${server.base}/endless`, download), 'download-failed', /larger than the 1048576-byte cap/));
  it('a sized body over the cap is refused', () =>
    rejectsWith(downloadVideo(`${server.base}/files/big.bin`, download), 'download-failed', /cap/));
  it('refused connections are a 502 with the cause', async () => {
    const closed = await startVideoServer({});
    await closed.close();
    await rejectsWith(downloadVideo(`${closed.base}/x.mp4`, download), 'download-failed', /ECONNREFUSED/);
  });
  it('non-http schemes are a 400', () => rejectsWith(downloadVideo('file:///etc/passwd', download), 'invalid-input', /http\(s\)/));
});

describe('decode into clip windows', () => {
  const spec: DecodeSpec = { fps: 25, width: 32, height: 18, colour: 'gray', resize: 'area', clipFrames: 20, strideFrames: 15 };

  it('maps a 30 fps clip onto the model rate with marks at the right frames', async () => {
    // 2 s at 30 fps = 60 source frames -> 50 frames at 25 fps; white flash on source frames 30-32 (1.0 s).
    const flash = { from: 30, to: 32, colour: 'white' as const };
    const file = await clip('flash30.mp4', { width: 320, height: 180, fps: 30, seconds: 2, markers: [flash] });
    const windows = await collect(file, spec);
    assert.deepEqual(
      windows.map((w) => [w.startFrame, w.validFrames]),
      [
        [0, 20],
        [15, 20],
        [30, 20],
      ],
    );
    // Rebuild the frame sequence from the windows and find the bright frames.
    const means: number[] = [];
    for (const w of windows) for (let i = 0; i < w.validFrames; i++) means[w.startFrame + i] = w.means[i];
    assert.equal(means.length, 50); // 2 s at 25 fps: the last window ends exactly at frame 50, no partial one
    const bright = means.flatMap((m, i) => (m > 240 ? [i] : []));
    assert.equal(bright[0], markerFrameAt25(flash, 30)); // 1.0 s -> frame 25
    assert.ok(bright.length >= 2 && bright.length <= 3, `flash spans ${bright}`);
  });
  it('pads the last partial window with its last real frame', async () => {
    const file = await clip('short.mp4', { width: 160, height: 90, fps: 25, seconds: 0.4, markers: [{ from: 8, to: 9, colour: 'black' }] });
    const windows = await collect(file, spec);
    assert.equal(windows.length, 1);
    assert.equal(windows[0].validFrames, 10);
    assert.ok(windows[0].means[9] < 20, 'frame 9 is the black cut');
    for (let f = 10; f < 20; f++) assert.equal(windows[0].means[f], windows[0].means[9]);
  });
  it("non-video bytes are a 422 with ffmpeg's cause", async () => {
    const junk = path.join(tempDir, 'junk.mp4');
    await writeFile(junk, Buffer.from('this is not a video'.repeat(100)));
    await rejectsWith(collect(junk, spec), 'undecodable-video', /Video could not be decoded: .*Invalid data/);
  });
  it('a truncated mp4 is a 422', async () => {
    const file = await clip('whole.mp4', { width: 160, height: 90, fps: 25, seconds: 1 });
    const bytes = await readFile(file);
    const cut = path.join(tempDir, 'truncated.mp4');
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await rejectsWith(collect(cut, spec), 'undecodable-video', /Video could not be decoded/);
  });
});
