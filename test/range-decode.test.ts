/**
 * Decoding an mp4 whose index (moov) is at the end while it downloads (lib/video/range-reader.ts): the
 * tail is fetched by a Range request, the front stops where it starts, and ffmpeg reads a loopback URL served
 * from the temp file. Loopback servers only; no timing is asserted (a front that waits for the tail is gated
 * on the tail's request, with a hang guard only).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DownloadOptions } from '../lib/video/download.ts';
import { type DecodeSpec, ffmpegDecodeArgs, frameBytes } from '../lib/video/frames.ts';
import { mp4Layout } from '../lib/video/range-reader.ts';
import { VideoSource } from '../lib/video/video-source.ts';
import { rejectsWith } from './support/assertions.ts';
import { trackSockets } from './support/loopback.ts';
import { allFrames, clip, ffmpeg, tempDir } from './support/media.ts';
import { childrenRunning } from './support/processes.ts';

/** Hang guard only: a gated front is released after this even if the tail's request never came. */
const GATE_GUARD_MS = 15_000;
/** What the front may send before it waits for the tail's request to be answered. */
const FRONT_FIRST = 32 * 1024;
/** Received past the front's end: the chunk that crossed it (undici's chunks are at most 64 KiB). */
const ALLOWANCE = 64 * 1024;

const spec: DecodeSpec = { fps: 25, width: 48, height: 27, colour: 'rgb', resize: 'bicubic', clipFrames: 16, strideFrames: 12 };
const size = frameBytes(spec);
const download: DownloadOptions = { timeoutMs: 20_000, maxBytes: 64 * 1024 * 1024, maxRedirects: 2, allowPrivate: true };

/** This process's open files under `dir`. */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) open.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return open;
}

interface Served {
  route: string;
  range: string | undefined;
  userAgent: string | undefined;
  status: number;
  bytes: number;
  /** The answer ended or its connection closed (a keep-alive connection may stay in the client's pool). */
  closed: boolean;
}

/**
 * The origin. /ranged/<name>: Range requests answered (206), Accept-Ranges and Content-Length on every answer;
 * the front (no Range) sends FRONT_FIRST bytes, then waits until a Range request was answered, then the rest.
 * /stall/<name>: the same, but the front never sends its rest. /plain/<name>: 200 only, no Accept-Ranges.
 * /ignoring/<name>: says Accept-Ranges but answers a Range request 200 with the whole file (the front is gated).
 * /redirecting/<name>: like /ranged, but a Range request is redirected to `redirectTarget`.
 * Everything it sent is in `served` (per request: bytes written, the Range header and the User-Agent).
 */
