/**
 * Video in: download a chunk to a temp file, then decode it with ffmpeg straight into raw frames at the
 * model's rate and size, streamed into fixed-size clip windows held in one reused buffer.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MinerError } from '../core/errors.ts';

// ---------------------------------------------------------------- ffmpeg binary

export interface FfmpegBinary {
  path: string;
  /** Where it came from: FFMPEG_PATH, the npm package, or PATH. */
  source: 'FFMPEG_PATH' | '@ffmpeg-installer/ffmpeg' | 'PATH';
  /** First line of `ffmpeg -version`. */
  version: string;
}

function ffmpegVersion(binary: string): string | undefined {
  const result = spawnSync(binary, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10_000 });
  if (result.status !== 0 || !result.stdout) return undefined;
  return result.stdout.split('\n')[0].trim();
}

function packagedFfmpeg(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  } catch {
    return undefined; // no binary for this platform: fall through to PATH
  }
}

/**
 * Resolve ffmpeg in a fixed order: FFMPEG_PATH (must work, no silent fallback), then the binary shipped in
 * @ffmpeg-installer/ffmpeg (works offline), then `ffmpeg` on PATH. Each candidate is run once to prove it works.
 */
export function resolveFfmpeg(override?: string): FfmpegBinary {
  if (override) {
    const version = ffmpegVersion(override);
    if (!version) {
      throw new MinerError(`FFMPEG_PATH=${override} does not run as ffmpeg`, {
        hint: 'point FFMPEG_PATH at a working ffmpeg binary, or unset it to use the bundled one',
      });
    }
    return { path: override, source: 'FFMPEG_PATH', version };
  }
  const packaged = packagedFfmpeg();
  const packagedVersion = packaged ? ffmpegVersion(packaged) : undefined;
  if (packaged && packagedVersion) return { path: packaged, source: '@ffmpeg-installer/ffmpeg', version: packagedVersion };
  const onPath = ffmpegVersion('ffmpeg');
  if (onPath) return { path: 'ffmpeg', source: 'PATH', version: onPath };
  throw new MinerError('no working ffmpeg found (tried FFMPEG_PATH, @ffmpeg-installer/ffmpeg, PATH)', {
    hint: 'run `npm ci` again, or install ffmpeg (`apt-get install ffmpeg`) or set FFMPEG_PATH',
  });
}

// ---------------------------------------------------------------- download

export interface DownloadOptions {
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
}

export interface DownloadedVideo {
  path: string;
  bytes: number;
  /** Deletes the temp file and its folder; safe to call twice. */
  cleanup(): Promise<void>;
}

function downloadError(url: string, cause: string): MinerError {
  return new MinerError(`Video download failed (${url}): ${cause}`, { kind: 'download-failed' });
}

function assertHttpUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new MinerError(`video_url is not a valid URL: ${JSON.stringify(raw)}`, { kind: 'invalid-input' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MinerError(`video_url must be an http(s) URL, got ${url.protocol}`, { kind: 'invalid-input' });
  }
  return url;
}

/** Follow at most `maxRedirects` redirects by hand so each hop is checked to be http(s). */
async function fetchFollowing(start: URL, options: DownloadOptions, signal: AbortSignal): Promise<Response> {
  let url = start;
  for (let hop = 0; ; hop++) {
    const response = await fetch(url, { redirect: 'manual', signal });
    if (response.status < 300 || response.status >= 400 || response.status === 304) return response;
    await response.body?.cancel();
    const location = response.headers.get('location');
    if (!location) throw downloadError(start.href, `redirect ${response.status} without a Location header`);
    if (hop >= options.maxRedirects) throw downloadError(start.href, `more than ${options.maxRedirects} redirects`);
    url = new URL(location, url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw downloadError(start.href, `redirect to ${url.protocol} refused`);
  }
}

/**
 * Stream `rawUrl` into a temp file. Every failure (DNS, refused, HTTP status, timeout, too large) is a 502
 * MinerError with the cause; the temp file is removed on failure and by `cleanup()` on success.
 */
export async function downloadVideo(rawUrl: string, options: DownloadOptions): Promise<DownloadedVideo> {
  const url = assertHttpUrl(rawUrl);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'score-miner-'));
  const file = path.join(dir, 'video.mp4');
  const cleanup = () => rm(dir, { recursive: true, force: true });
  const signal = AbortSignal.timeout(options.timeoutMs);
  let bytes = 0;
  try {
    const response = await fetchFollowing(url, options, signal);
    if (!response.ok) {
      await response.body?.cancel();
      throw downloadError(url.href, `HTTP ${response.status} ${response.statusText}`.trim());
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    const tooLarge = () => downloadError(url.href, `larger than the ${options.maxBytes}-byte cap (DOWNLOAD_MAX_BYTES)`);
    if (declared > options.maxBytes) {
      await response.body?.cancel();
      throw tooLarge();
    }
    if (!response.body) throw downloadError(url.href, 'empty response body');
    // Counted while streaming, so a lying (or absent) Content-Length cannot fill the disk.
    const capped = async function* (source: AsyncIterable<Uint8Array>) {
      for await (const chunk of source) {
        bytes += chunk.byteLength;
        if (bytes > options.maxBytes) throw tooLarge();
        yield chunk;
      }
    };
    await pipeline(Readable.fromWeb(response.body as never), capped, createWriteStream(file));
    if (bytes === 0) throw downloadError(url.href, 'empty response body');
    return { path: file, bytes, cleanup };
  } catch (error) {
    await cleanup();
    if (error instanceof MinerError) throw error;
    if (signal.aborted) throw downloadError(url.href, `timed out after ${options.timeoutMs / 1000} s (DOWNLOAD_TIMEOUT_S)`);
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw downloadError(url.href, cause?.code ?? cause?.message ?? (error as Error).message);
  }
}

