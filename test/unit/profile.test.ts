/**
 * Profiles (env=hk2): takeProfile takes the profile words off a task's command line; loadEnvFiles reads
 * `.env.hk2` over `.env` from DOTENV_DIR. loadEnvFiles writes process.env: every test restores it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { loadConfig, loadEnvFiles } from '../../lib/core/config.ts';
import { takeProfile, UsageError } from '../../lib/core/task.ts';
import { assertMinerError } from '../support/assertions.ts';

const RULE = 'a profile name is lower-case letters, digits, - and _ (at most 32, e.g. hk2)';

const taken: [string, string[], string | undefined, { profile?: string; argv: string[] }][] = [
  ['nothing', [], undefined, { profile: undefined, argv: [] }],
  ['recipe word', ['tag=v1', 'env=hk2', 'share=false'], undefined, { profile: 'hk2', argv: ['tag=v1', 'share=false'] }],
  ['--env NAME', ['--env', 'hk2', '--tag', 'v1'], undefined, { profile: 'hk2', argv: ['--tag', 'v1'] }],
  ['--env=NAME', ['--json', '--env=hk-2_b'], undefined, { profile: 'hk-2_b', argv: ['--json'] }],
  ['the same profile twice', ['env=hk2', '--env', 'hk2'], undefined, { profile: 'hk2', argv: [] }],
  [
    'words after -- left alone',
    ['--tag', 'v1', '--', 'env=hk2'],
    undefined,
    { profile: undefined, argv: ['--tag', 'v1', '--', 'env=hk2'] },
  ],
  [
    'other words that end in env',
    ['myenv=x', '--environment', 'y'],
    undefined,
    { profile: undefined, argv: ['myenv=x', '--environment', 'y'] },
  ],
  ['from DEPLOY_PROFILE', ['--json'], 'hk2', { profile: 'hk2', argv: ['--json'] }],
  ['DEPLOY_PROFILE and the same word', ['env=hk2'], ' hk2 ', { profile: 'hk2', argv: [] }],
  ['DEPLOY_PROFILE empty', ['--json'], '  ', { profile: undefined, argv: ['--json'] }],
];
for (const [name, argv, fromEnv, expected] of taken) {
  test(`takeProfile: ${name}`, () => {
    assert.deepEqual(takeProfile(argv, fromEnv), expected);
  });
}

const wrong: [string, string[], string | undefined, string, string][] = [
  ['two profiles', ['env=hk2', 'tag=v1', 'env=hk3'], undefined, 'env=hk2 and env=hk3: one profile per command', 'give env=NAME once'],
  [
    'two profiles, flag forms',
    ['--env', 'hk2', '--env=hk3'],
    undefined,
    '--env hk2 and --env=hk3: one profile per command',
    'give env=NAME once',
  ],
  ['upper case', ['env=HK2'], undefined, 'env=HK2: not a profile name', RULE],
  ['empty', ['env='], undefined, 'env=: not a profile name', RULE],
  ['a path', ['--env=../hk2'], undefined, '--env=../hk2: not a profile name', RULE],
  ['33 characters', [`env=${'a'.repeat(33)}`], undefined, `env=${'a'.repeat(33)}: not a profile name`, RULE],
  [
    "dotenv-flow's .env.local",
    ['env=local'],
    undefined,
    'env=local: not a profile name',
    "local is taken by dotenv-flow's own .env.local: choose another name",
  ],
  ['--env without a value', ['--env'], undefined, '--env needs a value', 'write --env NAME, e.g. --env hk2'],
  ['--env then a flag', ['--env', '--json'], undefined, '--env needs a value', 'write --env NAME, e.g. --env hk2'],
  [
    'word and DEPLOY_PROFILE differ',
    ['env=hk3'],
    'hk2',
    'env=hk3 but DEPLOY_PROFILE=hk2 in the environment: which profile?',
    'give one: unset DEPLOY_PROFILE or drop env=hk3',
  ],
  ['a bad DEPLOY_PROFILE', [], 'Hk2', 'DEPLOY_PROFILE=Hk2: not a profile name', RULE],
];
for (const [name, argv, fromEnv, message, hint] of wrong) {
  test(`takeProfile: ${name} -> UsageError`, () => {
    assertMinerError(() => takeProfile(argv, fromEnv), message, hint, UsageError);
  });
}

// ---- loadEnvFiles

let dir: string;
let saved: NodeJS.ProcessEnv;
/** Every variable the files below set, and those that steer the loading: unset before each test. */
const TOUCHED = [
  'BITTENSOR_WALLET_HOT',
  'BITTENSOR_WALLET_COLD',
  'MINER_PORT',
  'MINER_CONTAINER',
  'LOG_LEVEL',
  'DEPLOY_PROFILE',
  'DOTENV_DIR',
  'DOTENV_DISABLE',
  'NODE_ENV',
];

