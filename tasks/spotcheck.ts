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
 *    signed like the validator (--live, through tasks/challenge.ts)
 * 4. each run a fresh container (fixed name with this pid; VERIFY=false BLACKLIST=false NETUID WALLET_NAME
 *    HOTKEY_NAME, no wallet, --network host, a free MINER_PORT, DOWNLOAD_ALLOW_PRIVATE=true): wait for
 *    GET /docs 200 (--ready-timeout), POST the challenge unsigned, remove the container
 * 5. compare (lib/deploy/spotcheck.ts), print PASS/FAIL with a diff of the predictions, record the result in
 *    DEPLOY_STATE_DIR/spotcheck.json (tasks/status.ts reports it)
 * Every container and the file server are removed on the way out, also on failure and on Ctrl-C (exit 130).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import { readRevealed } from '../lib/chain/neuron.ts';
import { hotkeyPath, loadHotkey } from '../lib/chain/wallet.ts';
import { type Env, loadConfig, type MinerConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { type FileServer, serveFiles } from '../lib/core/fileserver.ts';
import { type ChainTaskDeps, defineTask, type FlagSpec, runIfEntryPoint, UsageError } from '../lib/core/task.ts';
import { loginCommand } from '../lib/deploy/docker.ts';
import { registryHost } from '../lib/deploy/registry.ts';
import { type DockerRunOptions, docker, dockerProbe } from '../lib/deploy/run-docker.ts';
import {
  type Answer,
  chooseCommitment,
  compareAnswers,
  DEFAULT_READY_TIMEOUT_S,
  digestReference,
  formatDiff,
  imageSizeCause,
  isSameAnswer,
  type PairVerdict,
  parseDigestReference,
  parseImageSize,
  pullFailure,
  type RehearsalRecord,
  recordRehearsal,
  registryOf,
  runCount,
  SCORE_IMAGE_LIMIT_GB,
  SCORE_TOLERANCE,
  SPOTCHECK_CHALLENGE_TIMEOUT_S,
  type SpotcheckImage,
  spotcheckContainerName,
  spotcheckRunCommand,
  type Verdict,
} from '../lib/deploy/spotcheck.ts';
import type { GroundTruthEvent, Prediction } from '../lib/protocol/scoring.ts';
import { decodeHotkey } from '../lib/protocol/signature.ts';
import { type Options as ChallengeOptions, type ChallengeResult, challenge, parseScheme, readTruth, SIGNING_FLAGS } from './challenge.ts';

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

function baseUrl(flag: string, value: string): string {
  const url = value.replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s/]+$/.test(url)) throw new UsageError(`--${flag} must look like http://HOST:PORT (got ${JSON.stringify(value)})`);
  return url;
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
    live: flags.live === undefined ? undefined : baseUrl('live', flags.live),
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

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function answers200(url: string, timeoutMs: number): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(Math.max(100, timeoutMs)) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

interface RunOutcome {
  label: string;
  ok: boolean;
  /** Seconds from `docker run` to GET /docs 200. */
  readyS?: number;
  result?: ChallengeResult;
  cause?: string;
  /** The container's last log lines, when it failed. */
  logs?: string;
}

