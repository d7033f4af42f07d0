/**
 * Per-challenge temp folders: `score-miner-<pid>-<start>-XXXXXX` under os.tmpdir() (TMPDIR). The pid and the
 * process's start stamp in the name let a later start tell a dead process's folders from a live one's: a
 * killed miner (SIGKILL, OOM) cannot clean up, and a container restarted with a persistent /tmp often gets
 * the same pid again, hence the stamp.
 *
 * A folder that cannot be made (read-only /tmp, a missing or full TMPDIR) is a MinerError naming the folder
 * and the fix, checked once at start-up (before the port opens) and again per challenge.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MinerError } from '../core/errors.ts';
import { log } from '../core/log.ts';

const PREFIX = 'score-miner-';
/** This process's start, as a short stamp: with the pid it names this process for its whole life. */
const STAMP = Math.round(performance.timeOrigin).toString(36);
/** mkdtemp appends six characters. */
const JOB_DIR = /^score-miner-(\d+)-([0-9a-z]+)-[A-Za-z0-9]{6}$/;

function tempDirError(root: string, error: unknown): MinerError {
  const { code, message } = error as NodeJS.ErrnoException;
  // The fix is in the message too: at run time only the message reaches the log (the hint is for start-up).
  return new MinerError(`cannot create a temp folder in ${root} (${code ?? message}): set TMPDIR to a writable folder`, {
    hint: 'the video is downloaded there; in a read-only container, mount one: docker run --tmpfs /tmp (or -e TMPDIR=...)',
    cause: error,
  });
}

/** A fresh, empty folder for one challenge. Remove it with removeJobDir. */
export async function createJobDir(): Promise<string> {
  const root = os.tmpdir();
  try {
    return await mkdtemp(path.join(root, `${PREFIX}${process.pid}-${STAMP}-`));
  } catch (error) {
    throw tempDirError(root, error);
  }
}

export async function removeJobDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by someone else
  }
}

/**
 * Removes the job folders whose owner is gone: its pid is not running, or it is this pid from an earlier
 * life (another start stamp). Folders of live miners and anything not named like a job folder are kept.
 * Returns the names removed.
 */
export async function sweepStaleJobDirs(root = os.tmpdir()): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return []; // no readable temp root: createJobDir reports it
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = JOB_DIR.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    const stale = pid === process.pid ? match[2] !== STAMP : !processAlive(pid);
    if (!stale) continue;
    await rm(path.join(root, name), { recursive: true, force: true, maxRetries: 3 }).then(
      () => removed.push(name),
      (error) => log.warn('could not remove a stale temp folder', { folder: path.join(root, name), error: (error as Error).message }),
    );
  }
  return removed;
}

/** Start-up: sweep dead processes' folders, then prove a job folder can be made (else throw the clear error). */
export async function prepareTempRoot(): Promise<void> {
  const removed = await sweepStaleJobDirs();
  if (removed.length > 0) log.info('removed temp folders of stopped miners', { root: os.tmpdir(), count: removed.length });
  await removeJobDir(await createJobDir());
}
