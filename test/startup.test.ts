/**
 * `npm start` as a miner runs it: start-up problems exit 1 with the cause and the next step (no stack
 * trace), before the port opens; a good start logs the security toggles and answers GET /docs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../lib/core/config.ts';

function startServer(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['server/main.ts'], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', DOTENV_DISABLE: '1', MINER_HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const emptyWallets = mkdtempSync(path.join(os.tmpdir(), 'score-miner-nowallet-'));

const cases: [string, Record<string, string>, RegExp, RegExp][] = [
  [
    'verify on without a wallet',
    {
      VERIFY_ENABLED: 'true',
      BLACKLIST_ENABLED: 'false',
      BITTENSOR_WALLET_PATH: emptyWallets,
      BITTENSOR_WALLET_COLD: 'miner',
      BITTENSOR_WALLET_HOT: 'hot1',
    },
    /^error: request verification is enabled but the miner hotkey cannot be loaded: .*miner\/hotkeys\/hot1/m,
    /^ {2}next: .*mount the hotkey wallet read-only.*BLACKLIST_ENABLED=false and VERIFY_ENABLED=false/m,
  ],
  [
    'an invalid variable',
    { MINER_PORT: 'eighty', VERIFY_ENABLED: 'false', BLACKLIST_ENABLED: 'false' },
    /^error: MINER_PORT="eighty" is not valid: expected an integer from 0 to 65535$/m,
    /^ {2}next: fix MINER_PORT in your .env file or environment/m,
  ],
  [
    'a model folder that does not exist',
    { MODEL_DIR: '/nonexistent/model', VERIFY_ENABLED: 'false', BLACKLIST_ENABLED: 'false' },
    /^error: .*\/nonexistent\/model/m,
    /^ {2}next: /m,
  ],
];

for (const [name, env, cause, next] of cases) {
  test(`start-up refuses ${name}: exit 1, cause and next step, no stack trace`, async () => {
    const { code, stderr } = await startServer(env);
    assert.equal(code, 1);
    assert.match(stderr, cause);
    assert.match(stderr, next);
    assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
  });
}

test('a good start logs the toggles, opens the port after the model is ready, and stops cleanly on SIGTERM', async () => {
  const child = spawn(process.execPath, ['server/main.ts'], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      DOTENV_DISABLE: '1',
      MINER_HOST: '127.0.0.1',
      MINER_PORT: '0',
      VERIFY: 'false',
      BLACKLIST: 'false',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const listening = new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
      const match = /miner listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (match) resolve(match[1]);
    });
    child.on('close', () => reject(new Error(`exited early:\n${stderr}`)));
  });
  const port = await listening;
  const docs = await fetch(`http://127.0.0.1:${port}/docs`);
  assert.equal(docs.status, 200);
  const exit = new Promise<number | null>((resolve) => child.on('close', resolve));
  child.kill('SIGTERM');
  assert.equal(await exit, 0);
  const lines = stderr.split('\n');
  const index = (pattern: RegExp) => lines.findIndex((line) => pattern.test(line));
  assert.ok(index(/INFO {2}Blacklist: DISABLED$/) >= 0);
  assert.ok(index(/INFO {2}Verify: DISABLED$/) >= 0);
  assert.ok(index(/WARN {2}All security DISABLED - local testing only$/) >= 0);
  assert.ok(index(/model ready/) < index(/miner listening/), 'the model is warm before the port opens');
});
