/**
 * `npm run bench [-- --model DIR] [-- --json]`: where the time of one challenge goes, measured in one run
 * (these machines are noisy: compare ratios from the same run, not numbers across runs).
 *
 * For generated 30 s 25 fps H.264 clips at 1280x720 and 1920x1080 (the bundled ffmpeg, cached in the temp
 * folder) and the model in DIR (default models/default), against the real server (`node server/main.ts`, one
 * process per clip size, security off, DOWNLOAD_ALLOW_PRIVATE=true) on 127.0.0.1:
 *   decode alone      the miner's own ffmpeg command (ffmpegDecodeArgs, the model's decode spec) to /dev/null
 *   inference alone   the model (loaded in this process) over pre-decoded windows, as many as the clip needs
 *   challenge         POST /challenge, the video served at full loopback speed
 *   ratios            challenge / (decode + inference) and challenge / max(decode, inference): 1.0 on the
 *                     second means decode and inference fully overlap
 *   floor             the CPU time of decode alone (ffmpeg's) and of inference alone (this process's), and
 *                     the least time any overlap can take on this machine: the model cannot start before its
 *                     first window is decoded (first = decode x T / frames), then the rest takes at least
 *                     max(rest of decode, inference, (rest of decode CPU + inference CPU) / cores). When both
 *                     stages alone keep every core busy, no overlap beats the CPU they need together
 *   challenge CPU     the server's CPU time (/proc/<pid>/stat: its threads, and its ffmpeg once reaped) during
 *                     each challenge, and what the ratio would be with every core busy for that long
 *   at --mbit (50)    a loopback file server that paces its writes: download-then-decode (the whole file to
 *                     disk, then ffmpeg on it) against the miner's own decode while downloading (VideoSource,
 *                     windows read and dropped), and a challenge whose video_url is the paced URL; the
 *                     download alone is the floor there
 *   /health           p50/p99 latency, probed every 20 ms while a challenge runs
 *   peak RSS          the server process's VmHWM (/proc/<pid>/status; ffmpeg is its own process)
 *   start-up          spawn to the first GET /docs = 200 (Score's spot-check readiness probe)
 *   flood             (the 720p clip, --scenario flood) a genuine signed challenge and /health probes from
 *                     127.0.0.1, against a server with request verification on and the default per-address
 *                     limits, while --flood-rps (1000) forged requests a second arrive (bench/flood.ts: 8 KiB
 *                     bodies, the validator's hotkey claimed, another key's signature, fresh nonces) from
 *                     127.0.0.2 alone, then spread over 127.0.0.2-127.0.0.9; against the same without them
 * BENCH_RUNS (default 5) repeats decode, inference and challenge, interleaved (medians), and each flood
 * variant; the rest run once. The challenge deadline is lifted (CHALLENGE_DEADLINE_S=600 unless set) so the
 * whole clip is measured.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs, promisify } from 'node:util';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { loadConfig, PROJECT_ROOT } from '../lib/core/config.ts';
import { describeError } from '../lib/core/errors.ts';
import { glibcVersion, hugePagesStatus, MALLOC_HUGE_PAGES, transparentHugePages } from '../lib/core/memory.ts';
import type { ModelManifest } from '../lib/inference/manifest.ts';
import { loadModel, type Model } from '../lib/inference/model.ts';
import { decodeSpecOf } from '../lib/inference/pipeline.ts';
import { signRequest } from '../lib/protocol/signature.ts';
import { resolveFfmpeg } from '../lib/video/ffmpeg.ts';
import { type DecodeSpec, ffmpegDecodeArgs, frameBytes } from '../lib/video/frames.ts';
import { makeSyntheticClip } from '../lib/video/synthetic.ts';
import { createJobDir, removeJobDir } from '../lib/video/tempdir.ts';
import { type DecodedFrom, VideoSource } from '../lib/video/video-source.ts';
import { startMinerProcess } from '../scripts/miner-process.ts';
import { serveClips } from './clip-server.ts';
import { type FloodReport, startFlood } from './flood.ts';

const USAGE = `usage: node bench/challenge.bench.ts [--model DIR] [--mbit N] [--faststart] [--scenario S] [--flood-rps N] [--json]
  --model DIR      model folder (model.onnx + model.json), default models/default
  --mbit N         bandwidth of the paced file server in Mbit/s, default 50
  --faststart      clips with their mp4 index (moov) at the front, as web servers serve mp4 for streaming
                   (default: at the end, ffmpeg's default: the miner can decode only once the file is complete)
  --scenario S     clips (decode, inference, challenge, paced, /health per clip size), flood (a challenge under
                   forged requests), or all (default)
  --flood-rps N    forged requests per second in the flood scenario, default 1000
  --json           print the results as JSON on stdout (progress and server logs go to stderr)
  BENCH_RUNS       repetitions of decode / inference / challenge and of each flood variant (default 5)`;

const SCENARIOS = ['clips', 'flood', 'all'] as const;

const CLIPS = [
  { label: '720p', width: 1280, height: 720 },
  { label: '1080p', width: 1920, height: 1080 },
] as const;
const CLIP_SECONDS = 30;
const CLIP_FPS = 25;
/** Bounds: nothing the bench waits for may hang it. */
const FFMPEG_TIMEOUT_MS = 300_000;
const CHALLENGE_TIMEOUT_MS = 600_000;
const PROBE_TIMEOUT_MS = 5_000;
const PROBE_INTERVAL_MS = 20;
/** /proc's clock tick (USER_HZ): 100 per second on Linux. */
const CLOCK_TICK_MS = 10;
/** The validator's budget per challenge. */
const BUDGET_S = 30;

