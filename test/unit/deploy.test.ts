/**
 * The pure parts of the deploy pipeline, without a Docker daemon or a registry: the docker argv each step runs,
 * the environment a miner container may see, how docker failures are explained, the summary table, the state
 * files, the deploy lock and a step's record (in temporary folders), the `just deploy` words, the deploy target
 * from the configuration, and the small parsers of tasks/push.ts and tasks/build.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../../lib/core/config.ts';
import { MinerError } from '../../lib/core/errors.ts';
import { UsageError } from '../../lib/core/task.ts';
import {
  buildCommand,
  containerEnv,
  dockerFailure,
  loginCommand,
  modelSourceInContext,
  pushCommand,
  runCommand,
} from '../../lib/deploy/docker.ts';
import { acquireLock, appendRecord, type LockOwner, newOwner, readRun, releaseLock } from '../../lib/deploy/lock.ts';
import { runDeploy } from '../../lib/deploy/pipeline.ts';
import { committedRepo } from '../../lib/deploy/registry.ts';
import { headline, rerunCommand, resultLine, summaryTable } from '../../lib/deploy/report.ts';
import {
  type DeployState,
  latestPushedTag,
  readHistory,
  readState,
  requireStep,
  type StepName,
  type StepRecord,
  stateFile,
  writeHistory,
  writeState,
} from '../../lib/deploy/state.ts';
import { errorCause, insideDeploy, runStep } from '../../lib/deploy/step.ts';
import { deployTarget } from '../../lib/deploy/target.ts';
import { parseBuildArgs } from '../../tasks/build.ts';
import { planDeploy } from '../../tasks/deploy.ts';
import { pushedDigest } from '../../tasks/push.ts';

const DIGEST = 'sha256:5d41402abc4b2a76b9719d911017c592ae2e3fd4b5b52c0f3b9c3bd5c0d1e2f3';

const scratch: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'deploy-unit-'));
  scratch.push(dir);
  return dir;
}
after(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** Asserts `fn` throws a MinerError (of `type` when given) with exactly `message` and, when given, `hint`. */
function assertMinerError(
  fn: () => unknown,
  message: string | RegExp,
  hint?: string | RegExp,
  type: new (...args: never[]) => MinerError = MinerError,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    if (typeof hint === 'string') assert.equal(error.hint, hint);
    else if (hint) assert.match(error.hint ?? '', hint);
    return true;
  });
}

async function assertRejectsMinerError(promise: Promise<unknown>, message: string, hint: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof MinerError, String(error));
    assert.equal(error.message, message);
    assert.equal(error.hint, hint);
    return true;
  });
}

// ---- lib/deploy/docker.ts ------------------------------------------------------------------------------------

test('buildCommand: -f, --platform, -t, then --network and one --build-arg per argument in order, the context last', () => {
  assert.deepEqual(
    buildCommand({
      dockerfile: '/src/score-miner/Dockerfile.miner',
      reference: 'docker.io/alice/pt-solution:v1.0.0',
      platform: 'linux/amd64',
      buildArgs: { MODEL_SRC: 'models/mine', BASE_IMAGE: 'node:24-bookworm-slim' },
      context: '/src/score-miner',
      network: 'host',
    }),
    [
      'build',
      '-f',
      '/src/score-miner/Dockerfile.miner',
      '--platform',
      'linux/amd64',
      '-t',
      'docker.io/alice/pt-solution:v1.0.0',
      '--network',
      'host',
      '--build-arg',
      'MODEL_SRC=models/mine',
      '--build-arg',
      'BASE_IMAGE=node:24-bookworm-slim',
      '/src/score-miner',
    ],
  );
});

test('buildCommand: without network and build arguments there is no --network and no --build-arg', () => {
  assert.deepEqual(
    buildCommand({
      dockerfile: 'Dockerfile.miner',
      reference: 'ghcr.io/bob/miner:v2',
      platform: 'linux/arm64',
      buildArgs: {},
      context: '.',
    }),
    ['build', '-f', 'Dockerfile.miner', '--platform', 'linux/arm64', '-t', 'ghcr.io/bob/miner:v2', '.'],
  );
});

test('buildCommand: a build argument value with spaces and "=" stays one argv element', () => {
  const argv = buildCommand({
    dockerfile: 'D',
    reference: 'r:t',
    platform: 'linux/amd64',
    buildArgs: { NOTE: 'a b=c' },
    context: '.',
  });
  assert.deepEqual(argv.slice(-3), ['--build-arg', 'NOTE=a b=c', '.']);
});

test('loginCommand: the token goes on stdin (--password-stdin), never in argv', () => {
  assert.deepEqual(loginCommand('docker.io', 'alice'), ['login', 'docker.io', '--username', 'alice', '--password-stdin']);
  assert.deepEqual(loginCommand('127.0.0.1:5000', 'bob'), ['login', '127.0.0.1:5000', '--username', 'bob', '--password-stdin']);
  // no parameter through which a token could reach the command line
  assert.equal(loginCommand.length, 2);
  assert.ok(!loginCommand('docker.io', 'alice').some((word) => word.startsWith('--password') && word !== '--password-stdin'));
  assert.ok(!loginCommand('docker.io', 'alice').includes('-p'));
});

test('pushCommand: docker push REFERENCE', () => {
  assert.deepEqual(pushCommand('docker.io/alice/pt-solution:v1.0.0'), ['push', 'docker.io/alice/pt-solution:v1.0.0']);
});

test('runCommand: name, restart policy, label, published port, env per variable, image last', () => {
  assert.deepEqual(
    runCommand({
      name: 'score-miner',
      image: 'docker.io/alice/pt-solution:v1.0.0',
      port: 8000,
      env: { MINER_PORT: '8000', LOG_LEVEL: 'info' },
    }),
    [
      'run',
      '-d',
      '--name',
      'score-miner',
      '--restart',
      'unless-stopped',
      '--stop-timeout',
      '30',
      '--label',
      'score-miner=1',
      '-p',
      '8000:8000',
      '-e',
      'MINER_PORT=8000',
      '-e',
      'LOG_LEVEL=info',
      'docker.io/alice/pt-solution:v1.0.0',
    ],
  );
});

test('runCommand: --network host publishes no port; --user and the wallet mounted read-only at /wallets', () => {
  const image = `docker.io/alice/pt-solution@${DIGEST}`;
  assert.deepEqual(
    runCommand({
      name: 'miner-b',
      image,
      port: 9123,
      network: 'host',
      env: { MINER_PORT: '9123', BITTENSOR_WALLET_PATH: '/wallets' },
      walletDir: '/home/alice/.bittensor/wallets',
      user: '1000:1000',
    }),
    [
      'run',
      '-d',
      '--name',
      'miner-b',
      '--restart',
      'unless-stopped',
      '--stop-timeout',
      '30',
      '--label',
      'score-miner=1',
      '--network',
      'host',
      '--user',
      '1000:1000',
      '-v',
      '/home/alice/.bittensor/wallets:/wallets:ro',
      '-e',
      'MINER_PORT=9123',
      '-e',
      'BITTENSOR_WALLET_PATH=/wallets',
      image,
    ],
  );
});