const round = (value: number, digits = 3) => Number(value.toFixed(digits));

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
    if (options.file && !existsSync(options.file))
      throw new MinerError(`the clip ${options.file} does not exist`, {
        hint: 'pass an mp4 on this machine with --file, or --video-url URL',
      });
    if (options.file && !statSync(options.file).isFile())
      throw new MinerError(`${options.file} is not a file`, { hint: 'pass an mp4 file' });
    const truth: GroundTruthEvent[] | undefined = options.truth ? await readTruth(options.truth) : undefined;

    // Everything started here is removed on the way out: normal end, failure, or a signal.
    const name = spotcheckContainerName(process.pid);
    let containerUp = false;
    let launching: Promise<unknown> | undefined;
    let files: FileServer | undefined;
    const cleanUp = async () => {
      await launching?.catch(() => undefined);
      if (containerUp) {
        await dockerProbe(['rm', '-f', name], run);
        containerUp = false;
      }
      const server = files;
      files = undefined;
      await server?.close();
    };
    let interrupted = false;
    /** After a signal the handler cleans up and exits: the main flow must not go on (nor record a FAIL). */
    const stopIfInterrupted = async () => {
      if (interrupted) await new Promise<never>(() => undefined);
    };
    const onSignal = (signal: NodeJS.Signals) => {
      if (interrupted) return;
      interrupted = true;
      err(`interrupted (${signal}): removing the rehearsal's container and file server`);
      void cleanUp().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    try {
      // 1. the image
      const image: SpotcheckImage = options.image ?? (await committedImage(config, env, deps));
      const reference = digestReference(image);
      say(`spot check rehearsal of ${reference}`);
      say(
        `  image    ${options.image ? 'given with --image' : `the commitment revealed in block ${image.block} (tag ${image.tag}), as Score's validator picks it`}`,
      );

      // 2. login + pull by digest
      const host = registryOf(image.repo);
      const { deploy } = config;
      let configuredHost: string | undefined;
      try {
        configuredHost = registryHost(deploy.registry, { dockerhubHost: deploy.dockerhubHost });
      } catch {
        configuredHost = undefined;
      }
      let login = 'anonymously (no registry credentials for this host in the config)';
      if (deploy.username && deploy.token && configuredHost === host) {
        const username = deploy.username.toLowerCase();
        await docker(loginCommand(host, username), { ...run, input: deploy.token });
        login = `as ${username}`;
      }
      const pullStarted = performance.now();
      const pulled = await dockerProbe(['pull', reference], run);
      if (!pulled.ok) throw pullFailure(reference, pulled.output);
      const pullS = (performance.now() - pullStarted) / 1000;
      say(`  pull     ${host} ${login}: ${pullS.toFixed(1)} s`);
      const inspected = await dockerProbe(['image', 'inspect', '--format', '{{.Size}}', reference], run);
      if (!inspected.ok)
        throw new MinerError(`docker image inspect ${reference} failed: ${inspected.output.trim().split('\n').pop()}`, {
          hint: 'the image was pulled a moment ago: check that dockerd is still running (docker info), then rerun the rehearsal',
        });
      const imageBytes = parseImageSize(inspected.stdout);
      // Score fails an oversized image without running it: so does the rehearsal.
      const sizeCause = imageSizeCause(imageBytes, options.maxImageGb);
      say(
        `  size     ${(imageBytes / 1e9).toFixed(2)} GB (limit ${options.maxImageGb} GB${options.gpus ? `; runs with --gpus ${options.gpus}` : ''})`,
      );

      // 3. the challenge: one video, one id, for every answer
      let videoUrl = options.videoUrl as string;
      if (options.file) {
        files = await serveFiles([options.file]);
        videoUrl = files.urlFor(options.file);
      }
      const challengeId = randomUUID().replace(/-/g, '').slice(0, 16);
      say(`  video    ${videoUrl} (challenge_id ${challengeId})`);
      const io = { out: say, err };
      const base: ChallengeOptions = {
        url: '',
        videoUrl,
        scheme: 'none',
        wrap: false,
        challengeId,
        timeoutS: options.timeoutS,
        json: true,
      };

      let live: ChallengeResult | undefined;
      if (options.live && !sizeCause) {
        live = await challenge(
          {
            ...base,
            url: options.live,
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
        if (!live.predictions)
          throw new MinerError(`the live miner ${options.live} gave no answer to compare with: ${live.cause}`, { hint: live.next });
        say(`  live     ${options.live}: ${live.predictions.length} predictions in ${live.wall_s.toFixed(2)} s (scheme ${options.scheme})`);
        if (!live.ok) say(`           warning: ${live.cause}`);
      }

      // 4. the runs, each a fresh container
      const runs = sizeCause ? 0 : runCount(options.repeat, Boolean(options.live || truth));
      const outcomes: RunOutcome[] = [];
      const runOnce = async (label: string): Promise<RunOutcome> => {
        const port = await freePort();
        containerUp = true;
        await dockerProbe(['rm', '-f', name], run);
        const command = spotcheckRunCommand({
          name,
          image: reference,
          port,
          netuid: config.chain.netuid,
          walletName: config.wallet.coldkey,
          hotkeyName: config.wallet.hotkey,
          gpus: options.gpus,
        });
        const launched = docker(command, run);
        launching = launched;
        const runStarted = performance.now();
        const failed = async (cause: string, readyS?: number): Promise<RunOutcome> => {
          const logs = await dockerProbe(['logs', '--tail', '20', name], run);
          await dockerProbe(['rm', '-f', name], run);
          containerUp = false;
          return { label, ok: false, cause, readyS, logs: logs.ok ? logs.output : undefined };
        };
        try {
          await launched;
        } catch (error) {
          return failed(`docker run of the image failed: ${(error as Error).message}`);
        }
        const deadline = runStarted + options.readyTimeoutS * 1000;
        const docs = `http://127.0.0.1:${port}/docs`;
        let readyS: number | undefined;
        for (;;) {
          if (await answers200(docs, Math.min(3000, deadline - performance.now()))) {
            readyS = (performance.now() - runStarted) / 1000;
            break;
          }
          const state = await dockerProbe(['container', 'inspect', '--format', '{{.State.Running}} {{.State.ExitCode}}', name], run);
          if (!state.ok || state.stdout.startsWith('false'))
            return failed(`${label}: the container exited (code ${state.stdout.split(' ')[1] ?? '?'}) before GET /docs answered 200`);
          if (performance.now() >= deadline)
            return failed(
              `${label}: GET /docs did not answer 200 within ${options.readyTimeoutS} s (Score's harness gives up and fails the check)`,
            );
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        const result = await challenge({ ...base, url: `http://127.0.0.1:${port}` }, env, io);
        if (!result.predictions) return failed(`${label}: ${result.cause}`, readyS);
        await dockerProbe(['rm', '-f', name], run);
        containerUp = false;
        return { label, ok: true, readyS, result };
      };
      for (let i = 1; i <= runs; i++) {
        const outcome = await runOnce(`run ${i}`);
        await stopIfInterrupted();
        outcomes.push(outcome);
        if (!outcome.ok) break;
        const r = outcome.result as ChallengeResult;
        say(
          `  ${outcome.label.padEnd(8)} ready in ${outcome.readyS?.toFixed(1)} s (GET /docs 200); ${r.predictions?.length} predictions in ${r.wall_s.toFixed(2)} s`,
        );
        if (!r.ok) say(`           warning: ${r.cause}`);
      }
      await cleanUp();
      await stopIfInterrupted();

      // 5. compare, report, record
      const compared: RehearsalRecord['compared'] = options.live ? 'live' : truth ? 'truth' : 'runs';
      const failedRun = outcomes.find((o) => !o.ok);
      let verdict: Verdict | undefined;
      let cause: string | undefined;
      if (sizeCause) {
        cause = sizeCause;
      } else if (failedRun) {
        cause = failedRun.cause;
      } else {
        const answers: Answer[] = outcomes.map((o) => ({ label: o.label, predictions: o.result?.predictions as Prediction[] }));
        const referenceAnswer: Answer = live
          ? { label: 'live', predictions: live.predictions as Prediction[] }
          : truth
            ? { label: 'truth', predictions: truth.map((t) => ({ frame: t.frame, action: t.action })) }
            : answers[0];
        verdict = compareAnswers(referenceAnswer, referenceAnswer === answers[0] ? answers.slice(1) : answers, truth, {
          confidence: referenceAnswer.label !== 'truth',
        });
        const worst = verdict.pairs.find((p) => !p.pass);
        if (worst)
          cause = `${worst.candidate} scores ${worst.candidateScore.toFixed(4)} where ${worst.reference} scores ${worst.referenceScore.toFixed(4)} (difference ${worst.difference.toFixed(4)} > ${SCORE_TOLERANCE})`;
      }
      const pass = !cause;
      const scores: Record<string, number> = {};
      for (const p of verdict?.pairs ?? []) {
        scores[p.reference] = round(p.referenceScore, 6);
        scores[p.candidate] = round(p.candidateScore, 6);
      }
      const seconds = (performance.now() - started) / 1000;
      const record: RehearsalRecord = {
        digest: image.digest,
        repo: image.repo,
        ...(image.tag ? { tag: image.tag } : {}),
        result: pass ? 'PASS' : 'FAIL',
        compared,
        scores,
        ...(verdict ? { difference: round(verdict.difference, 6) } : {}),
        readySeconds: outcomes.filter((o) => o.readyS !== undefined).map((o) => round(o.readyS as number, 2)),
        ...(cause ? { cause } : {}),
        at: new Date().toISOString(),
        seconds: round(seconds, 1),
      };
      const file = await recordRehearsal(deploy.stateDir, record);

      if (verdict) printScores(verdict, truth !== undefined, say);
      if (pass) {
        const against = compared === 'live' ? 'the live miner' : compared === 'truth' ? 'the ground truth' : 'run 1';
        say(
          `PASS: every run scores within ${SCORE_TOLERANCE} of ${against} (largest difference ${(verdict?.difference ?? 0).toFixed(4)}), in ${seconds.toFixed(1)} s`,
        );
      } else {
        say(`FAIL: ${cause}`);
        if (failedRun?.logs) {
          say('  last log lines of the container:');
          for (const line of failedRun.logs.split('\n')) say(`    ${line}`);
        }
        for (const p of verdict?.pairs.filter((pair) => !pair.pass) ?? []) printDiff(p, say);
        say(`  next: ${sizeCause ? SLIM_IMAGE : nextStep(failedRun, compared)}`);
      }
      say(`recorded in ${file}`);
      if (flags.json) {
        out(
          JSON.stringify({
            result: record.result,
            image: reference,
            repo: image.repo,
            digest: image.digest,
            tag: image.tag ?? null,
            block: image.block ?? null,
            image_bytes: imageBytes,
            gpus: options.gpus ?? null,
            compared,
            tolerance: SCORE_TOLERANCE,
            scores,
            difference: record.difference ?? null,
            cause: cause ?? null,
            live: live ? { url: options.live, wall_s: round(live.wall_s), predictions: live.predictions } : null,
            runs: outcomes.map((o) => ({
              label: o.label,
              ok: o.ok,
              ready_s: o.readyS === undefined ? null : round(o.readyS, 2),
              wall_s: o.result ? round(o.result.wall_s) : null,
              predictions: o.result?.predictions ?? null,
              cause: o.cause ?? null,
            })),
            pairs: (verdict?.pairs ?? []).map((p) => ({
              reference: p.reference,
              candidate: p.candidate,
              reference_score: p.referenceScore,
              candidate_score: p.candidateScore,
              difference: p.difference,
              pass: p.pass,
              diff: p.diff,
            })),
            pull_s: round(pullS, 2),
            seconds: round(seconds, 1),
            recorded: file,
          }),
        );
      }
      return pass ? 0 : 1;
    } finally {
      await stopIfInterrupted();
      await cleanUp();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
});

function printScores(verdict: Verdict, withTruth: boolean, say: (line: string) => void): void {
  if (verdict.pairs.length === 0) return;
  const how = withTruth ? 'against --truth' : `with ${verdict.pairs[0].reference}'s answer as the ground truth`;
  const parts = [`${verdict.pairs[0].reference} ${verdict.pairs[0].referenceScore.toFixed(4)}`];
  for (const p of verdict.pairs) parts.push(`${p.candidate} ${p.candidateScore.toFixed(4)}`);
  say(`  scores   ${parts.join(', ')} (${how})`);
  for (const p of verdict.pairs) {
    if (p.reverse)
      say(
        `           with ${p.candidate}'s answer as the ground truth: ${p.reference} ${p.reverse.referenceScore.toFixed(4)}, ${p.candidate} ${p.reverse.candidateScore.toFixed(4)}`,
      );
    if (p.pass && !isSameAnswer(p.diff)) {
      say(`  note: ${p.candidate}'s predictions differ from ${p.reference}'s, within the tolerance:`);
      for (const line of formatDiff(p.diff)) say(`    ${line}`);
    }
  }
}

function printDiff(pair: PairVerdict, say: (line: string) => void): void {
  const { added, removed, changed } = pair.diff;
  say(
    `  predictions of ${pair.candidate} against ${pair.reference}: ${added.length} added, ${removed.length} removed, ${changed.length} changed, ${pair.diff.same} the same`,
  );
  for (const line of formatDiff(pair.diff)) say(`    ${line}`);
}

const SLIM_IMAGE =
  "slim the image: keep Dockerfile.miner's slim Node base and one model folder, no build tools, caches or datasets in the final stage (docs/deploy.md), rebuild, push and commit";

function nextStep(failedRun: RunOutcome | undefined, compared: RehearsalRecord['compared']): string {
  if (failedRun?.readyS === undefined && failedRun)
    return "the image must come up without a wallet and with VERIFY=false BLACKLIST=false, and answer GET /docs 200 within Score's wait: read the log lines above (a slow model load needs a faster start, not only a longer --ready-timeout)";
  if (failedRun) return 'the image must answer one unsigned POST /challenge validly within 120 s: read the log lines above';
  if (compared === 'runs')
    return 'the image answers the same challenge differently from run to run: make inference deterministic (fixed threads, no random ops, no time-dependent post-processing; see docs/model.md), rebuild, push and commit';
  if (compared === 'live')
    return 'the image does not answer like the live miner: run the committed digest live (tasks/start.ts), or push and commit what runs live; check both run the same model and settings';
  return "the image's answer misses the ground truth: check the model baked into the image (MODEL_SRC) and the truth file, and rehearse with --live against the live miner";
}

runIfEntryPoint(import.meta.url, main);