const runFile = promisify(execFile);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.max(0, Math.ceil((p / 100) * xs.length) - 1))];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/**
 * CPU time (user + system, ms) from /proc/<pid>/stat: the process's own (all its threads) and its waited-for
 * children's (cutime + cstime; the server's ffmpeg runs count once reaped, which happens before it answers).
 */
async function processCpuMs(pid: number | 'self'): Promise<{ own: number; children: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    own: (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS,
    children: (Number(fields[13]) + Number(fields[14])) * CLOCK_TICK_MS,
  };
}

/** This process's CPU time (user + system, ms), all its threads (onnxruntime's included). */
function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * The least time decode and inference can take together, however well they overlap: the model waits for its
 * first window (that share of the decode runs alone), then the rest is bound by the longer stage and by the
 * CPU time both need over the cores there are.
 */
function overlapFloorMs(m: {
  decodeMs: number;
  inferenceMs: number;
  decodeCpuMs: number;
  inferenceCpuMs: number;
  firstWindowShare: number;
  cores: number;
}): number {
  const first = m.decodeMs * m.firstWindowShare;
  const restDecodeCpu = m.decodeCpuMs * (1 - m.firstWindowShare);
  return first + Math.max(m.decodeMs - first, m.inferenceMs, (restDecodeCpu + m.inferenceCpuMs) / m.cores);
}

async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

/** Where the mp4's index (moov) sits: at the end, a streaming reader must fetch the tail before any frame. */
async function moovPosition(file: string): Promise<'front' | 'end' | 'unknown'> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const header = Buffer.alloc(16);
    let offset = 0;
    while (offset + 8 <= size) {
      await handle.read(header, 0, 16, offset);
      let boxSize = header.readUInt32BE(0);
      const type = header.toString('latin1', 4, 8);
      if (type === 'moov') return 'front';
      if (type === 'mdat') return 'end';
      if (boxSize === 1) boxSize = Number(header.readBigUInt64BE(8));
      if (boxSize < 8) return 'unknown';
      offset += boxSize;
    }
    return 'unknown';
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------------------

/** What the bench's own ffmpeg runs need of the model's decode spec (no windows). */
type FrameSpec = Pick<DecodeSpec, 'fps' | 'width' | 'height' | 'colour' | 'resize'>;

/** The whole clip as raw model-sized frames, through the miner's own ffmpeg command (stdout pipe). */
async function decodeToMemory(ffmpegPath: string, input: string, spec: FrameSpec): Promise<Uint8Array> {
  const child = spawn(ffmpegPath, ffmpegDecodeArgs(input, spec, 'pipe'), { stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), FFMPEG_TIMEOUT_MS);
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr = (stderr + t).slice(-4000)));
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`ffmpeg decode of ${input} failed (${code}): ${stderr.trim()}`);
  return new Uint8Array(Buffer.concat(chunks));
}

/**
 * The windows the pipeline runs for `frames` frames: starts 0, S, 2S, ... until one reaches the end; the last
 * may be partial (padded by repeating its last real frame), as lib/video/frames.ts does today.
 */
function windowsOf(all: Uint8Array, size: number, T: number, S: number): Uint8Array[] {
  const n = all.length / size;
  const out: Uint8Array[] = [];
  for (let s = 0; ; s += S) {
    const w = new Uint8Array(T * size);
    const valid = Math.min(T, n - s);
    w.set(all.subarray(s * size, (s + valid) * size));
    for (let f = valid; f < T; f++) w.copyWithin(f * size, (valid - 1) * size, valid * size);
    out.push(w);
    if (s + T >= n) break;
  }
  return out;
}

async function ffmpegToNull(ffmpegPath: string, input: string, spec: FrameSpec): Promise<void> {
  await runFile(ffmpegPath, ffmpegDecodeArgs(input, spec, 'null'), { timeout: FFMPEG_TIMEOUT_MS, maxBuffer: 1 << 20 });
}

/**
 * The miner's own decode while downloading (lib/video/video-source.ts, as a challenge runs it: the download,
 * a Range request for a trailing index, ffmpeg fed as the bytes arrive), every window read and dropped.
 */
