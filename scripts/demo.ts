/**
 * `npm run demo`: the whole miner on the bundled default model, as a validator would see it.
 * Starts the real server (`server/main.ts`) with security off on a free loopback port, renders a 10 s
 * 1280x720 synthetic clip with a white flash and a black cut at known frames, serves it on loopback,
 * POSTs a challenge, prints the predictions, timings and the score against those marks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describeError, MinerError } from '../lib/core/errors.ts';
import { serveFiles } from '../lib/core/fileserver.ts';
import { type Prediction, scoreResponse } from '../lib/protocol/scoring.ts';
import { resolveFfmpeg } from '../lib/video/ffmpeg.ts';
import { DEMO_CLIP, type Marker, makeSyntheticClip, markerFrameAt25 } from '../lib/video/synthetic.ts';
import { type MinerProcess, startMinerProcess } from './miner-process.ts';

// 3.0 s: the default model calls a bright flash a "goal"; 7.0 s: a black cut is "ball_out_of_play".
const MARKERS = DEMO_CLIP.markers as Marker[];
const TRUTH = [
  { frame: markerFrameAt25(MARKERS[0], 25), action: 'goal' },
  { frame: markerFrameAt25(MARKERS[1], 25), action: 'ball_out_of_play' },
];

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'score-miner-demo-'));
  const ffmpeg = resolveFfmpeg(process.env.FFMPEG_PATH);
  console.log(`rendering a 10 s 1280x720 25 fps clip with ${ffmpeg.source} ffmpeg (${ffmpeg.version}) ...`);
  const clip = await makeSyntheticClip(ffmpeg.path, DEMO_CLIP, path.join(work, 'demo.mp4'));
  const files = await serveFiles([clip]);
  let miner: MinerProcess | undefined;
  try {
    // The clip is served on loopback, which the miner refuses unless told otherwise.
    miner = await startMinerProcess({ DOWNLOAD_ALLOW_PRIVATE: 'true' });

    const body = JSON.stringify({ challenge_id: 'demo-1', video_url: files.urlFor(clip), frames: null });
    const t0 = performance.now();
    const response = await fetch(`${miner.url}/challenge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const wallS = (performance.now() - t0) / 1000;
    const reply = (await response.json()) as { predictions?: Prediction[]; processing_time?: number; detail?: string };
    if (!response.ok)
      throw new MinerError(`POST /challenge answered ${response.status}: ${reply.detail}`, {
        hint: 'the miner log above shows the cause (see README, Troubleshooting)',
      });

    console.log('\npredictions (frame at 25 fps):');
    console.table(reply.predictions);
    console.log("ground truth (the clip's marks):");
    console.table(TRUTH);
    console.log(`processing_time ${reply.processing_time?.toFixed(3)} s (miner), round trip ${wallS.toFixed(3)} s`);
    console.log(`score by the validator's formula: ${scoreResponse(reply.predictions ?? [], TRUTH).toFixed(3)}`);
    const health = await fetch(`${miner.url}/health`).then((r) => r.json());
    console.log('GET /health:', JSON.stringify(health));
  } finally {
    await miner?.stop();
    await files.close();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`${describeError(error)}\n`);
  process.exit(1);
});
