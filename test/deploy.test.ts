/**
 * The deploy pipeline as a miner runs it (`just deploy tag=...`), on real parts: a real Docker engine, a real
 * registry with Docker-Hub-style token auth, and the real subtensor runtime (chopsticks) over WebSocket. The
 * one stand-in is Docker Hub's web API (repositories, collaborators), which cannot be reached from here:
 * test/support/hub-standin.ts implements its documented contract.
 */
import assert from 'node:assert/strict';
import { createReadStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import { u8aToHex } from '@polkadot/util';
import {
  cryptoWaitReady,
  decodeAddress,
  encodeAddress,
  mnemonicGenerate,
  mnemonicToMiniSecret,
  sr25519PairFromSeed,
} from '@polkadot/util-crypto';
import { execa } from 'execa';
import { readRevealed } from '../lib/chain/neuron.ts';
import { loadConfig, PROJECT_ROOT } from '../lib/core/config.ts';
import { type FileServer, serveFiles } from '../lib/core/fileserver.ts';
import { lockHome } from '../lib/deploy/engine.ts';
import { acquireLock, newOwner, releaseLock } from '../lib/deploy/lock.ts';
import { readRemoteDigest } from '../lib/deploy/registry.ts';
import { type DeployState, stateFile } from '../lib/deploy/state.ts';
import { signRequest } from '../lib/protocol/signature.ts';
import { freePort } from '../scripts/miner-process.ts';
import { startMiner } from '../server/app.ts';
import { type Dockerd, dockerCli, importNodeBase, startDockerd } from './support/docker.ts';
import { type HubStandin, startHubStandin } from './support/hub-standin.ts';
import { type LocalChain, startLocalChain, TEST_NETUID } from './support/localchain.ts';
import { flashAndCutClip } from './support/media.ts';
import { writeNoisyModel } from './support/models.ts';
import { startRegistry, type TestRegistry } from './support/registry.ts';
import { startSshd } from './support/sshd.ts';
import { runJust, runTask } from './support/tasks.ts';

const TOKEN = 'dckr_pat_alice_0123456789';
const CONTAINER = `score-miner-deploy-test-${process.pid}`;

let dockerd: Dockerd;
let registry: TestRegistry;
let hub: HubStandin;
let chain: LocalChain;
let ws: { url: string; close(): Promise<void> };
let stopReveal: () => Promise<void>;
let files: FileServer;
let work: string;
let baseImage: string;
let minerPort: number;
let hotkeyAddress: string;
let clipUrl: string;
let rehearsalClip: string;
let expectedPredictions: unknown;

function writeHotkey(name: string): string {
  const phrase = mnemonicGenerate(12);
  const seed = mnemonicToMiniSecret(phrase);
  const pair = sr25519PairFromSeed(seed);
  const address = encodeAddress(pair.publicKey, 42);
  const dir = path.join(work, 'wallets', 'cold', 'hotkeys');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, name), JSON.stringify({ secretPhrase: phrase, secretSeed: u8aToHex(seed), ss58Address: address }), {
    mode: 0o600,
  });
  return address;
}

/** What a miner's .env would hold, pointed at this test's engine, registry, Hub stand-in and chain. */
function minerEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: `${path.join(work, 'bin')}:${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? '/root',
    DOTENV_DISABLE: '1',
    ...dockerd.env,
    DOCKER_CONFIG: path.join(work, 'docker-config'),
    DEPLOY_STATE_DIR: path.join(work, 'state'),
    IMAGE_REGISTRY: 'dockerhub',
    DOCKERHUB_REGISTRY: registry.host,
    DOCKERHUB_API_URL: hub.url,
    DOCKERHUB_USERNAME: 'Alice', // upper case on purpose: docker refuses it in image names
    DOCKERHUB_TOKEN: TOKEN,
    BASE_IMAGE: baseImage,
    BUILD_NETWORK: 'host',
    MINER_NETWORK: 'host',
    MINER_PORT: String(minerPort),
    MINER_CONTAINER: CONTAINER,
    START_TIMEOUT_S: '90',
    VERIFY_ENABLED: 'false',
    BLACKLIST_ENABLED: 'false',
    DOWNLOAD_ALLOW_PRIVATE: 'true', // the test clip is served on loopback (passed to the container by the allow-list)
    BITTENSOR_SUBTENSOR_ENDPOINT: ws.url,
    CHAIN_CONNECT_TIMEOUT_S: '20',
    SCOREVISION_NETUID: String(TEST_NETUID),
    DRAND_PUBLIC_KEY: chain.drand.publicKeyHex,
    BITTENSOR_WALLET_PATH: path.join(work, 'wallets'),
    BITTENSOR_WALLET_COLD: 'cold',
    BITTENSOR_WALLET_HOT: 'miner',
    // The flash-and-cut clip: short, so the rehearse step of every deploy stays quick (the first test uses the default).
    REHEARSAL_CLIP: rehearsalClip,
    ...extra,
  };
  // undefined in `extra` leaves a variable out (a profile's .env files must then give it)
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

const just = (words: string[], extra: Record<string, string | undefined> = {}) => runJust(words, minerEnv(extra));
const task = (name: string, args: string[], extra: Record<string, string | undefined> = {}) => runTask(name, args, minerEnv(extra));

const repo = () => `${registry.host}/alice/pt-solution`;
/** The deploy lock's folder for this test's engine and container (one per engine and container). */
const deployLock = () => lockHome({ stateDir: path.join(work, 'state'), containerName: CONTAINER });
const state = (tag: string): DeployState =>
  JSON.parse(readFileSync(stateFile(path.join(work, 'state'), repo(), tag), 'utf8')) as DeployState;

/** The summary table's row for a step: [result, produced]. */
function row(output: string, step: string): string {
  const line = output.split('\n').find((l) => new RegExp(`^${step}\\s{2,}`).test(l));
  assert.ok(line, `no summary row for ${step} in:\n${output}`);
  return line.replace(/\s{2,}/g, ' | ');
}

async function challengeContainer(): Promise<{ status: number; predictions: unknown }> {
  const response = await fetch(`http://127.0.0.1:${minerPort}/challenge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ challenge_id: 'deploy-1', video_url: clipUrl }),
  });
  return { status: response.status, predictions: ((await response.json()) as { predictions: unknown }).predictions };
}