async function minerDecodeWhileDownloading(url: string, ffmpegPath: string, manifest: ModelManifest): Promise<DecodedFrom> {
  const dir = await createJobDir();
  try {
    const source = new VideoSource(url, {
      download: { timeoutMs: FFMPEG_TIMEOUT_MS, maxBytes: 2 ** 32, maxRedirects: 0, allowPrivate: true },
      ffmpegPath,
      spec: decodeSpecOf(manifest),
      windowsAhead: 2,
      dir,
      signal: AbortSignal.timeout(FFMPEG_TIMEOUT_MS),
    });
    for await (const _ of source.windows());
    return source.decodedFrom;
  } finally {
    await removeJobDir(dir);
  }
}

interface ChallengeReply {
  processing_time: number;
  predictions: unknown[];
}

async function postChallenge(minerUrl: string, videoUrl: string, id: string, signer?: KeyringPair): Promise<ChallengeReply> {
  const body = JSON.stringify({ challenge_id: id, video_url: videoUrl, frames: null });
  const response = await fetch(`${minerUrl}/challenge`, {
    method: 'POST',
    // Signed as Score's central validator signs, when the server verifies.
    headers: { 'content-type': 'application/json', ...(signer ? signRequest(signer, 'central', body) : {}) },
    body,
    signal: AbortSignal.timeout(CHALLENGE_TIMEOUT_MS),
  });
  if (!response.ok) throw new Error(`POST /challenge answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as ChallengeReply;
}

interface ClipResult {
  clip: string;
  width: number;
  height: number;
  fileBytes: number;
  moov: string;
  modelFrames: number;
  windows: number;
  decodeMs: number[];
  inferenceMs: number[];
  /** CPU time of each decode alone (ffmpeg) and inference alone (onnxruntime and the packing), ms. */
  decodeCpuMs: number[];
  inferenceCpuMs: number[];
  challengeMs: number[];
  processingTimeS: number[];
  predictions: number;
  decodeMedianMs: number;
  inferenceMedianMs: number;
  challengeMedianMs: number;
  challengeOverSum: number;
  challengeOverMax: number;
  decodeCpuMedianMs: number;
  inferenceCpuMedianMs: number;
  /** CPU time of each challenge: the server process (HTTP thread, inference worker, onnxruntime) and its ffmpeg. */
  challengeServerCpuMs: number[];
  challengeFfmpegCpuMs: number[];
  /** Median of their sums. */
  challengeCpuMedianMs: number;
  cores: number;
  /** The least time any overlap of the two can take here (see the header). */
  floorMs: number;
  throttled: {
    mbit: number;
    downloadMs: number;
    decodeAfterDownloadMs: number;
    downloadThenDecodeMs: number;
    streamedDecodeMs: number;
    /** Where the miner's decode read the bytes: the download itself, or the loopback range server (index at the end). */
    streamedFrom: DecodedFrom;
    /** Bytes the miner's decode fetched from the paced URL (a trailing index comes by a range request). */
    streamedBytes: number;
    streamedOverDownloadThenDecode: number;
    challengeMs: number;
    /** Bytes the server fetched for the paced challenge. */
    challengeBytes: number;
  };
  health: { probes: number; p50Ms: number; p99Ms: number; maxMs: number };
  peakRssMb: number;
  startupMs: number;
}

async function benchClip(
  clip: (typeof CLIPS)[number],
  file: string,
  ctx: { ffmpegPath: string; model: Model; modelDir: string; runs: number; mbit: number; work: string },
): Promise<ClipResult> {
  const { ffmpegPath, model, runs, mbit } = ctx;
  const { timing } = model.manifest;
  const spec = decodeSpecOf(model.manifest);
  const size = frameBytes(spec);
  progress(`${clip.label}: pre-decoding the windows for "inference alone"`);
  const all = await decodeToMemory(ffmpegPath, file, spec);
  const windows = windowsOf(all, size, timing.clipFrames, timing.strideFrames);
  const inferAll = async () => {
    for (const w of windows) await model.inferClip(w);
  };

  const server = await serveClips([file], (mbit * 1e6) / 8);
  progress(`${clip.label}: starting the server`);
  const miner = await startMinerProcess(
    {
      MODEL_DIR: ctx.modelDir,
      DOWNLOAD_ALLOW_PRIVATE: 'true',
      VERIFY_ENABLED: 'false',
      BLACKLIST_ENABLED: 'false',
      CHALLENGE_DEADLINE_S: process.env.CHALLENGE_DEADLINE_S ?? '600',
      // Malloc as in this process (inference alone runs here): the two sides compare like for like.
      GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? 'glibc.malloc.hugetlb=0',
      // /health is probed every 20 ms from one address: the per-address rate limit is the flood scenario's subject.
      RATE_LIMIT_PER_S: '0',
    },
    300_000,
    { stdout: 'stderr', pollMs: 10 },
  );
  try {
    await ffmpegToNull(ffmpegPath, file, spec); // page cache warm, not measured
    const decodeMs: number[] = [];
    const inferenceMs: number[] = [];
    const decodeCpuMs: number[] = [];
    const inferenceCpuMs: number[] = [];
    const challengeMs: number[] = [];
    const challengeServerCpuMs: number[] = [];
    const challengeFfmpegCpuMs: number[] = [];
    const processingTimeS: number[] = [];
    let predictions = 0;
    for (let i = 0; i < runs; i++) {
      // Interleaved so all three see the same machine load.
      progress(`${clip.label}: run ${i + 1}/${runs}`);
      const childCpu0 = (await processCpuMs('self')).children;
      decodeMs.push((await timed(() => ffmpegToNull(ffmpegPath, file, spec))).ms);
      decodeCpuMs.push((await processCpuMs('self')).children - childCpu0);
      const ownCpu0 = ownCpuMs();
      inferenceMs.push((await timed(inferAll)).ms);
      inferenceCpuMs.push(ownCpuMs() - ownCpu0);
      const serverCpu0 = await processCpuMs(miner.pid);
      const c = await timed(() => postChallenge(miner.url, server.url(file, false), `bench-${clip.label}-${i}`));
      const serverCpu1 = await processCpuMs(miner.pid);
      challengeMs.push(c.ms);
      challengeServerCpuMs.push(serverCpu1.own - serverCpu0.own);
      challengeFfmpegCpuMs.push(serverCpu1.children - serverCpu0.children);
      processingTimeS.push(c.value.processing_time);
      predictions = c.value.predictions.length;
    }

    // One more challenge with /health probed every 20 ms, kept out of the medians so probes don't inflate them.
    progress(`${clip.label}: /health during a challenge`);
    const healthMs: number[] = [];
    let running = true;
    const probe = (async () => {
      while (running) {
        const t = await timed(() => fetch(`${miner.url}/health`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) }).then((r) => r.json()));
        healthMs.push(t.ms);
        await sleep(PROBE_INTERVAL_MS);
      }
    })();
    try {
      await postChallenge(miner.url, server.url(file, false), `bench-${clip.label}-health`);
    } finally {
      running = false;
      await probe;
    }

    progress(`${clip.label}: paced at ${mbit} Mbit/s`);
    const saved = path.join(ctx.work, `download-${clip.label}.mp4`);
    const download = await timed(async () => {
      const response = await fetch(server.url(file, true), { signal: AbortSignal.timeout(FFMPEG_TIMEOUT_MS) });
      if (!response.ok || !response.body) throw new Error(`paced download answered ${response.status}`);
      await pipeline(Readable.fromWeb(response.body), createWriteStream(saved));
    });
    const decodeAfter = await timed(() => ffmpegToNull(ffmpegPath, saved, spec));
    await rm(saved, { force: true });
    const bytes0 = server.pacedBytes();
    const streamed = await timed(() => minerDecodeWhileDownloading(server.url(file, true), ffmpegPath, model.manifest));
    const bytes1 = server.pacedBytes();
    const pacedChallenge = await timed(() => postChallenge(miner.url, server.url(file, true), `bench-${clip.label}-paced`));
    const bytes2 = server.pacedBytes();

    const decodeMedianMs = median(decodeMs);
    const inferenceMedianMs = median(inferenceMs);
    const challengeMedianMs = median(challengeMs);
    const downloadThenDecodeMs = download.ms + decodeAfter.ms;
    const decodeCpuMedianMs = median(decodeCpuMs);
    const inferenceCpuMedianMs = median(inferenceCpuMs);
    const cores = os.availableParallelism();
    return {
      clip: `${CLIP_SECONDS} s ${clip.width}x${clip.height} ${CLIP_FPS} fps H.264`,
      width: clip.width,
      height: clip.height,
      fileBytes: (await stat(file)).size,
      moov: await moovPosition(file),
      modelFrames: all.length / size,
      windows: windows.length,
      decodeMs,
      inferenceMs,
      challengeMs,
      processingTimeS,
      predictions,
      decodeMedianMs,
      inferenceMedianMs,
      challengeMedianMs,
      challengeOverSum: challengeMedianMs / (decodeMedianMs + inferenceMedianMs),
      challengeOverMax: challengeMedianMs / Math.max(decodeMedianMs, inferenceMedianMs),
      decodeCpuMs,
      inferenceCpuMs,
      decodeCpuMedianMs,
      inferenceCpuMedianMs,
      challengeServerCpuMs,
      challengeFfmpegCpuMs,
      challengeCpuMedianMs: median(challengeServerCpuMs.map((ms, k) => ms + challengeFfmpegCpuMs[k])),
      cores,
      floorMs: overlapFloorMs({
        decodeMs: decodeMedianMs,
        inferenceMs: inferenceMedianMs,
        decodeCpuMs: decodeCpuMedianMs,
        inferenceCpuMs: inferenceCpuMedianMs,
        firstWindowShare: Math.min(1, timing.clipFrames / (all.length / size)),
        cores,
      }),
      throttled: {
        mbit,
        downloadMs: download.ms,
        decodeAfterDownloadMs: decodeAfter.ms,
        downloadThenDecodeMs,
        streamedDecodeMs: streamed.ms,
        streamedFrom: streamed.value,
        streamedBytes: bytes1 - bytes0,
        streamedOverDownloadThenDecode: streamed.ms / downloadThenDecodeMs,
        challengeMs: pacedChallenge.ms,
        challengeBytes: bytes2 - bytes1,
      },
      health: {
        probes: healthMs.length,
        p50Ms: percentile(healthMs, 50),
        p99Ms: percentile(healthMs, 99),
        maxMs: Math.max(...healthMs),
      },
      peakRssMb: await peakRssMb(miner.pid),
      startupMs: miner.readyMs,
    };
  } finally {
    await miner.stop();
    await server.close();
  }
}

// ---------------------------------------------------------------------------------------------------------

/** Where the forged requests come from: nowhere (the baseline), one loopback address, eight. */
const FLOOD_VARIANTS = [
  { label: 'no flood', addresses: [] as string[] },
  { label: 'flood from 127.0.0.2', addresses: ['127.0.0.2'] },
  { label: 'flood from 127.0.0.2-9', addresses: Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`) },
] as const;
/** 4 a second: with the challenge itself, inside the default RATE_LIMIT_PER_S (5) of the probes' address. */
const FLOOD_PROBE_INTERVAL_MS = 250;
/** The flood runs this long before the challenge is sent, so the challenge meets it in its steady state. */
const FLOOD_WARMUP_MS = 1000;
/** Bounds: no flood outlives this, whatever happens to the challenge. */
const FLOOD_MAX_S = 120;
const FLOOD_BODY_BYTES = 8 * 1024;
const FLOOD_CONNECTIONS_PER_ADDRESS = 4;

