/**
 * Video download: stream a URL into a temp file with undici's request() (a Node stream body piped straight
 * to disk), under a whole-download deadline, a size cap and a redirect limit.
 *
 * Not Node's built-in fetch: on Node 24 (bundled undici 7.30.2) a body paused by backpressure when the peer
 * closes the connection right after it (HTTP/1.0 style) fails an assertion in undici's parser outside any
 * promise, which ends the whole process. The undici package resumes the parser instead.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { Agent, type Dispatcher, request } from 'undici';
import { MinerError } from '../core/errors.ts';

export interface DownloadOptions {
  /** The whole download (every hop, headers and body) must finish within this. */
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
}

export interface DownloadedVideo {
  path: string;
  bytes: number;
  /** Deletes the temp file and its folder; safe to call twice. */
  cleanup(): Promise<void>;
}

/** The downloads' own connection pool, apart from the global dispatcher that fetch() uses. */
const agent = new Agent();

/** undici's own timeouts: they end the download the same way as the whole-download deadline. */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** A URL as it may appear in a message: never with its user:password. */
export function redactUrl(url: URL): string {
  if (!url.username && !url.password) return url.href;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

/** The same for a string that did not parse as a URL: drop anything between "scheme://" and an "@". */
function redactRaw(raw: string): string {
  return raw.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1');
}

function downloadError(display: string, cause: string): MinerError {
  return new MinerError(`Video download failed (${display}): ${cause}`, { kind: 'download-failed' });
}

function assertHttpUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new MinerError(`video_url is not a valid URL: ${JSON.stringify(redactRaw(raw).slice(0, 300))}`, { kind: 'invalid-input' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MinerError(`video_url must be an http(s) URL, got ${url.protocol}`, { kind: 'invalid-input' });
  }
  if (url.username || url.password) {
    throw new MinerError(`video_url must not carry credentials (user:password@): ${redactUrl(url)}`, { kind: 'invalid-input' });
  }
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

/** One line saying why a request or the stream failed, from undici's or the socket's error. */
function causeOf(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = String(message ?? error)
    .split('\n')[0]
    .slice(0, 200);
  if (typeof code !== 'string') return text;
  if (/^E[A-Z]+$/.test(code)) return code; // a system error: ECONNREFUSED, ENOTFOUND, ECONNRESET ...
  return text.includes(code) ? text : `${text} (${code})`;
}

/** Follow at most `maxRedirects` redirects by hand so each hop is checked to be http(s). */
async function requestFollowing(
  start: URL,
  display: string,
  options: DownloadOptions,
  signal: AbortSignal,
): Promise<Dispatcher.ResponseData> {
  let url = start;
  for (let hop = 0; ; hop++) {
    const response = await request(url, {
      method: 'GET',
      headers: { accept: '*/*', 'user-agent': 'score-miner' },
      dispatcher: agent,
      signal,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    const status = response.statusCode;
    if (status < 300 || status >= 400 || status === 304) return response;
    discard(response.body); // a redirect's body is never read
    const location = header(response.headers, 'location');
    if (!location) throw downloadError(display, `redirect ${status} without a Location header`);
    if (hop >= options.maxRedirects) throw downloadError(display, `more than ${options.maxRedirects} redirects`);
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw downloadError(display, `redirect ${status} to an invalid Location`);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw downloadError(display, `redirect to ${next.protocol} refused`);
    if (next.username || next.password) throw downloadError(display, 'redirect to a URL with credentials refused');
    url = next;
  }
}

/**
 * Stream `rawUrl` into a temp file. Every failure (DNS, refused, HTTP status upstream, timeout, too large) is
 * a 'download-failed' MinerError with a one-line cause; a malformed or non-http(s) URL is 'invalid-input'.
 * The temp folder is removed on failure and by `cleanup()` on success; a failed download leaves no
 * connection open (its body is destroyed, which closes the socket).
 */
export async function downloadVideo(rawUrl: string, options: DownloadOptions): Promise<DownloadedVideo> {
  const url = assertHttpUrl(rawUrl);
  const display = redactUrl(url);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'score-miner-'));
  const file = path.join(dir, 'video.mp4');
  const cleanup = () => rm(dir, { recursive: true, force: true, maxRetries: 3 });
  const signal = AbortSignal.timeout(options.timeoutMs);
  const timedOut = () => downloadError(display, `timed out after ${options.timeoutMs / 1000} s (DOWNLOAD_TIMEOUT_S)`);
  const tooLarge = () => downloadError(display, `larger than the ${options.maxBytes}-byte cap (DOWNLOAD_MAX_BYTES)`);
  let body: Readable | undefined;
  let out: WriteStream | undefined;
  let bytes = 0;
  try {
    const response = await requestFollowing(url, display, options, signal);
    body = response.body;
    const status = response.statusCode;
    if (status < 200 || status >= 300) throw downloadError(display, `HTTP ${status} ${STATUS_CODES[status] ?? ''}`.trim());
    const declared = Number(header(response.headers, 'content-length') ?? NaN);
    if (declared > options.maxBytes) throw tooLarge();
    // Counted while streaming, so a lying (or absent) Content-Length cannot fill the disk.
    const capped = async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        bytes += chunk.byteLength;
        if (bytes > options.maxBytes) throw tooLarge();
        yield chunk;
      }
    };
    out = createWriteStream(file);
    await pipeline(body, capped, out, { signal });
    if (bytes === 0) throw downloadError(display, 'empty response body');
    return { path: file, bytes, cleanup };
  } catch (error) {
    if (body) discard(body);
    if (out) {
      if (!out.destroyed) out.destroy();
      await finished(out).catch(() => {}); // the file is closed before its folder is removed
    }
    await cleanup().catch(() => {});
    if (error instanceof MinerError) throw error;
    if (signal.aborted || TIMEOUT_CODES.has((error as { code?: string })?.code ?? '')) throw timedOut();
    throw downloadError(display, causeOf(error));
  }
}
