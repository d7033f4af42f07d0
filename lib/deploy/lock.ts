/**
 * One deploy at a time: an atomic `mkdir` of `.deploy/lock` that records who holds it (pid, host, command,
 * since). `just deploy` (tasks/deploy.ts) takes it once for the whole chain and runs the steps in-process under
 * it; a step run alone takes it for itself. A lock left by a process that no longer exists on this host is taken
 * over. The lock folder also holds a copy of the run's step records (`.deploy/last-run.json` once released).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.ts';
import { MinerError } from '../core/errors.ts';
import type { StepRecord } from './state.ts';

export interface LockOwner {
  id: string;
  pid: number;
  host: string;
  command: string;
  since: string;
}

export interface DeployRun {
  owner: LockOwner;
  /** The words `just deploy` was given (for the rerun command). */
  words: string[];
  tag?: string;
  records: StepRecord[];
}

const lockDir = (stateDir: string) => path.join(stateDir, 'lock');
const runFile = (stateDir: string) => path.join(lockDir(stateDir), 'run.json');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readRun(stateDir: string): DeployRun | undefined {
  const file = runFile(stateDir);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as DeployRun) : undefined;
}

async function writeRun(stateDir: string, run: DeployRun): Promise<void> {
  await writeFileAtomic(runFile(stateDir), `${JSON.stringify(run, null, 2)}\n`);
}

/**
 * Take the lock for `owner` (pid: the process that will release it), or fail naming who holds it. A lock whose
 * holder is gone (same host, pid not running) is taken over; the caller is told so it can say it.
 */
export async function acquireLock(stateDir: string, owner: LockOwner, words: string[] = []): Promise<{ tookOver?: LockOwner }> {
  await mkdir(stateDir, { recursive: true });
  let tookOver: LockOwner | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await mkdir(lockDir(stateDir));
      await writeRun(stateDir, { owner, words, records: [] });
      return { tookOver };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const held = readRun(stateDir)?.owner;
      if (held && held.host === owner.host && !alive(held.pid)) {
        tookOver = held;
        await rm(lockDir(stateDir), { recursive: true, force: true });
        continue;
      }
      const who = held ? `pid ${held.pid} on ${held.host} (\`${held.command}\`) since ${held.since}` : 'an unknown process';
      throw new MinerError(`another deploy holds the lock: ${who}`, {
        hint: `wait for it to finish; if it is gone, remove ${lockDir(stateDir)} and rerun`,
      });
    }
  }
  throw new MinerError(`could not take the deploy lock ${lockDir(stateDir)}`, { hint: 'remove that folder and rerun' });
}

/** Release the lock if `id` holds it; the run's records are kept as `.deploy/last-run.json`. */
export async function releaseLock(stateDir: string, id: string): Promise<void> {
  const run = readRun(stateDir);
  if (!run || run.owner.id !== id) return;
  await rename(runFile(stateDir), path.join(stateDir, 'last-run.json'));
  await rm(lockDir(stateDir), { recursive: true, force: true });
}

export async function appendRecord(stateDir: string, id: string, record: StepRecord, tag?: string): Promise<void> {
  const run = readRun(stateDir);
  if (!run || run.owner.id !== id) return;
  run.records.push(record);
  if (tag) run.tag = tag;
  await writeRun(stateDir, run);
}

export function newOwner(id: string, pid: number, command: string): LockOwner {
  return { id, pid, host: os.hostname(), command, since: new Date().toISOString() };
}