interface FloodVariantResult {
  label: string;
  addresses: string[];
  challengeMs: number[];
  challengeMedianMs: number;
  /** Median challenge over the no-flood median of the same run. */
  overBaseline: number;
  /** The server's CPU time (its threads and its ffmpeg) during each challenge. */
  serverCpuMs: number[];
  health: { probes: number; p50Ms: number; p99Ms: number; maxMs: number; refused: number; unanswered: number };
  /** The flood's own counts, summed over the runs. */
  flood?: FloodReport;
}

interface FloodResult {
  clip: string;
  rps: number;
  bodyBytes: number;
  /** The server's per-address limits: its defaults unless the environment sets them. */
  limits: { connectionsPerAddress: number; requestsPerSecond: number; requestBurst: number };
  variants: FloodVariantResult[];
}

function sumReports(reports: FloodReport[]): FloodReport | undefined {
  if (reports.length === 0) return undefined;
  const answers: Record<string, number> = {};
  for (const report of reports) for (const [status, n] of Object.entries(report.answers)) answers[status] = (answers[status] ?? 0) + n;
  const sum = (pick: (r: FloodReport) => number) => reports.reduce((total, r) => total + pick(r), 0);
  return {
    seconds: sum((r) => r.seconds),
    sent: sum((r) => r.sent),
    skipped: sum((r) => r.skipped),
    reconnects: sum((r) => r.reconnects),
    answers,
  };
}

