/**
 * Decode a video with ffmpeg straight into raw frames at the model's rate and size, cut into fixed-size,
 * overlapping clip windows. Read-ahead: ffmpeg's output is read into a small ring of window buffers while the
 * consumer (the model) works on an earlier window, so decode and inference overlap; at most `windowsAhead`
 * finished windows wait for the consumer, and then ffmpeg is held back by the full pipe (bounded memory).
 */
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { execa } from 'execa';
import { MinerError } from '../core/errors.ts';
import { drainedOrClosed } from '../core/streams.ts';
import { openFrameChannel } from './frame-channel.ts';
import {
  boundedCommand,
  DECODE_FAILURE,
  decodeFailureMessage,
  ffmpegEnvironment,
  inputKind,
  type MemoryBound,
  memoryBound,
  policyInputOptions,
  refusedContainerMessage,
  SNIFF_BYTES,
  sniffContainer,
} from './media-policy.ts';

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
  /**
   * MAX_VIDEO_SECONDS: at most this much video (model-rate timeline) is decoded; a timestamp gap would
   * otherwise make the fps filter mint hours of duplicate frames from a tiny file.
   */
  maxSeconds?: number;
}

export interface ClipWindow {
  /** Index (at model fps) of the window's first frame. */
  startFrame: number;
  /** T frames, tightly packed; frames past `validFrames` repeat the last real frame. Valid until the next window is asked for. */
  frames: Uint8Array;
  validFrames: number;
}

export interface DecodeOptions {
  /** Bytes for ffmpeg's stdin; `input` is then 'pipe:0'. The iterable is closed when ffmpeg stops reading. */
  stdin?: AsyncIterable<Uint8Array>;
  /** Finished windows that may wait for the consumer (DECODE_WINDOWS_AHEAD); default 1. */
  windowsAhead?: number;
  /**
   * Where window buffers come from and go back to when windows() ends: pass one WindowBuffers per consumer to
   * reuse them decode after decode (shared ones, so a worker thread can read them without a copy). Default: a
   * private, unshared set.
   */
  buffers?: WindowBuffers;
  /** Stops decoding: ffmpeg is killed and reaped, and the windows() iterator throws `signal.reason`. */
  signal?: AbortSignal;
  /** Read the frames from a pipe, as where no socket can be made (frame-channel.ts); tests run both. */
  framesThroughPipe?: boolean;
}

/**
 * Window buffers kept from one decode to the next (the server keeps one set per inference slot). Without it,
 * each challenge allocated its own ring and the previous rings stayed until garbage collection: 230 MB of
 * window buffers measured alive after three challenges, where one ring is 80 MB.
 */
export class WindowBuffers {
  private readonly shared: boolean;
  private free: Uint8Array[] = [];

  /** `shared`: on SharedArrayBuffers, readable by a worker thread in place. */
  constructor(shared = false) {
    this.shared = shared;
  }

  /** Buffers waiting to be reused. */
  get idle(): number {
    return this.free.length;
  }

