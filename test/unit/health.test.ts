/**
 * server/health.ts: who sees /health's details. Addresses here are values handed to a pure function, never
 * traffic targets: the non-loopback ones are documentation ranges (RFC 5737, RFC 3849) and forms that embed
 * 127.x but come from other machines.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../lib/core/config.ts';
import { MinerError } from '../../lib/core/errors.ts';
import { bearerTokenMatches, isLoopbackAddress, showsHealthDetails } from '../../server/health.ts';

const TOKEN = 'health-token-0123456789abcdef';

test('loopback: 127.0.0.0/8, ::1 and the IPv4-mapped spellings a dual-stack socket reports', () => {
  for (const address of [
    '127.0.0.1',
    '127.0.0.53',
    '127.255.255.254',
    '::1',
    '0:0:0:0:0:0:0:1',
    '::ffff:127.0.0.1',
    '::FFFF:127.1.2.3',
    '::ffff:7f00:1',
  ]) {
    assert.equal(isLoopbackAddress(address), true, address);
  }
});

test('not loopback: other machines, forms that merely embed 127.x, names and nothing', () => {
  for (const address of [
    '192.0.2.10',
    '198.51.100.7',
    '203.0.113.200',
    '::ffff:192.0.2.10',
    '2001:db8::1',
    '::127.0.0.1', // IPv4-compatible: deprecated, not this machine
    '64:ff9b::7f00:1', // NAT64 of 127.0.0.1: a gateway elsewhere
    '2002:7f00:1::', // 6to4
    '0.0.0.0',
    '::',
    '126.255.255.255',
    '128.0.0.1',
    'localhost',
    '127.0.0.1.example',
    '',
    undefined,
  ]) {
    assert.equal(isLoopbackAddress(address), false, String(address));
  }
});

test('the bearer token: exact match only, any case of "Bearer", never without a configured token', () => {
  assert.equal(bearerTokenMatches(`Bearer ${TOKEN}`, TOKEN), true);
  assert.equal(bearerTokenMatches(`bearer  ${TOKEN} `, TOKEN), true);
  assert.equal(bearerTokenMatches(`Bearer ${TOKEN}x`, TOKEN), false);
  assert.equal(bearerTokenMatches(`Bearer ${TOKEN.slice(0, -1)}`, TOKEN), false);
  assert.equal(bearerTokenMatches(TOKEN, TOKEN), false, 'no scheme');
  assert.equal(bearerTokenMatches(`Basic ${TOKEN}`, TOKEN), false);
  assert.equal(bearerTokenMatches(`Bearer ${TOKEN} extra`, TOKEN), false);
  assert.equal(bearerTokenMatches('Bearer ', TOKEN), false);
  assert.equal(bearerTokenMatches(undefined, TOKEN), false);
  assert.equal(bearerTokenMatches('Bearer anything', undefined), false);
  assert.equal(bearerTokenMatches('Bearer ', ''), false);
});

test('details: loopback when trusted, the token from anywhere, liveness for everyone else', () => {
  const trusted = { trustLoopback: true, token: TOKEN };
  const proxied = { trustLoopback: false, token: TOKEN };
  const withToken = { authorization: `Bearer ${TOKEN}` };
  assert.equal(showsHealthDetails(trusted, '::ffff:127.0.0.1', {}), true);
  assert.equal(showsHealthDetails(trusted, '192.0.2.10', {}), false);
  assert.equal(showsHealthDetails(trusted, '192.0.2.10', withToken), true);
  assert.equal(showsHealthDetails(trusted, '192.0.2.10', { authorization: 'Bearer wrong-token-0123456789' }), false);
  assert.equal(showsHealthDetails(proxied, '127.0.0.1', {}), false, 'behind a local proxy loopback is anyone');
  assert.equal(showsHealthDetails(proxied, '127.0.0.1', withToken), true);
  assert.equal(showsHealthDetails({ trustLoopback: true }, undefined, withToken), false, 'no token configured, no address');
});

test('HEALTH_TOKEN and HEALTH_TRUST_LOOPBACK in the configuration', () => {
  assert.deepEqual(loadConfig({}).server.health, { trustLoopback: true, token: undefined });
  assert.deepEqual(loadConfig({ HEALTH_TOKEN: ` ${TOKEN} `, HEALTH_TRUST_LOOPBACK: 'false' }).server.health, {
    trustLoopback: false,
    token: TOKEN,
  });
  for (const bad of ['short-token', 'has a space in it 0123', 'tab\there0123456789']) {
    assert.throws(
      () => loadConfig({ HEALTH_TOKEN: bad }),
      (error: unknown) =>
        error instanceof MinerError &&
        /^HEALTH_TOKEN is not valid: expected at least 16 printable/.test(error.message) &&
        !error.message.includes(bad),
    );
  }
  assert.throws(() => loadConfig({ HEALTH_TRUST_LOOPBACK: 'maybe' }), /HEALTH_TRUST_LOOPBACK/);
});