/**
 * A genuine challenge while forged requests arrive, against the same challenge without them: the server has
 * request verification on (BLACKLIST off: the stake gate only looks the claimed hotkey up, so a forgery claiming
 * a staked hotkey costs what it costs here) and its default per-address limits.
 */
async function benchFlood(file: string, ctx: { modelDir: string; runs: number; rps: number }): Promise<FloodResult> {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  const validator = keyring.addFromUri('//Alice');
  const minerKey = keyring.addFromUri('//Dave');
  const server = await serveClips([file], 1e9);
  progress('flood: starting the server (VERIFY_ENABLED=true)');
  const serverEnv = {
    MODEL_DIR: ctx.modelDir,
    DOWNLOAD_ALLOW_PRIVATE: 'true',
    VERIFY_ENABLED: 'true',
    BLACKLIST_ENABLED: 'false',
    MINER_HOTKEY_SS58: minerKey.address,
    CHALLENGE_DEADLINE_S: process.env.CHALLENGE_DEADLINE_S ?? '600',
    GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? 'glibc.malloc.hugetlb=0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
  };
  const { server: limits } = loadConfig({ ...process.env, ...serverEnv });
  const miner = await startMinerProcess(serverEnv, 300_000, { stdout: 'stderr', pollMs: 10 });
  const results = FLOOD_VARIANTS.map((variant) => ({
    variant,
    challengeMs: [] as number[],
    serverCpuMs: [] as number[],
    healthMs: [] as number[],
    refused: 0,
    unanswered: 0,
    reports: [] as FloodReport[],
  }));
  try {
    await postChallenge(miner.url, server.url(file, false), 'flood-warmup', validator); // caches warm, not measured
    for (let i = 0; i < ctx.runs; i++) {
      for (const result of results) {
        const { label, addresses } = result.variant;
        progress(`flood: run ${i + 1}/${ctx.runs}, ${label}`);
        const flood =
          addresses.length === 0
            ? undefined
            : await startFlood({
                port: Number(new URL(miner.url).port),
                addresses: [...addresses],
                rps: ctx.rps,
                connectionsPerAddress: FLOOD_CONNECTIONS_PER_ADDRESS,
                claimedHotkey: validator.address,
                bodyBytes: FLOOD_BODY_BYTES,
                maxSeconds: FLOOD_MAX_S,
              });
        try {
          await sleep(FLOOD_WARMUP_MS);
          let probing = true;
          const probe = (async () => {
            while (probing) {
              // A probe that is refused (429) or gets no answer within PROBE_TIMEOUT_MS is counted, not timed.
              const t = await timed(() =>
                fetch(`${miner.url}/health`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) }).then(
                  async (response) => {
                    await response.arrayBuffer();
                    return response.status;
                  },
                  () => 0,
                ),
              );
              if (t.value === 200) result.healthMs.push(t.ms);
              else if (t.value === 0) result.unanswered++;
              else result.refused++;
              await sleep(FLOOD_PROBE_INTERVAL_MS);
            }
          })();
          try {
            const cpu0 = await processCpuMs(miner.pid);
            // A body of its own each time: the server answers a repeated body from its answer cache.
            const id = `flood-${i}-${result.variant.addresses.length}-${Date.now()}`;
            const c = await timed(() => postChallenge(miner.url, server.url(file, false), id, validator));
            const cpu1 = await processCpuMs(miner.pid);
            result.challengeMs.push(c.ms);
            result.serverCpuMs.push(cpu1.own + cpu1.children - cpu0.own - cpu0.children);
          } finally {
            probing = false;
            await probe;
          }
        } finally {
          const report = await flood?.stop();
          if (report) result.reports.push(report);
        }
        await sleep(500); // what the server still had queued from the flood drains before the next variant
      }
    }
  } finally {
    await miner.stop();
    await server.close();
  }
  const baseline = median(results[0].challengeMs);
  return {
    clip: path.basename(file),
    rps: ctx.rps,
    bodyBytes: FLOOD_BODY_BYTES,
    limits: {
      connectionsPerAddress: limits.connectionsPerAddress,
      requestsPerSecond: limits.requestsPerSecond,
      requestBurst: limits.requestBurst,
    },
    variants: results.map((r) => ({
      label: r.variant.label,
      addresses: [...r.variant.addresses],
      challengeMs: r.challengeMs,
      challengeMedianMs: median(r.challengeMs),
      overBaseline: median(r.challengeMs) / baseline,
      serverCpuMs: r.serverCpuMs,
      health: {
        probes: r.healthMs.length,
        p50Ms: percentile(r.healthMs, 50),
        p99Ms: percentile(r.healthMs, 99),
        maxMs: Math.max(...r.healthMs),
        refused: r.refused,
        unanswered: r.unanswered,
      },
      flood: sumReports(r.reports),
    })),
  };
}

