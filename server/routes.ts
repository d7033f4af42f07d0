/**
 * The miner's HTTP surface as plain handlers: POST /challenge, GET /docs (the spot-check readiness probe),
 * GET /openapi.json, GET /health. Order on /challenge: guard (401/403) -> body validation (400)
 * -> download (502) -> admission to the inference queue (503) -> decode/inference (422/500) -> reply.
 */
import { log } from '../lib/core/log.ts';
import { type DownloadOptions, downloadVideo } from '../lib/inference/download.ts';
import type { FfmpegBinary } from '../lib/inference/ffmpeg.ts';
import { DOCS_HTML, OPENAPI } from './docs.ts';
import type { RequestGuard } from './guard.ts';
import { type Handler, type HandlerRequest, HttpError, type Reply } from './http.ts';
import type { InferencePool } from './pool.ts';

export interface ChallengeRequest {
  challenge_id: string;
  video_url: string;
}

/** Parse and validate the body; extra fields (`frames`, `image_url`, ...) are tolerated. */
export function parseChallenge(body: Buffer): ChallengeRequest {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `Invalid JSON body: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new HttpError(400, 'Body must be a JSON object');
  const fields = json as Record<string, unknown>;
  const id = fields.challenge_id;
  if (id === undefined || id === null) throw new HttpError(400, 'Missing field: challenge_id');
  if (typeof id !== 'string' && typeof id !== 'number') throw new HttpError(400, 'Field challenge_id must be a string');
  const url = fields.video_url;
  if (url === undefined || url === null) throw new HttpError(400, 'Missing field: video_url');
  if (typeof url !== 'string') throw new HttpError(400, 'Field video_url must be a string');
  if (!/^https?:\/\//i.test(url)) throw new HttpError(400, 'Field video_url must be an http(s) URL');
  return { challenge_id: String(id), video_url: url };
}

export interface RouteDeps {
  guard: RequestGuard;
  pool: InferencePool;
  download: DownloadOptions;
  ffmpeg: FfmpegBinary;
  startedAt: number;
}

const seconds = (ms: number) => Math.round(ms) / 1000;

async function challenge(request: HandlerRequest, deps: RouteDeps): Promise<Reply> {
  await deps.guard.check({ headers: request.headers, body: request.body });
  const { challenge_id, video_url } = parseChallenge(request.body);
  deps.pool.assertRoom(); // fail fast before spending a download when the queue is already full
  const video = await downloadVideo(video_url, deps.download);
  const downloadedAt = performance.now();
  try {
    const admission = deps.pool.admit();
    try {
      const { predictions, stats } = await admission.run(video.path);
      const processingTime = (performance.now() - request.receivedAt) / 1000;
      log.info('challenge answered', {
        challenge_id,
        predictions: predictions.length,
        frames: stats.frames,
        download_s: seconds(downloadedAt - request.receivedAt),
        infer_s: seconds(stats.inferMs),
        total_s: seconds(processingTime * 1000),
      });
      return { status: 200, body: { challenge_id, predictions, processing_time: processingTime } };
    } finally {
      admission.release();
    }
  } finally {
    await video.cleanup();
  }
}

function health(deps: RouteDeps): Reply {
  const { info } = deps.pool;
  return {
    status: 200,
    body: {
      status: 'ok',
      uptime_s: Math.round((performance.now() - deps.startedAt) / 1000),
      model: info.model,
      providers: info.providers,
      ffmpeg: { path: deps.ffmpeg.path, source: deps.ffmpeg.source, version: deps.ffmpeg.version },
      queue: deps.pool.depth,
      security: deps.guard.health(),
    },
  };
}

export function createRoutes(deps: RouteDeps): Handler {
  return async (request) => {
    const route = `${request.method} ${request.path}`;
    switch (route) {
      case 'POST /challenge':
        return challenge(request, deps);
      case 'GET /docs':
        return { status: 200, body: DOCS_HTML };
      case 'GET /openapi.json':
        return { status: 200, body: OPENAPI };
      case 'GET /health':
        return health(deps);
      default:
        if (['/challenge', '/docs', '/openapi.json', '/health'].includes(request.path)) {
          throw new HttpError(405, `Method ${request.method} not allowed on ${request.path}`);
        }
        throw new HttpError(404, `Not found: ${request.path}`);
    }
  };
}
