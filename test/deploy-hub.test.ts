/**
 * The Docker Hub web API client (lib/deploy/hub.ts) against the stand-in of test/support/hub-standin.ts (the
 * real Hub cannot be reached from here): login and its legacy fallback, the private repository, sharing with a
 * collaborator, rate limits and an unreachable API. Waits go through an injected sleep; nothing here waits.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MinerError } from '../lib/core/errors.ts';
import {
  addCollaborator,
  ensurePrivateRepository,
  type HubClientOptions,
  type HubSession,
  hubErrorCause,
  hubLogin,
  listCollaborators,
  rateLimitWaitMs,
  repositoryExists,
} from '../lib/deploy/hub.ts';
import {
  closedPortUrl,
  type HubStandin,
  type HubStandinOptions,
  PAID_PLAN_REFUSAL,
  privateLimitMessage,
  startHubStandin,
} from './support/hub-standin.ts';

const TOKEN = 'dckr_pat_s3cr3t-DO-NOT-PRINT';
const users = { alice: TOKEN };
const NOW = 1_700_000_000_000; // 2023-11-14T22:13:20Z

const standins: HubStandin[] = [];
after(async () => {
  await Promise.all(standins.map((standin) => standin.close()));
});

async function standin(options: Partial<HubStandinOptions> = {}): Promise<HubStandin> {
  const started = await startHubStandin({ users, ...options });
  standins.push(started);
  return started;
}

/** Logs in as alice with a recording sleep and a fixed clock. */
async function login(hub: HubStandin, extra: HubClientOptions = {}): Promise<{ session: HubSession; waits: number[] }> {
  const waits: number[] = [];
  const session = await hubLogin({
    apiUrl: hub.url,
    username: 'alice',
    token: TOKEN,
    retry: { sleep: async (ms) => void waits.push(ms), now: () => NOW },
    ...extra,
  });
  return { session, waits };
}

async function minerError(promise: Promise<unknown>): Promise<MinerError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof MinerError, `expected MinerError, got ${String(caught)}`);
  assert.ok(!caught.message.includes('\n'), 'the cause is one line');
  return caught;
}

function assertNoSecret(...texts: unknown[]): void {
  for (const text of texts) assert.ok(!String(text).includes(TOKEN), `the token leaked into: ${String(text)}`);
}

const calls = (hub: HubStandin) => hub.calls.map((call) => `${call.method} ${call.path} ${call.status}`);

describe('hubLogin', () => {
  it('gets an access token from /v2/auth/token and uses it as the bearer token', async () => {
    const hub = await standin();
    const { session } = await login(hub);
    assert.deepEqual(session, { apiUrl: hub.url, username: 'alice', loginVia: 'auth-token' });
    assert.equal(await repositoryExists(session, 'alice', 'pt-solution'), false);
    assert.deepEqual(hub.calls, [
      { method: 'POST', path: '/v2/auth/token', body: { identifier: 'alice', secret: '<redacted>' }, status: 200 },
      { method: 'GET', path: '/v2/namespaces/alice/repositories/pt-solution', body: undefined, status: 404 },
    ]);
    assertNoSecret(JSON.stringify(session), JSON.stringify(hub.calls));
  });

  it('falls back to the legacy /v2/users/login when the modern endpoint is missing', async () => {
    const hub = await standin({ loginEndpoint: 'legacy' });
    const { session } = await login(hub);
    assert.equal(session.loginVia, 'users-login');
    assert.equal(await repositoryExists(session, 'alice', 'pt-solution'), false);
    assert.deepEqual(calls(hub), [
      'POST /v2/auth/token 404',
      'POST /v2/users/login 200',
      'GET /v2/namespaces/alice/repositories/pt-solution 404',
    ]);
    assert.deepEqual(hub.calls[1].body, { username: 'alice', password: '<redacted>' });
  });

  for (const loginEndpoint of ['modern', 'legacy'] as const) {
    it(`a wrong token (${loginEndpoint} endpoint) -> the 401 message, without the token in it`, async () => {
      const hub = await standin({ loginEndpoint, users: { alice: 'dckr_pat_the-right-one' } });
      const error = await minerError(login(hub));
      assert.equal(error.message, 'Docker Hub refused the token for alice (401): Incorrect authentication credentials');
      assert.match(error.hint ?? '', /personal access token with Read & Write scope.*DOCKERHUB_TOKEN/);
      assertNoSecret(error.message, error.hint, error.stack, JSON.stringify(hub.calls));
    });
  }

  it('a Hub answer that echoes the token is scrubbed from the error', async () => {
    const fetchImpl: typeof fetch = async () => Response.json({ detail: `token ${TOKEN} lacks a scope` }, { status: 403 });
    const error = await minerError(hubLogin({ apiUrl: 'http://127.0.0.1:9', username: 'alice', token: TOKEN, fetchImpl }));
    assert.equal(error.message, 'Docker Hub answered 403 when logging in as alice: token <redacted> lacks a scope');
  });

  it('an unreachable API (connection refused on loopback) -> the cause and where to look', async () => {
    const url = await closedPortUrl();
    const error = await minerError(hubLogin({ apiUrl: url, username: 'alice', token: TOKEN }));
    assert.match(error.message, /^cannot reach Docker Hub at http:\/\/127\.0\.0\.1:\d+ \(POST \/v2\/auth\/token\): .*ECONNREFUSED/);
    assert.equal(error.hint, `check the internet connection, and DOCKERHUB_API_URL if set (now ${url})`);
    assertNoSecret(error.message, error.hint);
  });
});