test('runCommand: no env, no wallet, no user: nothing but the fixed options, the port and the image', () => {
  assert.deepEqual(runCommand({ name: 'm', image: 'i:t', port: 1, env: {} }), [
    'run',
    '-d',
    '--name',
    'm',
    '--restart',
    'unless-stopped',
    '--stop-timeout',
    '30',
    '--label',
    'score-miner=1',
    '-p',
    '1:1',
    'i:t',
  ]);
});

test('containerEnv: only allow-listed variables that are set and non-empty (trimmed); secrets and the rest never pass', () => {
  const env = {
    LOG_LEVEL: ' debug ',
    VERIFY_ENABLED: 'false',
    BITTENSOR_WALLET_COLD: 'cold',
    ORT_THREADS: '4',
    QUEUE_MAX: '',
    INFERENCE_CONCURRENCY: '   ',
    MIN_STAKE_THRESHOLD: undefined,
    DOCKERHUB_TOKEN: 'dckr_pat_secret',
    DOCKERHUB_USERNAME: 'alice',
    REGISTRY_TOKEN: 'ghp_secret',
    REGISTRY_USERNAME: 'alice',
    IMAGE_REPO: 'pt-solution',
    HOTKEY_URI: '//Alice',
    HOME: '/home/alice',
    PATH: '/usr/bin',
    SOMETHING_ELSE: 'x',
    BITTENSOR_WALLET_PATH: '/home/alice/.bittensor/wallets',
  };
  assert.deepEqual(containerEnv(env, { port: 8000, walletMounted: false }), {
    LOG_LEVEL: 'debug',
    VERIFY_ENABLED: 'false',
    BITTENSOR_WALLET_COLD: 'cold',
    ORT_THREADS: '4',
    MINER_PORT: '8000',
  });
});

test('containerEnv: MINER_PORT is forced to the given port; BITTENSOR_WALLET_PATH=/wallets only when the wallet is mounted', () => {
  assert.deepEqual(containerEnv({ MINER_PORT: '9999' }, { port: 8123, walletMounted: true }), {
    MINER_PORT: '8123',
    BITTENSOR_WALLET_PATH: '/wallets',
  });
  assert.deepEqual(containerEnv({}, { port: 8000, walletMounted: false }), { MINER_PORT: '8000' });
});

test('modelSourceInContext: a folder inside the context -> its posix path relative to the context', () => {
  assert.equal(modelSourceInContext('/src/score-miner', 'models/mine'), 'models/mine');
  assert.equal(modelSourceInContext('/src/score-miner', './models//mine/'), 'models/mine');
  assert.equal(modelSourceInContext('/src/score-miner', '/src/score-miner/models/mine'), 'models/mine');
  assert.equal(modelSourceInContext('/src/score-miner', 'models/a/../b'), 'models/b');
});

test('modelSourceInContext: outside the context (../x, an absolute path elsewhere) -> MinerError with the hint', () => {
  const hint = 'copy it into the project (e.g. models/mine) and pass --build-arg MODEL_SRC=models/mine';
  assertMinerError(
    () => modelSourceInContext('/src/score-miner', '../x'),
    'the model folder /src/x is outside the build context /src/score-miner',
    hint,
  );
  assertMinerError(
    () => modelSourceInContext('/src/score-miner', '/opt/models/mine'),
    'the model folder /opt/models/mine is outside the build context /src/score-miner',
    hint,
  );
  assertMinerError(
    () => modelSourceInContext('/src/score-miner', 'models/../../other'),
    'the model folder /src/other is outside the build context /src/score-miner',
    hint,
  );
  // a sibling whose name starts with the context's name is outside too
  assertMinerError(
    () => modelSourceInContext('/src/score-miner', '/src/score-miner-models/m'),
    'the model folder /src/score-miner-models/m is outside the build context /src/score-miner',
    hint,
  );
});

test('modelSourceInContext: a folder inside the context whose name starts with ".." is inside', () => {
  assert.equal(modelSourceInContext('/src/score-miner', '..models/mine'), '..models/mine');
});

test('dockerFailure: the cause is the last line that names an error; the command is named', () => {
  const output = [
    '#1 [internal] load build definition from Dockerfile.miner',
    '#7 [5/9] COPY models/mine /app/models/default',
    '#7 ERROR: failed to calculate checksum of ref abc::def: "/models/mine": not found',
    'ERROR: failed to solve: failed to compute cache key: failed to calculate checksum of ref abc::def: "/models/mine": not found',
    '',
    'View build details: docker-desktop://dashboard/build/default/default/xyz',
  ].join('\n');
  const error = dockerFailure(['build', '-f', 'Dockerfile.miner'], output);
  assert.ok(error instanceof MinerError);
  assert.equal(
    error.message,
    'docker build failed: ERROR: failed to solve: failed to compute cache key: failed to calculate checksum of ref abc::def: "/models/mine": not found',
  );
  assert.equal(
    error.hint,
    'a COPY source is missing from the build context: MODEL_SRC must be a folder inside the project and not in .dockerignore',
  );
});

test('dockerFailure: daemon unreachable -> start Docker', () => {
  const error = dockerFailure(
    ['push', 'x:y'],
    'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n',
  );
  assert.equal(
    error.message,
    'docker push failed: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
  );
  assert.equal(error.hint, 'start Docker (e.g. `sudo systemctl start docker`) or point DOCKER_HOST at a running daemon');
});

test('dockerFailure: unauthorized / denied -> check the registry user and token', () => {
  const hint = 'check the registry user and token in .env (a token with write access), then rerun';
  const login = dockerFailure(
    ['login', 'docker.io'],
    'Error response from daemon: Get "https://registry-1.docker.io/v2/": unauthorized: incorrect username or password',
  );
  assert.equal(
    login.message,
    'docker login failed: Error response from daemon: Get "https://registry-1.docker.io/v2/": unauthorized: incorrect username or password',
  );
  assert.equal(login.hint, hint);
  const push = dockerFailure(
    ['push', 'docker.io/alice/pt-solution:v1.0.0'],
    [
      'The push refers to repository [docker.io/alice/pt-solution]',
      '5f70bf18a086: Preparing',
      'denied: requested access to the resource is denied',
    ].join('\n'),
  );
  assert.equal(push.message, 'docker push failed: denied: requested access to the resource is denied');
  assert.equal(push.hint, hint);
});

