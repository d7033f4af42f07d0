/**
 * One challenge's video as clip windows, decoded while it downloads: the download appends to a growing temp
 * file, ffmpeg reads that file through its stdin as the bytes land, and its output is cut into windows with
 * read-ahead. An mp4 whose index (the moov atom) comes last cannot be decoded from a stream: when the origin
 * answers Range requests, its tail is fetched apart and ffmpeg reads the file through a loopback range server
 * while the front still downloads (lib/video/range-reader.ts, decodedFrom 'range'). Otherwise (no ranges,
 * or anything unexpected) that first decode fails without a single frame and the file is decoded again once
 * the download is complete (decodedFrom 'file').
 *
 * Nothing outlives windows(): when it ends (done, error, break, abort) the download is stopped, ffmpeg has
 * exited and the file is closed. The caller owns the folder and removes it.
 */
import path from 'node:path';
import { MinerError } from '../core/errors.ts';
import { type DownloadOptions, fetchVideo, fetchVideoRange, type VideoResponseInfo } from './download.ts';
import { ClipDecoder, type ClipWindow, type DecodeSpec, type WindowBuffers } from './frames.ts';
import { GrowingFile } from './growing-file.ts';
import { refusedContainerMessage, SNIFF_BYTES, sniffContainer } from './media-policy.ts';
import { type LoopbackServer, mp4Layout, PROBE_LIMIT, SplitFile, serveLoopback } from './range-reader.ts';

export interface VideoSourceOptions {
  download: DownloadOptions;
  ffmpegPath: string;
  spec: DecodeSpec;
  /** Finished windows that may wait for the model (DECODE_WINDOWS_AHEAD). */
  windowsAhead: number;
  /** Where the decoders' window buffers come from (shared ones when the model runs in a worker thread). */
  buffers?: WindowBuffers;
  /** The challenge's folder (created and removed by the caller). */
  dir: string;
  /** The deadline: stops the download and ffmpeg; windows() then throws `signal.reason`. */
  signal: AbortSignal;
}

export type VideoStage = 'download' | 'decode';

/** Where the windows came from: the stream (stdin), the loopback range server, or the completed file. */
export type DecodedFrom = 'stream' | 'range' | 'file';

/** Why the first request stopped on purpose (the tail beyond it comes by the ranged request). */
const FRONT_DONE = new Error('the front reached the tail');

export class VideoSource {
  private readonly url: string;
  private readonly options: VideoSourceOptions;
  private decoder: ClipDecoder | undefined;
  private file: GrowingFile | undefined;
  private split: SplitFile | undefined;
  private downloadDone = false;
  private fetched = 0;
  /** 'stream' while decoding from the download, 'range' from the loopback range server, 'file' after the fallback. */
  decodedFrom: DecodedFrom = 'stream';
  /** The loopback URL ffmpeg read (range decode only), for tests. */
  localUrl: string | undefined;
  /** Aborted when the loopback range server fails: stops that decode with the server's error. */
  private readonly serverFailed = new AbortController();

  constructor(url: string, options: VideoSourceOptions) {
    this.url = url;
    this.options = options;
  }

  /** Bytes downloaded so far (in the temp file). */
  get bytes(): number {
    return (this.file?.bytes ?? 0) + (this.split?.tailWritten ?? 0);
  }

  /** Bytes received from the origin, all requests together (a few past the front's end included). */
  get bytesFetched(): number {
    return this.fetched;
  }

  /** Frames ffmpeg produced so far (model rate). */
  get framesDecoded(): number {
    return this.decoder?.framesDecoded ?? 0;
  }

  /** Where the work is: still downloading, or only decoding. */
  get stage(): VideoStage {
    return this.downloadDone ? 'decode' : 'download';
  }

