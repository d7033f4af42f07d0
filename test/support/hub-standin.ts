/**
 * A STAND-IN for Docker Hub's web API, for tests only: it is not Docker Hub. The real Hub cannot be reached
 * from the development and CI machines, so this small node:http server on 127.0.0.1 (ephemeral port) implements
 * the contract the project relies on, as documented in docs/deploy.md ("Docker Hub HTTP API"):
 *
 * - POST /v2/auth/token {identifier, secret} -> {access_token}; legacy POST /v2/users/login {username, password}
 *   -> {token}; only one of the two exists (option `loginEndpoint`), the other answers 404.
 * - Every other call needs `Authorization: Bearer <a token this server issued>`, else 401.
 * - GET /v2/namespaces/{ns}/repositories/{repo} -> 200 {name, namespace, is_private, ...} / 404.
 * - POST /v2/namespaces/{ns}/repositories {namespace, name, is_private, description} -> 201; a duplicate -> 400
 *   {"__all__": ["Repository with this Name and Namespace already exists."]}; past the private-repository limit
 *   (option, 1 on the free plan) -> 403 naming the limit.
 * - Collaborators (undocumented upstream, both variants seen in public clients; option `collaborators`):
 *   'put': PUT /v2/repositories/{ns}/{repo}/collaborators/{user}/ {permission}; POST answers 405.
 *   'post': POST /v2/repositories/{ns}/{repo}/collaborators/ {user} (400 when already there); PUT answers 404.
 *   'paid-plan-required': PUT exists but refuses private repositories with 403 (Docker documents that only paid
 *   accounts can add collaborators to a private repository).
 *   GET of .../collaborators/ lists them as {results: [{user}]} or {results: [{username}]} (option).
 * - Errors are JSON {errinfo, detail, message}; scripted 429s carry Retry-After (seconds) and/or X-Retry-After
 *   (unix time, seconds), one per request until the script runs out.
 *
 * State (repositories, collaborators) is in memory and exposed for assertions and setup; every call is recorded
 * (method, path, body with the login secrets replaced by '<redacted>', status).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandinRepository {
  namespace: string;
  name: string;
  is_private: boolean;
  description: string;
}

export interface StandinCollaborator {
  namespace: string;
  repository: string;
  user: string;
  permission: string;
}

export interface StandinCall {
  method: string;
  path: string;
  /** The JSON body, login secrets replaced by '<redacted>'; undefined when there was none. */
  body: unknown;
  status: number;
}

export interface RateLimitAnswer {
  /** Retry-After header, in seconds. */
  retryAfter?: number;
  /** X-Retry-After header, a unix time in seconds. */
  xRetryAfter?: number;
}

export interface HubStandinOptions {
  /** Accounts and their personal access tokens. */
  users: Record<string, string>;
  /** Which login endpoint exists (default 'modern': /v2/auth/token). */
  loginEndpoint?: 'modern' | 'legacy';
  /** Which collaborator request works (default 'put'). */
  collaborators?: 'put' | 'post' | 'paid-plan-required';
  /** Field naming the account in the collaborator list (default 'user'). */
  collaboratorListField?: 'user' | 'username';
  /** Private repositories allowed per namespace (default unlimited; the free plan allows 1). */
  privateRepositoryLimit?: number;
  /** 429s answered to the next requests, in order, whatever they ask. */
  rateLimited?: RateLimitAnswer[];
  /** Repositories that exist from the start. */
  repositories?: StandinRepository[];
}

export interface HubStandin {
  url: string;
  calls: StandinCall[];
  repositories: StandinRepository[];
  collaborators: StandinCollaborator[];
  /** The remaining scripted 429s; tests may push more. */
  rateLimited: RateLimitAnswer[];
  close(): Promise<void>;
}

