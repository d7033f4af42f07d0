/**
 * The validator's side of a challenge, as Score Vision's validator does it: sign a compact JSON body with either
 * scheme (central or fiber, lib/protocol/signature.ts) or none, POST it to the miner's /challenge, and judge the
 * reply the way the validator would (status, JSON, schema, the 30 s budget; scored when the truth is given).
 * Used by tasks/challenge.ts, tasks/eval.ts --url and tasks/spotcheck.ts --live.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Env, loadConfig } from '../core/config.ts';
import { MinerError } from '../core/errors.ts';
import { type FileServer, serveFiles } from '../core/fileserver.ts';
import { type FlagSpec, UsageError } from '../core/task.ts';
import { type GroundTruthEvent, scoreResponse, validateResponse } from './scoring.ts';
import { decodeHotkey, type SignatureScheme, type Signer, signRequest } from './signature.ts';

/** Score's validator gives each challenge this budget (connect + upload + work + reply). */
export const VALIDATOR_BUDGET_S = 30;

/** Where challenge output goes (a task's out/err). */
export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

export interface ChallengeOptions {
  url: string;
  videoUrl?: string;
  file?: string;
  scheme: SignatureScheme | 'none';
  uri?: string;
  wallet?: string;
  hotkey?: string;
  walletPath?: string;
  wrap: boolean;
  minerHotkey?: string;
  truth?: string;
  challengeId: string;
  timeoutS: number;
  json: boolean;
}

export interface ChallengeResult {
  url: string;
  challenge_id: string;
  scheme: string;
  status: number;
  wall_s: number;
  processing_time_s?: number;
  predictions?: unknown[];
  score?: number;
  ok: boolean;
  cause?: string;
  next?: string;
}

/** How to sign a challenge: shared by the tasks that send one (challenge, eval --url, spotcheck --live). */
export const SIGNING_FLAGS = {
  scheme: { type: 'string' },
  uri: { type: 'string' },
  wallet: { type: 'string' },
  hotkey: { type: 'string' },
  'wallet-path': { type: 'string' },
  'miner-hotkey': { type: 'string' },
} satisfies FlagSpec;

/** --scheme: central (default, Score's validator), fiber, or none (unsigned). */
export function parseScheme(value: string | undefined): ChallengeOptions['scheme'] {
  const scheme = (value || 'central').toLowerCase();
  if (scheme !== 'central' && scheme !== 'fiber' && scheme !== 'none')
    throw new UsageError(`--scheme must be central, fiber or none (got ${JSON.stringify(value)})`);
  return scheme;
}

/** A fresh challenge id shaped like the validator's (16 hex digits). */
export function newChallengeId(): string {
  return randomUUID().replace(/-/g, '').slice(0, 16);
}

/** The validator's key: a dev URI, or the hotkey file named by flags / environment (lib/chain/wallet.ts). */
async function loadSigner(options: ChallengeOptions, env: Env): Promise<Signer> {
  const { loadHotkey } = await import('../chain/wallet.ts');
  const config = loadConfig(env);
  const wallet = {
    path: options.walletPath ?? config.wallet.path,
    coldkey: options.wallet ?? config.wallet.coldkey,
    hotkey: options.hotkey ?? config.wallet.hotkey,
  };
  // An explicit --uri is the user's permission to use a dev key.
  const hotkey = await loadHotkey(
    wallet,
    options.uri ? { uri: options.uri, allowDevKeys: true } : { env: { ...env, HOTKEY_URI: undefined } },
  );
  return hotkey.pair;
}

/**
 * The miner's own hotkey from its /health (the guard reports it), for the fiber message. The miner shows it to
 * callers on its machine and to HEALTH_TOKEN holders only: the token is sent when this environment has one.
 */
async function minerHotkeyFromHealth(url: string, timeoutS: number, token: string | undefined): Promise<string | undefined> {
  try {
    const response = await fetch(`${url}/health`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(timeoutS * 1000),
    });
    if (!response.ok) return undefined;
    const health = (await response.json()) as { security?: { miner_hotkey?: unknown } };
    const hotkey = health.security?.miner_hotkey;
    return typeof hotkey === 'string' ? hotkey : undefined;
  } catch {
    return undefined;
  }
}

