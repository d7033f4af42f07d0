/**
 * The video download (lib/inference/download.ts) against loopback servers only: servers that close the
 * connection right after the body, many times over (Node 24's built-in fetch crashed the process there),
 * and the rules: redirects, statuses, timeout, size cap, schemes, credentials, temp folders, sockets.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ErrorKind, MinerError } from '../lib/core/errors.ts';
import { type DownloadOptions, downloadVideo } from '../lib/inference/download.ts';
import { startVideoServer, type TestVideoServer } from './support/media.ts';

// Downloads make their temp folders under os.tmpdir(), which reads TMPDIR: a private one, so that other test
// runs on this machine cannot add or remove `score-miner-*` entries while this file counts them.
const privateTmp = mkdtempSync(path.join(os.tmpdir(), 'download-test-'));
process.env.TMPDIR = privateTmp;
assert.equal(os.tmpdir(), privateTmp);
const leftovers = () => readdirSync(os.tmpdir()).filter((name) => name.startsWith('score-miner-'));
after(() => {
  const left = leftovers();
  rmSync(privateTmp, { recursive: true, force: true });
  assert.deepEqual(left, [], 'temp folders left behind');
});

const options: DownloadOptions = { timeoutMs: 2000, maxBytes: 1024 * 1024, maxRedirects: 3 };

async function rejectsWith(promise: Promise<unknown>, kind: ErrorKind, pattern: RegExp): Promise<MinerError> {
  let caught: MinerError | undefined;
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof MinerError, `expected MinerError, got ${String(error)}`);
    assert.equal(error.kind, kind);
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes('\n'), 'the cause is one line');
    caught = error;
    return true;
  });
  return caught as MinerError;
}

/** Waits (bounded) until the server has no connection open: the client closed what it gave up on. */
async function noConnectionsLeft(server: { openConnections(): number }): Promise<void> {
  for (let i = 0; i < 100 && server.openConnections() > 0; i++) await sleep(50);
  assert.equal(server.openConnections(), 0, 'a connection is still open');
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('servers that close the connection right after the body', () => {
  const DOWNLOADS = 300;
  const CONCURRENCY = 3;
  // Larger than the stream buffers, so the body is paused by backpressure when the peer closes (what crashed).
  const body = randomBytes(1024 * 1024);
  const digest = sha256(body);
  const stress = { ...options, timeoutMs: 20_000, maxBytes: 4 * 1024 * 1024 };

  /** Downloads `url` DOWNLOADS times, CONCURRENCY at a time, checking each file and its cleanup. */
  async function downloadMany(url: string): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < DOWNLOADS) {
        next++;
        const video = await downloadVideo(url, stress);
        const bytes = await readFile(video.path);
        assert.equal(video.bytes, body.length);
        assert.equal(bytes.length, body.length);
        assert.equal(sha256(bytes), digest);
        await video.cleanup();
        assert.equal(existsSync(path.dirname(video.path)), false, 'cleanup() removes the temp folder');
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }

  it('HTTP/1.0, socket closed after the body (with and without Content-Length), 300 times', { timeout: 40_000 }, async () => {
    let served = 0;
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        if (head.includes('\r\n\r\n')) return;
        head += chunk.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        served++;
        const length = served % 2 === 0 ? `Content-Length: ${body.length}\r\n` : ''; // odd: the close ends the body
        socket.end(Buffer.concat([Buffer.from(`HTTP/1.0 200 OK\r\nContent-Type: video/mp4\r\n${length}\r\n`, 'latin1'), body]));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await downloadMany(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/video.mp4`);
      assert.equal(served, DOWNLOADS);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    assert.deepEqual(leftovers(), []);
  });

  it('Connection: close with a chunked body, 300 times', { timeout: 40_000 }, async () => {
    let chunked = 0;
    const server = http.createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'video/mp4', connection: 'close' });
      let offset = 0;
      const pump = () => {
        while (offset < body.length) {
          const more = response.write(body.subarray(offset, offset + 64 * 1024));
          offset += 64 * 1024;
          if (!more) return void response.once('drain', pump);
        }
        if (response.chunkedEncoding) chunked++;
        response.end();
      };
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await downloadMany(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/video.mp4`);
      assert.equal(chunked, DOWNLOADS, 'every response was chunked');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    assert.deepEqual(leftovers(), []);
  });
});