  async *windows(): AsyncGenerator<ClipWindow> {
    const { signal } = this.options;
    const deadlineAt = performance.now() + this.options.download.timeoutMs;
    const stopDownload = new AbortController();
    const stopFront = new AbortController();
    const stopTail = new AbortController();
    const file = await GrowingFile.create(path.join(this.options.dir, 'video'));
    this.file = file;
    let failed: { error: unknown } | undefined;
    let info: VideoResponseInfo | undefined;
    /** The front stops here once the tail is coming (Infinity: the whole file from the front). */
    let cut = Number.POSITIVE_INFINITY;
    let queued = 0; // bytes handed to the front's sink so far
    let frontSettled = false;
    let tailSettled = true;
    let frontChanged: () => void = () => {};
    const front = fetchVideo(
      this.url,
      this.options.download,
      async (chunk) => {
        this.fetched += chunk.byteLength;
        const room = cut - queued;
        queued += chunk.byteLength;
        frontChanged();
        if (chunk.byteLength < room) return file.append(chunk);
        await file.append(chunk.subarray(0, room));
        stopFront.abort(FRONT_DONE);
      },
      AbortSignal.any([signal, stopDownload.signal, stopFront.signal]),
      (response) => {
        info = response;
      },
    )
      .then(
        () => file.finish(),
        (error) => {
          if (error === FRONT_DONE) return file.finish();
          failed ??= { error };
          file.fail(error);
        },
      )
      .finally(() => {
        frontSettled = true;
        this.downloadDone = tailSettled;
        frontChanged();
      });
    let tail: Promise<void> = Promise.resolve();
    let download: Promise<unknown> = front;
    /** The download's own failure (not a stop asked for here), else undefined. */
    const downloadFailure = () =>
      failed && !(stopDownload.signal.aborted && failed.error === stopDownload.signal.reason) ? failed : undefined;
    let server: LoopbackServer | undefined;
    try {
      // No ffmpeg for a download that fails before its first byte (404, refused, timeout).
      await file.hasData().catch(() => {});
      signal.throwIfAborted();
      const early = downloadFailure();
      if (early) throw early.error;
      // The container is named before ffmpeg starts: anything but MP4/MOV is refused, nothing decoded or opened.
      await file.reach(SNIFF_BYTES - 1);
      signal.throwIfAborted();
      const unfinished = downloadFailure();
      if (unfinished && file.bytes < SNIFF_BYTES) throw unfinished.error;
      const verdict = sniffContainer(await file.readAt(0, SNIFF_BYTES));
      if (!verdict.accepted) throw new MinerError(refusedContainerMessage(verdict.name), { kind: 'undecodable-video' });

      const split = await this.tryRange(file, info, () => queued);
      if (split) {
        const started = this.startTail(split, stopTail.signal, stopDownload.signal, deadlineAt, (error) => {
          failed ??= { error };
        });
        tailSettled = false;
        tail = started.done.finally(() => {
          tailSettled = true;
          this.downloadDone = frontSettled;
        });
        download = Promise.all([front, tail]);
        // The front goes on meanwhile: if it gets to the tail first (or ends), the range is not worth it.
        const frontThere = new Promise<boolean>((resolve) => {
          frontChanged = () => {
            if (queued >= split.tailStart || frontSettled) resolve(false);
          };
          frontChanged();
        });
        // Decided with the tail's first byte: from then on the front stops where the tail starts.
        if ((await Promise.race([started.confirmed, frontThere])) && queued < split.tailStart) {
          cut = split.tailStart;
        } else {
          this.split = undefined;
          stopTail.abort(new Error('no range decode'));
          await tail;
        }
        frontChanged = () => {};
      }
      signal.throwIfAborted();
      if (this.split) {
        server = await serveLoopback(this.split, (error) => {
          // The range server failed (it is closed already): this challenge fails, the miner goes on.
          this.serverFailed.abort(new MinerError(`the local range server failed: ${error.message}`));
        });
        this.localUrl = server.url;
        this.decodedFrom = 'range';
        yield* this.decodeFallingBack(this.decodeWith(server.url), file, download, downloadFailure);
      } else {
        yield* this.decodeFallingBack(this.decodeWith('pipe:0', file.read()), file, download, downloadFailure);
      }
    } finally {
      stopDownload.abort(new Error('decoding ended'));
      stopTail.abort(new Error('decoding ended'));
      await download;
      await tail;
      await server?.close();
      this.split?.failTail(new Error('closed'));
      await file.close();
    }
  }

