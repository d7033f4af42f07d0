/**
 * The thin adapter between node:http and plain handlers. Handlers are `(request) -> reply` functions that
 * tests can call without a socket; this file reads the body once with a cap (413), maps a MinerError to its
 * status and anything else to a generic 500 (stack logged, never echoed), and writes the reply.
 *
 * It also owns the sockets: Node's own parser errors and read timeouts are answered with JSON too (400, 408,
 * 431: see `clientErrorStatus`), and `shutdown()` stops the server in about a second, waiting only for the
 * handlers that are running (their request fully received) — see `MinerHttpServer`.
 *
 * Before any of that, per source address (server/limits.ts): a connection over MAX_CONNECTIONS_PER_ADDRESS is
 * closed at once, and a request over RATE_LIMIT_PER_S / RATE_LIMIT_BURST gets 429 with Retry-After before its
 * body is read, so a flood costs a counter lookup per request, never the guard's hashing or sr25519 work.
 */

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ErrorKind, MinerError } from '../lib/core/errors.ts';
import { clip, log, RepeatSummary } from '../lib/core/log.ts';
import { addressKey, ConnectionCounter, RateLimiter } from './limits.ts';

export interface HandlerRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Raw body bytes exactly as received (the signatures cover these). */
  body: Buffer;
  /** performance.now() when the request arrived: processing_time counts from here. */
  receivedAt: number;
  /** The peer's address as its socket reports it (IPv4 as ::ffff:a.b.c.d on a dual-stack socket); undefined once gone. */
  remoteAddress?: string;
}

export interface Reply {
  status: number;
  /** An object is sent as JSON; a string as HTML. */
  body: unknown;
  headers?: Record<string, string>;
}

export type Handler = (request: HandlerRequest) => Promise<Reply>;

/** An error the server itself raises with its status (401/403 guard, 400 body, 404/405 routes, 503 busy). */
export class HttpError extends MinerError {
  readonly status: number;

  constructor(status: number, message: string, hint?: string) {
    super(message, { hint, kind: status < 500 ? 'invalid-input' : 'failed' });
    this.status = status;
  }
}

/** The one place where domain errors become HTTP statuses. */
const STATUS_OF_KIND: Record<ErrorKind, number> = {
  'invalid-input': 400,
  'download-failed': 502,
  'undecodable-video': 422,
  failed: 500,
};

export function statusOf(error: unknown): number {
  if (error instanceof HttpError) return error.status;
  if (error instanceof MinerError) return STATUS_OF_KIND[error.kind];
  return 500;
}

/** Client errors carry their cause; a 500 says only that it happened (the log has the internals). */
export function errorReply(error: unknown): Reply {
  const status = statusOf(error);
  if (status === 500) {
    log.error('internal error', { error: (error as Error)?.message ?? String(error), stack: (error as Error)?.stack });
    return { status, body: { detail: 'Internal server error' } };
  }
  const { message, detail } = error as MinerError;
  // A generic message (a failed download) has its cause in `detail`: for this log, never for the caller.
  if (status >= 500 || detail) log.warn(message, { status, detail });
  const headers = status === 503 ? { 'retry-after': '5' } : undefined;
  return { status, body: { detail: message }, headers };
}

class BodyTooLarge extends Error {}

function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.removeAllListeners('data');
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
    // A connection that goes away mid-body (client gone, read timeout answered, shutdown) settles it too.
    request.on('close', () => reject(new Error('request closed before its body was complete')));
  });
}

function send(response: ServerResponse, reply: Reply, closeConnection = false): void {
  const isHtml = typeof reply.body === 'string';
  const payload = isHtml ? (reply.body as string) : JSON.stringify(reply.body);
  response.writeHead(reply.status, {
    'content-type': isHtml ? 'text/html; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(payload),
    ...(closeConnection ? { connection: 'close' } : {}),
    ...reply.headers,
  });
  response.end(payload);
}

