/**
 * The video download (lib/video/download.ts) against loopback servers only: servers that close the
 * connection right after the body, many times over (Node 24's built-in fetch crashed the process there),
 * the rules (redirects, statuses, timeout, size cap, schemes, credentials, sockets), the sink's pace, the
 * deadline's abort, and the address policy at every hop (each refusal leaves the target without a connection).
 * A failure tells its caller the class only (one fixed message each); the cause is in the private detail.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ErrorKind, MinerError } from '../lib/core/errors.ts';
import { checkVideoUrl, type DownloadFailure, type DownloadOptions, fetchVideo } from '../lib/video/download.ts';
import { rejectsWith as rejectsWithError } from './support/assertions.ts';
import { startVideoServer, type TestVideoServer } from './support/media.ts';

// Every server here is the test's own on loopback: the policy must let it through.
const options: DownloadOptions = { timeoutMs: 2000, maxBytes: 1024 * 1024, maxRedirects: 3, allowPrivate: true };

/** The whole body, through the streaming sink. */
async function download(url: string, opts: DownloadOptions = options): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const bytes = await fetchVideo(url, opts, async (chunk) => {
    chunks.push(chunk);
  });
  const body = Buffer.concat(chunks);
  assert.equal(bytes, body.length);
  return body;
}

async function rejectsWith(promise: Promise<unknown>, kind: ErrorKind, pattern: RegExp): Promise<MinerError> {
  const error = await rejectsWithError(promise, kind, pattern);
  assert.ok(!error.message.includes('\n'), 'the cause is one line');
  return error;
}

/** The one message a caller gets for each class, spelled out (not read from the code under test). */
const PUBLIC: Record<DownloadFailure, string> = {
  network: 'could not download the video: network error',
  http: 'could not download the video: HTTP error',
  'too-large': 'could not download the video: too large',
  timeout: 'could not download the video: timeout',
  policy: 'could not download the video: refused by policy',
};

/** A failed download: exactly its class's message (a 502), and the cause only in the one-line detail. */
async function failsWith(promise: Promise<unknown>, failure: DownloadFailure, detail: RegExp): Promise<MinerError> {
  const error = await rejectsWithError(promise, 'download-failed', /./);
  assert.equal(error.message, PUBLIC[failure]);
  assert.match(error.detail ?? '', detail);
  assert.ok(!error.detail!.includes('\n'), 'the detail is one line');
  return error;
}

/** Waits (bounded) until the server has no connection open: the client closed what it gave up on. */
async function noConnectionsLeft(server: { openConnections(): number }): Promise<void> {
  for (let i = 0; i < 100 && server.openConnections() > 0; i++) await sleep(50);
  assert.equal(server.openConnections(), 0, 'a connection is still open');
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
/** `text` as a literal inside a RegExp. */
const reEscape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('servers that close the connection right after the body', () => {
  const DOWNLOADS = 300;
  const CONCURRENCY = 3;
  // Larger than the stream buffers, so the body is paused by backpressure when the peer closes (what crashed).
  const body = randomBytes(1024 * 1024);
  const digest = sha256(body);
  const stress = { ...options, timeoutMs: 20_000, maxBytes: 4 * 1024 * 1024 };

  /** Downloads `url` DOWNLOADS times, CONCURRENCY at a time, checking each body. */
  async function downloadMany(url: string): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < DOWNLOADS) {
        next++;
        const bytes = await download(url, stress);
        assert.equal(bytes.length, body.length);
        assert.equal(sha256(bytes), digest);
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
  });
});