function floodTable(result: FloodResult): Array<Record<string, string>> {
  const row = (measure: string, value: (v: FloodVariantResult) => string, target = '') => {
    const out: Record<string, string> = { measure };
    for (const v of result.variants) out[v.label] = value(v);
    out.target = target;
    return out;
  };
  const answers = (v: FloodVariantResult) =>
    v.flood
      ? Object.entries(v.flood.answers)
          .map(([status, n]) => `${n} x ${status}`)
          .join(', ')
      : '—';
  return [
    row('challenge (median)', (v) => s(v.challengeMedianMs)),
    row('challenge / no flood', (v) => v.overBaseline.toFixed(2), '<= 1.2'),
    row('server CPU in the challenge (median)', (v) => s(median(v.serverCpuMs))),
    row(
      '/health p50 / p99 (max)',
      (v) =>
        `${v.health.p50Ms.toFixed(1)} / ${v.health.p99Ms.toFixed(1)} (${v.health.maxMs.toFixed(1)}) ms, ${v.health.probes} probes` +
        (v.health.refused ? `, ${v.health.refused} refused` : '') +
        (v.health.unanswered ? `, ${v.health.unanswered} unanswered in ${PROBE_TIMEOUT_MS / 1000} s` : ''),
      'p99 < 50 ms',
    ),
    row('forged requests sent (per second)', (v) => (v.flood ? `${v.flood.sent} (${(v.flood.sent / v.flood.seconds).toFixed(0)}/s)` : '—')),
    row('their answers', answers),
    row('skipped (backlog) / reconnects', (v) => (v.flood ? `${v.flood.skipped} / ${v.flood.reconnects}` : '—')),
  ];
}

