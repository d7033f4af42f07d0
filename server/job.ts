/**
 * One admitted challenge on its inference slot, on the main thread: a temp folder, the video decoded while it
 * downloads (lib/video/video-source.ts), each window handed to the slot's worker, and the deadline.
 *
 * Deadline (CHALLENGE_DEADLINE_S from receipt): the download and ffmpeg are stopped, no further window is sent,
 * and the answer is the predictions over the windows inferred so far (the validator scores a late answer 0,
 * a partial one in time above 0). A window still running in the worker cannot be interrupted (onnxruntime
 * blocks that thread), so at the deadline plus DEADLINE_GRACE_MS the answer goes out without it
 * (`answerEarly`) and its late result is dropped; the slot stays busy until the worker is done with it.
 */
import { MinerError, messageWithDetail } from '../lib/core/errors.ts';
import { log } from '../lib/core/log.ts';
import { EMPTY_SNAPSHOT, type Snapshot } from '../lib/inference/pipeline.ts';
import type { Prediction } from '../lib/inference/postprocess.ts';
import type { DownloadOptions } from '../lib/video/download.ts';
import type { ClipWindow, DecodeSpec, WindowBuffers } from '../lib/video/frames.ts';
import { createJobDir, removeJobDir } from '../lib/video/tempdir.ts';
import { type DecodedFrom, VideoSource } from '../lib/video/video-source.ts';

/** How long past the deadline the answer waits for a window still running in the worker. */
export const DEADLINE_GRACE_MS = 1000;

export interface JobOptions {
  download: DownloadOptions;
  ffmpegPath: string;
  /** The model's decode spec, with maxSeconds (MAX_VIDEO_SECONDS). */
  spec: DecodeSpec;
  windowsAhead: number;
}

/** The worker side of a slot, as one challenge sees it. */
export interface ModelLink {
  /** Starts a new challenge in the worker (fresh scores). */
  begin(): void;
  /** Infers one window (its buffer is shared, not copied: unchanged until this settles). */
  score(window: ClipWindow): Promise<Snapshot>;
  /** Aborted when the worker dies or the pool shuts down; the reason is the error to answer with. */
  lost: AbortSignal;
  /** The slot's window buffers (shared memory), reused challenge after challenge. */
  windowBuffers: WindowBuffers;
}

export interface ChallengeStats {
  bytes: number;
  /** Model-rate frames decoded, and covered by inferred windows. */
  framesDecoded: number;
  framesInferred: number;
  windows: number;
  inferMs: number;
  /** 'range': an mp4 with its index at the end, read through the loopback range server while it downloaded. */
  decodedFrom: DecodedFrom;
}

export interface ChallengeOutcome {
  predictions: Prediction[];
  stats: ChallengeStats;
  /** Set when the answer holds only part of the video: where it stopped and why. */
  cut?: { stage: 'queued' | 'download' | 'decode' | 'inference'; reason: string };
}

export class DeadlineReached extends Error {
  constructor() {
    super('challenge deadline reached (CHALLENGE_DEADLINE_S)');
    this.name = 'DeadlineReached';
  }
}

/** A challenge that never got a worker before its deadline. */
export function queuedPastDeadline(): ChallengeOutcome {
  return {
    predictions: [],
    stats: { bytes: 0, framesDecoded: 0, framesInferred: 0, windows: 0, inferMs: 0, decodedFrom: 'stream' },
    cut: { stage: 'queued', reason: new DeadlineReached().message },
  };
}

/**
 * Runs the challenge; resolves with its outcome once nothing of it is left (ffmpeg exited, folder removed,
 * the worker done with its last window). `answerEarly` is called when the answer cannot wait for that.
 */
export async function runChallenge(
  url: string,
  deadlineAt: number,
  link: ModelLink,
  options: JobOptions,
  answerEarly: (outcome: ChallengeOutcome) => void,
): Promise<ChallengeOutcome> {
  let source: VideoSource | undefined;
  let snapshot: Snapshot = EMPTY_SNAPSHOT;
  let inFlight = false;
  const stage = () => (inFlight ? 'inference' : (source?.stage ?? 'download'));
  const deadline = new AbortController();
  const remaining = Math.max(0, deadlineAt - performance.now());
  let stageAtDeadline: ReturnType<typeof stage> = 'download';
  const deadlineTimer = setTimeout(() => {
    stageAtDeadline = stage(); // what was running when time ran out (the log says what was cut)
    deadline.abort(new DeadlineReached());
  }, remaining);
  const signal = AbortSignal.any([deadline.signal, link.lost]);
  const outcome = (cut?: ChallengeOutcome['cut']): ChallengeOutcome => ({
    predictions: snapshot.predictions,
    stats: {
      bytes: source?.bytes ?? 0,
      framesDecoded: source?.framesDecoded ?? 0,
      framesInferred: snapshot.frames,
      windows: snapshot.windows,
      inferMs: snapshot.inferMs,
      decodedFrom: source?.decodedFrom ?? 'stream',
    },
    cut,
  });
  const graceTimer = setTimeout(() => {
    const dropped = inFlight ? '; the window still in the model was dropped' : '';
    answerEarly(outcome({ stage: stageAtDeadline, reason: `${new DeadlineReached().message}${dropped}` }));
  }, remaining + DEADLINE_GRACE_MS);
  let dir: string | undefined;
  try {
    dir = await createJobDir();
    link.begin();
    source = new VideoSource(url, { ...options, dir, signal, buffers: link.windowBuffers });
    for await (const window of source.windows()) {
      inFlight = true;
      snapshot = await link.score(window);
      inFlight = false;
    }
    return outcome();
  } catch (error) {
    if (link.lost.aborted) throw link.lost.reason;
    if (deadline.signal.aborted) return outcome({ stage: stageAtDeadline, reason: (deadline.signal.reason as Error).message });
    // The windows inferred before a broken download or stream still score; an error would score 0.
    const partial = error instanceof MinerError && (error.kind === 'download-failed' || error.kind === 'undecodable-video');
    if (partial && snapshot.windows > 0) return outcome({ stage: stage(), reason: messageWithDetail(error) }); // logged, not sent
    throw error;
  } finally {
    clearTimeout(deadlineTimer);
    clearTimeout(graceTimer);
    if (dir) {
      const folder = dir;
      await removeJobDir(folder).catch((error) => log.error('could not remove a temp folder', { folder, error: (error as Error).message }));
    }
  }
}
