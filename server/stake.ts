/**
 * Where the stake gate reads stakes from. The gate needs an answer in microseconds on every request, so it
 * reads an in-memory snapshot of the metagraph that is synced before the port opens and refreshed in the
 * background; a failed refresh keeps the last good snapshot (a flaky RPC must not lock validators out).
 * The chain call itself is injected (`fetchSnapshot`), so this module does not load lib/chain/metagraph.ts
 * (only its snapshot type, erased at run time).
 */
import type { StakeSnapshot } from '../lib/chain/metagraph.ts';
import { MinerError } from '../lib/core/errors.ts';
import { log } from '../lib/core/log.ts';
import { redactUrls } from '../lib/core/redact.ts';
import { hotkeyToHex } from '../lib/protocol/signature.ts';

export interface StakeSource {
  /** Total stake in rao of the hotkey with this 32-byte public key (`0x` + 64 lowercase hex); undefined when absent. */
  lookup(publicKeyHex: string): bigint | undefined;
  /** Sync state for GET /health. */
  health(): Record<string, unknown>;
  /** Stop background refreshes. */
  close?(): void;
}

/** A fixed table; for tests and for a gate fed from a file. */
export function createMemoryStakeSource(entries: Record<string, bigint> | Map<string, bigint>): StakeSource {
  const table = new Map<string, bigint>();
  for (const [key, stake] of entries instanceof Map ? entries : Object.entries(entries)) {
    const normalized = hotkeyToHex(key);
    if (!normalized) throw new Error(`not a hotkey: ${key}`);
    table.set(normalized, stake);
  }
  return {
    lookup: (publicKeyHex) => table.get(publicKeyHex.toLowerCase()),
    health: () => ({ source: 'memory', hotkeys: table.size }),
  };
}

export interface SyncedStakeSourceOptions {
  /** The gate keeps only block and stakes of a metagraph read; stake keys may also be SS58 (tests). */
  fetchSnapshot: () => Promise<Pick<StakeSnapshot, 'block' | 'stakes'>>;
  /** Background refresh period; 0 disables the timer (tests call refresh()). */
  refreshMs: number;
  /** A sync that takes longer than this counts as failed (default 120 s). */
  syncTimeoutMs?: number;
  /** Shown in logs and errors, e.g. "netuid 44 on finney". */
  label?: string;
  now?: () => number;
  /** Called after every failed sync, timeouts included (the chain source drops its connection here). */
  onSyncFailed?: (error: unknown) => void | Promise<void>;
  /** Called by close() (release connections). */
  onClose?: () => void | Promise<void>;
}

interface Snapshot {
  block: string;
  stakes: Map<string, bigint>;
  syncedAt: number;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${Math.round(ms / 1000)} s`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Snapshot-backed StakeSource. Call `start()` before opening the port: it performs the first sync (throwing a
 * MinerError if it fails) and then schedules refreshes every `refreshMs`.
 */
export class SyncedStakeSource implements StakeSource {
  private snapshot?: Snapshot;
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<boolean>;
  private lastError?: string;
  private lastFailure?: unknown;
  private lastAttemptAt?: number;
  private consecutiveFailures = 0;
  private syncs = 0;
  private readonly now: () => number;
  private readonly label: string;

  private readonly options: SyncedStakeSourceOptions;

  constructor(options: SyncedStakeSourceOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.label = options.label ?? 'metagraph';
  }

  async start(): Promise<void> {
    const ok = await this.refresh();
    if (!ok) {
      throw new MinerError(`cannot sync the metagraph (${this.label}): ${this.lastError}`, {
        hint:
          'check BITTENSOR_SUBTENSOR_ENDPOINT and SCOREVISION_NETUID and that the endpoint is reachable from here; ' +
          'for local testing without a chain set BLACKLIST_ENABLED=false and VERIFY_ENABLED=false',
        cause: this.lastFailure,
      });
    }
    if (this.options.refreshMs > 0 && !this.timer) {
      this.timer = setInterval(() => void this.refresh(), this.options.refreshMs);
      this.timer.unref();
    }
  }

  /** One sync; true when it produced a new snapshot. Concurrent calls share the sync in flight. */
  refresh(): Promise<boolean> {
    this.inFlight ??= this.sync().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async sync(): Promise<boolean> {
    const started = this.now();
    this.lastAttemptAt = started;
    try {
      const fetched = await withTimeout(this.options.fetchSnapshot(), this.options.syncTimeoutMs ?? 120_000, 'metagraph sync');
      const stakes = new Map<string, bigint>();
      for (const [key, stake] of fetched.stakes) {
        const normalized = hotkeyToHex(key);
        if (normalized) stakes.set(normalized, stake);
      }
      // A subnet never has zero hotkeys: an empty answer is a decode/endpoint problem, not news.
      if (stakes.size === 0) throw new Error(`the metagraph answer at block ${fetched.block} has no hotkeys`);
      this.snapshot = { block: String(fetched.block), stakes, syncedAt: this.now() };
      this.lastError = undefined;
      this.consecutiveFailures = 0;
      this.syncs++;
      log.info('metagraph synced', { source: this.label, hotkeys: stakes.size, block: this.snapshot.block, ms: this.now() - started });
      return true;
    } catch (error) {
      await Promise.resolve(this.options.onSyncFailed?.(error)).catch(() => undefined);
      this.lastFailure = error;
      // Shown in /health and the log: an endpoint URL in a chain error loses its ?apikey= and user:password@ here.
      this.lastError = redactUrls(error instanceof Error ? error.message : String(error));
      this.consecutiveFailures++;
      log.warn(this.snapshot ? 'metagraph sync failed; keeping the last good snapshot' : 'metagraph sync failed; no snapshot yet', {
        source: this.label,
        error: this.lastError,
        failures: this.consecutiveFailures,
        block: this.snapshot?.block,
        ms: this.now() - started,
      });
      return false;
    }
  }

  lookup(publicKeyHex: string): bigint | undefined {
    return this.snapshot?.stakes.get(publicKeyHex.toLowerCase());
  }

  get synced(): boolean {
    return this.snapshot !== undefined;
  }

  health(): Record<string, unknown> {
    const now = this.now();
    return {
      source: this.label,
      synced: this.snapshot !== undefined,
      block: this.snapshot?.block,
      hotkeys: this.snapshot?.stakes.size ?? 0,
      age_s: this.snapshot ? Math.round((now - this.snapshot.syncedAt) / 1000) : undefined,
      syncs: this.syncs,
      consecutive_failures: this.consecutiveFailures,
      last_error: this.lastError,
      last_attempt_at: this.lastAttemptAt === undefined ? undefined : new Date(this.lastAttemptAt).toISOString(),
    };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    void Promise.resolve(this.options.onClose?.()).catch(() => undefined);
  }
}
