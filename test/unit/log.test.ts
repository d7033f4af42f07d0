import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clip, type LogLevel, log, RepeatSummary } from '../../lib/core/log.ts';
import { logged } from '../support/logged.ts';

test('clip: short text as is, long text cut with its real length', () => {
  assert.equal(clip('5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY'), '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY');
  assert.equal(clip('a'.repeat(16_384)), `${'a'.repeat(64)}…(16384 chars)`);
  assert.equal(clip('abcdef', 3), 'abc…(6 chars)');
  assert.equal(clip(undefined), undefined);
});

test('log lines: a value cannot forge a line, and no field runs on for ever', async () => {
  const { lines } = await logged(async () => {
    log.info('probe', {
      plain: 'abc',
      spaced: 'a b',
      forged: 'x\n2026-01-01T00:00:00.000Z ERROR fake',
      escape: '\u001b[31mred',
      huge: 'y'.repeat(100_000),
    });
  });
  const line = lines.find((l) => l.includes(' probe '))!;
  assert.equal(line.split('\n').length, 2, 'one line and its newline');
  assert.match(line, / plain=abc /);
  assert.match(line, / spaced="a b" /);
  assert.match(line, / forged="x\\n2026/);
  assert.match(line, / escape="\\u001b\[31mred" /);
  assert.ok(line.length < 4200, `line of ${line.length} characters`);
  assert.match(line, /…\(100000 chars\)/);
});

function summary(intervalMs = 60_000) {
  let now = 1_000_000;
  const lines: Array<[LogLevel, string, Record<string, unknown> | undefined]> = [];
  const repeats = new RepeatSummary({
    intervalMs,
    now: () => now,
    write: (level, message, fields) => lines.push([level, message, fields]),
  });
  return {
    repeats,
    lines,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

test('RepeatSummary: the first occurrence in full, then one line per key per interval with the count', () => {
  const { repeats, lines, advance } = summary();
  repeats.note('401 bad signature', 'info', 'request rejected', { hotkey: 'h1' });
  for (let i = 0; i < 999; i++) {
    advance(10);
    repeats.note('401 bad signature', 'info', 'request rejected', { hotkey: `h${i + 2}` });
  }
  repeats.note('429 rate limit', 'debug', 'request refused', { address: '127.0.0.2' });
  assert.deepEqual(lines, [
    ['info', 'request rejected', { hotkey: 'h1', repeats: 'summarised every 60 s' }],
    ['debug', 'request refused', { address: '127.0.0.2', repeats: 'summarised every 60 s' }],
  ]);
  advance(50_000); // 59.99 s after the first: not yet
  repeats.flush();
  assert.equal(lines.length, 2);
  advance(10);
  repeats.flush();
  assert.deepEqual(lines.slice(2), [['info', 'request rejected', { key: '401 bad signature', repeated: 999, over_s: 60 }]]);
  // The rate-limit key saw nothing after its first: its interval ends without a line.
  advance(10_000);
  repeats.flush();
  assert.equal(lines.length, 3);
});

test('RepeatSummary: a steady flood gives a line per interval; after a quiet interval the next one is written in full', () => {
  const { repeats, lines, advance } = summary(1000);
  for (let i = 0; i < 300; i++) {
    repeats.note('k', 'info', 'm', { i });
    advance(10); // 100 a second for 3 s, flushed only by note() itself
  }
  assert.deepEqual(
    lines.map(([, , fields]) => fields),
    [
      { i: 0, repeats: 'summarised every 1 s' },
      { key: 'k', repeated: 99, over_s: 1 }, // the first was written in full
      { key: 'k', repeated: 100, over_s: 1 },
    ],
  );
  advance(1000);
  repeats.flush(); // the third second's 100, two seconds after the last summary
  advance(1000);
  repeats.flush(); // a quiet interval: forgotten
  repeats.note('k', 'info', 'm', { i: 'again' });
  assert.deepEqual(
    lines.slice(3).map(([, , fields]) => fields),
    [
      { key: 'k', repeated: 100, over_s: 2 },
      { i: 'again', repeats: 'summarised every 1 s' },
    ],
  );
});

test('RepeatSummary: stop() writes what is still counted', () => {
  const { repeats, lines, advance } = summary();
  repeats.note('k', 'warn', 'm');
  repeats.note('k', 'warn', 'm');
  advance(5_000);
  repeats.stop();
  assert.deepEqual(lines[1], ['warn', 'm', { key: 'k', repeated: 1, over_s: 5 }]);
  repeats.stop();
  assert.equal(lines.length, 2);
});
