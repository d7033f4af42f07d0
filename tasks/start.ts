/**
 * Run the miner image on this host: replaces this miner's previous container, waits until the server answers,
 * and goes back to the previous tag when the new one does not come up.
 *
 *   npx tsx tasks/start.ts [--tag v1.0.0]
 *   npx tsx tasks/start.ts --rollback          (start the tag that ran before the current one)
 *
 * The container gets a fixed name (MINER_CONTAINER), `--restart unless-stopped`, MINER_PORT published, the
 * hotkey's public address (MINER_HOTKEY_SS58, read here from the wallet) and the settings marked for the
 * container (lib/core/settings.ts), under their canonical names — never a wallet, never the registry token,
 * never the whole .env.
 */
import net from 'node:net';
import { loadHotkeyAddress } from '../lib/chain/wallet.ts';
import { loadConfig, type MinerConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { defineTask, runIfEntryPoint, UsageError } from '../lib/core/task.ts';
import { containerEnv, imageIdCommand, runCommand } from '../lib/deploy/docker.ts';
import { checkTag } from '../lib/deploy/registry.ts';
import { type DockerRunOptions, docker, dockerProbe } from '../lib/deploy/run-docker.ts';
import { latestPushedTag, readHistory, readState, requireStep, writeHistory, writeState } from '../lib/deploy/state.ts';
import { runStep } from '../lib/deploy/step.ts';
import { deployTarget } from '../lib/deploy/target.ts';

const USAGE = `usage: npx tsx tasks/start.ts [--tag TAG | --rollback] [--json] [--verbose]

Start the miner container for TAG (default: the tag pushed last), replacing this miner's previous container;
wait for /docs and /health; on failure show the container's last log lines and restart the previous tag.

  --tag TAG     the tag to run (built by tasks/build.ts)
  --rollback    start the tag that ran before the current one
  --json        print {"container", "name", "tag", "port"} on stdout
  --verbose     show docker's output

Reads MINER_PORT, MINER_CONTAINER (default score-miner), MINER_NETWORK, START_TIMEOUT_S, the wallet settings,
and passes only the server's own variables to the container; with VERIFY_ENABLED, the hotkey's public address
(MINER_HOTKEY_SS58, else read from the wallet on this machine). No wallet is mounted.`;

interface Running {
  id: string;
  image: string;
  running: boolean;
  /** Times docker restarted it (the restart policy hides a crash loop behind `running`). */
  restarts: number;
  /** Volumes and bind mounts (a container from an older start had the wallet mounted). */
  mounts: number;
}

async function inspectContainer(name: string, run: DockerRunOptions): Promise<Running | undefined> {
  const probe = await dockerProbe(
    ['container', 'inspect', '--format', '{{.Id}} {{.Image}} {{.State.Running}} {{.RestartCount}} {{len .Mounts}}', name],
    run,
  );
  if (!probe.ok) return undefined;
  const [id, image, running, restarts, mounts] = probe.stdout.split(' ');
  return { id, image, running: running === 'true', restarts: Number(restarts), mounts: Number(mounts) };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, () => server.close(() => resolve(true)));
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** Poll until /docs and /health answer 200, the container stops, or the time is up. */
async function waitUntilServing(port: number, container: string, timeoutMs: number, run: DockerRunOptions): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    if ((await answers(`${base}/docs`)) && (await answers(`${base}/health`))) return;
    const state = await inspectContainer(container, run);
    if (!state?.running || state.restarts > 0)
      throw new MinerError(`the miner container exited before answering on port ${port}`, { hint: 'its last log lines are above' });
    if (Date.now() > deadline) {
      throw new MinerError(`the miner did not answer ${base}/docs within ${timeoutMs / 1000} s`, {
        hint: 'its last log lines are above; a slow model warm-up needs a longer START_TIMEOUT_S',
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * The hotkey's public address the container verifies fiber signatures against (VERIFY_ENABLED): the container
 * gets this address, never the wallet, so nothing in it can leak the hotkey's secret.
 */
function minerHotkeyAddress(config: MinerConfig): string | undefined {
  if (!config.security.verifyEnabled) return undefined;
  try {
    return loadHotkeyAddress(config.wallet).address;
  } catch (error) {
    if (!(error instanceof MinerError)) throw error;
    throw new MinerError(`VERIFY_ENABLED is on and the miner needs its hotkey's address: ${error.message}`, { hint: error.hint });
  }
}

export const main = defineTask({
  usage: USAGE,
  flags: { tag: { type: 'string' }, rollback: { type: 'boolean' } },
  json: true,
  async run({ flags, env, out, err }) {
    const config = loadConfig(env);
    const { deploy } = config;
    const target = deployTarget(deploy);
    const history = readHistory(deploy.stateDir, target.repo);
    let tag: string | undefined;
    if (flags.rollback) {
      if (flags.tag) throw new UsageError('give --tag or --rollback, not both');
      tag = history.started.at(-2)?.tag;
      if (!tag) throw new MinerError(`no earlier tag of ${target.repo} was started on this machine`, { hint: 'start one with --tag TAG' });
    } else tag = flags.tag ? checkTag(flags.tag) : latestPushedTag(deploy.stateDir, target.repo);
    if (!tag) throw new UsageError(`no tag of ${target.repo} in the deploy state`, 'run tasks/build.ts (and push.ts) first, or give --tag');
    const startTag = tag;
    const run = { env, verbose: flags.verbose };
    const say = flags.json ? err : out;
    const port = config.server.port;
    const name = deploy.containerName;
    let containerId = '';

    /** docker run + wait; on failure the last log lines, and the container removed. */
    const launch = async (reference: string, hotkeyAddress?: string): Promise<string> => {
      const environment = containerEnv(env, { port, walletMounted: false, hotkeyAddress });
      const id = await docker(runCommand({ name, image: reference, port, network: deploy.runNetwork, env: environment }), run);
      try {
        await waitUntilServing(port, name, deploy.startTimeoutMs, run);
        return id;
      } catch (error) {
        const logs = await dockerProbe(['logs', '--tail', '30', name], run);
        say('    last log lines of the container:');
        for (const line of logs.output.split('\n')) say(`      ${line}`);
        await dockerProbe(['rm', '-f', name], run);
        throw error;
      }
    };

    await runStep(
      { step: 'start', stateDir: deploy.stateDir, env, out: say, tag: startTag },
      `run ${target.image}:${startTag} as ${name} on port ${port}`,
      async () => {
        const state = readState(deploy.stateDir, target.repo, startTag);
        const built = requireStep(state, 'build', 'built image');
        const local = await dockerProbe(imageIdCommand(built.reference), run);
        if (!local.ok)
          throw new MinerError(`the image ${built.reference} is not in the local Docker engine`, {
            hint: `run tasks/build.ts --tag ${startTag} first`,
          });
        const hotkeyAddress = minerHotkeyAddress(config);

        const previous = await inspectContainer(name, run);
        // A container with a mount (the wallet, from an older start) is replaced even when its image is current.
        const current = previous?.running && previous.image === local.stdout && previous.mounts === 0;
        if (current && (await answers(`http://127.0.0.1:${port}/docs`))) {
          containerId = previous.id;
          return { result: 'skipped', produced: `${name} already runs this image (${previous.id.slice(0, 12)})` };
        }
        if (!previous?.running && !(await portFree(port))) {
          throw new MinerError(`port ${port} is already in use by another process`, {
            hint: 'stop that process or set MINER_PORT to a free port in .env',
          });
        }
        const previousTag = history.started.findLast((entry) => entry.tag !== startTag)?.tag;
        if (previous) await docker(['rm', '-f', name], run);
        try {
          containerId = await launch(built.reference, hotkeyAddress);
        } catch (error) {
          if (previousTag && previous) {
            const before = readState(deploy.stateDir, target.repo, previousTag).build;
            if (before) {
              say(`    restarting the previous tag ${previousTag}`);
              await launch(before.reference, hotkeyAddress).catch((again: unknown) =>
                say(`    the previous tag did not come back either: ${(again as Error).message}`),
              );
            }
          }
          throw error;
        }
        const at = new Date().toISOString();
        await writeState(deploy.stateDir, { ...state, start: { containerId, name, port, at } });
        history.started.push({ tag: startTag, digest: state.push?.digest, containerId, at });
        await writeHistory(deploy.stateDir, target.repo, { started: history.started.slice(-20) });
        return { produced: `${name} ${containerId.slice(0, 12)} on port ${port}` };
      },
    );
    if (flags.json) out(JSON.stringify({ container: containerId, name, tag: startTag, port }));
    else {
      out(`Miner running: ${containerId}`);
      out(`  logs: docker logs -f ${name}`);
      out(`  stop: docker stop ${name}`);
    }
    return 0;
  },
});

runIfEntryPoint(import.meta.url, main);
