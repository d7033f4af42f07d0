/**
 * The thin adapter between node:http and plain handlers. Handlers are `(request) -> reply` functions that
 * tests can call without a socket; this file reads the body once with a cap (413), maps a MinerError to its
 * status and anything else to a generic 500 (stack logged, never echoed), and writes the reply.
 */

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import http from 'node:http';
import { type ErrorKind, MinerError } from '../lib/core/errors.ts';
import { log } from '../lib/core/log.ts';

export interface HandlerRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Raw body bytes exactly as received (the signatures cover these). */
  body: Buffer;
  /** performance.now() when the request arrived: processing_time counts from here. */
  receivedAt: number;
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
  const message = (error as MinerError).message;
  if (status >= 500) log.warn(message, { status });
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

export function createHttpServer(handler: Handler, options: { bodyMaxBytes: number }): http.Server {
  return http.createServer(async (request, response) => {
    const receivedAt = performance.now();
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
      send(response, errorReply(error));
      return;
    }
    let reply: Reply;
    try {
      const url = new URL(request.url ?? '/', 'http://miner');
      reply = await handler({ method: request.method ?? 'GET', path: url.pathname, headers: request.headers, body, receivedAt });
    } catch (error) {
      reply = errorReply(error);
    }
    if (!response.destroyed) send(response, reply);
  });
}
