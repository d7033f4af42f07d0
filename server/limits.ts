/**
 * Per-source-address limits, applied by server/http.ts before any request is read further: open connections
 * (over the limit the socket is closed at once) and requests per second (a token bucket; over it, 429 with
 * Retry-After). Both only count, so refusing costs next to nothing compared with the guard's hashing and sr25519
 * work. The clock is injected for tests.
 */
import { isIPv4, isIPv6 } from 'node:net';

/**
 * The key a peer is counted under: IPv4 as is (an IPv4-mapped IPv6 address, as a dual-stack socket reports it,
 * as the IPv4 it is); IPv6 by its /64, the block one host or one customer usually holds (per address, one
 * host could take 2^64 keys); `::1` as is. Anything else (a socket already gone) counts as `unknown`.
 */
export function addressKey(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(remoteAddress);
  if (mapped && isIPv4(mapped[1])) return mapped[1];
  if (isIPv4(remoteAddress)) return remoteAddress;
  const address = remoteAddress.replace(/%.*$/, ''); // a zone (fe80::1%eth0) names our interface, not the peer
  if (!isIPv6(address)) return 'unknown';
  if (address === '::1') return address;
  const groups = expandIPv6(address);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, lowercase, without leading zeros (an embedded IPv4 tail converted). */
function expandIPv6(address: string): string[] {
  let text = address.toLowerCase();
  const v4Tail = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (v4Tail) {
    const [a, b, c, d] = v4Tail[1].split('.').map(Number);
    text = `${text.slice(0, -v4Tail[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : Array(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((group) => Number.parseInt(group, 16).toString(16));
}

export interface RateLimitOptions {
  /** Tokens added per second: the sustained request rate allowed per address. 0 turns the limit off. */
  perSecond: number;
  /** Bucket size: requests an address may send at once after being quiet. */
  burst: number;
  /** Addresses tracked at most; past it, full buckets are forgotten, then the oldest. Default 10,000. */
  maxTracked?: number;
  /** Injected by tests; default performance.now (ms). */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** A token bucket per address. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly burst: number;
  private readonly maxTracked: number;
  private readonly now: () => number;

  constructor(options: RateLimitOptions) {
    this.perMs = options.perSecond / 1000;
    this.burst = Math.max(1, options.burst);
    this.maxTracked = options.maxTracked ?? 10_000;
    this.now = options.now ?? (() => performance.now());
  }

  get enabled(): boolean {
    return this.perMs > 0;
  }

  /** Addresses tracked now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Take one request's token: 0 when the request may proceed, else the whole seconds until it could. */
  take(key: string): number {
    if (!this.enabled) return 0;
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket) {
      bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.perMs);
      bucket.at = now;
    } else {
      if (this.buckets.size >= this.maxTracked) this.prune(now);
      bucket = { tokens: this.burst, at: now };
      this.buckets.set(key, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000));
  }

  /** Forget buckets that have refilled (forgetting them changes nothing), then the oldest until there is room. */
  private prune(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * this.perMs >= this.burst) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < this.maxTracked) break;
      this.buckets.delete(key);
    }
  }
}

/** Open connections per address. */
export class ConnectionCounter {
  private readonly open = new Map<string, number>();
  readonly max: number;

  /** `max` 0: no limit (connections are still counted). */
  constructor(max: number) {
    this.max = max;
  }

  /** Count a new connection from `key`, or return false (and count nothing) when it would exceed the limit. */
  add(key: string): boolean {
    const count = this.open.get(key) ?? 0;
    if (this.max > 0 && count >= this.max) return false;
    this.open.set(key, count + 1);
    return true;
  }

  /** A connection counted by add() closed. */
  remove(key: string): void {
    const count = (this.open.get(key) ?? 0) - 1;
    if (count > 0) this.open.set(key, count);
    else this.open.delete(key);
  }

  count(key: string): number {
    return this.open.get(key) ?? 0;
  }

  /** Addresses with an open connection. */
  get addresses(): number {
    return this.open.size;
  }
}
