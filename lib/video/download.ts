/**
 * Video download: stream a URL into a sink (the challenge's growing temp file, which ffmpeg reads as it grows)
 * with undici's request(), under a whole-download deadline, a size cap, a redirect limit and the address policy
 * (lib/video/address-policy.ts) at every hop.
 *
 * What the caller learns of a failure is its class only, one fixed message each (DOWNLOAD_FAILURE_MESSAGES):
 * the cause (errno, address, HTTP status, the redirect chain) goes in the error's private `detail`, which the
 * server logs and never sends. Otherwise a challenge would be a port and DNS scanner of the miner's network,
 * one request at a time: connection refused vs timeout vs "resolves to a private address" vs "not found".
 *
 * Not Node's built-in fetch: on Node 24 (bundled undici 7.30.2) a body paused by backpressure when the peer
 * closes the connection right after it (HTTP/1.0 style) fails an assertion in undici's parser outside any
 * promise, which ends the whole process. The undici package resumes the parser instead.
 */
import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { request } from 'undici';
import { MinerError } from '../core/errors.ts';
import { redactUrl, redactUrls } from '../core/redact.ts';
import { ADDRESS_NOT_ALLOWED, type AddressNotAllowedError, checkHostLiteral, createGuardedAgent } from './address-policy.ts';

export interface DownloadOptions {
  /** The whole download (every hop, headers and body) must finish within this. */
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
  /**
   * DOWNLOAD_ALLOW_PRIVATE: may the video be fetched from loopback/private/link-local addresses? A function
   * decides per hop (0 = the video_url itself): tests trust their own first-hop redirector with it.
   */
  allowPrivate: boolean | ((hop: number) => boolean);
}

/** The downloads' own connection pools (apart from fetch()'s global one), one per policy. */
const agents = new Map<boolean, Agent>();

function agentFor(allowPrivate: boolean): Agent {
  let agent = agents.get(allowPrivate);
  if (!agent) {
    agent = createGuardedAgent({ allowPrivate });
    agents.set(allowPrivate, agent);
  }
  return agent;
}

