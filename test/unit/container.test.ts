/**
 * The docker commands of a container's lifecycle (exact argv, no daemon), the state line they read back, and
 * the readiness polling shared by tasks/start.ts, tasks/spotcheck.ts and scripts/miner-process.ts, against a
 * real HTTP server on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, test } from 'node:test';
import { answers200, freePort, pollUntilServing, portIsFree } from '../../lib/deploy/container.ts';
import {
  containerLogsCommand,
  containerStateCommand,
  imageSizeCommand,
  parseContainerState,
  pullCommand,
  removeContainerCommand,
} from '../../lib/deploy/docker.ts';

const DIGEST_REF = `127.0.0.1:5000/alice/pt-solution@sha256:${'a'.repeat(64)}`;

test('pullCommand: docker pull REFERENCE (by digest as given)', () => {
  assert.deepEqual(pullCommand(DIGEST_REF), ['pull', DIGEST_REF]);
});

test('imageSizeCommand: docker image inspect --format {{.Size}} REFERENCE', () => {
  assert.deepEqual(imageSizeCommand(DIGEST_REF), ['image', 'inspect', '--format', '{{.Size}}', DIGEST_REF]);
});

test('removeContainerCommand: docker rm -f NAME', () => {
  assert.deepEqual(removeContainerCommand('score-miner'), ['rm', '-f', 'score-miner']);
});

test('containerLogsCommand: docker logs --tail N NAME', () => {
  assert.deepEqual(containerLogsCommand('score-miner-spotcheck-42', 20), ['logs', '--tail', '20', 'score-miner-spotcheck-42']);
  assert.deepEqual(containerLogsCommand('score-miner', 30), ['logs', '--tail', '30', 'score-miner']);
});

test('containerStateCommand: docker container inspect with one space-separated line of id, image, running, exit code, restarts, mounts', () => {
  assert.deepEqual(containerStateCommand('score-miner'), [
    'container',
    'inspect',
    '--format',
    '{{.Id}} {{.Image}} {{.State.Running}} {{.State.ExitCode}} {{.RestartCount}} {{len .Mounts}}',
    'score-miner',
  ]);
});

test('parseContainerState: the line containerStateCommand prints -> its fields', () => {
  assert.deepEqual(parseContainerState(`abc123 sha256:${'f'.repeat(64)} true 0 0 0\n`), {
    id: 'abc123',
    image: `sha256:${'f'.repeat(64)}`,
    running: true,
    exitCode: 0,
    restarts: 0,
    mounts: 0,
  });
  assert.deepEqual(parseContainerState('def456 sha256:1 false 137 3 1'), {
    id: 'def456',
    image: 'sha256:1',
    running: false,
    exitCode: 137,
    restarts: 3,
    mounts: 1,
  });
});

test('parseContainerState: anything else (empty, missing fields, not a boolean, not a number) -> undefined', () => {
  assert.equal(parseContainerState(''), undefined);
  assert.equal(parseContainerState('abc sha256:1 true 0 0'), undefined);
  assert.equal(parseContainerState('abc sha256:1 yes 0 0 0'), undefined);
  assert.equal(parseContainerState('abc sha256:1 true x 0 0'), undefined);
  assert.equal(parseContainerState('Error: No such container: score-miner'), undefined);
});

/** A loopback server: /docs answers 503 for the first `notReadyFor` requests, then 200; /health as told. */
async function server(options: { notReadyFor: number; health?: number }) {
  let docs = 0;
  const s = http.createServer((request, response) => {
    if (request.url === '/docs') {
      docs++;
      response.writeHead(docs > options.notReadyFor ? 200 : 503).end('docs');
    } else if (request.url === '/health') response.writeHead(options.health ?? 200).end('{}');
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  servers.push(s);
  const { port } = s.address() as net.AddressInfo;
  return { base: `http://127.0.0.1:${port}`, docsRequests: () => docs };
}
const servers: http.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

test('answers200: 200 -> true; 503, 404 and a closed port -> false', async () => {
  const { base } = await server({ notReadyFor: 1 });
  assert.equal(await answers200(`${base}/docs`), false);
  assert.equal(await answers200(`${base}/docs`), true);
  assert.equal(await answers200(`${base}/nothing`), false);
  assert.equal(await answers200(`http://127.0.0.1:${await freePort()}/docs`, 1000), false);
});

test('pollUntilServing: ready once every URL answers 200, after polling the ones that did not', async () => {
  const { base, docsRequests } = await server({ notReadyFor: 2 });
  const outcome = await pollUntilServing({ urls: [`${base}/docs`, `${base}/health`], timeoutMs: 10_000, intervalMs: 10 });
  assert.equal(outcome.ready, true);
  assert.ok(outcome.ready && outcome.ms > 0);
  assert.equal(docsRequests(), 3);
});

test('pollUntilServing: what `stopped` reports ends the wait at once, with that value', async () => {
  const { base, docsRequests } = await server({ notReadyFor: 1000 });
  let asked = 0;
  const outcome = await pollUntilServing({
    urls: [`${base}/docs`],
    timeoutMs: 10_000,
    intervalMs: 10,
    stopped: async () => (++asked === 2 ? { exitCode: 3 } : undefined),
  });
  assert.deepEqual(outcome, { ready: false, stopped: { exitCode: 3 } });
  assert.equal(docsRequests(), 2);
});

test('pollUntilServing: a URL that never answers 200 (here /health) -> not ready, nothing stopped, once the time is up', async () => {
  const { base } = await server({ notReadyFor: 0, health: 500 });
  const outcome = await pollUntilServing({ urls: [`${base}/docs`, `${base}/health`], timeoutMs: 200, intervalMs: 20 });
  assert.deepEqual(outcome, { ready: false });
});

test('freePort / portIsFree: a port a server listens on is not free; a fresh free port is', async () => {
  const { base } = await server({ notReadyFor: 0 });
  const taken = Number(new URL(base).port);
  assert.equal(await portIsFree(taken), false);
  const port = await freePort();
  assert.ok(port > 0 && port < 65536);
  assert.equal(await portIsFree(port), true);
});