async function runningImage(): Promise<string> {
  return (await dockerd.docker(['container', 'inspect', '--format', '{{.Image}}', CONTAINER])).trim();
}

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'score-miner-deploy-'));
  mkdirSync(path.join(work, 'bin'));
  // Debian's docker client (its BuildKit works with --network host) first on the tasks' PATH.
  await symlink(dockerCli() === 'docker' ? '/usr/local/bin/docker' : dockerCli(), path.join(work, 'bin', 'docker'));
  minerPort = await freePort();
  const clip = await flashAndCutClip('clip.mp4');
  rehearsalClip = clip;
  files = await serveFiles([clip]);
  clipUrl = files.urlFor(clip);
  const local = await startMiner(loadConfig({ MINER_PORT: '0', MINER_HOST: '127.0.0.1', DOWNLOAD_ALLOW_PRIVATE: 'true' }));
  try {
    const response = await fetch(`${local.url}/challenge`, {
      method: 'POST',
      body: JSON.stringify({ challenge_id: 'deploy-1', video_url: clipUrl }),
    });
    expectedPredictions = ((await response.json()) as { predictions: unknown }).predictions;
  } finally {
    await local.close();
  }

  dockerd = await startDockerd();
  baseImage = await importNodeBase(dockerd);
  registry = await startRegistry({ users: { alice: TOKEN } });
  hub = await startHubStandin({ users: { alice: TOKEN } });
  chain = await startLocalChain();
  ws = await chain.serveWs();
  hotkeyAddress = writeHotkey('miner');
  writeHotkey('unregistered');
  await chain.registerHotkey(TEST_NETUID, hotkeyAddress);
  stopReveal = chain.autoReveal(TEST_NETUID, 250);
});

