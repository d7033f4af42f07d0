/** What the deploy unit suites share: a pushed digest, scratch folders for state files and a deploy lock's owner. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import type { LockOwner } from '../../lib/deploy/lock.ts';

export const DIGEST = 'sha256:5d41402abc4b2a76b9719d911017c592ae2e3fd4b5b52c0f3b9c3bd5c0d1e2f3';

const scratch: string[] = [];
/** A fresh temporary folder, removed after the suite. */
export function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'deploy-unit-'));
  scratch.push(dir);
  return dir;
}
after(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** A lock owner with a fixed `since`, on this host unless `host` is given. */
export const owner = (id: string, pid: number, command: string, host = os.hostname()): LockOwner => ({
  id,
  pid,
  host,
  command,
  since: '2025-05-05T05:05:05.000Z',
});
