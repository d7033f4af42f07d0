/**
 * What a caller who is not the operator learns from the real server: GET /health is liveness only unless the
 * caller is trusted, and a failed download is one fixed message per class while the log keeps the cause.
 * Every request here comes from loopback; the stranger's view is this miner's with HEALTH_TRUST_LOOPBACK=false
 * (as behind a reverse proxy on the same host), where loopback counts for nothing and only the token does.
 * The decision for other addresses is unit-tested as a pure function (test/unit/health.test.ts).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { RunningMiner } from '../server/app.ts';
import { logged } from './support/logged.ts';
import { startVideoServer, type TestVideoServer } from './support/media.ts';
import { startLocalMiner } from './support/miner.ts';

const TOKEN = 'test-health-token-0123456789';
const HANG_GUARD_MS = 60_000;

let miner: RunningMiner;
let videos: TestVideoServer;

before(async () => {
  videos = await startVideoServer({ 'big.bin': Buffer.alloc(256 * 1024, 7) });
  miner = await startLocalMiner({
    QUEUE_MAX: '2',
    DOWNLOAD_TIMEOUT_S: '1',
    DOWNLOAD_MAX_BYTES: '64KiB',
    DOWNLOAD_ALLOW_PRIVATE: 'true', // the videos are served on loopback
    HEALTH_TRUST_LOOPBACK: 'false',
    HEALTH_TOKEN: TOKEN,
  });
});

after(async () => {
  await miner?.close();
  await videos?.close();
});

async function health(headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, any>; headers: Headers }> {
  const response = await fetch(`${miner.url}/health`, { headers, signal: AbortSignal.timeout(HANG_GUARD_MS) });
  return { status: response.status, json: (await response.json()) as Record<string, any>, headers: response.headers };
}

describe('GET /health', () => {
  it('a caller the miner does not trust gets liveness only: status, model name and version, ready', async () => {
    const reply = await health();
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, { status: 'ok', model: { name: 'default-flash-cut', version: reply.json.model.version }, ready: true });
    assert.equal(typeof reply.json.model.version, 'string');
    assert.equal(reply.headers.get('cache-control'), 'no-store');
  });
  it('a wrong, malformed or foreign-scheme token gets liveness only', async () => {
    for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, TOKEN, `Basic ${TOKEN}`, 'Bearer']) {
      const reply = await health({ authorization });
      assert.deepEqual(Object.keys(reply.json).sort(), ['model', 'ready', 'status'], authorization);
    }
  });
  it('the token shows the details: model folder, ffmpeg, providers, queue, security', async () => {
    const reply = await health({ authorization: `Bearer ${TOKEN}` });
    assert.equal(reply.status, 200);
    assert.equal(reply.json.status, 'ok');
    assert.equal(reply.json.ready, true);
    assert.equal(reply.json.model.name, 'default-flash-cut');
    assert.match(reply.json.model.dir, /models\/default$/);
    assert.match(reply.json.ffmpeg.path, /ffmpeg/);
    assert.deepEqual(reply.json.providers, ['cpu']);
    assert.deepEqual(reply.json.queue, { admitted: 0, running: 0, waiting: 0, capacity: 3 });
    assert.deepEqual([reply.json.security.blacklist, reply.json.security.verify], [false, false]);
    assert.equal(typeof reply.json.uptime_s, 'number');
    assert.equal(reply.headers.get('cache-control'), 'no-store');
  });
});

async function challenge(videoUrl: string): Promise<{ status: number; detail: string; lines: string[] }> {
  const { value, lines } = await logged(async () => {
    const response = await fetch(`${miner.url}/challenge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ challenge_id: 'c1', video_url: videoUrl }),
      signal: AbortSignal.timeout(HANG_GUARD_MS),
    });
    return { status: response.status, json: (await response.json()) as { detail: string } };
  });
  return { status: value.status, detail: value.json.detail, lines };
}

/** The log line of a failed download: its public message, then the cause. */
function failureLine(lines: string[], message: string): string {
  const line = lines.find((candidate) => candidate.includes(` ${message} `));
  assert.ok(line, `no log line for "${message}" in:\n${lines.join('')}`);
  return line;
}

describe('a failed download through the server', () => {
  it('an HTTP 404: a 502 saying "HTTP error"; the log has the status and the URL without its query', async () => {
    const { status, detail, lines } = await challenge(`${videos.base}/files/missing.mp4?X-Amz-Signature=s3cretsig`);
    assert.deepEqual([status, detail], [502, 'could not download the video: HTTP error']);
    const line = failureLine(lines, 'could not download the video: HTTP error');
    assert.match(line, new RegExp(`status=502 detail="GET ${videos.base}/files/missing\\.mp4: HTTP 404 Not Found"`));
    assert.ok(!lines.join('').includes('s3cretsig'), 'the query reached the log');
  });
  it('a refused port: a 502 saying "network error"; the log has the errno and the address', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const { status, detail, lines } = await challenge(`http://127.0.0.1:${port}/v.mp4`);
    assert.deepEqual([status, detail], [502, 'could not download the video: network error']);
    assert.match(failureLine(lines, detail), new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
  });
  it('a stalled origin: a 502 saying "timeout"; the log has the setting', async () => {
    const { status, detail, lines } = await challenge(`${videos.base}/slow`);
    assert.deepEqual([status, detail], [502, 'could not download the video: timeout']);
    assert.match(failureLine(lines, detail), /timed out after 1 s \(DOWNLOAD_TIMEOUT_S\)/);
  });
  it('a file over the cap: a 502 saying "too large"; the log has the cap', async () => {
    const { status, detail, lines } = await challenge(`${videos.base}/files/big.bin`);
    assert.deepEqual([status, detail], [502, 'could not download the video: too large']);
    assert.match(failureLine(lines, detail), /larger than the 65536-byte cap \(DOWNLOAD_MAX_BYTES\)/);
  });
  it('a redirect to another scheme: a 502 saying "refused by policy"; the log has the chain', async () => {
    const to = encodeURIComponent('ftp://127.0.0.1/v.mp4');
    const { status, detail, lines } = await challenge(`${videos.base}/location?to=${to}`);
    assert.deepEqual([status, detail], [502, 'could not download the video: refused by policy']);
    assert.match(
      failureLine(lines, detail),
      new RegExp(`GET ${videos.base}/location -> ftp://127\\.0\\.0\\.1/v\\.mp4: redirect to ftp: refused`),
    );
  });
});