/** The miner hotkey the fiber message signs: as given, else the miner's /health; checked as SS58. */
async function resolveMinerHotkey(options: ChallengeOptions, env: Env): Promise<string | undefined> {
  const given = options.minerHotkey;
  if (given && !decodeHotkey(given)) throw new UsageError(`--miner-hotkey ${JSON.stringify(given)} is not an SS58 address`);
  if (options.scheme !== 'fiber' || given) return given;
  const fromHealth = await minerHotkeyFromHealth(options.url, options.timeoutS, loadConfig(env).server.health.token);
  if (!fromHealth) {
    throw new MinerError('the fiber scheme signs the miner hotkey, and the miner did not report one on GET /health', {
      hint: "pass --miner-hotkey SS58 (the hotkey the miner runs with), or set HEALTH_TOKEN here to the miner's (/health shows the hotkey only to callers on its machine and to the token)",
    });
  }
  return fromHealth;
}

/** Next step for each status the miner may answer with (docs/security.md, status table). */
export function hintForStatus(status: number, detail: string): string {
  if (status === 401 && detail.startsWith('Missing header'))
    return 'the miner requires signed requests (BLACKLIST_ENABLED/VERIFY_ENABLED on): sign with --scheme central|fiber (not none) and a key (--uri or --wallet/--hotkey)';
  if (status === 401 && detail === 'Invalid nonce')
    return "check both machines' clocks (NTP): nonces older or newer than 120 s are refused, and each nonce works once";
  if (status === 401)
    return 'the signature did not verify: for --scheme fiber pass the miner hotkey the miner runs with (--miner-hotkey); make sure nothing between you and the miner rewrites the body';
  if (status === 403 && detail.startsWith('Insufficient stake'))
    return "your key's stake is below the miner's MIN_STAKE_THRESHOLD: add it to the miner's VALIDATOR_ALLOWLIST or lower the threshold for the test";
  if (status === 403)
    return "your hotkey is not in the subnet's metagraph: add it to the miner's VALIDATOR_ALLOWLIST, or test with BLACKLIST_ENABLED=false";
  if (status === 400) return 'the miner refused the request body: check --video-url / --challenge-id';
  if (status === 413) return "the request body exceeds the miner's MAX_BODY_BYTES";
  if (status === 502)
    return 'the miner could not fetch the video: check the URL is reachable from the miner (with --file, the miner must run on this machine)';
  if (status === 429)
    return "too many requests from this address: wait the Retry-After seconds, or raise the miner's RATE_LIMIT_PER_S / RATE_LIMIT_BURST";
  if (status === 503) return 'the miner is busy or still loading: wait for GET /docs to answer 200 and retry';
  if (status >= 500) return "inference failed on the miner: read the miner's log around this request";
  return "read the miner's log around this request";
}

export async function readTruth(file: string): Promise<GroundTruthEvent[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new MinerError(`cannot read ground truth ${file}: ${(error as Error).message}`, {
      hint: 'pass a JSON list such as [{"frame": 100, "action": "pass"}]',
    });
  }
  if (!Array.isArray(parsed))
    throw new MinerError(`ground truth ${file} is not a JSON list`, {
      hint: 'pass a JSON list such as [{"frame": 100, "action": "pass"}]',
    });
  return parsed.map((item: unknown, i) => {
    const event = item as { frame?: unknown; action?: unknown };
    if (typeof event?.frame !== 'number' || !Number.isInteger(event.frame) || event.frame < 0 || typeof event.action !== 'string') {
      throw new MinerError(`ground truth ${file}[${i}] must be {"frame": integer >= 0, "action": string}`, { hint: 'fix the truth file' });
    }
    return { frame: event.frame, action: event.action };
  });
}

/** What is known of a request before its reply is judged. */
export type ReplyBase = Pick<ChallengeResult, 'url' | 'challenge_id' | 'scheme' | 'status' | 'wall_s'>;

/**
 * The reply to a request that got one, judged as the validator would (also the rehearsal on a deploy engine,
 * lib/deploy/engine-run.ts, whose request is made inside the container). A reply naming another challenge_id
 * is a warning on `io.err`.
 */
