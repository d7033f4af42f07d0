/**
 * The request guard: the seam between the raw request and the challenge handler. It sees the headers and
 * the raw body bytes exactly as received (the signatures cover those bytes) and either resolves or throws a
 * MinerError carrying the status (401/403). The security issue replaces `openGuard` with the real checks.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface GuardRequest {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestGuard {
  /** Resolves when the request may proceed; throws MinerError(status 401|403) otherwise. */
  check(request: GuardRequest): Promise<void>;
  /** State for GET /health (toggles, metagraph sync, nonce store size). */
  health(): Record<string, unknown>;
  /** Stop background work (metagraph refresh, nonce purge timers). */
  close(): void;
}

/** Both toggles off (local testing, spot checks): every request proceeds. */
export const openGuard: RequestGuard = {
  async check() {},
  health: () => ({ blacklist: false, verify: false }),
  close() {},
};
