/** lib/core/atomic-write.ts on a real filesystem: the folder is made, the file replaced whole, no scratch left. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { writeFileAtomic } from '../../lib/core/atomic-write.ts';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

test('writes into a folder it creates, replaces the old content, and leaves no scratch file', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atomic-write-'));
  dirs.push(dir);
  const file = path.join(dir, 'a', 'b', 'state.json');
  await writeFileAtomic(file, '{"v": 1}\n');
  assert.equal(await readFile(file, 'utf8'), '{"v": 1}\n');
  await writeFileAtomic(file, '{"v": 2}\n');
  assert.equal(await readFile(file, 'utf8'), '{"v": 2}\n');
  assert.deepEqual(await readdir(path.dirname(file)), ['state.json']);
});
