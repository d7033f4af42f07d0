/**
 * `tasks/start.ts` and `just rollback` on a REMOTE Docker engine (DEPLOY_HOST=ssh://user@host:port), end to end on
 * real parts: a loopback sshd (test/support/sshd.ts) in front of the tests' dockerd, Docker's own ssh transport,
 * a real registry with token auth. The images are tiny ones (an inline node HTTP server that reports its tag,
 * with Dockerfile.miner's HEALTHCHECK), built and pushed here by the real tasks, then removed from the engine so
 * the start over ssh must log in and pull the pushed digest as a GPU box with no build of ours would.
 *
 * The sshd's sessions reach the same dockerd as the unix socket, so the container started "over there" is
 * inspected here through the socket. That the tasks did go over ssh (DEPLOY_HOST winning over the DOCKER_HOST
 * the environment also sets) shows in the `ssh` the docker CLI ran: a wrapper that logs each call.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from '../lib/deploy/container.ts';
import { type DeployState, readHistory, type StartHistory, stateFile } from '../lib/deploy/state.ts';
import { type Dockerd, dockerCli, importNodeBase, startDockerd } from './support/docker.ts';
import { type HubStandin, startHubStandin } from './support/hub-standin.ts';
import { startRegistry, type TestRegistry } from './support/registry.ts';
import { type LoopbackSshd, startSshd } from './support/sshd.ts';
import { runJust, runTask, type TaskRun } from './support/tasks.ts';

const TOKEN = 'dckr_pat_alice_remote_0123456789';
const CONTAINER = `score-miner-remote-test-${process.pid}`;
/** The tags built and pushed; `v3` is built only. */
const PUSHED = ['v1', 'v2', 'broken'] as const;

let dockerd: Dockerd;
let registry: TestRegistry;
let hub: HubStandin;
let sshd: LoopbackSshd;
let work: string;
let baseImage: string;
let minerPort: number;
/** Each `ssh` the docker CLI ran, one line of arguments per call. */
let sshCallLog: string;

/** The image's server: 200 on /docs and /health, its own tag (MINER_TAG, baked in) on /tag; listens on MINER_PORT. */
const SERVER = [
  'const tag = process.env.MINER_TAG, port = Number(process.env.MINER_PORT || 8000);',
  "require('node:http').createServer((q, s) => {",
  "  const body = q.url === '/tag' ? tag : q.url === '/docs' || q.url === '/health' ? 'ok' : undefined;",
  "  s.writeHead(body === undefined ? 404 : 200, { 'content-type': 'text/plain' }).end(body ?? 'not found');",
  "}).listen(port, () => console.log('test miner ' + tag + ' listening on ' + port));",
  "process.on('SIGTERM', () => process.exit(0));",
].join(' ');
/** Dockerfile.miner's check (GET /docs on 127.0.0.1:MINER_PORT); docker's own checks run hourly here, and no start
 *  period (newer engines check more often within it), so every run of it within a test is one that start made
 *  through the engine (`docker exec`). */
const HEALTHCHECK =
  'HEALTHCHECK --interval=1h --timeout=5s --retries=3 CMD ' +
  JSON.stringify([
    'node',
    '-e',
    "fetch('http://127.0.0.1:'+(process.env.MINER_PORT||8000)+'/docs').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))",
  ]);
const BROKEN_LOG = 'broken on purpose: no model at /no-such-model';

function dockerfile(name: string, cmd: string[]): string {
  const file = path.join(work, name);
  writeFileSync(
    file,
    ['ARG BASE_IMAGE', 'FROM $BASE_IMAGE', 'ARG MINER_TAG', 'ENV MINER_TAG=$MINER_TAG', HEALTHCHECK, `CMD ${JSON.stringify(cmd)}`, ''].join(
      '\n',
    ),
  );
  return file;
}

