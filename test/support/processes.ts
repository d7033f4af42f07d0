/** What the tests ask of the operating system about the processes they start (Linux /proc). */
import { readdirSync, readFileSync } from 'node:fs';

/** Live child processes of this test process with `needle` in their argv: an ffmpeg left behind shows here. */
export function childrenRunning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {
      // the process ended while being read
    }
  }
  return pids;
}
