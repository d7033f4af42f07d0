/**
 * The miner image on a real Docker engine: built from Dockerfile.miner on a local Node 24 base, it runs
 * read-only as an arbitrary non-root uid (the way Score's spot check and `docker run --read-only` would),
 * answers /docs and a real /challenge with the same predictions as the server run here, reports healthy,
 * stops cleanly on SIGTERM, and carries only the server's dependencies and no secrets. Its ffmpeg is Debian's
 * (5.1, from the base's apt), and the bundled 2018 build is gone.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { loadConfig, PROJECT_ROOT } from '../lib/core/config.ts';
import { type FileServer, serveFiles } from '../lib/core/fileserver.ts';
import { glibcVersion, hugePagesStatus, MALLOC_HUGE_PAGES, transparentHugePages } from '../lib/core/memory.ts';
import { freePort } from '../scripts/miner-process.ts';
import { startMiner } from '../server/app.ts';
import { type Dockerd, importNodeBase, startDockerd } from './support/docker.ts';
import { flashAndCutClip } from './support/media.ts';

const IMAGE = 'score-miner-test:image';
let dockerd: Dockerd;
let work: string;
let files: FileServer;
let clipUrl: string;

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function challenge(baseUrl: string): Promise<{ status: number; body: { predictions: unknown[] } }> {
  const response = await fetch(`${baseUrl}/challenge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ challenge_id: 'image-1', video_url: clipUrl }),
  });
  return { status: response.status, body: (await response.json()) as { predictions: unknown[] } };
}

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'score-miner-image-'));
  const clip = await flashAndCutClip('clip.mp4');
  files = await serveFiles([clip]);
  clipUrl = files.urlFor(clip);
  dockerd = await startDockerd();
  const base = await importNodeBase(dockerd);
  // The build context: the project's files as a clone has them, plus the secrets a miner keeps beside them
  // (.env with a Hub token, a wallet folder) that .dockerignore must keep out of the image.
  const context = path.join(work, 'context');
  await mkdir(context);
  await execa('sh', ['-c', 'git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - | tar -C "$0" -xf -', context], {
    cwd: PROJECT_ROOT,
  });
  await writeFile(path.join(context, '.env'), 'DOCKERHUB_TOKEN=dckr_pat_planted_secret\n');
  await mkdir(path.join(context, 'wallets/default/hotkeys'), { recursive: true });
  await writeFile(path.join(context, 'wallets/default/hotkeys/default'), '{"secretPhrase": "planted"}');
  // --network host: RUN npm ci reaches the npm registry through the host (the daemon has no bridge).
  await dockerd.docker(
    ['build', '--network', 'host', '-f', 'Dockerfile.miner', '--build-arg', `BASE_IMAGE=${base}`, '-t', IMAGE, context],
    {
      timeoutMs: 900_000,
    },
  );
});

after(async () => {
  await files?.close();
  await dockerd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('the image runs as non-root node server/main.ts, with a /docs health check', async () => {
  const config = JSON.parse(await dockerd.docker(['image', 'inspect', IMAGE, '--format', '{{json .Config}}'])) as {
    User: string;
    Cmd: string[];
    Healthcheck: { Test: string[] };
    Env: string[];
  };
  assert.equal(config.User, '1000:1000');
  assert.deepEqual(config.Cmd, ['node', 'server/main.ts']);
  assert.equal(config.Healthcheck.Test[0], 'CMD');
  assert.match(config.Healthcheck.Test.join(' '), /\/docs/);
  assert.ok(config.Env.includes(`GLIBC_TUNABLES=${MALLOC_HUGE_PAGES}`), config.Env.join(' '));
});

test('the image holds only the server: no dev tools, no .env, no wallet, no npm logs or cache', async () => {
  const listing = await dockerd.docker([
    'run',
    '--rm',
    '--network',
    'none',
    IMAGE,
    'sh',
    '-c',
    // Packages may ship their own .env or tsconfig.json; outside node_modules there must be none.
    'ls /app; echo ---; ls /app/node_modules /app/node_modules/.bin; echo ---; ' +
      'find / -xdev -path /app/node_modules -prune -o \\( -name ".env*" -o -name wallets -o -name ".bittensor" -o -name tsconfig.json \\) -print 2>/dev/null; ' +
      'find / -xdev \\( -name _logs -o -name _cacache -o -path /root/.npm \\) -print 2>/dev/null; ' +
      'find /app -path /app/node_modules -prune -o -type f -exec grep -l planted {} + 2>/dev/null; true',
  ]);
  const [top, modules, found] = listing.split(/^---$/m);
  assert.deepEqual(top.trim().split('\n').sort(), ['lib', 'models', 'node_modules', 'package-lock.json', 'package.json', 'server']);
  for (const dev of ['tsx', 'zx', 'typescript', '@biomejs', '@acala-network', 'esbuild', 'rust-just', 'onnx-proto']) {
    assert.ok(!modules.split(/\s+/).includes(dev), `${dev} is in the image`);
  }
  assert.ok(modules.includes('onnxruntime-node') && modules.includes('undici'), modules);
  assert.equal(found.trim(), '', `unexpected files in the image: ${found}`);
});

test("the image's ffmpeg is Debian's 5.1, and the bundled 2018 build is not in it", async () => {
  const out = await dockerd.docker([
    'run',
    '--rm',
    '--network',
    'none',
    IMAGE,
    'sh',
    '-c',
    'command -v ffmpeg; ffmpeg -hide_banner -version | head -n 1; dpkg-query -W ffmpeg; ls /app/node_modules/@ffmpeg-installer 2>&1; true',
  ]);
  const [found, version, packaged, bundled] = out.trim().split('\n');
  assert.equal(found, '/usr/bin/ffmpeg');
  assert.match(version, /^ffmpeg version 5\.1\.\d+-\d+\+deb12u\d+ /);
  assert.equal(packaged, `ffmpeg\t7:${version.split(' ')[2]}`, "the ffmpeg on PATH is Debian's package (epoch 7)");
  assert.match(bundled, /No such file or directory/);
});

test('read-only, as an arbitrary uid: answers /docs and /challenge like the server here, turns healthy, stops with 0', async () => {
  // The clip is served on loopback: both miners must be allowed to fetch from there.
  const local = await startMiner({ ...loadConfig({ MINER_PORT: '0', MINER_HOST: '127.0.0.1', DOWNLOAD_ALLOW_PRIVATE: 'true' }) });
  let expected: { status: number; body: { predictions: unknown[] } };
  try {
    expected = await challenge(local.url);
  } finally {
    await local.close();
  }
  assert.equal(expected.status, 200);
  assert.deepEqual(
    (expected.body.predictions as { frame: number; action: string }[]).map((p) => `${p.action}@${p.frame}`),
    ['goal@75', 'ball_out_of_play@175'],
  );

  const port = await freePort();
  const id = (
    await dockerd.docker([
      'run',
      '-d',
      '--read-only',
      '--tmpfs',
      '/tmp',
      '--user',
      '4242:4242',
      '--network',
      'host',
      '--health-interval',
      '1s',
      '--health-start-period',
      '1s',
      '-e',
      `MINER_PORT=${port}`,
      '-e',
      'MINER_HOST=127.0.0.1',
      '-e',
      'VERIFY=false',
      '-e',
      'BLACKLIST=false',
      '-e',
      'DOWNLOAD_ALLOW_PRIVATE=true',
      IMAGE,
    ])
  ).trim();
  const minerUrl = `http://127.0.0.1:${port}`;
  try {
    await waitFor('/docs 200', 120_000, async () => ((await fetch(`${minerUrl}/docs`)).status === 200 ? true : undefined));
    const reply = await challenge(minerUrl);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body.predictions, expected.body.predictions);
    await waitFor('healthy', 60_000, async () => {
      const status = (await dockerd.docker(['inspect', id, '--format', '{{.State.Health.Status}}'])).trim();
      return status === 'healthy' ? status : undefined;
    });
    // The image runs malloc on huge pages (ENV GLIBC_TUNABLES) wherever this machine's kernel and glibc allow.
    const expectedPages = hugePagesStatus(MALLOC_HUGE_PAGES, transparentHugePages(), glibcVersion()).malloc_huge_pages;
    const logs = await dockerd.logs(id, 200);
    assert.match(logs, new RegExp(`memory malloc_huge_pages=${expectedPages} `));
    assert.match(
      logs,
      /INFO {2}ffmpeg path=\/usr\/bin\/ffmpeg source=PATH release=5\.1\.\d+ version="ffmpeg version 5\.1\.\d+-\d+\+deb12u\d+ /,
    );
    await dockerd.docker(['stop', '--time', '20', id]);
    const state = JSON.parse(await dockerd.docker(['inspect', id, '--format', '{{json .State}}'])) as { ExitCode: number };
    assert.equal(state.ExitCode, 0);
  } catch (error) {
    const logs = await dockerd.logs(id);
    throw new Error(`${(error as Error).message}\ncontainer log:\n${logs}`);
  } finally {
    await dockerd.docker(['rm', '-f', id]).catch(() => undefined);
  }
});
