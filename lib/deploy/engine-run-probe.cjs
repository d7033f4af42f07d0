// Runs INSIDE the rehearsed miner container, passed with `docker exec NAME node -e <this file's text> MODE ...`
// by lib/deploy/engine-run.ts: the image does not contain it, and neither side can reach the other's ports (the
// container runs with --network none on a possibly remote engine), so both requests are made from within.
// Plain CommonJS for any Node >= 18, no dependencies.
//
//   ready REMAINING_MS URL
//     GET URL every 250 ms until it answers 200 or REMAINING_MS pass. Prints `ready` (exit 0) or `not-ready`
//     (exit 3); any other ending is docker's or the container's (the caller asks the engine which).
//   challenge CHALLENGE_ID TIMEOUT_S MINER_URL
//     Reads the clip from stdin, serves it on 127.0.0.1:<ephemeral> as the miner's downloader needs it (GET,
//     Content-Length, `Accept-Ranges: bytes` and single Range requests answered 206 with an exact Content-Range,
//     HEAD too), POSTs the unsigned challenge to MINER_URL/challenge within TIMEOUT_S, and prints one JSON line:
//     {"status":N,"text":"...","wall_s":S}; when no reply came, status 0 with "error" and "timed_out".
'use strict';
const http = require('node:http');

const [mode, ...args] = process.argv.slice(1);

function say(line, code) {
  process.stdout.write(`${line}\n`, () => process.exit(code));
}

async function ready(remainingMs, url) {
  const until = Date.now() + Number(remainingMs);
  for (;;) {
    try {
      const left = Math.max(100, Math.min(3000, until - Date.now()));
      const response = await fetch(url, { signal: AbortSignal.timeout(left) });
      await response.arrayBuffer();
      if (response.status === 200) return say('ready', 0);
    } catch {
      // not listening yet, or too slow: asked again
    }
    if (Date.now() >= until) return say('not-ready', 3);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** `bytes=a-b` or `bytes=a-` of a `total`-byte file -> [start, end] inclusive; null when not satisfiable. */
function byteRange(header, total) {
  const match = /^bytes=(\d+)-(\d*)$/.exec(header.trim());
  if (!match) return null;
  const start = Number(match[1]);
  const end = match[2] === '' ? total - 1 : Math.min(Number(match[2]), total - 1);
  return start <= end ? [start, end] : null;
}

function serve(video) {
  const server = http.createServer((request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return void response.writeHead(405, { allow: 'GET, HEAD' }).end();
    if (request.url !== '/clip.mp4') return void response.writeHead(404).end();
    const total = video.length;
    const asked = request.headers.range;
    const range = asked === undefined ? [0, total - 1] : byteRange(asked, total);
    if (!range) return void response.writeHead(416, { 'content-range': `bytes */${total}` }).end();
    const [start, end] = range;
    response.writeHead(asked === undefined ? 200 : 206, {
      'content-type': 'video/mp4',
      'content-length': end - start + 1,
      'accept-ranges': 'bytes',
      ...(asked === undefined ? {} : { 'content-range': `bytes ${start}-${end}/${total}` }),
    });
    response.end(request.method === 'HEAD' ? undefined : video.subarray(start, end + 1));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function challenge(challengeId, timeoutS, minerUrl) {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const server = await serve(Buffer.concat(chunks));
  const videoUrl = `http://127.0.0.1:${server.address().port}/clip.mp4`;
  // Compact JSON, as Score's validator sends it.
  const body = JSON.stringify({ challenge_id: challengeId, video_url: videoUrl, frames: null });
  const started = performance.now();
  let line;
  try {
    const response = await fetch(`${minerUrl}/challenge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(Number(timeoutS) * 1000),
    });
    const text = await response.text();
    line = { status: response.status, text, wall_s: (performance.now() - started) / 1000 };
  } catch (error) {
    const wall_s = (performance.now() - started) / 1000;
    const timed_out = Boolean(error && error.name === 'TimeoutError');
    const message = error?.cause?.message || error?.message || String(error);
    line = { status: 0, text: '', wall_s, error: message, timed_out };
  }
  server.closeAllConnections();
  server.close();
  say(JSON.stringify(line), 0);
}

const modes = { ready, challenge };
if (!modes[mode]) say(`unknown mode ${JSON.stringify(mode)}`, 2);
else
  modes[mode](...args).catch((error) => {
    say(JSON.stringify({ status: 0, text: '', wall_s: 0, error: `the probe failed: ${error?.message}`, timed_out: false }), 1);
  });
