/**
 * Environment -> typed, validated configuration, read once. `loadConfig(env)` is pure (tests pass their own
 * env); `loadEnvFiles()` reads `.env*` files with dotenv-flow and is called only at the edges (server, tasks).
 * Every bad value fails with the variable's name, the value and the expected form.
 */
import { isIPv4 } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenvFlow from 'dotenv-flow';
import { decodeHotkey } from '../protocol/signature.ts';
import { MinerError } from './errors.ts';
import { LOG_LEVELS, type LogLevel } from './log.ts';

/**
 * onnxruntime's graph optimisation levels. 'all' adds the NCHWc layout rewrite: faster for plain convolutions,
 * but on a T-DEED-shaped RegNetY it measured no faster and 300 MB more peak memory (its reorder copies of
 * full-resolution activations), so 'extended' is the default.
 */
export const GRAPH_OPTIMIZATIONS = ['disabled', 'basic', 'extended', 'all'] as const;
export type GraphOptimization = (typeof GRAPH_OPTIMIZATIONS)[number];

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** drand quicknet public key (G2, compressed) (docs/chain.md). */
export const QUICKNET_PUBLIC_KEY =
  '83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a';

const NETWORK_ENDPOINTS: Record<string, string> = {
  finney: 'wss://entrypoint-finney.opentensor.ai:443',
  test: 'wss://test.finney.opentensor.ai:443',
  local: 'ws://127.0.0.1:9944',
};

/** The model folder and how onnxruntime runs it (MODEL_DIR, ORT_*); loadModel() takes it as its options. */
export interface ModelSettings {
  dir: string;
  providers: string[];
  threads: number;
  /** onnxruntime's enableMemPattern (ORT_MEM_PATTERN); off measured lower peak memory, same predictions. */
  memPattern: boolean;
  /** onnxruntime's graph optimisation level (ORT_GRAPH_OPTIMIZATION); see GRAPH_OPTIMIZATIONS. */
  graphOptimization: GraphOptimization;
}

export interface MinerConfig {
  log: {
    /** LOG_LEVEL (default info); tasks' --verbose overrides it with debug. */
    level: LogLevel;
  };
  server: {
    host: string;
    port: number;
    bodyMaxBytes: number;
    queueMax: number;
    concurrency: number;
    /** CHALLENGE_DEADLINE_S from receipt: past it the answer is what is done (the validator gives 30 s). */
    challengeDeadlineMs: number;
    /** Node's header and body read timeouts: a slow client gets 408 instead of holding a socket. */
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    /**
     * Per source address (server/limits.ts), checked before any hashing or signature work: open connections
     * (MAX_CONNECTIONS_PER_ADDRESS, more are closed at once) and requests per second (RATE_LIMIT_PER_S sustained,
     * RATE_LIMIT_BURST at once; more get 429). 0 turns a limit off.
     */
    connectionsPerAddress: number;
    requestsPerSecond: number;
    requestBurst: number;
    /** Who sees GET /health's details (server/health.ts); everyone else gets liveness only. */
    health: {
      /** HEALTH_TRUST_LOOPBACK: callers from this machine (off behind a reverse proxy on the same host). */
      trustLoopback: boolean;
      /** HEALTH_TOKEN: `Authorization: Bearer <token>` sees them from anywhere. */
      token?: string;
    };
  };
  video: {
    ffmpegPath?: string;
    downloadTimeoutMs: number;
    downloadMaxBytes: number;
    maxRedirects: number;
    /** DOWNLOAD_ALLOW_PRIVATE: let video_url reach loopback/private addresses (local testing only). */
    allowPrivateAddresses: boolean;
    /** At most this many seconds of video are decoded (a timestamp gap cannot mint hours of frames). */
    maxVideoSeconds: number;
    /** Decoded windows that may wait for the model (decode runs ahead of inference by this much). */
    windowsAhead: number;
  };
  model: ModelSettings;
  security: {
    blacklistEnabled: boolean;
    verifyEnabled: boolean;
    minStakeTao: number;
    validatorAllowlist: string[];
    metagraphRefreshMs: number;
  };
  chain: {
    /** The name given (finney, test, local) or 'custom' for a URL. */
    network: string;
    endpoint: string;
    fallbackEndpoint?: string;
    netuid: number;
    connectTimeoutMs: number;
    drandPublicKeyHex: string;
    elementId: string;
  };
  wallet: {
    path: string;
    coldkey: string;
    hotkey: string;
    /** MINER_HOTKEY_SS58: the hotkey's public address, given instead of reading the wallet (the container). */
    hotkeyAddress?: string;
  };
  axon: {
    ip?: string;
    port?: number;
  };
  deploy: {
    /** 'dockerhub', 'ghcr' or a registry host[:port]. */
    registry: string;
    username?: string;
    token?: string;
    /** The variables the credentials come from, for messages (DOCKERHUB_* or REGISTRY_*). */
    credentialNames: { username: string; token: string };
    repo: string;
    /** Docker Hub's web API (repositories, collaborators) and the registry host its images go to. */
    hubApiUrl: string;
    dockerhubHost: string;
    /** Score's Docker Hub account, added as a read-only collaborator. */
    scoreHubUser: string;
    stateDir: string;
    platform: string;
    /** `docker build --network`, e.g. host where RUN steps need the host's network. */
    buildNetwork?: string;
    containerName: string;
    /** `docker run --network`, e.g. host; default: publish MINER_PORT. */
    runNetwork?: string;
    startTimeoutMs: number;
  };
}

