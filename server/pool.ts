/**
 * The inference slots and admission. Each slot is a worker thread holding the model (onnxruntime's run()
 * blocks its thread); a challenge is admitted at receipt, before its download: up to `concurrency` run, up to
 * `queueMax` wait, and beyond that capacity the answer is 503 at once. Only running challenges download and
 * decode, so disk (DOWNLOAD_MAX_BYTES each) and memory are bounded by the capacity, never by the number of
 * callers. A challenge still waiting at its deadline is answered empty. Workers load and warm the model
 * before the pool reports ready; stale temp folders of dead miners are removed first.
 */
import { Worker } from 'node:worker_threads';
import type { ModelSettings } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { log } from '../lib/core/log.ts';
import type { Snapshot } from '../lib/inference/pipeline.ts';
import type { DownloadOptions } from '../lib/video/download.ts';
import { type ClipWindow, WindowBuffers } from '../lib/video/frames.ts';
import { prepareTempRoot } from '../lib/video/tempdir.ts';
import { HttpError } from './http.ts';
import { type ChallengeOutcome, type JobOptions, type ModelLink, queuedPastDeadline, runChallenge } from './job.ts';
import type { WorkerConfig, WorkerInfo, WorkerRequest, WorkerResponse } from './worker.ts';

export interface PoolOptions {
  /** The model folder and its onnxruntime settings (MODEL_DIR, ORT_*). */
  model: ModelSettings;
  ffmpegPath: string;
  /** Workers (challenges run at once). */
  concurrency: number;
  /** Challenges allowed to wait for a worker; more get 503. */
  queueMax: number;
  download: DownloadOptions;
  /** MAX_VIDEO_SECONDS. */
  maxVideoSeconds: number;
  /** DECODE_WINDOWS_AHEAD. */
  windowsAhead: number;
}

export interface ChallengeRequest {
  videoUrl: string;
  /** performance.now() by which the answer is due (receipt + CHALLENGE_DEADLINE_S). */
  deadlineAt: number;
}

interface Job {
  id: number;
  request: ChallengeRequest;
  /** Sends the answer; only the first call counts. */
  answer(result: { outcome: ChallengeOutcome } | { error: unknown }): void;
  waitTimer?: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  job?: Job;
  /** The window the worker is scoring. */
  pending?: { job: number; resolve(snapshot: Snapshot): void; reject(error: unknown): void };
  lost: AbortController;
  /** One challenge at a time per slot: its window buffers serve the next challenge too. */
  windowBuffers: WindowBuffers;
}

// Node runs the TypeScript worker itself (type stripping): no loader, no build step.
const WORKER_URL = new URL('./worker.ts', import.meta.url);

export class InferencePool {
  info!: WorkerInfo;
  private slots: Slot[] = [];
  /** Every live worker, ready or still loading (close() ends them all). */
  private workers = new Set<Worker>();
  private waiting: Job[] = [];
  private running = new Set<Promise<void>>();
  private admitted = 0;
  private nextId = 1;
  private closing = false;
  private jobOptions!: JobOptions;
  /** Set by the test seams only. */
  private crashNextJob = false;
  private stallNextWindowMs = 0;

  private readonly options: PoolOptions;

  private constructor(options: PoolOptions) {
    this.options = options;
  }

  static async start(options: PoolOptions): Promise<InferencePool> {
    await prepareTempRoot(); // a temp folder that cannot be made stops the start with the fix
    const pool = new InferencePool(options);
    try {
      await Promise.all(Array.from({ length: options.concurrency }, () => pool.spawn()));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /** A model is loaded in a live worker and the pool takes challenges (GET /health's `ready`). */
  get ready(): boolean {
    return !this.closing && this.slots.length > 0;
  }

  get depth(): { admitted: number; running: number; waiting: number; capacity: number } {
    return {
      admitted: this.admitted,
      running: this.slots.filter((s) => s.job).length,
      waiting: this.waiting.length,
      capacity: this.options.concurrency + this.options.queueMax,
    };
  }

  /**
   * Admits a challenge (running or waiting) or throws 503 at once when the pool is full. Resolves with the
   * outcome (partial after the deadline), rejects with the error to answer with.
   */
  submit(request: ChallengeRequest): Promise<ChallengeOutcome> {
    if (this.closing) throw new HttpError(503, 'Server is shutting down');
    if (this.admitted >= this.options.concurrency + this.options.queueMax) {
      throw new HttpError(503, `Busy: ${this.admitted} challenges in progress, queue full`);
    }
    this.admitted++;
    return new Promise((resolve, reject) => {
      let answered = false;
      const job: Job = {
        id: this.nextId++,
        request,
        answer: (result) => {
          if (answered) return;
          answered = true;
          if ('outcome' in result) resolve(result.outcome);
          else reject(result.error);
        },
      };
      job.waitTimer = setTimeout(
        () => {
          const index = this.waiting.indexOf(job);
          if (index === -1) return;
          this.waiting.splice(index, 1);
          this.admitted--;
          job.answer({ outcome: queuedPastDeadline() });
        },
        Math.max(0, request.deadlineAt - performance.now()),
      );
      this.waiting.push(job);
      this.dispatch();
    });
  }

  /** Refuses new challenges, stops the running ones (503) and the workers; resolves once all is cleaned up. */
  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.waiting.splice(0)) {
      clearTimeout(job.waitTimer);
      this.admitted--;
      job.answer({ error: new HttpError(503, 'Server is shutting down') });
    }
    for (const slot of this.slots) slot.lost.abort(new HttpError(503, 'Server is shutting down'));
    await Promise.all([...this.workers].map((worker) => worker.terminate()));
    await Promise.all(this.running);
    this.slots = [];
  }

