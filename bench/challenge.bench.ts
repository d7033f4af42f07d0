/**
 * `npm run bench`: where the time of one challenge goes, as ratios measured in one run (these machines are
 * noisy). On a generated 30 s 1280x720 25 fps H.264 clip served on loopback:
 *   (a) decode-only: the miner's own ffmpeg command writing to /dev/null — the physical floor;
 *   (b) a full POST /challenge against the real server with the bundled model, and (b)/(a);
 *   (c) GET /health latency p50/p99 while a challenge runs (the event loop must stay free);
 *   (d) the miner process's peak RSS (VmHWM; ffmpeg runs as its own child process and is not included);
 *   (e) the model alone per clip (byte conversion + onnxruntime run + activation), in this process.
 * Targets on the 2-core machines: ratio <= 1.3, /health p99 < 50 ms, peak RSS < 600 MB.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../lib/core/config.ts';
import { describeError } from '../lib/core/errors.ts';
import { serveFiles } from '../lib/core/fileserver.ts';
import { resolveFfmpeg } from '../lib/inference/ffmpeg.ts';
import { ffmpegDecodeArgs } from '../lib/inference/frames.ts';
import { loadManifest } from '../lib/inference/manifest.ts';
import { loadModel } from '../lib/inference/model.ts';
import { makeSyntheticClip } from '../lib/inference/synthetic.ts';
import { startMinerProcess } from '../scripts/miner-process.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const run = promisify(execFile);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, BLACKLIST_ENABLED: 'false', VERIFY_ENABLED: 'false' });
  const manifest = loadManifest(config.model.dir);
  const ffmpeg = resolveFfmpeg(config.video.ffmpegPath);
  const clip = path.join(os.tmpdir(), 'score-miner-bench-30s-720p.mp4');
  if (!existsSync(clip)) {
    console.log('rendering the 30 s 1280x720 clip (once; cached in the temp folder) ...');
    const partial = `${clip}.part.mp4`; // renamed when complete, so an interrupted render is never reused
    await makeSyntheticClip(ffmpeg.path, { width: 1280, height: 720, fps: 25, seconds: 30 }, partial);
    await rename(partial, clip);
  }
  const files = await serveFiles([clip]);
  const miner = await startMinerProcess();
  try {
    const decodeArgs = ffmpegDecodeArgs(
      clip,
      {
        fps: manifest.timing.fps,
        width: manifest.input.width,
        height: manifest.input.height,
        colour: manifest.input.colour,
        resize: manifest.input.resize,
      },
      'null',
    );
    const body = JSON.stringify({ challenge_id: 'bench', video_url: files.urlFor(clip), frames: null });
    const challenge = async () => {
      const response = await fetch(`${miner.url}/challenge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (!response.ok) throw new Error(`POST /challenge answered ${response.status}: ${await response.text()}`);
      return (await response.json()) as { processing_time: number; predictions: unknown[] };
    };

    const decodeMs: number[] = [];
    const challengeMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // Interleaved so both see the same machine load.
      decodeMs.push(await timed(() => run(ffmpeg.path, decodeArgs)));
      challengeMs.push(await timed(challenge));
    }
    // One more challenge with /health probed every 20 ms, kept out of (b) so the probes don't inflate it.
    const healthMs: number[] = [];
    let running = true;
    const probe = (async () => {
      while (running) {
        healthMs.push(await timed(() => fetch(`${miner.url}/health`).then((r) => r.json())));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await challenge();
    running = false;
    await probe;
    // (e) The model alone, on one clip of blank frames, after the challenges (so it does not compete with them).
    const model = await loadModel(config.model.dir, { providers: config.model.providers, threads: config.model.threads });
    const blank = new Uint8Array(model.clipBytes);
    await model.warmup();
    const clipMs: number[] = [];
    for (let i = 0; i < 20; i++) clipMs.push(await timed(() => model.inferClip(blank)));
    await model.release();

    const a = median(decodeMs);
    const b = median(challengeMs);
    const rows = [
      ['clip', '30 s 1280x720 25 fps H.264', ''],
      [
        'model',
        `${manifest.name} ${manifest.version} (${manifest.input.width}x${manifest.input.height} ${manifest.input.colour} @ ${manifest.timing.fps} fps)`,
        '',
      ],
      ['(a) decode-only, median', `${(a / 1000).toFixed(3)} s`, ''],
      ['(b) full challenge, median', `${(b / 1000).toFixed(3)} s`, ''],
      ['(b)/(a)', (b / a).toFixed(2), '<= 1.3'],
      ['(c) /health p50 during challenge', `${percentile(healthMs, 50).toFixed(1)} ms`, ''],
      ['(c) /health p99 during challenge', `${percentile(healthMs, 99).toFixed(1)} ms (${healthMs.length} probes)`, '< 50 ms'],
      ['(d) miner peak RSS', `${(await peakRssMb(miner.pid)).toFixed(0)} MB`, '< 600 MB'],
      ['(e) model per clip, median', `${median(clipMs).toFixed(2)} ms (${manifest.timing.clipFrames} frames)`, ''],
    ];
    console.log(`\nscore-miner benchmark, ${RUNS} runs, ${os.cpus().length} cores, ${ffmpeg.source} ffmpeg`);
    console.table(rows.map(([measure, value, target]) => ({ measure, value, target })));
  } finally {
    await miner.stop();
    await files.close();
  }
}

main().catch((error) => {
  console.error(describeError(error));
  process.exit(1);
});
