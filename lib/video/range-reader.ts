/**
 * Decoding an mp4 whose index (the moov atom) comes after its media data while it downloads.
 *
 * No reader can decode such a file from a stream: the index is needed first. When the origin answers Range
 * requests (`Accept-Ranges: bytes` and a Content-Length on the first answer), the file's tail (everything after
 * the top-level mdat box, found by walking the top-level boxes of the first bytes) is fetched by a second,
 * ranged request into its place in the (then sparse) temp file, while the first request goes on from the front
 * and stops where the tail begins: every byte is fetched once, under the same download rules (address policy
 * at every hop, redirect limit, timeout, abort, and no more than the declared length in all).
 *
 * ffmpeg reads the file through a per-challenge HTTP server on 127.0.0.1 (an ephemeral port and a random path)
 * that answers its Range requests from the temp file, waiting for bytes that have not landed yet. The server
 * never fetches anything itself: ffmpeg only ever reaches this server, never the origin.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { log } from '../core/log.ts';
import { drainedOrClosed } from '../core/streams.ts';
import type { GrowingFile } from './growing-file.ts';

/** Where the top-level boxes say the index is. */
export type Mp4Layout =
  /** Not decided yet: more of the head is needed. */
  | { kind: 'need-more'; bytes: number }
  /** Decodable from a stream (index first, fragmented), or not an mp4 this reader handles: today's path. */
  | { kind: 'stream' }
  /** The index comes after the media data: fetch [tailStart, total) apart. */
  | { kind: 'index-at-end'; tailStart: number };

/** The head is walked no further than this (boxes before mdat are small: ftyp, free, wide). */
export const PROBE_LIMIT = 1024 * 1024;

/**
 * Walks the top-level boxes (`size` `type`, a 64-bit size when size is 1, "to the end" when 0) of `head`, the
 * first bytes of a file of `total` bytes. Anything unexpected (not starting with ftyp, a box past the end, an
 * odd type) is 'stream': the caller keeps today's behaviour.
 */
export function mp4Layout(head: Uint8Array, total: number): Mp4Layout {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let offset = 0;
  while (offset < total) {
    if (offset + 16 > PROBE_LIMIT) return { kind: 'stream' };
    if (offset + 16 > head.byteLength && offset + 16 <= total) return { kind: 'need-more', bytes: offset + 16 };
    if (offset + 8 > head.byteLength) return { kind: 'stream' };
    let size = view.getUint32(offset);
    const type = String.fromCharCode(...head.subarray(offset + 4, offset + 8));
    let header = 8;
    if (size === 1) {
      size = Number(view.getBigUint64(offset + 8));
      header = 16;
    } else if (size === 0) {
      size = total - offset;
    }
    if (!/^[a-z0-9 ]{4}$/i.test(type) || size < header || offset + size > total) return { kind: 'stream' };
    if (offset === 0 && type !== 'ftyp') return { kind: 'stream' };
    if (type === 'moov' || type === 'moof') return { kind: 'stream' };
    if (type === 'mdat') {
      const tailStart = offset + size;
      // Nothing after the media data (no index: undecodable anyway), or a tail too big to be worth it.
      if (tailStart >= total || total - tailStart > total / 2) return { kind: 'stream' };
      return { kind: 'index-at-end', tailStart };
    }
    offset += size;
  }
  return { kind: 'stream' };
}

const READ_CHUNK = 256 * 1024;

/**
 * The temp file as two regions: the front, [0, tailStart), appended by the first request (the GrowingFile,
 * finished when it reaches tailStart), and the tail, [tailStart, total), appended by the ranged request.
 */
export class SplitFile {
  readonly file: GrowingFile;
  readonly tailStart: number;
  readonly total: number;
  private tailBytes = 0;
  private tailState: 'open' | 'complete' | 'failed' = 'open';
  private tailFailure: unknown;
  private waiters: Array<() => void> = [];

  constructor(file: GrowingFile, tailStart: number, total: number) {
    this.file = file;
    this.tailStart = tailStart;
    this.total = total;
  }

  /** Tail bytes written so far. */
  get tailWritten(): number {
    return this.tailBytes;
  }

