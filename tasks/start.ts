/**
 * Run the miner image on its Docker engine — this machine's, or DEPLOY_HOST's (ssh://user@host or a docker
 * context, where the GPU is): replaces this miner's previous container, waits until the server answers, and goes
 * back to the previous tag when the new one does not come up.
 *
 *   npx tsx tasks/start.ts [--tag v1.0.0] [--env hk2]
 *   npx tsx tasks/start.ts --rollback          (start the tag that ran before the current one, on that engine)
 *
 * This machine's engine runs the tag as built here; a remote engine pulls the pushed digest (it has no build of
 * ours) and its readiness comes from the image's HEALTHCHECK run in the container, not from 127.0.0.1 here.
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
import { type ContainerState, containerEnv, imageIdCommand, removeContainerCommand, runCommand } from '../lib/deploy/docker.ts';
import {
  type DeployEngine,
  deployEngine,
  engineRun,
  engineUnreachable,
  LOCAL_ENGINE,
  lockHome,
  startReference,
} from '../lib/deploy/engine.ts';
import { type DockerRunOptions, docker, dockerProbe } from '../lib/deploy/run-docker.ts';
import { loginToPull, pullImage, registryOf } from '../lib/deploy/spotcheck.ts';
import {
  type DeployState,
  readHistory,
  readState,
  requireStep,
  resolveTag,
  type StartHistory,
  writeHistory,
  writeState,
} from '../lib/deploy/state.ts';
import { runStep } from '../lib/deploy/step.ts';
import { deployTarget } from '../lib/deploy/target.ts';

const USAGE = `usage: npx tsx tasks/start.ts [--tag TAG | --rollback] [--json] [--verbose]

Start the miner container for TAG (default: the tag pushed last) on this machine's Docker engine, or on
DEPLOY_HOST's (the pushed digest, pulled there), replacing this miner's previous container; wait until it
answers; on failure show the container's last log lines and restart the previous tag.

  --tag TAG     the tag to run (built by tasks/build.ts)
  --rollback    start the tag that ran before the current one (on the same engine)
  --env NAME    the profile: .env.NAME over .env
  --json        print {"container", "name", "tag", "port", "host"} on stdout
  --verbose     show docker's output

Reads DEPLOY_HOST, MINER_PORT, MINER_CONTAINER (default score-miner), MINER_NETWORK, MINER_GPUS, START_TIMEOUT_S, the wallet settings,
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
  engine: DeployEngine;
  /** docker's options for that engine. */
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
  engineLabel: string,
): string {
  let tag: string | undefined;
  if (flags.rollback) {
    if (flags.tag) throw new UsageError('give --tag or --rollback, not both');
    tag = history.started.at(-2)?.tag;
    if (!tag) throw new MinerError(`no earlier tag of ${repo} was started on ${engineLabel}`, { hint: 'start one with --tag TAG' });
  } else tag = resolveTag(deploy.stateDir, repo, flags.tag);
  if (!tag) throw new UsageError(`no tag of ${repo} in the deploy state`, 'run tasks/build.ts (and push.ts) first, or give --tag');
  return tag;
}

/** Why a started container did not come up (its last log lines are printed just before). */
function notServing(serving: Extract<Serving, { ok: false }>, start: Start, timeoutMs: number): MinerError {
  const { port, engine } = start;
  if (serving.reason === 'exited')
    return new MinerError(`the miner container exited before answering on port ${port}`, { hint: 'its last log lines are above' });
  const where = engine.remote ? `on ${engine.label} (its HEALTHCHECK, port ${port})` : `http://127.0.0.1:${port}/docs`;
  return new MinerError(`the miner did not answer ${where} within ${timeoutMs / 1000} s`, {
    hint: 'its last log lines are above; a slow model warm-up needs a longer START_TIMEOUT_S',
  });
}

/** docker run + wait for /docs and /health; on failure the last log lines, and the container removed. */
async function launch(start: Start, reference: string, hotkeyAddress?: string): Promise<string> {
  const { env, deploy, engine, run, say, port, name } = start;
  const environment = containerEnv(env, { port, walletMounted: false, hotkeyAddress });
  const id = await docker(
    runCommand({ name, image: reference, port, network: deploy.runNetwork, gpus: deploy.gpus, env: environment }),
    run,
  );
  const timeoutMs = deploy.startTimeoutMs;
  const serving = await waitUntilServing({ name, port, timeoutMs, run, engine, paths: ['/docs', '/health'], logLines: 30 });
  if (serving.ok) return id;
  say('    last log lines of the container:');
  for (const line of serving.logs.output.split('\n')) say(`      ${line}`);
  await removeContainer(name, run);
  throw notServing(serving, start, timeoutMs);
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
    const before = previousTag ? startReference(readState(start.deploy.stateDir, repo, previousTag), start.engine) : undefined;
    if (before) {
      start.say(`    restarting the previous tag ${previousTag}`);
      await launch(start, before, hotkeyAddress).catch((again: unknown) =>
        start.say(`    the previous tag did not come back either: ${(again as Error).message}`),
      );
    }
    throw error;
  }
}

/**
 * The image this start runs on its engine, present there: the local build here (checked), the pushed digest on
 * a remote engine (logged in and pulled there); the image id it has on that engine.
 */
