/**
 * Docker Hub's web API (not the registry): log in, make sure the image's repository exists and is private,
 * share it with the validator's account, read the collaborators back. The endpoints, their errors and the
 * rate-limit headers are in docs/deploy.md ("Docker Hub HTTP API"). The base URL is configurable so the tests
 * talk to a stand-in on loopback.
 *
 * Secrets: the personal access token is sent once, to the login endpoint, and the short-lived access token the
 * Hub answers with is kept out of the session object (a WeakMap holds it), so logging a session leaks nothing;
 * both are scrubbed from anything the Hub's answers put into an error.
 */
import { MinerError } from '../core/errors.ts';

export const DEFAULT_HUB_API_URL = 'https://hub.docker.com';

export interface RetryOptions {
  /** Retries after a 429 before giving up (default 3). */
  retries?: number;
  /** The longest wait honoured; an answer asking for longer fails at once, saying when to retry (default 60 s). */
  maxWaitMs?: number;
  /** Injectable so tests do not wait. */
  sleep?: (ms: number) => Promise<void>;
  /** Clock for X-Retry-After (a unix time); injectable so tests can assert exact waits. */
  now?: () => number;
}

export interface HubClientOptions {
  /** Default https://hub.docker.com (DOCKERHUB_API_URL). */
  apiUrl?: string;
  fetchImpl?: typeof fetch;
  retry?: RetryOptions;
  /** Per request (default 30 s): a Hub that never answers must not hang the deploy. */
  timeoutMs?: number;
}

export interface HubLoginOptions extends HubClientOptions {
  username: string;
  /** A personal access token (or the password, which the Hub discourages). */
  token: string;
}

/** A logged-in client. Holds no secret of its own: printing it is safe. */
export interface HubSession {
  readonly apiUrl: string;
  readonly username: string;
  /** Which login endpoint answered. */
  readonly loginVia: 'auth-token' | 'users-login';
}

export interface RepositoryStatus {
  outcome: 'created' | 'exists';
  /** False for an existing public repository: spot checks still work, but anyone can pull the model. */
  isPrivate: boolean;
}

export interface CollaboratorResult {
  /** Which request the Hub accepted: PUT .../collaborators/{user}/ or POST .../collaborators/. */
  variant: 'put' | 'post';
  status: number;
  /** What the Hub said (its JSON detail/message), '' when it said nothing. */
  detail: string;
  /** The Hub answered that the account is already a collaborator. */
  alreadyPresent: boolean;
}

interface Transport {
  apiUrl: string;
  fetchImpl: typeof fetch;
  retries: number;
  maxWaitMs: number;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  timeoutMs: number;
}

interface HubAnswer {
  status: number;
  body: unknown;
  /** A readable one-line cause from the body (scrubbed of secrets); '' when the body says nothing. */
  cause: string;
}

const sessions = new WeakMap<HubSession, { transport: Transport; accessToken: string }>();

export async function hubLogin(options: HubLoginOptions): Promise<HubSession> {
  const transport = makeTransport(options);
  const { username, token } = options;
  const secrets = [token];
  let loginVia: HubSession['loginVia'] = 'auth-token';
  let answer = await hubRequest(transport, {
    method: 'POST',
    path: '/v2/auth/token',
    body: { identifier: username, secret: token },
    secrets,
  });
  // Older deployments (and some mirrors of the API) only have the legacy endpoint.
  if (answer.status === 404 || answer.status === 405) {
    loginVia = 'users-login';
    answer = await hubRequest(transport, { method: 'POST', path: '/v2/users/login', body: { username, password: token }, secrets });
  }
  if (answer.status === 401) {
    throw new MinerError(`Docker Hub refused the token for ${username} (401)${answer.cause ? `: ${answer.cause}` : ''}`, {
      hint: 'create a personal access token with Read & Write scope (Docker Hub > Account settings > Personal access tokens) and set DOCKERHUB_TOKEN to it; DOCKERHUB_USERNAME must be the account that owns it',
    });
  }
  if (answer.status !== 200) throw unexpected(answer, `logging in as ${username}`, transport);
  const field = loginVia === 'auth-token' ? 'access_token' : 'token';
  const accessToken = stringField(answer.body, field);
  if (!accessToken) {
    throw new MinerError(`Docker Hub answered the login for ${username} without an access token (no "${field}" in the answer)`, {
      hint: `check that DOCKERHUB_API_URL (now ${transport.apiUrl}) points at Docker Hub's web API`,
    });
  }
  const session: HubSession = Object.freeze({ apiUrl: transport.apiUrl, username, loginVia });
  sessions.set(session, { transport, accessToken });
  return session;
}