  async appendTail(chunk: Uint8Array): Promise<void> {
    await this.file.writeAt(chunk, this.tailStart + this.tailBytes);
    this.tailBytes += chunk.byteLength;
    this.wake();
  }

  finishTail(): void {
    if (this.tailState === 'open') this.tailState = 'complete';
    this.wake();
  }

  failTail(error: unknown): void {
    if (this.tailState !== 'open') return;
    this.tailState = 'failed';
    this.tailFailure = error;
    this.wake();
  }

  /** Bytes [start, end), waiting for those not written yet; throws when their writer ended without them. */
  async *read(start: number, end: number): AsyncGenerator<Buffer> {
    let position = start;
    while (position < end) {
      let limit: number;
      if (position < this.tailStart) {
        if (!(await this.file.reach(position))) throw new Error('the download ended before this byte');
        limit = Math.min(this.file.bytes, this.tailStart);
      } else {
        while (this.tailStart + this.tailBytes <= position && this.tailState === 'open') await this.changed();
        if (this.tailStart + this.tailBytes <= position) throw this.tailFailure ?? new Error('the tail ended before this byte');
        limit = this.tailStart + this.tailBytes;
      }
      const chunk = await this.file.readAt(position, Math.min(READ_CHUNK, Math.min(limit, end) - position));
      if (chunk.byteLength === 0) throw new Error('the temp file is shorter than written');
      position += chunk.byteLength;
      yield chunk;
    }
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}

export interface LoopbackServer {
  /** http://127.0.0.1:<port>/<random>: the only URL ffmpeg is given. */
  url: string;
  /** Requests answered so far (ffmpeg's seeks are new requests). */
  readonly requests: number;
  /** The node:http server itself (tests raise an error on it). */
  readonly server: http.Server;
  /** Stops listening and destroys every connection; resolves once the server is closed (again: at once). */
  close(): Promise<void>;
}

/**
 * Serves `split` on 127.0.0.1 with single Range requests (`bytes=a-b`, `bytes=a-`), for ffmpeg only. An error
 * on the server after it listens (a failed accept: out of file descriptors) would be an uncaught 'error' event
 * and take the whole miner down: it is logged, the server is closed and `onError` fails that one challenge.
 */
export async function serveLoopback(split: SplitFile, onError: (error: Error) => void): Promise<LoopbackServer> {
  const route = `/${randomBytes(12).toString('hex')}`;
  const sockets = new Set<Socket>();
  let requests = 0;
  const server = http.createServer((request, response) => {
    requests++;
    if (request.url !== route) return void response.writeHead(404).end();
    if (request.method !== 'GET' && request.method !== 'HEAD') return void response.writeHead(405).end();
    const { total } = split;
    let start = 0;
    let end = total - 1;
    const asked = request.headers.range;
    if (asked !== undefined) {
      const match = /^bytes=(\d+)-(\d*)$/.exec(asked.trim());
      if (match) {
        start = Number(match[1]);
        if (match[2]) end = Math.min(Number(match[2]), total - 1);
      }
      if (!match || start >= total || end < start) {
        return void response.writeHead(416, { 'content-range': `bytes */${total}` }).end();
      }
    }
    response.writeHead(asked === undefined ? 200 : 206, {
      'content-type': 'video/mp4',
      'accept-ranges': 'bytes',
      'content-length': end - start + 1,
      ...(asked === undefined ? {} : { 'content-range': `bytes ${start}-${end}/${total}` }),
    });
    if (request.method === 'HEAD') return void response.end();
    void pump(split.read(start, end + 1), response);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  let listening = false;
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
    return closed;
  };
  server.on('error', (error: Error) => {
    if (!listening) return; // listen() failing is the caller's error (below)
    log.warn('the local range server failed', { error: error.message });
    void close();
    onError(error);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      listening = true;
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${route}`,
    get requests() {
      return requests;
    },
    server,
    close,
  };
}

/** Copies `source` into `response` with backpressure; a failed source (or a gone client) destroys the response. */
async function pump(source: AsyncGenerator<Buffer>, response: http.ServerResponse): Promise<void> {
  try {
    for await (const chunk of source) {
      if (response.destroyed) break;
      if (!response.write(chunk)) {
        await drainedOrClosed(response);
      }
    }
    if (!response.destroyed) response.end();
  } catch {
    response.destroy();
  }
}