test('dockerFailure: port already allocated -> choose another MINER_PORT', () => {
  const error = dockerFailure(
    ['run', '-d'],
    'abc123\ndocker: Error response from daemon: driver failed programming external connectivity on endpoint score-miner: Bind for 0.0.0.0:8000 failed: port is already allocated.',
  );
  assert.equal(
    error.message,
    'docker run failed: docker: Error response from daemon: driver failed programming external connectivity on endpoint score-miner: Bind for 0.0.0.0:8000 failed: port is already allocated.',
  );
  assert.equal(error.hint, 'another process uses MINER_PORT: stop it or choose another port in .env');
});

test('dockerFailure: container name already in use -> docker rm -f or MINER_CONTAINER', () => {
  const error = dockerFailure(
    ['run', '-d'],
    'docker: Error response from daemon: Conflict. The container name "/score-miner" is already in use by container "0123abcd". You have to remove (or rename) that container to be able to reuse that name.\nSee \'docker run --help\'.',
  );
  assert.equal(
    error.message,
    'docker run failed: docker: Error response from daemon: Conflict. The container name "/score-miner" is already in use by container "0123abcd". You have to remove (or rename) that container to be able to reuse that name.',
  );
  assert.equal(error.hint, 'a container with this name exists: `docker rm -f` it, or set MINER_CONTAINER');
});

test('dockerFailure: an unknown error -> the last line, and the --verbose hint; no output at all -> "no output"', () => {
  const odd = dockerFailure(['build'], 'step 3 went sideways\nexit status 17\n\n');
  assert.equal(odd.message, 'docker build failed: exit status 17');
  assert.equal(odd.hint, "rerun with --verbose to see docker's whole output");
  const empty = dockerFailure(['push'], '  \n\n');
  assert.equal(empty.message, 'docker push failed: no output');
  assert.equal(empty.hint, "rerun with --verbose to see docker's whole output");
});

test('dockerFailure: a very long cause line is cut to 300 characters', () => {
  const long = `error: ${'x'.repeat(400)}`;
  const error = dockerFailure(['build'], long);
  assert.equal(error.message, `docker build failed: error: ${'x'.repeat(293)}`);
});

// ---- lib/deploy/report.ts ------------------------------------------------------------------------------------

test('rerunCommand: from= replaced, the other words kept in order; from=build is left out', () => {
  assert.equal(
    rerunCommand(['tag=v1.0.0', 'from=build', 'share=false', 'start=false'], 'push'),
    'just deploy tag=v1.0.0 share=false start=false from=push',
  );
  assert.equal(rerunCommand(['commit=false', 'tag=v2'], 'start'), 'just deploy commit=false tag=v2 from=start');
  assert.equal(rerunCommand(['tag=v1.0.0', 'from=commit'], 'build'), 'just deploy tag=v1.0.0');
  assert.equal(rerunCommand([], 'share'), 'just deploy from=share');
});

test('headline and resultLine', () => {
  assert.equal(headline('push', 'push docker.io/alice/pt-solution:v1.0.0'), '==> push: push docker.io/alice/pt-solution:v1.0.0');
  assert.equal(resultLine({ step: 'push', result: 'ok', produced: DIGEST, seconds: 3.46 }), `    done: ${DIGEST} (3.5 s)`);
  assert.equal(
    resultLine({ step: 'build', result: 'failed', produced: 'docker build failed: x', seconds: 0 }),
    '    failed: docker build failed: x (0.0 s)',
  );
  assert.equal(
    resultLine({ step: 'share', result: 'skipped', produced: 'scorevision already reads it', seconds: 12 }),
    '    skipped: scorevision already reads it (12.0 s)',
  );
  assert.equal(
    resultLine({ step: 'share', result: 'manual', produced: 'add scorevision by hand', seconds: 0.04 }),
    '    manual: add scorevision by hand (0.0 s)',
  );
});

test('summaryTable: every step ok -> the aligned table, the total and "deploy finished"', () => {
  const records: StepRecord[] = [
    { step: 'build', result: 'ok', produced: 'img:v1', seconds: 12.34 },
    { step: 'push', result: 'ok', produced: 'sha256:ab', seconds: 3.5 },
    { step: 'share', result: 'ok', produced: 'read', seconds: 0.8 },
    { step: 'commit', result: 'ok', produced: 'block 7', seconds: 6 },
    { step: 'start', result: 'ok', produced: 'c0ffee', seconds: 2.2 },
  ];
  assert.equal(
    summaryTable(records, ['tag=v1']),
    [
      'step    result  produced   time',
      '------  ------  ---------  ------',
      'build   ok      img:v1     12.3 s',
      'push    ok      sha256:ab  3.5 s',
      'share   ok      read       0.8 s',
      'commit  ok      block 7    6.0 s',
      'start   ok      c0ffee     2.2 s',
      '',
      'total 24.8 s',
      'deploy finished',
    ].join('\n'),
  );
});

test('summaryTable: a failure at push -> later steps "not run", and the command that reruns from push', () => {
  const records: StepRecord[] = [
    { step: 'build', result: 'ok', produced: 'img:v1', seconds: 10 },
    { step: 'push', result: 'failed', produced: 'docker push failed: denied', seconds: 1.5 },
  ];
  assert.equal(
    summaryTable(records, ['tag=v1.0.0', 'from=build', 'start=true']),
    [
      'step    result   produced                    time',
      '------  -------  --------------------------  ------',
      'build   ok       img:v1                      10.0 s',
      'push    failed   docker push failed: denied  1.5 s',
      'share   not run',
      'commit  not run',
      'start   not run',
      '',
      'total 11.5 s',
      'deploy failed at push; after fixing the cause, rerun from there:',
      '  just deploy tag=v1.0.0 start=true from=push',
    ].join('\n'),
  );
});

test('summaryTable: steps without a record after a success read "skipped"; skipped records keep their reason', () => {
  const records: StepRecord[] = [
    { step: 'build', result: 'skipped', produced: 'before from=push', seconds: 0 },
    { step: 'push', result: 'ok', produced: 'd', seconds: 1 },
    { step: 'share', result: 'manual', produced: 'by hand', seconds: 0.25 },
  ];
  assert.equal(
    summaryTable(records, ['tag=v1', 'from=push']),
    [
      'step    result   produced          time',
      '------  -------  ----------------  -----',
      'build   skipped  before from=push  0.0 s',
      'push    ok       d                 1.0 s',
      'share   manual   by hand           0.3 s',
      'commit  skipped',
      'start   skipped',
      '',
      'total 1.3 s',
      'deploy finished',
    ].join('\n'),
  );
});

// ---- lib/deploy/state.ts -------------------------------------------------------------------------------------

