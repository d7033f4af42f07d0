/**
 * Every environment variable a miner may set, in one table: its name and aliases, how its value is parsed and
 * checked, its default, one line of documentation, its group, whether the miner container gets it and whether it
 * is a secret. From this table come the server's configuration (loadConfig in config.ts), the container's
 * environment (lib/deploy/docker.ts containerEnv), env.example and docs/configuration.md
 * (`node scripts/settings-docs.ts --write`). A new setting is one entry here.
 */
import { isIPv4 } from 'node:net';
import { decodeHotkey } from '../protocol/signature.ts';
import { MinerError } from './errors.ts';
import { LOG_LEVELS } from './log.ts';

export type Env = Record<string, string | undefined>;

/**
 * onnxruntime's graph optimisation levels. 'all' adds the NCHWc layout rewrite: faster for plain convolutions,
 * but on a T-DEED-shaped RegNetY it measured no faster and 300 MB more peak memory (its reorder copies of
 * full-resolution activations), so 'extended' is the default.
 */
export const GRAPH_OPTIMIZATIONS = ['disabled', 'basic', 'extended', 'all'] as const;
export type GraphOptimization = (typeof GRAPH_OPTIMIZATIONS)[number];

/** drand quicknet public key (G2, compressed) (docs/chain.md). */
export const QUICKNET_PUBLIC_KEY =
  '83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a';

const NETWORK_ENDPOINTS: Record<string, string> = {
  finney: 'wss://entrypoint-finney.opentensor.ai:443',
  test: 'wss://test.finney.opentensor.ai:443',
  local: 'ws://127.0.0.1:9944',
};

/** Parses a set (trimmed, non-empty) value; throws the invalid-variable error naming the variable it came from. */
export type Parser<T> = (value: string, name: string) => T;

export const GROUPS = {
  server: { title: 'Miner server', intro: '' },
  video: { title: 'Video', intro: '' },
  model: { title: 'Model', intro: '' },
  security: {
    title: 'Request security (docs/security.md)',
    intro:
      "Stake gate and signature checks; both default to true. Spot checks run with both false (the harness's names BLACKLIST and VERIFY are accepted).",
  },
  chain: { title: 'Chain', intro: '' },
  wallet: { title: 'Wallet', intro: 'The hotkey signs commitments and the axon; the coldkey is never needed.' },
  axon: { title: 'Axon (tasks/axon.ts)', intro: '' },
  deploy: { title: 'Deploy (just deploy tag=v1.0.0; tasks/build, push, share, commit, start)', intro: '' },
  process: {
    title: 'Process (not in env.example)',
    intro: 'Read before any .env file or for tests only, so a line in .env cannot set them or a miner should not.',
  },
} as const;
export type SettingGroup = keyof typeof GROUPS;

export interface Setting<T> {
  /** Other names accepted, in order after the canonical name (the spot-check harness's, btcli's). */
  aliases?: readonly string[];
  group: SettingGroup;
  /** One line: the docs table's meaning column and env.example's comment. */
  doc: string;
  parse: Parser<T>;
  /** As a miner writes it, parsed like a set value. Absent: unset is `undefined`. */
  default?: string;
  /** The docs' default column where `default` is absent or not worth repeating ("from the wallet"). */
  defaultText?: string;
  /** env.example writes `# NAME=example` (commented out) instead of `NAME=default`. */
  example?: string;
  /** Passed to the miner container by tasks/start.ts (the server reads it there). */
  container?: boolean;
  /** A credential: never printed in messages; never in the container unless the server needs it (HEALTH_TOKEN). */
  secret?: boolean;
  /** Documented in docs/configuration.md only: not offered in the env.example a miner copies to .env. */
  docsOnly?: boolean;
}

function invalid(name: string, value: string, expected: string): MinerError {
  return new MinerError(`${name}=${JSON.stringify(value)} is not valid: expected ${expected}`, {
    hint: `fix ${name} in your .env file or environment (see env.example)`,
  });
}

const text: Parser<string> = (value) => value;