/** What a miner's .env would hold for this test's registry and engine; DOCKER_HOST is this machine's socket. */
function minerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    // The logging ssh and Debian's docker client (as deploy.test.ts) first, then the sshd's ssh wrapper.
    PATH: `${path.join(work, 'bin')}${path.delimiter}${sshd.env.PATH}`,
    HOME: process.env.HOME ?? '/root',
    DOTENV_DISABLE: '1',
    ...dockerd.env,
    DOCKER_CONFIG: path.join(work, 'docker-config'),
    DEPLOY_STATE_DIR: path.join(work, 'state'),
    IMAGE_REGISTRY: 'dockerhub',
    DOCKERHUB_REGISTRY: registry.host,
    // push asks Docker Hub's web API for the private repository first: the stand-in answers.
    DOCKERHUB_API_URL: hub.url,
    DOCKERHUB_USERNAME: 'alice',
    DOCKERHUB_TOKEN: TOKEN,
    BASE_IMAGE: baseImage,
    BUILD_NETWORK: 'host',
    MINER_NETWORK: 'host', // the test dockerd has no bridge
    MINER_PORT: String(minerPort),
    MINER_CONTAINER: CONTAINER,
    START_TIMEOUT_S: '60',
    VERIFY_ENABLED: 'false',
    BLACKLIST_ENABLED: 'false',
    ...extra,
  };
}

/** A start over ssh: the environment above plus DEPLOY_HOST. */
const remote = (extra: Record<string, string> = {}) => minerEnv({ DEPLOY_HOST: sshd.url, ...extra });
const task = (name: string, args: string[], env: Record<string, string>): Promise<TaskRun> => runTask(name, args, env);

/** `text` matched as written inside a RegExp (RegExp.escape is not in TypeScript's lib yet). */
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const repo = () => `${registry.host}/alice/pt-solution`;
const state = (tag: string): DeployState =>
  JSON.parse(readFileSync(stateFile(path.join(work, 'state'), repo(), tag), 'utf8')) as DeployState;
const pushedReference = (tag: string) => `${repo()}@${state(tag).push?.digest}`;
const history = (): StartHistory => readHistory(path.join(work, 'state'), repo());

const sshCalls = (): string[] => (existsSync(sshCallLog) ? readFileSync(sshCallLog, 'utf8').split('\n').filter(Boolean) : []);

/** The miner container as the engine's own socket sees it. */
async function container(): Promise<{ id: string; running: boolean; image: string; reference: string }> {
  const [inspected] = JSON.parse(await dockerd.docker(['container', 'inspect', CONTAINER])) as {
    Id: string;
    Name: string;
    Image: string;
    State: { Running: boolean };
    Config: { Image: string };
  }[];
  assert.equal(inspected.Name, `/${CONTAINER}`);
  return { id: inspected.Id, running: inspected.State.Running, image: inspected.Image, reference: inspected.Config.Image };
}

async function imageId(reference: string): Promise<string> {
  return dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', reference]);
}

