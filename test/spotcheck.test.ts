/**
 * tasks/spotcheck.ts on real parts, as a miner runs it: a real Docker engine, a real registry with token auth
 * (the images are pulled by digest from it), the real subtensor runtime over WebSocket (the commitment the
 * validator would use is read from it), the synthetic clip served on loopback. The miner image is built once
 * from Dockerfile.miner; two variants are built FROM it: one whose model adds RandomUniformLike noise to its
 * scores (two runs answer differently), one that never answers GET /docs.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { u8aToHex } from '@polkadot/util';
import { encodeAddress, mnemonicGenerate, mnemonicToMiniSecret, sr25519PairFromSeed } from '@polkadot/util-crypto';
import { execa } from 'execa';
import { loadConfig, PROJECT_ROOT } from '../lib/core/config.ts';
import { readRemoteDigest } from '../lib/deploy/registry.ts';
import type { RehearsalRecord } from '../lib/deploy/spotcheck.ts';
import { startMiner } from '../server/app.ts';
import { createGuard } from '../server/guard.ts';
import { type Dockerd, dockerCli, importNodeBase, startDockerd } from './support/docker.ts';
import { type LocalChain, startLocalChain, TEST_NETUID } from './support/localchain.ts';
import { flashAndCutClip } from './support/media.ts';
import { writeNoisyModel } from './support/models.ts';
import { startRegistry, type TestRegistry } from './support/registry.ts';
import { runTask } from './support/tasks.ts';

const TOKEN = 'registry_token_alice_0123456789';

let dockerd: Dockerd;
let registry: TestRegistry;
let chain: LocalChain;
let ws: { url: string; close(): Promise<void> };
let stopReveal: () => Promise<void>;
let work: string;
let clip: string;
let truthFile: string;
let hotkeyAddress: string;
const digests: Record<'good' | 'noisy' | 'never', string> = { good: '', noisy: '', never: '' };

const repo = () => `${registry.host}/alice/pt-solution`;
const image = (name: keyof typeof digests) => `${repo()}@${digests[name]}`;

/** What a miner's .env would hold, pointed at this test's engine, registry and chain. */
function minerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: `${path.join(work, 'bin')}:${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? '/root',
    DOTENV_DISABLE: '1',
    ...dockerd.env,
    // The task logs in itself: its docker config starts empty.
    DOCKER_CONFIG: path.join(work, 'task-docker-config'),
    DEPLOY_STATE_DIR: path.join(work, 'state'),
    IMAGE_REGISTRY: 'dockerhub',
    DOCKERHUB_REGISTRY: registry.host,
    DOCKERHUB_USERNAME: 'alice',
    DOCKERHUB_TOKEN: TOKEN,
    BITTENSOR_SUBTENSOR_ENDPOINT: ws.url,
    CHAIN_CONNECT_TIMEOUT_S: '20',
    SCOREVISION_NETUID: String(TEST_NETUID),
    DRAND_PUBLIC_KEY: chain.drand.publicKeyHex,
    BITTENSOR_WALLET_PATH: path.join(work, 'wallets'),
    BITTENSOR_WALLET_COLD: 'cold',
    BITTENSOR_WALLET_HOT: 'miner',
    ...extra,
  };
}

const task = (name: string, args: string[], extra: Record<string, string> = {}) => runTask(name, args, minerEnv(extra));

/** The docker CLI with the test's own config (its login never touches the user's ~/.docker). */
async function cli(args: string[], input?: string): Promise<string> {
  const result = await execa(dockerCli(), args, {
    env: { ...dockerd.env, DOCKER_CONFIG: path.join(work, 'test-docker-config') },
    input,
    reject: false,
    all: true,
    timeout: 900_000,
  });
  if (result.exitCode !== 0) throw new Error(`docker ${args.join(' ')} failed: ${result.all}`);
  return result.stdout ?? '';
}

async function buildAndPush(tag: keyof typeof digests, args: string[]): Promise<void> {
  await cli(['build', '--network', 'host', '-t', `${repo()}:${tag}`, ...args]);
  await cli(['push', `${repo()}:${tag}`]);
  digests[tag] = await readRemoteDigest({ image: repo(), tag, username: 'alice', password: TOKEN });
}

function writeHotkey(name: string): string {
  const phrase = mnemonicGenerate(12);
  const seed = mnemonicToMiniSecret(phrase);
  const address = encodeAddress(sr25519PairFromSeed(seed).publicKey, 42);
  const dir = path.join(work, 'wallets', 'cold', 'hotkeys');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, name), JSON.stringify({ secretPhrase: phrase, secretSeed: u8aToHex(seed), ss58Address: address }), {
    mode: 0o600,
  });
  return address;
}

function rehearsals(): Record<string, RehearsalRecord> {
  return JSON.parse(readFileSync(path.join(work, 'state', 'spotcheck.json'), 'utf8')) as Record<string, RehearsalRecord>;
}

/** Containers of the rehearsals still there (running or not). */
async function leftovers(): Promise<string> {
  return (await cli(['ps', '-a', '--filter', 'label=score-miner-spotcheck=1', '--format', '{{.Names}}'])).trim();
}

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'score-miner-spotcheck-'));
  mkdirSync(path.join(work, 'bin'));
  // Debian's docker client (as in test/deploy.test.ts) first on the task's PATH.
  await symlink(dockerCli() === 'docker' ? '/usr/local/bin/docker' : dockerCli(), path.join(work, 'bin', 'docker'));
  clip = await flashAndCutClip('clip.mp4');
  truthFile = path.join(work, 'truth.json');
  writeFileSync(
    truthFile,
    JSON.stringify([
      { frame: 75, action: 'goal' },
      { frame: 175, action: 'ball_out_of_play' },
    ]),
  );

  dockerd = await startDockerd();
  const base = await importNodeBase(dockerd);
  registry = await startRegistry({ users: { alice: TOKEN } });
  chain = await startLocalChain();
  ws = await chain.serveWs();
  hotkeyAddress = writeHotkey('miner');
  await chain.registerHotkey(TEST_NETUID, hotkeyAddress);
  stopReveal = chain.autoReveal(TEST_NETUID, 250);

  await cli(['login', registry.host, '--username', 'alice', '--password-stdin'], TOKEN);
  await buildAndPush('good', ['-f', path.join(PROJECT_ROOT, 'Dockerfile.miner'), '--build-arg', `BASE_IMAGE=${base}`, PROJECT_ROOT]);

  const noisy = path.join(work, 'noisy-context');
  writeNoisyModel(path.join(noisy, 'noisy-model'));
  writeFileSync(
    path.join(noisy, 'Dockerfile'),
    [`FROM ${repo()}:good`, 'COPY noisy-model /app/models/noisy', 'ENV MODEL_DIR=/app/models/noisy', ''].join('\n'),
  );
  await buildAndPush('noisy', [noisy]);

  const never = path.join(work, 'never-context');
  mkdirSync(never);
  writeFileSync(
    path.join(never, 'Dockerfile'),
    [`FROM ${repo()}:good`, `CMD ["node", "-e", "console.log('warming up forever'); setTimeout(() => {}, 1e9)"]`, ''].join('\n'),
  );
  await buildAndPush('never', [never]);
  // Only the registry holds the variants now: the rehearsals must pull them.
  await cli(['rmi', `${repo()}:noisy`, `${repo()}:never`]);
});

after(async () => {
  const names = dockerd ? await leftovers().catch(() => '') : '';
  for (const name of names.split('\n').filter(Boolean)) await cli(['rm', '-f', name]).catch(() => undefined);
  await stopReveal?.();
  await ws?.close();
  await chain?.close();
  await registry?.stop();
  await dockerd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('without --image: the committed digest is read from the chain, rehearsed against --truth, and status reports it', async () => {
  const committed = await task('commit', ['--image', repo(), '--tag', 'good', '--digest', digests.good]);
  assert.equal(committed.code, 0, committed.output);

  const before = await task('status', []);
  assert.match(
    before.output,
    new RegExp(
      `^spotcheck the committed digest ${digests.good.slice(0, 19)} was never rehearsed: npx tsx tasks/spotcheck\\.ts --file clip\\.mp4`,
      'm',
    ),
  );

  const run = await task('spotcheck', ['--file', clip, '--truth', truthFile, '--ready-timeout', '90']);
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, new RegExp(`^spot check rehearsal of ${repo().replace(/\./g, '\\.')}@${digests.good}$`, 'm'));
  assert.match(run.output, /image {4}the commitment revealed in block \d+ \(tag good\), as Score's validator picks it/);
  assert.match(run.output, new RegExp(`pull {5}${registry.host.replace(/\./g, '\\.')} as alice: `));
  assert.match(run.output, /^ {2}size {5}\d+\.\d\d GB \(limit 30 GB\)$/m);
  assert.match(run.output, /^ {2}run 1 {4}ready in \d+\.\d s \(GET \/docs 200\); 2 predictions in \d+\.\d\d s$/m);
  assert.match(run.output, /^ {2}scores {3}truth 1\.0000, run 1 1\.0000 \(against --truth\)$/m);
  assert.match(run.output, /^PASS: every run scores within 0\.02 of the ground truth \(largest difference 0\.0000\)/m);
  assert.doesNotMatch(run.output, /note: /, 'the truth has no confidences: nothing differs');

  const record = rehearsals()[digests.good];
  assert.deepEqual(
    [record.result, record.repo, record.tag, record.compared, record.scores, record.difference, record.readySeconds.length],
    ['PASS', repo(), 'good', 'truth', { truth: 1, 'run 1': 1 }, 0, 1],
  );

  const after = await task('status', []);
  assert.match(
    after.output,
    new RegExp(
      `^spotcheck PASS for ${digests.good.slice(0, 19)} at ${record.at.replace(/\./g, '\\.')} \\(against --truth, largest score difference 0\\.0000\\)$`,
      'm',
    ),
  );
  assert.equal(await leftovers(), '');
});

test('--repeat 2 without a reference: the runs are compared with each other (--json)', async () => {
  const run = await task('spotcheck', ['--image', image('good'), '--file', clip, '--repeat', '2', '--json']);
  assert.equal(run.code, 0, run.output);
  const result = JSON.parse(run.stdout) as {
    result: string;
    compared: string;
    digest: string;
    scores: Record<string, number>;
    difference: number;
    image_bytes: number;
    gpus: string | null;
    runs: Array<{ label: string; ok: boolean; ready_s: number; predictions: Array<{ frame: number; action: string }> }>;
  };
  const inspected = await cli(['image', 'inspect', '--format', '{{.Size}}', image('good')]);
  assert.equal(result.image_bytes, Number(inspected.trim()));
  assert.ok(result.image_bytes > 1e6, `${result.image_bytes} bytes`);
  assert.equal(result.gpus, null);
  assert.deepEqual(
    [result.result, result.compared, result.digest, result.scores, result.difference],
    ['PASS', 'runs', digests.good, { 'run 1': 1, 'run 2': 1 }, 0],
  );
  assert.deepEqual(
    result.runs.map((r) => [r.label, r.ok, r.predictions.map((p) => `${p.action}@${p.frame}`)]),
    [
      ['run 1', true, ['goal@75', 'ball_out_of_play@175']],
      ['run 2', true, ['goal@75', 'ball_out_of_play@175']],
    ],
  );
  assert.ok(result.runs.every((r) => r.ready_s > 0));
  assert.equal(await leftovers(), '');
});

test('--live: the live miner, signed like the validator, is the reference', async () => {
  const live = await startMiner(
    loadConfig({ MINER_PORT: '0', MINER_HOST: '127.0.0.1', DOWNLOAD_ALLOW_PRIVATE: 'true' }),
    createGuard({ blacklistEnabled: false, verifyEnabled: true, minStakeTao: 0, minerHotkey: hotkeyAddress }),
  );
  try {
    const unsigned = await task('spotcheck', ['--image', image('good'), '--file', clip, '--live', live.url, '--scheme', 'none']);
    assert.equal(unsigned.code, 1, unsigned.output);
    assert.match(
      unsigned.output,
      /error: the live miner http:\/\/127\.0\.0\.1:\d+ gave no answer to compare with: miner answered 401: Missing header/,
    );

    const run = await task('spotcheck', ['--image', image('good'), '--file', clip, '--live', live.url, '--uri', '//Alice']);
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /^ {2}live {5}http:\/\/127\.0\.0\.1:\d+: 2 predictions in \d+\.\d\d s \(scheme central\)$/m);
    assert.match(run.output, /^ {2}scores {3}live 1\.0000, run 1 1\.0000 \(with live's answer as the ground truth\)$/m);
    assert.match(run.output, /^PASS: every run scores within 0\.02 of the live miner/m);
    assert.equal(rehearsals()[digests.good].compared, 'live');
  } finally {
    await live.close();
  }
});

test('an image made non-deterministic on purpose fails, with the diff of the predictions', async () => {
  const run = await task('spotcheck', ['--image', image('noisy'), '--file', clip]);
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /^FAIL: run 2 scores \d\.\d{4} where run 1 scores \d\.\d{4} \(difference \d\.\d{4} > 0\.02\)$/m);
  assert.match(run.output, /^ {2}predictions of run 2 against run 1: \d+ added, \d+ removed, \d+ changed, \d+ the same$/m);
  assert.match(run.output, /^ {4}[-+~] (added|removed|changed) +frame +\d+ \( *\d+\.\d\d s\) {2}(goal|ball_out_of_play) /m);
  assert.match(run.output, /next: the image answers the same challenge differently from run to run: make inference deterministic/);
  const record = rehearsals()[digests.noisy];
  assert.equal(record.result, 'FAIL');
  assert.equal(record.compared, 'runs');
  assert.ok((record.difference ?? 0) > 0.02, JSON.stringify(record));
  assert.equal(await leftovers(), '');
});

test('an image that never answers GET /docs fails at the ready timeout, with its last log lines', async () => {
  const run = await task('spotcheck', ['--image', image('never'), '--file', clip, '--truth', truthFile, '--ready-timeout', '3']);
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /^FAIL: run 1: GET \/docs did not answer 200 within 3 s/m);
  assert.match(run.output, /last log lines of the container:\n {4}warming up forever/);
  const record = rehearsals()[digests.never];
  assert.deepEqual([record.result, record.readySeconds, record.scores], ['FAIL', [], {}]);
  assert.equal(await leftovers(), '');
});

test("an image over the size limit fails without being run, as Score's spot check does", async () => {
  // The test image is far below Score's 30 GB: a limit of 1 MB stands in for it.
  const run = await task('spotcheck', ['--image', image('good'), '--file', clip, '--truth', truthFile, '--max-image-gb', '0.001']);
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /^ {2}size {5}\d+\.\d\d GB \(limit 0\.001 GB\)$/m);
  assert.match(
    run.output,
    /^FAIL: the image is \d+\.\d\d GB, over Score's 0\.001 GB limit: Score fails the spot check without running it$/m,
  );
  assert.match(run.output, /^ {2}next: slim the image: /m);
  assert.doesNotMatch(run.output, /run 1/, 'an oversized image must not be run');
  const record = rehearsals()[digests.good];
  assert.deepEqual([record.result, record.readySeconds, record.scores], ['FAIL', [], {}]);
  assert.match(record.cause ?? '', /over Score's 0\.001 GB limit/);
  assert.equal(await leftovers(), '');
});

test('a digest the registry does not hold is a clear error (and nothing is recorded)', async () => {
  const missing = `sha256:${'0'.repeat(64)}`;
  const run = await task('spotcheck', ['--image', `${repo()}@${missing}`, '--file', clip]);
  assert.equal(run.code, 1, run.output);
  assert.match(
    run.output,
    new RegExp(`^error: the registry has no image ${repo().replace(/\./g, '\\.')}@${missing} \\(.*(manifest unknown|not found)`, 'm'),
  );
  assert.match(run.output, /^ {2}next: Score pulls exactly this digest and would fail the same way: push the image \(tasks\/push\.ts\)/m);
  assert.equal(rehearsals()[missing], undefined);
});

test('Ctrl-C removes the container and exits 130', async () => {
  const recorded = rehearsals()[digests.never]?.at;
  const child = execa(process.execPath, ['tasks/spotcheck.ts', '--image', image('never'), '--file', clip, '--ready-timeout', '120'], {
    cwd: PROJECT_ROOT,
    env: minerEnv(),
    extendEnv: false,
    reject: false,
    all: true,
    timeout: 120_000,
  });
  const name = `score-miner-spotcheck-${child.pid}`;
  const deadline = Date.now() + 60_000;
  while ((await cli(['ps', '-q', '--filter', `name=^${name}$`])).trim() === '') {
    assert.ok(Date.now() < deadline, 'the rehearsal container did not start');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  child.kill('SIGINT');
  const result = await child;
  assert.equal(result.exitCode, 130, result.all);
  assert.match(result.all ?? '', /interrupted \(SIGINT\): removing the rehearsal's container and file server/);
  assert.equal((await cli(['ps', '-a', '-q', '--filter', `name=^${name}$`])).trim(), '');
  assert.equal(rehearsals()[digests.never]?.at, recorded, 'an interrupted rehearsal records nothing');
});

test('a wrong command line exits 2', async () => {
  for (const [args, message] of [
    [['--truth', 'x.json'], /^error: pass exactly one of --file PATH or --video-url URL$/m],
    [
      ['--file', 'clip.mp4', '--image', 'alice/miner:v1'],
      /^error: --image must be REPO@sha256:<64 hex> \(got "alice\/miner:v1"\)\n {2}next: Score pulls by digest/m,
    ],
    [['--file', 'clip.mp4', '--repeat', '0'], /^error: --repeat must be a whole number from 1 to 20 \(got "0"\)$/m],
    [['--file', 'clip.mp4', '--ready-timeout', 'soon'], /^error: --ready-timeout must be a positive number of seconds \(got "soon"\)$/m],
    [['--file', 'clip.mp4', '--live', 'not a url'], /^error: --live must look like http:\/\/HOST:PORT \(got "not a url"\)$/m],
    [['--file', 'clip.mp4', '--max-image-gb', 'big'], /^error: --max-image-gb must be a positive number of GB \(got "big"\)$/m],
    [['--file', 'clip.mp4', '--gpus', 'all; rm -rf /'], /^error: --gpus must be a docker --gpus value such as all, 1 or device=0/m],
    [['--file', 'clip.mp4', '--bogus'], /^error: unknown option --bogus\n[\s\S]*^usage: npx tsx tasks\/spotcheck\.ts/m],
  ] as const) {
    const run = await task('spotcheck', [...args]);
    assert.equal(run.code, 2, run.output);
    assert.match(run.output, message);
  }
});