export type Env = Record<string, string | undefined>;

/** First non-empty value among a variable and its aliases, with the name it came from. */
function pick(env: Env, names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') return { name, value: value.trim() };
  }
  return undefined;
}

function invalid(name: string, value: string, expected: string): MinerError {
  return new MinerError(`${name}=${JSON.stringify(value)} is not valid: expected ${expected}`, {
    hint: `fix ${name} in your .env file or environment (see env.example)`,
  });
}

function parseBool(env: Env, names: string[], fallback: boolean): boolean {
  const found = pick(env, names);
  if (!found) return fallback;
  const v = found.value.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw invalid(found.name, found.value, 'true/false (also 1/0, yes/no)');
}

function parseInteger(env: Env, names: string[], fallback: number, min: number, max: number): number {
  const found = pick(env, names);
  if (!found) return fallback;
  if (!/^-?\d+$/.test(found.value)) throw invalid(found.name, found.value, `an integer from ${min} to ${max}`);
  const n = Number(found.value);
  if (n < min || n > max) throw invalid(found.name, found.value, `an integer from ${min} to ${max}`);
  return n;
}

function parseNumber(env: Env, names: string[], fallback: number, min: number, max: number): number {
  const found = pick(env, names);
  if (!found) return fallback;
  const n = Number(found.value);
  if (!Number.isFinite(n) || n < min || n > max) throw invalid(found.name, found.value, `a number from ${min} to ${max}`);
  return n;
}

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
function parseBytes(env: Env, names: string[], fallback: number): number {
  const found = pick(env, names);
  if (!found) return fallback;
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(found.value);
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined || Number(match[1]) <= 0)
    throw invalid(found.name, found.value, 'a size such as 65536, 64KiB or 512MiB');
  return Math.floor(Number(match[1]) * unit);
}

function parseChoice<T extends string>(env: Env, names: string[], choices: readonly T[], fallback: T): T {
  const found = pick(env, names);
  if (!found) return fallback;
  const value = found.value.toLowerCase();
  if (!(choices as readonly string[]).includes(value)) throw invalid(found.name, found.value, choices.join(', '));
  return value as T;
}

