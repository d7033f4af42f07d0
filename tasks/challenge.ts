#!/usr/bin/env -S npx tsx
/**
 * Challenge your own miner like a validator does: sign the request (Score's central validator by default, or
 * fiber), POST /challenge, check the reply against the validator's schema and, given the ground truth, score
 * it with the validator's formula. Exits non-zero with the cause and the next step on anything a validator
 * would score 0 (non-200, invalid JSON, schema error, over the 30 s budget).
 *
 *   npx tsx tasks/challenge.ts --url http://203.0.113.7:8000 --video-url https://example.com/clip.mp4
 *   npx tsx tasks/challenge.ts --file clip.mp4 --uri //Alice --truth clip.truth.json
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Env, loadConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { type FileServer, serveFiles } from '../lib/core/fileserver.ts';
import { defineTask, type FlagSpec, type FlagValues, runIfEntryPoint, type TaskDeps, UsageError } from '../lib/core/task.ts';
import { type GroundTruthEvent, scoreResponse, validateResponse } from '../lib/protocol/scoring.ts';
import { decodeHotkey, type SignatureScheme, type Signer, signRequest } from '../lib/protocol/signature.ts';

/** Score's validator gives each challenge this budget (connect + upload + work + reply). */
const VALIDATOR_BUDGET_S = 30;

const HELP = `Usage: npx tsx tasks/challenge.ts [options]

Send one signed challenge to a miner the way a Score Vision validator does, and check the reply.

Video (one of):
  --video-url URL       http(s) URL the miner downloads
  --file PATH           local mp4, served on a temporary loopback server (127.0.0.1): the miner must run on
                        this machine (or in a container with --network host)
Miner:
  --url URL             miner base URL (default http://127.0.0.1:8000)
  --miner-hotkey SS58   the miner's hotkey (sent as miner-hotkey; the fiber scheme signs it; default: the
                        miner's GET /health security.miner_hotkey, shown to callers on the miner's machine
                        and with HEALTH_TOKEN)
Signing:
  --scheme S            central (Score's validator, default) | fiber | none (no headers: toggles-off miners)
  --uri URI             sign with a dev key such as //Alice (must pass the miner's stake gate: use
                        VALIDATOR_ALLOWLIST or BLACKLIST_ENABLED=false on the miner)
  --wallet NAME         sign with this coldkey's hotkey file (default BITTENSOR_WALLET_COLD)
  --hotkey NAME         hotkey name (default BITTENSOR_WALLET_HOT)
  --wallet-path DIR     wallets folder (default BITTENSOR_WALLET_PATH or ~/.bittensor/wallets)
  --wrap                sign the <Bytes>-wrapped message (as substrate tooling does)
Checking:
  --truth FILE          JSON list of {"frame": int, "action": str} at 25 fps: print the validator's score
  --challenge-id ID     default: a random id
  --timeout S           give up after S seconds (default ${VALIDATOR_BUDGET_S}, the validator's budget)
  --json                print the result as one JSON object on stdout
  --verbose             debug logging and stack traces on failure
  -h, --help            this text

Exit status: 0 when the validator would accept the reply, 1 otherwise (with the cause and the next step),
2 for a wrong command line.`;

/** Where challenge output goes (the task helper's out/err). */
interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

export interface Options {
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

/** How to sign a challenge: shared by the tasks that send one (eval --url, spotcheck --live). */
export const SIGNING_FLAGS = {
  scheme: { type: 'string' },
  uri: { type: 'string' },
  wallet: { type: 'string' },
  hotkey: { type: 'string' },
  'wallet-path': { type: 'string' },
  'miner-hotkey': { type: 'string' },
} satisfies FlagSpec;

/** --scheme: central (default, Score's validator), fiber, or none (unsigned). */
export function parseScheme(value: string | undefined): Options['scheme'] {
  const scheme = (value || 'central').toLowerCase();
  if (scheme !== 'central' && scheme !== 'fiber' && scheme !== 'none')
    throw new UsageError(`--scheme must be central, fiber or none (got ${JSON.stringify(value)})`);
  return scheme;
}

const FLAGS = {
  url: { type: 'string' },
  'video-url': { type: 'string' },
  file: { type: 'string' },
  ...SIGNING_FLAGS,
  truth: { type: 'string' },
  'challenge-id': { type: 'string' },
  timeout: { type: 'string' },
  wrap: { type: 'boolean' },
} satisfies FlagSpec;

function toOptions(flags: FlagValues<typeof FLAGS> & { json: boolean }): Options {
  const scheme = parseScheme(flags.scheme);
  const timeoutS = flags.timeout === undefined || flags.timeout === '' ? VALIDATOR_BUDGET_S : Number(flags.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0)
    throw new UsageError(`--timeout must be a number of seconds (got ${JSON.stringify(flags.timeout)})`);
  const url = (flags.url || 'http://127.0.0.1:8000').replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s/]+/.test(url)) throw new UsageError(`--url must look like http://HOST:PORT (got ${JSON.stringify(url)})`);
  return {
    url,
    videoUrl: flags['video-url'] || undefined,
    file: flags.file || undefined,
    scheme: scheme as Options['scheme'],
    uri: flags.uri || undefined,
    wallet: flags.wallet || undefined,
    hotkey: flags.hotkey || undefined,
    walletPath: flags['wallet-path'] || undefined,
    wrap: flags.wrap,
    minerHotkey: flags['miner-hotkey'] || undefined,
    truth: flags.truth || undefined,
    challengeId: flags['challenge-id'] || randomUUID().replace(/-/g, '').slice(0, 16),
    timeoutS,
    json: flags.json,
  };
}