const bool: Parser<boolean> = (value, name) => {
  const v = value.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw invalid(name, value, 'true/false (also 1/0, yes/no)');
};

function integer(min: number, max: number): Parser<number> {
  return (value, name) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value) || n < min || n > max) throw invalid(name, value, `an integer from ${min} to ${max}`);
    return n;
  };
}

function number(min: number, max: number): Parser<number> {
  return (value, name) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw invalid(name, value, `a number from ${min} to ${max}`);
    return n;
  };
}

/**
 * A problem with a profile name, or undefined when it is one: it becomes a file name (.env.NAME) and a folder
 * (.deploy/profiles/NAME). `local` and `defaults` are dotenv-flow's own files (.env.local, .env.defaults), read
 * for every profile.
 */
export function profileNameProblem(name: string): string | undefined {
  if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(name)) return 'a profile name is lower-case letters, digits, - and _ (at most 32, e.g. hk2)';
  if (name === 'local' || name === 'defaults') return `${name} is taken by dotenv-flow's own .env.${name}: choose another name`;
  return undefined;
}

const profileName: Parser<string> = (value, name) => {
  if (profileNameProblem(value))
    throw invalid(name, value, 'a profile name: lower-case letters, digits, - and _ (e.g. hk2), not local or defaults');
  return value;
};

/** ssh://[user@]host[:port] or a docker context name (docker's own transports; no tcp:// without TLS). */
const deployHost: Parser<string> = (value, name) => {
  if (/^ssh:\/\/([^@/\s]+@)?[^@/:\s]+(:\d{1,5})?\/?$/.test(value)) return value.replace(/\/$/, '');
  if (/^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$/.test(value)) return value;
  throw invalid(name, value, 'ssh://user@host[:port] or the name of a docker context (docker context ls)');
};

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** "512MiB", "64k", "1048576" -> bytes. */
const bytes: Parser<number> = (value, name) => {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value);
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined || Number(match[1]) <= 0) throw invalid(name, value, 'a size such as 65536, 64KiB or 512MiB');
  return Math.floor(Number(match[1]) * unit);
};

function choice<T extends string>(choices: readonly T[]): Parser<T> {
  return (value, name) => {
    const v = value.toLowerCase();
    if (!(choices as readonly string[]).includes(v)) throw invalid(name, value, choices.join(', '));
    return v as T;
  };
}

const list: Parser<string[]> = (value) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** `finney`, `test`, `local` or a ws(s) URL -> {network, endpoint}. */
const endpoint: Parser<{ network: string; endpoint: string }> = (value, name) => {
  const known = NETWORK_ENDPOINTS[value.toLowerCase()];
  if (known) return { network: value.toLowerCase(), endpoint: known };
  if (/^wss?:\/\/[^\s/]+/.test(value)) return { network: 'custom', endpoint: value };
  throw invalid(name, value, 'finney, test, local or a ws:// / wss:// URL');
};

const providers: Parser<string[]> = (value, name) => {
  const names = list(value, name).map((p) => p.toLowerCase());
  if (names.some((p) => !['cpu', 'cuda'].includes(p))) throw invalid(name, value, 'a comma-separated list of cpu, cuda');
  return names;
};

const drandKey: Parser<string> = (value, name) => {
  if (!/^(0x)?[0-9a-fA-F]{192}$/.test(value)) throw invalid(name, value, 'a 96-byte BLS12-381 G2 public key in hex');
  return value.replace(/^0x/, '').toLowerCase();
};

const hotkeyAddress: Parser<string> = (value, name) => {
  if (!decodeHotkey(value)) throw invalid(name, value, "your hotkey's SS58 address, as `btcli wallet list` shows it");
  return value;
};

/** A header-safe secret long enough not to be guessed; the message never repeats it. */
const healthToken: Parser<string> = (value, name) => {
  if (!/^[\x21-\x7e]{16,}$/.test(value))
    throw new MinerError(`${name} is not valid: expected at least 16 printable ASCII characters without spaces`, {
      hint: `set ${name} to a random string, e.g. the output of \`openssl rand -hex 16\`, or leave it empty`,
    });
  return value;
};

