/**
 * A real container registry for the tests: Debian's docker-registry (CNCF distribution 2.8) on 127.0.0.1 with
 * filesystem storage in a temporary folder and Docker-Hub-style bearer-token auth. The token service is this
 * module's own node:http server: it checks HTTP Basic credentials against `users` and issues ES256 JWTs carrying
 * the access asked for in `scope`, signed with a key whose self-signed certificate (made with `openssl req -x509`)
 * is the registry's rootcertbundle and travels in the JWT's `x5c` header. Anonymous token requests get 401, so
 * nothing can be pulled without credentials. Docker treats 127.0.0.0/8 registries as insecure (plain HTTP), so
 * `docker login` / `docker push 127.0.0.1:PORT/...` work against the daemon from startDockerd.
 */
import { randomUUID, sign, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { freePort } from '../../scripts/miner-process.ts';

/** One request the token service answered. */
export interface TokenRequest {
  /** The Basic-auth user, when credentials came with the request (right or wrong). */
  user?: string;
  /** The `scope` parameters, as sent (`repository:alice/miner:pull,push`). */
  scopes: string[];
  /** The `service` parameter. */
  service?: string;
  /** 200 when a token was issued; 401 when anonymous or the password was wrong. */
  status: number;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry host to tag, log in to, push to. */
  host: string;
  /** The token service's realm URL. */
  realm: string;
  /** Every request the token service answered, oldest first. */
  tokenRequests: TokenRequest[];
  /** The registry's log tail, for failure messages. */
  log(): string;
  /** Kills the registry and the token service and removes the folder; safe to call twice. */
  stop(): Promise<void>;
}

const SERVICE = 'score-miner-test-registry';
const ISSUER = 'score-miner-test-token-issuer';

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** `type:name:actions`, where only the name may itself hold colons. */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export async function startRegistry(options: { users: Record<string, string> }): Promise<TestRegistry> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'score-miner-registry-'));
  const keyFile = path.join(root, 'token.key');
  const certFile = path.join(root, 'token.crt');
  const tokenRequests: TokenRequest[] = [];
  let tokenServer: http.Server | undefined;
  let registry: ReturnType<typeof execa> | undefined;
  let registryLog = '';
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (registry && registry.exitCode === null) {
      registry.kill('SIGTERM');
      await Promise.race([registry, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (registry.exitCode === null) registry.kill('SIGKILL');
    }
    if (tokenServer) {
      tokenServer.closeAllConnections();
      await new Promise((resolve) => tokenServer?.close(resolve));
    }
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
  };

  try {
    await execa('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${ISSUER}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ]);
    const privateKey = await readFile(keyFile, 'utf8');
    const certificate = new X509Certificate(await readFile(certFile));
    const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c: [certificate.raw.toString('base64')] }));

    const issueToken = (user: string, scopes: string[]): string => {
      const access: { type: string; name: string; actions: string[] }[] = [];
      for (const scope of scopes) {
        const parsed = parseScope(scope);
        if (parsed?.type !== 'repository') continue;
        // Like Docker Hub: a user may push to (and delete in) their own namespace, and pull anything.
        const own = parsed.name.startsWith(`${user}/`);
        const actions = parsed.actions.filter((action) => own || action === 'pull');
        access.push({ type: parsed.type, name: parsed.name, actions });
      }
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: ISSUER, sub: user, aud: SERVICE, exp: now + 300, nbf: now - 30, iat: now, jti: randomUUID(), access };
      const signingInput = `${header}.${base64url(JSON.stringify(claims))}`;
      const signature = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      return `${signingInput}.${base64url(signature)}`;
    };

    tokenServer = http.createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      const credentials = basicCredentials(request.headers.authorization);
      const scopes = url.searchParams.getAll('scope').flatMap((scope) => scope.split(' ').filter(Boolean));
      const service = url.searchParams.get('service') ?? undefined;
      const granted = credentials !== undefined && options.users[credentials.user] === credentials.password;
      const reply = (status: number, body: unknown) => {
        tokenRequests.push({ user: credentials?.user, scopes, service, status });
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(body));
      };
      if (url.pathname !== '/token') return reply(404, { details: 'not found' });
      if (!granted) {
        response.setHeader('www-authenticate', `Basic realm="${SERVICE}"`);
        return reply(401, { details: credentials ? 'incorrect username or password' : 'authentication required' });
      }
      const token = issueToken(credentials.user, scopes);
      reply(200, { token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() });
    });
    await new Promise<void>((resolve) => tokenServer?.listen(0, '127.0.0.1', resolve));
    const realm = `http://127.0.0.1:${(tokenServer.address() as net.AddressInfo).port}/token`;

    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const config = [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(root, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${host}`,
      `  secret: ${randomUUID()}`,
      'auth:',
      '  token:',
      `    realm: ${realm}`,
      `    service: ${SERVICE}`,
      `    issuer: ${ISSUER}`,
      `    rootcertbundle: ${certFile}`,
      '',
    ].join('\n');
    const configFile = path.join(root, 'config.yml');
    await writeFile(configFile, config);
    const child = execa('docker-registry', ['serve', configFile], { reject: false, all: true, stdin: 'ignore' });
    registry = child;
    child.all?.on('data', (chunk: Buffer) => {
      registryLog = (registryLog + chunk.toString()).slice(-4000);
    });

    const deadline = Date.now() + 20_000;
    for (;;) {
      const status = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(2_000) }).then(
        (response) => response.status,
        () => undefined,
      );
      if (status === 401 || status === 200) break;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`docker-registry did not start: ${registryLog}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { host, realm, tokenRequests, log: () => registryLog, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
