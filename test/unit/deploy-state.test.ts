/** lib/deploy/state.ts: the state files of each repository and tag, and the history of started containers (in temporary folders). */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { UsageError } from '../../lib/core/task.ts';
import {
  type DeployState,
  latestPushedTag,
  readHistory,
  readState,
  requirePushedTag,
  requireStep,
  stateFile,
  writeHistory,
  writeState,
} from '../../lib/deploy/state.ts';
import { assertMinerError } from '../support/assertions.ts';
import { DIGEST, tempDir } from '../support/deploy-unit.ts';

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

test('requirePushedTag: --tag as given (checked), else the tag pushed last; none -> the push to run first (exit 2)', async () => {
  const dir = tempDir();
  const repo = 'alice/repo';
  assertMinerError(
    () => requirePushedTag(dir, repo, undefined),
    'no pushed image of alice/repo in the deploy state',
    'run tasks/push.ts first, or give --tag',
    UsageError,
  );
  assert.equal(requirePushedTag(dir, repo, 'v7'), 'v7');
  await writeState(dir, { repo, tag: 'v1', push: { reference: `docker.io/${repo}:v1`, digest: DIGEST, at: '2025-01-02T00:00:00.000Z' } });
  assert.equal(requirePushedTag(dir, repo, undefined), 'v1');
  assert.throws(() => requirePushedTag(dir, repo, '-v1'), /tag "-v1" is not a valid image tag/);
});
