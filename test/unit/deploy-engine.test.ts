/** lib/deploy/engine.ts: DEPLOY_HOST -> the engine docker reaches, the lock's folder, the image start runs there. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../lib/core/config.ts';
import { deployEngine, engineRun, engineUnreachable, LOCAL_ENGINE, lockHome, startReference } from '../../lib/deploy/engine.ts';
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

/** What Debian's docker 20.10 writes when ssh to the engine fails (ssh's own line ends in \r\n), after `[]` on stdout. */
const sshFailed = (said: string) =>
  '[]\nerror during connect: Get "http://docker.example.com/v1.24/images/x/json": command [ssh -l miner -p 2222 -- gpu-box.example docker system dial-stdio] has exited with exit status 255, please make sure the URL is valid, and Docker 18.09 or later is installed on the remote host: ' +
  `stderr=${said}\r\n`;

test("engineUnreachable: ssh refused or the key denied -> the cause in ssh's words, and the ssh command to check", () => {
  const engine = deployEngine('ssh://miner@gpu-box.example:2222');
  const hint = (check: string) =>
    `check that \`${check}\` works from this machine without a prompt (the host up, your key loaded, its host key known), then rerun`;
  assertMinerError(
    () => {
      throw engineUnreachable(engine, sshFailed('ssh: connect to host gpu-box.example port 2222: Connection refused'));
    },
    'cannot reach the Docker engine on ssh://miner@gpu-box.example:2222: ssh: connect to host gpu-box.example port 2222: Connection refused',
    hint('ssh -p 2222 miner@gpu-box.example docker version'),
  );
  assertMinerError(
    () => {
      throw engineUnreachable(
        deployEngine('ssh://gpu-box.example'),
        sshFailed('Warning: x\r\nminer@gpu-box.example: Permission denied (publickey).'),
      );
    },
    'cannot reach the Docker engine on ssh://gpu-box.example: Warning: x; miner@gpu-box.example: Permission denied (publickey).',
    hint('ssh gpu-box.example docker version'),
  );
});

test("engineUnreachable: a context whose daemon is down -> docker's line; this machine's engine or another failure -> undefined", () => {
  const down = 'error during connect: Get "http://10.0.0.5:2375/v1.24/images/x/json": dial tcp 10.0.0.5:2375: connect: connection refused';
  assertMinerError(
    () => {
      throw engineUnreachable(deployEngine('gpu-box'), `[]\n${down}\n`);
    },
    `cannot reach the Docker engine on context gpu-box: ${down}`,
    'check that `docker --context gpu-box version` works from this machine, then rerun',
  );
  assert.equal(engineUnreachable(LOCAL_ENGINE, down), undefined);
  assert.equal(engineUnreachable(deployEngine('gpu-box'), '[]\nError: No such image: x@sha256:0'), undefined);
});