after(async () => {
  for (const name of [
    CONTAINER,
    `${CONTAINER}-verify`,
    `${CONTAINER}-guide`,
    `${CONTAINER}-aliases`,
    `${CONTAINER}-hk1`,
    `${CONTAINER}-hk2`,
  ])
    await dockerd?.docker(['rm', '-f', name]).catch(() => undefined);
  await stopReveal?.();
  await ws?.close();
  await chain?.close();
  await registry?.stop();
  await hub?.close();
  await files?.close();
  await dockerd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('just deploy tag=v1.0.0: built, pushed (digest read back), rehearsed, shared, committed (reveal seen), started', async () => {
  // No REHEARSAL_CLIP: the rehearsal renders its own synthetic clip.
  const run = await just(['deploy', 'tag=v1.0.0'], { REHEARSAL_CLIP: undefined });
  assert.equal(run.code, 0, run.output);
  for (const step of ['build', 'push', 'rehearse', 'share', 'commit', 'start'])
    assert.match(row(run.output, step), /^\w+ \| ok \| /, run.output);
  assert.match(run.output, /deploy finished/);
  assert.match(run.output, /Miner running: [0-9a-f]{64}/);
  assert.match(run.output, new RegExp(`docker logs -f ${CONTAINER}`));

  const recorded = state('v1.0.0');
  const imageId = (await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', `${repo()}:v1.0.0`])).trim();
  assert.equal(recorded.build?.imageId, imageId);
  const digest = await readRemoteDigest({ image: repo(), tag: 'v1.0.0', username: 'alice', password: TOKEN });
  assert.equal(recorded.push?.digest, digest);

  assert.deepEqual(
    hub.repositories.map((r) => [r.namespace, r.name, r.is_private]),
    [['alice', 'pt-solution', true]],
  );
  assert.deepEqual(
    hub.collaborators.map((c) => [c.repository, c.user]),
    [['pt-solution', 'scorevision']],
  );

  const revealed = await readRevealed(chain.api, TEST_NETUID, hotkeyAddress);
  const payload = JSON.parse(revealed.at(-1)?.text ?? '{}');
  assert.deepEqual(
    [payload.image_repo, payload.image_tag, payload.image_digest, payload.track, payload.hotkey],
    [repo(), 'v1.0.0', digest, 'private', hotkeyAddress],
  );
  assert.ok((recorded.commit?.revealBlock ?? 0) > (recorded.commit?.block ?? 0), JSON.stringify(recorded.commit));

  // The rehearsal: the digest twice and the image start runs here, each answered, Score's rule applied, kept.
  assert.match(row(run.output, 'rehearse'), /\| ok \| PASS on this machine: 3 answers within 0\.02 \(largest difference 0\.0000\)/);
  for (const label of ['run 1', 'run 2', 'to start'])
    assert.match(run.output, new RegExp(`${label} +ready in [\\d.]+ s \\(GET /docs 200\\); \\d+ predictions`), run.output);
  assert.match(run.output, /clip \/.*score-miner-rehearse-.*\/rehearsal\.mp4/);
  assert.deepEqual(
    { ...recorded.rehearse, at: undefined },
    { digest, result: 'PASS', host: 'this machine', started: `${repo()}:v1.0.0`, startedImageId: imageId, difference: 0, at: undefined },
  );
  const spotchecks = JSON.parse(readFileSync(path.join(work, 'state', 'spotcheck.json'), 'utf8'));
  assert.deepEqual([spotchecks[digest].result, spotchecks[digest].compared, spotchecks[digest].readySeconds.length], ['PASS', 'runs', 3]);
  assert.equal((await dockerd.docker(['ps', '-a', '-q', '--filter', 'label=score-miner-spotcheck=1'])).trim(), '');
  assert.match(run.output, /^miner on this machine; total [\d.]+ s$/m);

  const reply = await challengeContainer();
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.predictions, expectedPredictions);
  assert.equal(await runningImage(), imageId);
});

test('the container: fixed name, restart policy, no wallet, only allow-listed variables (no token)', async () => {
  const inspected = JSON.parse(await dockerd.docker(['container', 'inspect', CONTAINER]))[0] as {
    Name: string;
    HostConfig: { RestartPolicy: { Name: string } };
    Mounts: { Destination: string; RW: boolean }[];
    Config: { Env: string[]; StopTimeout: number };
  };
  assert.equal(inspected.Name, `/${CONTAINER}`);
  assert.equal(inspected.HostConfig.RestartPolicy.Name, 'unless-stopped');
  assert.equal(inspected.Config.StopTimeout, 30); // docker stop lets a running challenge drain to its deadline
  assert.deepEqual(inspected.Mounts, []);
  const env = inspected.Config.Env.join('\n');
  assert.doesNotMatch(env, /DOCKERHUB|REGISTRY_TOKEN|dckr_pat/);
  // Only the image's own default (where the guides mount a wallet), never this host's wallet folder.
  assert.deepEqual(env.match(/^BITTENSOR_WALLET_PATH=.*$/gm), ['BITTENSOR_WALLET_PATH=/root/.bittensor/wallets']);
  // VERIFY_ENABLED=false here: the server has no use for the hotkey's address, so it is not passed.
  assert.doesNotMatch(env, /MINER_HOTKEY_SS58/);
  assert.match(env, new RegExp(`^MINER_PORT=${minerPort}$`, 'm'));
});

test('a rerun resumes without redoing: push, share, commit and start see their work done', async () => {
  const revealedBefore = (await readRevealed(chain.api, TEST_NETUID, hotkeyAddress)).length;
  const digestBefore = state('v1.0.0').push?.digest;
  const run = await just(['deploy', 'tag=v1.0.0']);
  assert.equal(run.code, 0, run.output);
  assert.match(row(run.output, 'build'), /\| ok \| .*\(unchanged\)/);
  assert.match(row(run.output, 'push'), /\| skipped \| sha256:[0-9a-f]{64} \(already in the registry\)/);
  assert.match(row(run.output, 'rehearse'), /\| skipped \| PASS recorded for sha256:[0-9a-f]{12} on this machine at /);
  assert.match(row(run.output, 'share'), /\| skipped \| scorevision already a collaborator/);
  assert.match(row(run.output, 'commit'), /\| skipped \| already revealed in block \d+/);
  assert.match(row(run.output, 'start'), /\| skipped \| .* already runs this image/);
  assert.equal(state('v1.0.0').push?.digest, digestBefore);
  assert.equal((await readRevealed(chain.api, TEST_NETUID, hotkeyAddress)).length, revealedBefore);
});

test("the guide's local test (share=false commit=false) replaces the container; push=false builds only", async () => {
  // Another base (one label more), so tag test is a different image that must replace the running one.
  await dockerd.docker(['build', '-t', 'local/node:24-variant', '-'], { input: `FROM ${baseImage}\nLABEL variant=test\n` });
  const local = await just(['deploy', 'tag=test', 'share=false', 'commit=false'], { BASE_IMAGE: 'local/node:24-variant' });
  assert.equal(local.code, 0, local.output);
  assert.match(row(local.output, 'share'), /\| skipped \| share=false/);
  assert.match(row(local.output, 'commit'), /\| skipped \| commit=false/);
  assert.match(row(local.output, 'start'), /\| ok \| /);
  assert.equal(await runningImage(), state('test').build?.imageId);
  assert.notEqual(state('test').build?.imageId, state('v1.0.0').build?.imageId);

  const buildOnly = await just(['deploy', 'tag=v2', 'push=false', 'start=false']);
  assert.equal(buildOnly.code, 0, buildOnly.output);
  assert.match(row(buildOnly.output, 'push'), /\| skipped \| push=false/);
  assert.match(row(buildOnly.output, 'share'), /\| skipped \| push=false/);
  assert.equal(state('v2').push, undefined);
  assert.ok(state('v2').build?.imageId);
});

test('just rollback starts the tag that ran before', async () => {
  const run = await just(['rollback']);
  assert.equal(run.code, 0, run.output);
  assert.equal(await runningImage(), state('v1.0.0').build?.imageId);
  assert.equal((await challengeContainer()).status, 200);
});

test('a wrong Hub token fails push with the cause; the printed rerun command resumes there without rebuilding', async () => {
  const words = ['tag=v3', 'share=false', 'commit=false', 'start=false'];
  const failed = await just(['deploy', ...words], { DOCKERHUB_TOKEN: 'dckr_pat_wrong_0000000' });
  assert.equal(failed.code, 1, failed.output);
  assert.match(failed.output, /Docker Hub refused the token for alice \(401\)/i);
  assert.doesNotMatch(failed.output, /dckr_pat_wrong/);
  assert.match(row(failed.output, 'push'), /\| failed \| /);
  const rerun = /^ {2}(just deploy .*)$/m.exec(failed.output)?.[1];
  assert.equal(rerun, 'just deploy tag=v3 share=false commit=false start=false from=push');
  const resumed = await just(rerun.split(' ').slice(1));
  assert.equal(resumed.code, 0, resumed.output);
  assert.match(row(resumed.output, 'build'), /\| skipped \| before from=push/);
  assert.match(row(resumed.output, 'push'), /\| ok \| sha256:/);
});

test('a commit that fails inside just deploy resumes at commit, without redoing build, push and share', async () => {
  const failed = await just(['deploy', 'tag=v4', 'start=false'], { BITTENSOR_WALLET_HOT: 'unregistered' });
  assert.equal(failed.code, 1, failed.output);
  assert.match(failed.output, /is not registered on netuid 1/);
  assert.match(row(failed.output, 'build'), /\| ok \| /);
  assert.match(row(failed.output, 'push'), /\| ok \| sha256:/);
  assert.match(row(failed.output, 'share'), /\| skipped \| scorevision already a collaborator/);
  assert.match(row(failed.output, 'commit'), /\| failed \| hotkey .* is not registered/);
  assert.match(row(failed.output, 'start'), /\| skipped \| start=false/);
  const rerun = /^ {2}(just deploy .*)$/m.exec(failed.output)?.[1];
  assert.equal(rerun, 'just deploy tag=v4 start=false from=commit');
  const resumed = await just(rerun.split(' ').slice(1));
  assert.equal(resumed.code, 0, resumed.output);
  for (const step of ['build', 'push', 'share']) assert.match(row(resumed.output, step), /\| skipped \| before from=commit/);
  assert.match(row(resumed.output, 'commit'), /\| ok \| block \d+, revealed in \d+/);
  const revealed = await readRevealed(chain.api, TEST_NETUID, hotkeyAddress);
  assert.equal(JSON.parse(revealed.at(-1)?.text ?? '{}').image_tag, 'v4');
  assert.equal(JSON.parse(revealed.at(-1)?.text ?? '{}').image_digest, state('v4').push?.digest);
});

test('failures name their cause and next step', async (t) => {
  await t.test('a registry that is down', async () => {
    const closed = await freePort();
    const run = await task('push', ['--tag', 'v1.0.0'], { DOCKERHUB_REGISTRY: `127.0.0.1:${closed}` });
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, /no built image for 127\.0\.0\.1:\d+\/alice\/pt-solution:v1\.0\.0: run tasks\/build\.ts first/);
    const built = await task('build', ['--tag', 'v1.0.0'], { DOCKERHUB_REGISTRY: `127.0.0.1:${closed}` });
    assert.equal(built.code, 0, built.output);
    const pushed = await task('push', ['--tag', 'v1.0.0'], { DOCKERHUB_REGISTRY: `127.0.0.1:${closed}` });
    assert.equal(pushed.code, 1, pushed.output);
    assert.match(pushed.output, /error: docker login failed: .*(refused|connect)/i);
    // Inside just deploy the same failure is named at push exactly, the lock released, exit 1.
    const words = ['tag=v1.0.0', 'from=push', 'share=false', 'commit=false', 'start=false'];
    const deployed = await just(['deploy', ...words], { DOCKERHUB_REGISTRY: `127.0.0.1:${closed}` });
    assert.equal(deployed.code, 1, deployed.output);
    assert.match(row(deployed.output, 'push'), /^push \| failed \| docker login failed: .*(refused|connect)/i);
    assert.match(deployed.output, /^deploy failed at push;/m);
    assert.match(deployed.output, /^ {2}just deploy tag=v1\.0\.0 share=false commit=false start=false from=push$/m);
    assert.ok(!existsSync(path.join(deployLock(), 'lock')));
  });

  await t.test('missing settings are named', async () => {
    const run = await just(['deploy', 'tag=v5'], { DOCKERHUB_USERNAME: '' });
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, /DOCKERHUB_USERNAME is not set/);
    assert.match(row(run.output, 'build'), /\| failed \| /);
    const push = await task('push', ['--tag', 'v1.0.0'], { DOCKERHUB_TOKEN: '' });
    assert.equal(push.code, 1, push.output);
    assert.match(push.output, /DOCKERHUB_TOKEN is not set/);
  });

  await t.test('the paid-plan refusal of collaborators is quoted', async () => {
    const paid = await startHubStandin({
      users: { alice: TOKEN },
      collaborators: 'paid-plan-required',
      repositories: [{ namespace: 'alice', name: 'pt-solution', is_private: true, description: '' }],
    });
    try {
      const run = await task('share', ['--tag', 'v1.0.0'], { DOCKERHUB_API_URL: paid.url });
      assert.equal(run.code, 1, run.output);
      assert.match(run.output, /paid/i);
      assert.match(run.output, /next: /);
    } finally {
      await paid.close();
    }
  });

  await t.test('an unregistered hotkey cannot commit', async () => {
    const run = await task('commit', ['--tag', 'v1.0.0'], { BITTENSOR_WALLET_HOT: 'unregistered' });
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, /is not registered on netuid 1/);
  });

  await t.test('a busy port', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, resolve));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const run = await task('start', ['--tag', 'v1.0.0'], { MINER_PORT: String(port), MINER_CONTAINER: `${CONTAINER}-2` });
      assert.equal(run.code, 1, run.output);
      assert.match(run.output, new RegExp(`port ${port} is already in use`));
    } finally {
      busy.close();
    }
  });

  await t.test('two deploys at once: the second is refused, naming the holder; another container (a profile) is not held up', async () => {
    await acquireLock(deployLock(), newOwner('other-deploy', process.pid, 'just deploy tag=other'));
    try {
      const run = await just(['deploy', 'tag=v1.0.0']);
      assert.equal(run.code, 1, run.output);
      assert.match(run.output, new RegExp(`another deploy holds the lock: pid ${process.pid} on .* \\(\`just deploy tag=other\`\\)`));
      const other = await task('build', ['--tag', 'v1.0.0'], { MINER_CONTAINER: `${CONTAINER}-hk2` });
      assert.equal(other.code, 0, other.output);
    } finally {
      await releaseLock(deployLock(), 'other-deploy');
    }
  });
});

