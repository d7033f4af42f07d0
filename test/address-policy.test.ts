/**
 * The address policy for video_url downloads (lib/video/address-policy.ts): classification of literals
 * (pure, no connections), URL host literals, the guarded lookup against a fake resolver, and the guarded undici
 * Agent against loopback servers only, each counting its connections: every refusal must leave them at zero,
 * and the same requests with allowPrivate succeed (so a refusal is the policy, not an unreachable server).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { type AddressInfo, isIPv6, type LookupFunction } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Agent, request } from 'undici';
import {
  ADDRESS_NOT_ALLOWED,
  AddressNotAllowedError,
  checkHostLiteral,
  createGuardedAgent,
  declareHostAddresses,
  forbiddenReason,
  guardedLookup,
  hostAddresses,
  hostAddressSet,
  hostLiteral,
  interfaceAddresses,
  refusalReason,
  SAME_HOST,
  sameHostReason,
} from '../lib/video/address-policy.ts';

describe('forbiddenReason', () => {
  const cases: Array<[string, string | undefined]> = [
    // IPv4
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.254', 'cgnat'],
    ['100.63.255.255', undefined],
    ['100.128.0.0', undefined],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.15.255.255', undefined],
    ['172.32.0.0', undefined],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', 'reserved'],
    ['192.168.1.1', 'private'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.9', 'documentation'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.254', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['8.8.8.8', undefined],
    ['1.1.1.1', undefined],
    ['93.184.216.34', undefined],
    ['223.255.255.255', undefined],
    // IPv6
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['[::1]', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['fec0::1', 'site-local'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456:789a::1', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['ff05::1:3', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['2001:2::1', 'benchmarking'],
    ['100::1', 'reserved'],
    ['4000::1', 'reserved'],
    ['5f00::1', 'reserved'],
    ['2606:4700::1111', undefined],
    ['2001:4860:4860::8888', undefined],
    ['2a00:1450:4001:80b::200e', undefined],
    // IPv4-mapped: the embedded address decides
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:8.8.8.8', undefined],
    // IPv4-compatible (deprecated): the embedded reason, else reserved
    ['::127.0.0.1', 'loopback'],
    ['::7f00:1', 'loopback'],
    ['::192.168.0.1', 'private'],
    ['::8.8.8.8', 'reserved'],
    // SIIT ::ffff:0:a.b.c.d and other ::/8 forms: outside 2000::/3
    ['::ffff:0:7f00:1', 'reserved'],
    // NAT64 well-known prefix: the embedded address decides; local-use prefix refused
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['64:ff9b::169.254.169.254', 'link-local'],
    ['64:ff9b::8.8.8.8', undefined],
    ['64:ff9b:1::a00:1', 'private'],
    // 6to4: the IPv4 address in bits 16..47
    ['2002:7f00:1::1', 'loopback'],
    ['2002:c0a8:101::1', 'private'],
    ['2002:808:808::1', undefined],
    // Teredo: server in bits 32..63, client inverted in the low 32 bits
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'], // client ~0x80fffffe = 127.0.0.1
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'private'], // client ~0xf5fffffe = 10.0.0.1
    ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', undefined], // client 8.8.8.8, server 65.54.227.120
    ['2001:0:7f00:1:8000:63bf:f7f7:f7f7', 'loopback'], // server 127.0.0.1
    // not addresses: fail closed
    ['localhost', 'not-an-ip'],
    ['127.1', 'not-an-ip'],
    ['', 'not-an-ip'],
    ['::ffff:127.0.0.1:80', 'not-an-ip'],
  ];
  for (const [ip, expected] of cases) {
    it(`${JSON.stringify(ip)} → ${expected ?? 'allowed'}`, () => {
      assert.equal(forbiddenReason(ip), expected);
    });
  }
});

describe('hostLiteral and checkHostLiteral', () => {
  it('normalises legacy IPv4 spellings exactly as the WHATWG URL parser does', () => {
    const raws = ['127.1', '0x7f000001', '2130706433', '0177.0.0.1', '0x7f.1', '127.0.0.1.', '127.0.1', '8.8.8.8', '0x8.0x8.0x8.0x8'];
    for (const raw of raws) {
      const viaUrl = new URL(`http://${raw}/`).hostname;
      assert.equal(hostLiteral(raw), viaUrl, raw);
      assert.equal(hostLiteral(viaUrl), viaUrl, raw);
    }
  });

  it('takes host names as not literal', () => {
    for (const name of ['localhost', 'example.com', 'video.cdn.example', '1.2.3.4.5', 'abc.123x', '']) {
      assert.equal(hostLiteral(name), undefined, name);
      assert.equal(checkHostLiteral(name), undefined, name);
    }
  });

  const urls: Array<[string, string, string | undefined]> = [
    ['http://127.0.0.1/', '127.0.0.1', 'loopback'],
    ['http://localhost/', 'localhost', undefined],
    ['http://127.1/', '127.0.0.1', 'loopback'],
    ['http://0x7f000001/', '127.0.0.1', 'loopback'],
    ['http://2130706433/', '127.0.0.1', 'loopback'],
    ['http://[::1]/', '[::1]', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', '[::ffff:7f00:1]', 'loopback'],
    ['http://[::ffff:7f00:1]/', '[::ffff:7f00:1]', 'loopback'],
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254', 'link-local'],
    ['http://[fd00::1]/', '[fd00::1]', 'unique-local'],
    ['http://0/', '0.0.0.0', 'unspecified'],
    ['https://8.8.8.8/', '8.8.8.8', undefined],
    ['https://[2606:4700::1111]/', '[2606:4700::1111]', undefined],
    ['https://video.example.com/a.mp4', 'video.example.com', undefined],
  ];
  for (const [url, hostname, expected] of urls) {
    it(`${url} → hostname ${hostname} → ${expected ?? 'not refused'}`, () => {
      const parsed = new URL(url).hostname;
      assert.equal(parsed, hostname);
      assert.equal(checkHostLiteral(parsed), expected);
      if (parsed.startsWith('[')) assert.equal(checkHostLiteral(parsed.slice(1, -1)), expected);
    });
  }
});

// This host's own addresses. Loopback spellings stand in for the host's public ones: the check is by address,
// whatever its range, so these tests need no other address (and make no connection).
describe("this host's own addresses (same-host)", () => {
  after(() => declareHostAddresses([]));

  it('matches every spelling of an address, and the IPv6 forms that lead to it', () => {
    const host = hostAddressSet(['127.0.0.1', 'not an address', '']);
    const spellings = [
      '127.0.0.1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '[::ffff:7f00:1]',
      '0:0:0:0:0:ffff:7f00:1',
      '::127.0.0.1', // IPv4-compatible
      '64:ff9b::7f00:1', // NAT64
      '2002:7f00:1::1', // 6to4
      '2001:0:4136:e378:8000:63bf:80ff:fffe', // Teredo client (inverted)
      '2001:0:7f00:1:8000:63bf:f7f7:f7f7', // Teredo server
    ];
    for (const ip of spellings) assert.equal(sameHostReason(ip, host), SAME_HOST, ip);
    for (const ip of ['127.0.0.2', '::1', '::', '0.0.0.1', '::ffff:127.0.0.2', 'localhost', '127.1', '']) {
      assert.equal(sameHostReason(ip, host), undefined, ip);
    }
  });

  it('matches IPv6 addresses across spellings and zones', () => {
    const host = hostAddressSet(['::1']);
    for (const ip of ['::1', '0:0:0:0:0:0:0:1', '[::1]', '::1%lo']) assert.equal(sameHostReason(ip, host), SAME_HOST, ip);
    // ::1 is not the IPv4-compatible form of 0.0.0.1.
    for (const ip of ['::2', '0.0.0.1', '127.0.0.1']) assert.equal(sameHostReason(ip, host), undefined, ip);
  });

  it('names an address of this host as such, before its range', () => {
    assert.equal(refusalReason('127.0.0.1', hostAddressSet(['127.0.0.1'])), SAME_HOST);
    assert.equal(refusalReason('127.0.0.1', hostAddressSet([])), 'loopback');
    assert.equal(refusalReason('::ffff:7f00:1', hostAddressSet(['127.0.0.1'])), SAME_HOST);
    assert.equal(refusalReason('localhost', hostAddressSet(['127.0.0.1'])), 'not-an-ip');
  });

  it("takes the interfaces' addresses except the internal (loopback) ones, which keep their own reason", () => {
    const entry = (address: string, internal: boolean) =>
      isIPv6(address)
        ? { address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6' as const, mac: '00:00:00:00:00:00', internal, cidr: null, scopeid: 0 }
        : { address, netmask: '255.0.0.0', family: 'IPv4' as const, mac: '00:00:00:00:00:00', internal, cidr: null };
    const interfaces = {
      lo: [entry('127.0.0.1', true), entry('::1', true)],
      eth0: [entry('127.0.0.3', false), entry('::ffff:127.0.0.4', false)],
      down: undefined,
    };
    assert.deepEqual(interfaceAddresses(interfaces), ['127.0.0.3', '::ffff:127.0.0.4']);
    const host = hostAddressSet(interfaceAddresses(interfaces));
    assert.equal(refusalReason('127.0.0.3', host), SAME_HOST);
    assert.equal(refusalReason('127.0.0.4', host), SAME_HOST);
    assert.equal(refusalReason('127.0.0.1', host), 'loopback');
  });

  it('declared addresses (AXON_IP) count at once; checkHostLiteral uses them by default', () => {
    assert.equal(checkHostLiteral('127.0.0.9'), 'loopback');
    declareHostAddresses(['127.0.0.9', undefined]);
    assert.equal(sameHostReason('127.0.0.9', hostAddresses()), SAME_HOST);
    assert.equal(checkHostLiteral('127.0.0.9'), SAME_HOST);
    assert.equal(checkHostLiteral('[::ffff:7f00:9]'), SAME_HOST);
    assert.equal(checkHostLiteral('127.0.0.8'), 'loopback');
    declareHostAddresses([]);
    assert.equal(checkHostLiteral('127.0.0.9'), 'loopback');
  });

  it('the host set is re-read after its TTL, not on every check', () => {
    const first = hostAddresses(1_000_000);
    assert.equal(hostAddresses(1_000_000 + 4_999), first);
    assert.notEqual(hostAddresses(1_000_000 + 5_000), first);
  });
});

/** A resolver that answers from a table and never touches the network. */
function fakeResolver(table: Record<string, Array<{ address: string; family: number }>>): LookupFunction & { calls: string[] } {
  const calls: string[] = [];
  const fn: LookupFunction = (hostname, options, callback) => {
    calls.push(hostname);
    const answer = table[hostname];
    process.nextTick(() => {
      if (!answer) {
        const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        error.code = 'ENOTFOUND';
        callback(error, '', 0);
      } else if (options.all) callback(null, answer);
      else callback(null, answer[0].address, answer[0].family);
    });
  };
  return Object.assign(fn, { calls });
}