/** What the running miner says its tag is. */
async function servedTag(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${minerPort}/tag`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(response.status, 200);
  return response.text();
}

/** The container runs `tag`'s pushed digest, up, and answers with that tag. */
async function assertRuns(tag: string): Promise<{ id: string }> {
  const running = await container();
  assert.equal(running.running, true);
  assert.equal(running.reference, pushedReference(tag));
  assert.equal(running.image, await imageId(pushedReference(tag)));
  assert.equal(await servedTag(), tag);
  return running;
}

/** The engine's wall clock as docker events reads it (seconds, this host's clock: the same daemon). */
const now = () => (Date.now() / 1000).toFixed(3);

/** The commands run in the miner container by `docker exec` between `since` and now. */
async function execsSince(since: string): Promise<string[]> {
  const events = await dockerd.docker([
    'events',
    '--since',
    since,
    '--until',
    now(),
    '--filter',
    `container=${CONTAINER}`,
    '--filter',
    'event=exec_start',
    '--format',
    '{{.Action}}',
  ]);
  return events.split('\n').filter(Boolean);
}

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'score-miner-deploy-remote-'));
  mkdirSync(path.join(work, 'bin'));
  minerPort = await freePort();
  dockerd = await startDockerd();
  baseImage = await importNodeBase(dockerd);
  registry = await startRegistry({ users: { alice: TOKEN } });
  hub = await startHubStandin({ users: { alice: TOKEN } });
  sshd = await startSshd(dockerd);

  await symlink(dockerCli() === 'docker' ? '/usr/local/bin/docker' : dockerCli(), path.join(work, 'bin', 'docker'));
  sshCallLog = path.join(work, 'ssh-calls.log');
  const sshdSsh = path.join(sshd.env.PATH.split(path.delimiter)[0], 'ssh');
  writeFileSync(path.join(work, 'bin', 'ssh'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${sshCallLog}'\nexec '${sshdSsh}' "$@"\n`);
  await chmod(path.join(work, 'bin', 'ssh'), 0o755);

  const serving = dockerfile('Dockerfile.serving', ['node', '-e', SERVER]);
  const broken = dockerfile('Dockerfile.broken', ['node', '-e', `console.error(${JSON.stringify(BROKEN_LOG)}); process.exit(3)`]);
  for (const tag of [...PUSHED, 'v3']) {
    const file = tag === 'broken' ? broken : serving;
    const built = await task('build', ['--tag', tag, '--dockerfile', file, '--build-arg', `MINER_TAG=${tag}`], minerEnv());
    assert.equal(built.code, 0, built.output);
  }
  for (const tag of PUSHED) {
    const pushed = await task('push', ['--tag', tag], minerEnv());
    assert.equal(pushed.code, 0, pushed.output);
    assert.match(state(tag).push?.digest ?? '', /^sha256:[0-9a-f]{64}$/);
  }
  // The remote engine has no build of ours: only the registry holds these images now.
  for (const tag of PUSHED) await dockerd.docker(['image', 'rm', `${repo()}:${tag}`]);
  for (const tag of PUSHED) await assert.rejects(imageId(pushedReference(tag)), /No such image/i);
  // Build and push ran on this machine's engine, without ssh.
  assert.deepEqual(sshCalls(), []);
});

after(async () => {
  await dockerd?.docker(['rm', '-f', CONTAINER]).catch(() => undefined);
  await sshd?.stop();
  await hub?.close();
  await registry?.stop();
  await dockerd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('start --tag v1 over ssh: the pushed digest pulled and run on that engine, ready by its HEALTHCHECK, recorded with the host', async () => {
  const since = now();
  const run = await task('start', ['--tag', 'v1'], remote());
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, new RegExp(`^Miner running: [0-9a-f]{64} on ${literal(sshd.url)}$`, 'm'));
  assert.match(run.output, new RegExp(`logs: docker -H ${literal(sshd.url)} logs -f ${CONTAINER}`));
  // Every docker call went through Docker's ssh transport, though DOCKER_HOST names the unix socket.
  const calls = sshCalls();
  assert.ok(calls.length > 0, 'no ssh call');
  for (const call of calls) assert.match(call, /docker system dial-stdio$/);

  const running = await assertRuns('v1');
  assert.equal(run.output.match(/Miner running: ([0-9a-f]{64})/)?.[1], running.id);
  // Ready by the image's own check, run in the container through the engine.
  const execs = await execsSince(since);
  assert.ok(execs.length > 0, 'no docker exec in the container');
  for (const exec of execs) assert.match(exec, /^exec_start: node -e fetch\('http:\/\/127\.0\.0\.1:'/);

  assert.deepEqual(state('v1').start && { ...state('v1').start, at: undefined }, {
    containerId: running.id,
    name: CONTAINER,
    port: minerPort,
    host: sshd.url,
    at: undefined,
  });
  assert.deepEqual(
    history().started.map((entry) => [entry.tag, entry.digest, entry.containerId, entry.host]),
    [['v1', state('v1').push?.digest, running.id, sshd.url]],
  );
});

test('start --tag v2 replaces it on that engine; a rerun is skipped, the container seen serving through the engine', async () => {
  const replaced = await task('start', ['--tag', 'v2'], remote());
  assert.equal(replaced.code, 0, replaced.output);
  const running = await assertRuns('v2');

  const since = now();
  const callsBefore = sshCalls().length;
  const rerun = await task('start', ['--tag', 'v2'], remote());
  assert.equal(rerun.code, 0, rerun.output);
  assert.match(
    rerun.output,
    new RegExp(`skipped.*${CONTAINER} already runs this image \\(${running.id.slice(0, 12)}\\) on ${literal(sshd.url)}`),
  );
  assert.ok(sshCalls().length > callsBefore, 'the rerun did not ask the engine over ssh');
  assert.ok((await execsSince(since)).length > 0, 'the rerun did not run the HEALTHCHECK in the container');
  assert.equal((await assertRuns('v2')).id, running.id);
  assert.deepEqual(
    history().started.map((entry) => [entry.tag, entry.host]),
    [
      ['v1', sshd.url],
      ['v2', sshd.url],
    ],
  );
});

test('just rollback goes back to v1 on that engine', async () => {
  const run = await runJust(['rollback'], remote());
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, new RegExp(`on ${literal(sshd.url)}`));
  await assertRuns('v1');
  assert.deepEqual(
    history().started.map((entry) => [entry.tag, entry.host]),
    [
      ['v1', sshd.url],
      ['v2', sshd.url],
      ['v1', sshd.url],
    ],
  );
});

test('a pushed tag whose container exits at once: its last log lines from over there, exit 1, the previous tag restarted', async () => {
  const historyBefore = history();
  const run = await task('start', ['--tag', 'broken'], remote({ START_TIMEOUT_S: '30' }));
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /last log lines of the container:\n(.*\n)*? {6}broken on purpose: no model at \/no-such-model$/m);
  assert.match(run.output, /restarting the previous tag v1$/m);
  assert.match(run.output, /^error: the miner container exited before answering on port \d+$/m);
  // It was pulled there (the engine ran it), and nothing of it is left running.
  assert.ok(await imageId(pushedReference('broken')));
  await assertRuns('v1');
  assert.deepEqual(history(), historyBefore);
});