describe('download rules', () => {
  let server: TestVideoServer;
  const small = randomBytes(200 * 1024);
  before(async () => {
    server = await startVideoServer({ 'small.mp4': small, 'big.bin': Buffer.alloc(2 * 1024 * 1024, 7), 'empty.mp4': Buffer.alloc(0) });
  });
  after(() => server.close());

  it('streams the body to the sink, one chunk at a time', async () => {
    let inSink = 0;
    let mostAtOnce = 0;
    const chunks: Buffer[] = [];
    const bytes = await fetchVideo(`${server.base}/files/small.mp4`, options, async (chunk) => {
      inSink++;
      mostAtOnce = Math.max(mostAtOnce, inSink);
      await sleep(1); // a slow sink: the next chunk must wait for it
      chunks.push(chunk);
      inSink--;
    });
    assert.equal(bytes, small.length);
    assert.deepEqual(Buffer.concat(chunks), small);
    assert.ok(chunks.length > 1, `one chunk only (${chunks.length}): the order check proves nothing`);
    assert.equal(mostAtOnce, 1, 'the sink was called again before it resolved');
  });
  it('follows redirects up to the limit', async () => {
    assert.deepEqual(await download(`${server.base}/redirect/3/small.mp4`), small);
    const chain = [4, 3, 2, 1].map((n) => `${server.base}/redirect/${n}/small.mp4`).join(' -> ');
    await failsWith(
      download(`${server.base}/redirect/4/small.mp4`),
      'policy',
      new RegExp(
        `^GET ${reEscape(chain)} -> ${reEscape(server.base)}/files/small.mp4: more than 3 redirects \\(DOWNLOAD_MAX_REDIRECTS\\)$`,
      ),
    );
  });
  it('a redirect without Location is an HTTP error, one to another scheme refused by policy', async () => {
    await failsWith(download(`${server.base}/location`, options), 'http', /: redirect 302 without a Location header$/);
    const toFtp = `${server.base}/location?to=${encodeURIComponent('ftp://127.0.0.1/v.mp4')}`;
    await failsWith(download(toFtp, options), 'policy', / -> ftp:\/\/127\.0\.0\.1\/v\.mp4: redirect to ftp: refused$/);
  });
  it('an HTTP 404 upstream is an HTTP error; the status is in the detail only', async () => {
    await failsWith(download(`${server.base}/files/missing.mp4`, options), 'http', /: HTTP 404 Not Found$/);
  });
  it('an empty body is an HTTP error', async () => {
    await failsWith(download(`${server.base}/files/empty.mp4`, options), 'http', /: empty response body$/);
  });
  it('a stalled server times out', async () => {
    await failsWith(
      download(`${server.base}/slow`, { ...options, timeoutMs: 300 }),
      'timeout',
      /: timed out after 0.3 s \(DOWNLOAD_TIMEOUT_S\)$/,
    );
  });
  it('a declared size over the cap is refused before reading', async () => {
    await failsWith(download(`${server.base}/huge`, options), 'too-large', /: larger than the 1048576-byte cap \(DOWNLOAD_MAX_BYTES\)$/);
  });
  it('a body over the cap is cut off while streaming', async () => {
    await failsWith(download(`${server.base}/endless`, options), 'too-large', /: larger than the 1048576-byte cap/);
  });
  it('a sized body over the cap is refused', async () => {
    await failsWith(download(`${server.base}/files/big.bin`, options), 'too-large', /cap/);
  });
  it('refused connections are a network error, the address in the detail only', async () => {
    const closed = await startVideoServer({});
    await closed.close();
    const port = new URL(closed.base).port;
    const error = await failsWith(
      download(`${closed.base}/x.mp4`, options),
      'network',
      new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${port}$`),
    );
    assert.ok(!error.message.includes(port));
  });
  it('non-http schemes and malformed URLs are invalid input', async () => {
    await rejectsWith(download('file:///etc/passwd', options), 'invalid-input', /http\(s\)/);
    await rejectsWith(download('http://[::1', options), 'invalid-input', /not a valid URL/);
  });
  it('an aborted download (timeout, cap) leaves no connection open', async () => {
    const own = await startVideoServer({});
    try {
      await failsWith(download(`${own.base}/endless`, options), 'too-large', /cap/);
      await failsWith(download(`${own.base}/slow`, { ...options, timeoutMs: 300 }), 'timeout', /timed out/);
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
      await failsWith(download(url, { ...options, timeoutMs: 300 }), 'timeout', /timed out after 0.3 s/);
      await noConnectionsLeft({ openConnections: () => open.size });
    } finally {
      for (const socket of open) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
  it('the deadline (an abort) ends the download with its reason and closes the connection', async () => {
    const own = await startVideoServer({});
    try {
      const deadline = new AbortController();
      const reason = new Error('deadline reached');
      let received = 0;
      const pending = fetchVideo(
        `${own.base}/slow`,
        { ...options, timeoutMs: 20_000 },
        async (chunk) => {
          received += chunk.length;
          deadline.abort(reason); // after the first bytes: mid-body
        },
        deadline.signal,
      );
      await assert.rejects(pending, (error) => error === reason);
      assert.equal(received, 100);
      await noConnectionsLeft(own);
    } finally {
      await own.close();
    }
  });
});

describe('what the caller learns of a failure: the class only', () => {
  let origin: http.Server;
  let base: string;
  before(async () => {
    origin = http.createServer((request, response) => {
      const status = Number(new URL(request.url ?? '/', 'http://x').pathname.slice(1));
      response.writeHead(status >= 200 && status < 600 ? status : 404).end('not a video');
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`;
  });
  after(async () => {
    origin.closeAllConnections();
    await new Promise((resolve) => origin.close(resolve));
  });

  it('every HTTP status upstream (404, 500, 503, 401) is the same HTTP error; the detail says which', async () => {
    for (const [status, text] of [
      [404, 'Not Found'],
      [500, 'Internal Server Error'],
      [503, 'Service Unavailable'],
      [401, 'Unauthorized'],
    ] as const) {
      await failsWith(download(`${base}/${status}`), 'http', new RegExp(`^GET ${reEscape(base)}/${status}: HTTP ${status} ${text}$`));
    }
  });
  it("the detail shows the URL without its query or fragment (a presigned URL's signature)", async () => {
    const error = await failsWith(download(`${base}/500?X-Amz-Signature=s3cretsig&token=t0ken#part`), 'http', /HTTP 500/);
    assert.equal(error.detail, `GET ${base}/500: HTTP 500 Internal Server Error`);
  });
  it('a refused port and a timeout are told apart by class only, never by address or port', async () => {
    const closed = await startVideoServer({});
    await closed.close();
    const refusedError = await failsWith(download(`${closed.base}/v.mp4`), 'network', /ECONNREFUSED/);
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.resume(); // reads the request and never answers
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/v.mp4`;
      const timeoutError = await failsWith(download(url, { ...options, timeoutMs: 300 }), 'timeout', /timed out after 0\.3 s/);
      assert.deepEqual([refusedError.message, timeoutError.message], [PUBLIC.network, PUBLIC.timeout]);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('credentials in the URL never reach a message', () => {
  let server: TestVideoServer;
  before(async () => {
    server = await startVideoServer({ 'small.mp4': randomBytes(1024) });
  });
  after(() => server.close());

  const secretFree = (error: MinerError) => {
    for (const secret of ['s3cret', 'hunter2', 'alice', 'admin']) {
      assert.ok(!error.message.includes(secret), error.message);
      assert.ok(!error.detail?.includes(secret), error.detail);
    }
  };

  it('a URL with user:password is refused without the secret', async () => {
    const port = new URL(server.base).port;
    secretFree(
      await rejectsWith(download(`http://alice:s3cret@127.0.0.1:${port}/files/small.mp4`, options), 'invalid-input', /credentials/),
    );
    secretFree(await rejectsWith(download(`http://alice@127.0.0.1:${port}/files/small.mp4`, options), 'invalid-input', /127\.0\.0\.1/));
    assert.equal(server.hits.size, 0, 'nothing was requested');
  });
  it('nor when the URL does not parse', async () => {
    secretFree(await rejectsWith(download('http://alice:s3cret@[::1/x.mp4', options), 'invalid-input', /not a valid URL/));
  });
  it('nor when a redirect points at one', async () => {
    const target = `http://admin:hunter2@${new URL(server.base).host}/files/small.mp4`;
    const redirector = http.createServer((_request, response) => void response.writeHead(302, { location: target }).end());
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    try {
      const start = `http://127.0.0.1:${(redirector.address() as net.AddressInfo).port}/video.mp4`;
      secretFree(await failsWith(download(start, options), 'policy', /: redirect to a URL with credentials refused$/));
    } finally {
      redirector.closeAllConnections();
      await new Promise((resolve) => redirector.close(resolve));
    }
  });
});

