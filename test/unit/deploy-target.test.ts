/** lib/deploy/target.ts: the image name, committed repository and registry account from the configuration. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../lib/core/config.ts';
import { deployTarget } from '../../lib/deploy/target.ts';
import { assertMinerError } from '../support/assertions.ts';

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

// A missing username: the error names the variable of the chosen registry. REGISTRY_USERNAME does not count for
// Docker Hub, DOCKERHUB_USERNAME does not count for GHCR.
const missingUsername: [string, Record<string, string>, 'DOCKERHUB' | 'REGISTRY'][] = [
  ['Docker Hub, nothing set', {}, 'DOCKERHUB'],
  ['Docker Hub, only REGISTRY_USERNAME', { REGISTRY_USERNAME: 'alice' }, 'DOCKERHUB'],
  ['GHCR, only DOCKERHUB_USERNAME', { IMAGE_REGISTRY: 'ghcr', DOCKERHUB_USERNAME: 'alice', DOCKERHUB_TOKEN: 't' }, 'REGISTRY'],
  ['a registry host, a blank REGISTRY_USERNAME', { IMAGE_REGISTRY: 'registry.example.com', REGISTRY_USERNAME: '  ' }, 'REGISTRY'],
];
for (const [what, env, prefix] of missingUsername) {
  test(`deployTarget: a missing username (${what}) -> the error names ${prefix}_USERNAME`, () => {
    assertMinerError(
      () => deployTarget(loadConfig(env).deploy),
      `${prefix}_USERNAME is not set: the image name needs the registry account`,
      `set ${prefix}_USERNAME (and ${prefix}_TOKEN) in .env, see env.example`,
    );
  });
}