// ---------------------------------------------------------------- decode into clip windows

export interface DecodeSpec {
  /** Frames per second the model samples at; frame k is at k / fps seconds. */
  fps: number;
  width: number;
  height: number;
  colour: 'rgb' | 'gray';
  /** ffmpeg scale flags (model.json `input.resize`). */
  resize: string;
  /** Frames per window (T) and the step between window starts (S <= T). */
  clipFrames: number;
  strideFrames: number;
}

export interface ClipWindow {
  /** Index (at model fps) of the window's first frame. */
  startFrame: number;
  /** T frames, tightly packed; frames past `validFrames` repeat the last real frame. Reused: copy to keep. */
  frames: Uint8Array;
  validFrames: number;
}

export function frameBytes(spec: Pick<DecodeSpec, 'width' | 'height' | 'colour'>): number {
  return spec.width * spec.height * (spec.colour === 'rgb' ? 3 : 1);
}

/** The ffmpeg argv that turns a file into raw frames on stdout (or into nothing, for the decode-only floor). */
export function ffmpegDecodeArgs(
  input: string,
  spec: Pick<DecodeSpec, 'fps' | 'width' | 'height' | 'colour' | 'resize'>,
  output: 'pipe' | 'null' = 'pipe',
): string[] {
  // setpts makes frame 0 the first decoded frame; the fps filter (not -r) resamples without extra frames.
  const filter = `setpts=PTS-STARTPTS,fps=${spec.fps},scale=${spec.width}:${spec.height}:flags=${spec.resize}`;
  return [
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    '-i',
    input,
    '-an',
    '-sn',
    '-dn',
    '-vf',
    filter,
    '-pix_fmt',
    spec.colour === 'rgb' ? 'rgb24' : 'gray',
    '-f',
    'rawvideo',
    ...(output === 'pipe' ? ['pipe:1'] : ['-y', '/dev/null']),
  ];
}

/** Turns ffmpeg's stderr into a client-facing cause: the file is not a (complete) video. */
function decodeError(stderr: string, code: number | null): MinerError {
  const line = stderr.trim().split('\n').filter(Boolean).pop() ?? `ffmpeg exited with code ${code}`;
  return new MinerError(`Video could not be decoded: ${line.slice(0, 300)}`, { kind: 'undecodable-video' });
}

/**
 * Decode `input` and yield overlapping windows of `clipFrames` frames every `strideFrames` frames. One
 * buffer serves every window: after yielding, the overlap is moved to the front and the rest refilled.
 * The last, partial window (if any) is padded with its last real frame. A video with no frame is an error.
 */
export async function* decodeClips(input: string, ffmpegPath: string, spec: DecodeSpec): AsyncGenerator<ClipWindow> {
  const size = frameBytes(spec);
  const window = new Uint8Array(size * spec.clipFrames);
  const overlap = spec.clipFrames - spec.strideFrames;
  const child = spawn(ffmpegPath, ffmpegDecodeArgs(input, spec), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < 8192) stderr += text;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });

  let startFrame = 0;
  let filled = 0; // bytes of the window holding real frames
  let yieldedEnd = 0; // frames covered by windows already yielded
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      let offset = 0;
      while (offset < chunk.length) {
        const take = Math.min(window.length - filled, chunk.length - offset);
        window.set(chunk.subarray(offset, offset + take), filled);
        filled += take;
        offset += take;
        if (filled === window.length) {
          yield { startFrame, frames: window, validFrames: spec.clipFrames };
          yieldedEnd = startFrame + spec.clipFrames;
          window.copyWithin(0, spec.strideFrames * size, window.length);
          filled = overlap * size;
          startFrame += spec.strideFrames;
        }
      }
    }
    const code = await exited;
    if (code !== 0) throw decodeError(stderr, code);
    const validFrames = Math.floor(filled / size);
    if (startFrame + validFrames > yieldedEnd) {
      for (let f = validFrames; f < spec.clipFrames; f++) window.copyWithin(f * size, (validFrames - 1) * size, validFrames * size);
      yield { startFrame, frames: window, validFrames };
    } else if (yieldedEnd === 0) {
      throw new MinerError('Video could not be decoded: no video frames found', { kind: 'undecodable-video' });
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