test('stateFile: user/repo and host:port/user/repo flattened into one folder per repository', () => {
  assert.equal(stateFile('/state', 'alice/pt-solution', 'v1.0.0'), '/state/alice_pt-solution/v1.0.0.json');
  assert.equal(
    stateFile('/state', 'registry.example.com:5000/alice/repo', 'v1.0.0'),
    '/state/registry.example.com_5000_alice_repo/v1.0.0.json',
  );
  assert.equal(stateFile('/state', 'ghcr.io/bob/team/miner', 'latest'), '/state/ghcr.io_bob_team_miner/latest.json');
});

test('readState: a missing file -> only repo and tag', () => {
  const dir = tempDir();
  assert.deepEqual(readState(dir, 'alice/repo', 'v1'), { repo: 'alice/repo', tag: 'v1' });
  assert.deepEqual(readState(path.join(dir, 'absent'), 'alice/repo', 'v1'), { repo: 'alice/repo', tag: 'v1' });
});

test('readState: a corrupt file -> MinerError naming the file, with the hint to delete it', () => {
  const dir = tempDir();
  const file = path.join(dir, 'alice_repo', 'v1.json');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, '{"repo": "alice/repo", "build": ');
  assertMinerError(
    () => readState(dir, 'alice/repo', 'v1'),
    new RegExp(`^the deploy state ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid JSON: `),
    'delete that file and rerun from tasks/build.ts (each step is safe to repeat)',
  );
});

test('writeState then readState: the same state back, written atomically (no scratch file left)', async () => {
  const dir = tempDir();
  const state: DeployState = {
    repo: '127.0.0.1:5000/alice/repo',
    tag: 'v1.0.0',
    build: { imageId: 'sha256:1111', reference: '127.0.0.1:5000/alice/repo:v1.0.0', at: '2025-01-01T00:00:00.000Z' },
    push: { reference: '127.0.0.1:5000/alice/repo:v1.0.0', digest: DIGEST, at: '2025-01-01T00:01:00.000Z' },
    commit: { block: 100, revealBlock: 460, at: '2025-01-01T00:02:00.000Z' },
  };
  await writeState(dir, state);
  assert.deepEqual(readdirSync(dir), ['127.0.0.1_5000_alice_repo']);
  assert.deepEqual(readdirSync(path.join(dir, '127.0.0.1_5000_alice_repo')), ['v1.0.0.json']);
  assert.deepEqual(readState(dir, '127.0.0.1:5000/alice/repo', 'v1.0.0'), state);
  // written again: replaced, not merged
  await writeState(dir, { repo: state.repo, tag: state.tag });
  assert.deepEqual(readState(dir, state.repo, state.tag), { repo: state.repo, tag: state.tag });
});

test('readState: repo and tag come from the arguments, not from the file', () => {
  const dir = tempDir();
  const file = stateFile(dir, 'alice/repo', 'v1');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify({ repo: 'mallory/other', tag: 'v9', share: { registry: 'dockerhub', result: 'ok', detail: 'd', at: 'a' } }),
  );
  assert.deepEqual(readState(dir, 'alice/repo', 'v1'), {
    repo: 'alice/repo',
    tag: 'v1',
    share: { registry: 'dockerhub', result: 'ok', detail: 'd', at: 'a' },
  });
});

test('requireStep: the recorded value, or the error naming the step to run first', () => {
  const push = { reference: 'docker.io/alice/repo:v1', digest: DIGEST, at: '2025-01-01T00:00:00.000Z' };
  assert.deepEqual(requireStep({ repo: 'alice/repo', tag: 'v1', push }, 'push', 'pushed digest'), push);
  assertMinerError(
    () => requireStep({ repo: 'alice/repo', tag: 'v1' }, 'push', 'pushed digest'),
    'no pushed digest for alice/repo:v1: run tasks/push.ts first',
    'npx tsx tasks/push.ts --tag v1 (or the whole pipeline: just deploy tag=v1)',
  );
  assertMinerError(
    () => requireStep({ repo: 'alice/repo', tag: 'v2' }, 'build', 'built image'),
    'no built image for alice/repo:v2: run tasks/build.ts first',
    'npx tsx tasks/build.ts --tag v2 (or the whole pipeline: just deploy tag=v2)',
  );
});

test('latestPushedTag: the tag with the newest push.at (not the newest name or build); none -> undefined', async () => {
  const dir = tempDir();
  const repo = 'alice/repo';
  assert.equal(latestPushedTag(dir, repo), undefined);
  const pushed = (tag: string, at: string): DeployState => ({
    repo,
    tag,
    push: { reference: `docker.io/${repo}:${tag}`, digest: DIGEST, at },
  });
  await writeState(dir, { repo, tag: 'v3', build: { imageId: 'sha256:3', reference: 'r', at: '2025-09-01T00:00:00.000Z' } });
  assert.equal(latestPushedTag(dir, repo), undefined);
  await writeState(dir, pushed('v1', '2025-01-02T00:00:00.000Z'));
  await writeState(dir, pushed('v2', '2025-03-01T10:00:00.000Z'));
  await writeState(dir, pushed('v10', '2025-02-01T00:00:00.000Z'));
  await writeHistory(dir, repo, { started: [{ tag: 'v10', containerId: 'c', at: '2025-12-01T00:00:00.000Z' }] });
  assert.equal(latestPushedTag(dir, repo), 'v2');
  assert.equal(latestPushedTag(dir, 'alice/other'), undefined);
});

test('readHistory / writeHistory: empty when missing, round trip otherwise', async () => {
  const dir = tempDir();
  assert.deepEqual(readHistory(dir, 'host:5000/alice/repo'), { started: [] });
  const history = {
    started: [
      { tag: 'v1', digest: DIGEST, containerId: 'aaa', at: '2025-01-01T00:00:00.000Z' },
      { tag: 'v2', containerId: 'bbb', at: '2025-01-02T00:00:00.000Z' },
    ],
  };
  await writeHistory(dir, 'host:5000/alice/repo', history);
  assert.deepEqual(readHistory(dir, 'host:5000/alice/repo'), history);
  assert.deepEqual(readdirSync(path.join(dir, 'host_5000_alice_repo')), ['started.json']);
});

// ---- lib/deploy/lock.ts --------------------------------------------------------------------------------------

const owner = (id: string, pid: number, command: string, host = os.hostname()): LockOwner => ({
  id,
  pid,
  host,
  command,
  since: '2025-05-05T05:05:05.000Z',
});