const ipv4: Parser<string> = (value, name) => {
  if (!isIPv4(value)) throw invalid(name, value, 'an IPv4 address such as 203.0.113.7');
  return value;
};

/** The table. Order is the order of env.example and docs/configuration.md. */
export const SETTINGS = {
  // ---- Miner server
  MINER_PORT: {
    aliases: ['PORT'],
    group: 'server',
    doc: 'port the server listens on (the validator calls `http://<axon ip>:<port>/challenge`); 0: any free port (tests)',
    parse: integer(0, 65535),
    default: '8000',
    container: true,
  },
  MINER_HOST: { group: 'server', doc: 'address the server binds', parse: text, default: '0.0.0.0' },
  MAX_BODY_BYTES: {
    group: 'server',
    doc: "larger request bodies get 413 (Score's validator sends about 150 bytes)",
    parse: bytes,
    default: '8KiB',
    container: true,
  },
  MAX_CONNECTIONS_PER_ADDRESS: {
    group: 'server',
    doc: 'open connections per source address (IPv6: per /64), checked before any signature work; one more is closed at once; 0: no limit (or raise it) when a reverse proxy on one address forwards every caller',
    parse: integer(0, 100_000),
    default: '16',
    container: true,
  },
  RATE_LIMIT_PER_S: {
    group: 'server',
    doc: 'requests per second per source address, sustained, every route counted; more get 429 with Retry-After, before any signature work; keep a monitoring probe under it; 0: no limit',
    parse: number(0, 1_000_000),
    default: '5',
    container: true,
  },
  RATE_LIMIT_BURST: {
    group: 'server',
    doc: 'requests per source address at once (the validator sends a handful of challenges a minute)',
    parse: integer(1, 1_000_000),
    default: '10',
    container: true,
  },
  INFERENCE_CONCURRENCY: {
    group: 'server',
    doc: 'challenges inferred at once (one worker thread each)',
    parse: integer(1, 64),
    default: '1',
    container: true,
  },
  QUEUE_MAX: {
    group: 'server',
    doc: 'challenges that may wait for a worker; more get 503',
    parse: integer(0, 1000),
    default: '4',
    container: true,
  },
  CHALLENGE_DEADLINE_S: {
    group: 'server',
    doc: 'seconds from receipt after which a challenge is answered with the windows finished so far (the validator waits 30 s; a late answer scores 0, a partial one in time scores what it holds)',
    parse: number(1, 600),
    default: '27',
    container: true,
  },
  HEADERS_TIMEOUT_S: {
    group: 'server',
    doc: 'seconds a client has to send its headers (else 408, JSON)',
    parse: number(1, 600),
    default: '10',
    container: true,
  },
  REQUEST_TIMEOUT_S: {
    group: 'server',
    doc: 'seconds a client has to send its whole request (else 408, JSON)',
    parse: number(1, 600),
    default: '10',
    container: true,
  },
  HEALTH_TRUST_LOOPBACK: {
    group: 'server',
    doc: "callers on this machine see /health's details (paths, queue, hotkey, metagraph sync; strangers get liveness only); false when a reverse proxy on this machine forwards other callers",
    parse: bool,
    default: 'true',
    container: true,
  },
  HEALTH_TOKEN: {
    group: 'server',
    doc: "`Authorization: Bearer <token>` sees /health's details from anywhere (in a container the host's requests do not come from loopback: use this); at least 16 printable characters, e.g. `openssl rand -hex 16`",
    parse: healthToken,
    example: '',
    container: true,
    secret: true,
  },
  LOG_LEVEL: { group: 'server', doc: 'debug, info, warn or error', parse: choice(LOG_LEVELS), default: 'info', container: true },

  // ---- Video
  FFMPEG_PATH: {
    group: 'video',
    doc: 'ffmpeg binary, any version (must run); default an `ffmpeg` 5.1+ on PATH, then the bundled 2018 build in @ffmpeg-installer/ffmpeg',
    parse: text,
    example: '/usr/bin/ffmpeg',
    container: true,
  },
  DOWNLOAD_TIMEOUT_S: {
    group: 'video',
    doc: "whole-download timeout for video_url (the validator's whole budget is 30 s)",
    parse: number(0.1, 600),
    default: '20',
    container: true,
  },
  DOWNLOAD_MAX_BYTES: { group: 'video', doc: 'size cap for video_url', parse: bytes, default: '512MiB', container: true },
  DOWNLOAD_MAX_REDIRECTS: { group: 'video', doc: 'redirects followed', parse: integer(0, 20), default: '5', container: true },
  DOWNLOAD_ALLOW_PRIVATE: {
    group: 'video',
    doc: 'let video_url reach loopback, private, link-local, CGNAT, multicast and other internal addresses (checked on the resolved address at every redirect): local testing only (demo, spot-check rehearsal)',
    parse: bool,
    default: 'false',
    container: true,
  },
  MAX_VIDEO_SECONDS: {
    group: 'video',
    doc: 'seconds of video decoded at most (a timestamp gap in a file cannot mint hours of frames)',
    parse: number(1, 3600),
    default: '120',
    container: true,
  },
  DECODE_WINDOWS_AHEAD: {
    group: 'video',
    doc: 'decoded clip windows that may wait for the model (decoding runs ahead of inference by this many)',
    parse: integer(1, 16),
    default: '2',
    container: true,
  },

  // ---- Model
  MODEL_DIR: {
    group: 'model',
    doc: 'model folder (model.onnx + model.json), relative to the project root or absolute; the image has its own baked in',
    parse: text,
    default: 'models/default',
  },
  ORT_PROVIDERS: {
    group: 'model',
    doc: 'onnxruntime execution providers, in order: cpu, or cuda,cpu (cuda falls back to cpu with a warning)',
    parse: providers,
    default: 'cpu',
    container: true,
  },
  ORT_THREADS: {
    group: 'model',
    doc: 'onnxruntime intra-op threads; fixed so results are reproducible (spot checks re-run your image)',
    parse: integer(1, 256),
    default: '2',
    container: true,
  },
  ORT_MEM_PATTERN: {
    group: 'model',
    doc: "onnxruntime's memory-pattern optimisation (off: lower peak memory, same predictions)",
    parse: bool,
    default: 'false',
    container: true,
  },
  ORT_GRAPH_OPTIMIZATION: {
    group: 'model',
    doc: "onnxruntime's graph optimisation level: disabled, basic, extended or all (all adds the NCHWc layout rewrite: faster for plain convolutions, 300 MB more and no faster for a T-DEED RegNetY; measure yours with `npm run bench -- --model DIR`)",
    parse: choice(GRAPH_OPTIMIZATIONS),
    default: 'extended',
    container: true,
  },

  // ---- Request security
  BLACKLIST_ENABLED: {
    aliases: ['BLACKLIST'],
    group: 'security',
    doc: 'stake gate: callers need MIN_STAKE_THRESHOLD or a place in VALIDATOR_ALLOWLIST',
    parse: bool,
    default: 'true',
    container: true,
  },
  VERIFY_ENABLED: {
    aliases: ['VERIFY'],
    group: 'security',
    doc: "signature + nonce checks (against the hotkey's address, MINER_HOTKEY_SS58)",
    parse: bool,
    default: 'true',
    container: true,
  },
  MIN_STAKE_THRESHOLD: {
    group: 'security',
    doc: 'minimum total caller stake in TAO',
    parse: number(0, 1e12),
    default: '1000',
    container: true,
  },
  VALIDATOR_ALLOWLIST: {
    group: 'security',
    doc: "comma-separated SS58 hotkeys that skip the stake lookup (they still must sign), e.g. Score's validator",
    parse: list,
    example: '5DFwFpurRFaT5VtjdsATUnRakGhvUdgCghF61457QbWdsnJp',
    container: true,
  },
  METAGRAPH_REFRESH_S: {
    group: 'security',
    doc: 'how often the stake gate re-reads the metagraph (seconds)',
    parse: number(1, 86400),
    default: '300',
    container: true,
  },

  // ---- Chain
  BITTENSOR_SUBTENSOR_ENDPOINT: {
    aliases: ['SUBTENSOR_NETWORK'],
    group: 'chain',
    doc: 'finney, test, local or a ws:// / wss:// URL',
    parse: endpoint,
    default: 'finney',
    container: true,
  },
  BITTENSOR_SUBTENSOR_FALLBACK: {
    group: 'chain',
    doc: 'endpoint tried when the first cannot be reached',
    parse: endpoint,
    example: 'wss://lite.chain.opentensor.ai:443',
    container: true,
  },
  CHAIN_CONNECT_TIMEOUT_S: {
    group: 'chain',
    doc: 'chain connection timeout (seconds)',
    parse: number(1, 600),
    default: '30',
    container: true,
  },
  SCOREVISION_NETUID: {
    aliases: ['NETUID'],
    group: 'chain',
    doc: "Score Vision's netuid: 44 on finney (423 is its testnet subnet)",
    parse: integer(0, 65535),
    default: '44',
    container: true,
  },
  SCOREVISION_ELEMENT_ID: { group: 'chain', doc: 'element_id in the commitment', parse: text, default: 'manako/DetectFootballEvent' },
  DRAND_PUBLIC_KEY: {
    group: 'chain',
    doc: 'drand public key used to timelock-encrypt commitments (what the chain uses); tests use their own beacon',
    parse: drandKey,
    default: QUICKNET_PUBLIC_KEY,
    defaultText: 'drand quicknet',
    example: QUICKNET_PUBLIC_KEY,
  },

  // ---- Wallet
  BITTENSOR_WALLET_PATH: { group: 'wallet', doc: 'wallet folder', parse: text, default: '~/.bittensor/wallets' },
  BITTENSOR_WALLET_COLD: {
    aliases: ['WALLET_NAME', 'COLDKEY'],
    group: 'wallet',
    doc: 'coldkey (wallet) name',
    parse: text,
    default: 'default',
    container: true,
  },
  BITTENSOR_WALLET_HOT: {
    aliases: ['HOTKEY_NAME', 'HOTKEY'],
    group: 'wallet',
    doc: 'hotkey name',
    parse: text,
    default: 'default',
    container: true,
  },
  MINER_HOTKEY_SS58: {
    group: 'wallet',
    doc: "the hotkey's public SS58 address the server verifies requests against (VERIFY_ENABLED); unset, the server reads {hotkey}pub.txt, else the hotkey file's ss58Address; tasks/start.ts reads it here and gives the container the address alone, no wallet",
    parse: hotkeyAddress,
    defaultText: 'from the wallet',
    example: '',
    container: true,
  },

  // ---- Axon
  AXON_IP: { group: 'axon', doc: 'public IPv4 the validator should call', parse: ipv4, example: '203.0.113.7' },
  AXON_PORT: {
    group: 'axon',
    doc: 'public port the validator should call',
    parse: integer(1, 65535),
    defaultText: 'MINER_PORT',
    example: '8000',
  },

  // ---- Deploy
  IMAGE_REGISTRY: {
    group: 'deploy',
    doc: 'where the image goes: dockerhub, ghcr or a registry host[:port]',
    parse: text,
    default: 'dockerhub',
  },
  DOCKERHUB_USERNAME: { group: 'deploy', doc: 'Docker Hub account', parse: text, example: 'yourname' },
  DOCKERHUB_TOKEN: {
    group: 'deploy',
    doc: 'Docker Hub personal access token with Read & Write (never passed to the container)',
    parse: text,
    example: 'dckr_pat_...',
    secret: true,
  },
  REGISTRY_USERNAME: { group: 'deploy', doc: 'account for ghcr (your GitHub user) or another registry', parse: text, example: 'yourname' },
  REGISTRY_TOKEN: {
    group: 'deploy',
    doc: 'token for ghcr (write:packages) or another registry (never passed to the container)',
    parse: text,
    example: 'ghp_...',
    secret: true,
  },
  IMAGE_REPO: {
    aliases: ['DOCKERHUB_REPO'],
    group: 'deploy',
    doc: 'repository name: `<registry>/<user>/<IMAGE_REPO>`',
    parse: text,
    default: 'pt-solution',
  },
  SCORE_DOCKERHUB_USER: {
    group: 'deploy',
    doc: "Score's Docker Hub account, added as a read-only collaborator by tasks/share.ts",
    parse: text,
    default: 'scorevision',
  },
  MODEL_SRC: {
    group: 'deploy',
    doc: 'build argument for Dockerfile.miner (read by tasks/build.ts): your model folder baked in, inside the project',
    parse: text,
    example: 'models/mine',
  },
  BASE_IMAGE: {
    group: 'deploy',
    doc: 'build argument for Dockerfile.miner (read by tasks/build.ts): the Node 24 base image',
    parse: text,
    defaultText: 'node:24-bookworm-slim',
    example: 'node:24-bookworm-slim',
  },
  BUILD_PLATFORM: { group: 'deploy', doc: 'docker build --platform', parse: text, default: 'linux/amd64' },
  BUILD_NETWORK: {
    group: 'deploy',
    doc: "docker build --network for RUN steps (host where the build needs the host's network)",
    parse: text,
    example: 'host',
  },
  MINER_CONTAINER: { group: 'deploy', doc: "the miner container's fixed name", parse: text, default: 'score-miner' },
  MINER_GPUS: {
    group: 'deploy',
    doc: "docker run --gpus for the miner container and the rehearsal's runs (e.g. all, on a GPU host with NVIDIA's container toolkit)",
    parse: text,
    example: 'all',
  },
  MINER_NETWORK: {
    group: 'deploy',
    doc: 'docker run --network for the miner container (default: publish MINER_PORT)',
    parse: text,
    example: 'host',
  },
  START_TIMEOUT_S: {
    group: 'deploy',
    doc: 'how long tasks/start.ts waits for /docs and /health before it rolls back (seconds)',
    parse: number(1, 3600),
    default: '120',
  },
  DEPLOY_STATE_DIR: {
    group: 'deploy',
    doc: "what each deploy step produced (for reruns), the profiles' own records (profiles/NAME) and the deploy locks (locks/ENGINE--CONTAINER); git-ignored",
    parse: text,
    default: '.deploy',
  },
  DEPLOY_HOST: {
    group: 'deploy',
    doc: "the Docker engine that rehearses, starts and rolls back the miner: ssh://user@host[:port] or a docker context name (default: this machine's engine; build and push stay here)",
    parse: deployHost,
    example: 'ssh://miner@gpu-box.example',
  },
  REHEARSAL_CLIP: {
    group: 'deploy',
    doc: 'the mp4 the rehearse step replays (default: a synthetic clip made with ffmpeg)',
    parse: text,
    example: 'clips/match.mp4',
  },
  REHEARSAL_READY_TIMEOUT_S: {
    group: 'deploy',
    doc: "how long the rehearse step waits for GET /docs 200, as Score's harness does (seconds)",
    parse: number(1, 3600),
    default: '120',
  },
  DOCKERHUB_API_URL: {
    group: 'deploy',
    doc: "Docker Hub's web API (change only to test against a stand-in)",
    parse: text,
    default: 'https://hub.docker.com',
    example: 'https://hub.docker.com',
  },
  DOCKERHUB_REGISTRY: {
    group: 'deploy',
    doc: "Docker Hub's registry host (change only to test against a stand-in)",
    parse: text,
    default: 'docker.io',
    example: 'docker.io',
  },

  // ---- Process: read by glibc, dotenv-flow's caller and the wallet loader, not by loadConfig
  DEPLOY_PROFILE: {
    group: 'process',
    doc: 'the profile (`env=NAME` on a recipe, `--env NAME` on a task): `.env.NAME` is read over `.env` (its own hotkey, MINER_PORT, MINER_CONTAINER), and its commit, start and start history are kept in DEPLOY_STATE_DIR/profiles/NAME',
    parse: profileName,
    docsOnly: true,
  },
  DOTENV_DIR: {
    group: 'process',
    doc: 'the folder the .env files are read from (default: the project root; tests)',
    parse: text,
    docsOnly: true,
  },
  DOTENV_DISABLE: { group: 'process', doc: '`1` skips the .env files (the image sets it)', parse: text, docsOnly: true },
  GLIBC_TUNABLES: {
    group: 'process',
    doc: 'malloc on transparent huge pages: each ffmpeg spawn otherwise costs onnxruntime a page fault per 4 KB of its activations (docs/benchmark.md); read by glibc at process start, so not from .env',
    parse: text,
    defaultText: '`glibc.malloc.hugetlb=1` from `npm start`, the image, the demo and the bench',
    docsOnly: true,
  },
  HOTKEY_URI: {
    group: 'process',
    doc: 'a dev key such as //Alice instead of a wallet file, with ALLOW_DEV_KEYS=1 (local test chains only)',
    parse: text,
    docsOnly: true,
  },
  ALLOW_DEV_KEYS: { group: 'process', doc: '`1` allows HOTKEY_URI (tests only)', parse: text, docsOnly: true },
} satisfies Record<string, Setting<unknown>>;