function lookupOnce(lookup: LookupFunction, hostname: string, all: boolean) {
  return new Promise<{ error: NodeJS.ErrnoException | null; address: unknown; family?: number }>((resolve) => {
    lookup(hostname, { all }, (error, address, family) => resolve({ error, address, family }));
  });
}

describe('guardedLookup (fake resolver, no network)', () => {
  const resolver = fakeResolver({
    'mixed.test': [
      { address: '93.184.216.34', family: 4 },
      { address: '10.0.0.1', family: 4 },
    ],
    'mapped.test': [{ address: '::ffff:169.254.169.254', family: 6 }],
    'public.test': [
      { address: '2606:4700::1111', family: 6 },
      { address: '1.1.1.1', family: 4 },
    ],
  });
  const lookup = guardedLookup({ allowPrivate: false, lookup: resolver });

  it('refuses a name when any of its addresses is forbidden, with or without all', async () => {
    for (const all of [true, false]) {
      const { error } = await lookupOnce(lookup, 'mixed.test', all);
      assert.ok(error instanceof AddressNotAllowedError);
      assert.equal(error.code, ADDRESS_NOT_ALLOWED);
      assert.equal(error.host, 'mixed.test');
      assert.equal(error.address, '10.0.0.1');
      assert.equal(error.reason, 'private');
      assert.match(error.message, /^mixed\.test resolves to a private address \(10\.0\.0\.1\), which is refused$/);
    }
    const { error } = await lookupOnce(lookup, 'mapped.test', true);
    assert.equal((error as AddressNotAllowedError).reason, 'link-local');
  });

  it('passes public answers through unchanged, in order, once per call', async () => {
    resolver.calls.length = 0;
    const many = await lookupOnce(lookup, 'public.test', true);
    assert.equal(many.error, null);
    assert.deepEqual(many.address, [
      { address: '2606:4700::1111', family: 6 },
      { address: '1.1.1.1', family: 4 },
    ]);
    const one = await lookupOnce(lookup, 'public.test', false);
    assert.equal(one.error, null);
    assert.equal(one.address, '2606:4700::1111');
    assert.equal(one.family, 6);
    assert.deepEqual(resolver.calls, ['public.test', 'public.test']);
  });

  it('passes resolver errors through', async () => {
    const { error } = await lookupOnce(lookup, 'missing.test', false);
    assert.equal(error?.code, 'ENOTFOUND');
  });

  it("refuses a name that resolves to one of this host's addresses (same-host)", async () => {
    const own = hostAddressSet(['127.0.0.5']);
    const lookupOwn = guardedLookup({
      allowPrivate: false,
      lookup: fakeResolver({ 'self.test': [{ address: '127.0.0.5', family: 4 }] }),
      hostAddresses: () => own,
    });
    for (const all of [true, false]) {
      const { error } = await lookupOnce(lookupOwn, 'self.test', all);
      assert.ok(error instanceof AddressNotAllowedError);
      assert.equal(error.reason, SAME_HOST);
      assert.equal(error.address, '127.0.0.5');
    }
  });

  it('with allowPrivate is the resolver itself', () => {
    assert.equal(guardedLookup({ allowPrivate: true, lookup: resolver }), resolver);
  });

  it('checks the system resolver too (localhost from /etc/hosts)', async () => {
    const { error } = await lookupOnce(guardedLookup({ allowPrivate: false }), 'localhost', true);
    assert.ok(error instanceof AddressNotAllowedError);
    assert.equal(error.reason, 'loopback');
  });
});