export function judgeReply(
  base: ReplyBase,
  text: string,
  options: Pick<ChallengeOptions, 'challengeId'>,
  truth: GroundTruthEvent[] | undefined,
  io: Pick<Io, 'err'>,
): ChallengeResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (base.status !== 200) {
    const detail = typeof (json as { detail?: unknown })?.detail === 'string' ? (json as { detail: string }).detail : text.slice(0, 200);
    return { ...base, ok: false, cause: `miner answered ${base.status}: ${detail}`, next: hintForStatus(base.status, detail) };
  }
  if (json === undefined) {
    return {
      ...base,
      ok: false,
      cause: `reply is not JSON: ${JSON.stringify(text.slice(0, 120))}`,
      next: 'the validator would score 0: the miner must answer application/json',
    };
  }
  const checked = validateResponse(json);
  if (!checked.ok)
    return {
      ...base,
      ok: false,
      cause: `invalid reply: ${checked.reason}`,
      next: 'the validator would score this reply 0: fix the response schema in the miner',
    };

  const result: ChallengeResult = { ...base, ok: true, processing_time_s: checked.processingTime, predictions: checked.predictions };
  if (truth) result.score = scoreResponse(checked.predictions, truth);
  if (checked.challengeId !== undefined && checked.challengeId !== options.challengeId) {
    io.err(
      `warning: reply challenge_id ${JSON.stringify(checked.challengeId)} differs from the request's ${JSON.stringify(options.challengeId)}`,
    );
  }
  if (base.wall_s > VALIDATOR_BUDGET_S) {
    return {
      ...result,
      ok: false,
      cause: `reply took ${base.wall_s.toFixed(1)} s, over the validator's ${VALIDATOR_BUDGET_S} s budget`,
      next: 'the validator would score 0: make inference faster or use a GPU',
    };
  }
  return result;
}

/** A request that got no reply: none within `timeoutS`, or the miner could not be reached (`message` says why). */
export function unanswered(
  base: ReplyBase,
  timedOut: boolean,
  message: string,
  options: Pick<ChallengeOptions, 'url' | 'timeoutS'>,
): ChallengeResult {
  return {
    ...base,
    ok: false,
    cause: timedOut ? `no reply within ${options.timeoutS} s` : `cannot reach ${options.url}: ${message}`,
    next: timedOut
      ? 'the validator would score 0: make inference faster (or check the miner is not stuck downloading)'
      : 'check the miner is running and --url (host, port) is reachable from here',
  };
}

/** Send one challenge (serving --file on loopback for the time of the request) and judge the reply. */
export async function challenge(options: ChallengeOptions, env: Env, io: Io): Promise<ChallengeResult> {
  if (Boolean(options.videoUrl) === Boolean(options.file)) throw new UsageError('pass exactly one of --video-url URL or --file PATH');
  const truth = options.truth ? await readTruth(options.truth) : undefined;
  const signer = options.scheme === 'none' ? undefined : await loadSigner(options, env);
  const minerHotkey = await resolveMinerHotkey(options, env);

  let files: FileServer | undefined;
  try {
    let videoUrl = options.videoUrl as string;
    if (options.file) {
      files = await serveFiles([options.file]);
      videoUrl = files.urlFor(options.file);
    }
    // Compact JSON, the exact bytes that are signed and sent (like Score's validator).
    const body = JSON.stringify({ challenge_id: options.challengeId, video_url: videoUrl, frames: null });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (signer) Object.assign(headers, signRequest(signer, options.scheme as SignatureScheme, body, { minerHotkey, wrap: options.wrap }));
    if (!options.json)
      io.err(`POST ${options.url}/challenge  scheme=${options.scheme}${signer ? ` signer=${signer.address}` : ''}  video=${videoUrl}`);

    const started = performance.now();
    const base = { url: options.url, challenge_id: options.challengeId, scheme: options.scheme };
    let status: number;
    let text: string;
    try {
      const response = await fetch(`${options.url}/challenge`, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(options.timeoutS * 1000),
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      const message = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
      return unanswered({ ...base, status: 0, wall_s: (performance.now() - started) / 1000 }, timedOut, message, options);
    }
    return judgeReply({ ...base, status, wall_s: (performance.now() - started) / 1000 }, text, options, truth, io);
  } finally {
    await files?.close();
  }
}
