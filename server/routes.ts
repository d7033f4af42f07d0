/**
 * The miner's HTTP surface as plain handlers: POST /challenge, GET /docs (the spot-check readiness probe),
 * GET /openapi.json, GET /health (liveness for everyone; the details for loopback and HEALTH_TOKEN callers,
 * server/health.ts). Order on /challenge: guard (401/403) -> body validation (400) -> admission at receipt
 * (503 at once when full) -> download, decoded as it arrives, and inference on the slot (502/422/500) -> reply;
 * from receipt, CHALLENGE_DEADLINE_S ends the work and the reply holds what was done.
 */
import { clip, log } from '../lib/core/log.ts';
import { bodyDigests } from '../lib/protocol/signature.ts';
import { checkVideoUrl } from '../lib/video/download.ts';
import type { FfmpegBinary } from '../lib/video/ffmpeg.ts';
import { DOCS_HTML, OPENAPI } from './docs.ts';
import type { RequestGuard } from './guard.ts';
import { type HealthAccess, showsHealthDetails } from './health.ts';
import { errorReply, type Handler, type HandlerRequest, HttpError, type Reply } from './http.ts';
import type { InferencePool } from './pool.ts';
import { answerKey, type Computed, mayKeep, type SharedAnswers } from './replays.ts';

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
  // Echoed back as received: a number would come back reformatted (1.2345678901234568e+22), not the same id.
  if (typeof id !== 'string') throw new HttpError(400, 'Field challenge_id must be a string');
  const url = fields.video_url;
  if (url === undefined || url === null) throw new HttpError(400, 'Missing field: video_url');
  if (typeof url !== 'string') throw new HttpError(400, 'Field video_url must be a string');
  if (!/^https?:\/\//i.test(url)) throw new HttpError(400, 'Field video_url must be an http(s) URL');
  return { challenge_id: id, video_url: url };
}

export interface RouteDeps {
  guard: RequestGuard;
  pool: InferencePool;
  ffmpeg: FfmpegBinary;
  startedAt: number;
  /** CHALLENGE_DEADLINE_S, from receipt. */
  challengeDeadlineMs: number;
  /** DOWNLOAD_ALLOW_PRIVATE: literal private addresses in video_url are refused before admission unless set. */
  allowPrivateAddresses: boolean;
  /** Identical challenges share one run (server/replays.ts). */
  answers: SharedAnswers;
  /** Who sees /health's details (HEALTH_TRUST_LOOPBACK, HEALTH_TOKEN). */
  health: HealthAccess;
}

const seconds = (ms: number) => Math.round(ms) / 1000;

async function challenge(request: HandlerRequest, deps: RouteDeps): Promise<Reply> {
  const digests = bodyDigests(request.body); // hashed when first asked for, by the guard or the replay key
  await deps.guard.check({ headers: request.headers, body: request.body, digests });
  const { challenge_id, video_url } = parseChallenge(request.body);
  checkVideoUrl(video_url, deps.allowPrivateAddresses); // a URL that can never be fetched takes no place
  // The same body (a replay, signed afresh or forwarded by another miner) runs once: server/replays.ts.
  const { reply, source } = await deps.answers.answer(answerKey(digests), () => run(request, deps, challenge_id, video_url));
  if (source !== 'run')
    log.info('challenge answered with the answer of an identical one', {
      challenge_id: clip(challenge_id),
      status: reply.status,
      from: source,
    });
  return reply;
}

/** Admission and the work, as a reply (a failure too: logged once here, then shared with identical bodies). */
async function run(request: HandlerRequest, deps: RouteDeps, challenge_id: string, video_url: string): Promise<Computed> {
  try {
    const { predictions, stats, cut } = await deps.pool.submit({
      videoUrl: video_url,
      deadlineAt: request.receivedAt + deps.challengeDeadlineMs,
    });
    const processingTime = (performance.now() - request.receivedAt) / 1000;
    const fields = {
      challenge_id: clip(challenge_id), // the caller's string: cut short in the log
      predictions: predictions.length,
      bytes: stats.bytes,
      frames_decoded: stats.framesDecoded,
      frames_inferred: stats.framesInferred,
      windows: stats.windows,
      decoded_from: stats.decodedFrom,
      infer_s: seconds(stats.inferMs),
      total_s: seconds(processingTime * 1000),
    };
    if (cut) log.warn('challenge answered with part of the video', { ...fields, stage: cut.stage, reason: cut.reason });
    else log.info('challenge answered', fields);
    return {
      reply: { status: 200, body: { challenge_id, predictions, processing_time: processingTime } },
      keep: mayKeep(200, cut !== undefined),
    };
  } catch (error) {
    const reply = errorReply(error);
    return { reply, keep: mayKeep(reply.status, false) };
  }
}

function health(request: HandlerRequest, deps: RouteDeps): Reply {
  const { info } = deps.pool;
  // Never cached: what a token holder saw must not be served to the next caller by a proxy.
  const headers = { 'cache-control': 'no-store' };
  const liveness = { status: 'ok', model: { name: info.model.name, version: info.model.version }, ready: deps.pool.ready };
  if (!showsHealthDetails(deps.health, request.remoteAddress, request.headers)) return { status: 200, body: liveness, headers };
  return {
    status: 200,
    headers,
    body: {
      ...liveness,
      uptime_s: Math.round((performance.now() - deps.startedAt) / 1000),
      model: info.model,
      providers: info.providers,
      ffmpeg: { path: deps.ffmpeg.path, source: deps.ffmpeg.source, version: deps.ffmpeg.version },
      queue: deps.pool.depth,
      shared: deps.answers.health(), // identical challenges answered from one run (server/replays.ts)
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
        return health(request, deps);
      default:
        if (['/challenge', '/docs', '/openapi.json', '/health'].includes(request.path)) {
          throw new HttpError(405, `Method ${request.method} not allowed on ${request.path}`);
        }
        throw new HttpError(404, `Not found: ${request.path}`);
    }
  };
}