interface CountingServer {
  server: http.Server;
  port: number;
  connections: number;
}

async function countingServer(host: string, handler?: http.RequestListener): Promise<CountingServer> {
  const server = http.createServer(
    handler ??
      ((_req, res) => {
        res.end('ok');
      }),
  );
  const counting: CountingServer = { server, port: 0, connections: 0 };
  server.on('connection', () => {
    counting.connections++;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  counting.port = (server.address() as AddressInfo).port;
  return counting;
}

async function closeServer(counting: CountingServer): Promise<void> {
  counting.server.closeAllConnections();
  await new Promise<void>((resolve) => counting.server.close(() => resolve()));
}

async function assertRefused(
  agent: Agent,
  url: string,
  expected: { host: string; reason: string },
  headers?: Record<string, string>,
): Promise<void> {
  await assert.rejects(request(url, { dispatcher: agent, headers }), (error: unknown) => {
    assert.ok(error instanceof AddressNotAllowedError, `${url}: expected AddressNotAllowedError, got ${String(error)}`);
    assert.equal(error.code, ADDRESS_NOT_ALLOWED);
    assert.equal(error.host, expected.host, url);
    assert.equal(error.reason, expected.reason, url);
    assert.ok(error.message.startsWith(`${expected.host} resolves to a ${expected.reason} address`), error.message);
    return true;
  });
}

describe('createGuardedAgent against loopback servers', () => {
  let v4: CountingServer;
  let v6: CountingServer;
  let other: CountingServer;
  const agents: Agent[] = [];
  const guarded = () => {
    const agent = createGuardedAgent({ allowPrivate: false, connectTimeout: 2000, headersTimeout: 2000, bodyTimeout: 2000 });
    agents.push(agent);
    return agent;
  };
  const permissive = (extra: Partial<Parameters<typeof createGuardedAgent>[0]> = {}) => {
    const agent = createGuardedAgent({ allowPrivate: true, connectTimeout: 2000, headersTimeout: 2000, bodyTimeout: 2000, ...extra });
    agents.push(agent);
    return agent;
  };
  const total = () => v4.connections + v6.connections + other.connections;
  const resetCounts = () => {
    v4.connections = 0;
    v6.connections = 0;
    other.connections = 0;
  };

  before(async () => {
    v6 = await countingServer('::1');
    v4 = await countingServer('127.0.0.1', (req, res) => {
      if (req.url === '/to-v6') res.writeHead(302, { location: `http://[::1]:${v6.port}/` }).end();
      else if (req.url === '/to-name') res.writeHead(302, { location: `http://localhost:${v4.port}/` }).end();
      else res.end('ok');
    });
    other = await countingServer('127.0.0.2');
  });

  after(async () => {
    await Promise.all(agents.map((agent) => agent.close()));
    await Promise.all([v4, v6, other].filter(Boolean).map(closeServer));
  });

  const spellings = (): Array<{ url: string; host: string; headers?: Record<string, string> }> => [
    { url: `http://127.0.0.1:${v4.port}/`, host: '127.0.0.1' },
    { url: `http://127.1:${v4.port}/`, host: '127.0.0.1' },
    { url: `http://0x7f000001:${v4.port}/`, host: '127.0.0.1' },
    { url: `http://2130706433:${v4.port}/`, host: '127.0.0.1' },
    { url: `http://[::1]:${v6.port}/`, host: '::1' },
    { url: `http://[::ffff:127.0.0.1]:${v4.port}/`, host: '::ffff:7f00:1' },
    { url: `http://[::ffff:7f00:1]:${v4.port}/`, host: '::ffff:7f00:1' },
    { url: `http://localhost:${v4.port}/`, host: 'localhost' },
    { url: `http://127.0.0.2:${other.port}/`, host: '127.0.0.2' },
    // A Host header makes undici replace the lookup for an http: literal; the connector's own check still holds.
    { url: `http://127.0.0.1:${v4.port}/`, host: '127.0.0.1', headers: { host: 'video.example.com' } },
  ];

  it('refuses every loopback spelling before connecting', async () => {
    const agent = guarded();
    resetCounts();
    for (const { url, host, headers } of spellings()) await assertRefused(agent, url, { host, reason: 'loopback' }, headers);
    // https: refused by the connector before any TCP (a connection would be counted by the plain HTTP server).
    await assertRefused(agent, `https://127.0.0.1:${v4.port}/`, { host: '127.0.0.1', reason: 'loopback' });
    await sleep(50);
    assert.equal(total(), 0, 'a refused request reached a server');
  });

  it("refuses this host's own address by literal and by name, before connecting", async () => {
    const own = hostAddressSet(['127.0.0.2']);
    const resolver = fakeResolver({ 'self.test': [{ address: '127.0.0.2', family: 4 }] });
    const agent = createGuardedAgent({ allowPrivate: false, lookup: resolver, hostAddresses: () => own, connectTimeout: 2000 });
    agents.push(agent);
    resetCounts();
    await assertRefused(agent, `http://127.0.0.2:${other.port}/`, { host: '127.0.0.2', reason: SAME_HOST });
    await assertRefused(agent, `http://self.test:${other.port}/`, { host: 'self.test', reason: SAME_HOST });
    // Another loopback address keeps its range's reason.
    await assertRefused(agent, `http://127.0.0.1:${v4.port}/`, { host: '127.0.0.1', reason: 'loopback' });
    await sleep(50);
    assert.equal(total(), 0, 'a refused request reached a server');
  });

  it('with allowPrivate the same requests connect and succeed', async () => {
    const agent = permissive();
    for (const { url, headers } of spellings()) {
      resetCounts();
      const response = await request(url, { dispatcher: agent, headers, reset: true });
      assert.equal(response.statusCode, 200, url);
      assert.equal(await response.body.text(), 'ok');
      assert.ok(total() > 0, `${url}: no connection counted`);
    }
  });

  it('connects to exactly the address the lookup checked (no second resolution)', async () => {
    // The fake resolver says localhost is 127.0.0.2, where only `other` listens; the system says 127.0.0.1.
    const resolver = fakeResolver({ localhost: [{ address: '127.0.0.2', family: 4 }] });
    const agent = permissive({ lookup: resolver });
    resetCounts();
    const response = await request(`http://localhost:${other.port}/`, { dispatcher: agent });
    assert.equal(response.statusCode, 200);
    await response.body.text();
    assert.equal(other.connections, 1);
    assert.equal(v4.connections + v6.connections, 0);
    assert.deepEqual(resolver.calls, ['localhost']);
  });

  it('refuses a redirect target at the next hop', async () => {
    const first = permissive();
    const agent = guarded();
    for (const [path, expected] of [
      ['/to-v6', { host: '::1', reason: 'loopback', literal: 'loopback' }],
      ['/to-name', { host: 'localhost', reason: 'loopback', literal: undefined }],
    ] as const) {
      const base = `http://127.0.0.1:${v4.port}${path}`;
      const hop = await request(base, { dispatcher: first, reset: true });
      await hop.body.dump();
      assert.equal(hop.statusCode, 302);
      const location = new URL(String(hop.headers.location), base);
      // A literal is refused by checkHostLiteral before any request; a name only once it is resolved.
      assert.equal(checkHostLiteral(location.hostname), expected.literal);
      resetCounts();
      await assertRefused(agent, location.href, { host: expected.host, reason: expected.reason });
      await sleep(20);
      assert.equal(total(), 0, `${path}: the redirect target was reached`);
    }
  });
});
