/**
 * The loopback sshd (test/support/sshd.ts) in front of the tests' own dockerd: Docker's ssh transport
 * (DOCKER_HOST=ssh://...) through the test-made `ssh` wrapper reaches the same engine the unix socket does, with
 * each docker CLI the tests and tasks may run (Debian's /usr/bin/docker and the one first on PATH), and a client
 * key the sshd does not know is refused at once (BatchMode: no prompt, no hang).
 */
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { type Dockerd, dockerCli, startDockerd } from './support/docker.ts';
import { type LoopbackSshd, startSshd } from './support/sshd.ts';

let dockerd: Dockerd;
let sshd: LoopbackSshd;
let work: string;
/** Each distinct docker CLI: the tests' (dockerCli) and the one a task finds on PATH. */
let clients: string[];

/** Run `cli args` against the engine over ssh; resolves with stdout, rejects with the CLI's stderr. */
async function overSsh(cli: string, args: string[]): Promise<string> {
  const result = await execa(cli, args, { env: { ...sshd.env, DOCKER_HOST: sshd.url }, timeout: 60_000, reject: false });
  if (result.exitCode !== 0) throw new Error(`${cli} ${args.join(' ')} over ssh failed (${result.exitCode}): ${result.stderr}`);
  return result.stdout;
}

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'score-miner-sshd-test-'));
  dockerd = await startDockerd();
  sshd = await startSshd(dockerd);
  const onPath = (await execa('sh', ['-c', 'command -v docker'])).stdout.trim();
  clients = [...new Set([dockerCli(), onPath].map((cli) => realpathSync(cli.includes('/') ? cli : onPath)))];
});

after(async () => {
  await sshd?.stop();
  await dockerd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('the url is ssh://<this user>@127.0.0.1:<port> and the env sets only PATH, with the ssh wrapper first', () => {
  assert.match(sshd.url, new RegExp(`^ssh://${os.userInfo().username}@127\\.0\\.0\\.1:\\d+$`));
  assert.deepEqual(Object.keys(sshd.env), ['PATH']);
  const first = sshd.env.PATH.split(path.delimiter)[0];
  assert.ok(first.startsWith(os.tmpdir()), first);
});

test('over ssh, each docker CLI reaches the test dockerd: the same server version, info and ps', async () => {
  const overUnix = await dockerd.docker(['version', '--format', '{{.Server.Version}}']);
  assert.match(overUnix, /^\d+\.\d+/);
  const daemonId = await dockerd.docker(['info', '--format', '{{.ID}}']);
  for (const cli of clients) {
    assert.equal(await overSsh(cli, ['version', '--format', '{{.Server.Version}}']), overUnix, cli);
    // The engine's ID, not only its version: this dockerd, not some other one the remote shell could reach.
    assert.equal(await overSsh(cli, ['info', '--format', '{{.ID}}']), daemonId, cli);
    assert.equal(await overSsh(cli, ['ps', '--all', '--quiet']), await dockerd.docker(['ps', '--all', '--quiet']), cli);
  }
});

test('an image imported and a container created over ssh are on the unix socket, and the other way round', async () => {
  // A one-file image: enough for `docker create` (which runs nothing), and the import streams a body over ssh.
  const rootfs = path.join(work, 'rootfs');
  await mkdir(rootfs);
  await writeFile(path.join(rootfs, 'probe'), '#!/bin/sh\n');
  await chmod(path.join(rootfs, 'probe'), 0o755);
  const tarball = path.join(work, 'rootfs.tar');
  await execa('tar', ['-C', rootfs, '-cf', tarball, '.']);
  for (const [index, cli] of clients.entries()) {
    const image = `local/ssh-probe:${index}`;
    const imageId = await overSsh(cli, ['import', tarball, image]);
    assert.equal(await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', image]), imageId, cli);

    const overSshName = `made-over-ssh-${index}`;
    const overSshId = await overSsh(cli, ['create', '--network', 'none', '--name', overSshName, image, '/probe']);
    assert.equal(
      await dockerd.docker(['ps', '--all', '--filter', `name=^${overSshName}$`, '--format', '{{.ID}}', '--no-trunc']),
      overSshId,
      cli,
    );

    const overUnixName = `made-over-unix-${index}`;
    const overUnixId = await dockerd.docker(['create', '--network', 'none', '--name', overUnixName, image, '/probe']);
    assert.equal(
      await overSsh(cli, ['ps', '--all', '--filter', `name=^${overUnixName}$`, '--format', '{{.ID}}', '--no-trunc']),
      overUnixId,
      cli,
    );

    const named = ['ps', '--all', '--filter', `name=-${index}$`, '--format', '{{.Names}}'];
    assert.deepEqual((await dockerd.docker(named)).split('\n').sort(), [overSshName, overUnixName], cli);
    await overSsh(cli, ['rm', overSshName, overUnixName]);
    assert.equal(await dockerd.docker(named), '', cli);
  }
});

test('a client key the sshd does not know is refused with a clear error, at once and without a prompt', async () => {
  const other = path.join(work, 'other_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
  const bin = path.join(work, 'other-bin');
  await mkdir(bin);
  // The same strictness as the sshd's own wrapper, with a key it never authorized (and no host key to check).
  const ssh = (await execa('sh', ['-c', 'command -v ssh'])).stdout.trim();
  await writeFile(
    path.join(bin, 'ssh'),
    `#!/bin/sh\nexec '${ssh}' -F /dev/null -o IdentityFile='${other}' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$@"\n`,
  );
  await chmod(path.join(bin, 'ssh'), 0o755);
  for (const cli of clients) {
    const result = await execa(cli, ['version', '--format', '{{.Server.Version}}'], {
      env: { PATH: `${bin}${path.delimiter}${process.env.PATH}`, DOCKER_HOST: sshd.url },
      // stdin closed: a prompt would end in an error, not wait; the timeout bounds a hang.
      stdin: 'ignore',
      timeout: 30_000,
      reject: false,
    });
    assert.equal(result.timedOut, false, cli);
    assert.notEqual(result.exitCode, 0, cli);
    assert.match(result.stderr, /docker system dial-stdio\] has exited with exit status 255/, cli);
    assert.match(result.stderr, /Permission denied \(publickey\)/, cli);
  }
});
