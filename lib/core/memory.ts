/**
 * Hands back the memory start-up used and no longer needs. V8 keeps the pages freed by garbage collection in a
 * pool for reuse, and start-up frees a lot: loading the modules (TypeScript stripping, @polkadot's WebAssembly)
 * left about 150 MB of pooled pages on the main thread, measured, against 25 MB of live heap. Only a
 * last-resort collection releases the pool, and only `gc()` asks for one; `--expose-gc` is set here rather than
 * on the command line so that `node server/main.ts` stays the whole command.
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** One synchronous, last-resort garbage collection of the calling thread's heap (tens of milliseconds). */
export function releaseStartupMemory(): void {
  v8.setFlagsFromString('--expose-gc');
  // A context created after the flag is set has gc(); this thread's global may not.
  const gc = vm.runInNewContext('gc') as GcFunction;
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/**
 * glibc's malloc on transparent huge pages (glibc >= 2.35). Why it matters here: spawning ffmpeg forks the
 * miner, and a fork write-protects every page the process has; onnxruntime then takes one page fault per 4 KB
 * of its 1.2 GB of activations on the next window (measured: about 245,000 per challenge, and the fork itself
 * blocked the event loop for 50-80 ms). On 2 MB pages that is about 1,300 faults and a 15 ms fork, and the
 * model runs faster between forks too (fewer TLB misses). glibc reads the variable only when a process starts:
 * the image sets it, and so do `npm start`, the demo and the bench (scripts/miner-process.ts).
 */
export const MALLOC_HUGE_PAGES = 'glibc.malloc.hugetlb=1';

/** Whether a GLIBC_TUNABLES value (colon-separated name=value pairs) asks malloc for huge pages (1 or 2). */
export function mallocHugePagesIn(tunables: string | undefined): boolean {
  return (tunables ?? '').split(':').some((pair) => pair === MALLOC_HUGE_PAGES || pair === 'glibc.malloc.hugetlb=2');
}

/** GLIBC_TUNABLES with malloc's huge pages added to what is already there; an explicit hugetlb setting is kept. */
export function withMallocHugePages(tunables: string | undefined): string {
  const pairs = (tunables ?? '').split(':').filter((pair) => pair !== '');
  if (pairs.some((pair) => pair.startsWith('glibc.malloc.hugetlb='))) return pairs.join(':');
  return [...pairs, MALLOC_HUGE_PAGES].join(':');
}

export type TransparentHugePages = 'always' | 'madvise' | 'never' | 'unknown';

/** The kernel's transparent huge page mode (the bracketed word of /sys/kernel/mm/transparent_hugepage/enabled). */
export function parseTransparentHugePages(text: string): TransparentHugePages {
  const mode = /\[(\w+)\]/.exec(text)?.[1];
  return mode === 'always' || mode === 'madvise' || mode === 'never' ? mode : 'unknown';
}

export function transparentHugePages(): TransparentHugePages {
  try {
    return parseTransparentHugePages(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'));
  } catch {
    return 'unknown'; // not Linux, or /sys not mounted
  }
}

/** The C library's version when it is glibc ("2.36"), else undefined (musl, macOS). */
export function glibcVersion(): string | undefined {
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  return header?.glibcVersionRuntime;
}

/** glibc reads `glibc.malloc.hugetlb` from 2.35 on; older ones ignore it. */
function glibcHasHugetlb(version: string): boolean {
  const [major, minor] = version.split('.').map(Number);
  return major > 2 || (major === 2 && minor >= 35);
}

/** What the start-up log says about it, and the hint when it is not in effect. */
export function hugePagesStatus(
  tunables: string | undefined,
  thp: TransparentHugePages,
  glibc: string | undefined,
): { malloc_huge_pages: 'on' | 'off'; thp: TransparentHugePages; glibc: string; hint?: string } {
  const off = { malloc_huge_pages: 'off' as const, thp, glibc: glibc ?? 'none' };
  if (glibc === undefined || !glibcHasHugetlb(glibc)) return { ...off, hint: 'needs glibc 2.35 or later (the image has it)' };
  if (!mallocHugePagesIn(tunables)) {
    return { ...off, hint: `start the miner with GLIBC_TUNABLES=${MALLOC_HUGE_PAGES} (npm start and the image do): faster challenges` };
  }
  if (thp !== 'always' && thp !== 'madvise') {
    return { ...off, hint: `the kernel's transparent huge pages are ${thp}: madvise or always makes challenges faster` };
  }
  return { malloc_huge_pages: 'on', thp, glibc };
}
