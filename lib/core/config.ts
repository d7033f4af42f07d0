/**
 * Environment -> typed, validated configuration, read once. `loadConfig(env)` is pure (tests pass their own
 * env); `loadEnvFiles()` reads `.env*` files with dotenv-flow and is called only at the edges (server, tasks).
 * Every bad value fails with the variable's name, the value and the expected form.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenvFlow from 'dotenv-flow';
import { MinerError } from './errors.ts';
import type { LogLevel } from './log.ts';
import { type Env, type GraphOptimization, profileNameProblem, readSetting, readSettings } from './settings.ts';

export { GRAPH_OPTIMIZATIONS, type GraphOptimization, QUICKNET_PUBLIC_KEY } from './settings.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

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
    /** `docker run --gpus` (MINER_GPUS), for start and the rehearsal. */
    gpus?: string;
    startTimeoutMs: number;
    /** DEPLOY_HOST as given: ssh://user@host[:port] or a docker context name; undefined for this machine's engine. */
    host?: string;
    /** DEPLOY_PROFILE (env=NAME): undefined for the default profile. */
    profile?: string;
    /** Where this profile's commit, start and start history are kept: stateDir, or stateDir/profiles/NAME. */
    profileDir: string;
    /** REHEARSAL_CLIP, resolved; undefined: the rehearsal makes a synthetic clip. */
    rehearsalClip?: string;
    rehearsalReadyTimeoutMs: number;
  };
}

export type { Env };

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

const ms = (seconds: number) => Math.round(seconds * 1000);

/** LOG_LEVEL: debug, info (default), warn or error, any case. Read on its own by the task helper, which must not fail on unrelated variables. */
export function parseLogLevel(env: Env): LogLevel {
  return readSetting(env, 'LOG_LEVEL');
}

/** A profile's own part of the deploy state (its commit, container and start history). */
export function profileDir(stateDir: string, profile: string | undefined): string {
  return profile ? path.join(stateDir, 'profiles', profile) : stateDir;
}

/** The settings table (settings.ts) read and shaped for the code that uses it. */
export function loadConfig(env: Env = process.env): MinerConfig {
  const v = readSettings(env);
  const registry = v.IMAGE_REGISTRY.toLowerCase();
  const credentialNames =
    registry === 'dockerhub'
      ? ({ username: 'DOCKERHUB_USERNAME', token: 'DOCKERHUB_TOKEN' } as const)
      : ({ username: 'REGISTRY_USERNAME', token: 'REGISTRY_TOKEN' } as const);

  return {
    log: { level: v.LOG_LEVEL },
    server: {
      host: v.MINER_HOST,
      port: v.MINER_PORT,
      bodyMaxBytes: v.MAX_BODY_BYTES,
      queueMax: v.QUEUE_MAX,
      concurrency: v.INFERENCE_CONCURRENCY,
      challengeDeadlineMs: ms(v.CHALLENGE_DEADLINE_S),
      headersTimeoutMs: ms(v.HEADERS_TIMEOUT_S),
      requestTimeoutMs: ms(v.REQUEST_TIMEOUT_S),
      connectionsPerAddress: v.MAX_CONNECTIONS_PER_ADDRESS,
      requestsPerSecond: v.RATE_LIMIT_PER_S,
      requestBurst: v.RATE_LIMIT_BURST,
      health: { trustLoopback: v.HEALTH_TRUST_LOOPBACK, token: v.HEALTH_TOKEN },
    },
    video: {
      ffmpegPath: v.FFMPEG_PATH,
      downloadTimeoutMs: ms(v.DOWNLOAD_TIMEOUT_S),
      downloadMaxBytes: v.DOWNLOAD_MAX_BYTES,
      maxRedirects: v.DOWNLOAD_MAX_REDIRECTS,
      allowPrivateAddresses: v.DOWNLOAD_ALLOW_PRIVATE,
      maxVideoSeconds: v.MAX_VIDEO_SECONDS,
      windowsAhead: v.DECODE_WINDOWS_AHEAD,
    },
    model: {
      dir: path.resolve(PROJECT_ROOT, expandHome(v.MODEL_DIR)),
      providers: v.ORT_PROVIDERS.length ? v.ORT_PROVIDERS : ['cpu'],
      threads: v.ORT_THREADS,
      memPattern: v.ORT_MEM_PATTERN,
      graphOptimization: v.ORT_GRAPH_OPTIMIZATION,
    },
    security: {
      blacklistEnabled: v.BLACKLIST_ENABLED,
      verifyEnabled: v.VERIFY_ENABLED,
      minStakeTao: v.MIN_STAKE_THRESHOLD,
      validatorAllowlist: v.VALIDATOR_ALLOWLIST ?? [],
      metagraphRefreshMs: ms(v.METAGRAPH_REFRESH_S),
    },
    chain: {
      network: v.BITTENSOR_SUBTENSOR_ENDPOINT.network,
      endpoint: v.BITTENSOR_SUBTENSOR_ENDPOINT.endpoint,
      fallbackEndpoint: v.BITTENSOR_SUBTENSOR_FALLBACK?.endpoint,
      netuid: v.SCOREVISION_NETUID,
      connectTimeoutMs: ms(v.CHAIN_CONNECT_TIMEOUT_S),
      drandPublicKeyHex: v.DRAND_PUBLIC_KEY,
      elementId: v.SCOREVISION_ELEMENT_ID,
    },
    wallet: {
      path: expandHome(v.BITTENSOR_WALLET_PATH),
      coldkey: v.BITTENSOR_WALLET_COLD,
      hotkey: v.BITTENSOR_WALLET_HOT,
      hotkeyAddress: v.MINER_HOTKEY_SS58,
    },
    axon: { ip: v.AXON_IP, port: v.AXON_PORT },
    deploy: {
      registry,
      username: v[credentialNames.username],
      token: v[credentialNames.token],
      credentialNames,
      repo: v.IMAGE_REPO,
      hubApiUrl: v.DOCKERHUB_API_URL.replace(/\/+$/, ''),
      dockerhubHost: v.DOCKERHUB_REGISTRY,
      scoreHubUser: v.SCORE_DOCKERHUB_USER,
      stateDir: path.resolve(PROJECT_ROOT, expandHome(v.DEPLOY_STATE_DIR)),
      platform: v.BUILD_PLATFORM,
      buildNetwork: v.BUILD_NETWORK,
      containerName: v.MINER_CONTAINER,
      runNetwork: v.MINER_NETWORK,
      gpus: v.MINER_GPUS,
      startTimeoutMs: ms(v.START_TIMEOUT_S),
      host: v.DEPLOY_HOST,
      profile: v.DEPLOY_PROFILE,
      profileDir: profileDir(path.resolve(PROJECT_ROOT, expandHome(v.DEPLOY_STATE_DIR)), v.DEPLOY_PROFILE),
      rehearsalClip: v.REHEARSAL_CLIP === undefined ? undefined : path.resolve(PROJECT_ROOT, expandHome(v.REHEARSAL_CLIP)),
      rehearsalReadyTimeoutMs: ms(v.REHEARSAL_READY_TIMEOUT_S),
    },
  };
}

