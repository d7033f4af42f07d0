/**
 * A loopback HTTP server for local files: the demo, the benchmark and `tasks/challenge.ts --file` hand the
 * miner a `video_url` pointing here. Binds 127.0.0.1 on an ephemeral port.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface FileServer {
  /** URL of `file` (its base name) on this server. */
  urlFor(file: string): string;
  close(): Promise<void>;
}

/** Serves files by base name from the given list; anything else is 404. */
export async function serveFiles(files: string[]): Promise<FileServer> {
  const byName = new Map(files.map((f) => [path.basename(f), f]));
  const server = http.createServer(async (request, response) => {
    const name = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname.slice(1));
    const file = byName.get(name);
    const info = file ? await stat(file).catch(() => undefined) : undefined;
    if (!file || !info) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    response.writeHead(200, { 'content-type': 'video/mp4', 'content-length': info.size });
    createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    urlFor: (file) => `http://127.0.0.1:${port}/${encodeURIComponent(path.basename(file))}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
