/**
 * Rehearse Score's spot check before Score runs one: pull the image the validator would use, by digest, run it
 * the way Score's harness does, replay one challenge, and apply Score's rule (scores within 0.02).
 *
 *   npx tsx tasks/spotcheck.ts --file clip.mp4 --truth truth.json
 *   npx tsx tasks/spotcheck.ts --file clip.mp4 --live http://203.0.113.7:8000 --uri //Alice
 *   npx tsx tasks/spotcheck.ts --image user/repo@sha256:<64 hex> --video-url https://example.com/clip.mp4 --repeat 3
 *
 * 1. the image: the latest revealed commitment of this hotkey that passes the validator's filter (only the
 *    wallet's public ss58Address is read), or --image repo@sha256:...
 * 2. docker login (when the config holds registry credentials, token on stdin), docker pull repo@sha256:...
 * 3. the clip served on loopback (--file) or --video-url; the ground truth (--truth); the live miner's answer,
 *    signed like the validator (--live, through lib/protocol/validator-client.ts)
 * 4. each run a fresh container (fixed name with this pid; VERIFY=false BLACKLIST=false NETUID WALLET_NAME
 *    HOTKEY_NAME, no wallet, --network host, a free MINER_PORT, DOWNLOAD_ALLOW_PRIVATE=true): wait for
 *    GET /docs 200 (--ready-timeout), POST the challenge unsigned, remove the container
 * 5. compare (lib/deploy/spotcheck.ts), print PASS/FAIL with a diff of the predictions, record the result in
 *    DEPLOY_STATE_DIR/spotcheck.json (tasks/status.ts reports it)
 * Every container and the file server are removed on the way out, also on failure and on Ctrl-C (exit 130).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readRevealed } from '../lib/chain/neuron.ts';
import { hotkeyPath, loadHotkey } from '../lib/chain/wallet.ts';
import { type Env, loadConfig, type MinerConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { type FileServer, serveFiles } from '../lib/core/fileserver.ts';
import { type ChainTaskDeps, defineTask, type FlagSpec, runIfEntryPoint, UsageError } from '../lib/core/task.ts';
import { baseUrlFlag } from '../lib/core/url-flag.ts';
import { containerSlot } from '../lib/deploy/container.ts';
import type { DockerRunOptions } from '../lib/deploy/run-docker.ts';
import {
  chooseCommitment,
  comparedWith,
  DEFAULT_READY_TIMEOUT_S,
  digestReference,
  type ImageRunOptions,
  imageSize,
  imageSizeCause,
  judgeRehearsal,
  loginToPull,
  parseDigestReference,
  pullImage,
  type RunOutcome,
  recordRehearsal,
  registryOf,
  rehearsalJson,
  rehearsalRecord,
  runCount,
  runImageOnce,
  SCORE_IMAGE_LIMIT_GB,
  SCORE_TOLERANCE,
  SPOTCHECK_CHALLENGE_TIMEOUT_S,
  type SpotcheckImage,
  spotcheckContainerName,
  verdictLines,
} from '../lib/deploy/spotcheck.ts';
import type { GroundTruthEvent } from '../lib/protocol/scoring.ts';
import { decodeHotkey } from '../lib/protocol/signature.ts';
import {
  type ChallengeOptions,
  type ChallengeResult,
  challenge,
  parseScheme,
  readTruth,
  SIGNING_FLAGS,
} from '../lib/protocol/validator-client.ts';

const LIVE_TIMEOUT_S = 30;

const USAGE = `usage: npx tsx tasks/spotcheck.ts (--file clip.mp4 | --video-url URL) [--truth truth.json] [--live URL]
         [--image REPO@sha256:...] [--repeat N] [--ready-timeout S] [--gpus all] [--json] [--verbose]

Rehearse Score's spot check: pull the image the validator would use (by digest), run it like Score's harness
(VERIFY=false, BLACKLIST=false, no wallet, a fresh container per run), wait for GET /docs, replay one
challenge, and compare the scores with Score's rule: PASS when they differ by at most ${SCORE_TOLERANCE}.

Image (default: the latest revealed commitment of this hotkey that passes the validator's filter):
  --image REPO@sha256:...   rehearse this image instead
Challenge:
  --file PATH               local mp4, served on 127.0.0.1 for the container (and the live miner)
  --video-url URL           http(s) URL to send instead
  --truth FILE              ground truth [{"frame": 75, "action": "goal"}] (25 fps frames): every answer is scored
                            against it; without --live the truth also stands for the live miner's answer
  --live URL                challenge the live miner too (signed like the validator) and compare with it, as
                            Score does (http://HOST:PORT)
  --repeat N                run the image N times, each in a fresh container (default 1; with neither --live nor
                            --truth at least 2, and the runs are compared with each other)
  --ready-timeout S         seconds to wait for GET /docs 200 (default ${DEFAULT_READY_TIMEOUT_S}, as Score's harness)
  --timeout S               seconds the image may take to answer (default ${SPOTCHECK_CHALLENGE_TIMEOUT_S}, Score's); the live miner gets ${LIVE_TIMEOUT_S}
  --gpus SPEC               docker run --gpus SPEC (e.g. all): Score runs spot checks on a GPU node, so rehearse
                            a GPU image on a GPU host (needs the NVIDIA container toolkit)
  --max-image-gb N          fail when the pulled image is over N GB (default ${SCORE_IMAGE_LIMIT_GB}, Score's limit)
Signing the live challenge (as tasks/challenge.ts):
  --scheme S                central (Score's validator, default) | fiber | none
  --uri URI                 sign with a dev key such as //Alice
  --wallet NAME             coldkey of the signing hotkey file (default BITTENSOR_WALLET_COLD)
  --hotkey NAME             its hotkey name (default BITTENSOR_WALLET_HOT)
  --wallet-path DIR         wallets folder (default BITTENSOR_WALLET_PATH)
  --miner-hotkey SS58       the live miner's hotkey, for --scheme fiber (default: the live miner's /health)
Output:
  --json                    print the result as one JSON object on stdout
  --verbose                 docker's output, debug logging and stack traces

Without --truth each answer is the other's ground truth: the reference (the live miner's answer, else the
first run's) and the image's answer are scored against each other both ways; the larger difference counts.
The result is recorded in DEPLOY_STATE_DIR/spotcheck.json by digest (tasks/status.ts reports it).
Reads the chain and wallet settings (the hotkey's public ss58Address only) and the registry credentials
(docker login when set). Exit status: 0 PASS, 1 FAIL or error, 2 wrong command line, 130 interrupted.`;

const FLAGS = {
  image: { type: 'string' },
  file: { type: 'string' },
  'video-url': { type: 'string' },
  truth: { type: 'string' },
  live: { type: 'string' },
  repeat: { type: 'string' },
  'ready-timeout': { type: 'string' },
  timeout: { type: 'string' },
  gpus: { type: 'string' },
  'max-image-gb': { type: 'string' },
  ...SIGNING_FLAGS,
} satisfies FlagSpec;

export type SpotcheckDeps = ChainTaskDeps;

function positiveNumber(flag: string, value: string | undefined, fallback: number, unit = 'seconds'): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0)
    throw new UsageError(`--${flag} must be a positive number of ${unit} (got ${JSON.stringify(value)})`);
  return number;
}

/** docker's --gpus value: all, a count, or device=... (docker checks the rest). */
function gpusSpec(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[A-Za-z0-9=,:"._-]+$/.test(value.trim()))
    throw new UsageError(`--gpus must be a docker --gpus value such as all, 1 or device=0 (got ${JSON.stringify(value)})`);
  return value.trim();
}

interface Plan {
  image?: { repo: string; digest: string };
  file?: string;
  videoUrl?: string;
  truth?: string;
  live?: string;
  repeat: number;
  readyTimeoutS: number;
  timeoutS: number;
  scheme: ChallengeOptions['scheme'];
  gpus?: string;
  maxImageGb: number;
}

function plan(flags: Record<keyof typeof FLAGS, string | undefined>): Plan {
  if (Boolean(flags.file) === Boolean(flags['video-url'])) throw new UsageError('pass exactly one of --file PATH or --video-url URL');
  let image: Plan['image'];
  if (flags.image !== undefined) {
    image = parseDigestReference(flags.image.trim());
    if (!image)
      throw new UsageError(
        `--image must be REPO@sha256:<64 hex> (got ${JSON.stringify(flags.image)})`,
        'Score pulls by digest: give the digest tasks/push.ts recorded, e.g. --image user/repo@sha256:...',
      );
  }
  const repeat = flags.repeat === undefined ? 1 : Number(flags.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20)
    throw new UsageError(`--repeat must be a whole number from 1 to 20 (got ${JSON.stringify(flags.repeat)})`);
  const scheme = parseScheme(flags.scheme);
  const videoUrl = flags['video-url'];
  if (videoUrl !== undefined && !/^https?:\/\/\S+$/.test(videoUrl))
    throw new UsageError(`--video-url must be an http(s) URL (got ${JSON.stringify(videoUrl)})`);
  return {
    image,
    file: flags.file,
    videoUrl,
    truth: flags.truth,
    live: flags.live === undefined ? undefined : baseUrlFlag('live', flags.live),
    repeat,
    readyTimeoutS: positiveNumber('ready-timeout', flags['ready-timeout'], DEFAULT_READY_TIMEOUT_S),
    timeoutS: positiveNumber('timeout', flags.timeout, SPOTCHECK_CHALLENGE_TIMEOUT_S),
    gpus: gpusSpec(flags.gpus),
    maxImageGb: positiveNumber('max-image-gb', flags['max-image-gb'], SCORE_IMAGE_LIMIT_GB, 'GB'),
    scheme,
  };
}

/** The hotkey's address from the wallet file's public ss58Address (no secret is read), or a dev key URI. */
async function hotkeyAddress(config: MinerConfig, env: Env, allowDevKeys?: boolean): Promise<string> {
  if (env.HOTKEY_URI?.trim()) return (await loadHotkey(config.wallet, { env, allowDevKeys })).address;
  const file = hotkeyPath(config.wallet);
  const hint =
    "point BITTENSOR_WALLET_PATH, BITTENSOR_WALLET_COLD and BITTENSOR_WALLET_HOT at your miner's hotkey, or rehearse a given image with --image REPO@sha256:...";
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new MinerError(`cannot read the hotkey file ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, {
      hint,
    });
  }
  let address: unknown;
  try {
    address = (JSON.parse(text) as { ss58Address?: unknown }).ss58Address;
  } catch {
    address = undefined;
  }
  if (typeof address !== 'string' || !decodeHotkey(address))
    throw new MinerError(`the hotkey file ${file} holds no valid ss58Address`, { hint });
  return address;
}

/** The image Score's validator would spot-check: from the chain. */
async function committedImage(config: MinerConfig, env: Env, deps: SpotcheckDeps): Promise<SpotcheckImage> {
  const { netuid, elementId } = config.chain;
  const address = await hotkeyAddress(config, env, deps.allowDevKeys);
  const { openApi } = await import('../lib/chain/connection.ts');
  const api = await openApi(config.chain, deps.provider);
  let entries: Awaited<ReturnType<typeof readRevealed>>;
  try {
    entries = await readRevealed(api, netuid, address);
  } finally {
    await api.disconnect().catch(() => undefined);
  }
  const choice = chooseCommitment(entries, elementId);
  if (!choice.ok) {
    const problems = choice.problems.map((p) => `; ${p.problem}`).join('');
    throw new MinerError(`${choice.reason} of hotkey ${address} on netuid ${netuid}: Score has no image to spot-check${problems}`, {
      hint: 'commit your pushed image (npx tsx tasks/commit.ts), or rehearse a given image with --image REPO@sha256:...',
    });
  }
  return choice.image;
}

/** The clip given with --file must be a file on this machine. */
function checkClip(file: string | undefined): void {
  if (file && !existsSync(file))
    throw new MinerError(`the clip ${file} does not exist`, { hint: 'pass an mp4 on this machine with --file, or --video-url URL' });
  if (file && !statSync(file).isFile()) throw new MinerError(`${file} is not a file`, { hint: 'pass an mp4 file' });
}

/**
 * What the rehearsal starts (its container, the file server), removed on the way out: normal end, failure, or
 * a signal (SIGINT/SIGTERM: clean up and exit 130/143). `stopIfInterrupted` parks the main flow once a signal
 * came: it must not go on, nor record a FAIL, while the handler cleans up.
 */
function rehearsalScope(run: DockerRunOptions, err: (line: string) => void) {
  const slot = containerSlot(spotcheckContainerName(process.pid), run);
  let files: FileServer | undefined;
  const cleanUp = async () => {
    await slot.cleanUp();
    const server = files;
    files = undefined;
    await server?.close();
  };
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    err(`interrupted (${signal}): removing the rehearsal's container and file server`);
    void cleanUp().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    slot,
    cleanUp,
    /** Serve the clip on loopback; its URL. */
    async serve(file: string): Promise<string> {
      files = await serveFiles([file]);
      return files.urlFor(file);
    },
    async stopIfInterrupted() {
      if (interrupted) await new Promise<never>(() => undefined);
    },
    release() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

type Scope = ReturnType<typeof rehearsalScope>;

type Say = (line: string) => void;

interface Pulled {
  reference: string;
  pullS: number;
  imageBytes: number;
  /** Score fails an oversized image without running it: so does the rehearsal. */
  sizeCause?: string;
}

/** Steps 1-2: name the image, log in, pull it by digest and weigh it. */
async function pullRehearsedImage(
  image: SpotcheckImage,
  options: Plan,
  config: MinerConfig,
  run: DockerRunOptions,
  say: Say,
): Promise<Pulled> {
  const reference = digestReference(image);
  say(`spot check rehearsal of ${reference}`);
  say(
    `  image    ${options.image ? 'given with --image' : `the commitment revealed in block ${image.block} (tag ${image.tag}), as Score's validator picks it`}`,
  );
  const host = registryOf(image.repo);
  const login = await loginToPull(host, config.deploy, run);
  const pullS = await pullImage(reference, run);
  say(`  pull     ${host} ${login}: ${pullS.toFixed(1)} s`);
  const imageBytes = await imageSize(reference, run);
  const sizeCause = imageSizeCause(imageBytes, options.maxImageGb);
  say(
    `  size     ${(imageBytes / 1e9).toFixed(2)} GB (limit ${options.maxImageGb} GB${options.gpus ? `; runs with --gpus ${options.gpus}` : ''})`,
  );
  return { reference, pullS, imageBytes, sizeCause };
}

/** Step 3: the challenge, one video and one id for every answer (unsigned: Score's harness does not sign). */
async function challengeBase(options: Plan, scope: Scope, say: Say): Promise<ChallengeOptions> {
  const videoUrl = options.file ? await scope.serve(options.file) : (options.videoUrl as string);
  const challengeId = randomUUID().replace(/-/g, '').slice(0, 16);
  say(`  video    ${videoUrl} (challenge_id ${challengeId})`);
  return { url: '', videoUrl, scheme: 'none', wrap: false, challengeId, timeoutS: options.timeoutS, json: true };
}

/** Step 3 for --live: the live miner's answer, signed like the validator. */
async function askLive(
  options: Plan,
  flags: Record<keyof typeof FLAGS, string | undefined>,
  base: ChallengeOptions,
  env: Env,
  io: { out: Say; err: Say },
): Promise<ChallengeResult> {
  const url = options.live as string;
  const live = await challenge(
    {
      ...base,
      url,
      scheme: options.scheme,
      uri: flags.uri,
      wallet: flags.wallet,
      hotkey: flags.hotkey,
      walletPath: flags['wallet-path'],
      minerHotkey: flags['miner-hotkey'],
      timeoutS: LIVE_TIMEOUT_S,
    },
    env,
    io,
  );
  if (!live.predictions) throw new MinerError(`the live miner ${url} gave no answer to compare with: ${live.cause}`, { hint: live.next });
  io.out(`  live     ${url}: ${live.predictions.length} predictions in ${live.wall_s.toFixed(2)} s (scheme ${options.scheme})`);
  if (!live.ok) io.out(`           warning: ${live.cause}`);
  return live;
}

/** Step 4: `runs` runs, each in a fresh container; stops at the first that fails. */
async function runImage(
  runs: number,
  image: Omit<ImageRunOptions<ChallengeResult>, 'label'>,
  stopIfInterrupted: () => Promise<void>,
  say: Say,
): Promise<RunOutcome<ChallengeResult>[]> {
  const outcomes: RunOutcome<ChallengeResult>[] = [];
  for (let i = 1; i <= runs; i++) {
    const outcome = await runImageOnce({ ...image, label: `run ${i}` });
    await stopIfInterrupted();
    outcomes.push(outcome);
    if (!outcome.ok) break;
    const r = outcome.result as ChallengeResult;
    say(
      `  ${outcome.label.padEnd(8)} ready in ${outcome.readyS?.toFixed(1)} s (GET /docs 200); ${r.predictions?.length} predictions in ${r.wall_s.toFixed(2)} s`,
    );
    if (!r.ok) say(`           warning: ${r.cause}`);
  }
  return outcomes;
}

interface Rehearsed {
  options: Plan;
  image: SpotcheckImage;
  pulled: Pulled;
  live?: ChallengeResult;
  outcomes: RunOutcome<ChallengeResult>[];
  truth?: GroundTruthEvent[];
  /** performance.now() at the start. */
  started: number;
}

/** Step 5: compare, record, print the verdict (and --json's object); the exit code. */
async function report(rehearsed: Rehearsed, stateDir: string, json: boolean, say: Say, out: Say): Promise<number> {
  const { options, image, pulled, live, outcomes, truth } = rehearsed;
  const compared = comparedWith(Boolean(options.live), Boolean(truth));
  const judgement = judgeRehearsal({ compared, sizeCause: pulled.sizeCause, outcomes, live, truth });
  const seconds = (performance.now() - rehearsed.started) / 1000;
  const record = rehearsalRecord(image, judgement, outcomes, seconds);
  const file = await recordRehearsal(stateDir, record);
  const printed = verdictLines(judgement, { withTruth: truth !== undefined, sizeFailed: Boolean(pulled.sizeCause), seconds });
  for (const line of printed) say(line);
  say(`recorded in ${file}`);
  if (json) {
    const { imageBytes, pullS } = pulled;
    const liveAnswer = live && { url: options.live as string, result: live };
    const fields = { record, judgement, image, imageBytes, gpus: options.gpus, live: liveAnswer, outcomes, pullS, seconds };
    out(JSON.stringify(rehearsalJson({ ...fields, recorded: file })));
  }
  return judgement.pass ? 0 : 1;
}

export const main = defineTask<typeof FLAGS, SpotcheckDeps>({
  usage: USAGE,
  flags: FLAGS,
  json: true,
  async run({ flags, env, out, err, deps }) {
    const options = plan(flags);
    const config = loadConfig(env);
    const say = flags.json ? err : out;
    const run: DockerRunOptions = { env, verbose: flags.verbose };
    const started = performance.now();
    checkClip(options.file);
    const truth: GroundTruthEvent[] | undefined = options.truth ? await readTruth(options.truth) : undefined;

    const scope = rehearsalScope(run, err);
    try {
      const image = options.image ?? (await committedImage(config, env, deps));
      const pulled = await pullRehearsedImage(image, options, config, run, say);
      const base = await challengeBase(options, scope, say);
      const io = { out: say, err };
      const live = options.live && !pulled.sizeCause ? await askLive(options, flags, base, env, io) : undefined;

      // 4. the runs, each a fresh container
      const runs = pulled.sizeCause ? 0 : runCount(options.repeat, Boolean(options.live || truth));
      const { netuid } = config.chain;
      const spec = {
        image: pulled.reference,
        netuid,
        walletName: config.wallet.coldkey,
        hotkeyName: config.wallet.hotkey,
        gpus: options.gpus,
      };
      const ask = (url: string) => challenge({ ...base, url }, env, io);
      const runner = { slot: scope.slot, spec, readyTimeoutS: options.readyTimeoutS, run, ask };
      const outcomes = await runImage(runs, runner, scope.stopIfInterrupted, say);
      await scope.cleanUp();
      await scope.stopIfInterrupted();
      return await report(
        { options, image, pulled, live, outcomes, truth, started },
        config.deploy.stateDir,
        Boolean(flags.json),
        say,
        out,
      );
    } finally {
      await scope.stopIfInterrupted();
      await scope.cleanUp();
      scope.release();
    }
  },
});

runIfEntryPoint(import.meta.url, main);