  /** A buffer of `bytes` (contents unspecified): a returned one when it has that size, else a new one. */
  take(bytes: number): Uint8Array {
    const index = this.free.findIndex((b) => b.length === bytes);
    if (index !== -1) return this.free.splice(index, 1)[0];
    return new Uint8Array(this.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  }

  /** Gives buffers back once nothing reads or writes them any more. Another size (a new model) replaces the old ones. */
  give(buffers: Iterable<Uint8Array>): void {
    for (const buffer of buffers) {
      if (this.free.includes(buffer)) continue;
      if (this.free.length > 0 && this.free[0].length !== buffer.length) this.free = [];
      this.free.push(buffer);
    }
  }
}

/** How long ffmpeg gets to exit after SIGTERM (decode stopped early) before it is SIGKILLed. */
const KILL_GRACE_MS = 2000;
/** ffmpeg's stderr kept for the log: its tail, where the cause is. */
const STDERR_TAIL = 8192;

/** The memory bound every decode runs under, found once (media-policy.ts). */
let bound: MemoryBound | undefined;
export function decodeMemoryBound(): MemoryBound {
  bound ??= memoryBound();
  return bound;
}

export function frameBytes(spec: Pick<DecodeSpec, 'width' | 'height' | 'colour'>): number {
  return spec.width * spec.height * (spec.colour === 'rgb' ? 3 : 1);
}

/**
 * The ffmpeg argv that turns a file, 'pipe:0' or the loopback range URL into raw frames on stdout (or into
 * nothing, for the decode-only floor), under the media policy (format, protocols, bounds: media-policy.ts).
 */
export function ffmpegDecodeArgs(
  input: string,
  spec: Pick<DecodeSpec, 'fps' | 'width' | 'height' | 'colour' | 'resize' | 'maxSeconds'>,
  output: 'pipe' | 'null' = 'pipe',
): string[] {
  // setpts makes frame 0 the first decoded frame; the fps filter (not -r) resamples without extra frames.
  // With a cap, no timestamp goes past it: ffmpeg 5.1's fps filter fills up to the input's last timestamp before
  // the output's -t can stop it (a 10-hour gap in a tiny mp4: 40 s of CPU minting frames, against 0.2 s). The
  // frames before the cap are the same either way.
  const pts = spec.maxSeconds === undefined ? 'PTS-STARTPTS' : `min(PTS-STARTPTS\\,${spec.maxSeconds}/TB)`;
  const filter = `setpts=${pts},fps=${spec.fps},scale=${spec.width}:${spec.height}:flags=${spec.resize}`;
  return [
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    ...policyInputOptions(input),
    '-i',
    input,
    '-an',
    '-sn',
    '-dn',
    '-vf',
    filter,
    // An output option: it ends the output at that timestamp, however many frames the filter would still emit.
    ...(spec.maxSeconds === undefined ? [] : ['-t', String(spec.maxSeconds)]),
    '-pix_fmt',
    spec.colour === 'rgb' ? 'rgb24' : 'gray',
    '-f',
    'rawvideo',
    ...(output === 'pipe' ? ['pipe:1'] : ['-y', '/dev/null']),
  ];
}

/**
 * Copies `source` into ffmpeg's stdin with backpressure, then ends it. ffmpeg may stop reading early (it failed,
 * reached maxSeconds, or was stopped): the write error (EPIPE) is expected then and ffmpeg's exit tells why.
 * A source that fails (the download) closes stdin: ffmpeg sees the end of its input.
 */
async function feed(source: AsyncIterable<Uint8Array>, stdin: Writable): Promise<void> {
  stdin.on('error', () => {});
  const iterator = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      const { value, done } = await iterator.next();
      if (done) return void stdin.end();
      if (stdin.destroyed) break;
      if (!stdin.write(value)) {
        await drainedOrClosed(stdin);
      }
    }
  } catch {
    stdin.destroy();
    return; // the source already ended by throwing
  }
  await iterator.return?.().catch(() => {}); // stdin is gone: let the source release what it holds
}

/**
 * A failed decode as the caller sees it: one of the fixed messages (DECODE_FAILURE). ffmpeg's stderr holds heap
 * addresses, the server's temp paths and caller-chosen names: it is the error's private detail, which the server
 * logs when the failure answers a challenge (a first decode that falls back to the whole file logs nothing).
 */
function decodeError(stderr: string, input: string, exit: string, killedBy?: string): MinerError {
  const detail = `ffmpeg (${inputKind(input)}) ${exit}: ${stderr.trim().slice(-1000)}`;
  return new MinerError(decodeFailureMessage(stderr, killedBy), { kind: 'undecodable-video', detail });
}

/** A local file's container, checked before ffmpeg opens it: anything but MP4/MOV is refused by name. */
async function checkFileContainer(file: string): Promise<void> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return; // ffmpeg reports a missing file the usual way
  try {
    const head = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(head, 0, SNIFF_BYTES, 0);
    const verdict = sniffContainer(head.subarray(0, bytesRead));
    if (!verdict.accepted) throw new MinerError(refusedContainerMessage(verdict.name), { kind: 'undecodable-video' });
  } finally {
    await handle.close();
  }
}

/**
 * One ffmpeg run cut into windows of `clipFrames` frames every `strideFrames` frames. The last, partial
 * window (if any) is padded with its last real frame; a video with no frame is an error. Whenever
 * windows() ends (done, error, break, abort), ffmpeg has exited and been reaped.
 */
