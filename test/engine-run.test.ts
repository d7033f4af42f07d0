/**
 * lib/deploy/engine-run.ts on a real Docker engine, reached only through the docker CLI (DOCKER_HOST, as a
 * remote engine would be): tiny images built FROM the Node base with a stand-in server (not the miner) that
 * serves /docs and /challenge. Its challenge really downloads video_url from the script inside the container
 * (whole, then its last 100 bytes by Range) and answers predictions made of what it got (byte count, sha256,
 * whether the range matched, its environment and network interfaces), so a passing run proves the clip
 * arrived whole through docker exec's stdin. Variants: /docs never answers, the server exits at start, the
 * challenge answers 500, the reply names another challenge_id (its warning handler throws: the run throws
 * with a container up). After each case no container of the rehearsal is left.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { containerSlot } from '../lib/deploy/container.ts';
import { type EngineRunOptions, runInEngine } from '../lib/deploy/engine-run.ts';
import type { DockerRunOptions } from '../lib/deploy/run-docker.ts';
import { type Dockerd, importNodeBase, startDockerd } from './support/docker.ts';
import { flashAndCutClip } from './support/media.ts';

/** The stand-in miner: `node /app/server.js VARIANT`, on MINER_PORT at 127.0.0.1 (the container's own loopback). */
const SERVER_JS = `
const http = require('node:http');
const crypto = require('node:crypto');
const os = require('node:os');
const variant = process.argv[2];
if (variant === 'exits') {
  console.error('model missing: /app/models/default/model.onnx');
  process.exit(3);
}
const port = Number(process.env.MINER_PORT);
const harness = ['NETUID', 'WALLET_NAME', 'HOTKEY_NAME', 'VERIFY', 'BLACKLIST', 'SPOTCHECK_MODE', 'DOWNLOAD_ALLOW_PRIVATE', 'MINER_PORT']
  .map((name) => name + '=' + process.env[name])
  .join(' ');
console.log('stand-in ' + variant + ' listening on ' + port);
const json = (response, status, value) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
http
  .createServer(async (request, response) => {
    if (request.url === '/docs') {
      if (variant === 'never') return; // warming up forever: no answer at all
      return void response.writeHead(200, { 'content-type': 'text/html' }).end('<html>docs</html>');
    }
    if (request.method !== 'POST' || request.url !== '/challenge') return void response.writeHead(404).end();
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const body = JSON.parse(Buffer.concat(chunks).toString());
    if (variant === 'fails') return json(response, 500, { detail: 'inference failed: boom' });
    const whole = await fetch(body.video_url);
    const bytes = Buffer.from(await whole.arrayBuffer());
    const from = bytes.length - 100;
    const tail = await fetch(body.video_url, { headers: { range: 'bytes=' + from + '-' } });
    const tailBytes = Buffer.from(await tail.arrayBuffer());
    const rangeOk =
      whole.headers.get('accept-ranges') === 'bytes' &&
      tail.status === 206 &&
      tail.headers.get('content-range') === 'bytes ' + from + '-' + (bytes.length - 1) + '/' + bytes.length &&
      tailBytes.equals(bytes.subarray(from));
    console.log('fetched ' + bytes.length + ' bytes for ' + body.challenge_id);
    json(response, 200, {
      challenge_id: variant === 'stale' ? 'an-earlier-one' : body.challenge_id,
      processing_time: 0.01,
      predictions: [
        { frame: bytes.length, action: 'sha256:' + crypto.createHash('sha256').update(bytes).digest('hex') },
        { frame: rangeOk ? 1 : 0, action: 'range' },
        { frame: 0, action: harness },
        { frame: 0, action: 'interfaces ' + Object.keys(os.networkInterfaces()).sort().join(',') },
        { frame: 0, action: 'body ' + Object.keys(body).join(',') + ' frames=' + body.frames },
      ],
    });
  })
  .listen(port, '127.0.0.1');
`;

const VARIANTS = ['good', 'never', 'exits', 'fails', 'stale'] as const;
const LABEL = 'score-miner-spotcheck=1';

let dockerd: Dockerd;
let work: string;
let clip: string;
let run: DockerRunOptions;
const image = (variant: (typeof VARIANTS)[number]) => `local/engine-run-${variant}:test`;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'score-miner-engine-run-'));
  clip = await flashAndCutClip('engine-run-clip.mp4');
  dockerd = await startDockerd();
  const base = await importNodeBase(dockerd);
  const context = path.join(work, 'context');
  mkdirSync(context);
  writeFileSync(path.join(context, 'server.js'), SERVER_JS);
  for (const variant of VARIANTS) {
    // As Dockerfile.miner runs: uid 1000, node on PATH. No RUN step: nothing needs a network to build.
    const dockerfile = path.join(context, `Dockerfile.${variant}`);
    writeFileSync(
      dockerfile,
      [`FROM ${base}`, 'COPY server.js /app/server.js', 'USER 1000:1000', `CMD ["node", "/app/server.js", "${variant}"]`, ''].join('\n'),
    );
    await dockerd.docker(['build', '-q', '-f', dockerfile, '-t', image(variant), context]);
  }
  // Only the engine's own transport: the docker CLI here, DOCKER_HOST pointing at the engine.
  run = { env: { ...dockerd.env } };
});

