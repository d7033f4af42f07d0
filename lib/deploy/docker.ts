/**
 * The docker commands the deploy steps run, as pure functions returning argv (tests assert on them without a
 * daemon), and the environment a miner container may see. Tasks run these argv through zx's `$`, which quotes
 * each element: nothing here is ever joined into a shell string.
 */
import path from 'node:path';
import { MinerError } from '../core/errors.ts';
import { containerSettings, type Env } from '../core/settings.ts';

export interface BuildSpec {
  dockerfile: string;
  /** `name:tag`, already lower-cased. */
  reference: string;
  platform: string;
  buildArgs: Record<string, string>;
  context: string;
  /** `host` when RUN steps must reach the network through the host (tests; hosts without a bridge). */
  network?: string;
}

export function buildCommand(spec: BuildSpec): string[] {
  const args = ['build', '-f', spec.dockerfile, '--platform', spec.platform, '-t', spec.reference];
  if (spec.network) args.push('--network', spec.network);
  for (const [name, value] of Object.entries(spec.buildArgs)) args.push('--build-arg', `${name}=${value}`);
  args.push(spec.context);
  return args;
}

/** The token goes on stdin, never on the command line (where `ps` and shell history would show it). */
export function loginCommand(registryHost: string, username: string): string[] {
  return ['login', registryHost, '--username', username, '--password-stdin'];
}

export function pushCommand(reference: string): string[] {
  return ['push', reference];
}

export function imageIdCommand(reference: string): string[] {
  return ['image', 'inspect', '--format', '{{.Id}}', reference];
}

export function pullCommand(reference: string): string[] {
  return ['pull', reference];
}

/** The image's size in bytes (docker counts in decimal units; lib/deploy/spotcheck.ts parseImageSize reads it). */
export function imageSizeCommand(reference: string): string[] {
  return ['image', 'inspect', '--format', '{{.Size}}', reference];
}

/** `-f`: stops a running container too; a container that is not there is an error the callers probe for. */
export function removeContainerCommand(name: string): string[] {
  return ['rm', '-f', name];
}

/** The last `lines` lines a container wrote (stdout and stderr, each on its own stream). */
export function containerLogsCommand(name: string, lines: number): string[] {
  return ['logs', '--tail', String(lines), name];
}

/** What the deploy tasks need to know of a container, one line, space-separated (read by parseContainerState). */
const CONTAINER_STATE_FORMAT = '{{.Id}} {{.Image}} {{.State.Running}} {{.State.ExitCode}} {{.RestartCount}} {{len .Mounts}}';

export function containerStateCommand(name: string): string[] {
  return ['container', 'inspect', '--format', CONTAINER_STATE_FORMAT, name];
}

/** The container's HEALTHCHECK (from its image), as JSON: `{"Test":["CMD",...]}`, or null. */
export function healthcheckCommand(name: string): string[] {
  return ['container', 'inspect', '--format', '{{json .Config.Healthcheck}}', name];
}

/**
 * healthcheckCommand's output -> the argv `docker exec` runs to check the container now: `CMD` as given,
 * `CMD-SHELL` through /bin/sh; undefined without a usable check (none, `NONE`, or not that JSON).
 */
export function healthcheckExec(output: string): string[] | undefined {
  let test: unknown;
  try {
    test = (JSON.parse(output) as { Test?: unknown } | null)?.Test;
  } catch {
    return undefined;
  }
  if (!Array.isArray(test) || test.length < 2 || !test.every((part) => typeof part === 'string')) return undefined;
  const [kind, ...rest] = test as string[];
  if (kind === 'CMD') return rest;
  if (kind === 'CMD-SHELL' && rest.length === 1) return ['/bin/sh', '-c', rest[0]];
  return undefined;
}

export interface ContainerState {
  id: string;
  /** The image id (`sha256:...`) it runs. */
  image: string;
  running: boolean;
  /** Meaningful once it stopped. */
  exitCode: number;
  /** Times docker restarted it (the restart policy hides a crash loop behind `running`). */
  restarts: number;
  /** Volumes and bind mounts (a container from an older start had the wallet mounted). */
  mounts: number;
}

/** containerStateCommand's output; undefined when it is not that line. */
export function parseContainerState(output: string): ContainerState | undefined {
  const fields = output.trim().split(' ');
  if (fields.length !== 6 || !fields[0] || !/^(true|false)$/.test(fields[2])) return undefined;
  const [id, image, running, exitCode, restarts, mounts] = fields;
  const numbers = [exitCode, restarts, mounts].map(Number);
  if (numbers.some((n) => !Number.isInteger(n))) return undefined;
  return { id, image, running: running === 'true', exitCode: numbers[0], restarts: numbers[1], mounts: numbers[2] };
}