describe('repositories', () => {
  it('repositoryExists: 200 -> true, 404 -> false', async () => {
    const hub = await standin({ repositories: [{ namespace: 'alice', name: 'pt-solution', is_private: true, description: '' }] });
    const { session } = await login(hub);
    assert.equal(await repositoryExists(session, 'alice', 'pt-solution'), true);
    assert.equal(await repositoryExists(session, 'alice', 'nothing-here'), false);
  });

  it('creates the repository private', async () => {
    const hub = await standin();
    const { session } = await login(hub);
    assert.deepEqual(await ensurePrivateRepository(session, 'alice', 'pt-solution', 'SN44 miner'), { outcome: 'created', isPrivate: true });
    assert.deepEqual(hub.repositories, [{ namespace: 'alice', name: 'pt-solution', is_private: true, description: 'SN44 miner' }]);
    assert.deepEqual(hub.calls.at(-1), {
      method: 'POST',
      path: '/v2/namespaces/alice/repositories',
      body: { namespace: 'alice', name: 'pt-solution', is_private: true, description: 'SN44 miner' },
      status: 201,
    });
  });

  it('an existing private repository -> exists, without a create', async () => {
    const hub = await standin({ repositories: [{ namespace: 'alice', name: 'pt-solution', is_private: true, description: '' }] });
    const { session } = await login(hub);
    assert.deepEqual(await ensurePrivateRepository(session, 'alice', 'pt-solution', 'x'), { outcome: 'exists', isPrivate: true });
    assert.deepEqual(calls(hub).slice(1), ['GET /v2/namespaces/alice/repositories/pt-solution 200']);
  });

  it('a create answered 400 "already exists" (made meanwhile) -> exists', async () => {
    const hub = await standin();
    let raced = false;
    // Someone else creates it between our look-up and our create.
    const fetchImpl: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!raced && init?.method === 'GET') {
        raced = true;
        hub.repositories.push({ namespace: 'alice', name: 'pt-solution', is_private: true, description: 'web UI' });
      }
      return response;
    };
    const { session } = await login(hub, { fetchImpl });
    assert.deepEqual(await ensurePrivateRepository(session, 'alice', 'pt-solution', 'x'), { outcome: 'exists', isPrivate: true });
    assert.deepEqual(calls(hub).slice(1), [
      'GET /v2/namespaces/alice/repositories/pt-solution 404',
      'POST /v2/namespaces/alice/repositories 400',
      'GET /v2/namespaces/alice/repositories/pt-solution 200',
    ]);
    assert.equal(hub.repositories.length, 1);
  });

  it('an existing public repository -> exists, reported public', async () => {
    const hub = await standin({ repositories: [{ namespace: 'alice', name: 'pt-solution', is_private: false, description: '' }] });
    const { session } = await login(hub);
    assert.deepEqual(await ensurePrivateRepository(session, 'alice', 'pt-solution', 'x'), { outcome: 'exists', isPrivate: false });
  });

  it("the free plan's one private repository -> an error naming the limit, quoting the Hub", async () => {
    const hub = await standin({
      privateRepositoryLimit: 1,
      repositories: [{ namespace: 'alice', name: 'older-model', is_private: true, description: '' }],
    });
    const { session } = await login(hub);
    const error = await minerError(ensurePrivateRepository(session, 'alice', 'pt-solution', 'x'));
    assert.equal(
      error.message,
      `Docker Hub refused to create the private repository alice/pt-solution: the account's private-repository limit (403: ${privateLimitMessage(1)})`,
    );
    assert.match(error.hint ?? '', /make the existing private one public or delete it.*upgrade the plan.*REGISTRY=ghcr/);
    assert.deepEqual(
      hub.repositories.map((r) => r.name),
      ['older-model'],
    );
  });
});

