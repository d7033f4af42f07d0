/**
 * ffmpeg's raw frames into this process without a new Buffer per read. Through a pipe, Node allocates a fresh
 * 64 KB Buffer for every read: a 30 s clip at the model's size is about 100 MB of frames, so 1,600 short-lived
 * external buffers per challenge, and the garbage collector ran several full collections on the HTTP thread
 * for each (measured: about 0.2 s of CPU per challenge on 2 cores, time the model and ffmpeg need).
 *
 * Here ffmpeg's stdout is one end of a connected Unix socket; this process reads the other end with net's
 * `onread` into one reused buffer, and pauses the socket until each chunk is consumed (backpressure: ffmpeg
 * blocks on the full socket, as it did on the full pipe). The socket is made in a private temp folder
 * (createJobDir: mode 0700, so only this user can connect; swept if left behind), which is removed as soon as
 * the two ends are connected. Where that cannot be done (no writable temp folder, a path too long for a
 * socket), openFrameChannel answers undefined and the caller reads a plain pipe.
 */
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { log } from '../core/log.ts';
import { createJobDir, removeJobDir } from './tempdir.ts';

/** Bytes read at most per chunk; a socket hands over what it holds (about 200 KB by default on Linux). */
const CHUNK_BYTES = 1 << 20;
/** sockaddr_un's path limit is 108 bytes on Linux and 104 on macOS, the terminating NUL included. */
const MAX_SOCKET_PATH = 100;
/** A local connection takes microseconds; past this something is wrong here and the pipe is used instead. */
const CONNECT_TIMEOUT_MS = 2000;

export interface FrameChannel {
  /** ffmpeg's stdout (spawn's stdio[1]); call closeChildEnd() once ffmpeg has been spawned. */
  readonly childEnd: net.Socket;
  /** Closes this process's copy of ffmpeg's end, so the reader sees the end when ffmpeg exits. */
  closeChildEnd(): void;
  /**
   * What ffmpeg writes, as views into one reused buffer: a view is valid until the next one is asked for.
   * Ends when ffmpeg closes its stdout; throws if the socket fails.
   */
  chunks(): AsyncGenerator<Uint8Array>;
  /** Stops reading (ffmpeg's next write fails, as on a closed pipe) and releases the sockets. Idempotent. */
  close(): void;
}

/** A connected pair of Unix sockets for ffmpeg's frames, or undefined where one cannot be made here. */
export async function openFrameChannel(): Promise<FrameChannel | undefined> {
  let dir: string | undefined;
  let server: net.Server | undefined;
  let reader: net.Socket | undefined;
  const scratch = new Uint8Array(CHUNK_BYTES);
  let pending: Uint8Array | undefined;
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  try {
    dir = await createJobDir();
    const socketPath = path.join(dir, 'frames.sock');
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) throw new Error(`the socket path would be ${Buffer.byteLength(socketPath)} bytes`);
    const bounded = { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) };
    const listener = net.createServer({ pauseOnConnect: true });
    server = listener;
    listener.listen(socketPath);
    await once(listener, 'listening', bounded);
    const accepted = once(listener, 'connection', bounded) as Promise<[net.Socket]>;
    const client = net.connect({
      path: socketPath,
      onread: {
        buffer: scratch,
        callback: (bytes: number) => {
          pending = scratch.subarray(0, bytes);
          notify();
          return false; // paused until chunks() has handed this view on: the next read would overwrite it
        },
      },
    });
    reader = client;
    const finish = (error?: Error) => {
      ended = true;
      failure ??= error;
      notify();
    };
    client.on('end', () => finish());
    client.on('close', () => finish());
    client.on('error', (error) => finish(error));
    const [[childEnd]] = await Promise.all([accepted, once(client, 'connect', bounded)]);
    listener.close(); // one connection only; closing unlinks the socket path
    await removeJobDir(dir);
    dir = undefined;
    let closed = false;
    return {
      childEnd,
      closeChildEnd: () => childEnd.destroy(),
      async *chunks() {
        for (;;) {
          if (pending) {
            const view = pending;
            pending = undefined;
            yield view;
            if (!closed) client.resume();
            continue;
          }
          if (ended) {
            if (failure && !closed) throw failure;
            return;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      },
      close: () => {
        if (closed) return;
        closed = true;
        childEnd.destroy();
        client.destroy();
        notify();
      },
    };
  } catch (error) {
    reader?.destroy();
    server?.close();
    if (dir) await removeJobDir(dir).catch(() => {});
    log.debug('frames through a pipe: no socket for them here', { reason: (error as Error).message });
    return undefined;
  }
}
