/**
 * Container registries for the deploy pipeline: the image name a miner pushes to (Docker Hub, GHCR, or any
 * registry host), and what the registry itself says about a pushed tag, asked over the Registry HTTP API v2
 * (the digest to commit on chain; whether validators could pull it without credentials).
 *
 * Auth follows the Docker token flow: an unauthenticated request gets 401 with
 * `WWW-Authenticate: Bearer realm=...,service=...,scope=...`; a token fetched from the realm (with Basic
 * credentials when given, anonymously otherwise) is sent as `Authorization: Bearer ...`. A registry that asks
 * for Basic auth instead gets the credentials directly. Passwords never appear in messages.
 */
import { createHash } from 'node:crypto';
import { MinerError } from '../core/errors.ts';

/** 'dockerhub', 'ghcr', or a registry host (`host[:port]`). */
export type RegistryChoice = 'dockerhub' | 'ghcr' | (string & {});

export const DOCKERHUB_HOST = 'docker.io';
export const GHCR_HOST = 'ghcr.io';

/** The manifest media types a digest may belong to: Docker v2, Docker manifest list, OCI manifest, OCI index. */
export const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

// The reference grammar of distribution (github.com/distribution/reference).
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const MAX_NAME_LENGTH = 255;

const COMPONENT_HINT = 'use lower-case letters and digits, separated by single ".", "_", "__" or "-" (not at the start or end)';

function checkComponents(what: string, value: string): string {
  const components = value.split('/');
  for (const component of components) {
    if (!PATH_COMPONENT.test(component)) {
      throw new MinerError(`${what} ${JSON.stringify(value)} is not a valid repository name component`, {
        kind: 'invalid-input',
        hint: COMPONENT_HINT,
      });
    }
  }
  return value;
}

function checkHost(host: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(host)) {
    throw new MinerError(`registry ${JSON.stringify(host)} has a scheme`, {
      kind: 'invalid-input',
      hint: `give the registry as host[:port] without the scheme, e.g. ${host.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/.*$/, '')}`,
    });
  }
  if (!DOMAIN.test(host)) {
    throw new MinerError(`registry ${JSON.stringify(host)} is not a valid registry host`, {
      kind: 'invalid-input',
      hint: "give 'dockerhub', 'ghcr', or a registry host as host[:port] (e.g. registry.example.com:5000)",
    });
  }
  return host.toLowerCase();
}

/** The registry host for a choice: 'dockerhub' -> docker.io (or `dockerhubHost`), 'ghcr' -> ghcr.io, else the host itself. */
export function registryHost(registry: RegistryChoice, options: { dockerhubHost?: string } = {}): string {
  const choice = registry.trim();
  if (choice === '') {
    throw new MinerError('no registry given', { kind: 'invalid-input', hint: "choose 'dockerhub', 'ghcr', or a registry host[:port]" });
  }
  if (choice.toLowerCase() === 'dockerhub') return checkHost(options.dockerhubHost ?? DOCKERHUB_HOST);
  if (choice.toLowerCase() === 'ghcr') return GHCR_HOST;
  return checkHost(choice);
}

/**
 * The image name (no tag) to push to: `docker.io/<user>/<repo>`, `ghcr.io/<user>/<repo>` or
 * `host[:port]/<user>/<repo>`, lower-cased (docker refuses upper-case repository names) and validated.
 */
export function imageName(options: { registry: RegistryChoice; username: string; repo: string; dockerhubHost?: string }): string {
  const host = registryHost(options.registry, { dockerhubHost: options.dockerhubHost });
  const username = checkComponents('username', options.username.trim().toLowerCase());
  if (username.includes('/')) {
    throw new MinerError(`username ${JSON.stringify(options.username)} holds a "/"`, {
      kind: 'invalid-input',
      hint: 'give the registry account (or organisation) name alone; put further path parts in the repository',
    });
  }
  const repo = checkComponents('repository', options.repo.trim().toLowerCase());
  const name = `${host}/${username}/${repo}`;
  if (name.length > MAX_NAME_LENGTH) {
    throw new MinerError(`image name ${name} is longer than ${MAX_NAME_LENGTH} characters`, {
      kind: 'invalid-input',
      hint: 'choose a shorter repository name',
    });
  }
  return name;
}

/** A tag as docker accepts it (case kept): word characters, '.' and '-', at most 128, not starting with '.' or '-'. */
export function checkTag(tag: string): string {
  if (!TAG.test(tag)) {
    throw new MinerError(`tag ${JSON.stringify(tag)} is not a valid image tag`, {
      kind: 'invalid-input',
      hint: 'use letters, digits, "_", "." and "-" (at most 128, not starting with "." or "-")',
    });
  }
  return tag;
}