/** The pid of a process that has exited (and been reaped): certainly not running. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  assert.equal(child.status, 0);
  return child.pid as number;
}

test('acquireLock: the lock is taken and records the owner, the words and no records yet', async () => {
  const dir = path.join(tempDir(), 'state');
  const first = owner('run-1', process.pid, 'just deploy tag=v1.0.0');
  assert.deepEqual(await acquireLock(dir, first, ['tag=v1.0.0']), { tookOver: undefined });
  assert.ok(existsSync(path.join(dir, 'lock')));
  assert.deepEqual(readRun(dir), { owner: first, words: ['tag=v1.0.0'], records: [] });
});

test('acquireLock: a second deploy is refused, naming pid, host, command and since of the holder', async () => {
  const dir = tempDir();
  const first = owner('run-1', process.pid, 'just deploy tag=v1.0.0');
  await acquireLock(dir, first, ['tag=v1.0.0']);
  await assertRejectsMinerError(
    acquireLock(dir, owner('run-2', process.pid, 'tasks/push.ts')),
    `another deploy holds the lock: pid ${process.pid} on ${os.hostname()} (\`just deploy tag=v1.0.0\`) since 2025-05-05T05:05:05.000Z`,
    `wait for it to finish; if it is gone, remove ${path.join(dir, 'lock')} and rerun`,
  );
  // the holder is unchanged
  assert.equal(readRun(dir)?.owner.id, 'run-1');
});

test('acquireLock: a lock held from another host is refused even when the pid is not running here', async () => {
  const dir = tempDir();
  const pid = deadPid();
  await acquireLock(dir, owner('remote', pid, 'just deploy tag=v1', 'other-host.example'));
  await assertRejectsMinerError(
    acquireLock(dir, owner('local', process.pid, 'just deploy tag=v2')),
    `another deploy holds the lock: pid ${pid} on other-host.example (\`just deploy tag=v1\`) since 2025-05-05T05:05:05.000Z`,
    `wait for it to finish; if it is gone, remove ${path.join(dir, 'lock')} and rerun`,
  );
});

test('acquireLock: a lock folder without run.json is held by "an unknown process"', async () => {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'lock'));
  await assertRejectsMinerError(
    acquireLock(dir, owner('run-1', process.pid, 'x')),
    'another deploy holds the lock: an unknown process',
    `wait for it to finish; if it is gone, remove ${path.join(dir, 'lock')} and rerun`,
  );
});

test('acquireLock: a stale lock (its pid no longer runs on this host) is taken over and the old owner reported', async () => {
  const dir = tempDir();
  const stale = owner('old', deadPid(), 'just deploy tag=v0');
  await acquireLock(dir, stale, ['tag=v0']);
  await appendRecord(dir, 'old', { step: 'build', result: 'ok', produced: 'x', seconds: 1 });
  const fresh = owner('new', process.pid, 'just deploy tag=v1');
  assert.deepEqual(await acquireLock(dir, fresh, ['tag=v1']), { tookOver: stale });
  assert.deepEqual(readRun(dir), { owner: fresh, words: ['tag=v1'], records: [] });
});

test('appendRecord: only the holder id appends (with the tag); releaseLock by another id does nothing', async () => {
  const dir = tempDir();
  const holder = owner('run-1', process.pid, 'just deploy tag=v1');
  await acquireLock(dir, holder, ['tag=v1']);
  const build: StepRecord = { step: 'build', result: 'ok', produced: 'img', seconds: 2 };
  await appendRecord(dir, 'run-1', build, 'v1');
  await appendRecord(dir, 'someone-else', { step: 'push', result: 'failed', produced: 'nope', seconds: 1 }, 'v9');
  assert.deepEqual(readRun(dir), { owner: holder, words: ['tag=v1'], tag: 'v1', records: [build] });
  await releaseLock(dir, 'someone-else');
  assert.ok(existsSync(path.join(dir, 'lock', 'run.json')));
  assert.ok(!existsSync(path.join(dir, 'last-run.json')));
});

test('releaseLock: run.json moves to last-run.json, the lock is gone, and a new deploy may take it', async () => {
  const dir = tempDir();
  const holder = newOwner('run-1', process.pid, 'just deploy tag=v1');
  assert.equal(holder.host, os.hostname());
  assert.equal(holder.pid, process.pid);
  await acquireLock(dir, holder, ['tag=v1']);
  const push: StepRecord = { step: 'push', result: 'ok', produced: DIGEST, seconds: 4 };
  await appendRecord(dir, 'run-1', push);
  await releaseLock(dir, 'run-1');
  assert.ok(!existsSync(path.join(dir, 'lock')));
  assert.equal(readRun(dir), undefined);
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'last-run.json'), 'utf8')), {
    owner: holder,
    words: ['tag=v1'],
    records: [push],
  });
  // appending after the release does nothing
  await appendRecord(dir, 'run-1', push);
  assert.equal(readRun(dir), undefined);
  assert.deepEqual(await acquireLock(dir, owner('run-2', process.pid, 'tasks/build.ts')), { tookOver: undefined });
});

// ---- lib/deploy/step.ts runStep --------------------------------------------------------------------------------

test('runStep alone: its own lock (tasks/<step>.ts, this pid) while the body runs, released after; headline and result line', async () => {
  const dir = path.join(tempDir(), 'state');
  const lines: string[] = [];
  let heldDuring: LockOwner | undefined;
  const outcome = await runStep(
    { step: 'push', stateDir: dir, env: {}, out: (line) => lines.push(line), tag: 'v1' },
    'push x:v1',
    async () => {
      heldDuring = readRun(dir)?.owner;
      return { produced: 'sha256:abc' };
    },
  );
  assert.deepEqual(outcome, { produced: 'sha256:abc' });
  assert.deepEqual([heldDuring?.id, heldDuring?.pid, heldDuring?.command], [`push-${process.pid}`, process.pid, 'tasks/push.ts']);
  assert.equal(readRun(dir), undefined);
  assert.ok(!existsSync(path.join(dir, 'lock')));
  assert.equal(lines[0], '==> push: push x:v1');
  assert.match(lines[1], /^ {4}done: sha256:abc \(\d+\.\d s\)$/);
  assert.equal(lines.length, 2);
});

test('runStep alone while a deploy holds the lock: refused naming the holder, the body never runs', async () => {
  const dir = tempDir();
  await acquireLock(dir, owner('deploy-1', process.pid, 'just deploy tag=v1'), ['tag=v1']);
  let ran = false;
  await assertRejectsMinerError(
    runStep({ step: 'commit', stateDir: dir, env: {}, out: () => undefined }, 'commit', async () => {
      ran = true;
      return { produced: '' };
    }),
    `another deploy holds the lock: pid ${process.pid} on ${os.hostname()} (\`just deploy tag=v1\`) since 2025-05-05T05:05:05.000Z`,
    `wait for it to finish; if it is gone, remove ${path.join(dir, 'lock')} and rerun`,
  );
  assert.equal(ran, false);
  assert.equal(readRun(dir)?.owner.id, 'deploy-1');
});

test('runStep inside a deploy: no lock of its own; the deploy gets each record with the tag, a failure with its cause', async () => {
  const dir = tempDir();
  // The deploy's lock is held (by "deploy-1"): a step that tried to take its own would be refused.
  await acquireLock(dir, owner('deploy-1', process.pid, 'just deploy tag=v2'), ['tag=v2']);
  const received: [StepRecord, string | undefined][] = [];
  const deploy = {
    async record(record: StepRecord, tag?: string) {
      received.push([record, tag]);
    },
  };
  const lines: string[] = [];
  const out = (line: string) => lines.push(line);
  await insideDeploy(deploy, () =>
    runStep({ step: 'build', stateDir: dir, env: {}, out, tag: 'v2' }, 'docker build', async () => ({
      produced: 'img',
      result: 'skipped',
    })),
  );
  const failure = new MinerError('the registry refused', { hint: 'log in' });
  await assert.rejects(
    insideDeploy(deploy, () =>
      runStep({ step: 'push', stateDir: dir, env: {}, out, tag: 'v2' }, 'push', async () => {
        throw failure;
      }),
    ),
    (error) => error === failure,
  );
  assert.deepEqual(
    received.map(([record, tag]) => [record.step, record.result, record.produced, tag]),
    [
      ['build', 'skipped', 'img', 'v2'],
      ['push', 'failed', 'the registry refused', 'v2'],
    ],
  );
  assert.ok(received.every(([record]) => record.seconds >= 0 && record.seconds < 60));
  assert.equal(readRun(dir)?.owner.id, 'deploy-1');
  assert.deepEqual(
    lines.map((line) => line.replace(/\(\d+\.\d s\)/, '(T)')),
    ['==> build: docker build', '    skipped: img (T)', '==> push: push', '    failed: the registry refused (T)'],
  );
  // Outside insideDeploy the same step takes the lock for itself again, and is refused by the deploy's.
  await assert.rejects(
    runStep({ step: 'push', stateDir: dir, env: {}, out }, 'push', async () => ({ produced: '' })),
    /another deploy holds the lock/,
  );
});

test('errorCause: the first line of describeError without "error: "', () => {
  assert.equal(errorCause('error: DOCKERHUB_USERNAME is not set\n  next: set it'), 'DOCKERHUB_USERNAME is not set');
  assert.equal(errorCause('no prefix'), 'no prefix');
});

// ---- lib/deploy/pipeline.ts runDeploy ---------------------------------------------------------------------------

/** Step mains for runDeploy: each records through runStep (as the tasks do) unless `behaviour` says otherwise. */
function stepMains(dir: string, calls: string[], behaviour: Partial<Record<StepName, 'exit 2' | 'throw' | 'fail'>>) {
  const main = (step: StepName) => async (argv: string[], deps: { err: (line: string) => void }) => {
    calls.push(`${step} ${argv.join(' ')}`);
    const what = behaviour[step];
    if (what === 'exit 2') {
      deps.err('error: --tag is odd\n  next: see the usage below');
      return 2;
    }
    if (what === 'throw') throw new Error(`${step} blew up`);
    await runStep({ step, stateDir: dir, env: {}, out: () => undefined, tag: 'v1' }, step, async () => {
      if (what === 'fail') throw new MinerError(`${step} was refused`);
      return { produced: `${step} made` };
    }).catch((error) => {
      deps.err(`error: ${(error as Error).message}`);
    });
    return what === 'fail' ? 1 : 0;
  };
  return { build: main('build'), push: main('push'), share: main('share'), commit: main('commit'), start: main('start') };
}

