/**
 * One error type for the whole toolkit: a user-facing message, a hint with the next step, and (for the
 * server) the HTTP status it maps to. Server and tasks render it the same way.
 */
export class MinerError extends Error {
  readonly hint?: string;
  readonly status: number;

  constructor(message: string, options: { hint?: string; status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MinerError';
    this.hint = options.hint;
    this.status = options.status ?? 500;
  }
}

/** Shorthand for the server's client errors: `httpError(400, "Missing field: video_url")`. */
export function httpError(status: number, message: string, hint?: string): MinerError {
  return new MinerError(message, { status, hint });
}

/** "cause\n  next: hint" for terminals; never a stack trace unless asked for. */
export function describeError(error: unknown, verbose = false): string {
  if (error instanceof MinerError) {
    const lines = [`error: ${error.message}`];
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
