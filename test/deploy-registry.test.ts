/**
 * Registry naming and remote digests against a real registry: distribution 2.8 with Docker-Hub-style token auth
 * (test/support/registry.ts) and a real dockerd. A tiny imported image is pushed with `docker login
 * --password-stdin` + `docker push`; the digest the registry reports over the HTTP API must be the one docker
 * printed and recorded, wrong credentials / unknown tags / a stopped registry give their MinerErrors, and the
 * image is not pullable without credentials.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { MinerError } from '../lib/core/errors.ts';
import {
  checkTag,
  imageName,
  imageReference,
  isLoopbackHost,
  isPullableAnonymously,
  parseAuthenticateHeader,
  parseImageName,
  readRemoteDigest,
  registryApiHost,
  registryBaseUrl,
  registryHost,
} from '../lib/deploy/registry.ts';
import { type Dockerd, dockerCli, startDockerd } from './support/docker.ts';
import { startRegistry, type TestRegistry } from './support/registry.ts';

const USER = 'alice';
const PASSWORD = 'correct-horse-battery-staple';
const TAG = 'v1-Tiny';

let dockerd: Dockerd | undefined;
let registry: TestRegistry | undefined;
let work: string;
let image: string;
let pushedDigest: string;

/** The docker CLI with its own config folder (credentials from `docker login` stay in the test's folder). */
async function docker(args: string[], input?: string) {
  return execa(dockerCli(), args, {
    env: { ...dockerd!.env, DOCKER_CONFIG: path.join(work, 'docker-config') },
    input,
    reject: false,
    timeout: 60_000,
  });
}

function minerError(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof MinerError, `expected a MinerError, got ${String(error)}`);
    assert.match(error.message, pattern);
    assert.ok(error.hint, 'a MinerError carries a hint');
    assert.ok(!error.message.includes(PASSWORD) && !error.hint.includes(PASSWORD), 'no password in the message');
    return true;
  };
}

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'score-miner-deploy-registry-'));
  [dockerd, registry] = await Promise.all([startDockerd(), startRegistry({ users: { [USER]: PASSWORD } })]);
  const rootfs = path.join(work, 'rootfs');
  await mkdir(path.join(rootfs, 'etc'), { recursive: true });
  await writeFile(path.join(rootfs, 'etc', 'hello.txt'), `score-miner registry test ${Date.now()}\n`);
  await execa('tar', ['-C', rootfs, '--numeric-owner', '-cf', path.join(work, 'tiny.tar'), '.']);
  await dockerd.docker(['import', path.join(work, 'tiny.tar'), 'score-miner-test:tiny']);
});