export const DUPLICATE_REPOSITORY = 'Repository with this Name and Namespace already exists.';
export const PAID_PLAN_REFUSAL = 'Only paid accounts can add collaborators to private repositories.';
export const privateLimitMessage = (limit: number) =>
  `You have reached the limit of ${limit} private ${limit === 1 ? 'repository' : 'repositories'} for your plan. Upgrade to add more.`;

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const error = (status: number, detail: string, errinfo: Record<string, unknown> = {}): Answer => ({
  status,
  body: { errinfo, detail, message: detail },
});
const notFound = (): Answer => error(404, 'Not found.');
const notAllowed = (method: string): Answer => error(405, `Method "${method}" not allowed.`);

export async function startHubStandin(options: HubStandinOptions): Promise<HubStandin> {
  const loginEndpoint = options.loginEndpoint ?? 'modern';
  const collaboratorMode = options.collaborators ?? 'put';
  const listField = options.collaboratorListField ?? 'user';
  const privateLimit = options.privateRepositoryLimit ?? Number.POSITIVE_INFINITY;
  const calls: StandinCall[] = [];
  const repositories: StandinRepository[] = [...(options.repositories ?? [])];
  const collaborators: StandinCollaborator[] = [];
  const rateLimited: RateLimitAnswer[] = [...(options.rateLimited ?? [])];
  /** Issued access token -> account. */
  const sessions = new Map<string, string>();

  const issue = (user: string) => {
    const token = `standin-${randomBytes(16).toString('hex')}`;
    sessions.set(token, user);
    return token;
  };
  const findRepository = (namespace: string, name: string) => repositories.find((r) => r.namespace === namespace && r.name === name);

  function login(path: string, body: Record<string, unknown>): Answer | undefined {
    if (path === '/v2/auth/token' && loginEndpoint === 'modern') {
      const user = String(body.identifier ?? '');
      if (!(user in options.users) || options.users[user] !== body.secret) return error(401, 'Incorrect authentication credentials');
      return { status: 200, body: { access_token: issue(user) } };
    }
    if (path === '/v2/users/login' && loginEndpoint === 'legacy') {
      const user = String(body.username ?? '');
      if (!(user in options.users) || options.users[user] !== body.password) return error(401, 'Incorrect authentication credentials');
      return { status: 200, body: { token: issue(user) } };
    }
    return undefined;
  }

  /** The account's own repository, or the 404 the Hub gives for anything else. */
  function owned(account: string, namespace: string, name: string): StandinRepository | Answer {
    const repository = findRepository(namespace, name);
    if (!repository || (repository.is_private && namespace !== account)) return error(404, 'Object not found');
    if (namespace !== account) return error(403, 'You do not have permission to perform this action.');
    return repository;
  }

  function route(method: string, path: string, body: Record<string, unknown>, account: string): Answer {
    let match = /^\/v2\/namespaces\/([^/]+)\/repositories\/([^/]+)\/?$/.exec(path);
    if (match) {
      if (method !== 'GET') return notAllowed(method);
      const [namespace, name] = [decodeURIComponent(match[1]), decodeURIComponent(match[2])];
      const repository = findRepository(namespace, name);
      if (!repository || (repository.is_private && namespace !== account)) return error(404, 'Object not found');
      return { status: 200, body: { ...repository, repository_type: 'image', status: 1 } };
    }
    match = /^\/v2\/namespaces\/([^/]+)\/repositories\/?$/.exec(path);
    if (match) {
      if (method !== 'POST') return notAllowed(method);
      const namespace = decodeURIComponent(match[1]);
      if (namespace !== account || body.namespace !== namespace) return error(403, 'You do not have permission to perform this action.');
      const name = typeof body.name === 'string' ? body.name : '';
      if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(name)) return { status: 400, body: { name: ['Enter a valid repository name.'] } };
      if (findRepository(namespace, name)) return { status: 400, body: { __all__: [DUPLICATE_REPOSITORY] } };
      const isPrivate = body.is_private === true;
      if (isPrivate && repositories.filter((r) => r.namespace === namespace && r.is_private).length >= privateLimit) {
        return error(403, privateLimitMessage(privateLimit), { plan: 'free', private_repositories: privateLimit });
      }
      const repository = {
        namespace,
        name,
        is_private: isPrivate,
        description: typeof body.description === 'string' ? body.description : '',
      };
      repositories.push(repository);
      return { status: 201, body: repository };
    }
    match = /^\/v2\/repositories\/([^/]+)\/([^/]+)\/collaborators\/([^/]+)\/$/.exec(path);
    if (match) {
      if (collaboratorMode === 'post') return notFound();
      if (method !== 'PUT') return notAllowed(method);
      const [namespace, name, user] = [decodeURIComponent(match[1]), decodeURIComponent(match[2]), decodeURIComponent(match[3])];
      const repository = owned(account, namespace, name);
      if (!('name' in repository)) return repository;
      if (collaboratorMode === 'paid-plan-required' && repository.is_private) return error(403, PAID_PLAN_REFUSAL, { plan: 'free' });
      const permission = typeof body.permission === 'string' ? body.permission : 'read';
      const existing = collaborators.find((c) => c.namespace === namespace && c.repository === name && c.user === user);
      if (existing) existing.permission = permission;
      else collaborators.push({ namespace, repository: name, user, permission });
      return { status: 200, body: { user, permission } };
    }
    match = /^\/v2\/repositories\/([^/]+)\/([^/]+)\/collaborators\/$/.exec(path);
    if (match) {
      const [namespace, name] = [decodeURIComponent(match[1]), decodeURIComponent(match[2])];
      if (method === 'GET') {
        const repository = owned(account, namespace, name);
        if (!('name' in repository)) return repository;
        const results = collaborators
          .filter((c) => c.namespace === namespace && c.repository === name)
          .map((c) => ({ [listField]: c.user, permission: c.permission }));
        return { status: 200, body: { count: results.length, next: null, previous: null, results } };
      }
      if (method !== 'POST' || collaboratorMode !== 'post') return notAllowed(method);
      const repository = owned(account, namespace, name);
      if (!('name' in repository)) return repository;
      const user = typeof body.user === 'string' ? body.user : '';
      if (!user) return { status: 400, body: { user: ['This field is required.'] } };
      if (collaborators.some((c) => c.namespace === namespace && c.repository === name && c.user === user)) {
        return error(400, `${user} is already a collaborator.`);
      }
      collaborators.push({ namespace, repository: name, user, permission: 'read' });
      return { status: 201, body: { user, permission: 'read' } };
    }
    return notFound();
  }

  function handle(
    method: string,
    path: string,
    authorization: string | undefined,
    raw: string,
    record: (call: StandinCall) => void,
  ): Answer {
    let body: Record<string, unknown> = {};
    let recorded: unknown;
    const done = (answer: Answer) => {
      record({ method, path, body: recorded, status: answer.status });
      return answer;
    };
    if (raw) {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
        recorded = redact(parsed);
      } catch {
        recorded = '<not JSON>';
        return done(error(400, 'JSON parse error'));
      }
    }
    const limited = rateLimited.shift();
    if (limited) {
      const headers: Record<string, string> = {};
      if (limited.retryAfter !== undefined) headers['retry-after'] = String(limited.retryAfter);
      if (limited.xRetryAfter !== undefined) headers['x-retry-after'] = String(limited.xRetryAfter);
      return done({ ...error(429, 'Too Many Requests'), headers });
    }
    if (method === 'POST') {
      const answer = login(path, body);
      if (answer) return done(answer);
    }
    if (path === '/v2/auth/token' || path === '/v2/users/login') return done(notFound());
    const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    if (!token) return done(error(401, 'Authentication credentials were not provided.'));
    const account = sessions.get(token);
    if (!account) return done(error(401, 'Invalid or expired token.'));
    return done(route(method, path, body, account));
  }

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = new URL(request.url ?? '/', 'http://standin').pathname;
      const answer = handle(request.method ?? 'GET', path, request.headers.authorization, Buffer.concat(chunks).toString(), (call) =>
        calls.push(call),
      );
      response.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      response.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    repositories,
    collaborators,
    rateLimited,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback URL where nothing listens (a port just released), for connection-refused tests. */
export async function closedPortUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** The login secrets never reach the call log. */
function redact(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  return Object.fromEntries(
    Object.entries(body).map(([key, value]) => [key, key === 'secret' || key === 'password' ? '<redacted>' : value]),
  );
}