test('a tag built but not pushed: refused before the running container is touched, naming the push to run', async () => {
  const before = await container();
  const run = await task('start', ['--tag', 'v3'], remote());
  assert.equal(run.code, 1, run.output);
  assert.match(
    run.output,
    new RegExp(
      `^error: no pushed digest \\(the engine on DEPLOY_HOST pulls it\\) for ${literal(repo())}:v3: run tasks/push\\.ts first$`,
      'm',
    ),
  );
  assert.match(run.output, /^ {2}next: npx tsx tasks\/push\.ts --tag v3 /m);
  assert.equal((await assertRuns('v1')).id, before.id);
});

test('a wrong DEPLOY_HOST, and an sshd that is not there: one-line causes, no hang, no stack trace', async () => {
  const before = await container();
  const invalid = await task('start', ['--tag', 'v1'], remote({ DEPLOY_HOST: 'tcp://127.0.0.1:1' }));
  assert.equal(invalid.code, 1, invalid.output);
  assert.match(
    invalid.output,
    /^error: DEPLOY_HOST="tcp:\/\/127\.0\.0\.1:1" is not valid: expected ssh:\/\/user@host\[:port\] or the name of a docker context \(docker context ls\)$/m,
  );
  assert.match(invalid.output, /^ {2}next: fix DEPLOY_HOST in your \.env file or environment/m);

  const closed = await freePort();
  const url = `ssh://${os.userInfo().username}@127.0.0.1:${closed}`;
  const unreachable = await task('start', ['--tag', 'v1'], remote({ DEPLOY_HOST: url }));
  assert.notEqual(unreachable.code, -1, 'start hung');
  assert.equal(unreachable.code, 1, unreachable.output);
  // docker's own cause is a long line with ssh's words last: those are what the miner must see.
  assert.match(
    unreachable.output,
    new RegExp(
      `^error: cannot reach the Docker engine on ${literal(url)}: ssh: connect to host 127\\.0\\.0\\.1 port ${closed}: Connection refused$`,
      'm',
    ),
  );
  assert.match(
    unreachable.output,
    new RegExp(`^ {2}next: check that \`ssh -p ${closed} ${os.userInfo().username}@127\\.0\\.0\\.1 docker version\` works`, 'm'),
  );
  assert.doesNotMatch(unreachable.output, /^\s+at /m);
  assert.equal((await assertRuns('v1')).id, before.id);
});