describe('address policy at every hop (DOWNLOAD_ALLOW_PRIVATE=false)', () => {
  const strict: DownloadOptions = { ...options, allowPrivate: false };
  const refusal = (host: string) =>
    new RegExp(
      `^video_url host ${host.replace(/[.[\]]/g, '\\$&')} resolves to a loopback address, which is refused \\(DOWNLOAD_ALLOW_PRIVATE=true allows it for local testing\\)$`,
    );
  /** The log's cause when a host *name* resolved to loopback: the caller hears "network error", as for a name not found. */
  const nameRefusal = (host: string) =>
    new RegExp(
      `: ${reEscape(host)} resolves to a loopback address \\([^)]+\\), which is refused \\(DOWNLOAD_ALLOW_PRIVATE=true allows it for local testing\\)$`,
    );
  /** The log's cause when a redirect named a loopback literal: the caller hears "refused by policy". */
  const redirectRefusal = (host: string) =>
    new RegExp(
      `: redirect to host ${reEscape(host)} resolves to a loopback address, which is refused \\(DOWNLOAD_ALLOW_PRIVATE=true allows it for local testing\\)$`,
    );
  /** A loopback server that counts the connections made to it. */
  async function countingServer(host: string, handler?: http.RequestListener) {
    const server = http.createServer(handler ?? ((_request, response) => response.end('video')));
    const counter = { server, connections: 0, port: 0 };
    server.on('connection', () => counter.connections++);
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    counter.port = (server.address() as net.AddressInfo).port;
    return counter;
  }
  let v4: Awaited<ReturnType<typeof countingServer>>;
  let v6: Awaited<ReturnType<typeof countingServer>>;
  let redirector: Awaited<ReturnType<typeof countingServer>>;
  const spellings = () => [
    { url: `http://127.0.0.1:${v4.port}/v.mp4`, host: '127.0.0.1' },
    { url: `http://127.1:${v4.port}/v.mp4`, host: '127.0.0.1' },
    { url: `http://0x7f000001:${v4.port}/v.mp4`, host: '127.0.0.1' },
    { url: `http://localhost:${v4.port}/v.mp4`, host: 'localhost', name: true },
    { url: `http://[::1]:${v6.port}/v.mp4`, host: '::1' },
    { url: `http://[::ffff:127.0.0.1]:${v4.port}/v.mp4`, host: '::ffff:7f00:1' },
  ];
  before(async () => {
    v4 = await countingServer('127.0.0.1');
    v6 = await countingServer('::1');
    redirector = await countingServer('127.0.0.1', (request, response) => {
      const to = new URL(request.url ?? '/', 'http://x').searchParams.get('to') ?? '/';
      response.writeHead(302, { location: to }).end();
    });
  });
  after(async () => {
    for (const { server } of [v4, v6, redirector]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('refuses every loopback literal as invalid input and a name resolving to loopback as a network error, without connecting', async () => {
    for (const { url, host, name } of spellings()) {
      if (name) await failsWith(download(url, strict), 'network', nameRefusal(host));
      else await rejectsWith(download(url, strict), 'invalid-input', refusal(host));
    }
    await sleep(20);
    assert.equal(v4.connections + v6.connections, 0, 'a refused download reached its server');
  });
  it('refuses a redirect to each of them at the next hop: by policy for a literal, a network error for a name', async () => {
    // The test trusts its own redirector (hop 0); the hop it redirects to is checked as usual.
    const firstHopTrusted: DownloadOptions = { ...options, allowPrivate: (hop) => hop === 0 };
    for (const { url, host, name } of spellings()) {
      const start = `http://127.0.0.1:${redirector.port}/r?to=${encodeURIComponent(url)}`;
      // Each hop as the log shows it: parsed (127.1 is 127.0.0.1), the query (here the redirect target) removed.
      const chain = `^GET http://127\\.0\\.0\\.1:${redirector.port}/r -> ${reEscape(new URL(url).href)}:`;
      const error = await failsWith(
        download(start, firstHopTrusted),
        name ? 'network' : 'policy',
        name ? nameRefusal(host) : redirectRefusal(host),
      );
      assert.match(error.detail!, new RegExp(chain), 'the detail names the redirect chain');
    }
    await sleep(20);
    assert.equal(redirector.connections > 0, true, 'the redirector was not reached: the test proves nothing');
    assert.equal(v4.connections + v6.connections, 0, 'a redirect target was reached');
  });
  it('with the policy off the same servers answer (the refusal is the policy, not an unreachable server)', async () => {
    for (const { url } of spellings()) assert.equal((await download(url)).toString(), 'video');
    assert.ok(v4.connections > 0 && v6.connections > 0);
  });
  it('names the reason with the right article, and checks literals before any request', () => {
    assert.throws(
      () => checkVideoUrl('http://0.0.0.0/v.mp4', false),
      (e: unknown) =>
        e instanceof MinerError && e.kind === 'invalid-input' && /host 0\.0\.0\.0 resolves to an unspecified address/.test(e.message),
    );
    assert.throws(() => checkVideoUrl('http://[::1]/v.mp4', false), /host ::1 resolves to a loopback address/);
    assert.equal(checkVideoUrl('http://[::1]/v.mp4', true).hostname, '[::1]');
    assert.equal(checkVideoUrl('https://video.example/v.mp4', false).hostname, 'video.example'); // names: checked once resolved
  });
});
