/** lib/core/errors.ts: a MinerError's private detail reaches the operator (log, terminal), its message the caller. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeError, MinerError, messageWithDetail } from '../../lib/core/errors.ts';

const failed = new MinerError('could not download the video: network error', {
  kind: 'download-failed',
  detail: 'GET https://cdn.example/v.mp4: connect ECONNREFUSED 192.0.2.1:443',
  hint: 'check the network',
});

test('the detail is kept apart from the message', () => {
  assert.equal(failed.message, 'could not download the video: network error');
  assert.equal(failed.detail, 'GET https://cdn.example/v.mp4: connect ECONNREFUSED 192.0.2.1:443');
  assert.equal(new MinerError('plain').detail, undefined);
});

test('messageWithDetail: the message and, when there is one, the detail (for a log line)', () => {
  assert.equal(
    messageWithDetail(failed),
    'could not download the video: network error (GET https://cdn.example/v.mp4: connect ECONNREFUSED 192.0.2.1:443)',
  );
  assert.equal(messageWithDetail(new MinerError('plain')), 'plain');
  assert.equal(messageWithDetail(new Error('other')), 'other');
});

test('describeError shows the detail to the operator between the cause and the next step', () => {
  assert.equal(
    describeError(failed),
    [
      'error: could not download the video: network error',
      '  detail: GET https://cdn.example/v.mp4: connect ECONNREFUSED 192.0.2.1:443',
      '  next: check the network',
    ].join('\n'),
  );
});