test('a start that fails shows the log, removes the container and restarts the previous tag', async () => {
  const dockerfile = path.join(work, 'Dockerfile.broken');
  writeFileSync(dockerfile, ['ARG BASE_IMAGE', 'FROM $BASE_IMAGE', 'ENV MODEL_DIR=/no-such-model', ''].join('\n'));
  const built = await task('build', ['--tag', 'broken', '--dockerfile', dockerfile, '--build-arg', `BASE_IMAGE=${repo()}:v1.0.0`]);
  assert.equal(built.code, 0, built.output);
  const previous = await runningImage();
  const run = await task('start', ['--tag', 'broken'], { START_TIMEOUT_S: '30' });
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /last log lines of the container/);
  assert.match(run.output, /no-such-model/);
  assert.match(run.output, /restarting the previous tag v1\.0\.0/);
  assert.equal(await runningImage(), previous);
  assert.equal((await challengeContainer()).status, 200);
  assert.ok(existsSync(stateFile(path.join(work, 'state'), repo(), 'broken')));
});

/** The secret values of one of this test's hotkey files: what must never reach a container. */
function hotkeySecrets(name: string): string[] {
  const file = JSON.parse(readFileSync(path.join(work, 'wallets', 'cold', 'hotkeys', name), 'utf8')) as Record<string, string>;
  return [file.secretPhrase, file.secretSeed.replace(/^0x/, '')];
}

