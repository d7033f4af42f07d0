/** Test media made at test time with the real ffmpeg, and a loopback server with misbehaving routes. */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { resolveFfmpeg } from '../../lib/video/ffmpeg.ts';
import type { ClipWindow } from '../../lib/video/frames.ts';
import { type ClipSpec, type Marker, makeSyntheticClip } from '../../lib/video/synthetic.ts';
import { trackSockets } from './loopback.ts';

export const ffmpeg = resolveFfmpeg(process.env.FFMPEG_PATH);
export const tempDir = mkdtempSync(path.join(os.tmpdir(), 'score-miner-test-'));
process.on('exit', () => rmSync(tempDir, { recursive: true, force: true })); // the rendered clips go with the test process

export async function clip(name: string, spec: ClipSpec): Promise<string> {
  return makeSyntheticClip(ffmpeg.path, spec, path.join(tempDir, name));
}

/** A white flash at frame 75 and a black cut at 175 (25 fps): the bundled model answers goal@75, ball_out_of_play@175. */
export const FLASH_AND_CUT: Marker[] = [
  { from: 75, to: 77, colour: 'white' },
  { from: 175, to: 177, colour: 'black' },
];

/** A small 10 s clip with FLASH_AND_CUT, for tests that run the whole miner (image, deploy, spot check). */
export function flashAndCutClip(name: string): Promise<string> {
  return clip(name, { width: 320, height: 180, fps: 25, seconds: 10, markers: FLASH_AND_CUT });
}

export interface TestVideoServer {
  base: string;
  /** Number of requests per path, to assert what the miner fetched. */
  hits: Map<string, number>;
  /** Connections open right now (a client that gave up must have closed its socket). */
  openConnections(): number;
  close(): Promise<void>;
}

/**
 * Routes: /files/<name> serves a registered file (a path) or bytes (a Buffer); /redirect/<n>/<name>
 * redirects n times then serves; /slow sends headers then stalls; /huge declares a huge Content-Length;
 * /endless streams without a length until the client stops; /location?to=<url> redirects to <url> (with no
 * Location header when `to` is absent); anything else 404.
 */
export async function startVideoServer(files: Record<string, string | Buffer>): Promise<TestVideoServer> {
  const hits = new Map<string, number>();
  const server = http.createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    const parts = url.pathname.split('/').filter(Boolean);
    const serve = async (name: string) => {
      const source = files[name];
      if (source === undefined) return void response.writeHead(404).end('no such file');
      const body = typeof source === 'string' ? await readFile(source) : source;
      response.writeHead(200, { 'content-type': 'video/mp4', 'content-length': body.length }).end(body);
    };
    if (parts[0] === 'files' && parts[1]) return serve(parts[1]);
    if (parts[0] === 'redirect') {
      const left = Number(parts[1]);
      const target = left > 1 ? `/redirect/${left - 1}/${parts[2]}` : `/files/${parts[2]}`;
      return void response.writeHead(302, { location: target }).end();
    }
    if (parts[0] === 'location') {
      const to = url.searchParams.get('to');
      return void response.writeHead(302, to === null ? {} : { location: to }).end();
    }
    if (parts[0] === 'slow') {
      response.writeHead(200, { 'content-type': 'video/mp4' });
      response.write(Buffer.alloc(100));
      return; // never ends: the client's timeout must fire
    }
    if (parts[0] === 'huge') {
      response.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(10 * 1024 ** 3) });
      return void response.end();
    }
    if (parts[0] === 'endless') {
      response.writeHead(200, { 'content-type': 'video/mp4' });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = () => {
        while (!response.destroyed && response.write(chunk));
        if (!response.destroyed) response.once('drain', pump);
      };
      return pump();
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  const sockets = trackSockets(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    hits,
    openConnections: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Every real frame of every window, in frame order, as one buffer (the decode output to compare). */
export async function allFrames(windows: AsyncIterable<ClipWindow>, size: number, consume?: () => Promise<void>): Promise<Buffer> {
  const parts: Buffer[] = [];
  let covered = 0;
  for await (const w of windows) {
    const from = covered - w.startFrame; // frames of the overlap already taken from the previous window
    parts.push(Buffer.from(w.frames.subarray(from * size, w.validFrames * size)));
    covered = w.startFrame + w.validFrames;
    await consume?.();
  }
  return Buffer.concat(parts);
}
