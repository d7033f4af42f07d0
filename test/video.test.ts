import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../lib/core/config.ts';
import { bundledFfmpeg, resolveFfmpeg } from '../lib/video/ffmpeg.ts';
import { openFrameChannel } from '../lib/video/frame-channel.ts';
import { ClipDecoder, type DecodeSpec, decodeClips, ffmpegDecodeArgs, frameBytes, WindowBuffers } from '../lib/video/frames.ts';
import { markerFrameAt25 } from '../lib/video/synthetic.ts';
import { VideoSource } from '../lib/video/video-source.ts';
import { startMiner } from '../server/app.ts';
import { rejectsWith } from './support/assertions.ts';
import { logged } from './support/logged.ts';
import { allFrames, clip, ffmpeg, tempDir } from './support/media.ts';
import { childrenRunning } from './support/processes.ts';

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
  it("takes this machine's Debian ffmpeg 5.1 from PATH before the bundled build", () => {
    const found = resolveFfmpeg();
    assert.equal(found.source, 'PATH');
    assert.equal(realpathSync(found.path), '/usr/bin/ffmpeg');
    assert.match(found.version, /^ffmpeg version 5\.1\.\d+-\d+\+deb12u\d+ /);
    assert.match(found.release ?? '', /^5\.1\.\d+$/);
    assert.equal(found.outdated, false);
    assert.deepEqual(found.passedOver, []);
  });
  it('without an ffmpeg on PATH: the bundled 2018 build, marked outdated, its release unknown', () => {
    const bundled = bundledFfmpeg();
    assert.ok(bundled, '@ffmpeg-installer/ffmpeg is installed (npm ci)');
    const found = resolveFfmpeg(undefined, { pathEnv: '', bundled });
    assert.equal(found.source, '@ffmpeg-installer/ffmpeg');
    assert.match(found.version, /^ffmpeg version N-47683-g0e8eb07980-static /);
    assert.equal(found.release, undefined);
    assert.equal(found.outdated, true);
  });
  it('refuses a FFMPEG_PATH that does not run, naming it', () => {
    assert.throws(() => resolveFfmpeg('/nonexistent/ffmpeg'), /FFMPEG_PATH=\/nonexistent\/ffmpeg does not run/);
  });
  it('start-up names the binary and its release, and warns about the bundled build only while security is on', async () => {
    const start = async (security: string, pathEnv: string) => {
      const saved = process.env.PATH;
      process.env.PATH = pathEnv; // resolveFfmpeg searches the process's PATH
      try {
        const config = loadConfig({ MINER_PORT: '0', MINER_HOST: '127.0.0.1', VERIFY: security, BLACKLIST: 'false' });
        const { value: miner, lines } = await logged(() => startMiner(config));
        await miner.close();
        return lines.join('');
      } finally {
        process.env.PATH = saved;
      }
    };
    const warning =
      /WARN {2}ffmpeg is the bundled 2018 build, without years of security fixes path=\S+ hint="install ffmpeg 5\.1 or newer \(apt-get install ffmpeg\) or set FFMPEG_PATH, then restart"/;
    const bundledOn = await start('true', tempDir);
    assert.match(
      bundledOn,
      /INFO {2}ffmpeg path=\S+\/@ffmpeg-installer\/linux-x64\/ffmpeg source=@ffmpeg-installer\/ffmpeg release=unknown version=/,
    );
    assert.match(bundledOn, warning);
    const bundledOff = await start('false', tempDir);
    assert.doesNotMatch(bundledOff, warning);
    const debianOn = await start('true', '/usr/bin');
    assert.match(debianOn, /INFO {2}ffmpeg path=\/usr\/bin\/ffmpeg source=PATH release=5\.1\.\d+ version="ffmpeg version 5\.1\./);
    assert.doesNotMatch(debianOn, warning);
  });
  it('builds a decode command with the fps filter, not -r', () => {
    const args = ffmpegDecodeArgs('in.mp4', { fps: 12.5, width: 64, height: 36, colour: 'gray', resize: 'bicubic' });
    assert.ok(args.includes('setpts=PTS-STARTPTS,fps=12.5,scale=64:36:flags=bicubic'));
    assert.ok(!args.includes('-r'));
    assert.deepEqual(args.slice(-5), ['-pix_fmt', 'gray', '-f', 'rawvideo', 'pipe:1']);
    // With a cap, timestamps are clamped to it before the fps filter, and the output ends there too.
    const capped = ffmpegDecodeArgs('in.mp4', { fps: 12.5, width: 64, height: 36, colour: 'gray', resize: 'bicubic', maxSeconds: 20 });
    assert.ok(capped.includes('setpts=min(PTS-STARTPTS\\,20/TB),fps=12.5,scale=64:36:flags=bicubic'), capped.join(' '));
    assert.equal(capped[capped.indexOf('-t') + 1], '20');
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
  it('non-video bytes are refused by name before ffmpeg opens them, never with the temp path', async () => {
    const junk = path.join(tempDir, 'junk.mp4');
    await writeFile(junk, Buffer.from('this is not a video'.repeat(100)));
    await assert.rejects(collect(junk, spec), (error: Error) => {
      assert.equal(error.message, 'Video could not be decoded: unsupported container (text); only MP4/MOV is accepted');
      assert.ok(!error.message.includes(tempDir), error.message);
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

/** The same clip with its index (moov) moved to the front, so it can be decoded as it streams in. */
function faststart(file: string, name: string): string {
  const out = path.join(tempDir, name);
  execFileSync(ffmpeg.path, ['-y', '-nostdin', '-loglevel', 'error', '-i', file, '-c', 'copy', '-movflags', '+faststart', out]);
  return out;
}

/** The file's bytes as a stream of small chunks, as a download would deliver them. */
async function* chunksOf(file: string, size = 16 * 1024): AsyncGenerator<Uint8Array> {
  const bytes = await readFile(file);
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}

describe('read-ahead, streamed input, abort and the duration cap', () => {
  const rgb: DecodeSpec = { fps: 25, width: 48, height: 27, colour: 'rgb', resize: 'bicubic', clipFrames: 8, strideFrames: 5 };
  const size = frameBytes(rgb);

  it('with read-ahead the windows hold the same bytes as ffmpeg writes, and no more than windowsAhead wait', async () => {
    const file = await clip('ahead.mp4', { width: 160, height: 90, fps: 25, seconds: 3, markers: [{ from: 30, to: 31, colour: 'white' }] });
    const direct = execFileSync(ffmpeg.path, ffmpegDecodeArgs(file, rgb), { maxBuffer: 64 * 1024 * 1024 });
    for (const ahead of [1, 2, 4]) {
      const decoder = new ClipDecoder(file, ffmpeg.path, rgb, { windowsAhead: ahead });
      // A slow consumer: after each window, wait (bounded) until the decoder has read ahead as far as allowed.
      const slow = async () => {
        for (let i = 0; i < 200 && decoder.peakQueued < ahead; i++) await sleep(5);
      };
      const frames = await allFrames(decoder.windows(), size, slow);
      assert.ok(frames.equals(direct), `windowsAhead=${ahead}: the frames differ from ffmpeg's own output`);
      assert.equal(decoder.peakQueued, ahead, `windowsAhead=${ahead}: read-ahead reached ${decoder.peakQueued}`);
    }
  });
  it('WindowBuffers: a given-back buffer is taken again when its size fits; another size replaces the old ones', () => {
    const buffers = new WindowBuffers(true);
    const a = buffers.take(64);
    const b = buffers.take(64);
    assert.ok(a.buffer instanceof SharedArrayBuffer);
    assert.notEqual(a.buffer, b.buffer);
    buffers.give([a, b, a]);
    assert.equal(buffers.idle, 2, 'a buffer given twice is kept once');
    assert.ok([a, b].includes(buffers.take(64)));
    const c = buffers.take(32);
    assert.ok(c !== a && c !== b && c.length === 32, 'no 32-byte buffer was idle: a new one');
    buffers.give([c]);
    assert.equal(buffers.idle, 1, 'the 64-byte buffer left idle was dropped for the new size');
    assert.equal(buffers.take(32), c);
    assert.ok(!(new WindowBuffers().take(8).buffer instanceof SharedArrayBuffer));
  });
  it('one WindowBuffers serves decode after decode: no new buffer, the same bytes, all given back however a decode ends', async () => {
    const file = await clip('reuse.mp4', { width: 160, height: 90, fps: 25, seconds: 3, markers: [{ from: 20, to: 22, colour: 'white' }] });
    const direct = execFileSync(ffmpeg.path, ffmpegDecodeArgs(file, rgb), { maxBuffer: 64 * 1024 * 1024 });
    const ahead = 2;
    const buffers = new WindowBuffers();
    const seen = new Set<ArrayBufferLike>();
    const decodeAll = async () => {
      const decoder = new ClipDecoder(file, ffmpeg.path, rgb, { windowsAhead: ahead, buffers });
      const slow = async () => {
        for (let i = 0; i < 200 && decoder.peakQueued < ahead; i++) await sleep(5);
      };
      const windows = decoder.windows();
      const frames = await allFrames(
        (async function* () {
          for await (const w of windows) {
            seen.add(w.frames.buffer);
            yield w;
          }
        })(),
        size,
        slow,
      );
      return frames;
    };
    assert.ok((await decodeAll()).equals(direct), 'first decode: frames differ');
    const firstSet = new Set(seen);
    assert.equal(buffers.idle, ahead + 1, 'the whole ring came back');
    assert.ok(firstSet.size >= 2 && firstSet.size <= ahead + 1, `${firstSet.size} window buffers seen`);
    // Reused buffers hold the last decode's frames: the second decode must overwrite every byte it hands out.
    assert.ok((await decodeAll()).equals(direct), 'second decode (reused buffers): frames differ');
    assert.deepEqual(
      [...seen].filter((b) => !firstSet.has(b)),
      [],
      'the second decode allocated new buffers',
    );
    assert.equal(buffers.idle, ahead + 1);

    // Stopped after its first window, aborted, or failed (not a video): the buffers still come back.
    for await (const _ of new ClipDecoder(file, ffmpeg.path, rgb, { windowsAhead: ahead, buffers }).windows()) break;
    assert.equal(buffers.idle, ahead + 1, 'after a break');
    const stop = new AbortController();
    await assert.rejects(async () => {
      for await (const _ of new ClipDecoder(file, ffmpeg.path, rgb, { windowsAhead: ahead, buffers, signal: stop.signal }).windows())
        stop.abort(new Error('stopped'));
    }, /stopped/);
    assert.equal(buffers.idle, ahead + 1, 'after an abort');
    const junk = path.join(tempDir, 'junk.mp4');
    await writeFile(junk, 'this is not a video');
    await rejectsWith(allFrames(decodeClips(junk, ffmpeg.path, rgb, { buffers }), size), 'undecodable-video', /Video could not be decoded/);
    assert.equal(buffers.idle, ahead + 1, 'after a failed decode');
  });
  it('decodes a faststart mp4 from stdin byte for byte like the file; a moov-at-end one fails there without a frame', async () => {
    // Larger than ffmpeg's probe buffer (a tiny file is read whole and then seeked within).
    const end = await clip('moov-end.mp4', { width: 320, height: 180, fps: 25, seconds: 4 });
    const front = faststart(end, 'moov-front.mp4');
    const direct = execFileSync(ffmpeg.path, ffmpegDecodeArgs(end, rgb), { maxBuffer: 64 * 1024 * 1024 });
    const streamed = await allFrames(decodeClips('pipe:0', ffmpeg.path, rgb, { stdin: chunksOf(front) }), size);
    assert.ok(streamed.equals(direct), 'the streamed frames differ from the file decode');
    const decoder = new ClipDecoder('pipe:0', ffmpeg.path, rgb, { stdin: chunksOf(end) });
    await rejectsWith(allFrames(decoder.windows(), size), 'undecodable-video', /Video could not be decoded/);
    assert.equal(decoder.framesDecoded, 0);
  });
  it('ffmpeg that stops reading its stdin early (not a video): the decode error, and the endless source is closed', async () => {
    let closed = false;
    async function* endless(): AsyncGenerator<Uint8Array> {
      try {
        // A first box whose 64-bit size is 0: the mov demuxer gives up at once (moov atom not found). Plain junk
        // would be read as boxes to skip, for as long as the source lasts (a challenge's is bounded by its size cap).
        yield Buffer.from([0, 0, 0, 1, 0x6a, 0x75, 0x6e, 0x6b, 0, 0, 0, 0, 0, 0, 0, 0]);
        for (;;) {
          yield Buffer.from('this is not a video '.repeat(4096));
          await sleep(1);
        }
      } finally {
        closed = true;
      }
    }
    // Forced to the mov demuxer, ffmpeg gives up on bytes with no box structure: the fixed message, not its stderr.
    await rejectsWith(
      allFrames(decodeClips('pipe:0', ffmpeg.path, rgb, { stdin: endless() }), size),
      'undecodable-video',
      /^Video could not be decoded: not a valid or complete MP4\/MOV video$/,
    );
    for (let i = 0; i < 100 && !closed; i++) await sleep(10);
    assert.ok(closed, 'the source was left open');
  });
  it('a consumer that stops while the producer waits for room in the queue: the decode ends, ffmpeg is gone', {
    timeout: 20_000,
  }, async () => {
    const file = await clip('full-queue.mp4', { width: 160, height: 90, fps: 25, seconds: 6 });
    for (const framesThroughPipe of [false, true]) {
      const decoder = new ClipDecoder(file, ffmpeg.path, rgb, { windowsAhead: 1, framesThroughPipe });
      for await (const _ of decoder.windows()) {
        // The next window is filled and queued: the producer now waits for the consumer to take it.
        for (let i = 0; i < 400 && decoder.framesDecoded < rgb.strideFrames + rgb.clipFrames; i++) await sleep(5);
        assert.equal(decoder.peakQueued, 1);
        break; // before the fix, leaving here never returned: the producer's wait was not woken
      }
      assert.deepEqual(childrenRunning(file), [], `ffmpeg still running (framesThroughPipe=${framesThroughPipe})`);
    }
  });
  it('an abort stops decoding between windows: the reason is thrown and ffmpeg is gone', async () => {
    const file = await clip('abort.mp4', { width: 160, height: 90, fps: 25, seconds: 6 });
    const stop = new AbortController();
    const reason = new Error('deadline');
    let seen = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of decodeClips(file, ffmpeg.path, rgb, { signal: stop.signal, windowsAhead: 2 })) {
          seen++;
          if (seen === 2) stop.abort(reason);
        }
      })(),
      (error) => error === reason,
    );
    assert.equal(seen, 2, 'a window was handed out after the abort');
    assert.deepEqual(childrenRunning(file), [], 'ffmpeg still running after the abort');
  });
  it('maxSeconds bounds the frames: a 10-hour timestamp gap in a tiny file gives maxSeconds x fps frames', async () => {
    const gap = path.join(tempDir, 'gap.mp4');
    // 2 s at 25 fps; from frame 40 on, the timestamps jump 10 hours (kept as they are with passthrough).
    execFileSync(ffmpeg.path, [
      ...['-y', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-t', '2', '-i', 'testsrc2=size=160x90:rate=25'],
      ...['-vf', 'setpts=if(gte(N\\,40)\\,PTS+36000/TB\\,PTS)', '-vsync', 'passthrough'],
      ...['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', gap],
    ]);
    assert.ok((await readFile(gap)).length < 100_000, 'the gap file should be tiny');
    const gray: DecodeSpec = { ...rgb, colour: 'gray', clipFrames: 50, strideFrames: 50 };
    const count = async (spec: DecodeSpec, stopAfter = Number.POSITIVE_INFINITY) => {
      let frames = 0;
      for await (const w of decodeClips(gap, ffmpeg.path, spec)) {
        frames = w.startFrame + w.validFrames;
        if (frames > stopAfter) break;
      }
      return frames;
    };
    assert.ok((await count(gray, 1000)) > 1000, 'without the cap the gap mints frames (the file is not what the test needs)');
    assert.equal(await count({ ...gray, maxSeconds: 20 }), 500);
    assert.ok(
      ffmpegDecodeArgs(gap, { ...gray, maxSeconds: 20 })
        .join(' ')
        .includes('-t 20 -pix_fmt'),
    );
  });
});

describe('VideoSource: decode while downloading, file fallback', () => {
  const spec: DecodeSpec = { fps: 25, width: 48, height: 27, colour: 'rgb', resize: 'bicubic', clipFrames: 16, strideFrames: 12 };
  const size = frameBytes(spec);
  const download = { timeoutMs: 20_000, maxBytes: 64 * 1024 * 1024, maxRedirects: 2, allowPrivate: true };
  let server: http.Server;
  let base: string;
  const files = new Map<string, Buffer>();
  /** Paths that send half the file, then wait for `release` before the rest. */
  let release: () => void = () => {};
  let released = Promise.resolve();
  const dirs: string[] = [];

  before(async () => {
    server = http.createServer(async (request, response) => {
      const [, mode, name] = (request.url ?? '').split('/');
      const body = files.get(name);
      if (!body) return void response.writeHead(404).end();
      response.writeHead(200, { 'content-length': body.length });
      if (mode === 'whole') return void response.end(body);
      response.write(body.subarray(0, body.length >> 1));
      if (mode === 'stall') return; // never sends the rest
      await released;
      response.end(body.subarray(body.length >> 1));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
    const end = await clip('source.mp4', {
      width: 320,
      height: 180,
      fps: 25,
      seconds: 6,
      markers: [{ from: 20, to: 21, colour: 'white' }],
    });
    files.set('end.mp4', await readFile(end));
    files.set('front.mp4', await readFile(faststart(end, 'source-front.mp4')));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  const source = async (url: string, signal = new AbortController().signal) => {
    const dir = await mkdtemp(path.join(tempDir, 'job-'));
    dirs.push(dir);
    return { dir, video: new VideoSource(url, { download, ffmpegPath: ffmpeg.path, spec, windowsAhead: 2, dir, signal }) };
  };
  const fileFrames = () => execFileSync(ffmpeg.path, ffmpegDecodeArgs(path.join(tempDir, 'source.mp4'), spec), { maxBuffer: 1 << 26 });

  it('a faststart mp4: windows come while the download is still running, the same frames as the file', async () => {
    released = new Promise((resolve) => {
      release = resolve;
    });
    const { video } = await source(`${base}/paced/front.mp4`);
    let downloadingAtFirstWindow: boolean | undefined;
    const frames = await allFrames(video.windows(), size, async () => {
      if (downloadingAtFirstWindow === undefined) {
        downloadingAtFirstWindow = video.stage === 'download';
        release();
      }
    });
    release(); // in case no window came before the end (the assertion below then fails)
    assert.equal(downloadingAtFirstWindow, true, 'the first window waited for the whole download');
    assert.equal(video.decodedFrom, 'stream');
    assert.ok(frames.equals(fileFrames()), 'streamed frames differ from the file decode');
  });
  it('a moov-at-end mp4: decoded again from the completed file, the same frames', async () => {
    const { video } = await source(`${base}/whole/end.mp4`);
    const frames = await allFrames(video.windows(), size);
    assert.equal(video.decodedFrom, 'file');
    assert.ok(frames.equals(fileFrames()), 'fallback frames differ from the file decode');
  });
  it('a download that fails before its first byte is the download error, and starts no ffmpeg', async () => {
    const { video } = await source(`${base}/whole/missing.mp4`);
    const error = await rejectsWith(allFrames(video.windows(), size), 'download-failed', /^could not download the video: HTTP error$/);
    assert.match(error.detail ?? '', /HTTP 404 Not Found$/);
    assert.equal(video.framesDecoded, 0);
  });
  it('an abort while the download stalls: the reason is thrown, ffmpeg is gone, the file is closed', async () => {
    const stop = new AbortController();
    const { video, dir } = await source(`${base}/stall/front.mp4`, stop.signal);
    const reason = new Error('deadline');
    const pending = allFrames(video.windows(), size);
    for (let i = 0; i < 400 && video.bytes === 0; i++) await sleep(5); // bounded: until the first half landed
    assert.ok(video.bytes > 0, 'nothing downloaded');
    stop.abort(reason);
    await assert.rejects(pending, (error) => error === reason);
    assert.deepEqual(childrenRunning('pipe:0'), [], 'ffmpeg still running after the abort');
    await rm(dir, { recursive: true }); // the caller's part: the folder can go, nothing holds it
  });
});

describe('frames through a socket read into one buffer, or a pipe where no socket can be made', () => {
  const rgb: DecodeSpec = { fps: 25, width: 48, height: 27, colour: 'rgb', resize: 'bicubic', clipFrames: 8, strideFrames: 5 };
  const size = frameBytes(rgb);

  /** Runs `fn` with TMPDIR set to `dir` (os.tmpdir() reads it on every call). */
  async function withTmpdir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = dir;
    try {
      return await fn();
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  }

  it("every chunk is a view into the same buffer, the bytes are ffmpeg's own, and the socket's folder is gone once connected", async () => {
    const file = await clip('channel.mp4', { width: 160, height: 90, fps: 25, seconds: 2 });
    const direct = execFileSync(ffmpeg.path, ffmpegDecodeArgs(file, rgb), { maxBuffer: 64 * 1024 * 1024 });
    const root = await mkdtemp(path.join(tempDir, 'tmp-'));
    const channel = await withTmpdir(root, openFrameChannel);
    assert.ok(channel, 'no frame channel in a plain temp folder');
    assert.deepEqual(await readdir(root), [], 'the socket folder outlived the connection');
    const child = spawn(ffmpeg.path, ffmpegDecodeArgs(file, rgb), { stdio: ['ignore', channel.childEnd, 'ignore'] });
    channel.closeChildEnd();
    const buffers = new Set<ArrayBufferLike>();
    const parts: Buffer[] = [];
    for await (const chunk of channel.chunks()) {
      buffers.add(chunk.buffer);
      parts.push(Buffer.from(chunk)); // a copy: the view is overwritten by the next read
    }
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    assert.ok(parts.length > 1, `${parts.length} chunk(s)`);
    assert.equal(buffers.size, 1, `${buffers.size} buffers for ${parts.length} reads`);
    assert.ok(Buffer.concat(parts).equals(direct), "the socket's bytes differ from ffmpeg's own output");
    channel.close();
    channel.close(); // idempotent
    await rm(root, { recursive: true });
  });

  it('closed while ffmpeg still writes: the reader ends at once and ffmpeg stops on its next write', async () => {
    const file = await clip('channel-long.mp4', { width: 160, height: 90, fps: 25, seconds: 6 });
    const channel = await openFrameChannel();
    assert.ok(channel);
    const child = spawn(ffmpeg.path, ffmpegDecodeArgs(file, rgb), { stdio: ['ignore', channel.childEnd, 'ignore'] });
    channel.closeChildEnd();
    const chunks = channel.chunks();
    assert.equal((await chunks.next()).done, false);
    channel.close();
    assert.equal((await chunks.next()).done, true);
    const [code, signal] = await once(child, 'exit');
    assert.ok(code !== 0 || signal !== null, `ffmpeg exited ${code} after its reader closed`);
  });

  it('the socket and the pipe give the same windows; a temp path too long for a socket falls back to the pipe', async () => {
    const file = await clip('channel-both.mp4', { width: 160, height: 90, fps: 25, seconds: 3 });
    const direct = execFileSync(ffmpeg.path, ffmpegDecodeArgs(file, rgb), { maxBuffer: 64 * 1024 * 1024 });
    const viaSocket = await allFrames(decodeClips(file, ffmpeg.path, rgb), size);
    const viaPipe = await allFrames(decodeClips(file, ffmpeg.path, rgb, { framesThroughPipe: true }), size);
    assert.ok(viaSocket.equals(direct), 'socket: the frames differ from ffmpeg own output');
    assert.ok(viaPipe.equals(direct), 'pipe: the frames differ from ffmpeg own output');
    // A socket path is limited to about 100 bytes: a deeper temp folder cannot hold one.
    const deep = path.join(tempDir, 'd'.repeat(60), 'e'.repeat(60));
    await mkdir(deep, { recursive: true });
    assert.equal(await withTmpdir(deep, openFrameChannel), undefined);
    assert.deepEqual(await readdir(deep), [], 'the refused channel left its folder');
    const fallback = await withTmpdir(deep, () => allFrames(decodeClips(file, ffmpeg.path, rgb), size));
    assert.ok(fallback.equals(direct), 'fallback: the frames differ from ffmpeg own output');
    assert.deepEqual(childrenRunning(file), []);
  });
});