  /** Decodes with `first`; an input it cannot decode from the start (no frame at all) is decoded again from the completed file. */
  private async *decodeFallingBack(
    first: ClipDecoder,
    file: GrowingFile,
    download: Promise<unknown>,
    downloadFailure: () => { error: unknown } | undefined,
  ): AsyncGenerator<ClipWindow> {
    const { signal } = this.options;
    try {
      yield* first.windows();
    } catch (error) {
      signal.throwIfAborted();
      await download; // a failed download explains a failed decode better than ffmpeg does
      const cause = downloadFailure();
      if (cause) throw cause.error;
      const unstreamable = error instanceof MinerError && error.kind === 'undecodable-video' && first.framesDecoded === 0;
      if (!unstreamable) throw error;
      this.decodedFrom = 'file';
      yield* this.decodeWith(file.path).windows();
      return;
    }
    // ffmpeg read to the end of the stream, or stopped early at maxSeconds (the rest is not needed).
    const cause = downloadFailure();
    if (cause) throw cause.error;
  }

  /**
   * An mp4 with its index at the end, from an origin that answers Range requests and declared its length: the
   * split temp file (the tail not fetched yet), else undefined (today's path). Reads the head as it lands.
   */
  private async tryRange(file: GrowingFile, info: VideoResponseInfo | undefined, queued: () => number): Promise<SplitFile | undefined> {
    const total = info?.length;
    if (!info?.acceptsRanges || total === undefined || total === 0) return undefined;
    for (;;) {
      const head = await file.readAt(0, Math.min(file.bytes, PROBE_LIMIT));
      const layout = mp4Layout(head, total);
      if (layout.kind === 'stream') return undefined;
      if (layout.kind === 'index-at-end') return queued() < layout.tailStart ? new SplitFile(file, layout.tailStart, total) : undefined;
      if (layout.bytes <= head.byteLength || !(await file.reach(layout.bytes - 1))) return undefined;
    }
  }

  /**
   * Starts the ranged request for the tail. `confirmed` resolves true with its first byte (a 206 with the exact
   * Content-Range), false when it failed before; `done` when it ended (a failure after the first byte goes to `onFailure`).
   */
  private startTail(
    split: SplitFile,
    stop: AbortSignal,
    stopAll: AbortSignal,
    deadlineAt: number,
    onFailure: (error: unknown) => void,
  ): { confirmed: Promise<boolean>; done: Promise<void> } {
    this.split = split;
    let confirm: (ok: boolean) => void = () => {};
    let started = false;
    const confirmed = new Promise<boolean>((resolve) => {
      confirm = resolve;
    });
    const range = { start: split.tailStart, end: split.total - 1, total: split.total };
    const done = fetchVideoRange(
      this.url,
      this.options.download,
      range,
      async (chunk) => {
        this.fetched += chunk.byteLength;
        started = true;
        confirm(true);
        if (stop.aborted) return;
        await split.appendTail(chunk);
      },
      AbortSignal.any([this.options.signal, stop, stopAll]),
      deadlineAt,
    ).then(
      () => {
        confirm(true);
        split.finishTail();
      },
      (error) => {
        confirm(false);
        split.failTail(error);
        // Before its first byte a failed tail only means no range decode; after it, the download failed.
        if (started && this.split === split && !stop.aborted && !stopAll.aborted) onFailure(error);
      },
    );
    return { confirmed, done };
  }

  private decodeWith(input: string, stdin?: AsyncIterable<Uint8Array>): ClipDecoder {
    const { ffmpegPath, spec, windowsAhead, buffers } = this.options;
    const signal = AbortSignal.any([this.options.signal, this.serverFailed.signal]);
    this.decoder = new ClipDecoder(input, ffmpegPath, spec, { stdin, windowsAhead, buffers, signal });
    return this.decoder;
  }
}