describe('collaborators', () => {
  const privateRepo = { namespace: 'alice', name: 'pt-solution', is_private: true, description: '' };

  it('adds with PUT {permission: read} and lists it back', async () => {
    const hub = await standin({ repositories: [privateRepo] });
    const { session } = await login(hub);
    assert.deepEqual(await addCollaborator(session, 'alice', 'pt-solution', 'scorevision'), {
      variant: 'put',
      status: 200,
      detail: '',
      alreadyPresent: false,
    });
    assert.deepEqual(hub.calls.at(-1), {
      method: 'PUT',
      path: '/v2/repositories/alice/pt-solution/collaborators/scorevision/',
      body: { permission: 'read' },
      status: 200,
    });
    assert.deepEqual(hub.collaborators, [{ namespace: 'alice', repository: 'pt-solution', user: 'scorevision', permission: 'read' }]);
    // Again: PUT is idempotent, still one collaborator.
    assert.equal((await addCollaborator(session, 'alice', 'pt-solution', 'scorevision')).status, 200);
    assert.deepEqual(await listCollaborators(session, 'alice', 'pt-solution'), ['scorevision']);
  });

  it('falls back to POST {user} when PUT is unknown; an existing collaborator is fine; the {username} list shape', async () => {
    const hub = await standin({ repositories: [privateRepo], collaborators: 'post', collaboratorListField: 'username' });
    const { session } = await login(hub);
    assert.deepEqual(await addCollaborator(session, 'alice', 'pt-solution', 'scorevision'), {
      variant: 'post',
      status: 201,
      detail: '',
      alreadyPresent: false,
    });
    assert.deepEqual(calls(hub).slice(1), [
      'PUT /v2/repositories/alice/pt-solution/collaborators/scorevision/ 404',
      'POST /v2/repositories/alice/pt-solution/collaborators/ 201',
    ]);
    assert.deepEqual(hub.calls.at(-1)?.body, { user: 'scorevision' });
    assert.deepEqual(await addCollaborator(session, 'alice', 'pt-solution', 'scorevision'), {
      variant: 'post',
      status: 400,
      detail: 'scorevision is already a collaborator.',
      alreadyPresent: true,
    });
    assert.deepEqual(await listCollaborators(session, 'alice', 'pt-solution'), ['scorevision']);
  });

  it('the paid-plan refusal -> an error quoting the Hub, naming the options', async () => {
    const hub = await standin({ repositories: [privateRepo], collaborators: 'paid-plan-required' });
    const { session } = await login(hub);
    const error = await minerError(addCollaborator(session, 'alice', 'pt-solution', 'scorevision'));
    assert.equal(
      error.message,
      `Docker Hub refused to add scorevision as a collaborator on alice/pt-solution (403): "${PAID_PLAN_REFUSAL}"`,
    );
    assert.match(error.hint ?? '', /only paid accounts.*upgrade the plan.*REGISTRY=ghcr.*grant scorevision Read/);
    assert.deepEqual(hub.collaborators, []);
    assert.deepEqual(await listCollaborators(session, 'alice', 'pt-solution'), []);
  });

  it("an unknown repository -> the PUT's 404, not the fallback's 405", async () => {
    const hub = await standin();
    const { session } = await login(hub);
    const error = await minerError(addCollaborator(session, 'alice', 'nothing-here', 'scorevision'));
    assert.equal(
      error.message,
      'Docker Hub answered 404 when adding scorevision as a collaborator on alice/nothing-here: Object not found',
    );
    assert.deepEqual(calls(hub).slice(1), [
      'PUT /v2/repositories/alice/nothing-here/collaborators/scorevision/ 404',
      'POST /v2/repositories/alice/nothing-here/collaborators/ 405',
    ]);
  });
});

