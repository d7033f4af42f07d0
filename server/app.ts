/**
 * Assemble the miner: ffmpeg resolved, model loaded and warmed in the worker pool, guard ready — all
 * before the port opens — then listen. Used by server/main.ts and by tests (port 0, their own guard).
 */
import type { AddressInfo } from 'node:net';
import type { MinerConfig } from '../lib/core/config.ts';
import { log } from '../lib/core/log.ts';
import { resolveFfmpeg } from '../lib/inference/ffmpeg.ts';
import { openGuard, type RequestGuard } from './guard.ts';
import { createHttpServer } from './http.ts';
import { InferencePool } from './pool.ts';
import { createRoutes } from './routes.ts';

export interface RunningMiner {
  url: string;
  port: number;
  pool: InferencePool;
  close(): Promise<void>;
}

export async function startMiner(config: MinerConfig, guard: RequestGuard = openGuard): Promise<RunningMiner> {
  const startedAt = performance.now();
  const ffmpeg = resolveFfmpeg(config.video.ffmpegPath);
  log.info('ffmpeg', { path: ffmpeg.path, source: ffmpeg.source, version: ffmpeg.version });
  const pool = await InferencePool.start({
    modelDir: config.model.dir,
    providers: config.model.providers,
    threads: config.model.threads,
    ffmpegPath: ffmpeg.path,
    concurrency: config.server.concurrency,
    queueMax: config.server.queueMax,
  });
  log.info('model ready', {
    name: pool.info.model.name,
    version: pool.info.model.version,
    providers: pool.info.providers.join(','),
    warmup_ms: pool.info.warmupMs,
  });

  const handler = createRoutes({
    guard,
    pool,
    download: {
      timeoutMs: config.video.downloadTimeoutMs,
      maxBytes: config.video.downloadMaxBytes,
      maxRedirects: config.video.maxRedirects,
    },
    ffmpeg,
    startedAt,
  });
  const server = createHttpServer(handler, { bodyMaxBytes: config.server.bodyMaxBytes });
  // The validator's whole budget is 30 s; never let a slow client hold a socket for minutes.
  server.requestTimeout = 60_000;
  server.headersTimeout = 20_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => resolve());
  }).catch(async (error) => {
    await pool.close();
    throw error;
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.server.host === '0.0.0.0' ? '127.0.0.1' : config.server.host;
  return {
    url: `http://${host}:${port}`,
    port,
    pool,
    async close() {
      guard.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await pool.close();
    },
  };
}
