/** lib/core/redact.ts: URLs in messages and logs lose user-info, query and fragment, and keep where they point. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactUrl, redactUrls } from '../../lib/core/redact.ts';

test('redactUrl drops user-info, query and fragment, and keeps scheme, host, port and path', () => {
  assert.equal(redactUrl('wss://alice:s3cret@rpc.example:9944/ws?apikey=k3y#top'), 'wss://rpc.example:9944/ws');
  assert.equal(redactUrl('https://cdn.example/clips/v.mp4?X-Amz-Signature=abc&X-Amz-Credential=def'), 'https://cdn.example/clips/v.mp4');
  assert.equal(redactUrl(new URL('http://user@[::1]:8080/v.mp4#t=10')), 'http://[::1]:8080/v.mp4');
});

test('redactUrl leaves a URL with nothing secret exactly as given', () => {
  assert.equal(redactUrl('wss://entrypoint-finney.opentensor.ai:443'), 'wss://entrypoint-finney.opentensor.ai:443');
  assert.equal(redactUrl('http://127.0.0.1:8000'), 'http://127.0.0.1:8000');
});

test('redactUrl cuts a string that does not parse by hand', () => {
  assert.equal(redactUrl('http://alice:s3cret@[::1/x.mp4?k=1'), 'http://[::1/x.mp4');
  assert.equal(redactUrl('not a url?token=1'), 'not a url');
});

test('redactUrls redacts every URL inside free text and keeps the sentence around it', () => {
  assert.equal(
    redactUrls(
      'could not connect to wss://u:p@rpc.example/ws?apikey=SECRET: 1006 (see https://status.example/a?k=v). Also ws://h:9944, fine',
    ),
    'could not connect to wss://rpc.example/ws: 1006 (see https://status.example/a). Also ws://h:9944, fine',
  );
  assert.equal(
    redactUrls('"https://cdn.example/v.mp4?sig=1" and <http://a:b@x.example/>'),
    '"https://cdn.example/v.mp4" and <http://x.example/>',
  );
  assert.equal(redactUrls('no URL here: ECONNREFUSED 10.0.0.5:443'), 'no URL here: ECONNREFUSED 10.0.0.5:443');
});
