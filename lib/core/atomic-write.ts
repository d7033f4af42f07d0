/**
 * Write a file so that readers see the old content or the new, never half of it: the text goes to a scratch file
 * beside the target (same filesystem) and is renamed over it, so a killed process leaves the old file intact.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export async function writeFileAtomic(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const scratch = `${file}.${process.pid}.tmp`;
  await writeFile(scratch, text);
  await rename(scratch, file);
}