/** `<image>:<tag>`, with the tag checked and its case kept. */
export function imageReference(image: string, tag: string): string {
  return `${image}:${checkTag(tag)}`;
}

/** Splits an image name (no tag) into its registry host and repository path, the way docker does. */
export function parseImageName(image: string): { host: string; path: string } {
  if (image.includes('@') || image.slice(image.indexOf('/') + 1).includes(':')) {
    throw new MinerError(`image ${JSON.stringify(image)} carries a tag or digest`, {
      kind: 'invalid-input',
      hint: 'give the image name without ":tag" or "@sha256:..." and the tag separately',
    });
  }
  const slash = image.indexOf('/');
  const first = slash < 0 ? '' : image.slice(0, slash);
  const isHost = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
  const host = isHost ? checkHost(first) : DOCKERHUB_HOST;
  let repoPath = isHost ? image.slice(slash + 1) : image;
  if (host === DOCKERHUB_HOST && !repoPath.includes('/')) repoPath = `library/${repoPath}`;
  checkComponents('repository', repoPath);
  return { host, path: repoPath };
}

/** The host that serves the Registry HTTP API for a registry host: docker.io -> registry-1.docker.io. */
export function registryApiHost(host: string): string {
  const lower = host.toLowerCase();
  return lower === 'docker.io' || lower === 'index.docker.io' ? 'registry-1.docker.io' : lower;
}

/** Loopback hosts (127.0.0.0/8, localhost, ::1) speak plain HTTP, as docker assumes; everything else HTTPS. */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** `http(s)://<api host>` for a registry host. */
export function registryBaseUrl(host: string): string {
  const apiHost = registryApiHost(host);
  return `${isLoopbackHost(apiHost) ? 'http' : 'https'}://${apiHost}`;
}

interface Credentials {
  username: string;
  password: string;
}

interface Target {
  image: string;
  tag: string;
  host: string;
  path: string;
  url: string;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="...",service="...",scope="..."` -> { scheme: 'bearer', params }. */
export function parseAuthenticateHeader(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const match = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const param of match[2].matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[param[1].toLowerCase()] = param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : param[3];
  }
  return { scheme: match[1].toLowerCase(), params };
}

function basic(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

function networkCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if (current.name === 'TimeoutError' || current.name === 'AbortError') return 'timed out';
    current = current.cause;
  }
  return error instanceof Error ? error.message : String(error);
}

async function send(url: string, init: RequestInit, what: string, timeoutMs: number): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const host = new URL(url).host;
    throw new MinerError(`${what} ${host} is unreachable (${networkCode(error)})`, {
      cause: error,
      hint: `check the registry host and port, that it is running, and that this machine can reach ${new URL(url).origin}`,
    });
  }
}

function credentialsRefused(target: Target, credentials: Credentials | undefined): MinerError {
  if (!credentials) {
    return new MinerError(`${target.host} wants credentials to read ${target.image}:${target.tag}`, {
      hint: 'give the registry username and password (or access token) with read access to the repository',
    });
  }
  return new MinerError(`${target.host} refused the credentials of ${credentials.username} for ${target.image}:${target.tag}`, {
    hint: `check the username and password (or access token) for ${target.host}, and that the token may read ${target.path}`,
  });
}

/** The Authorization header a 401 challenge asks for; undefined when there is nothing to send (anonymous refused). */
async function authorize(
  challenge: Challenge | undefined,
  target: Target,
  credentials: Credentials | undefined,
  timeoutMs: number,
): Promise<string | undefined> {
  if (challenge?.scheme === 'basic') return credentials ? basic(credentials) : undefined;
  if (challenge?.scheme !== 'bearer' || !challenge.params.realm) {
    throw new MinerError(
      `${target.host} asked for an authentication it does not name (${challenge?.scheme ?? 'no WWW-Authenticate header'})`,
      {
        hint: 'check that the host is a container registry serving the Registry HTTP API v2',
      },
    );
  }
  let realm: URL;
  try {
    realm = new URL(challenge.params.realm);
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new Error(realm.protocol);
  } catch {
    throw new MinerError(`${target.host} named a token service that is not an http(s) URL`, {
      hint: 'check that the host is a container registry serving the Registry HTTP API v2',
    });
  }
  if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
  realm.searchParams.set('scope', challenge.params.scope || `repository:${target.path}:pull`);
  if (credentials) realm.searchParams.set('account', credentials.username);
  const response = await send(
    realm.href,
    { headers: credentials ? { authorization: basic(credentials) } : {} },
    'token service',
    timeoutMs,
  );
  if (response.status === 401 || response.status === 403) {
    await response.body?.cancel();
    if (credentials) throw credentialsRefused(target, credentials);
    return undefined;
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new MinerError(`token service ${realm.host} answered ${response.status} for ${target.image}`, {
      hint: `retry later; if it persists, check ${realm.origin} is the registry's token service`,
    });
  }
  const body = (await response.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown };
  const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
  if (!token) {
    throw new MinerError(`token service ${realm.host} answered without a token`, {
      hint: `check ${realm.origin} is the registry's token service`,
    });
  }
  return `Bearer ${token}`;
}