/**
 * Load `.env`, `.env.local`, `.env.<NODE_ENV>` ... into process.env (real environment wins) from DOTENV_DIR
 * (default the project root). With a profile (env=hk2; default the real environment's DEPLOY_PROFILE), `.env.hk2`
 * and `.env.hk2.local` are read over those, the profile's file must exist, and DEPLOY_PROFILE is set for
 * loadConfig. Skipped when DOTENV_DISABLE=1 so tests and containers see only what they were given (the profile is
 * still set: its state is kept apart).
 */
export function loadEnvFiles(profile?: string): void {
  const fromEnv = process.env.DEPLOY_PROFILE?.trim() || undefined;
  const name = profile ?? fromEnv;
  const given = profile === undefined ? `DEPLOY_PROFILE=${name}` : `env=${name}`;
  if (name !== undefined) {
    const problem = profileNameProblem(name);
    if (problem) throw new MinerError(`${given}: not a profile name`, { hint: problem });
    process.env.DEPLOY_PROFILE = name;
  } else delete process.env.DEPLOY_PROFILE;
  if (process.env.DOTENV_DISABLE === '1') return;
  const dir = path.resolve(process.env.DOTENV_DIR?.trim() || PROJECT_ROOT);
  if (name === undefined) dotenvFlow.config({ path: dir, silent: true });
  else {
    const own = path.join(dir, `.env.${name}`);
    if (!existsSync(own))
      throw new MinerError(`${given}: there is no .env.${name} in ${dir}`, {
        hint: 'create it with what differs from .env for this hotkey: BITTENSOR_WALLET_HOT, MINER_PORT, MINER_CONTAINER (see README)',
      });
    // Today's files in today's order, then the profile's: the most specific file wins.
    const files = [...dotenvFlow.listFiles({ path: dir, node_env: process.env.NODE_ENV }), own, `${own}.local`];
    dotenvFlow.config({ path: dir, files, silent: true });
  }
  // The profile is chosen per command: from a .env line it would keep hk2's state with the default's values.
  if (name === undefined && process.env.DEPLOY_PROFILE !== undefined) {
    delete process.env.DEPLOY_PROFILE;
    throw new MinerError('DEPLOY_PROFILE is set in a .env file', {
      hint: 'remove it there and choose the profile per command: just deploy tag=TAG env=NAME (or --env NAME on a task)',
    });
  }
}
