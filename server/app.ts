/**
 * Assemble the miner: ffmpeg resolved, model loaded and warmed in the worker pool, guard ready — all
 * before the port opens — then listen. Used by server/main.ts and by tests (port 0, their own guard).
 */
import type { AddressInfo } from 'node:net';
import type { MinerConfig } from '../lib/core/config.ts';
import { log } from '../lib/core/log.ts';
import { glibcVersion, hugePagesStatus, releaseStartupMemory, transparentHugePages } from '../lib/core/memory.ts';
import { declareHostAddresses } from '../lib/video/address-policy.ts';
import { resolveFfmpeg } from '../lib/video/ffmpeg.ts';
import { decodeMemoryBound } from '../lib/video/frames.ts';
import { MAX_PIXELS } from '../lib/video/media-policy.ts';
import { openGuard, type RequestGuard } from './guard.ts';
import { createHttpServer } from './http.ts';
import { InferencePool } from './pool.ts';
import { SharedAnswers } from './replays.ts';
import { createRoutes } from './routes.ts';

export interface RunningMiner {
  url: string;
  port: number;
  pool: InferencePool;
  /** Identical challenges' shared runs (server/replays.ts): what was run once and what was shared. */
  answers: SharedAnswers;
  close(): Promise<void>;
}

export async function startMiner(config: MinerConfig, guard: RequestGuard = openGuard): Promise<RunningMiner> {
  const startedAt = performance.now();
  // A video_url naming the miner's own public address (behind NAT: the router's) is refused as same-host.
  declareHostAddresses([config.axon.ip]);
  releaseStartupMemory(); // before the workers load the model: the process's peak memory is then the model's, not start-up's
  const ffmpeg = resolveFfmpeg(config.video.ffmpegPath);
  log.info('ffmpeg', {
    path: ffmpeg.path,
    source: ffmpeg.source,
    release: ffmpeg.release ?? 'unknown',
    version: ffmpeg.version,
    passed_over: ffmpeg.passedOver.length > 0 ? ffmpeg.passedOver.join('; ') : undefined,
  });
  // A validator-facing miner decodes whatever URL a challenge names: the 2018 build's parsers are its attack surface.
  if (ffmpeg.outdated && (config.security.verifyEnabled || config.security.blacklistEnabled)) {
    log.warn('ffmpeg is the bundled 2018 build, without years of security fixes', {
      path: ffmpeg.path,
      hint: 'install ffmpeg 5.1 or newer (apt-get install ffmpeg) or set FFMPEG_PATH, then restart',
    });
  }
  const bound = decodeMemoryBound();
  if (bound.method === 'prlimit')
    log.info('ffmpeg limits', { address_space_mb: bound.bytes / 1024 ** 2, max_pixels: MAX_PIXELS, via: bound.prlimit });
  else {
    log.warn('ffmpeg runs without an address-space limit (no prlimit on this host)', {
      max_pixels: MAX_PIXELS,
      hint: 'install util-linux (apt-get install util-linux), which provides prlimit, then restart',
    });
  }
  if (process.platform === 'linux') log.info('memory', hugePagesStatus(process.env.GLIBC_TUNABLES, transparentHugePages(), glibcVersion()));
  const pool = await InferencePool.start({
    model: config.model,
    ffmpegPath: ffmpeg.path,
    concurrency: config.server.concurrency,
    queueMax: config.server.queueMax,
    download: {
      timeoutMs: config.video.downloadTimeoutMs,
      maxBytes: config.video.downloadMaxBytes,
      maxRedirects: config.video.maxRedirects,
      allowPrivate: config.video.allowPrivateAddresses,
    },
    maxVideoSeconds: config.video.maxVideoSeconds,
    windowsAhead: config.video.windowsAhead,
  });
  log.info('model ready', {
    name: pool.info.model.name,
    version: pool.info.model.version,
    providers: pool.info.providers.join(','),
    warmup_ms: pool.info.warmupMs,
  });

  const answers = new SharedAnswers();
  const handler = createRoutes({
    guard,
    pool,
    ffmpeg,
    startedAt,
    challengeDeadlineMs: config.server.challengeDeadlineMs,
    allowPrivateAddresses: config.video.allowPrivateAddresses,
    health: config.server.health,
    answers,
  });
  // The validator's whole budget is 30 s: a client slower than HEADERS_TIMEOUT_S / REQUEST_TIMEOUT_S gets a 408.
  const front = createHttpServer(handler, {
    bodyMaxBytes: config.server.bodyMaxBytes,
    headersTimeoutMs: config.server.headersTimeoutMs,
    requestTimeoutMs: config.server.requestTimeoutMs,
    limits: {
      connectionsPerAddress: config.server.connectionsPerAddress,
      requestsPerSecond: config.server.requestsPerSecond,
      requestBurst: config.server.requestBurst,
    },
  });
  const server = front.server;
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
    answers,
    async close() {
      // Idle and half-received connections go at once; a running challenge answers by its deadline (counted
      // from receipt, partial predictions past it), so that plus a little for the reply bounds the wait.
      const report = await front.shutdown({ handlerBudgetMs: config.server.challengeDeadlineMs + 2000 });
      log.info('http server closed', {
        connections_closed: report.closedAtOnce,
        in_flight: report.inFlight,
        answered: report.answered,
        abandoned: report.abandoned,
        ms: report.ms,
      });
      if (report.abandoned > 0) log.warn(`${report.abandoned} request(s) still running at the shutdown bound were cut off`);
      guard.close();
      await pool.close();
    },
  };
}