export class ClipDecoder {
  /** Frames read from ffmpeg so far (at the model's rate). */
  framesDecoded = 0;
  private readonly input: string;
  private readonly ffmpegPath: string;
  private readonly spec: DecodeSpec;
  private readonly options: DecodeOptions;
  private readonly size: number;
  private readonly ahead: number;
  private queue: ClipWindow[] = [];
  private free: Uint8Array[] = [];
  /** Every buffer taken from `buffers`, all given back when windows() ends. */
  private taken: Uint8Array[] = [];
  private readonly buffers: WindowBuffers;
  private ended = false;
  private failure: { error: unknown } | undefined;
  /** Whoever waits for the other side: the consumer on an empty queue, the producer on a full one. */
  private waiters: Array<() => void> = [];
  private maxQueued = 0;

  constructor(input: string, ffmpegPath: string, spec: DecodeSpec, options: DecodeOptions = {}) {
    this.input = input;
    this.ffmpegPath = ffmpegPath;
    this.spec = spec;
    this.options = options;
    this.size = frameBytes(spec);
    this.ahead = Math.max(1, options.windowsAhead ?? 1);
    this.buffers = options.buffers ?? new WindowBuffers();
  }

  /** Most finished windows that waited for the consumer at once (never above windowsAhead). */
  get peakQueued(): number {
    return this.maxQueued;
  }

