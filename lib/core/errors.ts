/**
 * One error type for the whole toolkit: a user-facing message, a hint with the next step, and a `kind` that
 * says what went wrong in the domain's words. lib never speaks HTTP: the server maps kinds to statuses in one
 * place (server/http.ts), and tasks render the message and hint the same way.
 *
 * `detail` is the private half of an error whose message goes to a caller who may not learn the cause: the
 * server replies with `message` only and writes `detail` to its log (a failed download says "network error"
 * to the validator, "connect ECONNREFUSED 10.0.0.5:8080" to the operator).
 */
export type ErrorKind =
  /** The caller's input is malformed (a field, a URL). */
  | 'invalid-input'
  /** The video could not be fetched (refused, timed out, too large, HTTP error upstream). */
  | 'download-failed'
  /** The bytes are not a (complete) video. */
  | 'undecodable-video'
  /** Everything else: configuration, chain, an internal fault. */
  | 'failed';

export class MinerError extends Error {
  readonly hint?: string;
  readonly kind: ErrorKind;
  /** For the operator's log only, never for a reply: the cause behind a deliberately generic message. */
  readonly detail?: string;

  constructor(message: string, options: { hint?: string; kind?: ErrorKind; cause?: unknown; detail?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MinerError';
    this.hint = options.hint;
    this.kind = options.kind ?? 'failed';
    this.detail = options.detail;
  }
}

/** The message with its private detail, for a log line: "could not download the video: timeout (GET ...: timed out after 20 s)". */
export function messageWithDetail(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return error instanceof MinerError && error.detail ? `${message} (${error.detail})` : message;
}

/** "cause\n  detail: ...\n  next: hint" for terminals (the operator's own); never a stack trace unless asked for. */
export function describeError(error: unknown, verbose = false): string {
  if (error instanceof MinerError) {
    const lines = [`error: ${error.message}`];
    if (error.detail) lines.push(`  detail: ${error.detail}`);
    if (error.hint) lines.push(`  next: ${error.hint}`);
    if (verbose && error.stack) lines.push(error.stack);
    return lines.join('\n');
  }
  const message = error instanceof Error ? error.message : String(error);
  const lines = [`error: ${message}`];
  if (verbose && error instanceof Error && error.stack) lines.push(error.stack);
  else lines.push('  next: unexpected error: rerun with --verbose (tasks) or LOG_LEVEL=debug (server) for the stack trace, and report it');
  return lines.join('\n');
}