/** A container's whole filesystem (docker export): every path in it, and which needles occur in any file. */
async function containerFilesystem(container: string, needles: string[]): Promise<{ paths: string[]; found: Set<string> }> {
  const tarball = path.join(work, `${container}.tar`);
  await dockerd.docker(['export', '-o', tarball, container]);
  try {
    const paths = (await execa('tar', ['-tf', tarball])).stdout.split('\n');
    const found = new Set<string>();
    const overlap = Math.max(...needles.map((needle) => Buffer.byteLength(needle))) - 1;
    let tail = Buffer.alloc(0);
    for await (const chunk of createReadStream(tarball)) {
      const window = Buffer.concat([tail, chunk as Buffer]);
      for (const needle of needles) if (window.includes(needle)) found.add(needle);
      tail = window.subarray(Math.max(0, window.length - overlap));
    }
    return { paths, found };
  } finally {
    await rm(tarball, { force: true });
  }
}

async function waitForDocs(port: number, container: string): Promise<void> {
  for (let attempt = 0; attempt < 180; attempt++) {
    const ok = await fetch(`http://127.0.0.1:${port}/docs`, { signal: AbortSignal.timeout(2000) }).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.fail(`${container} did not answer /docs:\n${await dockerd.logs(container)}`);
}

/** A challenge signed like a fiber validator (//Alice, allowed by BLACKLIST_ENABLED=false) for the named miner hotkey. */
async function fiberChallenge(port: number, minerHotkey: string): Promise<{ status: number; body: Record<string, unknown> }> {
  await cryptoWaitReady();
  const validator = new Keyring({ type: 'sr25519', ss58Format: 42 }).addFromUri('//Alice');
  const body = JSON.stringify({ challenge_id: `fiber-${minerHotkey.slice(0, 8)}`, video_url: clipUrl });
  const response = await fetch(`http://127.0.0.1:${port}/challenge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signRequest(validator, 'fiber', body, { minerHotkey }) },
    body,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const OTHER_HOTKEY = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty'; // //Bob

test("VERIFY_ENABLED: start gives the container only the hotkey's address (no mount, no secret); fiber requests for it pass, for another hotkey fail", async () => {
  const name = `${CONTAINER}-verify`;
  const port = await freePort();
  const run = await task('start', ['--tag', 'v1.0.0'], { VERIFY_ENABLED: 'true', MINER_CONTAINER: name, MINER_PORT: String(port) });
  assert.equal(run.code, 0, run.output);

  const inspected = JSON.parse(await dockerd.docker(['container', 'inspect', name]))[0] as {
    Mounts: unknown[];
    HostConfig: { Binds: unknown };
    Config: { Env: string[] };
  };
  assert.deepEqual(inspected.Mounts, []);
  assert.equal(inspected.HostConfig.Binds, null);
  const env = inspected.Config.Env.join('\n');
  // Read on this host from the legacy hotkey file (no public file in this wallet), passed as the address alone.
  assert.match(env, new RegExp(`^MINER_HOTKEY_SS58=${hotkeyAddress}$`, 'm'));
  assert.deepEqual(env.match(/^BITTENSOR_WALLET_PATH=.*$/gm), ['BITTENSOR_WALLET_PATH=/root/.bittensor/wallets']);
  const secrets = hotkeySecrets('miner');
  for (const secret of secrets) assert.ok(!env.includes(secret), 'a hotkey secret is in the container environment');

  // The server's own code is found (the scan works); no wallet path and no secret anywhere in the filesystem.
  const control = 'createGuardFromConfig';
  const { paths, found } = await containerFilesystem(name, [...secrets, control]);
  assert.ok(
    paths.some((entry) => entry.endsWith('server/guard.ts')),
    'the export lists the server',
  );
  assert.deepEqual([...found], [control]);
  assert.deepEqual(
    paths.filter((entry) => /(^|\/)(\.bittensor|wallets|hotkeys)(\/|$)/.test(entry)),
    [],
  );
  assert.match(await dockerd.logs(name), /miner hotkey address source=setting/);

  const accepted = await fiberChallenge(port, hotkeyAddress);
  assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
  assert.deepEqual(accepted.body.predictions, expectedPredictions);
  const refused = await fiberChallenge(port, OTHER_HOTKEY);
  assert.deepEqual([refused.status, refused.body], [401, { detail: 'Invalid signature' }]);
  await dockerd.docker(['rm', '-f', name]);
});

test("Score's harness names (VERIFY=false BLACKLIST=false, NETUID) through just deploy: the container gets them under the canonical names and serves with both checks off", async () => {
  const name = `${CONTAINER}-aliases`;
  const port = await freePort();
  const aliases = {
    VERIFY_ENABLED: '',
    BLACKLIST_ENABLED: '',
    SCOREVISION_NETUID: '',
    VERIFY: 'false',
    BLACKLIST: 'false',
    NETUID: String(TEST_NETUID),
    MINER_CONTAINER: name,
    MINER_PORT: String(port),
  };
  const run = await just(['deploy', 'tag=v1.0.0', 'share=false', 'commit=false'], aliases);
  assert.equal(run.code, 0, run.output);
  assert.match(row(run.output, 'start'), /\| ok \| /);

  const inspected = JSON.parse(await dockerd.docker(['container', 'inspect', name]))[0] as { Config: { Env: string[] } };
  const env = inspected.Config.Env;
  for (const setting of ['VERIFY_ENABLED=false', 'BLACKLIST_ENABLED=false', `SCOREVISION_NETUID=${TEST_NETUID}`])
    assert.ok(env.includes(setting), setting);
  assert.deepEqual(
    env.filter((entry) => /^(VERIFY|BLACKLIST|NETUID|MINER_HOTKEY_SS58)=/.test(entry)),
    [],
  );
  // Unsigned, from no staked hotkey: answered only when both checks are off.
  const response = await fetch(`http://127.0.0.1:${port}/challenge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ challenge_id: 'deploy-aliases', video_url: clipUrl }),
  });
  assert.equal(response.status, 200);
  assert.deepEqual(((await response.json()) as { predictions: unknown }).predictions, expectedPredictions);
  await dockerd.docker(['rm', '-f', name]);
});