function parseList(env: Env, names: string[]): string[] {
  const found = pick(env, names);
  if (!found) return [];
  return found.value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** `finney`, `test`, `local` or a ws(s) URL -> {network, endpoint}. */
function resolveEndpoint(name: string, value: string): { network: string; endpoint: string } {
  const known = NETWORK_ENDPOINTS[value.toLowerCase()];
  if (known) return { network: value.toLowerCase(), endpoint: known };
  if (/^wss?:\/\/[^\s/]+/.test(value)) return { network: 'custom', endpoint: value };
  throw invalid(name, value, 'finney, test, local or a ws:// / wss:// URL');
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

/** LOG_LEVEL: debug, info (default), warn or error, any case. Read on its own by the task helper, which must not fail on unrelated variables. */
export function parseLogLevel(env: Env): LogLevel {
  return parseChoice(env, ['LOG_LEVEL'], LOG_LEVELS, 'info');
}

export function loadConfig(env: Env = process.env): MinerConfig {
  const endpointSource = pick(env, ['BITTENSOR_SUBTENSOR_ENDPOINT', 'SUBTENSOR_NETWORK']) ?? {
    name: 'BITTENSOR_SUBTENSOR_ENDPOINT',
    value: 'finney',
  };
  const { network, endpoint } = resolveEndpoint(endpointSource.name, endpointSource.value);
  const fallbackSource = pick(env, ['BITTENSOR_SUBTENSOR_FALLBACK']);
  const fallbackEndpoint = fallbackSource ? resolveEndpoint(fallbackSource.name, fallbackSource.value).endpoint : undefined;

  const providers = parseList(env, ['ORT_PROVIDERS']).map((p) => p.toLowerCase());
  for (const p of providers) {
    if (!['cpu', 'cuda'].includes(p)) throw invalid('ORT_PROVIDERS', env.ORT_PROVIDERS ?? '', 'a comma-separated list of cpu, cuda');
  }

  const drand = pick(env, ['DRAND_PUBLIC_KEY']);
  if (drand && !/^(0x)?[0-9a-fA-F]{192}$/.test(drand.value))
    throw invalid(drand.name, drand.value, 'a 96-byte BLS12-381 G2 public key in hex');

  const hotkeyAddress = pick(env, ['MINER_HOTKEY_SS58']);
  if (hotkeyAddress && !decodeHotkey(hotkeyAddress.value))
    throw invalid(hotkeyAddress.name, hotkeyAddress.value, "your hotkey's SS58 address, as `btcli wallet list` shows it");

  const healthToken = pick(env, ['HEALTH_TOKEN']);
  // A header-safe secret long enough not to be guessed; the message never repeats it.
  if (healthToken && !/^[\x21-\x7e]{16,}$/.test(healthToken.value))
    throw new MinerError('HEALTH_TOKEN is not valid: expected at least 16 printable ASCII characters without spaces', {
      hint: 'set HEALTH_TOKEN to a random string, e.g. the output of `openssl rand -hex 16`, or leave it empty',
    });

  const axonIp = pick(env, ['AXON_IP']);
  if (axonIp && !isIPv4(axonIp.value)) throw invalid(axonIp.name, axonIp.value, 'an IPv4 address such as 203.0.113.7');

  const registry = (pick(env, ['IMAGE_REGISTRY'])?.value ?? 'dockerhub').toLowerCase();
  const credentialNames =
    registry === 'dockerhub'
      ? { username: 'DOCKERHUB_USERNAME', token: 'DOCKERHUB_TOKEN' }
      : { username: 'REGISTRY_USERNAME', token: 'REGISTRY_TOKEN' };

  const modelDir = pick(env, ['MODEL_DIR'])?.value ?? 'models/default';

  return {
    log: { level: parseLogLevel(env) },
    server: {
      host: pick(env, ['MINER_HOST'])?.value ?? '0.0.0.0',
      port: parseInteger(env, ['MINER_PORT', 'PORT'], 8000, 0, 65535), // 0: any free port (tests)
      // Score's validator sends ~150 bytes ({"challenge_id","video_url","frames"}): 8 KiB leaves a wide margin.
      bodyMaxBytes: parseBytes(env, ['MAX_BODY_BYTES'], 8 * 1024),
      queueMax: parseInteger(env, ['QUEUE_MAX'], 4, 0, 1000),
      concurrency: parseInteger(env, ['INFERENCE_CONCURRENCY'], 1, 1, 64),
      challengeDeadlineMs: Math.round(parseNumber(env, ['CHALLENGE_DEADLINE_S'], 27, 1, 600) * 1000),
      headersTimeoutMs: Math.round(parseNumber(env, ['HEADERS_TIMEOUT_S'], 10, 1, 600) * 1000),
      requestTimeoutMs: Math.round(parseNumber(env, ['REQUEST_TIMEOUT_S'], 10, 1, 600) * 1000),
      // The validator sends a handful of challenges a minute, one connection each; monitoring a probe every few seconds.
      connectionsPerAddress: parseInteger(env, ['MAX_CONNECTIONS_PER_ADDRESS'], 16, 0, 100_000),
      requestsPerSecond: parseNumber(env, ['RATE_LIMIT_PER_S'], 5, 0, 1_000_000),
      requestBurst: parseInteger(env, ['RATE_LIMIT_BURST'], 10, 1, 1_000_000),
      health: { trustLoopback: parseBool(env, ['HEALTH_TRUST_LOOPBACK'], true), token: healthToken?.value },
    },
    video: {
      ffmpegPath: pick(env, ['FFMPEG_PATH'])?.value,
      downloadTimeoutMs: Math.round(parseNumber(env, ['DOWNLOAD_TIMEOUT_S'], 20, 0.1, 600) * 1000),
      downloadMaxBytes: parseBytes(env, ['DOWNLOAD_MAX_BYTES'], 512 * 1024 ** 2),
      maxRedirects: parseInteger(env, ['DOWNLOAD_MAX_REDIRECTS'], 5, 0, 20),
      allowPrivateAddresses: parseBool(env, ['DOWNLOAD_ALLOW_PRIVATE'], false),
      maxVideoSeconds: parseNumber(env, ['MAX_VIDEO_SECONDS'], 120, 1, 3600),
      windowsAhead: parseInteger(env, ['DECODE_WINDOWS_AHEAD'], 2, 1, 16),
    },
    model: {
      dir: path.resolve(PROJECT_ROOT, expandHome(modelDir)),
      providers: providers.length ? providers : ['cpu'],
      threads: parseInteger(env, ['ORT_THREADS'], 2, 1, 256),
      memPattern: parseBool(env, ['ORT_MEM_PATTERN'], false),
      graphOptimization: parseChoice(env, ['ORT_GRAPH_OPTIMIZATION'], GRAPH_OPTIMIZATIONS, 'extended'),
    },
    security: {
      blacklistEnabled: parseBool(env, ['BLACKLIST_ENABLED', 'BLACKLIST'], true),
      verifyEnabled: parseBool(env, ['VERIFY_ENABLED', 'VERIFY'], true),
      minStakeTao: parseNumber(env, ['MIN_STAKE_THRESHOLD'], 1000, 0, 1e12),
      validatorAllowlist: parseList(env, ['VALIDATOR_ALLOWLIST']),
      metagraphRefreshMs: Math.round(parseNumber(env, ['METAGRAPH_REFRESH_S'], 300, 1, 86400) * 1000),
    },
    chain: {
      network,
      endpoint,
      fallbackEndpoint,
      netuid: parseInteger(env, ['SCOREVISION_NETUID', 'NETUID'], 44, 0, 65535),
      connectTimeoutMs: Math.round(parseNumber(env, ['CHAIN_CONNECT_TIMEOUT_S'], 30, 1, 600) * 1000),
      drandPublicKeyHex: (drand?.value ?? QUICKNET_PUBLIC_KEY).replace(/^0x/, '').toLowerCase(),
      elementId: pick(env, ['SCOREVISION_ELEMENT_ID'])?.value ?? 'manako/DetectFootballEvent',
    },
    wallet: {
      path: expandHome(pick(env, ['BITTENSOR_WALLET_PATH'])?.value ?? '~/.bittensor/wallets'),
      coldkey: pick(env, ['BITTENSOR_WALLET_COLD', 'WALLET_NAME', 'COLDKEY'])?.value ?? 'default',
      hotkey: pick(env, ['BITTENSOR_WALLET_HOT', 'HOTKEY_NAME', 'HOTKEY'])?.value ?? 'default',
      hotkeyAddress: hotkeyAddress?.value,
    },
    axon: {
      ip: axonIp?.value,
      port: pick(env, ['AXON_PORT']) ? parseInteger(env, ['AXON_PORT'], 8000, 1, 65535) : undefined,
    },
    deploy: {
      registry,
      username: pick(env, [credentialNames.username])?.value,
      token: pick(env, [credentialNames.token])?.value,
      credentialNames,
      repo: pick(env, ['IMAGE_REPO', 'DOCKERHUB_REPO'])?.value ?? 'pt-solution',
      hubApiUrl: (pick(env, ['DOCKERHUB_API_URL'])?.value ?? 'https://hub.docker.com').replace(/\/+$/, ''),
      dockerhubHost: pick(env, ['DOCKERHUB_REGISTRY'])?.value ?? 'docker.io',
      scoreHubUser: pick(env, ['SCORE_DOCKERHUB_USER'])?.value ?? 'scorevision',
      stateDir: path.resolve(PROJECT_ROOT, expandHome(pick(env, ['DEPLOY_STATE_DIR'])?.value ?? '.deploy')),
      platform: pick(env, ['BUILD_PLATFORM'])?.value ?? 'linux/amd64',
      buildNetwork: pick(env, ['BUILD_NETWORK'])?.value,
      containerName: pick(env, ['MINER_CONTAINER'])?.value ?? 'score-miner',
      runNetwork: pick(env, ['MINER_NETWORK'])?.value,
      startTimeoutMs: Math.round(parseNumber(env, ['START_TIMEOUT_S'], 120, 1, 3600) * 1000),
    },
  };
}

/**
 * Load `.env`, `.env.local`, `.env.<NODE_ENV>` ... from the project root into process.env (real environment
 * wins). Skipped when DOTENV_DISABLE=1 so tests and containers see only what they were given.
 */
export function loadEnvFiles(root = PROJECT_ROOT): void {
  if (process.env.DOTENV_DISABLE === '1') return;
  dotenvFlow.config({ path: root, silent: true });
}