type ManifestAnswer = { kind: 'found'; digest: string } | { kind: 'unauthorized' } | { kind: 'missing' };

/** HEAD (GET when HEAD gives no digest) the manifest, answering one auth challenge on the way. */
async function askManifest(target: Target, credentials: Credentials | undefined, timeoutMs: number): Promise<ManifestAnswer> {
  let authorization: string | undefined;
  let challenged = false;
  const request = async (method: 'HEAD' | 'GET'): Promise<Response> => {
    const headers: Record<string, string> = { accept: MANIFEST_ACCEPT };
    if (authorization) headers.authorization = authorization;
    let response = await send(target.url, { method, headers }, 'registry', timeoutMs);
    if (response.status === 401 && !challenged) {
      challenged = true;
      await response.body?.cancel();
      authorization = await authorize(parseAuthenticateHeader(response.headers.get('www-authenticate')), target, credentials, timeoutMs);
      if (!authorization) return response;
      headers.authorization = authorization;
      response = await send(target.url, { method, headers }, 'registry', timeoutMs);
    }
    return response;
  };
  const answer = async (response: Response, method: 'HEAD' | 'GET'): Promise<ManifestAnswer | undefined> => {
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      return { kind: 'unauthorized' };
    }
    if (response.status === 404) {
      await response.body?.cancel();
      return { kind: 'missing' };
    }
    if (response.ok) {
      const header = response.headers.get('docker-content-digest');
      if (header && /^sha256:[0-9a-f]{64}$/.test(header)) {
        await response.body?.cancel();
        return { kind: 'found', digest: header };
      }
      if (method === 'GET') {
        const bytes = Buffer.from(await response.arrayBuffer());
        return { kind: 'found', digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
      }
      return undefined;
    }
    await response.body?.cancel();
    if (method === 'GET') {
      throw new MinerError(`registry ${target.host} answered ${response.status} for ${target.image}:${target.tag}`, {
        hint: 'retry later; if it persists, check the registry status page',
      });
    }
    return undefined;
  };
  const head = await answer(await request('HEAD'), 'HEAD');
  if (head) return head;
  return (await answer(await request('GET'), 'GET'))!;
}

function resolveTarget(image: string, tag: string): Target {
  const { host, path } = parseImageName(image);
  checkTag(tag);
  return { image, tag, host, path, url: `${registryBaseUrl(host)}/v2/${path}/manifests/${encodeURIComponent(tag)}` };
}

/**
 * The digest (`sha256:...`) the registry holds for `<image>:<tag>`, asked over the Registry HTTP API v2. It is
 * the digest of what the tag points at (manifest or index), the one `docker push` prints and `docker pull
 * <image>@<digest>` fetches.
 */
export async function readRemoteDigest(options: {
  image: string;
  tag: string;
  username?: string;
  password?: string;
  timeoutMs?: number;
}): Promise<string> {
  const target = resolveTarget(options.image, options.tag);
  const credentials =
    options.username !== undefined && options.password !== undefined
      ? { username: options.username, password: options.password }
      : undefined;
  const answer = await askManifest(target, credentials, options.timeoutMs ?? 30_000);
  if (answer.kind === 'found') return answer.digest;
  if (answer.kind === 'missing') {
    throw new MinerError(`no tag ${target.tag} in ${target.image}: push it first`, {
      hint: `push ${target.image}:${target.tag} (docker push), then rerun`,
    });
  }
  throw credentialsRefused(target, credentials);
}

/**
 * Whether anyone could pull `<image>:<tag>` without credentials (the way validators will): the manifest request
 * with an anonymous token when the registry grants one. False when the registry refuses or has no such tag.
 */
export async function isPullableAnonymously(options: { image: string; tag: string; timeoutMs?: number }): Promise<boolean> {
  const target = resolveTarget(options.image, options.tag);
  const answer = await askManifest(target, undefined, options.timeoutMs ?? 30_000);
  return answer.kind === 'found';
}

/**
 * The repository as committed on chain and pulled by Score: `user/repo` for Docker Hub (the validator pulls
 * it from Docker Hub), the full `host/user/repo` for any other registry.
 */
export function committedRepo(image: string): string {
  return image.startsWith(`${DOCKERHUB_HOST}/`) ? image.slice(DOCKERHUB_HOST.length + 1) : image;
}
