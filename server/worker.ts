/**
 * The inference worker thread: loads and warms the model once, then runs one challenge pipeline per
 * message. Errors go back as {message, status} so the server answers with the right code.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type ErrorKind, MinerError } from '../lib/core/errors.ts';
import { loadModel } from '../lib/inference/model.ts';
import { type PipelineStats, runPipeline } from '../lib/inference/pipeline.ts';
import type { Prediction } from '../lib/inference/postprocess.ts';

export interface WorkerInfo {
  model: { name: string; version: string; dir: string; fps: number; clipFrames: number; strideFrames: number; classes: number };
  providers: string[];
  warmupMs: number;
}

export interface PipelineResult {
  predictions: Prediction[];
  stats: PipelineStats;
}

export type WorkerRequest = { type: 'run'; id: number; videoPath: string };
export type WorkerResponse =
  | { type: 'ready'; info: WorkerInfo }
  | { type: 'fatal'; message: string; hint?: string }
  | { type: 'result'; id: number; result: PipelineResult }
  | { type: 'error'; id: number; message: string; kind: ErrorKind };

interface WorkerConfig {
  modelDir: string;
  providers: string[];
  threads: number;
  ffmpegPath: string;
}

async function start(port: NonNullable<typeof parentPort>, config: WorkerConfig): Promise<void> {
  const post = (message: WorkerResponse) => port.postMessage(message);
  let model: Awaited<ReturnType<typeof loadModel>>;
  try {
    model = await loadModel(config.modelDir, { providers: config.providers, threads: config.threads });
    const t0 = performance.now();
    await model.warmup();
    const { manifest } = model;
    post({
      type: 'ready',
      info: {
        model: {
          name: manifest.name,
          version: manifest.version,
          dir: config.modelDir,
          fps: manifest.timing.fps,
          clipFrames: manifest.timing.clipFrames,
          strideFrames: manifest.timing.strideFrames,
          classes: manifest.classes.length,
        },
        providers: model.providers,
        warmupMs: Math.round(performance.now() - t0),
      },
    });
  } catch (error) {
    post({ type: 'fatal', message: (error as Error).message, hint: error instanceof MinerError ? error.hint : undefined });
    return;
  }
  const loaded = model;
  port.on('message', async (request: WorkerRequest) => {
    try {
      post({ type: 'result', id: request.id, result: await runPipeline(request.videoPath, loaded, config.ffmpegPath) });
    } catch (error) {
      const kind = error instanceof MinerError ? error.kind : 'failed';
      const message = error instanceof MinerError ? error.message : `Inference failed: ${(error as Error).message}`;
      post({ type: 'error', id: request.id, message, kind });
    }
  });
}

if (parentPort) await start(parentPort, workerData as WorkerConfig);