  async *windows(): AsyncGenerator<ClipWindow> {
    const stop = new AbortController();
    const signal = this.options.signal ? AbortSignal.any([stop.signal, this.options.signal]) : stop.signal;
    signal.throwIfAborted();
    if (inputKind(this.input) === 'file') await checkFileContainer(this.input);
    // Frames come through a socket read into one reused buffer (frame-channel.ts), else through a pipe.
    const channel = this.options.framesThroughPipe ? undefined : await openFrameChannel();
    if (signal.aborted) {
      channel?.close();
      signal.throwIfAborted();
    }
    const onAbort = () => this.wake();
    signal.addEventListener('abort', onAbort);
    let child: ReturnType<typeof execa>;
    try {
      const command = boundedCommand(this.ffmpegPath, ffmpegDecodeArgs(this.input, this.spec, 'pipe'), decodeMemoryBound());
      child = execa(command.file, command.args, {
        // Built, not inherited: no proxy, no token, nothing of the miner's (media-policy.ts).
        env: ffmpegEnvironment(),
        extendEnv: false,
        stdin: this.options.stdin ? 'pipe' : 'ignore',
        stdout: channel?.childEnd ?? 'pipe',
        stderr: 'pipe',
        buffer: false,
        reject: false,
        cancelSignal: signal,
        forceKillAfterDelay: KILL_GRACE_MS,
      });
    } catch (error) {
      channel?.close();
      throw error;
    } finally {
      channel?.closeChildEnd(); // ffmpeg holds its own copy: the reader sees the end when ffmpeg exits
    }
    const frames: AsyncIterable<Uint8Array> = channel ? channel.chunks() : (child.stdout as AsyncIterable<Buffer>);
    const stopReading = () => (channel ? channel.close() : child.stdout?.destroy());
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_TAIL);
    });
    // Not awaited: a source waiting for bytes that never come is ended by its owner (the download), not here.
    if (this.options.stdin && child.stdin) void feed(this.options.stdin, child.stdin);
    const producing = this.produce(child, frames, stopReading, () => stderr, signal).then(
      () => {
        this.ended = true;
      },
      (error) => {
        this.failure = { error };
      },
    );
    void producing.then(() => this.wake());

    let held: ClipWindow | undefined;
    try {
      for (;;) {
        if (held) this.free.push(held.frames); // the consumer asked for the next one: the last is done with
        held = undefined;
        this.options.signal?.throwIfAborted(); // stop between windows
        const next = this.queue.shift();
        if (next) {
          this.wake(); // room for the producer
          held = next;
          yield next;
          continue;
        }
        if (this.failure) throw this.failure.error;
        if (this.ended) return;
        await this.changed();
      }
    } finally {
      // Stopped early or failed: close the frames' reader (ffmpeg cannot block writing into it) and stop ffmpeg
      // (SIGTERM, then SIGKILL after the grace period); the abort also wakes a producer waiting for room in the
      // queue. In every case wait until ffmpeg is gone, so no decoder outlives its caller.
      if (!this.ended) {
        child.stdin?.destroy();
        stopReading();
        stop.abort();
      }
      await child;
      await producing;
      signal.removeEventListener('abort', onAbort);
      channel?.close();
      // ffmpeg and the producer are gone and the consumer has stopped asking: no window is in use any more.
      this.buffers.give(this.taken.splice(0));
      this.free = [];
      this.queue = [];
    }
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  /** Wait until `room()` holds (the consumer took a window or gave one back) or decoding was stopped. */
  private async waitFor(signal: AbortSignal, room: () => boolean): Promise<void> {
    while (!room() && !signal.aborted) await this.changed();
  }

  private buffer(): Uint8Array | undefined {
    const free = this.free.pop();
    if (free) return free;
    // The producer takes a new buffer once the queue is below `ahead`: at most ahead - 1 queued + the one the
    // consumer holds + the one being filled.
    if (this.taken.length >= this.ahead + 1) return undefined;
    const buffer = this.buffers.take(this.size * this.spec.clipFrames);
    this.taken.push(buffer);
    return buffer;
  }

  private push(window: ClipWindow): void {
    this.queue.push(window);
    this.maxQueued = Math.max(this.maxQueued, this.queue.length);
    this.wake();
  }

  private async produce(
    child: ReturnType<typeof execa>,
    frames: AsyncIterable<Uint8Array>,
    stopReading: () => void,
    stderr: () => string,
    signal: AbortSignal,
  ): Promise<void> {
    const { size } = this;
    const { clipFrames, strideFrames } = this.spec;
    const overlap = clipFrames - strideFrames;
    let window = this.buffer()!;
    let startFrame = 0;
    let filled = 0; // bytes of the window holding real frames
    let queuedEnd = 0; // frames covered by windows already handed over
    try {
      for await (const chunk of frames) {
        let offset = 0;
        while (offset < chunk.length) {
          const take = Math.min(window.length - filled, chunk.length - offset);
          window.set(chunk.subarray(offset, offset + take), filled);
          filled += take;
          offset += take;
          this.framesDecoded = startFrame + Math.floor(filled / size);
          if (filled < window.length) continue;
          const done = window;
          this.push({ startFrame, frames: done, validFrames: clipFrames });
          queuedEnd = startFrame + clipFrames;
          // Read ahead no further than `ahead` windows: ffmpeg waits on the full pipe meanwhile.
          await this.waitFor(signal, () => this.queue.length < this.ahead);
          let next: Uint8Array | undefined = this.buffer();
          while (!next && !signal.aborted) {
            await this.waitFor(signal, () => this.free.length > 0);
            next = this.buffer();
          }
          if (!next) return; // stopped
          // The overlap comes from the window just finished; it is intact until the producer itself reuses it.
          if (next === done) next.copyWithin(0, strideFrames * size, done.length);
          else next.set(done.subarray(strideFrames * size));
          window = next;
          filled = overlap * size;
          startFrame += strideFrames;
        }
      }
    } catch (error) {
      if (signal.aborted) return; // stopped: the frames' reader was closed on purpose
      stopReading();
      child.kill();
      throw error;
    }
    const result = await child;
    if (signal.aborted) return;
    if (result.signal) throw decodeError(stderr(), this.input, `was killed by ${result.signal}`, result.signal);
    if (result.exitCode === undefined) {
      // ffmpeg did not run at all (missing binary, no permission): an internal fault, not the video's.
      throw new MinerError(`ffmpeg could not be run: ${result.originalMessage ?? result.shortMessage ?? 'no exit code'}`, {
        cause: result.cause,
      });
    }
    // prlimit's own failure to start ffmpeg (126: not executable, 127: not found): an internal fault too.
    if (decodeMemoryBound().method === 'prlimit' && (result.exitCode === 126 || result.exitCode === 127)) {
      throw new MinerError(`ffmpeg could not be run under prlimit: ${stderr().trim().slice(-300)}`);
    }
    if (result.exitCode !== 0) throw decodeError(stderr(), this.input, `exited with code ${result.exitCode}`);
    const validFrames = Math.floor(filled / size);
    if (startFrame + validFrames > queuedEnd) {
      for (let f = validFrames; f < clipFrames; f++) window.copyWithin(f * size, (validFrames - 1) * size, validFrames * size);
      this.push({ startFrame, frames: window, validFrames });
    } else if (queuedEnd === 0) {
      throw new MinerError(DECODE_FAILURE.noFrames, { kind: 'undecodable-video' });
    }
  }
}

/** Decode `input` into windows (see ClipDecoder); the shorthand when no progress counters are needed. */
export function decodeClips(input: string, ffmpegPath: string, spec: DecodeSpec, options: DecodeOptions = {}): AsyncGenerator<ClipWindow> {
  return new ClipDecoder(input, ffmpegPath, spec, options).windows();
}
