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
import { loadHotkeyAddress } from '../lib/chain/wallet.ts';
import { loadConfig, type MinerConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { defineTask, runIfEntryPoint, UsageError } from '../lib/core/task.ts';
import { answers200, containerState, portIsFree, removeContainer, type Serving, waitUntilServing } from '../lib/deploy/container.ts';
import { containerEnv, imageIdCommand, removeContainerCommand, runCommand } from '../lib/deploy/docker.ts';
import { type DockerRunOptions, docker, dockerProbe } from '../lib/deploy/run-docker.ts';
import { readHistory, readState, requireStep, resolveTag, type StartHistory, writeHistory, writeState } from '../lib/deploy/state.ts';
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

/** What every part of a start needs. */
interface Start {
  env: Record<string, string | undefined>;
  deploy: MinerConfig['deploy'];
  run: DockerRunOptions;
  say: (line: string) => void;
  port: number;
  /** The container's fixed name (MINER_CONTAINER). */
  name: string;
}

/** --tag, the tag started before the current one (--rollback), else the tag pushed last. */
function chooseTag(
  flags: { tag?: string; rollback?: boolean },
  deploy: MinerConfig['deploy'],
  repo: string,
  history: StartHistory,
): string {
  let tag: string | undefined;
  if (flags.rollback) {
    if (flags.tag) throw new UsageError('give --tag or --rollback, not both');
    tag = history.started.at(-2)?.tag;
    if (!tag) throw new MinerError(`no earlier tag of ${repo} was started on this machine`, { hint: 'start one with --tag TAG' });
  } else tag = resolveTag(deploy.stateDir, repo, flags.tag);
  if (!tag) throw new UsageError(`no tag of ${repo} in the deploy state`, 'run tasks/build.ts (and push.ts) first, or give --tag');
  return tag;
}

/** Why a started container did not come up (its last log lines are printed just before). */
function notServing(serving: Extract<Serving, { ok: false }>, port: number, timeoutMs: number): MinerError {
  if (serving.reason === 'exited')
    return new MinerError(`the miner container exited before answering on port ${port}`, { hint: 'its last log lines are above' });
  return new MinerError(`the miner did not answer http://127.0.0.1:${port}/docs within ${timeoutMs / 1000} s`, {
    hint: 'its last log lines are above; a slow model warm-up needs a longer START_TIMEOUT_S',
  });
}

/** docker run + wait for /docs and /health; on failure the last log lines, and the container removed. */
async function launch(start: Start, reference: string, hotkeyAddress?: string): Promise<string> {
  const { env, deploy, run, say, port, name } = start;
  const environment = containerEnv(env, { port, walletMounted: false, hotkeyAddress });
  const id = await docker(runCommand({ name, image: reference, port, network: deploy.runNetwork, env: environment }), run);
  const timeoutMs = deploy.startTimeoutMs;
  const serving = await waitUntilServing({ name, port, timeoutMs, run, paths: ['/docs', '/health'], logLines: 30 });
  if (serving.ok) return id;
  say('    last log lines of the container:');
  for (const line of serving.logs.output.split('\n')) say(`      ${line}`);
  await removeContainer(name, run);
  throw notServing(serving, port, timeoutMs);
}

/** Launch `reference`; when it fails and a previous tag ran, start that one again before the error goes on. */
async function launchOrRestorePrevious(
  start: Start,
  reference: string,
  previousTag: string | undefined,
  repo: string,
  hotkeyAddress?: string,
) {
  try {
    return await launch(start, reference, hotkeyAddress);
  } catch (error) {
    const before = previousTag ? readState(start.deploy.stateDir, repo, previousTag).build : undefined;
    if (before) {
      start.say(`    restarting the previous tag ${previousTag}`);
      await launch(start, before.reference, hotkeyAddress).catch((again: unknown) =>
        start.say(`    the previous tag did not come back either: ${(again as Error).message}`),
      );
    }
    throw error;
  }
}

/** The start step: nothing to do when the container already runs this image; else replace it, and record it. */
async function startTag(start: Start, config: MinerConfig, repo: string, tag: string, history: StartHistory) {
  const { deploy, run, port, name } = start;
  const state = readState(deploy.stateDir, repo, tag);
  const built = requireStep(state, 'build', 'built image');
  const local = await dockerProbe(imageIdCommand(built.reference), run);
  if (!local.ok)
    throw new MinerError(`the image ${built.reference} is not in the local Docker engine`, {
      hint: `run tasks/build.ts --tag ${tag} first`,
    });
  const hotkeyAddress = minerHotkeyAddress(config);

  const previous = await containerState(name, run);
  // A container with a mount (the wallet, from an older start) is replaced even when its image is current.
  const current = previous?.running && previous.image === local.stdout && previous.mounts === 0;
  if (current && (await answers200(`http://127.0.0.1:${port}/docs`)))
    return {
      containerId: previous.id,
      result: 'skipped' as const,
      produced: `${name} already runs this image (${previous.id.slice(0, 12)})`,
    };
  if (!previous?.running && !(await portIsFree(port)))
    throw new MinerError(`port ${port} is already in use by another process`, {
      hint: 'stop that process or set MINER_PORT to a free port in .env',
    });
  const previousTag = previous ? history.started.findLast((entry) => entry.tag !== tag)?.tag : undefined;
  if (previous) await docker(removeContainerCommand(name), run);
  const containerId = await launchOrRestorePrevious(start, built.reference, previousTag, repo, hotkeyAddress);
  const at = new Date().toISOString();
  await writeState(deploy.stateDir, { ...state, start: { containerId, name, port, at } });
  history.started.push({ tag, digest: state.push?.digest, containerId, at });
  await writeHistory(deploy.stateDir, repo, { started: history.started.slice(-20) });
  return { containerId, produced: `${name} ${containerId.slice(0, 12)} on port ${port}` };
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
    const tag = chooseTag(flags, deploy, target.repo, history);
    const say = flags.json ? err : out;
    const start: Start = { env, deploy, run: { env, verbose: flags.verbose }, say, port: config.server.port, name: deploy.containerName };
    const { port, name } = start;
    let containerId = '';
    await runStep(
      { step: 'start', stateDir: deploy.stateDir, env, out: say, tag },
      `run ${target.image}:${tag} as ${name} on port ${port}`,
      async () => {
        const started = await startTag(start, config, target.repo, tag, history);
        containerId = started.containerId;
        return { result: started.result, produced: started.produced };
      },
    );
    if (flags.json) out(JSON.stringify({ container: containerId, name, tag, port }));
    else {
      out(`Miner running: ${containerId}`);
      out(`  logs: docker logs -f ${name}`);
      out(`  stop: docker stop ${name}`);
    }
    return 0;
  },
});

runIfEntryPoint(import.meta.url, main);
