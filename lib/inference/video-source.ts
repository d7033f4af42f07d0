/**
 * One challenge's video as clip windows, decoded while it downloads: the download appends to a growing temp
 * file, ffmpeg reads that file through its stdin as the bytes land, and its output is cut into windows with
 * read-ahead. A file ffmpeg cannot decode from a stream (an mp4 whose index, the moov atom, comes last) fails
 * that first decode without a single frame; it is then decoded again from the completed temp file.
 *
 * Nothing outlives windows(): when it ends (done, error, break, abort) the download is stopped, ffmpeg has
 * exited and the file is closed. The caller owns the folder and removes it.
 */
import path from 'node:path';
import { MinerError } from '../core/errors.ts';
import { type DownloadOptions, fetchVideo } from './download.ts';
import { ClipDecoder, type ClipWindow, type DecodeSpec } from './frames.ts';
import { GrowingFile } from './growing-file.ts';

export interface VideoSourceOptions {
  download: DownloadOptions;
  ffmpegPath: string;
  spec: DecodeSpec;
  /** Finished windows that may wait for the model (DECODE_WINDOWS_AHEAD). */
  windowsAhead: number;
  /** Window buffers on SharedArrayBuffers (the model runs in a worker thread). */
  shared?: boolean;
  /** The challenge's folder (created and removed by the caller). */
  dir: string;
  /** The deadline: stops the download and ffmpeg; windows() then throws `signal.reason`. */
  signal: AbortSignal;
}

export type VideoStage = 'download' | 'decode';

export class VideoSource {
  private readonly url: string;
  private readonly options: VideoSourceOptions;
  private decoder: ClipDecoder | undefined;
  private file: GrowingFile | undefined;
  private downloadDone = false;
  /** 'stream' while decoding from the download, 'file' after the fallback. */
  decodedFrom: 'stream' | 'file' = 'stream';

  constructor(url: string, options: VideoSourceOptions) {
    this.url = url;
    this.options = options;
  }

  /** Bytes downloaded so far. */
  get bytes(): number {
    return this.file?.bytes ?? 0;
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
    const stopDownload = new AbortController();
    const file = await GrowingFile.create(path.join(this.options.dir, 'video'));
    this.file = file;
    let failed: { error: unknown } | undefined;
    const download = fetchVideo(
      this.url,
      this.options.download,
      (chunk) => file.append(chunk),
      AbortSignal.any([signal, stopDownload.signal]),
    )
      .then(
        () => file.finish(),
        (error) => {
          failed = { error };
          file.fail(error);
        },
      )
      .finally(() => {
        this.downloadDone = true;
      });
    /** The download's own failure (not the stop asked for here), else undefined. */
    const downloadFailure = () =>
      failed && !(stopDownload.signal.aborted && failed.error === stopDownload.signal.reason) ? failed : undefined;
    try {
      // No ffmpeg for a download that fails before its first byte (404, refused, timeout).
      await file.hasData().catch(() => {});
      signal.throwIfAborted();
      const early = downloadFailure();
      if (early) throw early.error;

      const streamed = this.decodeWith('pipe:0', file.read());
      try {
        yield* streamed.windows();
      } catch (error) {
        signal.throwIfAborted();
        await download; // a failed download explains a failed decode better than ffmpeg does
        const cause = downloadFailure();
        if (cause) throw cause.error;
        const unstreamable = error instanceof MinerError && error.kind === 'undecodable-video' && streamed.framesDecoded === 0;
        if (!unstreamable) throw error;
        this.decodedFrom = 'file';
        yield* this.decodeWith(file.path).windows();
        return;
      }
      // ffmpeg read to the end of the stream, or stopped early at maxSeconds (the rest is not needed).
      const cause = downloadFailure();
      if (cause) throw cause.error;
    } finally {
      stopDownload.abort(new Error('decoding ended'));
      await download;
      await file.close();
    }
  }

  private decodeWith(input: string, stdin?: AsyncIterable<Uint8Array>): ClipDecoder {
    const { ffmpegPath, spec, windowsAhead, shared, signal } = this.options;
    this.decoder = new ClipDecoder(input, ffmpegPath, spec, { stdin, windowsAhead, shared, signal });
    return this.decoder;
  }
}
