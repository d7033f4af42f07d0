import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bodyDigests } from '../../lib/protocol/signature.ts';
import type { Reply } from '../../server/http.ts';
import { ANSWER_TTL_MS, answerKey, type Computed, MAX_KEPT_ANSWERS, mayKeep, SharedAnswers } from '../../server/replays.ts';

const keyOf = (body: string) => answerKey(bodyDigests(Buffer.from(body)));

/** A computation the test finishes by hand, counting how often it was started. */
function controlled() {
  let finish!: (computed: Computed) => void;
  let started = 0;
  const compute = () => {
    started++;
    return new Promise<Computed>((resolve) => {
      finish = resolve;
    });
  };
  return { compute, finish: (computed: Computed) => finish(computed), started: () => started };
}

const ok = (id: string): Reply => ({
  status: 200,
  body: { challenge_id: id, predictions: [{ frame: 1, action: 'pass' }], processing_time: 1.5 },
});

function clocked() {
  const clock = { ms: 1_000 };
  return { clock, answers: new SharedAnswers({ now: () => clock.ms }) };
}

test('answerKey: the blake2b-256 of the exact bytes (what the central scheme signs); one byte apart is another key', () => {
  const body = '{"challenge_id":"c1","video_url":"https://example.com/v.mp4","frames":null}';
  // The spec's hash vector for this body (docs/security.md).
  assert.equal(keyOf(body), '9bd4bcf32fa1ae9c9fc3ff2139afe08bd542a0c42a57e6f7744da8989f959e9f');
  assert.notEqual(keyOf(body.replace('c1', 'c2')), keyOf(body));
  assert.notEqual(keyOf(`${body} `), keyOf(body));
});

test('requests for a body that is running join it: one run, the same reply object for all', async () => {
  const { answers } = clocked();
  const work = controlled();
  const first = answers.answer('k', work.compute);
  const joined = Array.from({ length: 10 }, () => answers.answer('k', work.compute));
  assert.equal(work.started(), 1);
  assert.deepEqual(answers.health(), { runs: 1, shared_running: 10, shared_kept: 0, running: 1, kept: 0 });
  const reply = ok('c1');
  work.finish({ reply, keep: true });
  assert.equal((await first).source, 'run');
  for (const result of await Promise.all(joined)) {
    assert.equal(result.source, 'running');
    assert.equal(result.reply, reply);
  }
  assert.equal(JSON.stringify((await joined[0]).reply.body), JSON.stringify(reply.body));
});

test('a kept answer serves the same body for 120 s after it was sent, then the body runs again', async () => {
  const { clock, answers } = clocked();
  const work = controlled();
  const first = answers.answer('k', work.compute);
  clock.ms += 20_000; // the run took 20 s: the 120 s count from its answer, not its start
  work.finish({ reply: ok('c1'), keep: true });
  await first;
  clock.ms += ANSWER_TTL_MS - 1;
  const kept = await answers.answer('k', work.compute);
  assert.equal(kept.source, 'kept');
  assert.equal(work.started(), 1);
  clock.ms += 1;
  const again = answers.answer('k', work.compute);
  assert.equal(work.started(), 2);
  work.finish({ reply: ok('c1'), keep: true });
  assert.equal((await again).source, 'run');
  assert.deepEqual(answers.health(), { runs: 2, shared_running: 0, shared_kept: 1, running: 0, kept: 1 });
});

test('an answer that may not be kept is shared while it runs, and forgotten once sent', async () => {
  const { answers } = clocked();
  const work = controlled();
  const busy: Reply = { status: 503, body: { detail: 'Busy: 5 challenges in progress, queue full' }, headers: { 'retry-after': '5' } };
  const first = answers.answer('k', work.compute);
  const joined = answers.answer('k', work.compute);
  work.finish({ reply: busy, keep: false });
  assert.equal((await first).reply, busy);
  assert.equal((await joined).reply, busy);
  assert.equal((await joined).source, 'running');
  const next = answers.answer('k', work.compute);
  assert.equal(work.started(), 2, 'the next identical body runs again');
  work.finish({ reply: ok('c1'), keep: true });
  assert.equal((await next).reply.status, 200);
});

test('different bodies never share', async () => {
  const { answers } = clocked();
  const a = controlled();
  const b = controlled();
  const first = answers.answer(keyOf('a'), a.compute);
  const second = answers.answer(keyOf('b'), b.compute);
  assert.equal(a.started() + b.started(), 2);
  a.finish({ reply: ok('a'), keep: true });
  b.finish({ reply: ok('b'), keep: true });
  assert.deepEqual((await first).reply.body, ok('a').body);
  assert.deepEqual((await second).reply.body, ok('b').body);
});

test('kept answers are capped: the oldest goes; running ones are never evicted', async () => {
  const clock = { ms: 0 };
  const answers = new SharedAnswers({ now: () => clock.ms, maxKept: 3 });
  const running = controlled();
  const held = answers.answer('running', running.compute);
  for (const key of ['k1', 'k2', 'k3', 'k4', 'k5']) {
    clock.ms += 1;
    await answers.answer(key, async () => ({ reply: ok(key), keep: true }));
  }
  assert.deepEqual(answers.health(), { runs: 6, shared_running: 0, shared_kept: 0, running: 1, kept: 3 });
  // k1 and k2 went; k3..k5 are kept; the running entry is still joined.
  for (const key of ['k3', 'k4', 'k5'])
    assert.equal((await answers.answer(key, async () => ({ reply: ok('x'), keep: true }))).source, 'kept');
  for (const key of ['k1', 'k2']) assert.equal((await answers.answer(key, async () => ({ reply: ok(key), keep: false }))).source, 'run');
  const joined = answers.answer('running', running.compute);
  running.finish({ reply: ok('running'), keep: true });
  assert.equal((await joined).source, 'running');
  await held;
  assert.equal(MAX_KEPT_ANSWERS, 256);
});

test('mayKeep: whole answers and failures that follow from the body; never a cut answer or a passing condition', () => {
  assert.equal(mayKeep(200, false), true);
  assert.equal(mayKeep(400, false), true);
  assert.equal(mayKeep(422, false), true);
  assert.equal(mayKeep(200, true), false);
  for (const status of [500, 502, 503]) assert.equal(mayKeep(status, false), false, String(status));
});