after(async () => {
  await Promise.all([registry?.stop(), dockerd?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

test('imageName: docker hub, ghcr and custom hosts, lower-cased', () => {
  assert.equal(imageName({ registry: 'dockerhub', username: 'Alice', repo: 'Score-Miner' }), 'docker.io/alice/score-miner');
  assert.equal(imageName({ registry: 'ghcr', username: 'AliceB', repo: 'miner' }), 'ghcr.io/aliceb/miner');
  assert.equal(
    imageName({ registry: 'Registry.Example.com:5000', username: 'team', repo: 'sn44/miner' }),
    'registry.example.com:5000/team/sn44/miner',
  );
  assert.equal(
    imageName({ registry: 'dockerhub', dockerhubHost: '127.0.0.1:5000', username: 'bob', repo: 'my_miner.v2' }),
    '127.0.0.1:5000/bob/my_miner.v2',
  );
  assert.equal(registryHost('ghcr'), 'ghcr.io');
  assert.equal(registryHost('dockerhub'), 'docker.io');
  assert.equal(imageReference('docker.io/alice/miner', 'V1.2-RC'), 'docker.io/alice/miner:V1.2-RC');
  assert.equal(checkTag('latest'), 'latest');
});

test('imageName refuses bad names, naming the bad part', () => {
  assert.throws(() => imageName({ registry: 'dockerhub', username: 'al ice', repo: 'miner' }), minerError(/username "al ice"/));
  assert.throws(() => imageName({ registry: 'dockerhub', username: 'alice', repo: '-miner' }), minerError(/repository "-miner"/));
  assert.throws(() => imageName({ registry: 'dockerhub', username: 'alice', repo: 'mi..ner' }), minerError(/repository "mi\.\.ner"/));
  assert.throws(() => imageName({ registry: 'dockerhub', username: 'alice', repo: 'miner/' }), minerError(/repository "miner\/"/));
  assert.throws(() => imageName({ registry: 'dockerhub', username: 'a/b', repo: 'miner' }), minerError(/username "a\/b"/));
  assert.throws(() => imageName({ registry: 'dockerhub', username: '', repo: 'miner' }), minerError(/username ""/));
  assert.throws(
    () => imageName({ registry: 'https://ghcr.io', username: 'alice', repo: 'miner' }),
    minerError(/registry "https:\/\/ghcr\.io" has a scheme/),
  );
  assert.throws(() => imageName({ registry: 'bad_host!', username: 'alice', repo: 'miner' }), minerError(/registry "bad_host!"/));
  assert.throws(() => imageName({ registry: 'dockerhub', username: 'alice', repo: 'x'.repeat(300) }), minerError(/longer than 255/));
  assert.throws(() => imageReference('docker.io/alice/miner', '.hidden'), minerError(/tag "\.hidden"/));
  assert.throws(() => checkTag('a'.repeat(129)), minerError(/is not a valid image tag/));
});

test('registry hosts: API host, scheme, image parsing, challenges', () => {
  assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
  assert.equal(registryApiHost('ghcr.io'), 'ghcr.io');
  assert.equal(registryBaseUrl('docker.io'), 'https://registry-1.docker.io');
  assert.equal(registryBaseUrl('127.0.0.1:5000'), 'http://127.0.0.1:5000');
  assert.equal(registryBaseUrl('localhost:5000'), 'http://localhost:5000');
  assert.equal(registryBaseUrl('registry.example.com'), 'https://registry.example.com');
  assert.equal(isLoopbackHost('127.8.9.10'), true);
  assert.equal(isLoopbackHost('128.0.0.1:5000'), false);
  assert.deepEqual(parseImageName('ubuntu'), { host: 'docker.io', path: 'library/ubuntu' });
  assert.deepEqual(parseImageName('alice/miner'), { host: 'docker.io', path: 'alice/miner' });
  assert.deepEqual(parseImageName('ghcr.io/alice/miner'), { host: 'ghcr.io', path: 'alice/miner' });
  assert.deepEqual(parseImageName('localhost:5000/miner'), { host: 'localhost:5000', path: 'miner' });
  assert.throws(() => parseImageName('alice/miner:latest'), minerError(/carries a tag or digest/));
  assert.throws(() => parseImageName('alice/Miner'), minerError(/repository "alice\/Miner"/));
  assert.deepEqual(
    parseAuthenticateHeader('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:alice/miner:pull"'),
    {
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:alice/miner:pull' },
    },
  );
  assert.deepEqual(parseAuthenticateHeader('Basic realm="Registry"'), { scheme: 'basic', params: { realm: 'Registry' } });
});

test('a pushed tag: readRemoteDigest is the digest docker push printed and recorded', async () => {
  image = imageName({ registry: 'dockerhub', dockerhubHost: registry!.host, username: 'Alice', repo: 'Score-Miner' });
  assert.equal(image, `${registry!.host}/alice/score-miner`);
  const ref = imageReference(image, TAG);
  await dockerd!.docker(['tag', 'score-miner-test:tiny', ref]);

  const login = await docker(['login', '--username', USER, '--password-stdin', registry!.host], PASSWORD);
  assert.equal(login.exitCode, 0, login.stderr);
  const push = await docker(['push', ref]);
  assert.equal(push.exitCode, 0, `${push.stderr}\n${registry!.log()}`);
  const printed = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout);
  assert.ok(printed, push.stdout);
  pushedDigest = printed[1];

  const digest = await readRemoteDigest({ image, tag: TAG, username: USER, password: PASSWORD });
  assert.equal(digest, pushedDigest);
  const repoDigests = JSON.parse(await dockerd!.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref])) as string[];
  assert.ok(repoDigests.includes(`${image}@${digest}`), JSON.stringify(repoDigests));

  const asked = registry!.tokenRequests.at(-1)!;
  assert.equal(asked.user, USER);
  assert.equal(asked.status, 200);
  assert.deepEqual(asked.scopes, ['repository:alice/score-miner:pull']);
});

test('a wrong password is refused, without the password in the message', async () => {
  await assert.rejects(readRemoteDigest({ image, tag: TAG, username: USER, password: `${PASSWORD}-wrong` }), (error: unknown) => {
    minerError(new RegExp(`${registry!.host.replace(/\./g, '\\.')} refused the credentials of alice`))(error);
    assert.ok(!(error as MinerError).message.includes('-wrong'));
    return true;
  });
  assert.equal(registry!.tokenRequests.at(-1)!.status, 401);
});

test('an unknown tag: push it first', async () => {
  await assert.rejects(
    readRemoteDigest({ image, tag: 'nope', username: USER, password: PASSWORD }),
    minerError(new RegExp(`^no tag nope in ${image.replace(/\./g, '\\.')}: push it first$`)),
  );
});

test('not pullable without credentials', async () => {
  assert.equal(await isPullableAnonymously({ image, tag: TAG }), false);
  await assert.rejects(readRemoteDigest({ image, tag: TAG }), minerError(/wants credentials to read/));
  const ref = imageReference(image, TAG);
  assert.equal((await docker(['logout', registry!.host])).exitCode, 0);
  await dockerd!.docker(['rmi', ref]);
  const pull = await docker(['pull', ref]);
  assert.notEqual(pull.exitCode, 0, 'an anonymous docker pull must fail');
  assert.match(pull.stderr, /unauthorized|authentication required|denied/i);
});

test('a stopped registry is unreachable', async () => {
  await registry!.stop();
  await assert.rejects(
    readRemoteDigest({ image, tag: TAG, username: USER, password: PASSWORD, timeoutMs: 5_000 }),
    minerError(new RegExp(`^registry ${registry!.host.replace(/\./g, '\\.')} is unreachable \\(ECONNREFUSED\\)$`)),
  );
});
