/**
 * Identical challenges share one computation (docs/security.md, "Replayed challenges").
 *
 * Score's central scheme signs `nonce + blake2b(body)` and nothing that names the receiving miner, and each
 * miner keeps its own nonce store: a miner that receives a genuine challenge can forward the exact bytes to
 * every other miner inside the nonce window, and each accepts it as new. Without this, five such replays fill
 * a miner's capacity (1 running, 4 waiting by default) and its own genuine challenge gets 503, or an empty
 * answer at its deadline. With it, a request whose body bytes equal one that is running, or was answered in
 * the last ANSWER_TTL_MS, gets that answer: no second download, decode, inference or place in the queue.
 *
 * Keyed on a hash of the raw body bytes, the same bytes every signature covers: two requests share only when
 * they are the same challenge in every field (challenge_id, video_url and any other), so the shared answer is
 * byte for byte the one a second run would have sent, less the work (processing_time is the first run's).
 */
import type { BodyDigests } from '../lib/protocol/signature.ts';
import type { Reply } from './http.ts';

/** How long an answer is kept after it was sent: the nonce window, over which a signed copy can still arrive. */
export const ANSWER_TTL_MS = 120_000;
/** Answers kept at most; the oldest goes first. Each holds one reply (a challenge_id and its predictions). */
export const MAX_KEPT_ANSWERS = 256;

/**
 * The key under which identical challenges meet: the blake2b-256 of the raw body, the hash Score's central
 * scheme signs, so for its requests the guard's one hash serves both (bodyDigests computes each hash once).
 */
export function answerKey(digests: BodyDigests): string {
  return digests.blake2b256Hex();
}

/**
 * May this answer serve an identical body that arrives after it was sent? While it runs it is shared whatever
 * it turns out to be (every request joined to it would have been answered at the same moment anyway); this is
 * about the next 120 s.
 * - 200 with the whole video: yes. Inference is deterministic (the spot check depends on it).
 * - 400 (the URL refused by the address policy or a download limit of ours) and 422 (the bytes at the URL are
 *   no video): yes. They follow from the body and the video's bytes, not from the moment.
 * - 200 cut short (deadline, a broken download with some windows inferred): no. How far it got depends on
 *   the load and the network at that moment (a queue wait, a slow link); a later run may get further.
 * - 502 (the download failed), 500 (inference failed, a worker died), 503 (busy, shutting down): no. Passing
 *   conditions; a 503 kept would refuse a challenge the miner has room for.
 */
export function mayKeep(status: number, partial: boolean): boolean {
  if (status === 200) return !partial;
  return status === 400 || status === 422;
}

/** What a computation hands back: the reply, and whether it may be kept (mayKeep). */
export interface Computed {
  reply: Reply;
  keep: boolean;
}

/** How a request got its reply: its own run, a run already under way, or a kept answer. */
export type AnswerSource = 'run' | 'running' | 'kept';

interface Entry {
  answer: Promise<Computed>;
  /** Set once the answer was sent and may be kept (ms on the `now` clock). */
  keptAt?: number;
}

export interface SharedAnswersOptions {
  ttlMs?: number;
  maxKept?: number;
  /** Milliseconds; injected by tests. */
  now?: () => number;
}

export class SharedAnswers {
  private readonly ttlMs: number;
  private readonly maxKept: number;
  private readonly now: () => number;
  /** Insertion order is the order runs started: the first kept entry met is the oldest of similar age. */
  private readonly entries = new Map<string, Entry>();
  private runs = 0;
  private sharedRunning = 0;
  private sharedKept = 0;

  constructor(options: SharedAnswersOptions = {}) {
    this.ttlMs = options.ttlMs ?? ANSWER_TTL_MS;
    this.maxKept = options.maxKept ?? MAX_KEPT_ANSWERS;
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * The reply for the body with this key: the running or kept one when there is one, else compute()'s (which
   * must not throw: a failure is a reply too, and the one place it is logged). A reply that may not be kept is
   * forgotten as soon as it is sent, so the next identical body runs again.
   */
  async answer(key: string, compute: () => Promise<Computed>): Promise<{ reply: Reply; source: AnswerSource }> {
    this.expire();
    const found = this.entries.get(key);
    if (found) {
      const source = found.keptAt === undefined ? 'running' : 'kept';
      if (source === 'running') this.sharedRunning++;
      else this.sharedKept++;
      return { reply: (await found.answer).reply, source };
    }
    this.runs++;
    const entry: Entry = { answer: compute() };
    this.entries.set(key, entry);
    const computed = await entry.answer;
    if (computed.keep) {
      entry.keptAt = this.now();
      this.evictOverCap();
    } else {
      this.entries.delete(key);
    }
    return { reply: computed.reply, source: 'run' };
  }

  /** For /health and tests: runs started, requests answered from a run under way or a kept answer, entries held. */
  health(): { runs: number; shared_running: number; shared_kept: number; running: number; kept: number } {
    let kept = 0;
    for (const entry of this.entries.values()) if (entry.keptAt !== undefined) kept++;
    return { runs: this.runs, shared_running: this.sharedRunning, shared_kept: this.sharedKept, running: this.entries.size - kept, kept };
  }

  private expire(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.keptAt !== undefined && now - entry.keptAt >= this.ttlMs) this.entries.delete(key);
    }
  }

  /** Running entries are never evicted: they are bounded by the pool's capacity (each holds an admission). */
  private evictOverCap(): void {
    let kept = 0;
    for (const entry of this.entries.values()) if (entry.keptAt !== undefined) kept++;
    for (const [key, entry] of this.entries) {
      if (kept <= this.maxKept) break;
      if (entry.keptAt === undefined) continue;
      this.entries.delete(key);
      kept--;
    }
  }
}
