/**
 * A real Docker engine for the tests: dockerd on a unix socket in a temporary folder (no bridge, no
 * iptables: containers that need the host's loopback run with --network host), and a Node base image
 * made with `docker import` from this machine's own files, because nothing can be pulled from Docker Hub
 * here. Debian's docker.io provides dockerd (.ci/run installs it).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
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
      "dockerd is not installed: the image and deploy tests run a real Docker engine. Install Debian's docker.io, docker-registry and busybox-static (bash .ci/run does), or run npm run test:unit",
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

/** Shared libraries a binary needs, as `ldd` lists them (absolute paths). */
function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  return [...out.matchAll(/(\/\S+\.so[.\d]*)/g)].map((m) => m[1]);
}

const BUSYBOX_APPLETS = [
  'sh',
  'ls',
  'cat',
  'id',
  'mkdir',
  'rm',
  'cp',
  'mv',
  'chmod',
  'ln',
  'echo',
  'test',
  '[',
  'true',
  'false',
  'find',
  'sleep',
  'wc',
];

/**
 * `docker import` a Node base image from this machine's files: the running Node binary (24), the
 * machine's npm, /usr/bin/env, busybox for RUN steps, the libraries ldd lists (plus librt, which
 * onnxruntime needs), the CA bundle (npm inside a build reaches the registry through the host's network),
 * and /etc/passwd with root, node (1000) and nobody.
 */
export async function importNodeBase(dockerd: Dockerd, tag = 'local/node:24-base'): Promise<string> {
  const rootfs = await mkdtemp(path.join(os.tmpdir(), 'score-miner-rootfs-'));
  try {
    const put = async (source: string, target = source) => {
      const dest = path.join(rootfs, target);
      await mkdir(path.dirname(dest), { recursive: true });
      await copyFile(realpathSync(source), dest);
    };
    const node = process.execPath;
    await put(node, '/usr/local/bin/node');
    await put('/usr/bin/env');
    await put('/bin/busybox', '/bin/busybox');
    for (const applet of BUSYBOX_APPLETS) await symlink('busybox', path.join(rootfs, 'bin', applet));
    const libraries = new Set([...sharedLibraries(node), ...sharedLibraries('/usr/bin/env')]);
    const librt = '/lib/x86_64-linux-gnu/librt.so.1';
    if (existsSync(librt)) libraries.add(librt);
    for (const library of libraries) await put(library);
    await put('/lib64/ld-linux-x86-64.so.2');
    const npmRoot = path.resolve(
      path.dirname(realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim())),
      '..',
    );
    await cp(npmRoot, path.join(rootfs, 'usr/local/lib/node_modules/npm'), { recursive: true, dereference: true });
    await symlink('../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/local/bin/npm'));
    await symlink('../lib/node_modules/npm/bin/npx-cli.js', path.join(rootfs, 'usr/local/bin/npx'));
    await put('/etc/ssl/certs/ca-certificates.crt');
    await writeFile(
      path.join(rootfs, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    );
    await writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n');
    for (const dir of ['tmp', 'root', 'home/node']) await mkdir(path.join(rootfs, dir), { recursive: true });
    await execa('chmod', ['1777', path.join(rootfs, 'tmp')]);
    const tarball = `${rootfs}.tar`;
    await execa('tar', ['-C', rootfs, '--numeric-owner', '-cf', tarball, '.']);
    await dockerd.docker([
      'import',
      '--change',
      'ENV PATH=/usr/local/bin:/usr/bin:/bin',
      '--change',
      'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
      '--change',
      'CMD ["node"]',
      tarball,
      tag,
    ]);
    await rm(tarball, { force: true });
    return tag;
  } finally {
    await rm(rootfs, { recursive: true, force: true });
  }
}
