/**
 * `just deploy` as one TypeScript process (tasks/deploy.ts), without a Docker engine: the steps run in-process
 * under one lock, and a step that fails mid-deploy is named exactly in the summary. The docker CLI is real; its
 * daemon is a loopback port that accepts and never answers (a hung engine), or nothing at all (an engine that is
 * down), so the push step waits or fails where the test chooses. test/deploy.test.ts runs the whole pipeline on
 * a real engine, registry and chain.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../lib/core/config.ts';
import { lockHome } from '../lib/deploy/engine.ts';
import { readRun } from '../lib/deploy/lock.ts';
import { writeState } from '../lib/deploy/state.ts';
import { freePort } from '../scripts/miner-process.ts';
import { main as deploy } from '../tasks/deploy.ts';

const IMAGE_ID = 'sha256:5d41402abc4b2a76b9719d911017c592ae2e3fd4b5b52c0f3b9c3bd5c0d1e2f3';

let work: string;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'deploy-pipeline-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A loopback port that accepts connections and never answers, until `close()` drops them all. */
async function silentDaemon(): Promise<{ port: number; connected: Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let connected!: () => void;
  const first = new Promise<void>((resolve) => {
    connected = resolve;
  });
  const server = net.createServer((socket) => {
    sockets.add(socket);
    connected();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connected: first,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A miner's settings with its own state folder, the docker CLI pointed at `dockerPort` on loopback. */
async function deployEnv(name: string, dockerPort: number, extra: Record<string, string> = {}) {
  const stateDir = path.join(work, name, 'state');
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    DOTENV_DISABLE: '1',
    DOCKER_HOST: `tcp://127.0.0.1:${dockerPort}`,
    DOCKER_CONFIG: path.join(work, name, 'docker-config'),
    DEPLOY_STATE_DIR: stateDir,
    DOCKERHUB_USERNAME: 'alice',
    DOCKERHUB_TOKEN: 'dckr_pat_pipeline_0000',
    DOCKERHUB_API_URL: `http://127.0.0.1:${await freePort()}`,
    ...extra,
  };
  // What tasks/build.ts records: push starts from it (from=push), asking the engine for this image first.
  const reference = 'docker.io/alice/pt-solution:v1';
  await writeState(stateDir, {
    repo: 'alice/pt-solution',
    tag: 'v1',
    build: { imageId: IMAGE_ID, reference, at: '2026-01-01T00:00:00.000Z' },
  });
  // The deploy lock of this engine and the default container (lib/deploy/engine.ts lockHome).
  const lock = lockHome({ stateDir, containerName: 'score-miner' });
  return { env, stateDir, lock, reference };
}

function sink(): { lines: string[]; write: (line: string) => void; text: () => string } {
  const lines: string[] = [];
  return { lines, write: (line) => lines.push(line), text: () => lines.join('\n') };
}

/** The summary table's row for a step, cells joined by " | ". */
function row(output: string, step: string): string {
  const line = output.split('\n').find((l) => new RegExp(`^${step}\\s{2,}`).test(l));
  assert.ok(line, `no summary row for ${step} in:\n${output}`);
  return line.replace(/\s{2,}/g, ' | ');
}

const WORDS = ['tag=v1', 'from=push', 'share=false', 'commit=false', 'start=false'];

test('a push that fails mid-deploy: the summary names push, the lock is released, exit 1; meanwhile a second deploy is refused', async () => {
  const daemon = await silentDaemon();
  const { env, lock, reference } = await deployEnv('mid-deploy', daemon.port);
  const first = { out: sink(), err: sink() };
  const running = deploy(WORDS, { env, out: first.out.write, err: first.err.write });
  try {
    // push is asking the (hung) engine for the built image: the deploy holds the lock, as this process
    await daemon.connected;
    const held = readRun(lock);
    assert.deepEqual(
      [held?.owner.pid, held?.owner.host, held?.owner.command, held?.words],
      [process.pid, os.hostname(), `just deploy ${WORDS.join(' ')}`, WORDS],
    );
    assert.equal(first.out.lines.at(-1), `==> push: push docker.io/alice/pt-solution:v1`);

    const second = { out: sink(), err: sink() };
    assert.equal(await deploy(['tag=v2'], { env, out: second.out.write, err: second.err.write }), 1);
    assert.deepEqual(second.err.lines, [
      `error: another deploy holds the lock: pid ${process.pid} on ${os.hostname()} (\`just deploy ${WORDS.join(' ')}\`) since ${held?.owner.since}\n` +
        `  next: wait for it to finish; if it is gone, remove ${path.join(lock, 'lock')} and rerun`,
    ]);
    assert.deepEqual(second.out.lines, [], 'a refused deploy prints no summary');
    assert.equal(readRun(lock)?.owner.id, held?.owner.id, 'the refused deploy left the lock alone');
  } finally {
    await daemon.close();
  }

  assert.equal(await running, 1);
  const output = first.out.text();
  const cause = `the image ${reference} recorded by tasks/build.ts is not in the local Docker engine any more`;
  assert.match(row(output, 'build'), /^build \| skipped \| before from=push \| 0\.0 s$/);
  assert.match(row(output, 'push'), new RegExp(`^push \\| failed \\| ${cause.replace(/[.:/]/g, '\\$&')} \\| \\d+\\.\\d s$`));
  assert.equal(row(output, 'share'), 'share | skipped | share=false | 0.0 s');
  assert.equal(row(output, 'commit'), 'commit | skipped | commit=false | 0.0 s');
  assert.equal(row(output, 'start'), 'start | skipped | start=false | 0.0 s');
  assert.deepEqual(first.out.text().split('\n').slice(-2), [
    'deploy failed at push; after fixing the cause, rerun from there:',
    '  just deploy tag=v1 share=false commit=false start=false from=push',
  ]);
  assert.deepEqual(first.err.lines, [`error: ${cause}\n  next: run tasks/build.ts --tag v1 first`]);
  // the lock is gone; what the run recorded is kept
  assert.ok(!existsSync(path.join(lock, 'lock')));
  const last = JSON.parse(readFileSync(path.join(lock, 'last-run.json'), 'utf8')) as { records: { step: string; result: string }[] };
  assert.deepEqual(
    last.records.map((record) => [record.step, record.result]),
    [
      ['build', 'skipped'],
      ['share', 'skipped'],
      ['commit', 'skipped'],
      ['start', 'skipped'],
      ['push', 'failed'],
    ],
  );
});

test('a step that fails before it records (a missing setting): the summary names it with the cause it printed', async () => {
  const { env, lock } = await deployEnv('missing-setting', await freePort(), { DOCKERHUB_TOKEN: '' });
  const out = sink();
  const err = sink();
  assert.equal(await deploy(WORDS, { env, out: out.write, err: err.write }), 1);
  assert.deepEqual(err.lines, [
    'error: DOCKERHUB_TOKEN is not set\n  next: create a Docker Hub personal access token (Read & Write) and set DOCKERHUB_TOKEN in .env',
  ]);
  assert.match(row(out.text(), 'push'), /^push \| failed \| DOCKERHUB_TOKEN is not set \| \d+\.\d s$/);
  assert.equal(out.text().split('\n').at(-1), '  just deploy tag=v1 share=false commit=false start=false from=push');
  assert.ok(!existsSync(path.join(lock, 'lock')));
});

test('just deploy: the recipe runs tasks/deploy.ts; a push whose engine is down fails at push, exit 1, the lock released', async () => {
  const { env, lock } = await deployEnv('recipe', await freePort());
  const run = await execa('just', ['deploy', ...WORDS], {
    cwd: PROJECT_ROOT,
    env,
    extendEnv: false,
    reject: false,
    all: true,
    timeout: 120_000,
  });
  assert.equal(run.exitCode, 1, run.all);
  assert.match(
    row(run.stdout, 'push'),
    /^push \| failed \| the image docker\.io\/alice\/pt-solution:v1 recorded by tasks\/build\.ts is not/,
  );
  assert.match(run.stdout, /^ {2}just deploy tag=v1 share=false commit=false start=false from=push$/m);
  assert.ok(!existsSync(path.join(lock, 'lock')));
  assert.ok(!/DEPLOY_RUN|node tasks\/deploy\.ts/.test(run.all ?? ''), run.all);

  const help = await execa('just', ['deploy', 'tag=v1', '--help'], { cwd: PROJECT_ROOT, env, extendEnv: false, reject: false });
  assert.equal(help.exitCode, 0);
  assert.match(help.stdout, /^usage: just deploy tag=TAG \[env=NAME\] \[push=false\] \[rehearse=false\]/);
  assert.ok(!existsSync(path.join(lock, 'lock')));
});

test('a deploy stopped by a signal prints the summary naming the step it was in, releases the lock and ends by that signal', async () => {
  const daemon = await silentDaemon();
  const { env, lock } = await deployEnv('signal', daemon.port);
  try {
    const child = execa(process.execPath, ['tasks/deploy.ts', ...WORDS], {
      cwd: PROJECT_ROOT,
      env,
      extendEnv: false,
      reject: false,
      all: true,
    });
    await daemon.connected;
    assert.equal(readRun(lock)?.owner.pid, child.pid);
    child.kill('SIGTERM');
    const result = await child;
    assert.equal(result.signal, 'SIGTERM', result.all);
    assert.match(row(result.stdout, 'push'), /^push \| failed \| interrupted \(SIGTERM\) \| \d+\.\d s$/);
    assert.match(result.stdout, /^ {2}just deploy tag=v1 share=false commit=false start=false from=push$/m);
    assert.ok(!existsSync(path.join(lock, 'lock')));
  } finally {
    await daemon.close();
  }
});