test("the guide's docker run with the wallet mounted read-only still works: the address from {hotkey}pub.txt", async () => {
  // A wallet as current btcli writes it: the hotkey file (0600, not readable by the image's user) and its public file.
  const wallets = path.join(work, 'guide-wallets');
  const hotkeys = path.join(wallets, 'cold', 'hotkeys');
  mkdirSync(hotkeys, { recursive: true });
  writeFileSync(path.join(hotkeys, 'miner'), readFileSync(path.join(work, 'wallets', 'cold', 'hotkeys', 'miner')), { mode: 0o600 });
  const publicKey = u8aToHex(decodeAddress(hotkeyAddress));
  const pub = { accountId: publicKey, publicKey, privateKey: null, secretPhrase: null, secretSeed: null, ss58Address: hotkeyAddress };
  writeFileSync(path.join(hotkeys, 'minerpub.txt'), JSON.stringify(pub), { mode: 0o644 });

  const name = `${CONTAINER}-guide`;
  const port = await freePort();
  const settings = {
    BITTENSOR_WALLET_COLD: 'cold',
    BITTENSOR_WALLET_HOT: 'miner',
    VERIFY_ENABLED: 'true',
    BLACKLIST_ENABLED: 'false',
    MINER_PORT: String(port),
    DOWNLOAD_ALLOW_PRIVATE: 'true',
  };
  const envArgs = Object.entries(settings).flatMap(([key, value]) => ['-e', `${key}=${value}`]);
  await dockerd.docker([
    'run',
    '-d',
    '--name',
    name,
    '--network',
    'host',
    '-v',
    `${wallets}:/root/.bittensor/wallets:ro`,
    ...envArgs,
    `${repo()}:v1.0.0`,
  ]);
  await waitForDocs(port, name);
  const logs = await dockerd.logs(name);
  assert.match(logs, /miner hotkey address source="public file" file=\/root\/\.bittensor\/wallets\/cold\/hotkeys\/minerpub\.txt/);
  // The hotkey file beside it is root's 0600 file and the image runs as uid 1000: out of the server's reach.
  assert.doesNotMatch(logs, /the hotkey file with its secret is readable/);

  assert.equal((await fiberChallenge(port, hotkeyAddress)).status, 200);
  assert.deepEqual(await fiberChallenge(port, OTHER_HOTKEY), { status: 401, body: { detail: 'Invalid signature' } });
  await dockerd.docker(['rm', '-f', name]);
});

