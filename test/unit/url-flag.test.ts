/** lib/core/url-flag.ts: the one check of a server base URL flag (--url, --live). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { baseUrlFlag } from '../../lib/core/url-flag.ts';

test('an http(s) URL with a host is kept, without trailing slashes', () => {
  assert.equal(baseUrlFlag('url', 'http://127.0.0.1:8000'), 'http://127.0.0.1:8000');
  assert.equal(baseUrlFlag('url', 'http://127.0.0.1:8000//'), 'http://127.0.0.1:8000');
  assert.equal(baseUrlFlag('url', 'https://[::1]:8443/miner/'), 'https://[::1]:8443/miner');
});

test('anything else is a usage error naming the flag and the value given', () => {
  for (const value of [
    'not a url',
    '127.0.0.1:8000',
    'ftp://127.0.0.1',
    'http://',
    'http:///path',
    'http:/127.0.0.1:8000',
    'http://127.0.0.1 :8000',
  ]) {
    assert.throws(
      () => baseUrlFlag('live', value),
      (error: Error) =>
        error.name === 'UsageError' && error.message === `--live must look like http://HOST:PORT (got ${JSON.stringify(value)})`,
      value,
    );
  }
});