async function imageOnEngine(start: Start, state: DeployState): Promise<{ reference: string; imageId: string }> {
  const { engine, run, deploy } = start;
  if (engine.remote) requireStep(state, 'push', 'pushed digest (the engine on DEPLOY_HOST pulls it)');
  else requireStep(state, 'build', 'built image');
  const reference = startReference(state, engine) as string;
  let local = await dockerProbe(imageIdCommand(reference), run);
  // The first docker call on that engine: one that cannot reach it says so, with ssh's words (not a login failure).
  const unreachable = local.ok ? undefined : engineUnreachable(engine, local.output);
  if (unreachable) throw unreachable;
  if (!local.ok && engine.remote) {
    await loginToPull(registryOf(state.repo), deploy, run);
    await pullImage(reference, run);
    local = await dockerProbe(imageIdCommand(reference), run);
  }
  if (!local.ok)
    throw new MinerError(`the image ${reference} is not in the Docker engine on ${engine.label}`, {
      hint: `run tasks/build.ts --tag ${state.tag} first`,
    });
  return { reference, imageId: local.stdout };
}

/** The running container already is this image and answers: nothing to do. */
async function alreadyServing(start: Start, previous: ContainerState | undefined, imageId: string): Promise<boolean> {
  // A container with a mount (the wallet, from an older start) is replaced even when its image is current.
  if (!previous?.running || previous.image !== imageId || previous.mounts !== 0) return false;
  if (!start.engine.remote) return answers200(`http://127.0.0.1:${start.port}/docs`);
  const serving = await waitUntilServing({ name: start.name, port: start.port, timeoutMs: 3000, run: start.run, engine: start.engine });
  return serving.ok;
}

/** The start step: nothing to do when the container already runs this image; else replace it, and record it. */
async function startTag(start: Start, config: MinerConfig, repo: string, tag: string, history: StartHistory) {
  const { deploy, engine, run, port, name } = start;
  const state = readState(deploy.stateDir, repo, tag);
  const { reference, imageId } = await imageOnEngine(start, state);
  const hotkeyAddress = minerHotkeyAddress(config);

  const previous = await containerState(name, run);
  if (await alreadyServing(start, previous, imageId))
    return {
      containerId: (previous as ContainerState).id,
      result: 'skipped' as const,
      produced: `${name} already runs this image (${(previous as ContainerState).id.slice(0, 12)}) on ${engine.label}`,
    };
  // Only this machine's ports can be asked here; a remote engine's docker run names a taken port itself.
  if (!engine.remote && !previous?.running && !(await portIsFree(port)))
    throw new MinerError(`port ${port} is already in use by another process`, {
      hint: 'stop that process or set MINER_PORT to a free port in .env',
    });
  const previousTag = previous ? historyOn(history, engine).started.findLast((entry) => entry.tag !== tag)?.tag : undefined;
  if (previous) await docker(removeContainerCommand(name), run);
  const containerId = await launchOrRestorePrevious(start, reference, previousTag, repo, hotkeyAddress);
  const at = new Date().toISOString();
  // The start is the profile's own: its state folder, beside the image's build and push records.
  const own = readState(deploy.profileDir, repo, tag);
  await writeState(deploy.profileDir, { ...own, start: { containerId, name, port, host: engine.label, at } });
  history.started.push({ tag, digest: state.push?.digest, containerId, host: engine.label, at });
  await writeHistory(deploy.profileDir, repo, { started: history.started.slice(-20) });
  return { containerId, produced: `${name} ${containerId.slice(0, 12)} on port ${port} of ${engine.label}` };
}

/** The starts on this engine (entries from before DEPLOY_HOST existed ran on this machine). */
function historyOn(history: StartHistory, engine: DeployEngine): StartHistory {
  return { started: history.started.filter((entry) => (entry.host ?? LOCAL_ENGINE.label) === engine.label) };
}

/** How the miner reaches docker's own commands for this container (the engine named when it is not this one). */
function dockerWords(engine: DeployEngine): string {
  if (!engine.remote) return 'docker';
  return engine.dockerEnv.DOCKER_HOST ? `docker -H ${engine.dockerEnv.DOCKER_HOST}` : `docker --context ${engine.dockerEnv.DOCKER_CONTEXT}`;
}

export const main = defineTask({
  usage: USAGE,
  flags: { tag: { type: 'string' }, rollback: { type: 'boolean' } },
  json: true,
  async run({ flags, env, out, err }) {
    const config = loadConfig(env);
    const { deploy } = config;
    const target = deployTarget(deploy);
    const engine = deployEngine(deploy.host);
    // The profile's own history, every engine's; rollback goes back on this one.
    const history = readHistory(deploy.profileDir, target.repo);
    const tag = chooseTag(flags, deploy, target.repo, historyOn(history, engine), engine.label);
    const say = flags.json ? err : out;
    const run = engineRun(env, engine, flags.verbose);
    const start: Start = { env, deploy, engine, run, say, port: config.server.port, name: deploy.containerName };
    const { port, name } = start;
    let containerId = '';
    await runStep(
      { step: 'start', lockHome: lockHome(deploy), out: say, tag },
      `run ${target.image}:${tag} as ${name} on port ${port} of ${engine.label}`,
      async () => {
        const started = await startTag(start, config, target.repo, tag, history);
        containerId = started.containerId;
        return { result: started.result, produced: started.produced };
      },
    );
    if (flags.json) out(JSON.stringify({ container: containerId, name, tag, port, host: engine.label }));
    else {
      out(`Miner running: ${containerId} on ${engine.label}`);
      out(`  logs: ${dockerWords(engine)} logs -f ${name}`);
      out(`  stop: ${dockerWords(engine)} stop ${name}`);
    }
    return 0;
  },
});

runIfEntryPoint(import.meta.url, main);