async function ensureClip(ffmpegPath: string, clip: (typeof CLIPS)[number], faststart: boolean): Promise<string> {
  const file = path.join(os.tmpdir(), `score-miner-bench-${CLIP_SECONDS}s-${clip.label}${faststart ? '-faststart' : ''}.mp4`);
  if (!existsSync(file)) {
    progress(`rendering the ${CLIP_SECONDS} s ${clip.width}x${clip.height} clip (once; cached in the temp folder)`);
    const partial = `${file}.part.mp4`; // renamed when complete, so an interrupted render is never reused
    await makeSyntheticClip(ffmpegPath, { width: clip.width, height: clip.height, fps: CLIP_FPS, seconds: CLIP_SECONDS }, partial);
    if (faststart) {
      // The same stream with its index moved to the front, as web servers usually serve mp4 for streaming.
      const moved = `${file}.faststart.mp4`;
      await runFile(ffmpegPath, ['-y', '-loglevel', 'error', '-i', partial, '-c', 'copy', '-movflags', '+faststart', moved]);
      await rename(moved, partial);
    }
    await rename(partial, file);
  }
  return file;
}

const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`;

function table(results: ClipResult[]): Array<Record<string, string>> {
  const row = (measure: string, value: (r: ClipResult) => string, target = '') => {
    const out: Record<string, string> = { measure };
    for (const r of results) out[`${r.width}x${r.height}`] = value(r);
    out.target = target;
    return out;
  };
  const mbit = results[0].throttled.mbit;
  return [
    row('clip file', (r) => `${(r.fileBytes / 1e6).toFixed(1)} MB, moov at ${r.moov}`),
    row('model frames / windows', (r) => `${r.modelFrames} / ${r.windows}`),
    row('decode alone (median)', (r) => s(r.decodeMedianMs)),
    row('inference alone (median)', (r) => `${s(r.inferenceMedianMs)} (${(r.inferenceMedianMs / r.windows).toFixed(1)} ms/window)`),
    row('decode + inference', (r) => s(r.decodeMedianMs + r.inferenceMedianMs)),
    row('challenge (median)', (r) => `${s(r.challengeMedianMs)} (${r.predictions} predictions)`, `< ${BUDGET_S} s`),
    row('challenge / (decode + inference)', (r) => r.challengeOverSum.toFixed(2), '< 1 = overlap'),
    row('challenge / max(decode, inference)', (r) => r.challengeOverMax.toFixed(2), '1.0 = full overlap'),
    row(
      'CPU time: decode / inference alone',
      (r) =>
        `${s(r.decodeCpuMedianMs)} / ${s(r.inferenceCpuMedianMs)} (${(r.decodeCpuMedianMs / r.decodeMedianMs).toFixed(2)} / ${(r.inferenceCpuMedianMs / r.inferenceMedianMs).toFixed(2)} of ${r.cores} cores busy)`,
    ),
    row('floor: first window, then max(decode, inference, CPU / cores)', (r) => s(r.floorMs), 'no overlap is faster'),
    row('floor / (decode + inference)', (r) => (r.floorMs / (r.decodeMedianMs + r.inferenceMedianMs)).toFixed(2), 'best ratio reachable'),
    row('challenge / floor', (r) => (r.challengeMedianMs / r.floorMs).toFixed(2), '1.0 = at the floor'),
    row(
      'CPU time in the challenge: server / its ffmpeg',
      (r) =>
        `${s(median(r.challengeServerCpuMs))} / ${s(median(r.challengeFfmpegCpuMs))} (${((100 * r.challengeCpuMedianMs) / (r.cores * r.challengeMedianMs)).toFixed(0)}% of ${r.cores} cores)`,
    ),
    row(
      'challenge CPU / cores / (decode + inference)',
      (r) => (r.challengeCpuMedianMs / r.cores / (r.decodeMedianMs + r.inferenceMedianMs)).toFixed(2),
      'the ratio with every core busy',
    ),
    row(
      `@${mbit} Mbit/s download then decode`,
      (r) => `${s(r.throttled.downloadThenDecodeMs)} (${s(r.throttled.downloadMs)} + ${s(r.throttled.decodeAfterDownloadMs)})`,
    ),
    row(
      `@${mbit} Mbit/s floor: the download alone`,
      (r) => `${s(r.throttled.downloadMs)} (x${(r.throttled.downloadMs / r.throttled.downloadThenDecodeMs).toFixed(2)})`,
      'no decode ends before its last byte',
    ),
    row(
      `@${mbit} Mbit/s the miner's decode while downloading`,
      (r) =>
        `${s(r.throttled.streamedDecodeMs)} (x${r.throttled.streamedOverDownloadThenDecode.toFixed(2)}, ${(r.throttled.streamedBytes / 1e6).toFixed(1)} MB fetched, from ${r.throttled.streamedFrom})`,
      `<= x0.6`,
    ),
    row(
      `@${mbit} Mbit/s challenge`,
      (r) => `${s(r.throttled.challengeMs)} (${(r.throttled.challengeBytes / 1e6).toFixed(1)} MB fetched)`,
      `< ${BUDGET_S} s`,
    ),
    row(
      '/health p50 / p99 during challenge',
      (r) => `${r.health.p50Ms.toFixed(1)} / ${r.health.p99Ms.toFixed(1)} ms (${r.health.probes} probes)`,
      'p99 < 50 ms',
    ),
    row('server peak RSS (VmHWM)', (r) => `${r.peakRssMb.toFixed(0)} MB`),
    row('start-up to /docs 200', (r) => s(r.startupMs)),
  ];
}

