/**
 * The HTTP layer on real sockets: a real miner (server/app.ts, port 0 on 127.0.0.1, 1 s read timeouts) fed
 * raw bytes over `net` — Node's own parser errors and read timeouts answered with JSON, the server still
 * serving after each — and `close()`: idle and half-received connections dropped at once, a running
 * handler allowed to answer, a handler past its deadline cut off at the bound.
 * No timing is asserted: durations are reported with t.diagnostic; hang guards are generous.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../lib/core/config.ts';
import { type RunningMiner, startMiner } from '../server/app.ts';
import { openGuard, type RequestGuard } from '../server/guard.ts';

const HANG_GUARD_MS = 15_000;
/** close() must resolve well before this when nothing is running (it used to wait for the read timeouts). */
const CLOSE_GUARD_MS = 5_000;

function minerConfig(extra: Record<string, string> = {}) {
  return loadConfig({
    BLACKLIST_ENABLED: 'false',
    VERIFY_ENABLED: 'false',
    MINER_HOST: '127.0.0.1',
    MINER_PORT: '0',
    HEADERS_TIMEOUT_S: '1',
    REQUEST_TIMEOUT_S: '1',
    ...extra,
  });
}

interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parseReply(raw: string): RawReply {
  const split = raw.indexOf('\r\n\r\n');
  assert.ok(split > 0, `not an HTTP response: ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine, ...headerLines] = raw.slice(0, split).split('\r\n');
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
  assert.ok(match, `bad status line: ${statusLine}`);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(match[1]), headers, body: raw.slice(split + 4) };
}

/** A raw connection that records what it receives and resolves `closed` when the server ends it. */
interface RawClient {
  socket: net.Socket;
  received(): string;
  /** Resolves once the connection is closed (by the server: the hang guard rejects otherwise). */
  closed: Promise<void>;
}

function connect(port: number, guardMs = HANG_GUARD_MS): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (data += chunk));
    // Writing into a connection the server has given up on may fail: what matters is what came back.
    socket.on('error', () => {});
    const closed = new Promise<void>((resolveClosed, rejectClosed) => {
      const guard = setTimeout(() => {
        socket.destroy();
        rejectClosed(new Error(`the server never closed the connection (received ${JSON.stringify(data.slice(0, 200))})`));
      }, guardMs);
      socket.on('close', () => {
        clearTimeout(guard);
        resolveClosed();
      });
    });
    closed.catch(() => {}); // observed by the tests that await it
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('error', reject);
  });
}

/** Sends `bytes`, waits for the server to answer and close, returns the parsed answer and how long it took. */
async function exchange(port: number, bytes: string): Promise<RawReply & { ms: number }> {
  const client = await connect(port);
  const startedAt = performance.now();
  client.socket.write(bytes);
  await client.closed;
  return { ...parseReply(client.received()), ms: Math.round(performance.now() - startedAt) };
}

function assertJsonError(reply: RawReply, status: number, detail: RegExp): void {
  assert.equal(reply.status, status, reply.body);
  assert.match(reply.headers['content-type'] ?? '', /^application\/json/);
  assert.equal(reply.headers.connection, 'close');
  assert.equal(Number(reply.headers['content-length']), Buffer.byteLength(reply.body));
  const json = JSON.parse(reply.body) as { detail?: unknown };
  assert.equal(typeof json.detail, 'string');
  assert.match(json.detail as string, detail);
}

async function assertServes(miner: RunningMiner): Promise<void> {
  const response = await fetch(`${miner.url}/docs`, { signal: AbortSignal.timeout(HANG_GUARD_MS) });
  assert.equal(response.status, 200);
  assert.match(await response.text(), /POST \/challenge/);
}

/** Resolves with how long `promise` took, or rejects when it has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<number> {
  const startedAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return Math.round(performance.now() - startedAt);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("Node's parser errors and read timeouts are JSON", () => {
  let miner: RunningMiner;
  before(async () => {
    miner = await startMiner(minerConfig());
  });
  after(async () => {
    await miner?.close();
  });

  it('400 for a malformed request line', async () => {
    const reply = await exchange(miner.port, 'THIS IS NOT HTTP\r\n\r\n');
    assertJsonError(reply, 400, /^Malformed HTTP request: /);
    await assertServes(miner);
  });

  it('400 for an invalid header line', async () => {
    const reply = await exchange(miner.port, 'GET /docs HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n');
    assertJsonError(reply, 400, /^Malformed HTTP request: /);
    await assertServes(miner);
  });

  it('431 for headers over the size limit', async () => {
    const reply = await exchange(miner.port, `GET /docs HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`);
    assertJsonError(reply, 431, /headers too large/);
    await assertServes(miner);
  });

  it('408 for headers that never finish', async (t) => {
    const reply = await exchange(miner.port, 'GET /docs HTTP/1.1\r\nHost: x\r\n');
    assertJsonError(reply, 408, /not received in time/);
    t.diagnostic(`408 after ${reply.ms} ms (HEADERS_TIMEOUT_S=1)`);
    await assertServes(miner);
  });

  it('408 for a connection that sends nothing', async (t) => {
    const reply = await exchange(miner.port, '');
    assertJsonError(reply, 408, /not received in time/);
    t.diagnostic(`408 after ${reply.ms} ms`);
    await assertServes(miner);
  });

  it('408 for a body trickled one byte every 300 ms, and no handler runs for it', async (t) => {
    const client = await connect(miner.port);
    const startedAt = performance.now();
    // A complete, valid challenge body would get a 400/502 from the handler: a 408 means it never ran.
    const body = JSON.stringify({ challenge_id: 'c1', video_url: 'http://127.0.0.1:9/x.mp4' });
    client.socket.write(`POST /challenge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    let sent = 0;
    const trickle = setInterval(() => {
      if (client.socket.writable && sent < body.length) client.socket.write(body[sent++]);
    }, 300);
    try {
      await client.closed;
    } finally {
      clearInterval(trickle);
    }
    const reply = parseReply(client.received());
    assertJsonError(reply, 408, /not received in time/);
    assert.ok(sent < body.length, 'the whole body got through before the timeout');
    t.diagnostic(`408 after ${Math.round(performance.now() - startedAt)} ms, ${sent} body bytes sent`);
    await assertServes(miner);
  });

  it('413 for a body over the 8 KiB default still closes the connection with JSON; 8 KiB exactly is read', async () => {
    for (const [size, chunked] of [
      [8 * 1024 + 1, false],
      [70 * 1024, false],
      [8 * 1024 + 1, true], // no Content-Length to refuse up front: counted as it arrives
    ] as const) {
      const body = 'x'.repeat(size);
      const framing = chunked
        ? `Transfer-Encoding: chunked\r\n\r\n${size.toString(16)}\r\n${body}\r\n0\r\n\r\n`
        : `Content-Length: ${size}\r\n\r\n${body}`;
      const reply = await exchange(miner.port, `POST /challenge HTTP/1.1\r\nHost: x\r\n${framing}`);
      assertJsonError(reply, 413, /^Request body larger than 8192 bytes$/);
    }
    const fits = 'x'.repeat(8 * 1024);
    const reply = await exchange(
      miner.port,
      `POST /challenge HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${fits.length}\r\n\r\n${fits}`,
    );
    assert.equal(reply.status, 400, reply.body);
    assert.match(JSON.parse(reply.body).detail, /^Invalid JSON body/);
    await assertServes(miner);
  });
});

