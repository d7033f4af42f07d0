import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bodyIsSmall, clientErrorDetail, tooManyRequests } from '../../server/http.ts';

test('a rate-limited request: 429, Retry-After, the address and the limit named', () => {
  assert.deepEqual(tooManyRequests('127.0.0.3', 2, { requestsPerSecond: 5, requestBurst: 10 }), {
    status: 429,
    body: { detail: 'Too many requests from 127.0.0.3: at most 5 per second (10 at once); retry after 2 s' },
    headers: { 'retry-after': '2' },
  });
});

test('a refused body is read and dropped only when none is coming or its declared length is small', () => {
  const cases: Array<[Record<string, string>, boolean]> = [
    [{}, true],
    [{ 'content-length': '0' }, true],
    [{ 'content-length': '8192' }, true],
    [{ 'content-length': '8193' }, false],
    [{ 'transfer-encoding': 'chunked' }, false],
  ];
  for (const [headers, small] of cases) assert.equal(bodyIsSmall(headers, 8192), small, JSON.stringify(headers));
});

test("Node's parser errors get a detail per status", () => {
  assert.equal(
    clientErrorDetail(408, '', 10_000, 30_000),
    'Request not received in time: headers within 10 s, the whole request within 30 s',
  );
  assert.equal(clientErrorDetail(431, '', 1, 1), 'Request headers too large');
  assert.equal(clientErrorDetail(413, '', 1, 1), 'Chunk extensions too large');
  assert.equal(
    clientErrorDetail(400, 'Parse Error: Invalid method encountered', 1, 1),
    'Malformed HTTP request: Invalid method encountered',
  );
});
