/**
 * The benchmark's loopback file server: /fast/<name> at full speed, /paced/<name> paced to a shared byte rate
 * (one link), with single-range requests (ffmpeg and the miner fetch an mp4's trailing index by range).
 *
 * It runs in its own worker thread. In the bench's thread its timers fired late whenever the bench itself was
 * busy (the miner's decode measured in-process reads 100 MB of frames there), and the paced link lost that
 * time: a real origin keeps sending while its client is busy, and the kernel buffers what the client has not
 * read yet.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { drainedOrClosed } from '../lib/core/streams.ts';

export interface ClipServer {
  url(file: string, paced: boolean): string;
  /** Bytes written so far on /paced/ (all requests, range requests included). */
  pacedBytes(): number;
  close(): Promise<void>;
}

interface ServerData {
  files: string[];
  bytesPerSecond: number;
  /** One BigInt64 on a SharedArrayBuffer: the paced bytes written, read by the bench's thread. */
  paced: SharedArrayBuffer;
}

/** Starts the server thread; resolves once it listens. */
export async function serveClips(files: string[], bytesPerSecond: number): Promise<ClipServer> {
  const paced = new SharedArrayBuffer(8);
  const worker = new Worker(new URL(import.meta.url), { workerData: { files, bytesPerSecond, paced } satisfies ServerData });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (message: { port: number }) => resolve(message.port));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the clip server thread exited (code ${code}) before listening`)));
  });
  const counter = new BigInt64Array(paced);
  return {
    url: (file, pacedUrl) => `http://127.0.0.1:${port}/${pacedUrl ? 'paced' : 'fast'}/${encodeURIComponent(path.basename(file))}`,
    pacedBytes: () => Number(Atomics.load(counter, 0)),
    close: async () => {
      await worker.terminate();
    },
  };
}

async function listen({ files, bytesPerSecond, paced }: ServerData): Promise<number> {
  const byName = new Map(files.map((f) => [path.basename(f), f]));
  const counter = new BigInt64Array(paced);
  let nextSendAt = 0; // performance.now() at which the paced link is free again
  const server = http.createServer(async (request, response) => {
    try {
      const match = /^\/(fast|paced)\/([^/]+)$/.exec(new URL(request.url ?? '/', 'http://x').pathname);
      const file = match ? byName.get(decodeURIComponent(match[2])) : undefined;
      if (!match || !file) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      const { size } = await stat(file);
      let [start, end] = [0, size - 1];
      const range = /^bytes=(\d*)-(\d*)$/.exec(request.headers.range ?? '');
      if (range && (range[1] || range[2])) {
        if (range[1]) {
          start = Number(range[1]);
          end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
        } else start = Math.max(0, size - Number(range[2])); // suffix range: the last N bytes
        if (start >= size || start > end) {
          response.writeHead(416, { 'content-range': `bytes */${size}` }).end();
          return;
        }
      }
      const headers = {
        'content-type': 'video/mp4',
        'accept-ranges': 'bytes',
        'content-length': end - start + 1,
        ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
      };
      response.writeHead(range ? 206 : 200, headers);
      if (request.method === 'HEAD') {
        response.end();
        return;
      }
      const stream = createReadStream(file, { start, end, highWaterMark: 64 * 1024 });
      if (match[1] === 'fast') {
        await pipeline(stream, response);
        return;
      }
      let closed = false;
      response.once('close', () => (closed = true));
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (closed) break;
        const sendAt = Math.max(performance.now(), nextSendAt);
        nextSendAt = sendAt + (chunk.length / bytesPerSecond) * 1000;
        const wait = sendAt - performance.now();
        if (wait > 0) await sleep(wait);
        if (closed) break;
        Atomics.add(counter, 0, BigInt(chunk.length));
        if (!response.write(chunk)) {
          await drainedOrClosed(response);
        }
      }
      stream.destroy();
      if (!closed) response.end();
    } catch {
      response.destroy(); // the client went away mid-body (ffmpeg seeking), or the file could not be read
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

if (!isMainThread && parentPort) parentPort.postMessage({ port: await listen(workerData as ServerData) });