function origin(files: Map<string, Buffer>) {
  const served: Served[] = [];
  let rangeAnswered: () => void = () => {};
  let rangeDone = new Promise<void>((resolve) => {
    rangeAnswered = resolve;
  });
  const state = { redirectTarget: '' };
  const write = async (response: http.ServerResponse, record: Served, bytes: Buffer) => {
    for (let at = 0; at < bytes.length && !response.destroyed; at += 16 * 1024) {
      const chunk = bytes.subarray(at, at + 16 * 1024);
      record.bytes += chunk.length;
      if (!response.write(chunk)) await new Promise((resolve) => response.once('drain', resolve).once('close', resolve));
    }
  };
  const server = http.createServer(async (request, response) => {
    const [, route = '', name = ''] = (request.url ?? '').split('/');
    const body = files.get(name);
    const range = request.headers.range;
    const record: Served = { route, range, userAgent: request.headers['user-agent'], status: 0, bytes: 0, closed: false };
    served.push(record);
    response.on('close', () => {
      record.closed = true;
    });
    if (!body) return void response.writeHead(404).end();
    const ranges = route !== 'plain';
    const head = (status: number, headers: http.OutgoingHttpHeaders) => {
      record.status = status;
      response.writeHead(status, { 'content-type': 'video/mp4', ...(ranges ? { 'accept-ranges': 'bytes' } : {}), ...headers });
    };
    if (range && route === 'redirecting') {
      head(302, { location: state.redirectTarget });
      return void response.end();
    }
    const match = /^bytes=(\d+)-(\d*)$/.exec(range ?? '');
    if (match && (route === 'ranged' || route === 'stall')) {
      const start = Number(match[1]);
      const end = match[2] ? Math.min(Number(match[2]), body.length - 1) : body.length - 1;
      head(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${body.length}` });
      await write(response, record, body.subarray(start, end + 1));
      response.end();
      rangeAnswered();
      return;
    }
    head(200, { 'content-length': body.length });
    if (route === 'plain' || (route === 'ignoring' && range)) {
      await write(response, record, body);
      response.end();
      if (range) rangeAnswered();
      return;
    }
    await write(response, record, body.subarray(0, FRONT_FIRST));
    const guard = setTimeout(rangeAnswered, GATE_GUARD_MS);
    await Promise.race([rangeDone, new Promise((resolve) => response.once('close', resolve))]);
    clearTimeout(guard);
    if (route === 'stall') return; // the rest never comes
    await write(response, record, body.subarray(FRONT_FIRST));
    response.end();
  });
  const sockets = trackSockets(server);
  return {
    served,
    sockets,
    state,
    /** Before each test: forget what was served, close the gate again. */
    reset() {
      served.length = 0;
      rangeDone = new Promise<void>((resolve) => {
        rangeAnswered = resolve;
      });
    },
    /** Opens the gate by hand (the redirecting route: its Range request is answered with a redirect). */
    open: () => rangeAnswered(),
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

describe('range decode of a moov-at-end mp4', () => {
  const files = new Map<string, Buffer>();
  let server: ReturnType<typeof origin>;
  let base: string;
  let endFile: string;
  let end: Buffer;
  /** Where the index starts in end.mp4 (found by its box name, apart from the code under test). */
  let moovAt: number;
  let fileFrames: Buffer;
  const dirs: string[] = [];

  before(async () => {
    endFile = await clip('range-end.mp4', {
      width: 320,
      height: 180,
      fps: 25,
      seconds: 6,
      markers: [{ from: 20, to: 21, colour: 'white' }],
    });
    end = await readFile(endFile);
    moovAt = end.lastIndexOf('moov') - 4;
    assert.ok(moovAt > end.length / 2, 'the clip should have its index at the end');
    assert.ok(end.length > 4 * FRONT_FIRST, 'the clip is too small for the gate');
    files.set('end.mp4', end);
    fileFrames = execFileSync(ffmpeg.path, ffmpegDecodeArgs(endFile, spec), { maxBuffer: 1 << 26 });
    server = origin(files);
    base = await server.listen();
  });
  after(async () => {
    await server?.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  const source = async (url: string, options: Partial<DownloadOptions> = {}, signal = new AbortController().signal) => {
    server.reset();
    const dir = await mkdtemp(path.join(tempDir, 'range-job-'));
    dirs.push(dir);
    const video = new VideoSource(url, {
      download: { ...download, ...options },
      ffmpegPath: ffmpeg.path,
      spec,
      windowsAhead: 2,
      dir,
      signal,
    });
    return { dir, video };
  };

  it('finds the tail where the index starts, and leaves faststart and non-mp4 files to the stream', () => {
    assert.deepEqual(mp4Layout(end.subarray(0, 64), end.length), { kind: 'index-at-end', tailStart: moovAt });
    assert.deepEqual(mp4Layout(Buffer.from('<html>not a video</html>'.repeat(10)), 240), { kind: 'stream' });
    const front = Buffer.concat([end.subarray(0, 32), Buffer.from([0, 0, 0, 16]), Buffer.from('moov'), Buffer.alloc(8)]);
    assert.deepEqual(mp4Layout(front, end.length), { kind: 'stream' });
    assert.equal(mp4Layout(end.subarray(0, 8), end.length).kind, 'need-more');
    // Boxes before the media data past the probe limit: not worth waiting for (and never a loop).
    const big = Buffer.concat([end.subarray(0, 32), Buffer.from([0, 0x0f, 0xff, 0xd8]), Buffer.from('free'), Buffer.alloc(8)]); // next box 8 bytes before the limit
    assert.deepEqual(mp4Layout(big, 64 * 1024 * 1024), { kind: 'stream' });
  });

  it('is decoded from the loopback URL while it downloads: the same frames as the file, every byte fetched once, ffmpeg never at the origin', async () => {
    const { video, dir } = await source(`${base}/ranged/end.mp4`);
    const frames = await allFrames(video.windows(), size);
    assert.equal(video.decodedFrom, 'range');
    assert.match(video.localUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/[0-9a-f]{24}$/);
    assert.ok(frames.equals(fileFrames), 'range-decoded frames differ from the file decode');
    // The origin: one whole-file request (stopped where the tail starts) and one Range request for exactly the tail.
    const ranged = server.served.filter((s) => s.range !== undefined);
    assert.deepEqual(
      ranged.map((s) => [s.range, s.status]),
      [[`bytes=${moovAt}-${end.length - 1}`, 206]],
    );
    assert.deepEqual(
      server.served.map((s) => s.userAgent),
      ['score-miner', 'score-miner'],
      'something other than the download reached the origin',
    );
    const sent = server.served.reduce((sum, s) => sum + s.bytes, 0);
    assert.ok(sent <= end.length + ALLOWANCE, `the origin sent ${sent} bytes for a ${end.length}-byte file`);
    assert.ok(video.bytesFetched <= end.length + ALLOWANCE, `fetched ${video.bytesFetched} bytes for a ${end.length}-byte file`);
    assert.ok(video.bytesFetched >= end.length);
    assert.deepEqual(openFilesUnder(dir), []);
  });

  it('the size cap still refuses a file larger than DOWNLOAD_MAX_BYTES, with no Range request', async () => {
    const { video } = await source(`${base}/ranged/end.mp4`, { maxBytes: end.length - 1 });
    const error = await rejectsWith(allFrames(video.windows(), size), 'download-failed', /^could not download the video: too large$/);
    assert.match(error.detail ?? '', /DOWNLOAD_MAX_BYTES/);
    assert.deepEqual(
      server.served.filter((s) => s.range !== undefined),
      [],
    );
  });

  for (const route of ['plain', 'ignoring'] as const) {
    it(`an origin that ${route === 'plain' ? 'does not answer ranges' : 'says it does but answers 200'} falls back to the completed file, the same frames`, async () => {
      const { video } = await source(`${base}/${route}/end.mp4`);
      const frames = await allFrames(video.windows(), size);
      assert.equal(video.decodedFrom, 'file');
      assert.ok(frames.equals(fileFrames), 'fallback frames differ from the file decode');
      const ranged = server.served.filter((s) => s.range !== undefined).length;
      assert.equal(ranged, route === 'plain' ? 0 : 1);
    });
  }

  it('the address policy holds for the Range request: redirected to loopback it is refused (no connection), and the file fallback answers', async () => {
    let connections = 0;
    const target = http.createServer((_request, response) => response.end());
    target.on('connection', () => connections++);
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    try {
      server.state.redirectTarget = `http://127.0.0.1:${(target.address() as net.AddressInfo).port}/end.mp4`;
      // Only the first hop (the test's own origin) may be private.
      const { video } = await source(`${base}/redirecting/end.mp4`, { allowPrivate: (hop) => hop === 0 });
      const pending = allFrames(video.windows(), size);
      // The gate opens once the Range request got its redirect.
      for (let i = 0; i < 400 && !server.served.some((s) => s.range !== undefined && s.status === 302); i++) await sleep(10);
      server.open();
      const frames = await pending;
      assert.ok(
        server.served.some((s) => s.range !== undefined && s.status === 302),
        'no Range request was made',
      );
      assert.equal(video.decodedFrom, 'file');
      assert.ok(frames.equals(fileFrames));
      assert.equal(connections, 0, 'the refused redirect target was reached');
    } finally {
      target.closeAllConnections();
      await new Promise((resolve) => target.close(resolve));
    }
  });

  it('refuses a loopback origin unless allowed, before any request', async () => {
    const { video } = await source(`${base}/ranged/end.mp4`, { allowPrivate: false });
    await rejectsWith(allFrames(video.windows(), size), 'invalid-input', /loopback address, which is refused/);
    assert.deepEqual(server.served, []);
  });

  it('the deadline mid-way: the reason is thrown; no ffmpeg, no loopback server, no origin connection, no open file', async () => {
    const stop = new AbortController();
    const { video, dir } = await source(`${base}/stall/end.mp4`, {}, stop.signal);
    const reason = new Error('deadline');
    const pending = allFrames(video.windows(), size);
    // Bounded: until ffmpeg reads from the loopback server (the tail came, the front stalls after FRONT_FIRST).
    for (let i = 0; i < 1000 && (video.localUrl === undefined || childrenRunning(video.localUrl).length === 0); i++) await sleep(10);
    const local = video.localUrl;
    assert.ok(local, 'no range decode started');
    assert.ok(childrenRunning(local).length > 0, 'ffmpeg did not start on the loopback URL');
    stop.abort(reason);
    await assert.rejects(pending, (error) => error === reason);
    assert.deepEqual(childrenRunning(local), [], 'ffmpeg still running after the abort');
    await assert.rejects(fetch(local, { signal: AbortSignal.timeout(5000) }), 'the loopback server still answers');
    for (let i = 0; i < 100 && server.served.some((s) => !s.closed); i++) await sleep(20);
    assert.deepEqual(
      server.served.filter((s) => !s.closed).map((s) => s.range ?? 'front'),
      [],
      'a request to the origin is still open',
    );
    assert.deepEqual(openFilesUnder(dir), [], 'the temp file is still open');
    await rm(dir, { recursive: true });
  });
});
