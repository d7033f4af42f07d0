/**
 * Nonce rules (docs/security.md): a nonce starts with the unix time in nanoseconds (digits before the first `_`),
 * must lie within +/-120 s of our clock (exactly 120 s passes), and may be used once. Entries live until
 * `max(receipt, timestamp) + window`: after that the nonce is outside the window anyway, so forgetting it
 * cannot reopen a replay. The store only grows through `consume`, which the guard calls after a signature
 * verifies, so an unauthenticated caller can neither fill memory nor burn a real validator's nonce.
 *
 * Across restarts: the store lives in memory, so a new process has forgotten every nonce the last one consumed.
 * Instead of persisting it, a nonce stamped before this process started is refused ('before-start'). That
 * needs no state (no file to corrupt, share between containers or clean up) and leaves nothing replayable
 * from before the restart whose stamp is behind our clock. The costs: a request signed just before a restart
 * and delivered after it is refused (the validator scores that one challenge 0, as it would a miner that was
 * down); and a nonce stamped AHEAD of our clock (the +120 s skew allowance, unchanged) and consumed by the old
 * process can still pass the new one while its stamp is later than the new start, which needs a validator
 * clock that far ahead and a restart faster than that skew.
 */

/** Largest accepted timestamp (ns): 10^20 per spec, far beyond any real clock, bounds the BigInt work. */
const MAX_TIMESTAMP_NS = 10n ** 20n;
/** Fiber nonces are ~30 chars, central ~19; anything much longer is not a nonce. */
const MAX_NONCE_LENGTH = 128;

export const DEFAULT_NONCE_WINDOW_MS = 120_000;

/** Leading digits before the first `_` as unix ns, or undefined when the nonce is malformed. */
export function parseNonceTimestamp(nonce: string): bigint | undefined {
  if (nonce.length === 0 || nonce.length > MAX_NONCE_LENGTH) return undefined;
  // Printable ASCII only: the nonce goes into the signed message and into logs.
  if (!/^[\x21-\x7e]+$/.test(nonce)) return undefined;
  const cut = nonce.indexOf('_');
  const head = cut === -1 ? nonce : nonce.slice(0, cut);
  if (!/^[0-9]{1,21}$/.test(head)) return undefined;
  const ns = BigInt(head);
  return ns <= MAX_TIMESTAMP_NS ? ns : undefined;
}

export type NonceVerdict = 'ok' | 'malformed' | 'stale' | 'before-start' | 'future' | 'replayed';

export interface NonceStoreOptions {
  /** Milliseconds since the epoch; injected by tests. */
  now?: () => number;
  windowMs?: number;
  /**
   * Epoch ms before which a nonce is refused ('before-start'): nonces consumed by an earlier process are
   * unknown to this one. Default: this process's start (performance.timeOrigin), on the real clock; a test
   * with its own `now` passes its own.
   */
  startedAt?: number;
  /** How often expired entries are dropped (0 disables the timer; tests call purge()). */
  purgeIntervalMs?: number;
}

export class NonceStore {
  private readonly now: () => number;
  private readonly windowNs: bigint;
  private readonly windowMs: number;
  private readonly startedAtNs: bigint;
  /** nonce -> expiry in epoch ms. */
  private readonly seen = new Map<string, number>();
  private readonly timer?: NodeJS.Timeout;

  constructor(options: NonceStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.windowMs = options.windowMs ?? DEFAULT_NONCE_WINDOW_MS;
    this.windowNs = BigInt(this.windowMs) * 1_000_000n;
    this.startedAtNs = BigInt(Math.floor(options.startedAt ?? performance.timeOrigin)) * 1_000_000n;
    const interval = options.purgeIntervalMs ?? 30_000;
    if (interval > 0) {
      this.timer = setInterval(() => this.purge(), interval);
      // Never keep the process alive just to purge.
      this.timer.unref();
    }
  }

  private nowNs(): bigint {
    return BigInt(Math.floor(this.now())) * 1_000_000n;
  }

  /** Read-only verdict: is this nonce acceptable right now? Does not record it. */
  check(nonce: string): NonceVerdict {
    const ts = parseNonceTimestamp(nonce);
    if (ts === undefined) return 'malformed';
    const now = this.nowNs();
    if (now - ts > this.windowNs) return 'stale';
    if (ts < this.startedAtNs) return 'before-start';
    if (ts - now > this.windowNs) return 'future';
    const expiry = this.seen.get(nonce);
    // Inclusive: at exactly `expiry` the nonce may still be inside the window (exactly 120 s passes).
    if (expiry !== undefined && expiry >= this.now()) return 'replayed';
    return 'ok';
  }

  /**
   * Record a nonce whose request carried a valid signature. Returns false when it is not acceptable (any
   * verdict but ok), so two concurrent requests with one nonce cannot both pass.
   */
  consume(nonce: string): boolean {
    if (this.check(nonce) !== 'ok') return false;
    const ts = parseNonceTimestamp(nonce) as bigint;
    const receipt = this.now();
    // Floor to ms: one ms after expiry the nonce is certainly stale, so dropping it is safe.
    const tsMs = Number(ts / 1_000_000n);
    this.seen.set(nonce, Math.max(receipt, tsMs) + this.windowMs);
    return true;
  }

  /** Drop entries whose nonce can no longer pass the window check; returns how many went. */
  purge(): number {
    const now = this.now();
    let removed = 0;
    for (const [nonce, expiry] of this.seen) {
      if (expiry < now) {
        this.seen.delete(nonce);
        removed++;
      }
    }
    return removed;
  }

  get size(): number {
    return this.seen.size;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