export interface RunSpec {
  name: string;
  /** `name:tag` or `name@sha256:...`. */
  image: string;
  port: number;
  /** `host`: share the host's network (no -p); otherwise publish `port` on the host. */
  network?: string;
  /** docker's --gpus (e.g. all): the GPU host's cards for the model. */
  gpus?: string;
  env: Record<string, string>;
  /** Host wallet folder, mounted read-only at WALLET_MOUNT. */
  walletDir?: string;
  /** uid:gid to run as (the owner of the wallet files, so they can be read). */
  user?: string;
}

/** Where the wallet folder appears inside the container. */
export const WALLET_MOUNT = '/wallets';

export function runCommand(spec: RunSpec): string[] {
  // --stop-timeout: docker stop waits 10 s by default, less than a challenge may take to drain (its deadline).
  const args = ['run', '-d', '--name', spec.name, '--restart', 'unless-stopped', '--stop-timeout', '30', '--label', 'score-miner=1'];
  if (spec.network) args.push('--network', spec.network);
  else args.push('-p', `${spec.port}:${spec.port}`);
  if (spec.gpus) args.push('--gpus', spec.gpus);
  if (spec.user) args.push('--user', spec.user);
  if (spec.walletDir) args.push('-v', `${spec.walletDir}:${WALLET_MOUNT}:ro`);
  for (const [name, value] of Object.entries(spec.env)) args.push('-e', `${name}=${value}`);
  args.push(spec.image);
  return args;
}

/**
 * The environment a running miner gets: the settings marked `container` in lib/core/settings.ts that are set,
 * under their canonical names whichever alias gave them (`.env`'s VERIFY=false arrives as VERIFY_ENABLED=false,
 * as `npm start` reads it), the port, and the hotkey's public address. Never a registry token, never the whole
 * `.env` (`--env-file`): the reference CLI leaked the Hub token that way.
 */
export function containerEnv(env: Env, options: { port: number; walletMounted: boolean; hotkeyAddress?: string }): Record<string, string> {
  const picked = containerSettings(env);
  picked.MINER_PORT = String(options.port);
  if (options.walletMounted) picked.BITTENSOR_WALLET_PATH = WALLET_MOUNT;
  if (options.hotkeyAddress) picked.MINER_HOTKEY_SS58 = options.hotkeyAddress;
  return picked;
}

/**
 * A model folder baked into the image must lie inside the build context (docker cannot COPY from outside it;
 * it says only "failed to compute cache key"). Returns the folder relative to the context.
 */
export function modelSourceInContext(context: string, modelSrc: string): string {
  const absolute = path.resolve(context, modelSrc);
  const relative = path.relative(context, absolute);
  if (relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative)) {
    throw new MinerError(`the model folder ${absolute} is outside the build context ${context}`, {
      hint: `copy it into the project (e.g. models/mine) and pass --build-arg MODEL_SRC=models/mine`,
    });
  }
  return relative.split(path.sep).join('/');
}

/** A docker failure as the one-line cause a miner can act on, with the next step for the errors we know. */
export function dockerFailure(args: readonly string[], output: string): MinerError {
  const lines = output
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const cause =
    lines.findLast((line) => /error|denied|unauthorized|failed|cannot|conflict|refused|not found/i.test(line)) ??
    lines.at(-1) ??
    'no output';
  const command = `docker ${args[0]}`;
  const known: [RegExp, string][] = [
    [
      /permission denied.*docker/i,
      'your user may not use Docker: add it to the docker group (`sudo usermod -aG docker $USER`, then log in again)',
    ],
    [
      /Cannot connect to the Docker daemon|docker\.sock|connection refused.*docker/i,
      'start Docker (e.g. `sudo systemctl start docker`) or point DOCKER_HOST at a running daemon',
    ],
    [
      /failed to compute cache key|not found.*COPY|COPY failed/i,
      'a COPY source is missing from the build context: MODEL_SRC must be a folder inside the project and not in .dockerignore',
    ],
    [/unauthorized|authentication required|denied/i, 'check the registry user and token in .env (a token with write access), then rerun'],
    [/port is already allocated|address already in use/i, 'another process uses MINER_PORT: stop it or choose another port in .env'],
    [/is already in use by container/i, 'a container with this name exists: `docker rm -f` it, or set MINER_CONTAINER'],
    [/no such image|manifest unknown|not found/i, 'run the step that makes this image first (tasks/build.ts, or pull it)'],
  ];
  const hint = known.find(([pattern]) => pattern.test(output))?.[1] ?? `rerun with --verbose to see docker's whole output`;
  return new MinerError(`${command} failed: ${cause.slice(0, 300)}`, { hint });
}
