import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressKey, ConnectionCounter, RateLimiter } from '../../server/limits.ts';

test('addressKey: IPv4-mapped IPv6 as IPv4, IPv6 by /64, loopback spellings kept apart', () => {
  assert.equal(addressKey('127.0.0.1'), '127.0.0.1');
  assert.equal(addressKey('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(addressKey('::FFFF:127.0.0.2'), '127.0.0.2');
  assert.equal(addressKey('::1'), '::1');
  assert.equal(addressKey('fe80::1%lo'), 'fe80:0:0:0::/64');
  assert.equal(addressKey('fd00:1:2:3:4:5:6:7'), 'fd00:1:2:3::/64');
  assert.equal(addressKey('fd00:1:2:3::9'), addressKey('fd00:1:2:3:ffff::1'), 'one /64, one key');
  assert.notEqual(addressKey('fd00:1:2:3::9'), addressKey('fd00:1:2:4::9'));
  assert.equal(addressKey('64:ff9b::127.0.0.1'), '64:ff9b:0:0::/64');
  assert.equal(addressKey(undefined), 'unknown');
  assert.equal(addressKey('not an address'), 'unknown');
});

test('RateLimiter: a burst, then the sustained rate, per address; Retry-After in whole seconds', () => {
  let now = 0;
  const limiter = new RateLimiter({ perSecond: 2, burst: 3, now: () => now });
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.take('127.0.0.1')),
    [0, 0, 0, 1],
  );
  assert.equal(limiter.take('127.0.0.2'), 0, 'another address has its own bucket');
  now += 499;
  assert.equal(limiter.take('127.0.0.1'), 1, 'not quite one token yet');
  now += 1;
  assert.equal(limiter.take('127.0.0.1'), 0);
  now += 10_000;
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.take('127.0.0.1')),
    [0, 0, 0, 1],
    'refilled to the burst, not beyond',
  );
  const slow = new RateLimiter({ perSecond: 0.1, burst: 1, now: () => now });
  assert.deepEqual([slow.take('a'), slow.take('a')], [0, 10]);
});

test('RateLimiter: 0 per second is off; tracked addresses stay bounded', () => {
  const off = new RateLimiter({ perSecond: 0, burst: 1 });
  assert.equal(off.enabled, false);
  for (let i = 0; i < 100; i++) assert.equal(off.take('127.0.0.1'), 0);
  let now = 0;
  const limiter = new RateLimiter({ perSecond: 1, burst: 2, maxTracked: 100, now: () => now });
  for (let i = 0; i < 1000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
  assert.ok(limiter.size <= 100, `${limiter.size} tracked`);
  limiter.take('127.0.0.1');
  limiter.take('127.0.0.1');
  assert.equal(limiter.take('127.0.0.1'), 1, 'a recent address keeps its empty bucket');
  now += 5000;
  for (let i = 0; i < 200; i++) limiter.take(`10.1.${i >> 8}.${i & 255}`);
  assert.ok(limiter.size <= 100);
});

test('ConnectionCounter: refuses past the limit per address, frees on remove; 0 counts without a limit', () => {
  const counter = new ConnectionCounter(2);
  assert.deepEqual([counter.add('a'), counter.add('a'), counter.add('a'), counter.add('b')], [true, true, false, true]);
  assert.equal(counter.count('a'), 2, 'a refused connection is not counted');
  counter.remove('a');
  assert.equal(counter.add('a'), true);
  counter.remove('a');
  counter.remove('a');
  counter.remove('b');
  assert.equal(counter.addresses, 0);
  const unlimited = new ConnectionCounter(0);
  for (let i = 0; i < 50; i++) assert.equal(unlimited.add('a'), true);
  assert.equal(unlimited.count('a'), 50);
});
