/**
 * lib/deploy/docker.ts without a daemon: the docker argv each deploy step runs, the model folder inside the build
 * context, and how docker failures are explained (the cause line and the next step).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MinerError } from '../../lib/core/errors.ts';
import {
  buildCommand,
  dockerFailure,
  healthcheckCommand,
  healthcheckExec,
  loginCommand,
  modelSourceInContext,
  pushCommand,
  runCommand,
} from '../../lib/deploy/docker.ts';
import { assertMinerError } from '../support/assertions.ts';
import { DIGEST } from '../support/deploy-unit.ts';

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

test('modelSourceInContext: a folder inside the context -> its posix path relative to the context', () => {
  assert.equal(modelSourceInContext('/src/score-miner', 'models/mine'), 'models/mine');
  assert.equal(modelSourceInContext('/src/score-miner', './models//mine/'), 'models/mine');
  assert.equal(modelSourceInContext('/src/score-miner', '/src/score-miner/models/mine'), 'models/mine');
  assert.equal(modelSourceInContext('/src/score-miner', 'models/a/../b'), 'models/b');
});

// A model folder outside the build context: the message names both folders, the hint says where to put it.
const outsideContext: [string, string, string][] = [
  ['../x', '/src/x', 'a parent folder'],
  ['/opt/models/mine', '/opt/models/mine', 'an absolute path elsewhere'],
  ['models/../../other', '/src/other', 'a path that climbs out'],
  ['/src/score-miner-models/m', '/src/score-miner-models/m', "a sibling whose name starts with the context's name"],
];
for (const [source, resolved, what] of outsideContext) {
  test(`modelSourceInContext: outside the context (${what}: ${source}) -> MinerError with the hint`, () => {
    assertMinerError(
      () => modelSourceInContext('/src/score-miner', source),
      `the model folder ${resolved} is outside the build context /src/score-miner`,
      'copy it into the project (e.g. models/mine) and pass --build-arg MODEL_SRC=models/mine',
    );
  });
}

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

// Each kind of docker failure: the cause line docker printed (after "docker <verb> failed: ") and the next step.
const REGISTRY_HINT = 'check the registry user and token in .env (a token with write access), then rerun';
const VERBOSE_HINT = "rerun with --verbose to see docker's whole output";
const failures: { what: string; argv: string[]; output: string; cause: string; hint: string }[] = [
  {
    what: 'daemon unreachable -> start Docker',
    argv: ['push', 'x:y'],
    output: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n',
    cause: 'docker push failed: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
    hint: 'start Docker (e.g. `sudo systemctl start docker`) or point DOCKER_HOST at a running daemon',
  },
  {
    what: 'login unauthorized -> check the registry user and token',
    argv: ['login', 'docker.io'],
    output: 'Error response from daemon: Get "https://registry-1.docker.io/v2/": unauthorized: incorrect username or password',
    cause:
      'docker login failed: Error response from daemon: Get "https://registry-1.docker.io/v2/": unauthorized: incorrect username or password',
    hint: REGISTRY_HINT,
  },
  {
    what: 'push denied -> check the registry user and token',
    argv: ['push', 'docker.io/alice/pt-solution:v1.0.0'],
    output: [
      'The push refers to repository [docker.io/alice/pt-solution]',
      '5f70bf18a086: Preparing',
      'denied: requested access to the resource is denied',
    ].join('\n'),
    cause: 'docker push failed: denied: requested access to the resource is denied',
    hint: REGISTRY_HINT,
  },
  {
    what: 'port already allocated -> choose another MINER_PORT',
    argv: ['run', '-d'],
    output:
      'abc123\ndocker: Error response from daemon: driver failed programming external connectivity on endpoint score-miner: Bind for 0.0.0.0:8000 failed: port is already allocated.',
    cause:
      'docker run failed: docker: Error response from daemon: driver failed programming external connectivity on endpoint score-miner: Bind for 0.0.0.0:8000 failed: port is already allocated.',
    hint: 'another process uses MINER_PORT: stop it or choose another port in .env',
  },
  {
    what: 'container name already in use -> docker rm -f or MINER_CONTAINER',
    argv: ['run', '-d'],
    output:
      'docker: Error response from daemon: Conflict. The container name "/score-miner" is already in use by container "0123abcd". You have to remove (or rename) that container to be able to reuse that name.\nSee \'docker run --help\'.',
    cause:
      'docker run failed: docker: Error response from daemon: Conflict. The container name "/score-miner" is already in use by container "0123abcd". You have to remove (or rename) that container to be able to reuse that name.',
    hint: 'a container with this name exists: `docker rm -f` it, or set MINER_CONTAINER',
  },
  {
    what: 'an unknown error -> the last line, and the --verbose hint',
    argv: ['build'],
    output: 'step 3 went sideways\nexit status 17\n\n',
    cause: 'docker build failed: exit status 17',
    hint: VERBOSE_HINT,
  },
  {
    what: 'no output at all -> "no output", and the --verbose hint',
    argv: ['push'],
    output: '  \n\n',
    cause: 'docker push failed: no output',
    hint: VERBOSE_HINT,
  },
];
for (const { what, argv, output, cause, hint } of failures) {
  test(`dockerFailure: ${what}`, () => {
    const error = dockerFailure(argv, output);
    assert.ok(error instanceof MinerError);
    assert.equal(error.message, cause);
    assert.equal(error.hint, hint);
  });
}

test('dockerFailure: a very long cause line is cut to 300 characters', () => {
  const long = `error: ${'x'.repeat(400)}`;
  const error = dockerFailure(['build'], long);
  assert.equal(error.message, `docker build failed: error: ${'x'.repeat(293)}`);
});

test('healthcheckExec: the image HEALTHCHECK as docker exec argv (CMD as given, CMD-SHELL through sh); none, NONE or junk -> undefined', () => {
  assert.deepEqual(healthcheckCommand('m'), ['container', 'inspect', '--format', '{{json .Config.Healthcheck}}', 'm']);
  assert.deepEqual(healthcheckExec('{"Test":["CMD","node","-e","x"],"Interval":30000000000}'), ['node', '-e', 'x']);
  assert.deepEqual(healthcheckExec('{"Test":["CMD-SHELL","curl -f localhost"]}'), ['/bin/sh', '-c', 'curl -f localhost']);
  for (const output of ['null', '{"Test":["NONE"]}', '{"Test":["CMD"]}', '{"Test":"CMD x"}', '{"Test":["CMD",1]}', 'not json', ''])
    assert.equal(healthcheckExec(output), undefined, output);
});

test("runCommand: MINER_GPUS reaches docker run as --gpus (the GPU host's cards for the model)", () => {
  const args = runCommand({ name: 'm', image: 'i', port: 8000, gpus: 'all', env: {} });
  assert.deepEqual(args.slice(args.indexOf('--gpus'), args.indexOf('--gpus') + 2), ['--gpus', 'all']);
  assert.equal(args.at(-1), 'i');
  assert.ok(!runCommand({ name: 'm', image: 'i', port: 8000, env: {} }).includes('--gpus'));
});
