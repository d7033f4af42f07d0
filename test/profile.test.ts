/**
 * Profiles end to end: `node tasks/commit.ts env=hk2` and `just commit env=hk2` read `.env.hk2` over `.env` (from
 * DOTENV_DIR), so the dry-run commitment names the profile's own hotkey; `just deploy ... env=hk2` keeps the
 * profile in the rerun command. Two real sr25519 hotkeys in a temp wallet; nothing leaves the machine (a dry run
 * does not connect; the deploy's docker engine is a closed loopback port).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, encodeAddress, sr25519PairFromSeed } from '@polkadot/util-crypto';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../lib/core/config.ts';
import { freePort } from '../scripts/miner-process.ts';

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;
const COMMIT = ['--image', 'user/repo', '--tag', 'v2', '--digest', DIGEST, '--dry-run', '--json'];

let work: string;
let dotenvDir: string;
const address: Record<string, string> = {};

before(async () => {
  await cryptoWaitReady();
  work = mkdtempSync(path.join(os.tmpdir(), 'score-profile-e2e-'));
  const wallet = path.join(work, 'wallet');
  mkdirSync(path.join(wallet, 'cold', 'hotkeys'), { recursive: true });
  for (const [name, fill] of [
    ['hot1', 1],
    ['hot2', 2],
  ] as const) {
    const seed = new Uint8Array(32).fill(fill);
    address[name] = encodeAddress(sr25519PairFromSeed(seed).publicKey, 42);
    writeFileSync(path.join(wallet, 'cold', 'hotkeys', name), JSON.stringify({ secretSeed: u8aToHex(seed), ss58Address: address[name] }), {
      mode: 0o600,
    });
  }
  dotenvDir = path.join(work, 'project');
  mkdirSync(dotenvDir);
  writeFileSync(
    path.join(dotenvDir, '.env'),
    [
      `BITTENSOR_WALLET_PATH=${wallet}`,
      'BITTENSOR_WALLET_COLD=cold',
      'BITTENSOR_WALLET_HOT=hot1',
      `DEPLOY_STATE_DIR=${path.join(work, 'state')}`,
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dotenvDir, '.env.hk2'), 'BITTENSOR_WALLET_HOT=hot2\nMINER_PORT=8002\nMINER_CONTAINER=miner-hk2\n');
});
after(() => rmSync(work, { recursive: true, force: true }));

/** Only what a miner's shell would hold: the .env files come from DOTENV_DIR. */
const shellEnv = (extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '/root',
  DOTENV_DIR: dotenvDir,
  ...extra,
});

async function run(file: string, args: string[], extra: Record<string, string> = {}) {
  const result = await execa(file, args, { cwd: PROJECT_ROOT, env: shellEnv(extra), extendEnv: false, reject: false, timeout: 60_000 });
  return { code: result.exitCode, stdout: result.stdout, stderr: result.stderr };
}

const hotkeyOf = (stdout: string) => JSON.parse(stdout).payload.hotkey;

test('node tasks/commit.ts: .env alone without a profile; env=hk2, --env hk2, --env=hk2 and DEPLOY_PROFILE=hk2 read .env.hk2 over it', async () => {
  let r = await run(process.execPath, ['tasks/commit.ts', ...COMMIT]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(hotkeyOf(r.stdout), address.hot1);
  for (const [words, extra] of [
    [['env=hk2', ...COMMIT], {}],
    [['--env', 'hk2', ...COMMIT], {}],
    [[...COMMIT, '--env=hk2'], {}],
    [COMMIT, { DEPLOY_PROFILE: 'hk2' }],
  ] as const) {
    r = await run(process.execPath, ['tasks/commit.ts', ...words], extra);
    assert.equal(r.code, 0, `${words.join(' ')}: ${r.stderr}`);
    assert.equal(hotkeyOf(r.stdout), address.hot2, words.join(' '));
  }
  // the real environment still wins over .env.hk2
  r = await run(process.execPath, ['tasks/commit.ts', 'env=hk2', ...COMMIT], { BITTENSOR_WALLET_HOT: 'hot1' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(hotkeyOf(r.stdout), address.hot1);
});

test('just commit env=hk2: the recipe word reaches the task', async () => {
  const r = await run('just', ['commit', 'env=hk2', ...COMMIT]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(hotkeyOf(r.stdout), address.hot2);
});

test('a missing .env.NAME exits 1, a bad name or two profiles exit 2, each with the cause and next:, before the task runs', async () => {
  let r = await run(process.execPath, ['tasks/commit.ts', 'env=hk3', ...COMMIT]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    `error: env=hk3: there is no .env.hk3 in ${dotenvDir}\n  next: create it with what differs from .env for this hotkey: BITTENSOR_WALLET_HOT, MINER_PORT, MINER_CONTAINER (see README)`,
  );
  assert.equal(r.stdout, '');
  r = await run(process.execPath, ['tasks/commit.ts', 'env=HK2', ...COMMIT]);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    'error: env=HK2: not a profile name\n  next: a profile name is lower-case letters, digits, - and _ (at most 32, e.g. hk2)',
  );
  r = await run('just', ['commit', 'env=hk2', '--env', 'hk3', ...COMMIT]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: env=hk2 and --env hk3: one profile per command\n {2}next: give env=NAME once$/m);
});

test('the server: DEPLOY_PROFILE=srv reads .env.srv over .env (a bad MINER_PORT there stops it); a missing .env.srv is named', async () => {
  writeFileSync(path.join(dotenvDir, '.env.srv'), 'MINER_PORT=eighty\n');
  let r = await run(process.execPath, ['server/main.ts'], { DEPLOY_PROFILE: 'srv' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: MINER_PORT="eighty" is not valid: expected an integer from /m);
  r = await run(process.execPath, ['server/main.ts'], { DEPLOY_PROFILE: 'srv2' });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.split('\n')[0], `error: DEPLOY_PROFILE=srv2: there is no .env.srv2 in ${dotenvDir}`);
  // just serve env=srv: the recipe word reaches the server; any other word is refused
  r = await run('just', ['serve', 'env=srv']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /^error: MINER_PORT="eighty" is not valid: expected an integer from /m);
  r = await run('just', ['serve', 'port=8001']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: unknown word "port=8001"\n {2}next: just serve \[env=NAME\]$/m);
});

test('just deploy tag=v1 env=hk2: a failed step offers the rerun command with the profile kept', async () => {
  // Nothing listens on the docker port: push fails at once, and the summary names the command to resume there.
  const r = await run('just', ['deploy', 'tag=v1', 'env=hk2', 'share=false', 'commit=false', 'start=false', 'from=push'], {
    DOCKER_HOST: `tcp://127.0.0.1:${await freePort()}`,
    DOCKER_CONFIG: path.join(work, 'docker-config'),
    DOCKERHUB_USERNAME: 'alice',
    DOCKERHUB_TOKEN: 'dckr_pat_profile_0000',
    DOCKERHUB_API_URL: `http://127.0.0.1:${await freePort()}`,
  });
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^ {2}just deploy tag=v1 share=false commit=false start=false env=hk2 from=push$/m);
});