/** The validator's key: a dev URI, or the hotkey file named by flags / environment (lib/wallet.ts). */
async function loadSigner(options: Options, env: Env): Promise<Signer> {
  const { loadHotkey } = await import('../lib/chain/wallet.ts');
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

/** Next step for each status the miner may answer with (docs/security.md, status table). */
function hintForStatus(status: number, detail: string): string {
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

export async function challenge(options: Options, env: Env, io: Io): Promise<ChallengeResult> {
  if (Boolean(options.videoUrl) === Boolean(options.file)) throw new UsageError('pass exactly one of --video-url URL or --file PATH');
  const truth = options.truth ? await readTruth(options.truth) : undefined;
  const signer = options.scheme === 'none' ? undefined : await loadSigner(options, env);

  let minerHotkey = options.minerHotkey;
  if (minerHotkey && !decodeHotkey(minerHotkey))
    throw new UsageError(`--miner-hotkey ${JSON.stringify(minerHotkey)} is not an SS58 address`);
  if (options.scheme === 'fiber' && !minerHotkey) {
    minerHotkey = await minerHotkeyFromHealth(options.url, options.timeoutS, loadConfig(env).server.health.token);
    if (!minerHotkey) {
      throw new MinerError('the fiber scheme signs the miner hotkey, and the miner did not report one on GET /health', {
        hint: "pass --miner-hotkey SS58 (the hotkey the miner runs with), or set HEALTH_TOKEN here to the miner's (/health shows the hotkey only to callers on its machine and to the token)",
      });
    }
  }

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
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${options.url}/challenge`, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(options.timeoutS * 1000),
      });
      text = await response.text();
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      const wall = (performance.now() - started) / 1000;
      return {
        url: options.url,
        challenge_id: options.challengeId,
        scheme: options.scheme,
        status: 0,
        wall_s: wall,
        ok: false,
        cause: timedOut
          ? `no reply within ${options.timeoutS} s`
          : `cannot reach ${options.url}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`,
        next: timedOut
          ? 'the validator would score 0: make inference faster (or check the miner is not stuck downloading)'
          : 'check the miner is running and --url (host, port) is reachable from here',
      };
    }
    const wall = (performance.now() - started) / 1000;
    const base = { url: options.url, challenge_id: options.challengeId, scheme: options.scheme, status: response.status, wall_s: wall };

    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (response.status !== 200) {
      const detail = typeof (json as { detail?: unknown })?.detail === 'string' ? (json as { detail: string }).detail : text.slice(0, 200);
      return { ...base, ok: false, cause: `miner answered ${response.status}: ${detail}`, next: hintForStatus(response.status, detail) };
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
    if (wall > VALIDATOR_BUDGET_S) {
      return {
        ...result,
        ok: false,
        cause: `reply took ${wall.toFixed(1)} s, over the validator's ${VALIDATOR_BUDGET_S} s budget`,
        next: 'the validator would score 0: make inference faster or use a GPU',
      };
    }
    return result;
  } finally {
    await files?.close();
  }
}

function printResult(result: ChallengeResult, io: Io): void {
  if (result.predictions) {
    io.out(`${result.predictions.length} predictions`);
    for (const p of result.predictions as Array<{ frame: number; action: string; confidence?: number }>) {
      const confidence = p.confidence === undefined ? '' : `  confidence ${p.confidence.toFixed(3)}`;
      io.out(`  frame ${String(p.frame).padStart(6)}  ${(p.frame / 25).toFixed(2).padStart(8)} s  ${p.action.padEnd(17)}${confidence}`);
    }
  }
  if (result.status !== 0) {
    const timing = [`wall ${result.wall_s.toFixed(2)} s`];
    if (result.processing_time_s !== undefined) timing.push(`miner processing_time ${result.processing_time_s.toFixed(2)} s`);
    io.out(`timing: ${timing.join(', ')} (budget ${VALIDATOR_BUDGET_S} s)`);
  }
  if (result.score !== undefined) io.out(`score: ${result.score.toFixed(4)} (validator formula vs --truth)`);
  if (result.ok) io.out('ok: the validator would accept this reply');
  else io.err(`error: ${result.cause}\n  next: ${result.next}`);
}

/** Exit status 0 accepted, 1 not (or failed), 2 usage; never calls process.exit. */
export const main = defineTask<typeof FLAGS, TaskDeps>({
  usage: HELP,
  flags: FLAGS,
  json: true,
  async run({ flags, env, out, err }) {
    const options = toOptions(flags);
    const result = await challenge(options, env, { out, err });
    if (options.json) out(JSON.stringify(result));
    else printResult(result, { out, err });
    return result.ok ? 0 : 1;
  },
});

runIfEntryPoint(import.meta.url, main);