test('a rehearsal that fails (a non-deterministic model) stops the deploy before commit, commit refuses the digest; fixed and pushed, from=rehearse passes and commits', async () => {
  // The model folder must lie inside the build context (the project); removed after.
  const noisyDir = path.join(PROJECT_ROOT, 'models', `test-noisy-${process.pid}`);
  writeNoisyModel(noisyDir);
  try {
    const revealedBefore = (await readRevealed(chain.api, TEST_NETUID, hotkeyAddress)).length;
    const words = ['tag=noisy', 'share=false', 'start=false'];
    const failed = await just(['deploy', ...words], { MODEL_SRC: path.relative(PROJECT_ROOT, noisyDir) });
    assert.equal(failed.code, 1, failed.output);
    const noisyDigest = state('noisy').push?.digest as string;
    assert.match(noisyDigest, /^sha256:[0-9a-f]{64}$/);
    assert.match(
      row(failed.output, 'rehearse'),
      /\| failed \| rehearsal FAIL on this machine: (run 2|to start) scores [\d.]+ where run 1 scores [\d.]+ \(difference [\d.]+ > 0\.02\)/,
    );
    assert.match(row(failed.output, 'commit'), /^commit \| not run$/);
    // The predictions diff, the spot check's advice and the rerun commands.
    assert.match(failed.output, /predictions of (run 2|to start) against run 1: \d+ added, \d+ removed, \d+ changed, \d+ the same/);
    assert.match(failed.output, /next: the image answers the same challenge differently from run to run: make inference deterministic/);
    assert.match(failed.output, /rehearse alone: npx tsx tasks\/rehearse\.ts --tag noisy$/m);
    assert.match(failed.output, /^ {2}just deploy tag=noisy share=false start=false from=rehearse$/m);
    assert.deepEqual(
      [state('noisy').rehearse?.result, state('noisy').rehearse?.digest, state('noisy').commit],
      ['FAIL', noisyDigest, undefined],
    );
    assert.equal((await readRevealed(chain.api, TEST_NETUID, hotkeyAddress)).length, revealedBefore);
    assert.equal((await dockerd.docker(['ps', '-a', '-q', '--filter', 'label=score-miner-spotcheck=1'])).trim(), '');

    // commit alone refuses the digest; --force is the way past it
    const refused = await task('commit', ['--tag', 'noisy']);
    assert.equal(refused.code, 1, refused.output);
    assert.match(refused.output, new RegExp(`error: the rehearsal of ${noisyDigest.slice(0, 19)} at \\S+ failed: `));
    assert.match(refused.output, /next: Score's spot check would find the same: .*or commit anyway with --force/);
    assert.equal((await readRevealed(chain.api, TEST_NETUID, hotkeyAddress)).length, revealedBefore);

    // the fix: the bundled model again, built and pushed under the same tag; then the deploy resumes at rehearse
    const rebuilt = await task('build', ['--tag', 'noisy']);
    assert.equal(rebuilt.code, 0, rebuilt.output);
    const repushed = await task('push', ['--tag', 'noisy']);
    assert.equal(repushed.code, 0, repushed.output);
    assert.notEqual(state('noisy').push?.digest, noisyDigest);
    const resumed = await just(['deploy', ...words, 'from=rehearse']);
    assert.equal(resumed.code, 0, resumed.output);
    assert.match(row(resumed.output, 'rehearse'), /\| ok \| PASS on this machine/);
    assert.match(row(resumed.output, 'commit'), /\| ok \| block \d+, revealed in \d+/);
    const payload = JSON.parse((await readRevealed(chain.api, TEST_NETUID, hotkeyAddress)).at(-1)?.text ?? '{}');
    assert.deepEqual([payload.image_tag, payload.image_digest], ['noisy', state('noisy').push?.digest]);
  } finally {
    await rm(noisyDir, { recursive: true, force: true });
  }
});

test('two profiles on one engine (env=hk2 reads .env.hk2 over .env): each its own container, port, hotkey address and commit; the image shared', async () => {
  const hk2Address = writeHotkey('hk2');
  await chain.registerHotkey(TEST_NETUID, hk2Address);
  const [hk1Port, hk2Port] = [await freePort(), await freePort()];
  const envDir = path.join(work, 'profiles-env');
  mkdirSync(envDir, { recursive: true });
  writeFileSync(path.join(envDir, '.env'), `MINER_CONTAINER=${CONTAINER}-hk1\nMINER_PORT=${hk1Port}\nBITTENSOR_WALLET_HOT=miner\n`);
  writeFileSync(path.join(envDir, '.env.hk2'), `MINER_CONTAINER=${CONTAINER}-hk2\nMINER_PORT=${hk2Port}\nBITTENSOR_WALLET_HOT=hk2\n`);
  // What the profiles set comes from their files only; VERIFY on, so each container gets its hotkey's address.
  const files = {
    DOTENV_DISABLE: undefined,
    DOTENV_DIR: envDir,
    MINER_CONTAINER: undefined,
    MINER_PORT: undefined,
    BITTENSOR_WALLET_HOT: undefined,
    VERIFY_ENABLED: 'true',
  };
  const first = await just(['deploy', 'tag=v1.0.0', 'share=false'], files);
  assert.equal(first.code, 0, first.output);
  const second = await just(['deploy', 'tag=v1.0.0', 'env=hk2', 'share=false'], files);
  assert.equal(second.code, 0, second.output);
  // the image is shared: the second profile finds it built, pushed and rehearsed
  assert.match(row(second.output, 'push'), /\| skipped \| sha256:.*already in the registry/);
  assert.match(row(second.output, 'rehearse'), /\| skipped \| PASS recorded/);
  assert.match(row(second.output, 'commit'), /\| ok \| block \d+/);
  assert.match(second.output, /^miner on this machine \(profile hk2\); total [\d.]+ s$/m);

  for (const [name, port, address] of [
    [`${CONTAINER}-hk1`, hk1Port, hotkeyAddress],
    [`${CONTAINER}-hk2`, hk2Port, hk2Address],
  ] as const) {
    const env = JSON.parse(await dockerd.docker(['container', 'inspect', '--format', '{{json .Config.Env}}', name])) as string[];
    assert.ok(env.includes(`MINER_HOTKEY_SS58=${address}`), `${name}: ${env.join(' ')}`);
    assert.ok(env.includes(`MINER_PORT=${port}`), `${name}: ${env.join(' ')}`);
    assert.equal((await fetch(`http://127.0.0.1:${port}/docs`)).status, 200);
    const payload = JSON.parse((await readRevealed(chain.api, TEST_NETUID, address)).at(-1)?.text ?? '{}');
    assert.deepEqual([payload.hotkey, payload.image_tag, payload.image_digest], [address, 'v1.0.0', state('v1.0.0').push?.digest]);
  }
  // each profile's commit and container in its own state; the image's build and push records stay shared
  const hk2State = JSON.parse(
    readFileSync(stateFile(path.join(work, 'state', 'profiles', 'hk2'), repo(), 'v1.0.0'), 'utf8'),
  ) as DeployState;
  assert.deepEqual(
    [hk2State.start?.name, hk2State.start?.port, hk2State.build, hk2State.push],
    [`${CONTAINER}-hk2`, hk2Port, undefined, undefined],
  );
  assert.ok(hk2State.commit && hk2State.commit.block > 0);
  assert.equal(state('v1.0.0').start?.name, `${CONTAINER}-hk1`);

  // just status env=hk2: the profile's hotkey
  const status = await just(['status', 'env=hk2'], files);
  assert.match(status.output, new RegExp(`^hotkey +${hk2Address} on netuid ${TEST_NETUID}`, 'm'));
  // the committed digest's rehearsal, as the deploy's rehearse step recorded it
  const digest = state('v1.0.0').push?.digest as string;
  assert.match(
    status.output,
    new RegExp(`^spotcheck PASS for ${digest.slice(0, 19)} at \\S+ \\(run against run, largest score difference 0\\.0000\\)$`, 'm'),
  );
});

test('DEPLOY_HOST=ssh://...: the rehearsal runs on that engine through docker over ssh (the digest pulled there is also what start runs)', async () => {
  const sshd = await startSshd(dockerd);
  try {
    const run = await task('rehearse', ['--tag', 'v1.0.0', '--force'], {
      DEPLOY_HOST: sshd.url,
      // the test-made ssh first; DOCKER_HOST still names the unix socket: DEPLOY_HOST must win
      PATH: `${sshd.env.PATH.split(':')[0]}:${minerEnv().PATH}`,
    });
    assert.equal(run.code, 0, run.output);
    const digest = state('v1.0.0').push?.digest as string;
    assert.match(
      run.output,
      new RegExp(`==> rehearse: replay one challenge on ${repo()}:v1\\.0\\.0 as Score's spot check would, on ${sshd.url}`),
    );
    assert.match(run.output, new RegExp(`pulled ${repo()}@${digest} on ${sshd.url}`));
    assert.match(run.output, /^ {4}start runs the pushed digest there$/m);
    assert.match(run.output, new RegExp(`done: PASS on ${sshd.url}: 3 answers within 0\\.02`));
    assert.deepEqual(
      { ...state('v1.0.0').rehearse, at: undefined },
      { digest, result: 'PASS', host: sshd.url, started: `${repo()}@${digest}`, difference: 0, at: undefined },
    );
    assert.equal((await dockerd.docker(['ps', '-a', '-q', '--filter', 'label=score-miner-spotcheck=1'])).trim(), '');
  } finally {
    await sshd.stop();
  }
});

test('a rehearsal stopped by a signal removes its container, records no verdict and releases the lock', async () => {
  const before = state('v1.0.0').rehearse;
  const child = execa(process.execPath, ['tasks/rehearse.ts', '--tag', 'v1.0.0', '--force'], {
    cwd: PROJECT_ROOT,
    env: minerEnv(),
    extendEnv: false,
    reject: false,
    all: true,
  });
  // stopped while its first container is up
  const deadline = Date.now() + 120_000;
  while (!(await dockerd.docker(['ps', '-q', '--filter', 'label=score-miner-spotcheck=1'])).trim()) {
    assert.ok(Date.now() < deadline && child.exitCode === null, 'no rehearsal container came up');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  child.kill('SIGTERM');
  const result = await child;
  assert.equal(result.signal, 'SIGTERM', result.all);
  assert.equal((await dockerd.docker(['ps', '-a', '-q', '--filter', 'label=score-miner-spotcheck=1'])).trim(), '');
  assert.deepEqual(state('v1.0.0').rehearse, before);
  assert.ok(!existsSync(path.join(deployLock(), 'lock')));
});