describe('close()', () => {
  it('drops an idle keep-alive connection and half-sent requests at once', async (t) => {
    const miner = await startMiner(minerConfig({ HEADERS_TIMEOUT_S: '60', REQUEST_TIMEOUT_S: '60' }));
    let closed = false;
    try {
      // Idle keep-alive: one request answered, the connection left open.
      const idle = await connect(miner.port);
      idle.socket.write('GET /docs HTTP/1.1\r\nHost: x\r\n\r\n');
      for (let i = 0; i < 200 && !idle.received().includes('</html>'); i++) await sleep(10);
      const answered = idle.received();
      assert.equal(parseReply(answered).status, 200);
      assert.notEqual(parseReply(answered).headers.connection, 'close');
      const halfHeaders = await connect(miner.port);
      halfHeaders.socket.write('POST /challenge HTTP/1.1\r\nHost: x\r\nContent-Le');
      const halfBody = await connect(miner.port);
      halfBody.socket.write('POST /challenge HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"challenge_id":');
      const silent = await connect(miner.port);
      await sleep(100); // let the server read what was sent

      const ms = await within(miner.close(), CLOSE_GUARD_MS, 'close()');
      closed = true;
      t.diagnostic(`close() took ${ms} ms with an idle keep-alive, half-sent headers, a half-sent body and a silent connection`);
      await within(
        Promise.all([idle.closed, halfHeaders.closed, halfBody.closed, silent.closed]),
        CLOSE_GUARD_MS,
        'the connections closing',
      );
      assert.equal(idle.received(), answered, 'nothing more on the idle connection');
      assert.equal(halfHeaders.received(), '');
      assert.equal(halfBody.received(), '');
      assert.equal(silent.received(), '');
      await assert.rejects(fetch(`${miner.url}/docs`), 'the port is closed');
    } finally {
      if (!closed) await miner.close();
    }
  });

  /** The open guard, except that /challenge waits in the guard until the test releases it. */
  function blockingGuard() {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    const guard: RequestGuard = {
      ...openGuard,
      async check(request) {
        entered();
        await released;
        return openGuard.check(request);
      },
    };
    return { guard, inHandler, release };
  }

  it('lets a running handler answer (its connection then closes) while everything else goes at once', async (t) => {
    const blocked = blockingGuard();
    const miner = await startMiner(minerConfig({ HEADERS_TIMEOUT_S: '60', REQUEST_TIMEOUT_S: '60' }), blocked.guard);
    let closing: Promise<void> | undefined;
    try {
      const running = await connect(miner.port);
      // Missing video_url: once the guard lets it through, the handler answers 400 without any download.
      const body = JSON.stringify({ challenge_id: 'c1' });
      running.socket.write(
        `POST /challenge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      await within(blocked.inHandler, HANG_GUARD_MS, 'the handler starting');
      const halfSent = await connect(miner.port);
      halfSent.socket.write('GET /docs HTTP/1.1\r\nHo');
      await sleep(100);

      let settled = false;
      const startedAt = performance.now();
      closing = miner.close().then(() => {
        settled = true;
      });
      await within(halfSent.closed, CLOSE_GUARD_MS, 'the half-sent connection closing');
      t.diagnostic(`half-sent connection closed ${Math.round(performance.now() - startedAt)} ms into close()`);
      assert.equal(halfSent.received(), '');
      await assert.rejects(fetch(`${miner.url}/docs`), 'no new connections while draining');
      assert.equal(settled, false, 'close() must wait for the running handler');
      assert.equal(running.received(), '', 'the running handler has not answered yet');

      blocked.release();
      await within(running.closed, CLOSE_GUARD_MS, 'the running connection closing after its answer');
      const reply = parseReply(running.received());
      assertJsonError(reply, 400, /^Missing field: video_url$/);
      await within(closing, CLOSE_GUARD_MS, 'close()');
      t.diagnostic(`close() took ${Math.round(performance.now() - startedAt)} ms, the handler held until released`);
    } finally {
      blocked.release();
      await (closing ?? miner.close());
    }
  });

  it('cuts off a handler still running at its deadline + grace', async (t) => {
    const blocked = blockingGuard(); // never released before close() ends
    const miner = await startMiner(minerConfig({ CHALLENGE_DEADLINE_S: '1' }), blocked.guard);
    try {
      const running = await connect(miner.port);
      const body = JSON.stringify({ challenge_id: 'c1' });
      running.socket.write(`POST /challenge HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      await within(blocked.inHandler, HANG_GUARD_MS, 'the handler starting');
      const ms = await within(miner.close(), HANG_GUARD_MS, 'close() with a handler that never ends');
      t.diagnostic(`close() gave up on the stuck handler after ${ms} ms (CHALLENGE_DEADLINE_S=1 + 2 s grace)`);
      await within(running.closed, CLOSE_GUARD_MS, 'the stuck connection closing');
      assert.equal(running.received(), '');
    } finally {
      blocked.release();
    }
  });
});
