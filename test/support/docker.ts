/**
 * A real Docker engine for the tests: dockerd on a unix socket in a temporary folder (no bridge, no
 * iptables: containers that need the host's loopback run with --network host), and a Node base image
 * made with `docker import` from a Debian bookworm minbase (mmdebstrap) and this machine's Node and npm,
 * because nothing can be pulled from Docker Hub here. Debian's docker.io provides dockerd and mmdebstrap the
 * base (.ci/run installs both).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

export interface Dockerd {
  /** Environment for the docker CLI: DOCKER_HOST pointing at this daemon. */
  env: Record<string, string>;
  /** Run the docker CLI against this daemon; resolves with stdout. */
  docker(args: string[], options?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** The last lines a container wrote (stdout and stderr), for failure messages. */
  logs(container: string, lines?: number): Promise<string>;
  stop(): Promise<void>;
}

/** The docker CLI to use: Debian's client (BuildKit works with --network host); else the one on PATH. */
export function dockerCli(): string {
  return existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
}

export async function startDockerd(): Promise<Dockerd> {
  const found = await execa('sh', ['-c', 'command -v dockerd'], { reject: false });
  if (found.exitCode !== 0) {
    throw new Error(
      "dockerd is not installed: the image and deploy tests run a real Docker engine. Install Debian's docker.io, docker-registry and mmdebstrap (bash .ci/run does), or run npm run test:unit",
    );
  }
  const root = await mkdtemp(path.join(os.tmpdir(), 'score-miner-dockerd-'));
  const socket = path.join(root, 'docker.sock');
  const daemon = execa(
    'dockerd',
    [
      '--iptables=false',
      '--shutdown-timeout=2',
      '--ip-masq=false',
      '--bridge=none',
      '--storage-driver=overlay2',
      `--data-root=${path.join(root, 'data')}`,
      `--exec-root=${path.join(root, 'exec')}`,
      `--pidfile=${path.join(root, 'docker.pid')}`,
      `--host=unix://${socket}`,
    ],
    { reject: false, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let daemonLog = '';
  daemon.stderr?.on('data', (chunk: Buffer) => {
    daemonLog = (daemonLog + chunk.toString()).slice(-4000);
  });
  const env = { DOCKER_HOST: `unix://${socket}` };
  const cli = dockerCli();
  const docker = async (args: string[], options: { input?: string; timeoutMs?: number } = {}) => {
    const result = await execa(cli, args, { env, input: options.input, timeout: options.timeoutMs ?? 300_000, reject: false });
    if (result.exitCode !== 0) throw new Error(`docker ${args.join(' ')} failed (${result.exitCode}): ${result.stderr || result.stdout}`);
    return result.stdout;
  };
  const logs = async (container: string, lines = 40) =>
    (await execa(cli, ['logs', '--tail', String(lines), container], { env, all: true, reject: false })).all ?? '';
  const stop = async () => {
    daemon.kill('SIGTERM');
    await Promise.race([daemon, new Promise((resolve) => setTimeout(resolve, 20_000))]);
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
    await execa('umount', [path.join(root, 'exec', 'netns', 'default')], { reject: false });
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const probe = await execa(cli, ['version', '--format', '{{.Server.Version}}'], { env, reject: false });
    if (probe.exitCode === 0) break;
    if (daemon.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`dockerd did not start: ${daemonLog}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { env, docker, logs, stop };
}

const DEBIAN_SUITE = 'bookworm';
/** As node:24-bookworm-slim has them: the release, its point updates and its security fixes. */
const DEBIAN_SOURCES = [
  'deb http://deb.debian.org/debian bookworm main',
  'deb http://deb.debian.org/debian bookworm-updates main',
  'deb http://deb.debian.org/debian-security bookworm-security main',
];
/** The host's CA bundle, kept apart from Debian's own (installing ca-certificates in a build rewrites that one). */
const HOST_CA_BUNDLE = '/etc/ssl/host-ca-certificates.crt';
/** Cached base tarballs older than this are removed when a new one is made. */
const STALE_BASE_MS = 2 * 24 * 3600_000;

const shellQuote = (value: string) => `'${value.replaceAll("'", "'\\''")}'`;

/** npm's folder (the one `npm` on PATH runs), with its version. */
function hostNpm(): { root: string; version: string } {
  const cli = realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
  const root = path.resolve(path.dirname(cli), '..');
  return { root, version: (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version };
}

/**
 * A Debian bookworm minbase root filesystem (mmdebstrap, from Debian's mirror) with the running Node binary
 * (the official Node 24) at /usr/local/bin/node and the machine's npm beside it, as the node:24-bookworm-slim
 * image lays them out; plus the host's CA bundle (npm inside a build reaches the registry through the host's
 * network) and a `node` user (1000). Kept in os.tmpdir() and made again each day (Debian's security fixes) or
 * when Node, npm or this recipe changes, so later test files and runs reuse it.
 */
export async function nodeBaseTarball(): Promise<string> {
  const found = await execa('sh', ['-c', 'command -v mmdebstrap'], { reject: false });
  if (found.exitCode !== 0) {
    throw new Error(
      "mmdebstrap is not installed: the image tests build on a local Debian base. Install Debian's mmdebstrap (bash .ci/run does)",
    );
  }
  const node = realpathSync(process.execPath);
  const npm = hostNpm();
  const hooks = [
    `mkdir -p "$1/usr/local/lib/node_modules" "$1/home/node" "$1/etc/ssl"`,
    `cp ${shellQuote(node)} "$1/usr/local/bin/node"`,
    `cp -RL ${shellQuote(npm.root)} "$1/usr/local/lib/node_modules/npm"`,
    `ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"`,
    `ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"`,
    `cp /etc/ssl/certs/ca-certificates.crt "$1${HOST_CA_BUNDLE}"`,
    `echo 'node:x:1000:1000::/home/node:/bin/sh' >> "$1/etc/passwd"`,
    `echo 'node:x:1000:' >> "$1/etc/group"`,
    `chown 1000:1000 "$1/home/node"`,
  ];
  const recipe = createHash('sha256')
    .update(JSON.stringify({ suite: DEBIAN_SUITE, sources: DEBIAN_SOURCES, hooks, node: process.version, npm: npm.version }))
    .digest('hex')
    .slice(0, 12);
  const cache = path.join(os.tmpdir(), 'score-miner-base');
  const tarball = path.join(cache, `${DEBIAN_SUITE}-minbase-node${process.version}-${recipe}-${new Date().toISOString().slice(0, 10)}.tar`);
  if (existsSync(tarball)) return tarball;
  await mkdir(cache, { recursive: true });
  // Made under another name and renamed when complete: another test run may be reading or making it too.
  const partial = `${tarball}.${process.pid}.partial`;
  const result = await execa(
    'mmdebstrap',
    [
      '--quiet',
      '--variant=minbase',
      '--format=tar',
      ...hooks.map((hook) => `--customize-hook=${hook}`),
      DEBIAN_SUITE,
      partial,
      ...DEBIAN_SOURCES,
    ],
    { reject: false, all: true, timeout: 600_000 },
  );
  if (result.exitCode !== 0) {
    await rm(partial, { force: true });
    throw new Error(`mmdebstrap could not make the Debian base (it fetches from deb.debian.org): ${(result.all ?? '').slice(-2000)}`);
  }
  await rename(partial, tarball);
  for (const name of await readdir(cache)) {
    const file = path.join(cache, name);
    if (file !== tarball && Date.now() - (await stat(file)).mtimeMs > STALE_BASE_MS) await rm(file, { force: true });
  }
  return tarball;
}

/** `docker import` the Node base (nodeBaseTarball): the Dockerfile's default base, node:24-bookworm-slim, cannot be pulled here. */
export async function importNodeBase(dockerd: Dockerd, tag = 'local/node:24-bookworm'): Promise<string> {
  const tarball = await nodeBaseTarball();
  await dockerd.docker([
    'import',
    '--change',
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    '--change',
    `ENV NODE_EXTRA_CA_CERTS=${HOST_CA_BUNDLE}`,
    '--change',
    'CMD ["node"]',
    tarball,
    tag,
  ]);
  return tag;
}