function write(name: string, lines: string[]): void {
  writeFileSync(path.join(dir, name), `${lines.join('\n')}\n`);
}

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'score-profile-'));
  write('.env', [
    'BITTENSOR_WALLET_COLD=cold',
    'BITTENSOR_WALLET_HOT=hot1',
    'MINER_PORT=8001',
    'MINER_CONTAINER=miner-1',
    'LOG_LEVEL=warn',
  ]);
  write('.env.local', ['MINER_PORT=8101']);
  write('.env.production', ['MINER_PORT=8201', 'MINER_CONTAINER=miner-prod']);
  write('.env.hk2', ['BITTENSOR_WALLET_HOT=hot2', 'MINER_PORT=8002', 'MINER_CONTAINER=miner-2']);
  write('.env.hk2.local', ['MINER_CONTAINER=miner-2-local']);
  write('.env.sneaky', ['DEPLOY_PROFILE=hk2']);
});
after(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  saved = { ...process.env };
  for (const name of TOUCHED) delete process.env[name];
  process.env.DOTENV_DIR = dir;
});
afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
});

const picked = () => ({
  hot: process.env.BITTENSOR_WALLET_HOT,
  port: process.env.MINER_PORT,
  container: process.env.MINER_CONTAINER,
  level: process.env.LOG_LEVEL,
  profile: process.env.DEPLOY_PROFILE,
});

test('loadEnvFiles without a profile: .env, then .env.local over it; .env.hk2 not read; no DEPLOY_PROFILE', () => {
  loadEnvFiles();
  assert.deepEqual(picked(), { hot: 'hot1', port: '8101', container: 'miner-1', level: 'warn', profile: undefined });
});

test("loadEnvFiles without a profile: NODE_ENV's files as dotenv-flow reads them (.env.production over .env.local)", () => {
  process.env.NODE_ENV = 'production';
  loadEnvFiles();
  assert.deepEqual(picked(), { hot: 'hot1', port: '8201', container: 'miner-prod', level: 'warn', profile: undefined });
});

test('loadEnvFiles env=hk2: .env.hk2 over .env and .env.local, .env.hk2.local over it; the rest from .env; loadConfig sees the profile', () => {
  loadEnvFiles('hk2');
  assert.deepEqual(picked(), { hot: 'hot2', port: '8002', container: 'miner-2-local', level: 'warn', profile: 'hk2' });
  const config = loadConfig(process.env);
  assert.equal(config.wallet.hotkey, 'hot2');
  assert.equal(config.server.port, 8002);
  assert.equal(config.deploy.profile, 'hk2');
  assert.equal(config.deploy.profileDir, path.join(config.deploy.stateDir, 'profiles', 'hk2'));
});

test('loadEnvFiles env=hk2 under NODE_ENV=production: the profile is read last, over .env.production', () => {
  process.env.NODE_ENV = 'production';
  loadEnvFiles('hk2');
  assert.deepEqual(picked(), { hot: 'hot2', port: '8002', container: 'miner-2-local', level: 'warn', profile: 'hk2' });
});

test('loadEnvFiles env=hk2: the real environment wins over every file', () => {
  process.env.MINER_PORT = '9000';
  process.env.BITTENSOR_WALLET_HOT = 'hot9';
  loadEnvFiles('hk2');
  assert.deepEqual(picked(), { hot: 'hot9', port: '9000', container: 'miner-2-local', level: 'warn', profile: 'hk2' });
});

test("loadEnvFiles: the profile from the real environment's DEPLOY_PROFILE (the server's way)", () => {
  process.env.DEPLOY_PROFILE = 'hk2';
  loadEnvFiles();
  assert.deepEqual(picked(), { hot: 'hot2', port: '8002', container: 'miner-2-local', level: 'warn', profile: 'hk2' });
});

test('loadEnvFiles env=hk3 without .env.hk3: the error names the file, the folder and what to put in it; nothing loaded', () => {
  assertMinerError(
    () => loadEnvFiles('hk3'),
    `env=hk3: there is no .env.hk3 in ${dir}`,
    'create it with what differs from .env for this hotkey: BITTENSOR_WALLET_HOT, MINER_PORT, MINER_CONTAINER (see README)',
  );
  assert.equal(process.env.MINER_PORT, undefined);
  process.env.DEPLOY_PROFILE = 'hk3';
  assertMinerError(() => loadEnvFiles(), `DEPLOY_PROFILE=hk3: there is no .env.hk3 in ${dir}`);
});

test('loadEnvFiles: a bad name is refused before it becomes a file name', () => {
  assertMinerError(() => loadEnvFiles('../hk2'), 'env=../hk2: not a profile name', RULE);
  process.env.DEPLOY_PROFILE = 'Hk2';
  assertMinerError(() => loadEnvFiles(), 'DEPLOY_PROFILE=Hk2: not a profile name', RULE);
  assert.equal(process.env.MINER_PORT, undefined);
});

test('loadEnvFiles with DOTENV_DISABLE=1: no file is read (none needs to exist), the profile is still set', () => {
  process.env.DOTENV_DISABLE = '1';
  loadEnvFiles('hk3');
  assert.deepEqual(picked(), { hot: undefined, port: undefined, container: undefined, level: undefined, profile: 'hk3' });
});

test('loadEnvFiles: DEPLOY_PROFILE from a .env file is refused (the profile is chosen per command)', () => {
  process.env.NODE_ENV = 'sneaky';
  assertMinerError(
    () => loadEnvFiles(),
    'DEPLOY_PROFILE is set in a .env file',
    'remove it there and choose the profile per command: just deploy tag=TAG env=NAME (or --env NAME on a task)',
  );
  assert.equal(process.env.DEPLOY_PROFILE, undefined);
});