export type SettingName = keyof typeof SETTINGS;
type Table = typeof SETTINGS;
/** Parsed values by canonical name: a setting with a default always has a value. */
export type SettingValues = {
  [K in SettingName]: Table[K] extends { parse: Parser<infer T>; default: string }
    ? T
    : Table[K] extends { parse: Parser<infer T> }
      ? T | undefined
      : never;
};

/** The table as a list, each entry with its name. */
export const SETTING_LIST: readonly (Setting<unknown> & { name: SettingName })[] = Object.entries(SETTINGS).map(([name, setting]) => ({
  ...(setting as Setting<unknown>),
  name: name as SettingName,
}));

/** Every name a miner may write: canonical names and aliases. */
export const SETTING_NAMES: ReadonlySet<string> = new Set(SETTING_LIST.flatMap((s) => [s.name, ...(s.aliases ?? [])]));

/** First non-empty (trimmed) value among a setting's name and its aliases, with the name it came from. */
export function findSetting(env: Env, name: SettingName): { name: string; value: string } | undefined {
  const setting: Setting<unknown> = SETTINGS[name];
  for (const candidate of [name, ...(setting.aliases ?? [])]) {
    const value = env[candidate]?.trim();
    if (value) return { name: candidate, value };
  }
  return undefined;
}

/** One setting, parsed: its value under any of its names, else its default, else undefined. */
export function readSetting<K extends SettingName>(env: Env, name: K): SettingValues[K] {
  const setting: Setting<unknown> = SETTINGS[name];
  const found = findSetting(env, name);
  if (found) return setting.parse(found.value, found.name) as SettingValues[K];
  return (setting.default === undefined ? undefined : setting.parse(setting.default, name)) as SettingValues[K];
}

/** Every setting, parsed in table order (the first bad value stops with its invalid-variable error). */
export function readSettings(env: Env): SettingValues {
  const values: Record<string, unknown> = {};
  for (const { name } of SETTING_LIST) values[name] = readSetting(env, name);
  return values as SettingValues;
}

/**
 * What the miner container's environment holds of the settings: those marked `container` that are set, under
 * their canonical names whichever alias gave them (VERIFY=false arrives as VERIFY_ENABLED=false), checked as
 * loadConfig checks them. Registry credentials are never among them.
 */
export function containerSettings(env: Env): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const setting of SETTING_LIST) {
    if (!setting.container) continue;
    const found = findSetting(env, setting.name);
    if (!found) continue;
    setting.parse(found.value, found.name);
    picked[setting.name] = found.value;
  }
  return picked;
}
