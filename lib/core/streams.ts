/** Backpressure for the writers that feed ffmpeg or a socket: wait until the stream drains, or is gone. */
import type { Writable } from 'node:stream';

/** Resolves on 'drain' or 'close' (a reader that went away must not leave the writer waiting forever). */
export function drainedOrClosed(stream: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const settle = () => {
      stream.off('drain', settle).off('close', settle);
      resolve();
    };
    stream.on('drain', settle).on('close', settle);
  });
}