function parse() {
  return parseArgs({
    options: {
      model: { type: 'string' },
      mbit: { type: 'string' },
      faststart: { type: 'boolean' },
      scenario: { type: 'string' },
      'flood-rps': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
}

async function main(): Promise<void> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const runs = Number(process.env.BENCH_RUNS ?? 5);
  const mbit = Number(args.values.mbit ?? 50);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new Error(`BENCH_RUNS=${process.env.BENCH_RUNS}: expected 1 to 100`);
  if (!Number.isFinite(mbit) || mbit <= 0 || mbit > 100_000) throw new Error(`--mbit ${args.values.mbit}: expected a positive number`);
  const scenario = (args.values.scenario ?? 'all') as (typeof SCENARIOS)[number];
  if (!SCENARIOS.includes(scenario)) throw new Error(`--scenario ${args.values.scenario}: expected ${SCENARIOS.join(', ')}`);
  const floodRps = Number(args.values['flood-rps'] ?? 1000);
  if (!Number.isInteger(floodRps) || floodRps < 1 || floodRps > 20_000)
    throw new Error(`--flood-rps ${args.values['flood-rps']}: expected 1 to 20000`);
  const modelDir = path.resolve(args.values.model ?? path.join(PROJECT_ROOT, 'models', 'default'));
  // The same onnxruntime settings (ORT_*) as the server the bench starts, which inherits this environment.
  const settings = { ...loadConfig(process.env).model, dir: modelDir };
  const { threads } = settings;

  const ffmpeg = resolveFfmpeg(process.env.FFMPEG_PATH);
  // The bench's own inference alone runs as the server does (startMinerProcess gives the server the same).
  const hugePages = hugePagesStatus(process.env.GLIBC_TUNABLES, transparentHugePages(), glibcVersion()).malloc_huge_pages;
  if (hugePages === 'off')
    console.error(`malloc huge pages are off here: run \`npm run bench\` (it sets GLIBC_TUNABLES=${MALLOC_HUGE_PAGES})`);
  const faststart = args.values.faststart === true;
  let model: Model | undefined;
  const results: ClipResult[] = [];
  let flood: FloodResult | undefined;
  if (scenario !== 'flood') {
    model = await loadModel(modelDir, settings);
    const work = await mkdtemp(path.join(os.tmpdir(), 'score-miner-bench-'));
    try {
      await model.warmup();
      for (const clip of CLIPS) {
        const file = await ensureClip(ffmpeg.path, clip, faststart);
        results.push(await benchClip(clip, file, { ffmpegPath: ffmpeg.path, model, modelDir, runs, mbit, work }));
      }
    } finally {
      await model.release();
      await rm(work, { recursive: true, force: true });
    }
  }
  if (scenario !== 'clips') flood = await benchFlood(await ensureClip(ffmpeg.path, CLIPS[0], faststart), { modelDir, runs, rps: floodRps });

  const m = model?.manifest;
  const modelLine = m
    ? `${m.name} ${m.version}: ${m.input.dtype} ${m.input.layout} T=${m.timing.clipFrames} stride ${m.timing.strideFrames}, ${m.input.width}x${m.input.height} ${m.input.colour} @ ${m.timing.fps} fps (${modelDir})`
    : modelDir;
  if (args.values.json) {
    const info = {
      runs,
      cores: os.cpus().length,
      ffmpeg: ffmpeg.version,
      ortThreads: threads,
      graphOptimization: settings.graphOptimization,
      mallocHugePages: hugePages,
      providers: model?.providers,
      mbit,
      scenario,
    };
    process.stdout.write(
      `${JSON.stringify({ ...info, model: { name: m?.name, version: m?.version, dir: modelDir, line: modelLine }, results, flood }, null, 2)}\n`,
    );
    return;
  }
  console.log(
    `\nscore-miner benchmark: ${runs} runs (medians), ${os.cpus().length} cores, ORT_THREADS=${threads}, ORT_GRAPH_OPTIMIZATION=${settings.graphOptimization}, malloc huge pages ${hugePages}, ${ffmpeg.source} ffmpeg`,
  );
  console.log(`model ${modelLine}`);
  if (results.length > 0) {
    console.log('one run: compare ratios within this table, not across runs; challenge deadline lifted to measure the whole clip');
    console.table(table(results));
  }
  if (flood) {
    const { limits } = flood;
    console.log(
      `\nflood: ${flood.clip}, a signed challenge and /health every ${FLOOD_PROBE_INTERVAL_MS} ms from 127.0.0.1 while ${flood.rps} forged requests/s (${flood.bodyBytes} B bodies) arrive; ` +
        `server limits per address: ${limits.connectionsPerAddress} connections, ${limits.requestsPerSecond}/s, burst ${limits.requestBurst}`,
    );
    console.table(floodTable(flood));
  }
}

main().catch((error) => {
  console.error(describeError(error));
  process.exit(1);
});