async function deployWith(words: string[], behaviour: Partial<Record<StepName, 'exit 2' | 'throw' | 'fail'>>) {
  const dir = tempDir();
  const calls: string[] = [];
  const out: string[] = [];
  const err: string[] = [];
  const deps = { env: {}, out: (line: string) => out.push(line), err: (line: string) => err.push(line) };
  const result = runDeploy({ plan: planDeploy(words), words, stateDir: dir, mains: stepMains(dir, calls, behaviour), deps });
  return { dir, calls, out, err, result };
}

const rows = (out: string[]) =>
  out
    .join('\n')
    .split('\n')
    .filter((line) => /^(build|push|share|commit|start) /.test(line))
    .map((line) => line.replace(/\s{2,}/g, ' | ').replace(/\d+\.\d s$/, 'T'));

test('runDeploy: the planned steps in order with --tag, the skipped ones recorded with their reason; exit 0, lock released', async () => {
  const run = await deployWith(['tag=v1', 'share=false', 'commit=false'], {});
  assert.equal(await run.result, 0);
  assert.deepEqual(run.calls, ['build --tag v1', 'push --tag v1', 'start --tag v1']);
  assert.deepEqual(rows(run.out), [
    'build | ok | build made | T',
    'push | ok | push made | T',
    'share | skipped | share=false | T',
    'commit | skipped | commit=false | T',
    'start | ok | start made | T',
  ]);
  assert.equal(run.out.at(-1)?.split('\n').at(-1), 'deploy finished');
  assert.ok(!existsSync(path.join(run.dir, 'lock')));
  assert.equal(JSON.parse(readFileSync(path.join(run.dir, 'last-run.json'), 'utf8')).records.length, 5);
});

test('runDeploy: a step that records its failure stops the deploy there with its exit code; the later steps are not run', async () => {
  const run = await deployWith(['tag=v1'], { push: 'fail' });
  assert.equal(await run.result, 1);
  assert.deepEqual(run.calls, ['build --tag v1', 'push --tag v1']);
  assert.deepEqual(rows(run.out), [
    'build | ok | build made | T',
    'push | failed | push was refused | T',
    'share | not run',
    'commit | not run',
    'start | not run',
  ]);
  assert.deepEqual(run.out.at(-1)?.split('\n').slice(-2), [
    'deploy failed at push; after fixing the cause, rerun from there:',
    '  just deploy tag=v1 from=push',
  ]);
  assert.deepEqual(run.err, ['error: push was refused']);
  assert.ok(!existsSync(path.join(run.dir, 'lock')));
});

test('runDeploy: a step that exits without a record is named with the first error it printed, and its exit code kept', async () => {
  const run = await deployWith(['tag=v1', 'from=share'], { commit: 'exit 2' });
  assert.equal(await run.result, 2);
  assert.deepEqual(rows(run.out).slice(2, 4), ['share | ok | share made | T', 'commit | failed | --tag is odd | T']);
  assert.ok(!existsSync(path.join(run.dir, 'lock')));
});

test('runDeploy: a step that throws: the summary names it with the error, the lock is released, the error goes on', async () => {
  const run = await deployWith(['tag=v1'], { build: 'throw' });
  await assert.rejects(run.result, /build blew up/);
  assert.deepEqual(rows(run.out)[0], 'build | failed | build blew up | T');
  assert.ok(!existsSync(path.join(run.dir, 'lock')));
});