export async function repositoryExists(session: HubSession, namespace: string, repository: string): Promise<boolean> {
  return (await readRepository(session, namespace, repository)) !== undefined;
}

/**
 * Makes sure `namespace/repository` exists, creating it private. Reads first: a free account whose one private
 * repository is this one could otherwise be refused for the limit instead of told it exists.
 */
export async function ensurePrivateRepository(
  session: HubSession,
  namespace: string,
  repository: string,
  description: string,
): Promise<RepositoryStatus> {
  const existing = await readRepository(session, namespace, repository);
  if (existing) return { outcome: 'exists', isPrivate: existing.isPrivate };
  const answer = await authorized(session, {
    method: 'POST',
    path: `/v2/namespaces/${seg(namespace)}/repositories`,
    body: { namespace, name: repository, is_private: true, description },
  });
  if (answer.status === 201 || answer.status === 200) return { outcome: 'created', isPrivate: true };
  // Created meanwhile (another run, the web UI): the Hub answers 400 with "__all__": [... already exists.].
  if ((answer.status === 400 || answer.status === 409) && /already exists/i.test(answer.cause)) {
    const again = await readRepository(session, namespace, repository);
    return { outcome: 'exists', isPrivate: again?.isPrivate ?? true };
  }
  if (isPrivateLimit(answer)) {
    throw new MinerError(
      `Docker Hub refused to create the private repository ${namespace}/${repository}: the account's private-repository limit (${answer.status}: ${answer.cause})`,
      {
        hint: "the free plan allows one private repository: make the existing private one public or delete it on hub.docker.com, upgrade the plan, or push to GitHub's registry instead (IMAGE_REGISTRY=ghcr)",
      },
    );
  }
  throw unexpected(answer, `creating the repository ${namespace}/${repository}`, transportOf(session));
}

/**
 * Gives `user` read access to the repository. The collaborator endpoints are undocumented and two variants are
 * seen in public clients: PUT first, POST when the Hub does not know PUT. Returns exactly what the Hub answered;
 * the caller verifies with listCollaborators.
 */
export async function addCollaborator(
  session: HubSession,
  namespace: string,
  repository: string,
  user: string,
): Promise<CollaboratorResult> {
  const base = `/v2/repositories/${seg(namespace)}/${seg(repository)}/collaborators/`;
  let variant: CollaboratorResult['variant'] = 'put';
  let answer = await authorized(session, { method: 'PUT', path: `${base}${seg(user)}/`, body: { permission: 'read' } });
  if (answer.status === 404 || answer.status === 405) {
    const post = await authorized(session, { method: 'POST', path: base, body: { user } });
    // A POST the Hub does not know either means the PUT's answer was the real one (say, an unknown repository).
    if (post.status !== 405) [variant, answer] = ['post', post];
  }
  const detail = answer.cause;
  if (answer.status >= 200 && answer.status < 300) return { variant, status: answer.status, detail, alreadyPresent: false };
  if ((answer.status === 400 || answer.status === 409) && /already/i.test(detail)) {
    return { variant, status: answer.status, detail, alreadyPresent: true };
  }
  if (answer.status === 402 || (answer.status === 403 && /paid|plan|subscription|upgrade/i.test(detail))) {
    throw new MinerError(
      `Docker Hub refused to add ${user} as a collaborator on ${namespace}/${repository} (${answer.status}): "${detail}"`,
      {
        hint: `Docker Hub lets only paid accounts add collaborators to a private repository: upgrade the plan, or push to GitHub's registry (IMAGE_REGISTRY=ghcr) and grant ${user} Read in the package's settings`,
      },
    );
  }
  throw unexpected(answer, `adding ${user} as a collaborator on ${namespace}/${repository}`, transportOf(session));
}

