/**
 * Inference off the event loop: onnxruntime's run() blocks its thread, so each model lives in a worker
 * thread. The pool admits a bounded number of challenges (running + waiting); past that it answers 503 at
 * once, before any download. Workers load and warm the model before the pool reports ready.
 */
import { Worker } from 'node:worker_threads';
import { MinerError } from '../lib/core/errors.ts';
import { log } from '../lib/core/log.ts';
import { HttpError } from './http.ts';
import type { PipelineResult, WorkerInfo, WorkerRequest, WorkerResponse } from './worker.ts';

export interface PoolOptions {
  modelDir: string;
  providers: string[];
  threads: number;
  ffmpegPath: string;
  /** Workers (challenges inferred at once). */
  concurrency: number;
  /** Challenges allowed to wait for a worker; more get 503. */
  queueMax: number;
}

interface Job {
  id: number;
  videoPath: string;
  resolve(result: PipelineResult): void;
  reject(error: MinerError): void;
}

interface Slot {
  worker: Worker;
  job?: Job;
}

export interface Admission {
  /** Run the pipeline on a downloaded file (waits for a free worker). */
  run(videoPath: string): Promise<PipelineResult>;
  /** Give the admission back (always, also when the download failed). */
  release(): void;
}

// Node runs the TypeScript worker itself (type stripping): no loader, no build step.
const WORKER_URL = new URL('./worker.ts', import.meta.url);

export class InferencePool {
  info!: WorkerInfo;
  private slots: Slot[] = [];
  private waiting: Job[] = [];
  private admitted = 0;
  private nextId = 1;
  private closing = false;
  /** Set by crashNextJobForTesting() only. */
  private crashNextJob = false;

  private readonly options: PoolOptions;

  private constructor(options: PoolOptions) {
    this.options = options;
  }

  static async start(options: PoolOptions): Promise<InferencePool> {
    const pool = new InferencePool(options);
    try {
      await Promise.all(Array.from({ length: options.concurrency }, () => pool.spawn()));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get depth(): { admitted: number; running: number; waiting: number; capacity: number } {
    return {
      admitted: this.admitted,
      running: this.slots.filter((s) => s.job).length,
      waiting: this.waiting.length,
      capacity: this.options.concurrency + this.options.queueMax,
    };
  }

  /** Throw 503 when no challenge could be admitted right now (the caller may retry after Retry-After). */
  assertRoom(): void {
    if (this.closing) throw new HttpError(503, 'Server is shutting down');
    if (this.admitted >= this.options.concurrency + this.options.queueMax) {
      throw new HttpError(503, `Busy: ${this.admitted} challenges in progress, queue full`);
    }
  }

  /** Reserve room for one challenge or throw 503. */
  admit(): Admission {
    this.assertRoom();
    this.admitted++;
    let released = false;
    return {
      run: (videoPath) => this.enqueue(videoPath),
      release: () => {
        if (!released) this.admitted--;
        released = true;
      },
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.waiting.splice(0)) job.reject(new HttpError(503, 'Server is shutting down'));
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
    this.slots = [];
  }

  /**
   * TEST SEAM, never called by the server: the worker that receives the next challenge is terminated right
   * after the job is handed to it, as if its thread had crashed mid-challenge. Deterministic, unlike killing
   * a worker "while it runs" from outside, which races with the job finishing.
   */
  crashNextJobForTesting(): void {
    this.crashNextJob = true;
  }

  private enqueue(videoPath: string): Promise<PipelineResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, videoPath, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.job || this.waiting.length === 0) continue;
      const job = this.waiting.shift()!;
      slot.job = job;
      slot.worker.postMessage({ type: 'run', id: job.id, videoPath: job.videoPath } satisfies WorkerRequest);
      if (this.crashNextJob) {
        this.crashNextJob = false;
        void slot.worker.terminate();
      }
    }
  }

  /** Start one worker and resolve when its model is loaded and warmed up. */
  private spawn(): Promise<void> {
    const { modelDir, providers, threads, ffmpegPath } = this.options;
    const worker = new Worker(WORKER_URL, { workerData: { modelDir, providers, threads, ffmpegPath } });
    const slot: Slot = { worker };
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: WorkerResponse) => {
        if (message.type === 'ready') {
          ready = true;
          this.info = message.info;
          this.slots.push(slot);
          resolve();
          this.dispatch();
        } else if (message.type === 'fatal') {
          reject(new MinerError(message.message, { hint: message.hint }));
        } else if (slot.job && slot.job.id === message.id) {
          const job = slot.job;
          slot.job = undefined;
          if (message.type === 'result') job.resolve(message.result);
          else job.reject(new MinerError(message.message, { kind: message.kind }));
          this.dispatch();
        }
      });
      worker.on('error', (error) => {
        log.error('inference worker failed', { error: error.message });
        if (!ready) reject(new MinerError(`inference worker failed to start: ${error.message}`));
      });
      worker.on('exit', (code) => {
        this.slots = this.slots.filter((s) => s !== slot);
        slot.job?.reject(new MinerError(`Inference worker exited (code ${code})`));
        if (!ready) reject(new MinerError(`inference worker exited during start-up (code ${code})`));
        else if (!this.closing) {
          log.warn('restarting inference worker', { code });
          this.spawn().catch((error) => log.error('could not restart inference worker', { error: (error as Error).message }));
        }
      });
    });
  }
}
