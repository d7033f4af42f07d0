/**
 * The inference worker thread: loads and warms the model once, then scores clip windows. onnxruntime-node's
 * run() blocks this thread for the whole window, which is why the download, ffmpeg and the deadline live on
 * the main thread and hand windows over (shared memory, no copy) one at a time. After each window the
 * predictions over the frames covered so far go back, so the main thread always holds an answer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ModelSettings } from '../lib/core/config.ts';
import { type ErrorKind, MinerError } from '../lib/core/errors.ts';
import { releaseStartupMemory } from '../lib/core/memory.ts';
import { loadModel } from '../lib/inference/model.ts';
import { ClipScorer, decodeSpecOf, type Snapshot } from '../lib/inference/pipeline.ts';
import type { DecodeSpec } from '../lib/video/frames.ts';

export interface WorkerInfo {
  model: { name: string; version: string; dir: string; fps: number; clipFrames: number; strideFrames: number; classes: number };
  providers: string[];
  warmupMs: number;
  /** How the main thread decodes for this model. */
  decode: DecodeSpec;
}

export type WorkerRequest =
  /** A new challenge: forget the previous one's scores. */
  | { type: 'begin'; job: number }
  /** `stallMs`: test seam only (InferencePool.stallNextWindowForTesting), a window that blocks this thread. */
  | { type: 'window'; job: number; startFrame: number; validFrames: number; frames: Uint8Array; stallMs?: number };
export type WorkerResponse =
  | { type: 'ready'; info: WorkerInfo }
  | { type: 'fatal'; message: string; hint?: string }
  | { type: 'scored'; job: number; snapshot: Snapshot }
  | { type: 'error'; job: number; message: string; kind: ErrorKind };

export interface WorkerConfig {
  model: ModelSettings;
}

/** Blocks this thread as a long native run() would (test seam). */
function stall(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

async function start(port: NonNullable<typeof parentPort>, config: WorkerConfig): Promise<void> {
  const post = (message: WorkerResponse) => port.postMessage(message);
  let model: Awaited<ReturnType<typeof loadModel>>;
  try {
    model = await loadModel(config.model.dir, config.model);
    const t0 = performance.now();
    await model.warmup();
    releaseStartupMemory(); // this thread's module loading, before the first challenge adds to the process's peak
    const { manifest } = model;
    post({
      type: 'ready',
      info: {
        model: {
          name: manifest.name,
          version: manifest.version,
          dir: config.model.dir,
          fps: manifest.timing.fps,
          clipFrames: manifest.timing.clipFrames,
          strideFrames: manifest.timing.strideFrames,
          classes: manifest.classes.length,
        },
        providers: model.providers,
        warmupMs: Math.round(performance.now() - t0),
        decode: decodeSpecOf(manifest),
      },
    });
  } catch (error) {
    post({ type: 'fatal', message: (error as Error).message, hint: error instanceof MinerError ? error.hint : undefined });
    return;
  }
  const loaded = model;
  let scorer: ClipScorer | undefined;
  // Messages are handled one at a time: the main thread sends the next window only after this one's answer.
  port.on('message', async (request: WorkerRequest) => {
    if (request.type === 'begin') {
      scorer = new ClipScorer(loaded);
      return;
    }
    try {
      if (!scorer) throw new Error('window before begin');
      if (request.stallMs) stall(request.stallMs);
      post({ type: 'scored', job: request.job, snapshot: await scorer.add(request) });
    } catch (error) {
      const kind = error instanceof MinerError ? error.kind : 'failed';
      const message = error instanceof MinerError ? error.message : `Inference failed: ${(error as Error).message}`;
      post({ type: 'error', job: request.job, message, kind });
    }
  });
}

if (parentPort) await start(parentPort, workerData as WorkerConfig);