  /**
   * TEST SEAM, never called by the server: the worker that receives the next challenge is terminated right
   * after the challenge is handed to it, as if its thread had crashed mid-challenge. Deterministic, unlike
   * killing a worker "while it runs" from outside, which races with the job finishing.
   */
  crashNextJobForTesting(): void {
    this.crashNextJob = true;
  }

  /** TEST SEAM, never called by the server: the next window blocks its worker for `ms`, as a slow model would. */
  stallNextWindowForTesting(ms: number): void {
    this.stallNextWindowMs = ms;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.job || slot.lost.signal.aborted || this.waiting.length === 0) continue;
      const job = this.waiting.shift()!;
      clearTimeout(job.waitTimer);
      slot.job = job;
      const run = runChallenge(job.request.videoUrl, job.request.deadlineAt, this.link(slot, job.id), this.jobOptions, (outcome) =>
        job.answer({ outcome }),
      )
        .then(
          (outcome) => ({ outcome }),
          (error: unknown) => ({ error }),
        )
        .then((result) => {
          // The slot and the admission are given back before the answer: a caller that got its answer finds room.
          slot.job = undefined;
          this.admitted--;
          this.running.delete(run);
          job.answer(result);
          this.dispatch();
        });
      this.running.add(run);
    }
  }

  private link(slot: Slot, job: number): ModelLink {
    return {
      lost: slot.lost.signal,
      windowBuffers: slot.windowBuffers,
      begin: () => {
        slot.worker.postMessage({ type: 'begin', job } satisfies WorkerRequest);
        if (this.crashNextJob) {
          this.crashNextJob = false;
          void slot.worker.terminate();
        }
      },
      score: (window: ClipWindow) =>
        new Promise<Snapshot>((resolve, reject) => {
          if (slot.lost.signal.aborted) return reject(slot.lost.signal.reason);
          slot.pending = { job, resolve, reject };
          const stallMs = this.stallNextWindowMs || undefined;
          this.stallNextWindowMs = 0;
          // frames lives on a SharedArrayBuffer: the worker reads it in place.
          const { startFrame, validFrames, frames } = window;
          slot.worker.postMessage({ type: 'window', job, startFrame, validFrames, frames, stallMs } satisfies WorkerRequest);
        }),
    };
  }

  /** Start one worker and resolve when its model is loaded and warmed up. */
  private spawn(): Promise<void> {
    const worker = new Worker(WORKER_URL, { workerData: { model: this.options.model } satisfies WorkerConfig });
    const slot: Slot = { worker, lost: new AbortController(), windowBuffers: new WindowBuffers(true) };
    this.workers.add(worker);
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: WorkerResponse) => {
        if (message.type === 'ready') {
          ready = true;
          if (this.closing) {
            void worker.terminate(); // a replacement that came up while the pool was closing
            return resolve();
          }
          this.info = message.info;
          this.jobOptions = {
            download: this.options.download,
            ffmpegPath: this.options.ffmpegPath,
            spec: { ...message.info.decode, maxSeconds: this.options.maxVideoSeconds },
            windowsAhead: this.options.windowsAhead,
          };
          this.slots.push(slot);
          resolve();
          this.dispatch();
        } else if (message.type === 'fatal') {
          reject(new MinerError(message.message, { hint: message.hint }));
        } else if (slot.pending && slot.pending.job === message.job) {
          const { resolve: done, reject: fail } = slot.pending;
          slot.pending = undefined;
          if (message.type === 'scored') done(message.snapshot);
          else fail(new MinerError(message.message, { kind: message.kind }));
        }
      });
      worker.on('error', (error) => {
        log.error('inference worker failed', { error: error.message });
        if (!ready) reject(new MinerError(`inference worker failed to start: ${error.message}`));
      });
      worker.on('exit', (code) => {
        this.workers.delete(worker);
        this.slots = this.slots.filter((s) => s !== slot);
        const lost = new MinerError(`Inference worker exited (code ${code})`);
        if (!slot.lost.signal.aborted) slot.lost.abort(lost);
        slot.pending?.reject(slot.lost.signal.reason);
        slot.pending = undefined;
        if (!ready) reject(new MinerError(`inference worker exited during start-up (code ${code})`));
        else if (!this.closing) {
          log.warn('restarting inference worker', { code });
          this.spawn().catch((error) => log.error('could not restart inference worker', { error: (error as Error).message }));
        }
      });
    });
  }
}