test('runDeploy: a held lock refuses the deploy before any step runs and prints no summary', async () => {
  const dir = tempDir();
  await acquireLock(dir, owner('deploy-1', process.pid, 'just deploy tag=v0'), ['tag=v0']);
  const calls: string[] = [];
  const out: string[] = [];
  const deps = { env: {}, out: (line: string) => out.push(line), err: () => undefined };
  await assert.rejects(
    runDeploy({ plan: planDeploy(['tag=v1']), words: ['tag=v1'], stateDir: dir, mains: stepMains(dir, calls, {}), deps }),
    /another deploy holds the lock: pid \d+ on .* \(`just deploy tag=v0`\)/,
  );
  assert.deepEqual([calls, out], [[], []]);
  assert.equal(readRun(dir)?.owner.id, 'deploy-1');
});

// ---- tasks/deploy.ts planDeploy ------------------------------------------------------------------------------

test('planDeploy: tag=v1.0.0 -> every step runs, from build', () => {
  assert.deepEqual(planDeploy(['tag=v1.0.0']), {
    tag: 'v1.0.0',
    from: 'build',
    steps: [
      { step: 'build', run: true },
      { step: 'push', run: true },
      { step: 'share', run: true },
      { step: 'commit', run: true },
      { step: 'start', run: true },
    ],
  });
});

test('planDeploy: push=false leaves out share and commit (reason push=false) unless they are given =true', () => {
  assert.deepEqual(planDeploy(['tag=v1', 'push=false']).steps, [
    { step: 'build', run: true },
    { step: 'push', run: false, reason: 'push=false' },
    { step: 'share', run: false, reason: 'push=false' },
    { step: 'commit', run: false, reason: 'push=false' },
    { step: 'start', run: true },
  ]);
  assert.deepEqual(planDeploy(['push=false', 'share=true', 'tag=v1']).steps, [
    { step: 'build', run: true },
    { step: 'push', run: false, reason: 'push=false' },
    { step: 'share', run: true },
    { step: 'commit', run: false, reason: 'push=false' },
    { step: 'start', run: true },
  ]);
  assert.deepEqual(planDeploy(['tag=v1', 'push=false', 'commit=true', 'start=false']).steps, [
    { step: 'build', run: true },
    { step: 'push', run: false, reason: 'push=false' },
    { step: 'share', run: false, reason: 'push=false' },
    { step: 'commit', run: true },
    { step: 'start', run: false, reason: 'start=false' },
  ]);
});

test('planDeploy: share=false commit=false', () => {
  assert.deepEqual(planDeploy(['tag=v1.0.0', 'share=false', 'commit=false']), {
    tag: 'v1.0.0',
    from: 'build',
    steps: [
      { step: 'build', run: true },
      { step: 'push', run: true },
      { step: 'share', run: false, reason: 'share=false' },
      { step: 'commit', run: false, reason: 'commit=false' },
      { step: 'start', run: true },
    ],
  });
});

test('planDeploy: from=commit -> the earlier steps left out "before from=commit"', () => {
  assert.deepEqual(planDeploy(['tag=v1.0.0', 'from=commit']), {
    tag: 'v1.0.0',
    from: 'commit',
    steps: [
      { step: 'build', run: false, reason: 'before from=commit' },
      { step: 'push', run: false, reason: 'before from=commit' },
      { step: 'share', run: false, reason: 'before from=commit' },
      { step: 'commit', run: true },
      { step: 'start', run: true },
    ],
  });
  assert.deepEqual(
    planDeploy(['from=push', 'tag=v2', 'start=false']).steps.map((s) => [s.step, s.run, s.reason]),
    [
      ['build', false, 'before from=push'],
      ['push', true, undefined],
      ['share', true, undefined],
      ['commit', true, undefined],
      ['start', false, 'start=false'],
    ],
  );
});

test('planDeploy: an unknown word, a word that is not NAME=VALUE -> UsageError naming it', () => {
  const wordsHint = 'the words are tag=, push=, share=, commit=, start= and from=';
  assertMinerError(() => planDeploy(['tag=v1', 'colour=red']), 'unknown word "colour=red"', wordsHint, UsageError);
  // build cannot be switched off (use from=)
  assertMinerError(() => planDeploy(['tag=v1', 'build=false']), 'unknown word "build=false"', wordsHint, UsageError);
  const shapeHint = 'write the words as in: just deploy tag=v1.0.0 share=false';
  assertMinerError(() => planDeploy(['v1.0.0']), '"v1.0.0" is not NAME=VALUE', shapeHint, UsageError);
  assertMinerError(() => planDeploy(['TAG=v1']), '"TAG=v1" is not NAME=VALUE', shapeHint, UsageError);
  assertMinerError(() => planDeploy(['--tag', 'v1']), '"--tag" is not NAME=VALUE', shapeHint, UsageError);
});

test('planDeploy: a switch that is not true/false, a from= that is not a step -> UsageError', () => {
  assertMinerError(
    () => planDeploy(['tag=v1', 'share=no']),
    'share=no: expected share=true or share=false',
    'run with --help for the options',
    UsageError,
  );
  assertMinerError(
    () => planDeploy(['tag=v1', 'push=']),
    'push=: expected push=true or push=false',
    'run with --help for the options',
    UsageError,
  );
  assertMinerError(() => planDeploy(['tag=v1', 'start=False']), 'start=False: expected start=true or start=false', undefined, UsageError);
  assertMinerError(
    () => planDeploy(['tag=v1', 'from=deploy']),
    'from=deploy is not a step',
    'use one of build, push, share, commit, start',
    UsageError,
  );
  assertMinerError(
    () => planDeploy(['tag=v1', 'from=']),
    'from= is not a step',
    'use one of build, push, share, commit, start',
    UsageError,
  );
});

test('planDeploy: tag= missing -> UsageError', () => {
  assertMinerError(() => planDeploy([]), 'tag= is required', 'e.g. just deploy tag=v1.0.0', UsageError);
  assertMinerError(() => planDeploy(['push=false', 'from=push']), 'tag= is required', 'e.g. just deploy tag=v1.0.0', UsageError);
});

test('planDeploy: a tag docker refuses -> an error naming the tag', () => {
  const hint = 'use letters, digits, "_", "." and "-" (at most 128, not starting with "." or "-")';
  assertMinerError(() => planDeploy(['tag=-v1']), 'tag "-v1" is not a valid image tag', hint);
  assertMinerError(() => planDeploy(['tag=.v1']), 'tag ".v1" is not a valid image tag', hint);
  assertMinerError(() => planDeploy(['tag=v1/2']), 'tag "v1/2" is not a valid image tag', hint);
  assertMinerError(() => planDeploy([`tag=${'a'.repeat(129)}`]), `tag "${'a'.repeat(129)}" is not a valid image tag`, hint);
  // the longest tag docker takes is fine, case kept
  assert.equal(planDeploy([`tag=V${'a'.repeat(127)}`]).tag, `V${'a'.repeat(127)}`);
});

