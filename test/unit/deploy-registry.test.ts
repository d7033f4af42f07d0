/** lib/deploy/registry.ts: the repository name a miner commits on chain. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { committedRepo } from '../../lib/deploy/registry.ts';

test('committedRepo: user/repo for Docker Hub, the whole name for any other registry', () => {
  assert.equal(committedRepo('docker.io/alice/pt-solution'), 'alice/pt-solution');
  assert.equal(committedRepo('ghcr.io/alice/pt-solution'), 'ghcr.io/alice/pt-solution');
  assert.equal(committedRepo('registry.example.com:5000/alice/team/miner'), 'registry.example.com:5000/alice/team/miner');
  assert.equal(committedRepo('docker.io.example.com/alice/repo'), 'docker.io.example.com/alice/repo');
});
