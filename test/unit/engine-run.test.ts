/**
 * The pure parts of one run on a deploy engine (lib/deploy/engine-run.ts): the harness's `docker run` with
 * `--network none`, the two `docker exec` commands, the challenge script's reply line (garbage included), what
 * the readiness probe's answer and the container's state mean, and the reply judged by the validator's rules.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ContainerState } from '../../lib/deploy/docker.ts';
import {
  challengeProbeCommand,
  ENGINE_MINER_URL,
  type ExecAnswer,
  judgeProbeReply,
  noReplyLineCause,
  parseProbeReply,
  probeFailedCause,
  readiness,
  readyProbeCommand,
} from '../../lib/deploy/engine-run.ts';
import { exitedBeforeReadyCause, notReadyCause, spotcheckRunCommand } from '../../lib/deploy/spotcheck.ts';

const HARNESS = { netuid: 44, walletName: 'cold', hotkeyName: 'hot' };

const running: ContainerState = { id: 'c0ffee', image: 'sha256:1', running: true, exitCode: 0, restarts: 0, mounts: 0 };

test('spotcheckRunCommand: --network none when asked, host otherwise (tasks/spotcheck.ts unchanged)', () => {
  const spec = { name: 'rehearse-1', image: 'alice/miner:v1', port: 8000, ...HARNESS };
  const none = spotcheckRunCommand({ ...spec, network: 'none' });
  assert.deepEqual(none, [
    'run',
    '-d',
    '--name',
    'rehearse-1',
    '--label',
    'score-miner-spotcheck=1',
    '--network',
    'none',
    '-e',
    'NETUID=44',
    '-e',
    'WALLET_NAME=cold',
    '-e',
    'HOTKEY_NAME=hot',
    '-e',
    'VERIFY=false',
    '-e',
    'BLACKLIST=false',
    '-e',
    'SPOTCHECK_MODE=true',
    '-e',
    'MINER_PORT=8000',
    '-e',
    'DOWNLOAD_ALLOW_PRIVATE=true',
    'alice/miner:v1',
  ]);
  const host = spotcheckRunCommand(spec);
  assert.deepEqual(host.slice(6, 8), ['--network', 'host']);
  assert.deepEqual(host.slice(8), none.slice(8));
});

test('the probes: plain exec for readiness (whole ms left, never negative), exec -i for the challenge', () => {
  assert.deepEqual(readyProbeCommand('rehearse-1', 'SCRIPT', 1234.6), [
    'exec',
    'rehearse-1',
    'node',
    '-e',
    'SCRIPT',
    'ready',
    '1235',
    'http://127.0.0.1:8000/docs',
  ]);
  assert.equal(readyProbeCommand('rehearse-1', 'SCRIPT', -50)[6], '0');
  assert.deepEqual(challengeProbeCommand('rehearse-1', 'SCRIPT', '0123456789abcdef', 120), [
    'exec',
    '-i',
    'rehearse-1',
    'node',
    '-e',
    'SCRIPT',
    'challenge',
    '0123456789abcdef',
    '120',
    'http://127.0.0.1:8000',
  ]);
});

test('parseProbeReply: the last well-formed JSON line, whatever else was printed', () => {
  const line = JSON.stringify({ status: 200, text: '{"predictions":[]}', wall_s: 1.5 });
  assert.deepEqual(parseProbeReply(line), { status: 200, text: '{"predictions":[]}', wall_s: 1.5 });
  assert.deepEqual(parseProbeReply(`(node:7) ExperimentalWarning: fetch\n${line}\n\n`), {
    status: 200,
    text: '{"predictions":[]}',
    wall_s: 1.5,
  });
  const later = JSON.stringify({ status: 0, text: '', wall_s: 120.01, error: 'This operation was aborted', timed_out: true });
  assert.deepEqual(parseProbeReply(`${line}\n${later}`), {
    status: 0,
    text: '',
    wall_s: 120.01,
    error: 'This operation was aborted',
    timed_out: true,
  });
  // A malformed line after a good one does not hide it.
  assert.equal(parseProbeReply(`${line}\n{"status":200,"text":`)?.status, 200);
});

test('parseProbeReply: no reply line in garbage', () => {
  for (const output of [
    '',
    'ready',
    'OCI runtime exec failed: exec: "node": executable file not found in $PATH',
    '{"status":"200","text":"x","wall_s":1}',
    '{"status":200.5,"text":"x","wall_s":1}',
    '{"status":200,"text":{},"wall_s":1}',
    '{"status":200,"text":"x"}',
    '{"status":200,"text":"x","wall_s":null}',
    '[200, "x", 1]',
    'null',
    '{not json}',
  ]) {
    assert.equal(parseProbeReply(output), undefined, output);
  }
});

test('readiness: ready only on the probe saying so with exit 0', () => {
  const ready: ExecAnswer = { exitCode: 0, stdout: 'ready', output: 'ready' };
  assert.deepEqual(readiness(ready, undefined), { kind: 'ready' });
  // exit 0 without the word: the container is asked, and a stopped one exited.
  assert.deepEqual(readiness({ exitCode: 0, stdout: '', output: '' }, { ...running, running: false, exitCode: 0 }), {
    kind: 'exited',
    exitCode: 0,
  });
});

test('readiness: a stopped, gone or restarted container exited, whatever the probe said', () => {
  const notReady: ExecAnswer = { exitCode: 3, stdout: 'not-ready', output: 'not-ready' };
  assert.deepEqual(readiness(notReady, { ...running, running: false, exitCode: 7 }), { kind: 'exited', exitCode: 7 });
  assert.deepEqual(readiness({ exitCode: 1, stdout: '', output: 'Error response from daemon: container x is not running' }, undefined), {
    kind: 'exited',
  });
  assert.deepEqual(readiness({ exitCode: 137, stdout: '', output: '' }, { ...running, restarts: 1 }), { kind: 'exited' });
});

test('readiness: not-ready from a running container is the wait running out; anything else a probe that could not run', () => {
  assert.deepEqual(readiness({ exitCode: 3, stdout: 'not-ready', output: 'not-ready' }, running), { kind: 'timeout' });
  assert.deepEqual(
    readiness({ exitCode: 127, stdout: '', output: 'OCI runtime exec failed: exec: "node": executable file not found in $PATH' }, running),
    { kind: 'probe-failed', said: 'exit 127: OCI runtime exec failed: exec: "node": executable file not found in $PATH' },
  );
  assert.deepEqual(readiness({ exitCode: null, stdout: '', output: '' }, running), {
    kind: 'probe-failed',
    said: 'stopped after no answer',
  });
});

test("the causes: runImageOnce's words for exited and not ready, and the engine's own", () => {
  assert.equal(exitedBeforeReadyCause('run 1', 3), 'run 1: the container exited (code 3) before GET /docs answered 200');
  assert.equal(exitedBeforeReadyCause('to start', undefined), 'to start: the container exited (code ?) before GET /docs answered 200');
  assert.equal(notReadyCause('run 2', 5), "run 2: GET /docs did not answer 200 within 5 s (Score's harness gives up and fails the check)");
  assert.equal(
    probeFailedCause('run 1', 'exit 127: no node'),
    "run 1: could not ask GET /docs inside the container (docker exec exit 127: no node): the rehearsal on the engine needs `node` on the image's PATH, as Dockerfile.miner has it",
  );
  assert.equal(
    noReplyLineCause('run 1', { ...running, running: false, exitCode: 137 }, 'exit 137'),
    'run 1: the container exited (code 137) during the challenge, before it answered',
  );
  assert.equal(
    noReplyLineCause('run 1', undefined, 'exit 1'),
    'run 1: the container exited (code ?) during the challenge, before it answered',
  );
  assert.equal(
    noReplyLineCause('run 1', running, 'exit 1: boom'),
    'run 1: the challenge sent inside the container gave no reply line (docker exec exit 1: boom)',
  );
});

test("judgeProbeReply: a valid reply has the validator's predictions", () => {
  const text = JSON.stringify({
    challenge_id: 'abc',
    predictions: [{ frame: 10, action: 'pass', confidence: 0.9 }],
    processing_time: 1.25,
  });
  const result = judgeProbeReply({ status: 200, text, wall_s: 2.5 }, 'abc', 120);
  assert.equal(result.ok, true, result.cause);
  assert.deepEqual(result.predictions, [{ frame: 10, action: 'pass', confidence: 0.9 }]);
  assert.equal(result.url, ENGINE_MINER_URL);
  assert.equal(result.challenge_id, 'abc');
  assert.equal(result.scheme, 'none');
  assert.equal(result.wall_s, 2.5);
});

test('judgeProbeReply: another challenge_id is a warning, as the validator client says it', () => {
  const warnings: string[] = [];
  const text = JSON.stringify({ challenge_id: 'other', predictions: [], processing_time: 0.5 });
  const result = judgeProbeReply({ status: 200, text, wall_s: 1 }, 'abc', 120, (line) => warnings.push(line));
  assert.equal(result.ok, true);
  assert.deepEqual(warnings, ['warning: reply challenge_id "other" differs from the request\'s "abc"']);
});

test('judgeProbeReply: a status, a non-JSON body, an invalid schema, no reply and a slow reply', () => {
  const failed = judgeProbeReply({ status: 500, text: '{"detail":"inference failed"}', wall_s: 1 }, 'abc', 120);
  assert.equal(failed.ok, false);
  assert.equal(failed.predictions, undefined);
  assert.equal(failed.cause, 'miner answered 500: inference failed');

  const html = judgeProbeReply({ status: 200, text: '<html>', wall_s: 1 }, 'abc', 120);
  assert.equal(html.cause, 'reply is not JSON: "<html>"');

  const schema = judgeProbeReply({ status: 200, text: '{"predictions":"none","processing_time":1}', wall_s: 1 }, 'abc', 120);
  assert.equal(schema.ok, false);
  assert.equal(schema.cause, 'invalid reply: predictions must be a list (got "none")');

  const timeout = judgeProbeReply({ status: 0, text: '', wall_s: 120, error: 'This operation was aborted', timed_out: true }, 'abc', 120);
  assert.equal(timeout.cause, 'no reply within 120 s');
  assert.equal(timeout.predictions, undefined);

  const refused = judgeProbeReply({ status: 0, text: '', wall_s: 0.01, error: 'connect ECONNREFUSED 127.0.0.1:8000' }, 'abc', 120);
  assert.equal(refused.cause, 'cannot reach http://127.0.0.1:8000: connect ECONNREFUSED 127.0.0.1:8000');

  const slow = judgeProbeReply({ status: 200, text: '{"predictions":[],"processing_time":30.5}', wall_s: 31 }, 'abc', 120);
  assert.equal(slow.ok, false);
  assert.deepEqual(slow.predictions, []);
  assert.equal(slow.cause, "reply took 31.0 s, over the validator's 30 s budget");
});
