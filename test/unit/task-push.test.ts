/** tasks/push.ts: the pushed digest read from docker push's output. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pushedDigest } from '../../tasks/push.ts';
import { DIGEST } from '../support/deploy-unit.ts';

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
