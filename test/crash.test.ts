/**
 * server/fatal.ts, the handlers `npm start` installs: an error nobody handles anywhere in the process is
 * logged with its stack and ends the process with a non-zero code, even while other work keeps it alive.
 * Each case runs in its own `node` process (a tiny inline script importing the same module).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { FATAL_EXIT_CODE } from '../server/fatal.ts';

const fatalModule = new URL('../server/fatal.ts', import.meta.url).href;

/** Runs `body` after installing the handlers; an interval keeps the process alive, as a server would. */
function crash(body: string): { status: number | null; signal: NodeJS.Signals | null; stderr: string } {
  const script = [
    `import { installFatalHandlers } from ${JSON.stringify(fatalModule)};`,
    'installFatalHandlers();',
    'setInterval(() => {}, 1000);',
    body,
  ].join('\n');
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(result.error, undefined, `the process did not end by itself: ${result.error?.message}`);
  return { status: result.status, signal: result.signal, stderr: result.stderr };
}

describe('fatal handlers', () => {
  it('an unhandled rejection is logged with its stack and exits non-zero', () => {
    const { status, signal, stderr } = crash("Promise.reject(new Error('boom-rejection'));");
    assert.equal(signal, null);
    assert.notEqual(status, 0);
    assert.equal(status, FATAL_EXIT_CODE);
    assert.match(stderr, /ERROR +unhandled rejection: exiting error=boom-rejection stack="Error: boom-rejection\\n +at /);
  });
  it('an uncaught exception (thrown in a timer) is logged with its stack and exits non-zero', () => {
    const { status, stderr } = crash("setTimeout(() => { throw new TypeError('boom-exception'); }, 10);");
    assert.equal(status, FATAL_EXIT_CODE);
    assert.match(stderr, /ERROR +uncaught exception: exiting error=boom-exception stack="TypeError: boom-exception\\n +at /);
  });
  it('a rejection with something that is not an Error is logged too', () => {
    const { status, stderr } = crash("Promise.reject('plain reason');");
    assert.equal(status, FATAL_EXIT_CODE);
    assert.match(stderr, /ERROR +unhandled rejection: exiting error="plain reason"/);
  });
  it('one line per crash, nothing else on stderr', () => {
    const { stderr } = crash("Promise.reject(new Error('once'));");
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
  });
});
