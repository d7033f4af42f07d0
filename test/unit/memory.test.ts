/**
 * lib/core/memory.ts: the pages V8 pooled after a burst of garbage (as module loading leaves at start-up) go
 * back to the system, and malloc's huge pages spare the process a page fault per 4 KB after each fork (the
 * spawn of ffmpeg). Measured in fresh child processes, so nothing else in the test run moves the figures.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import {
  glibcVersion,
  hugePagesStatus,
  MALLOC_HUGE_PAGES,
  mallocHugePagesIn,
  parseTransparentHugePages,
  transparentHugePages,
  withMallocHugePages,
} from '../../lib/core/memory.ts';

const CHILD = `
import { readFileSync } from 'node:fs';
import { releaseStartupMemory } from ${JSON.stringify(new URL('../../lib/core/memory.ts', import.meta.url).href)};
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
let junk = [];
for (let i = 0; i < 2_000_000; i++) junk.push({ i, s: 'item ' + i });
const full = rss();
junk = null;
const before = rss();
releaseStartupMemory();
releaseStartupMemory(); // a second call (worker and main thread both call it) is harmless
console.log(JSON.stringify({ full, before, after: rss(), gcOnGlobal: typeof globalThis.gc }));
`;

test('releaseStartupMemory: 200 MB of dropped objects leave the process (RSS), twice in a row, without a global gc()', () => {
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', CHILD], { encoding: 'utf8' }));
  assert.ok(out.full - out.before < 20, `RSS fell before the release: ${JSON.stringify(out)}`);
  assert.ok(out.full > 200, `the garbage did not build up: ${JSON.stringify(out)}`);
  assert.ok(out.before - out.after > 150, `less than 150 MB released: ${JSON.stringify(out)}`);
  assert.equal(out.gcOnGlobal, 'undefined', 'gc() leaked onto the global object');
});

test('GLIBC_TUNABLES: huge pages found among other tunables, added without dropping them, an explicit choice kept', () => {
  assert.equal(mallocHugePagesIn(undefined), false);
  assert.equal(mallocHugePagesIn(''), false);
  assert.equal(mallocHugePagesIn('glibc.malloc.hugetlb=1'), true);
  assert.equal(mallocHugePagesIn('glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2'), true);
  assert.equal(mallocHugePagesIn('glibc.malloc.hugetlb=0'), false);
  assert.equal(mallocHugePagesIn('glibc.malloc.hugetlb=10'), false);
  assert.equal(withMallocHugePages(undefined), MALLOC_HUGE_PAGES);
  assert.equal(withMallocHugePages('glibc.malloc.arena_max=2'), `glibc.malloc.arena_max=2:${MALLOC_HUGE_PAGES}`);
  // An explicit choice (0: off) is the miner's to make: kept as it is.
  assert.equal(withMallocHugePages('glibc.malloc.hugetlb=0:glibc.malloc.arena_max=2'), 'glibc.malloc.hugetlb=0:glibc.malloc.arena_max=2');
  assert.equal(withMallocHugePages('glibc.malloc.hugetlb=2'), 'glibc.malloc.hugetlb=2');
});

test('transparent huge pages: the bracketed mode of the kernel file; the start-up status says what is missing', () => {
  assert.equal(parseTransparentHugePages('always [madvise] never\n'), 'madvise');
  assert.equal(parseTransparentHugePages('[always] madvise never'), 'always');
  assert.equal(parseTransparentHugePages('always madvise [never]'), 'never');
  assert.equal(parseTransparentHugePages(''), 'unknown');
  assert.deepEqual(hugePagesStatus(MALLOC_HUGE_PAGES, 'madvise', '2.36'), { malloc_huge_pages: 'on', thp: 'madvise', glibc: '2.36' });
  assert.equal(hugePagesStatus(MALLOC_HUGE_PAGES, 'always', '3.0').malloc_huge_pages, 'on');
  const unset = hugePagesStatus(undefined, 'always', '2.36');
  assert.equal(unset.malloc_huge_pages, 'off');
  assert.match(unset.hint ?? '', /GLIBC_TUNABLES=glibc\.malloc\.hugetlb=1/);
  const never = hugePagesStatus(MALLOC_HUGE_PAGES, 'never', '2.36');
  assert.equal(never.malloc_huge_pages, 'off');
  assert.match(never.hint ?? '', /transparent huge pages are never: madvise/);
  for (const glibc of ['2.31', '2.9', undefined]) {
    const old = hugePagesStatus(MALLOC_HUGE_PAGES, 'madvise', glibc);
    assert.equal(old.malloc_huge_pages, 'off', String(glibc));
    assert.match(old.hint ?? '', /glibc 2\.35/);
  }
  assert.match(glibcVersion() ?? 'none', /^(\d+\.\d+|none)$/);
});

// 400 MB of array buffers, written; then a fork (spawnSync) and the same writes again: the faults they cost.
const FORK_CHILD = `
import { spawnSync } from 'node:child_process';
const buffers = Array.from({ length: 4 }, () => new Float32Array(25_000_000).fill(1));
const touch = () => { for (const b of buffers) for (let i = 0; i < b.length; i += 1024) b[i] = 2; };
touch();
const before = process.resourceUsage().minorPageFault;
spawnSync('true');
touch();
console.log(JSON.stringify({ faults: process.resourceUsage().minorPageFault - before, pages: 400_000_000 / 4096 }));
`;

function faultsAfterFork(tunables: string | undefined): { faults: number; pages: number } {
  const env = { ...process.env, GLIBC_TUNABLES: tunables };
  if (tunables === undefined) delete env.GLIBC_TUNABLES;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', FORK_CHILD], { encoding: 'utf8', env }));
}

test('after a fork, writing 400 MB faults on every 4 KB page without huge pages, on few with them where the status says on', () => {
  const plain = faultsAfterFork(undefined);
  assert.ok(plain.faults > plain.pages * 0.9, `the fork left fewer write faults than pages: ${JSON.stringify(plain)}`);
  // What the start-up log would say for this machine, checked against what happens on it.
  const status = hugePagesStatus(MALLOC_HUGE_PAGES, transparentHugePages(), glibcVersion());
  const huge = faultsAfterFork(MALLOC_HUGE_PAGES);
  if (status.malloc_huge_pages === 'on') {
    assert.ok(huge.faults < huge.pages * 0.1, `huge pages did not spare the faults (${JSON.stringify(status)}): ${JSON.stringify(huge)}`);
  } else {
    assert.ok(huge.faults > huge.pages * 0.9, `the status says off (${status.hint}), yet: ${JSON.stringify(huge)}`);
  }
});
