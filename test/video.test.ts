import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { type ErrorKind, MinerError } from '../lib/core/errors.ts';
import { resolveFfmpeg } from '../lib/inference/ffmpeg.ts';
import { type DecodeSpec, decodeClips, ffmpegDecodeArgs, frameBytes } from '../lib/inference/frames.ts';
import { markerFrameAt25 } from '../lib/inference/synthetic.ts';
import { clip, ffmpeg, tempDir } from './support/media.ts';

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

/** Live child processes of this test process running `needle` in their argv (Linux /proc). */
function childrenRunning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {
      // the process ended while being read
    }
  }
  return pids;
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
  it('windows hold exactly the bytes ffmpeg writes, the last one padded', async () => {
    // 1.3 s at 25 fps -> 32 or 33 rgb frames: windows of 8 every 5, the last one partial.
    const rgb: DecodeSpec = { fps: 25, width: 48, height: 27, colour: 'rgb', resize: 'bicubic', clipFrames: 8, strideFrames: 5 };
    const file = await clip('bytes.mp4', { width: 160, height: 90, fps: 25, seconds: 1.3 });
    const size = frameBytes(rgb);
    const direct = execFileSync(ffmpeg.path, ffmpegDecodeArgs(file, rgb), { maxBuffer: 64 * 1024 * 1024 });
    const frames = direct.length / size;
    assert.ok(Number.isInteger(frames) && frames > 8, `ffmpeg wrote ${direct.length} bytes`);
    const rebuilt = Buffer.alloc(direct.length);
    let windows = 0;
    let last: { startFrame: number; validFrames: number; frames: Uint8Array } | undefined;
    for await (const w of decodeClips(file, ffmpeg.path, rgb)) {
      assert.equal(w.startFrame, windows * rgb.strideFrames);
      rebuilt.set(w.frames.subarray(0, w.validFrames * size), w.startFrame * size);
      last = { ...w, frames: w.frames.slice() };
      windows++;
    }
    assert.ok(last);
    assert.equal(last.startFrame + last.validFrames, frames);
    assert.ok(rebuilt.equals(direct), 'the frames differ from ffmpeg own output');
    const lastReal = last.frames.subarray((last.validFrames - 1) * size, last.validFrames * size);
    for (let f = last.validFrames; f < rgb.clipFrames; f++)
      assert.ok(Buffer.from(last.frames.subarray(f * size, (f + 1) * size)).equals(lastReal));
  });
  it('stopping early (break or throw) terminates ffmpeg before the loop is left', async () => {
    const file = await clip('long.mp4', { width: 160, height: 90, fps: 25, seconds: 6 });
    for (const how of ['break', 'throw'] as const) {
      let seen = 0;
      try {
        for await (const _ of decodeClips(file, ffmpeg.path, spec)) {
          seen = childrenRunning(file).length;
          if (how === 'throw') throw new Error('consumer failed');
          break;
        }
      } catch (error) {
        assert.equal((error as Error).message, 'consumer failed');
      }
      assert.equal(seen, 1, 'ffmpeg runs while the windows are read');
      assert.deepEqual(childrenRunning(file), [], `ffmpeg still running after ${how}`);
    }
  });
  it("non-video bytes are a 422 with ffmpeg's cause, never the temp path", async () => {
    const junk = path.join(tempDir, 'junk.mp4');
    await writeFile(junk, Buffer.from('this is not a video'.repeat(100)));
    await rejectsWith(collect(junk, spec), 'undecodable-video', /Video could not be decoded: .*Invalid data/);
    await assert.rejects(collect(junk, spec), (error: Error) => {
      assert.ok(!error.message.includes(tempDir), error.message);
      assert.match(error.message, /the video/);
      return true;
    });
  });
  it('a truncated mp4 is a 422', async () => {
    const file = await clip('whole.mp4', { width: 160, height: 90, fps: 25, seconds: 1 });
    const bytes = await readFile(file);
    const cut = path.join(tempDir, 'truncated.mp4');
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await rejectsWith(collect(cut, spec), 'undecodable-video', /Video could not be decoded/);
  });
});