/** undici's own timeouts: they end the download the same way as the whole-download deadline. */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * The classes of a failed download, each with the one message a caller gets. 'network': refused, reset, DNS
 * not found, TLS, and a host name that resolves to an address the policy refuses (told apart from "not found"
 * it would map the miner's DNS); 'http': a status or answer that is no video (which status is not said);
 * 'policy': a redirect the miner will not follow (to a refused address literal, another scheme, credentials,
 * past DOWNLOAD_MAX_REDIRECTS). All are 'download-failed' (502).
 */
export const DOWNLOAD_FAILURE_MESSAGES = {
  network: 'could not download the video: network error',
  http: 'could not download the video: HTTP error',
  'too-large': 'could not download the video: too large',
  timeout: 'could not download the video: timeout',
  policy: 'could not download the video: refused by policy',
} as const;

export type DownloadFailure = keyof typeof DOWNLOAD_FAILURE_MESSAGES;

/** `hops`: the URLs requested, redacted, the last one first failed; `cause`: what only the log may say. */
function downloadError(failure: DownloadFailure, hops: readonly string[], cause: string): MinerError {
  return new MinerError(DOWNLOAD_FAILURE_MESSAGES[failure], {
    kind: 'download-failed',
    detail: `GET ${hops.join(' -> ')}: ${redactUrls(cause)}`,
  });
}

/** "a loopback", "an unspecified" ("unique-local" starts with a consonant sound). */
function withArticle(word: string): string {
  return /^[aeio]|^u(?!ni)/i.test(word) ? `an ${word}` : `a ${word}`;
}

const ALLOW_PRIVATE_HINT = '(DOWNLOAD_ALLOW_PRIVATE=true allows it for local testing)';

/** "host ::1 resolves to a loopback address, which is refused (DOWNLOAD_ALLOW_PRIVATE=...)". */
function refusal(host: string, reason: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return `host ${bare} resolves to ${withArticle(reason)} address, which is refused ${ALLOW_PRIVATE_HINT}`;
}

/**
 * The caller's video_url names an address literal the policy refuses: a check of the caller's own text (no
 * lookup, no connection), so it is said in full, as a 400.
 */
function refused(host: string, reason: string): MinerError {
  return new MinerError(`video_url ${refusal(host, reason)}`, { kind: 'invalid-input' });
}

function allowedAt(options: DownloadOptions, hop: number): boolean {
  return typeof options.allowPrivate === 'function' ? options.allowPrivate(hop) : options.allowPrivate;
}

/**
 * Parses and checks a video_url before anything is fetched (also called by the server as body validation,
 * so a bad URL never takes a place in the queue): http(s) only, no credentials, and no literal address the
 * policy refuses. Host names are checked once resolved, where the socket is made.
 */
export function checkVideoUrl(raw: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new MinerError(`video_url is not a valid URL: ${JSON.stringify(redactUrl(raw).slice(0, 300))}`, { kind: 'invalid-input' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MinerError(`video_url must be an http(s) URL, got ${url.protocol}`, { kind: 'invalid-input' });
  }
  if (url.username || url.password) {
    throw new MinerError(`video_url must not carry credentials (user:password@): ${redactUrl(url)}`, { kind: 'invalid-input' });
  }
  const reason = allowPrivate ? undefined : checkHostLiteral(url.hostname);
  if (reason !== undefined) throw refused(url.hostname, reason);
  return url;
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Drops a response body without reading it, closing its connection unless the body had already ended.
 * undici reports a body destroyed before its end as an 'error' event, which would be an uncaught exception
 * without a listener: the listener swallows it (the caller already knows why it gave up).
 */
function discard(body: Readable): void {
  if (body.destroyed) return;
  body.on('error', () => {});
  body.destroy();
}

/** One line (for the log) saying why a request or the stream failed: "connect ECONNREFUSED 10.0.0.5:80". */
function causeOf(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = String(message ?? error)
    .split('\n')[0]
    .slice(0, 200);
  return typeof code !== 'string' || text.includes(code) ? text : `${text} (${code})`;
}

/**
 * Follow at most `maxRedirects` redirects by hand so each hop is checked (scheme, credentials, address).
 * `hops` starts with the first URL (redacted) and gets each redirect's target, for the error's detail.
 */
async function requestFollowing(
  start: URL,
  hops: string[],
  options: DownloadOptions,
  signal: AbortSignal,
  extraHeaders: Record<string, string> = {},
): Promise<Dispatcher.ResponseData> {
  let url = start;
  for (let hop = 0; ; hop++) {
    const allowPrivate = allowedAt(options, hop);
    const literal = allowPrivate ? undefined : checkHostLiteral(url.hostname);
    if (literal !== undefined) throw downloadError('policy', hops, `redirect to ${refusal(url.hostname, literal)}`);
    const response = await request(url, {
      method: 'GET',
      headers: { accept: '*/*', 'user-agent': 'score-miner', ...extraHeaders },
      dispatcher: agentFor(allowPrivate),
      signal,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    const status = response.statusCode;
    if (status < 300 || status >= 400 || status === 304) return response;
    discard(response.body); // a redirect's body is never read
    const location = header(response.headers, 'location');
    if (!location) throw downloadError('http', hops, `redirect ${status} without a Location header`);
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw downloadError('http', hops, `redirect ${status} to an invalid Location`);
    }
    hops.push(redactUrl(next));
    if (hop >= options.maxRedirects)
      throw downloadError('policy', hops, `more than ${options.maxRedirects} redirects (DOWNLOAD_MAX_REDIRECTS)`);
    if (next.protocol !== 'http:' && next.protocol !== 'https:')
      throw downloadError('policy', hops, `redirect to ${next.protocol} refused`);
    if (next.username || next.password) throw downloadError('policy', hops, 'redirect to a URL with credentials refused');
    url = next;
  }
}

/** What the first response said about the whole file, for a reader that wants to fetch part of it apart. */
export interface VideoResponseInfo {
  /** Content-Length when declared (already checked against the size cap). */
  length: number | undefined;
  /** `Accept-Ranges: bytes`: the origin says it answers Range requests. */
  acceptsRanges: boolean;
}

/** A byte range of the video: `start` to `end` inclusive, as in a Range header. */
export interface ByteRange {
  start: number;
  end: number;
  /** The file's whole length: the answer's Content-Range must say the same. */
  total: number;
}

interface FetchPlan {
  range?: ByteRange;
  onResponse?: (info: VideoResponseInfo) => void;
  /** performance.now() by which the whole download must be done (a range fetched after the first request). */
  deadlineAt?: number;
}

/**
 * Streams `rawUrl` into `sink`, one chunk at a time (the next chunk is read once the sink resolved), and
 * resolves with the byte count. Every failure (DNS, refused, HTTP status upstream, timeout, too large, a
 * redirect refused) is a 'download-failed' MinerError whose message is its class's fixed text
 * (DOWNLOAD_FAILURE_MESSAGES) and whose `detail` is the one-line cause for the log; a malformed, non-http(s),
 * credentialed or refused-literal video_url is 'invalid-input', said in full (the caller's own text). When `signal` aborts (the challenge's deadline), it rejects with `signal.reason`. A
 * failed download leaves no connection open (its body is destroyed, which closes the socket). `onResponse`
 * hears what the (2xx, not too large) response declared before its first byte goes to the sink.
 */
export function fetchVideo(
  rawUrl: string,
  options: DownloadOptions,
  sink: (chunk: Buffer) => Promise<void>,
  signal?: AbortSignal,
  onResponse?: (info: VideoResponseInfo) => void,
): Promise<number> {
  return download(rawUrl, options, sink, signal, { onResponse });
}

/**
 * Streams one byte range of `rawUrl` into `sink`, under the same rules as fetchVideo (address policy at every
 * hop, redirect limit, timeout, abort) and capped at the range's length: the answer must be a 206 whose
 * Content-Range is exactly `range` (anything else is a 'download-failed' error, before any byte reaches the
 * sink). `deadlineAt` (performance.now()) ends it with the whole download's timeout when it started later.
 */
export function fetchVideoRange(
  rawUrl: string,
  options: DownloadOptions,
  range: ByteRange,
  sink: (chunk: Buffer) => Promise<void>,
  signal?: AbortSignal,
  deadlineAt?: number,
): Promise<number> {
  return download(rawUrl, options, sink, signal, { range, deadlineAt });
}

async function download(
  rawUrl: string,
  options: DownloadOptions,
  sink: (chunk: Buffer) => Promise<void>,
  signal: AbortSignal | undefined,
  plan: FetchPlan,
): Promise<number> {
  const { range } = plan;
  const url = checkVideoUrl(rawUrl, allowedAt(options, 0));
  const hops = [redactUrl(url)];
  const timeoutMs = plan.deadlineAt === undefined ? options.timeoutMs : Math.max(1, Math.ceil(plan.deadlineAt - performance.now()));
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([timeout, signal]) : timeout;
  const cap = range ? Math.min(options.maxBytes, range.end - range.start + 1) : options.maxBytes;
  const tooLarge = () =>
    range
      ? downloadError('http', hops, `range answer longer than the ${cap} bytes asked for`)
      : downloadError('too-large', hops, `larger than the ${options.maxBytes}-byte cap (DOWNLOAD_MAX_BYTES)`);
  let body: Readable | undefined;
  let bytes = 0;
  try {
    const extra: Record<string, string> = range ? { range: `bytes=${range.start}-${range.end}` } : {};
    const response = await requestFollowing(url, hops, options, combined, extra);
    body = response.body;
    const status = response.statusCode;
    if (status < 200 || status >= 300) throw downloadError('http', hops, `HTTP ${status} ${STATUS_CODES[status] ?? ''}`.trim());
    const declared = Number(header(response.headers, 'content-length') ?? NaN);
    if (range) {
      const expected = `bytes ${range.start}-${range.end}/${range.total}`;
      if (status !== 206 || header(response.headers, 'content-range') !== expected) {
        throw downloadError('http', hops, `range request not honoured (HTTP ${status})`);
      }
    }
    if (declared > cap) throw tooLarge();
    plan.onResponse?.({
      length: Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined,
      acceptsRanges: /^\s*bytes\s*$/i.test(header(response.headers, 'accept-ranges') ?? ''),
    });
    // Counted while streaming, so a lying (or absent) Content-Length cannot fill the disk.
    for await (const chunk of body as AsyncIterable<Buffer>) {
      bytes += chunk.byteLength;
      if (bytes > cap) throw tooLarge();
      await sink(chunk);
      if (combined.aborted) break;
    }
    if (combined.aborted) throw combined.reason;
    if (bytes === 0) throw downloadError('http', hops, 'empty response body');
    if (range && bytes !== cap) throw downloadError('http', hops, `range answer ended after ${bytes} of ${cap} bytes`);
    return bytes;
  } catch (error) {
    if (body) discard(body);
    if (signal?.aborted) throw signal.reason;
    if (error instanceof MinerError) throw error;
    if ((error as { code?: unknown })?.code === ADDRESS_NOT_ALLOWED) {
      // A name that resolved to a refused address: to the caller a network error, like a name that does not resolve.
      throw downloadError('network', hops, `${(error as AddressNotAllowedError).message} ${ALLOW_PRIVATE_HINT}`);
    }
    if (timeout.aborted || TIMEOUT_CODES.has((error as { code?: string })?.code ?? '')) {
      throw downloadError('timeout', hops, `timed out after ${options.timeoutMs / 1000} s (DOWNLOAD_TIMEOUT_S)`);
    }
    throw downloadError('network', hops, causeOf(error));
  }
}