export async function listCollaborators(session: HubSession, namespace: string, repository: string): Promise<string[]> {
  const answer = await authorized(session, { method: 'GET', path: `/v2/repositories/${seg(namespace)}/${seg(repository)}/collaborators/` });
  if (answer.status !== 200) throw unexpected(answer, `listing the collaborators of ${namespace}/${repository}`, transportOf(session));
  const results = isRecord(answer.body) && Array.isArray(answer.body.results) ? answer.body.results : [];
  return results.map((entry) => stringField(entry, 'user') ?? stringField(entry, 'username')).filter((name) => name !== undefined);
}

/** One readable line from a Hub error body: {message, detail, errinfo}, Django's {"__all__": [...]}, or field errors. */
export function hubErrorCause(body: unknown): string {
  if (typeof body === 'string') return oneLine(body);
  if (!isRecord(body)) return '';
  const parts: string[] = [];
  for (const key of ['message', 'detail']) {
    const value = body[key];
    if (typeof value === 'string' && value.trim() && !parts.includes(value.trim())) parts.push(value.trim());
  }
  if (parts.length === 0) {
    for (const [key, value] of Object.entries(body)) {
      const texts = (Array.isArray(value) ? value : [value]).filter((item): item is string => typeof item === 'string');
      if (texts.length > 0 && key !== 'errinfo') parts.push(key === '__all__' ? texts.join(' ') : `${key}: ${texts.join(' ')}`);
    }
  }
  if (parts.length === 0 && isRecord(body.errinfo)) parts.push(JSON.stringify(body.errinfo));
  return oneLine(parts.join(' — '));
}

/**
 * How long a 429 asks to wait, in ms: Retry-After in seconds (or an HTTP date), X-Retry-After as a unix time in
 * seconds; the longer when both are given; without either, a doubling backoff from 1 s.
 */
export function rateLimitWaitMs(
  headers: { retryAfter: string | null; xRetryAfter: string | null },
  nowMs: number,
  attempt: number,
): number {
  const waits: number[] = [];
  const retryAfter = headers.retryAfter?.trim();
  if (retryAfter) {
    if (/^\d+(\.\d+)?$/.test(retryAfter)) waits.push(Number(retryAfter) * 1000);
    else if (!Number.isNaN(Date.parse(retryAfter))) waits.push(Date.parse(retryAfter) - nowMs);
  }
  const xRetryAfter = headers.xRetryAfter?.trim();
  if (xRetryAfter && /^\d+(\.\d+)?$/.test(xRetryAfter)) waits.push(Number(xRetryAfter) * 1000 - nowMs);
  if (waits.length === 0) return 1000 * 2 ** attempt;
  return Math.max(0, Math.ceil(Math.max(...waits)));
}

// ---- internals -----------------------------------------------------------------------------------------------

function makeTransport(options: HubClientOptions): Transport {
  return {
    apiUrl: (options.apiUrl ?? DEFAULT_HUB_API_URL).replace(/\/+$/, ''),
    fetchImpl: options.fetchImpl ?? fetch,
    retries: options.retry?.retries ?? 3,
    maxWaitMs: options.retry?.maxWaitMs ?? 60_000,
    sleep: options.retry?.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    now: options.retry?.now ?? Date.now,
    timeoutMs: options.timeoutMs ?? 30_000,
  };
}

function transportOf(session: HubSession): Transport {
  return internals(session).transport;
}

function internals(session: HubSession): { transport: Transport; accessToken: string } {
  const found = sessions.get(session);
  if (!found) throw new MinerError('not a Docker Hub session from hubLogin', { hint: 'log in with hubLogin first' });
  return found;
}

async function readRepository(session: HubSession, namespace: string, repository: string): Promise<{ isPrivate: boolean } | undefined> {
  const answer = await authorized(session, { method: 'GET', path: `/v2/namespaces/${seg(namespace)}/repositories/${seg(repository)}` });
  if (answer.status === 404) return undefined;
  if (answer.status !== 200) throw unexpected(answer, `looking up the repository ${namespace}/${repository}`, transportOf(session));
  // Private only when the Hub says so: a wrong "public" warning is cheaper than a missed one.
  return { isPrivate: isRecord(answer.body) && answer.body.is_private === true };
}

