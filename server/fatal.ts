/**
 * The server process's last resort: an exception nobody caught or a rejection nobody handled, anywhere in
 * the process, is logged with its stack and ends the process with a non-zero exit code. The container's
 * restart policy brings the miner back; carrying on in an unknown state, or hanging, is never better.
 */
import { log } from '../lib/core/log.ts';

/** The exit code of a process ended by an error nobody handled. */
export const FATAL_EXIT_CODE = 1;

function fieldsOf(error: unknown): { error: string; stack?: string } {
  if (error instanceof Error) return { error: error.message, stack: error.stack };
  return { error: String(error) };
}

function fatal(what: string, error: unknown): never {
  try {
    log.error(`${what}: exiting`, fieldsOf(error));
  } finally {
    // stderr is synchronous for files, pipes and terminals on Linux: the line is out before the exit.
    process.exit(FATAL_EXIT_CODE);
  }
}

let installed = false;

/** Installs the handlers once; `npm start` (server/main.ts) calls it first thing. */
export function installFatalHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('uncaughtException', (error) => fatal('uncaught exception', error));
  process.on('unhandledRejection', (reason) => fatal('unhandled rejection', reason));
}
