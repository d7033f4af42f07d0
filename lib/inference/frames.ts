/**
 * Decode a video file with ffmpeg straight into raw frames at the model's rate and size, streamed into
 * fixed-size clip windows held in one reused buffer.
 */
import { execa } from 'execa';
import { MinerError } from '../core/errors.ts';

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

/** How long ffmpeg gets to exit after SIGTERM (decode stopped early) before it is SIGKILLed. */
const KILL_GRACE_MS = 2000;
/** ffmpeg's stderr kept for the error message: its tail, where the cause is. */
const STDERR_TAIL = 8192;

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

/**
 * Turns ffmpeg's stderr into a client-facing cause: the file is not a (complete) video. ffmpeg names the
 * input file in its messages; that is the server's temp path, so it is replaced by "the video".
 */
function decodeError(stderr: string, input: string, exit: string): MinerError {
  const line = stderr.trim().split('\n').filter(Boolean).pop() ?? `ffmpeg ${exit}`;
  const cause = line.replaceAll(input, 'the video').slice(0, 300);
  return new MinerError(`Video could not be decoded: ${cause}`, { kind: 'undecodable-video' });
}

/**
 * Decode `input` and yield overlapping windows of `clipFrames` frames every `strideFrames` frames. One
 * buffer serves every window: after yielding, the overlap is moved to the front and the rest refilled.
 * The last, partial window (if any) is padded with its last real frame. A video with no frame is an error.
 * When the consumer stops early (break, return, throw), ffmpeg is terminated and reaped before this returns.
 */
export async function* decodeClips(input: string, ffmpegPath: string, spec: DecodeSpec): AsyncGenerator<ClipWindow> {
  const size = frameBytes(spec);
  const window = new Uint8Array(size * spec.clipFrames);
  const overlap = spec.clipFrames - spec.strideFrames;
  const cancel = new AbortController();
  const child = execa(ffmpegPath, ffmpegDecodeArgs(input, spec), {
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    cancelSignal: cancel.signal,
    forceKillAfterDelay: KILL_GRACE_MS,
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_TAIL);
  });

  let startFrame = 0;
  let filled = 0; // bytes of the window holding real frames
  let yieldedEnd = 0; // frames covered by windows already yielded
  let exited = false;
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
    const result = await child;
    exited = true;
    if (result.signal) throw decodeError(stderr, input, `was killed by ${result.signal}`);
    if (result.exitCode === undefined) {
      // ffmpeg did not run at all (missing binary, no permission): an internal fault, not the video's.
      throw new MinerError(`ffmpeg could not be run: ${result.originalMessage ?? result.shortMessage ?? 'no exit code'}`, {
        cause: result.cause,
      });
    }
    if (result.exitCode !== 0) throw decodeError(stderr, input, `exited with code ${result.exitCode}`);
    const validFrames = Math.floor(filled / size);
    if (startFrame + validFrames > yieldedEnd) {
      for (let f = validFrames; f < spec.clipFrames; f++) window.copyWithin(f * size, (validFrames - 1) * size, validFrames * size);
      yield { startFrame, frames: window, validFrames };
    } else if (yieldedEnd === 0) {
      throw new MinerError('Video could not be decoded: no video frames found', { kind: 'undecodable-video' });
    }
  } finally {
    if (!exited) {
      // Stopped early: close the pipe (ffmpeg cannot block writing into it), terminate ffmpeg (SIGTERM, then
      // SIGKILL after the grace period) and wait until it is gone, so no decoder outlives its challenge.
      child.stdout.destroy();
      cancel.abort();
      await child;
    }
  }
}