/** Containers of the rehearsal left on the engine (running or not). */
async function leftovers(): Promise<string> {
  return (await dockerd.docker(['ps', '-a', '--filter', `label=${LABEL}`, '--format', '{{.Names}}'])).trim();
}

afterEach(async () => {
  assert.equal(await leftovers(), '', 'a container of the rehearsal was left on the engine');
});

after(async () => {
  const names = dockerd ? await leftovers().catch(() => '') : '';
  for (const name of names.split('\n').filter(Boolean)) await dockerd.docker(['rm', '-f', name]).catch(() => undefined);
  await dockerd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function options(variant: (typeof VARIANTS)[number], extra: Partial<EngineRunOptions> = {}): EngineRunOptions {
  return {
    label: 'run 1',
    reference: image(variant),
    slot: containerSlot(`score-miner-engine-run-${process.pid}`, run),
    clip,
    harness: { netuid: 44, walletName: 'cold', hotkeyName: 'hot' },
    readyTimeoutS: 60,
    challengeTimeoutS: 60,
    run,
    ...extra,
  };
}

test('a run on the engine: ready, the clip served inside the container arrives whole, the reply judged', async () => {
  const warnings: string[] = [];
  const outcome = await runInEngine(options('good', { warn: (line) => warnings.push(line) }));
  assert.equal(outcome.ok, true, `${outcome.cause}\n${outcome.logs}`);
  assert.equal(outcome.label, 'run 1');
  assert.equal(outcome.cause, undefined);
  assert.equal(outcome.logs, undefined);
  assert.ok(typeof outcome.readyS === 'number' && outcome.readyS > 0 && outcome.readyS < 60, `readyS ${outcome.readyS}`);
  const result = outcome.result;
  assert.ok(result);
  assert.equal(result.ok, true, result.cause);
  assert.equal(result.status, 200);
  assert.equal(result.scheme, 'none');
  assert.equal(result.url, 'http://127.0.0.1:8000');
  assert.match(result.challenge_id, /^[0-9a-f]{16}$/);
  assert.deepEqual(warnings, [], 'the reply names the challenge_id it was sent');
  const bytes = readFileSync(clip);
  assert.deepEqual(result.predictions, [
    { frame: bytes.length, action: `sha256:${createHash('sha256').update(bytes).digest('hex')}` },
    { frame: 1, action: 'range' },
    {
      frame: 0,
      action:
        'NETUID=44 WALLET_NAME=cold HOTKEY_NAME=hot VERIFY=false BLACKLIST=false SPOTCHECK_MODE=true DOWNLOAD_ALLOW_PRIVATE=true MINER_PORT=8000',
    },
    { frame: 0, action: 'interfaces lo' },
    { frame: 0, action: 'body challenge_id,video_url,frames frames=null' },
  ]);
});

test('GET /docs never answering: the wait ends at readyTimeoutS, the cause says so, the logs are kept', async () => {
  const outcome = await runInEngine(options('never', { readyTimeoutS: 3 }));
  assert.equal(outcome.ok, false);
  assert.equal(outcome.cause, "run 1: GET /docs did not answer 200 within 3 s (Score's harness gives up and fails the check)");
  assert.equal(outcome.readyS, undefined);
  assert.equal(outcome.result, undefined);
  assert.match(outcome.logs ?? '', /stand-in never listening on 8000/);
});

test('a server that exits at start: the container exited, with its code and last log lines', async () => {
  const outcome = await runInEngine(options('exits', { label: 'to start' }));
  assert.equal(outcome.ok, false);
  assert.equal(outcome.label, 'to start');
  assert.equal(outcome.cause, 'to start: the container exited (code 3) before GET /docs answered 200');
  assert.equal(outcome.readyS, undefined);
  assert.match(outcome.logs ?? '', /model missing: \/app\/models\/default\/model\.onnx/);
});

test('a challenge answered 500: the cause names the status and the detail; ready time and logs kept', async () => {
  const outcome = await runInEngine(options('fails', { label: 'run 2' }));
  assert.equal(outcome.ok, false);
  assert.equal(outcome.cause, 'run 2: miner answered 500: inference failed: boom');
  assert.ok(typeof outcome.readyS === 'number' && outcome.readyS > 0, `readyS ${outcome.readyS}`);
  assert.match(outcome.logs ?? '', /stand-in fails listening on 8000/);
});

test('an image the engine does not have (its registry refuses on loopback): docker run fails, nothing is left', async () => {
  const outcome = await runInEngine(options('good', { reference: '127.0.0.1:9/engine-run-absent:test' }));
  assert.equal(outcome.ok, false);
  assert.match(outcome.cause ?? '', /^docker run of the image failed: /);
  assert.match(outcome.cause ?? '', /127\.0\.0\.1:9/);
  assert.equal(outcome.readyS, undefined);
});

test('another challenge_id is a warning; a warning handler that throws makes the run throw, and the container still goes', async () => {
  const warnings: string[] = [];
  const warn = (line: string) => {
    warnings.push(line);
    throw new Error('stopped by the caller');
  };
  await assert.rejects(runInEngine(options('stale', { warn })), /stopped by the caller/);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^warning: reply challenge_id "an-earlier-one" differs from the request's "[0-9a-f]{16}"$/);
});
