/** lib/deploy/engine.ts: DEPLOY_HOST -> the engine docker reaches, the lock's folder, the image start runs there. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../lib/core/config.ts';
import { deployEngine, engineRun, LOCAL_ENGINE, lockHome, startReference } from '../../lib/deploy/engine.ts';
import type { DeployState } from '../../lib/deploy/state.ts';
import { assertMinerError } from '../support/assertions.ts';
import { DIGEST } from '../support/deploy-unit.ts';

test('deployEngine: unset -> this machine, docker as configured here', () => {
  assert.deepEqual(deployEngine(undefined), LOCAL_ENGINE);
  assert.deepEqual(deployEngine(''), LOCAL_ENGINE);
  assert.deepEqual(engineRun({ DOCKER_HOST: 'unix:///x.sock' }, LOCAL_ENGINE, true), {
    env: { DOCKER_HOST: 'unix:///x.sock' },
    verbose: true,
  });
});

test('deployEngine: ssh://user@host[:port] -> DOCKER_HOST (a context in the environment emptied), remote, its host name', () => {
  assert.deepEqual(deployEngine('ssh://miner@gpu-box.example:2222'), {
    label: 'ssh://miner@gpu-box.example:2222',
    remote: true,
    hostname: 'gpu-box.example',
    dockerEnv: { DOCKER_HOST: 'ssh://miner@gpu-box.example:2222', DOCKER_CONTEXT: '' },
  });
  assert.equal(deployEngine('ssh://127.0.0.1').hostname, '127.0.0.1');
  const run = engineRun({ DOCKER_CONTEXT: 'laptop', DOCKER_HOST: 'unix:///x.sock', PATH: '/bin' }, deployEngine('ssh://root@127.0.0.1:22'));
  assert.deepEqual(run.env, { DOCKER_CONTEXT: '', DOCKER_HOST: 'ssh://root@127.0.0.1:22', PATH: '/bin' });
});

test('deployEngine: a context name -> DOCKER_CONTEXT (DOCKER_HOST emptied: docker prefers it), remote, no host name', () => {
  assert.deepEqual(deployEngine('gpu-box'), {
    label: 'context gpu-box',
    remote: true,
    dockerEnv: { DOCKER_CONTEXT: 'gpu-box', DOCKER_HOST: '' },
  });
});

test('DEPLOY_HOST is checked as it is read: ssh:// with a path, tcp:// or words are refused with the forms it takes', () => {
  for (const value of ['tcp://10.0.0.1:2375', 'ssh://user@host/path', 'ssh://', 'two words', 'http://x']) {
    assertMinerError(
      () => loadConfig({ DEPLOY_HOST: value }),
      `DEPLOY_HOST=${JSON.stringify(value)} is not valid: expected ssh://user@host[:port] or the name of a docker context (docker context ls)`,
      'fix DEPLOY_HOST in your .env file or environment (see env.example)',
    );
  }
  assert.equal(loadConfig({ DEPLOY_HOST: 'ssh://miner@gpu-box.example/' }).deploy.host, 'ssh://miner@gpu-box.example');
});

test('lockHome: one lock per engine and container name', () => {
  const base = { stateDir: '/s', containerName: 'score-miner' };
  assert.equal(lockHome(base), path.join('/s', 'locks', 'local--score-miner'));
  assert.equal(lockHome({ ...base, containerName: 'hk2' }), path.join('/s', 'locks', 'local--hk2'));
  assert.equal(lockHome({ ...base, host: 'ssh://miner@gpu:22' }), path.join('/s', 'locks', 'ssh_miner_gpu_22--score-miner'));
  assert.notEqual(lockHome({ ...base, host: 'gpu' }), lockHome(base));
});

test('the profile keeps its own commit, container and history folder; the image records stay shared', () => {
  const shared = loadConfig({ DEPLOY_STATE_DIR: '/s' }).deploy;
  assert.equal(shared.profileDir, '/s');
  const hk2 = loadConfig({ DEPLOY_STATE_DIR: '/s', DEPLOY_PROFILE: 'hk2' }).deploy;
  assert.deepEqual([hk2.stateDir, hk2.profileDir, hk2.profile], ['/s', path.join('/s', 'profiles', 'hk2'), 'hk2']);
});

test('startReference: this machine runs the build, a remote engine the pushed digest; nothing recorded -> undefined', () => {
  const state: DeployState = {
    repo: 'alice/pt',
    tag: 'v1',
    build: { imageId: 'sha256:1', reference: 'docker.io/alice/pt:v1', at: 't' },
    push: { reference: 'docker.io/alice/pt:v1', digest: DIGEST, at: 't' },
  };
  const remote = deployEngine('ssh://m@h');
  assert.equal(startReference(state, LOCAL_ENGINE), 'docker.io/alice/pt:v1');
  assert.equal(startReference(state, remote), `alice/pt@${DIGEST}`);
  assert.equal(startReference({ ...state, build: undefined }, LOCAL_ENGINE), `alice/pt@${DIGEST}`);
  assert.equal(startReference({ ...state, push: undefined }, remote), undefined);
});