describe('download rules', () => {
  let server: TestVideoServer;
  const small = randomBytes(200 * 1024);
  before(async () => {
    server = await startVideoServer({ 'small.mp4': small, 'big.bin': Buffer.alloc(2 * 1024 * 1024, 7), 'empty.mp4': Buffer.alloc(0) });
  });
  after(() => server.close());

  it('streams a file to a temp path and cleanup deletes it', async () => {
    const video = await downloadVideo(`${server.base}/files/small.mp4`, options);
    assert.ok(path.basename(path.dirname(video.path)).startsWith('score-miner-'));
    assert.equal(path.dirname(path.dirname(video.path)), os.tmpdir());
    assert.deepEqual(await readFile(video.path), small);
    assert.equal(video.bytes, small.length);
    await video.cleanup();
    assert.equal(existsSync(path.dirname(video.path)), false);
    await video.cleanup(); // twice is harmless
  });
  it('follows redirects up to the limit', async () => {
    const video = await downloadVideo(`${server.base}/redirect/3/small.mp4`, options);
    assert.deepEqual(await readFile(video.path), small);
    await video.cleanup();
    await rejectsWith(downloadVideo(`${server.base}/redirect/4/small.mp4`, options), 'download-failed', /more than 3 redirects/);
  });
  it('a redirect without Location, or to another scheme, fails', async () => {
    await rejectsWith(downloadVideo(`${server.base}/location`, options), 'download-failed', /redirect 302 without a Location header/);
    const toFtp = `${server.base}/location?to=${encodeURIComponent('ftp://127.0.0.1/v.mp4')}`;
    await rejectsWith(downloadVideo(toFtp, options), 'download-failed', /redirect to ftp: refused/);
  });
  it('an HTTP 404 upstream is download-failed naming the status', async () => {
    await rejectsWith(downloadVideo(`${server.base}/files/missing.mp4`, options), 'download-failed', /HTTP 404 Not Found$/);
  });
  it('an empty body is download-failed', async () => {
    await rejectsWith(downloadVideo(`${server.base}/files/empty.mp4`, options), 'download-failed', /empty response body/);
  });
  it('a stalled server times out', async () => {
    await rejectsWith(downloadVideo(`${server.base}/slow`, { ...options, timeoutMs: 300 }), 'download-failed', /timed out after 0.3 s/);
  });
  it('a declared size over the cap is refused before reading', async () => {
    await rejectsWith(downloadVideo(`${server.base}/huge`, options), 'download-failed', /larger than the 1048576-byte cap/);
  });
  it('a body over the cap is cut off while streaming', async () => {
    await rejectsWith(downloadVideo(`${server.base}/endless`, options), 'download-failed', /larger than the 1048576-byte cap/);
  });
  it('a sized body over the cap is refused', async () => {
    await rejectsWith(downloadVideo(`${server.base}/files/big.bin`, options), 'download-failed', /cap/);
  });
  it('refused connections are download-failed with the cause', async () => {
    const closed = await startVideoServer({});
    await closed.close();
    await rejectsWith(downloadVideo(`${closed.base}/x.mp4`, options), 'download-failed', /ECONNREFUSED/);
  });
  it('non-http schemes and malformed URLs are invalid input', async () => {
    await rejectsWith(downloadVideo('file:///etc/passwd', options), 'invalid-input', /http\(s\)/);
    await rejectsWith(downloadVideo('http://[::1', options), 'invalid-input', /not a valid URL/);
  });
  it('an aborted download (timeout, cap) leaves no connection open', async () => {
    const own = await startVideoServer({});
    try {
      await rejectsWith(downloadVideo(`${own.base}/endless`, options), 'download-failed', /cap/);
      await rejectsWith(downloadVideo(`${own.base}/slow`, { ...options, timeoutMs: 300 }), 'download-failed', /timed out/);
      await noConnectionsLeft(own);
    } finally {
      await own.close();
    }
  });
  it('a server that never answers times out, and the connection is closed', async () => {
    const open = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      open.add(socket);
      socket.resume(); // reads (and drops) the request, so the client's close is seen
      socket.on('close', () => open.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/video.mp4`;
      await rejectsWith(downloadVideo(url, { ...options, timeoutMs: 300 }), 'download-failed', /timed out after 0.3 s/);
      await noConnectionsLeft({ openConnections: () => open.size });
    } finally {
      for (const socket of open) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
  it('failed downloads leave no temp folder', () => assert.deepEqual(leftovers(), []));
});

describe('credentials in the URL never reach a message', () => {
  let server: TestVideoServer;
  before(async () => {
    server = await startVideoServer({ 'small.mp4': randomBytes(1024) });
  });
  after(() => server.close());

  const secretFree = (error: MinerError) => {
    for (const secret of ['s3cret', 'hunter2', 'alice', 'admin']) assert.ok(!error.message.includes(secret), error.message);
  };

  it('a URL with user:password is refused without the secret', async () => {
    const port = new URL(server.base).port;
    secretFree(
      await rejectsWith(downloadVideo(`http://alice:s3cret@127.0.0.1:${port}/files/small.mp4`, options), 'invalid-input', /credentials/),
    );
    secretFree(
      await rejectsWith(downloadVideo(`http://alice@127.0.0.1:${port}/files/small.mp4`, options), 'invalid-input', /127\.0\.0\.1/),
    );
    assert.equal(server.hits.size, 0, 'nothing was requested');
  });
  it('nor when the URL does not parse', async () => {
    secretFree(await rejectsWith(downloadVideo('http://alice:s3cret@[::1/x.mp4', options), 'invalid-input', /not a valid URL/));
  });
  it('nor when a redirect points at one', async () => {
    const target = `http://admin:hunter2@${new URL(server.base).host}/files/small.mp4`;
    const redirector = http.createServer((_request, response) => void response.writeHead(302, { location: target }).end());
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    try {
      const start = `http://127.0.0.1:${(redirector.address() as net.AddressInfo).port}/video.mp4`;
      secretFree(await rejectsWith(downloadVideo(start, options), 'download-failed', /redirect to a URL with credentials refused/));
    } finally {
      redirector.closeAllConnections();
      await new Promise((resolve) => redirector.close(resolve));
    }
  });
});