describe('rate limits', () => {
  it('429 with Retry-After (seconds): waits as asked, then succeeds', async () => {
    const hub = await standin();
    const { session, waits } = await login(hub);
    hub.rateLimited.push({ retryAfter: 2 }, { retryAfter: 5 });
    assert.equal(await repositoryExists(session, 'alice', 'pt-solution'), false);
    assert.deepEqual(waits, [2000, 5000]);
    assert.deepEqual(
      hub.calls.slice(1).map((call) => call.status),
      [429, 429, 404],
    );
  });

  it('429 with X-Retry-After (unix time): waits until then; with both headers, the later', async () => {
    const hub = await standin();
    const { session, waits } = await login(hub);
    hub.rateLimited.push({ xRetryAfter: 1_700_000_030 }, { retryAfter: 3, xRetryAfter: 1_700_000_010 });
    assert.equal(await repositoryExists(session, 'alice', 'pt-solution'), false);
    assert.deepEqual(waits, [30000, 10000]);
  });

  it('429 during the login is retried too; without headers, a doubling backoff', async () => {
    const hub = await standin({ rateLimited: [{}, {}] });
    const { session, waits } = await login(hub);
    assert.equal(session.username, 'alice');
    assert.deepEqual(waits, [1000, 2000]);
  });

  it('retries exhausted -> an error saying when to try again', async () => {
    const hub = await standin();
    const { session, waits } = await login(hub);
    hub.rateLimited.push({ retryAfter: 1 }, { retryAfter: 1 }, { retryAfter: 1 }, { retryAfter: 1 });
    const error = await minerError(repositoryExists(session, 'alice', 'pt-solution'));
    assert.equal(
      error.message,
      'Docker Hub rate-limited the requests (429 to GET /v2/namespaces/alice/repositories/pt-solution) after 3 retries',
    );
    assert.equal(error.hint, 'try again after 2023-11-14T22:13:21.000Z (in about 1 s)');
    assert.deepEqual(waits, [1000, 1000, 1000]);
    assert.equal(hub.calls.length, 5);
  });

  it('a wait longer than the cap -> fails at once with the time to retry', async () => {
    const hub = await standin();
    const { session, waits } = await login(hub);
    hub.rateLimited.push({ retryAfter: 3600 });
    const error = await minerError(ensurePrivateRepository(session, 'alice', 'pt-solution', 'x'));
    assert.equal(
      error.message,
      'Docker Hub rate-limited the requests (429 to GET /v2/namespaces/alice/repositories/pt-solution) and asks to wait 3600 s',
    );
    assert.equal(error.hint, 'try again after 2023-11-14T23:13:20.000Z (in about 3600 s)');
    assert.deepEqual(waits, []);
    assert.deepEqual(hub.repositories, []);
  });

  it('the retry count is configurable', async () => {
    const hub = await standin();
    const sleeps: number[] = [];
    const { session } = await login(hub, { retry: { retries: 1, sleep: async (ms) => void sleeps.push(ms), now: () => NOW } });
    hub.rateLimited.push({ retryAfter: 4 }, { retryAfter: 4 });
    const error = await minerError(repositoryExists(session, 'alice', 'x'));
    assert.match(error.message, /after 1 retry$/);
    assert.deepEqual(sleeps, [4000]);
  });
});

describe('pure helpers', () => {
  it('hubErrorCause reads {message, detail}, __all__, field errors and errinfo', () => {
    assert.equal(hubErrorCause({ errinfo: {}, detail: 'Not found.', message: 'Not found.' }), 'Not found.');
    assert.equal(hubErrorCause({ detail: 'a', message: 'b' }), 'b — a');
    assert.equal(
      hubErrorCause({ __all__: ['Repository with this Name and Namespace already exists.'] }),
      'Repository with this Name and Namespace already exists.',
    );
    assert.equal(hubErrorCause({ name: ['Enter a valid repository name.'] }), 'name: Enter a valid repository name.');
    assert.equal(hubErrorCause({ errinfo: { plan: 'free' } }), '{"plan":"free"}');
    assert.equal(hubErrorCause('<html>\n  Bad gateway\n</html>'), '<html> Bad gateway </html>');
    assert.equal(hubErrorCause(undefined), '');
  });

  it('rateLimitWaitMs: seconds, unix time, HTTP date, the later of both, backoff', () => {
    assert.equal(rateLimitWaitMs({ retryAfter: '7', xRetryAfter: null }, NOW, 0), 7000);
    assert.equal(rateLimitWaitMs({ retryAfter: null, xRetryAfter: '1700000012' }, NOW, 0), 12000);
    assert.equal(rateLimitWaitMs({ retryAfter: 'Tue, 14 Nov 2023 22:13:50 GMT', xRetryAfter: null }, NOW, 0), 30000);
    assert.equal(rateLimitWaitMs({ retryAfter: '1', xRetryAfter: '1700000004' }, NOW, 0), 4000);
    assert.equal(rateLimitWaitMs({ retryAfter: null, xRetryAfter: '1699999990' }, NOW, 0), 0);
    assert.equal(rateLimitWaitMs({ retryAfter: null, xRetryAfter: null }, NOW, 2), 4000);
  });
});
