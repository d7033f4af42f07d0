import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../lib/core/config.ts';
import { missingTools, TEST_TOOLS } from '../../scripts/test-preflight.ts';

const onPath = TEST_TOOLS.filter((t) => !t.command.includes('/'));

test('missingTools names each tool absent from PATH or not executable there', () => {
  const bin = mkdtempSync(path.join(os.tmpdir(), 'preflight-'));
  assert.deepEqual(
    missingTools(bin, onPath).map((t) => t.command),
    onPath.map((t) => t.command),
  );
  for (const { command } of onPath) {
    writeFileSync(path.join(bin, command), '#!/bin/sh\n');
    if (command !== 'dockerd') chmodSync(path.join(bin, command), 0o755);
  }
  assert.deepEqual(
    missingTools(bin, onPath).map((t) => t.command),
    ['dockerd'],
  );
  assert.deepEqual(missingTools(bin, [{ command: '/nonexistent/time', debian: 'time', why: 'x' }]).length, 1);
  // Absolute paths are found where they are, whatever PATH says: sshd is in /usr/sbin, often not on a user's PATH.
  assert.deepEqual(
    TEST_TOOLS.filter((t) => t.command.endsWith('sshd')).map((t) => [t.command, t.debian]),
    [['/usr/sbin/sshd', 'openssh-server']],
  );
});

test('the script names each missing tool and the next step, and exits 1 before any test runs', () => {
  const run = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'scripts/test-preflight.ts')], {
    env: { PATH: mkdtempSync(path.join(os.tmpdir(), 'preflight-empty-')) },
    encoding: 'utf8',
  });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /^error: just is not installed \(Debian: just/m);
  assert.match(run.stderr, /^error: dockerd is not installed \(Debian: docker\.io\)/m);
  assert.match(run.stderr, /^error: ssh is not installed \(Debian: openssh-client\)/m);
  assert.match(run.stderr, /next: bash \.ci\/run installs every one/);
});
