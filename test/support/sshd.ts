/**
 * A loopback sshd in front of the tests' own dockerd, so deploy tests can reach the engine the way a miner's
 * DEPLOY_HOST does: Docker's ssh transport (`DOCKER_HOST=ssh://USER@HOST:PORT`), which runs
 * `ssh ... -- HOST docker system dial-stdio` with the `ssh` it finds on PATH. Keys, known_hosts, sshd_config and
 * the ssh client config are made here in a temporary folder; nothing is read from or written to ~/.ssh or /etc/ssh.
 * Debian's openssh-server provides /usr/sbin/sshd (.ci/run installs it).
 */
import { existsSync, realpathSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { freePort } from '../../lib/deploy/container.ts';
import { type Dockerd, dockerCli } from './docker.ts';

export interface LoopbackSshd {
  /** ssh://USER@127.0.0.1:PORT — what a miner writes as DEPLOY_HOST. */
  url: string;
  /** Environment for a docker CLI / a task that must reach the engine over this sshd: PATH with a test-made
   *  `ssh` wrapper first (ssh -F <test config> "$@": the test key, a known_hosts the test wrote, BatchMode yes,
   *  StrictHostKeyChecking yes, IdentitiesOnly yes). Does NOT set DOCKER_HOST (the caller decides). */
  env: { PATH: string };
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A command's absolute path on PATH (the wrapper must not find itself). */
async function onPath(command: string): Promise<string> {
  const found = await execa('sh', ['-c', `command -v ${command}`], { reject: false });
  if (found.exitCode !== 0 || !found.stdout.startsWith('/')) {
    throw new Error(`${command} is not installed: the ssh deploy tests need it. Install Debian's openssh-client (bash .ci/run does)`);
  }
  return found.stdout.trim();
}

async function keygen(file: string, comment: string): Promise<string> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  return (await readFile(`${file}.pub`, 'utf8')).trim();
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Start sshd on a free loopback port; its sessions reach `dockerd` (DOCKER_HOST set by sshd's SetEnv). */
export async function startSshd(dockerd: Dockerd): Promise<LoopbackSshd> {
  if (!existsSync(SSHD)) {
    throw new Error(`${SSHD} is not installed: the ssh deploy tests run a real sshd. Install Debian's openssh-server (bash .ci/run does)`);
  }
  const ssh = await onPath('ssh');
  const user = os.userInfo().username;
  const root = await mkdtemp(path.join(os.tmpdir(), 'score-miner-sshd-'));
  const file = (name: string) => path.join(root, name);
  try {
    const hostKey = await keygen(file('host_ed25519'), 'score-miner-test-host');
    const clientKey = await keygen(file('client_ed25519'), 'score-miner-test-client');
    await writeFile(file('authorized_keys'), `${clientKey}\n`, { mode: 0o600 });
    const port = await freePort();
    // The remote `docker system dial-stdio` runs in the user's shell: this PATH finds the same CLI the tests use.
    const cli = dockerCli();
    const remoteDocker = cli.includes('/') ? cli : await onPath(cli);
    const remotePath = `${path.dirname(realpathSync(remoteDocker))}:${SYSTEM_PATH}`;
    await writeFile(
      file('sshd_config'),
      [
        'ListenAddress 127.0.0.1',
        `Port ${port}`,
        `HostKey ${file('host_ed25519')}`,
        `AuthorizedKeysFile ${file('authorized_keys')}`,
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'PermitRootLogin prohibit-password',
        // The key files live in a folder under os.tmpdir(), which sshd's ownership checks would reject.
        'StrictModes no',
        `PidFile ${file('sshd.pid')}`,
        `SetEnv "DOCKER_HOST=${dockerd.env.DOCKER_HOST}" "PATH=${remotePath}"`,
        '',
      ].join('\n'),
    );
    // [host]:port, as ssh looks a non-22 port up; only the key type and key, not the comment.
    const [keyType, keyBody] = hostKey.split(' ');
    await writeFile(file('known_hosts'), `[127.0.0.1]:${port} ${keyType} ${keyBody}\n`);
    await writeFile(
      file('ssh_config'),
      [
        'Host *',
        `  IdentityFile ${file('client_ed25519')}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${file('known_hosts')}`,
        '  GlobalKnownHostsFile /dev/null',
        '  StrictHostKeyChecking yes',
        '  UpdateHostKeys no',
        '  BatchMode yes',
        '  ConnectTimeout 10',
        '  LogLevel ERROR',
        '',
      ].join('\n'),
    );
    await mkdir(file('bin'));
    await writeFile(file('bin/ssh'), `#!/bin/sh\nexec '${ssh}' -F '${file('ssh_config')}' "$@"\n`);
    await chmod(file('bin/ssh'), 0o755);
    // Privilege separation's chroot; Debian's package makes it at boot (tmpfiles), a container may lack it.
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

    const daemon = execa(SSHD, ['-D', '-e', '-f', file('sshd_config')], { reject: false, stdio: ['ignore', 'ignore', 'pipe'] });
    let daemonLog = '';
    daemon.stderr?.on('data', (chunk: Buffer) => {
      daemonLog = (daemonLog + chunk.toString()).slice(-4000);
    });
    const stop = async () => {
      daemon.kill('SIGTERM');
      await Promise.race([daemon, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
      await rm(root, { recursive: true, force: true });
    };
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (daemon.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`sshd did not start on 127.0.0.1:${port}: ${daemonLog.trim() || `exit ${daemon.exitCode}`}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { url: `ssh://${user}@127.0.0.1:${port}`, env: { PATH: `${file('bin')}${path.delimiter}${process.env.PATH ?? ''}` }, stop };
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
}