async function authorized(session: HubSession, request: { method: string; path: string; body?: unknown }): Promise<HubAnswer> {
  const { transport, accessToken } = internals(session);
  const answer = await hubRequest(transport, { ...request, bearer: accessToken, secrets: [accessToken] });
  if (answer.status === 401) {
    throw new MinerError(`Docker Hub refused the session for ${session.username} (401)${answer.cause ? `: ${answer.cause}` : ''}`, {
      hint: 'the access token from the login lasts about 10 minutes: run the step again (it logs in anew)',
    });
  }
  return answer;
}

/** The one HTTP function: sends JSON, parses the answer, honours 429s a bounded number of times. */
async function hubRequest(
  transport: Transport,
  request: { method: string; path: string; body?: unknown; bearer?: string; secrets: string[] },
): Promise<HubAnswer> {
  const url = `${transport.apiUrl}${request.path}`;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  if (request.bearer) headers.authorization = `Bearer ${request.bearer}`;
  // Hub passwords have 9+ characters and tokens far more: shorter strings would only mangle ordinary words.
  const scrub = (text: string) =>
    request.secrets.reduce((out, secret) => (secret.length >= 8 ? out.split(secret).join('<redacted>') : out), text);
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    let text: string;
    try {
      response = await transport.fetchImpl(url, {
        method: request.method,
        headers,
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        signal: AbortSignal.timeout(transport.timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      throw new MinerError(
        `cannot reach Docker Hub at ${transport.apiUrl} (${request.method} ${request.path}): ${scrub(networkCause(error))}`,
        {
          hint: `check the internet connection, and DOCKERHUB_API_URL if set (now ${transport.apiUrl})`,
          cause: error,
        },
      );
    }
    if (response.status === 429) {
      const now = transport.now();
      const waitMs = rateLimitWaitMs(
        { retryAfter: response.headers.get('retry-after'), xRetryAfter: response.headers.get('x-retry-after') },
        now,
        attempt,
      );
      if (attempt < transport.retries && waitMs <= transport.maxWaitMs) {
        await transport.sleep(waitMs);
        continue;
      }
      const seconds = Math.ceil(waitMs / 1000);
      const why =
        attempt >= transport.retries ? `after ${attempt} ${attempt === 1 ? 'retry' : 'retries'}` : `and asks to wait ${seconds} s`;
      throw new MinerError(`Docker Hub rate-limited the requests (429 to ${request.method} ${request.path}) ${why}`, {
        hint: `try again after ${new Date(now + waitMs).toISOString()} (in about ${seconds} s)`,
      });
    }
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON (a proxy's HTML page): the text is the cause.
    }
    // A success's own fields are data, not a cause: only its detail/message count there.
    const said = response.ok && isRecord(body) ? { detail: body.detail, message: body.message } : body;
    const cause = scrub(hubErrorCause(said)).slice(0, 300) || (response.ok ? '' : response.statusText);
    return { status: response.status, body, cause };
  }
}

function unexpected(answer: HubAnswer, what: string, transport: Transport): MinerError {
  return new MinerError(`Docker Hub answered ${answer.status} when ${what}${answer.cause ? `: ${answer.cause}` : ''}`, {
    hint:
      answer.status === 403
        ? 'check that the token has Read & Write scope and that DOCKERHUB_USERNAME owns the namespace'
        : answer.status === 404
          ? 'check the names (DOCKERHUB_USERNAME, DOCKERHUB_REPO and the account to share with)'
          : `if this persists, check Docker Hub's status page, and DOCKERHUB_API_URL if set (now ${transport.apiUrl})`,
  });
}

function isPrivateLimit(answer: HubAnswer): boolean {
  return answer.status >= 400 && answer.status < 500 && /private repositor|plan|limit|quota|upgrade/i.test(answer.cause);
}

function networkCause(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'no answer in time';
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
  const code = cause && 'code' in cause ? String(cause.code) : '';
  const message = cause?.message ?? (error instanceof Error ? error.message : String(error));
  return oneLine(code && !message.includes(code) ? `${code}: ${message}` : message);
}

function seg(name: string): string {
  return encodeURIComponent(name);
}

function stringField(value: unknown, key: string): string | undefined {
  return isRecord(value) && typeof value[key] === 'string' && value[key] ? value[key] : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
