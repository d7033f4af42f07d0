#!/usr/bin/env -S npx tsx
import { defineTask, type FlagSpec, type FlagValues, runIfEntryPoint, type TaskDeps, UsageError } from '../lib/core/task.ts';
/**
 * Challenge your own miner like a validator does: sign the request (Score's central validator by default, or
 * fiber), POST /challenge, check the reply against the validator's schema and, given the ground truth, score
 * it with the validator's formula. Exits non-zero with the cause and the next step on anything a validator
 * would score 0 (non-200, invalid JSON, schema error, over the 30 s budget).
 *
 *   npx tsx tasks/challenge.ts --url http://203.0.113.7:8000 --video-url https://example.com/clip.mp4
 *   npx tsx tasks/challenge.ts --file clip.mp4 --uri //Alice --truth clip.truth.json
 */
import { baseUrlFlag } from '../lib/core/url-flag.ts';
import {
  type ChallengeOptions,
  type ChallengeResult,
  challenge,
  type Io,
  newChallengeId,
  parseScheme,
  SIGNING_FLAGS,
  VALIDATOR_BUDGET_S,
} from '../lib/protocol/validator-client.ts';

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

function toOptions(flags: FlagValues<typeof FLAGS> & { json: boolean }): ChallengeOptions {
  const scheme = parseScheme(flags.scheme);
  const timeoutS = flags.timeout === undefined || flags.timeout === '' ? VALIDATOR_BUDGET_S : Number(flags.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0)
    throw new UsageError(`--timeout must be a number of seconds (got ${JSON.stringify(flags.timeout)})`);
  return {
    url: baseUrlFlag('url', flags.url || 'http://127.0.0.1:8000'),
    videoUrl: flags['video-url'] || undefined,
    file: flags.file || undefined,
    scheme,
    uri: flags.uri || undefined,
    wallet: flags.wallet || undefined,
    hotkey: flags.hotkey || undefined,
    walletPath: flags['wallet-path'] || undefined,
    wrap: flags.wrap,
    minerHotkey: flags['miner-hotkey'] || undefined,
    truth: flags.truth || undefined,
    challengeId: flags['challenge-id'] || newChallengeId(),
    timeoutS,
    json: flags.json,
  };
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