/**
 * The status for an error Node's HTTP server reports on 'clientError' (codes as Node 24 emits them), or
 * undefined for a connection error (ECONNRESET, EPIPE, ...) where there is nobody to answer.
 * - ERR_HTTP_REQUEST_TIMEOUT: headersTimeout and requestTimeout alike (Node uses this one code for both;
 *   a connection that sent nothing at all gets it after headersTimeout too) -> 408
 * - HPE_HEADER_OVERFLOW: request line + headers over --max-http-header-size (16 KiB) -> 431
 * - HPE_CHUNK_EXTENSIONS_OVERFLOW: chunk extensions over Node's limit -> 413 (as Node's own reply)
 * - any other HPE_* (llhttp: HPE_INVALID_METHOD, HPE_INVALID_URL, HPE_INVALID_VERSION,
 *   HPE_INVALID_HEADER_TOKEN, HPE_INVALID_CONTENT_LENGTH, HPE_INVALID_CHUNK_SIZE, ...) -> 400
 */
export function clientErrorStatus(code: string | undefined): number | undefined {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return 413;
  if (code?.startsWith('HPE_')) return 400;
  return undefined;
}

/** A complete HTTP/1.1 response as bytes, for a socket Node's parser gave up on (no ServerResponse to use). */
export function rawJsonResponse(status: number, body: object): string {
  const payload = JSON.stringify(body);
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\n` +
    'content-type: application/json\r\n' +
    `content-length: ${Buffer.byteLength(payload)}\r\n` +
    'connection: close\r\n\r\n' +
    payload
  );
}

/** After answering a client error the socket is ended, and destroyed if the peer has not closed by then. */
const CLIENT_ERROR_LINGER_MS = 1000;
/** The checker's period is a quarter of the shortest read timeout, within these bounds. */
const CHECK_INTERVAL_MIN_MS = 100;
const CHECK_INTERVAL_MAX_MS = 1000;

export interface HttpServerOptions {
  bodyMaxBytes: number;
  /** Headers must be complete this long after a request starts (a fresh connection counts as one starting). */
  headersTimeoutMs: number;
  /** The whole request (headers and body) must be in this long after it starts. */
  requestTimeoutMs: number;
  /** Per-source-address limits; absent: none. */
  limits?: AddressLimits;
}

/** See server/limits.ts; 0 turns a limit off. */
export interface AddressLimits {
  /** Open connections per address: one more is closed at once, before Node reads a byte of it. */
  connectionsPerAddress: number;
  /** Sustained requests per second per address, and how many may come at once: more get 429. */
  requestsPerSecond: number;
  requestBurst: number;
  /** Injected by tests; default performance.now (ms). */
  now?: () => number;
}

export interface ShutdownReport {
  /** Connections destroyed at once: idle keep-alive, a request not fully received, nothing sent yet. */
  closedAtOnce: number;
  /** Handlers running when the shutdown began, and how many of them had answered when it ended. */
  inFlight: number;
  answered: number;
  /** Handlers still running at the bound: their connections were destroyed. */
  abandoned: number;
  ms: number;
}

export interface MinerHttpServer {
  server: http.Server;
  /** Handlers running now: request fully received, reply not yet written out. */
  inFlight(): number;
  /**
   * Stop: no new connections; every connection without a running handler (idle keep-alive, half-sent
   * headers or body, nothing sent) destroyed at once; running handlers may answer (their connection closes
   * after the reply) until their receipt + `handlerBudgetMs`; then whatever is left is destroyed.
   * Requests that arrive meanwhile on a connection still open get 503.
   */
  shutdown(options: { handlerBudgetMs: number }): Promise<ShutdownReport>;
}

interface Running {
  socket: Socket;
  receivedAt: number;
}

/** The 429 for a request over its address's rate limit. */
export function tooManyRequests(
  address: string,
  retryAfter: number,
  limits: Pick<AddressLimits, 'requestsPerSecond' | 'requestBurst'>,
): Reply {
  return {
    status: 429,
    body: {
      detail: `Too many requests from ${address}: at most ${limits.requestsPerSecond} per second (${limits.requestBurst} at once); retry after ${retryAfter} s`,
    },
    headers: { 'retry-after': String(retryAfter) },
  };
}

/**
 * Whether a refused request's body (still to come) is small enough to read and drop, keeping the connection:
 * none at all, or a declared length within the body limit. Anything else closes the connection after the answer.
 */
export function bodyIsSmall(headers: IncomingHttpHeaders, bodyMaxBytes: number): boolean {
  const declared = headers['content-length'];
  if (declared === undefined) return headers['transfer-encoding'] === undefined;
  return Number(declared) <= bodyMaxBytes;
}

/** The JSON detail for one of Node's parser errors or read timeouts (clientErrorStatus's statuses). */
export function clientErrorDetail(status: number, message: string, headersTimeoutMs: number, requestTimeoutMs: number): string {
  if (status === 408) {
    return `Request not received in time: headers within ${headersTimeoutMs / 1000} s, the whole request within ${requestTimeoutMs / 1000} s`;
  }
  if (status === 431) return 'Request headers too large';
  if (status === 413) return 'Chunk extensions too large';
  return `Malformed HTTP request: ${message.replace(/^Parse Error: /, '')}`;
}

export function createHttpServer(handler: Handler, options: HttpServerOptions): MinerHttpServer {
  // Node refuses headersTimeout > requestTimeout; the request timeout bounds the headers anyway.
  const headersTimeout = Math.min(options.headersTimeoutMs, options.requestTimeoutMs);
  const requestTimeout = options.requestTimeoutMs;
  const connections = new Set<Socket>();
  const running = new Set<Running>();
  const limits = options.limits ?? { connectionsPerAddress: 0, requestsPerSecond: 0, requestBurst: 1 };
  const perAddress = new ConnectionCounter(limits.connectionsPerAddress);
  const rate = new RateLimiter({ perSecond: limits.requestsPerSecond, burst: limits.requestBurst, now: limits.now });
  /** Each connection's address key, taken when it opened (a closed socket no longer knows its peer). */
  const addressOf = new WeakMap<Duplex, string>();
  /** Refusals come at an attacker's pace: the first of each kind is logged, then a count per minute. */
  const refusals = new RepeatSummary().start();
  /** Sockets answered by the clientError handler: nothing more is read from them or run for them. */
  const answered = new WeakSet<Duplex>();
  /** The latest response of each connection. */
  const responses = new WeakMap<Duplex, ServerResponse>();
  let draining = false;
  let onIdle: (() => void) | undefined;

  const finishRunning = (job: Running) => {
    running.delete(job);
    if (running.size === 0) onIdle?.();
  };

  const server = http.createServer(
    {
      headersTimeout,
      requestTimeout,
      // Node checks the two timeouts on this period (default 30 s, which would stretch a 10 s timeout to 40 s).
      connectionsCheckingInterval: Math.min(
        CHECK_INTERVAL_MAX_MS,
        Math.max(CHECK_INTERVAL_MIN_MS, Math.floor(Math.min(headersTimeout, requestTimeout) / 4)),
      ),
    },
    async (request, response) => {
      const receivedAt = performance.now();
      const socket = request.socket;
      responses.set(socket, response);
      // 'close' comes once the reply is written out, or the connection is gone (listened to before either can happen).
      const replied = new Promise<void>((resolve) => response.once('close', () => resolve()));
      if (answered.has(socket)) {
        socket.destroy();
        return;
      }
      if (draining) {
        send(response, { status: 503, body: { detail: 'Server is shutting down' } }, true);
        request.resume();
        return;
      }
      const address = addressOf.get(socket) ?? addressKey(socket.remoteAddress);
      const retryAfter = rate.take(address);
      if (retryAfter > 0) {
        refusals.note('rate limit', 'info', 'request refused: rate limit', {
          status: 429,
          address,
          path: clip(request.url),
          limit: `${limits.requestsPerSecond}/s burst ${limits.requestBurst}`,
        });
        send(response, tooManyRequests(address, retryAfter, limits), !bodyIsSmall(request.headers, options.bodyMaxBytes));
        request.resume();
        return;
      }
      let body: Buffer;
      try {
        body = await readBody(request, options.bodyMaxBytes);
      } catch (error) {
        if (error instanceof BodyTooLarge) {
          // Stop reading the rest of an oversize upload: answer and close this connection.
          send(response, { status: 413, body: { detail: `Request body larger than ${options.bodyMaxBytes} bytes` } }, true);
          request.resume();
          return;
        }
        // The connection went away before the body was in (client gone, 408 answered, shutdown): nobody to answer.
        if (request.destroyed || socket.destroyed) return;
        send(response, errorReply(error));
        return;
      }
      if (answered.has(socket) || socket.destroyed) return; // the body completed after a 408 went out
      const job: Running = { socket, receivedAt };
      running.add(job);
      try {
        let reply: Reply;
        try {
          const url = new URL(request.url ?? '/', 'http://miner');
          reply = await handler({
            method: request.method ?? 'GET',
            path: url.pathname,
            headers: request.headers,
            body,
            receivedAt,
            remoteAddress: socket.remoteAddress,
          });
        } catch (error) {
          reply = errorReply(error);
        }
        // While draining, the connection closes after this reply.
        if (!response.destroyed) send(response, reply, draining);
        await replied; // only then is this handler done
      } finally {
        finishRunning(job);
      }
    },
  );

  server.on('connection', (socket: Socket) => {
    const address = addressKey(socket.remoteAddress);
    // Refused by closing, not with a 429: an answer needs the request read first (answering before it races the
    // client's write into a reset), which holds the very socket this limit is there to free. Clients that matter
    // never get near it: the validator opens one connection per challenge.
    if (!perAddress.add(address)) {
      refusals.note('connection limit', 'info', 'connection refused: too many open from one address', {
        address,
        limit: limits.connectionsPerAddress,
      });
      socket.destroy();
      return;
    }
    addressOf.set(socket, address);
    connections.add(socket);
    socket.once('close', () => {
      connections.delete(socket);
      perAddress.remove(address);
    });
  });

  // Node's parser errors and read timeouts: Node's own replies have no body; ours are JSON like every other.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const status = clientErrorStatus(error.code);
    // A reply already under way on this connection (a 413, a pipelined request's handler) must not be corrupted.
    const replying = responses.get(socket)?.headersSent === true || [...running].some((job) => job.socket === socket);
    if (status === undefined || !socket.writable || answered.has(socket) || replying) {
      socket.destroy();
      return;
    }
    answered.add(socket);
    log.debug('client error', { code: error.code, status });
    socket.end(rawJsonResponse(status, { detail: clientErrorDetail(status, error.message, headersTimeout, requestTimeout) }));
    // Keep reading (so closing never resets the connection before the answer is read), but not for long.
    setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref();
  });

  return {
    server,
    inFlight: () => running.size,
    async shutdown({ handlerBudgetMs }) {
      const startedAt = performance.now();
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const busy = new Set([...running].map((job) => job.socket));
      let closedAtOnce = 0;
      for (const socket of connections) {
        if (busy.has(socket)) continue;
        socket.destroy();
        closedAtOnce++;
      }
      const inFlight = running.size;
      if (inFlight > 0) {
        // Each handler answers by its deadline, counted from its receipt: wait for the last of them.
        const until = Math.max(...[...running].map((job) => job.receivedAt)) + handlerBudgetMs;
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          onIdle = resolve;
          timer = setTimeout(resolve, Math.max(0, until - performance.now()));
        });
        clearTimeout(timer);
        onIdle = undefined;
      }
      const abandoned = running.size;
      for (const socket of connections) socket.destroy();
      await closed;
      refusals.stop();
      return { closedAtOnce, inFlight, answered: inFlight - abandoned, abandoned, ms: Math.round(performance.now() - startedAt) };
    },
  };
}