test('planDeploy: a bad tag is a UsageError (exit 2), like every other wrong word', () => {
  assert.throws(() => planDeploy(['tag=-v1']), UsageError);
  assert.throws(() => planDeploy(['tag=']), UsageError);
});

// ---- lib/deploy/registry.ts committedRepo, lib/deploy/target.ts deployTarget ---------------------------------

test('committedRepo: user/repo for Docker Hub, the whole name for any other registry', () => {
  assert.equal(committedRepo('docker.io/alice/pt-solution'), 'alice/pt-solution');
  assert.equal(committedRepo('ghcr.io/alice/pt-solution'), 'ghcr.io/alice/pt-solution');
  assert.equal(committedRepo('registry.example.com:5000/alice/team/miner'), 'registry.example.com:5000/alice/team/miner');
  assert.equal(committedRepo('docker.io.example.com/alice/repo'), 'docker.io.example.com/alice/repo');
});

test('deployTarget: Docker Hub (the default) with the user name lower-cased', () => {
  assert.deepEqual(deployTarget(loadConfig({ DOCKERHUB_USERNAME: 'Alice', IMAGE_REPO: 'My-Miner' }).deploy), {
    image: 'docker.io/alice/my-miner',
    repo: 'alice/my-miner',
    registryHost: 'docker.io',
    username: 'alice',
    name: 'my-miner',
  });
  assert.deepEqual(deployTarget(loadConfig({ IMAGE_REGISTRY: 'DockerHub', DOCKERHUB_USERNAME: 'bob' }).deploy), {
    image: 'docker.io/bob/pt-solution',
    repo: 'bob/pt-solution',
    registryHost: 'docker.io',
    username: 'bob',
    name: 'pt-solution',
  });
  // the legacy DOCKERHUB_REPO name for the repository
  assert.equal(deployTarget(loadConfig({ DOCKERHUB_USERNAME: 'bob', DOCKERHUB_REPO: 'old-name' }).deploy).repo, 'bob/old-name');
});

test('deployTarget: GHCR and a registry host take REGISTRY_USERNAME and commit the whole name', () => {
  assert.deepEqual(deployTarget(loadConfig({ IMAGE_REGISTRY: 'ghcr', REGISTRY_USERNAME: 'Bob' }).deploy), {
    image: 'ghcr.io/bob/pt-solution',
    repo: 'ghcr.io/bob/pt-solution',
    registryHost: 'ghcr.io',
    username: 'bob',
    name: 'pt-solution',
  });
  assert.deepEqual(
    deployTarget(loadConfig({ IMAGE_REGISTRY: '127.0.0.1:5000', REGISTRY_USERNAME: 'me', IMAGE_REPO: 'team/miner' }).deploy),
    {
      image: '127.0.0.1:5000/me/team/miner',
      repo: '127.0.0.1:5000/me/team/miner',
      registryHost: '127.0.0.1:5000',
      username: 'me',
      name: 'team/miner',
    },
  );
});

test('deployTarget: a missing username -> the error names the variable of the chosen registry', () => {
  assertMinerError(
    () => deployTarget(loadConfig({}).deploy),
    'DOCKERHUB_USERNAME is not set: the image name needs the registry account',
    'set DOCKERHUB_USERNAME (and DOCKERHUB_TOKEN) in .env, see env.example',
  );
  // REGISTRY_USERNAME does not count for Docker Hub, DOCKERHUB_USERNAME does not count for GHCR
  assertMinerError(
    () => deployTarget(loadConfig({ REGISTRY_USERNAME: 'alice' }).deploy),
    'DOCKERHUB_USERNAME is not set: the image name needs the registry account',
  );
  assertMinerError(
    () => deployTarget(loadConfig({ IMAGE_REGISTRY: 'ghcr', DOCKERHUB_USERNAME: 'alice', DOCKERHUB_TOKEN: 't' }).deploy),
    'REGISTRY_USERNAME is not set: the image name needs the registry account',
    'set REGISTRY_USERNAME (and REGISTRY_TOKEN) in .env, see env.example',
  );
  assertMinerError(
    () => deployTarget(loadConfig({ IMAGE_REGISTRY: 'registry.example.com', REGISTRY_USERNAME: '  ' }).deploy),
    'REGISTRY_USERNAME is not set: the image name needs the registry account',
  );
});

// ---- tasks/push.ts pushedDigest, tasks/build.ts parseBuildArgs -----------------------------------------------

test('pushedDigest: the digest from docker push output; undefined when absent', () => {
  const output = [
    'The push refers to repository [docker.io/alice/pt-solution]',
    '5f70bf18a086: Preparing',
    'c2adabaecedb: Preparing',
    'c2adabaecedb: Layer already exists',
    '5f70bf18a086: Pushed',
    `v1.0.0: digest: ${DIGEST} size: 1786`,
    '',
  ].join('\n');
  assert.equal(pushedDigest(output), DIGEST);
  assert.equal(
    pushedDigest('The push refers to repository [docker.io/alice/pt-solution]\ndenied: requested access to the resource is denied'),
    undefined,
  );
  assert.equal(pushedDigest(''), undefined);
  // not a whole sha256 digest
  assert.equal(pushedDigest('v1: digest: sha256:abc123 size: 10'), undefined);
});

test('parseBuildArgs: NAME=VALUE words -> an object (the value may hold "=", be empty; the last one wins)', () => {
  assert.deepEqual(parseBuildArgs(['MODEL_SRC=models/mine', 'BASE_IMAGE=node:24-bookworm-slim', 'EMPTY=', 'EQ=a=b', '_x1=2']), {
    MODEL_SRC: 'models/mine',
    BASE_IMAGE: 'node:24-bookworm-slim',
    EMPTY: '',
    EQ: 'a=b',
    _x1: '2',
  });
  assert.deepEqual(parseBuildArgs(['A=1', 'A=2']), { A: '2' });
  assert.deepEqual(parseBuildArgs([]), {});
});

test('parseBuildArgs: a word that is not NAME=VALUE -> UsageError naming it', () => {
  for (const word of ['NOEQUALS', '=x', '1A=x', 'A-B=1', ' A=1']) {
    assertMinerError(
      () => parseBuildArgs([word]),
      `--build-arg ${JSON.stringify(word)} is not NAME=VALUE`,
      'run with --help for the options',
      UsageError,
    );
  }
});
