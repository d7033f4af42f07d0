/**
 * lib/core/memory.ts: the pages V8 pooled after a burst of garbage (as module loading leaves at start-up) go
 * back to the system. Measured in a fresh child process, so nothing else in the test run moves its RSS.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

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
