import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NonceStore, parseNonceTimestamp } from '../../server/nonces.ts';

const T0 = 1_700_000_000_000; // ms
const ns = (ms: number) => (BigInt(ms) * 1_000_000n).toString();

/** A store on a hand-driven clock, no purge timer, in a process that started 10 minutes before `start`. */
function storeAt(start = T0) {
  const clock = { ms: start };
  const store = new NonceStore({ now: () => clock.ms, startedAt: start - 600_000, purgeIntervalMs: 0 });
  return { clock, store };
}

test('parse: leading digits before the first underscore, unix ns, at most 10^20', () => {
  assert.equal(parseNonceTimestamp('1700000000000000000'), 1700000000000000000n);
  assert.equal(parseNonceTimestamp('1700000000000000000_abcDEF1234'), 1700000000000000000n);
  assert.equal(parseNonceTimestamp('12_a_b'), 12n);
  assert.equal(parseNonceTimestamp('100000000000000000000'), 10n ** 20n);
  assert.equal(parseNonceTimestamp('100000000000000000001'), undefined);
  for (const bad of ['', '_123', 'abc', '12a_x', '-5', '1.5', '١٢٣', '17 00', `1${'0'.repeat(200)}`, `1_${'x'.repeat(200)}`]) {
    assert.equal(parseNonceTimestamp(bad), undefined, JSON.stringify(bad));
  }
});

test('window: exactly 120 s old or ahead passes, 121 s (or 120 s + 1 ms) does not', () => {
  const { store } = storeAt();
  assert.equal(store.check(ns(T0)), 'ok');
  assert.equal(store.check(ns(T0 - 120_000)), 'ok');
  assert.equal(store.check(ns(T0 + 120_000)), 'ok');
  assert.equal(store.check(ns(T0 - 121_000)), 'stale');
  assert.equal(store.check(ns(T0 + 121_000)), 'future');
  assert.equal(store.check((BigInt(T0 - 120_000) * 1_000_000n - 1n).toString()), 'stale');
  assert.equal(store.check((BigInt(T0 + 120_000) * 1_000_000n + 1n).toString()), 'future');
  assert.equal(store.check('garbage'), 'malformed');
});

test('replay: a consumed nonce is rejected; check alone never records', () => {
  const { store } = storeAt();
  const nonce = `${ns(T0)}_abcdefghij`;
  assert.equal(store.check(nonce), 'ok');
  assert.equal(store.check(nonce), 'ok');
  assert.equal(store.size, 0);
  assert.equal(store.consume(nonce), true);
  assert.equal(store.size, 1);
  assert.equal(store.check(nonce), 'replayed');
  assert.equal(store.consume(nonce), false);
  // Same timestamp, other suffix: a different nonce.
  assert.equal(store.check(`${ns(T0)}_abcdefghik`), 'ok');
});

test('a consumed nonce stays rejected until it would be stale anyway', () => {
  const { clock, store } = storeAt();
  const nonce = ns(T0);
  store.consume(nonce);
  clock.ms = T0 + 120_000; // still inside the window: must still be a replay
  assert.equal(store.check(nonce), 'replayed');
  store.purge();
  assert.equal(store.check(nonce), 'replayed');
  clock.ms = T0 + 120_001;
  assert.equal(store.check(nonce), 'stale');
});

test('a future nonce is remembered until its own timestamp + 120 s', () => {
  const { clock, store } = storeAt();
  const nonce = ns(T0 + 100_000);
  assert.equal(store.consume(nonce), true);
  clock.ms = T0 + 200_000; // receipt + 200 s, but only timestamp + 100 s
  store.purge();
  assert.equal(store.size, 1);
  assert.equal(store.check(nonce), 'replayed');
  clock.ms = T0 + 220_001;
  assert.equal(store.check(nonce), 'stale');
});

test('purge drops expired entries so the store shrinks back', () => {
  const { clock, store } = storeAt();
  for (let i = 0; i < 50; i++) assert.ok(store.consume(`${ns(T0)}_n${i}`));
  clock.ms = T0 + 60_000;
  for (let i = 0; i < 10; i++) assert.ok(store.consume(`${ns(T0 + 60_000)}_m${i}`));
  assert.equal(store.size, 60);
  clock.ms = T0 + 120_001;
  assert.equal(store.purge(), 50);
  assert.equal(store.size, 10);
  clock.ms = T0 + 180_001;
  assert.equal(store.purge(), 10);
  assert.equal(store.size, 0);
});

test('a nonce stamped before the process started is refused, however fresh: the last process may have used it', () => {
  const clock = { ms: T0 + 5_000 };
  const store = new NonceStore({ now: () => clock.ms, startedAt: T0, purgeIntervalMs: 0 });
  // Inside the 120 s window, but before the start: unknown to this store, so it cannot tell a replay apart.
  assert.equal(store.check(ns(T0 - 1)), 'before-start');
  assert.equal(store.check(`${ns(T0 - 60_000)}_abcdefghij`), 'before-start');
  assert.equal(store.check((BigInt(T0) * 1_000_000n - 1n).toString()), 'before-start');
  assert.equal(store.consume(ns(T0 - 1)), false);
  assert.equal(store.size, 0);
  // From the start on, the usual rules.
  assert.equal(store.check(ns(T0)), 'ok');
  assert.equal(store.check(ns(T0 + 5_000)), 'ok');
  assert.equal(store.check(ns(T0 + 125_000)), 'ok'); // ahead of the clock by 120 s: the skew allowance stays
  assert.equal(store.check(ns(T0 + 125_001)), 'future');
  // Older than the window is still 'stale', the more telling verdict.
  clock.ms = T0 + 300_000;
  assert.equal(store.check(ns(T0 - 1)), 'stale');
});

test("by default the cut-off is this process's start", () => {
  const start = Math.floor(performance.timeOrigin);
  // The clock reads one second after the start, so both nonces below are inside the 120 s window.
  const store = new NonceStore({ now: () => start + 1000, purgeIntervalMs: 0 });
  assert.equal(store.check(ns(start - 1)), 'before-start');
  assert.equal(store.check(ns(start)), 'ok');
});

test('the purge timer runs on its own and does not hold the process open', async () => {
  const clock = { ms: T0 };
  const store = new NonceStore({ now: () => clock.ms, startedAt: T0, purgeIntervalMs: 5 });
  store.consume(ns(T0));
  clock.ms = T0 + 120_001;
  // Wait for the timer by polling its effect (no timing assert: only the outcome is checked).
  for (let i = 0; i < 200 && store.size > 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  store.close();
  assert.equal(store.size, 0);
});
