/**
 * Address policy for video_url downloads (SSRF protection).
 *
 * The validator that POSTs a challenge is only semi-trusted (a leaked validator key is enough to send one), so
 * by default a video_url may not reach the miner's own machine or its network: loopback, private, link-local,
 * CGNAT, multicast, unspecified, broadcast, reserved, documentation/benchmarking ranges, IPv6 unique-local and
 * site-local, and every IPv6 form that embeds such an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64
 * 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32). IPv6 outside the global-unicast block 2000::/3 is refused as
 * 'reserved' (fail closed), as is every address that does not parse.
 *
 * The machine's own addresses are refused too ('same-host'), whatever their range: a public address of this
 * host (AXON_IP, or one on a network interface) reaches the miner's local services through loopback routing,
 * or the router's hairpin NAT for AXON_IP behind port forwarding. See hostAddresses().
 *
 * The check is on the RESOLVED address and happens where the socket is made, so it holds at every hop of a
 * redirect chain (each new origin gets a new connection) and there is no DNS rebinding window: the guarded
 * lookup resolves once, checks, and net.connect/tls.connect connect to exactly the addresses it returned.
 *
 * How it reaches the socket (verified against undici 8.13.1, lib/core/connect.js and lib/dispatcher/client.js):
 * an Agent's `connect` options go to buildConnector(), which spreads them into the options of net.connect()
 * (http:) or tls.connect() (https:), so `connect: { lookup }` is the lookup Node's net layer uses. Two ways
 * around it exist, and createGuardedAgent() closes both by checking the connector's `hostname` itself:
 *   - Node's net skips `lookup` altogether when the host is an IP literal;
 *   - for http: with an IP literal and a servername (a Host header or the `servername` dispatch option),
 *     undici swaps in its own lookup that returns the literal unchecked.
 *
 * Mapping in download.ts: checkHostLiteral() refuses a literal before any request is made (in the caller's
 * video_url: a 400 naming the host and reason; in a redirect: "refused by policy"). An error with
 * `code === ADDRESS_NOT_ALLOWED` (an AddressNotAllowedError; request() rejects with this very object) is a host
 * name that resolved to a refused address: the caller is told "network error", like a name that does not
 * resolve (anything more would map the miner's DNS), and err.message goes to the log only.
 */
import dns from 'node:dns';
import { isIP, isIPv4, isIPv6, type LookupFunction } from 'node:net';
import os from 'node:os';
import { Agent, buildConnector } from 'undici';

/** The `code` of every refusal; request() rejects with the AddressNotAllowedError itself. */
export const ADDRESS_NOT_ALLOWED = 'EADDRNOTALLOWED';

/** A connection refused by the address policy. Carries no URL, only the host name and the address it reached. */
export class AddressNotAllowedError extends Error {
  readonly code = ADDRESS_NOT_ALLOWED;
  /** The host as the URL named it (a name or an IP literal), without brackets. */
  readonly host: string;
  /** The (resolved) address that was refused. */
  readonly address: string;
  /** A short reason: 'loopback', 'private', 'link-local', ... (see forbiddenReason). */
  readonly reason: string;

  constructor(host: string, address: string, reason: string) {
    const via = address === host ? '' : ` (${address})`;
    super(`${host} resolves to a ${reason} address${via}, which is refused`);
    this.name = 'AddressNotAllowedError';
    this.host = host;
    this.address = address;
    this.reason = reason;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Classification

/** IPv4 special-purpose ranges (RFC 6890 and successors). The first match wins, so /32s come before wider blocks. */
const V4_RANGES: ReadonlyArray<readonly [string, number, string]> = [
  ['255.255.255.255', 32, 'broadcast'],
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'cgnat'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

/** IPv6 ranges refused outright (those that embed an IPv4 address are handled in classifyV6). */
const V6_RANGES: ReadonlyArray<readonly [string, number, string]> = [
  ['64:ff9b:1::', 48, 'private'], // local-use NAT64 (RFC 8215): translates into the operator's own network
  ['100::', 64, 'reserved'], // discard-only
  ['2001:2::', 48, 'benchmarking'],
  ['2001:db8::', 32, 'documentation'],
  ['3fff::', 20, 'documentation'],
  ['fc00::', 7, 'unique-local'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
];

function parseDottedV4(text: string): number {
  const parts = text.split('.').map(Number);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

/** 8 groups of 16 bits as one bigint; `text` must pass isIPv6 (no zone). */
function parseV6(text: string): bigint {
  let s = text;
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseDottedV4(tail);
    s = `${s.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...restGroups];
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(Number.parseInt(group, 16));
  return value;
}

const V4_TABLE = V4_RANGES.map(([base, bits, reason]) => {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { net: (parseDottedV4(base) & mask) >>> 0, mask, reason };
});

const ALL_128 = (1n << 128n) - 1n;
const V6_TABLE = V6_RANGES.map(([base, bits, reason]) => {
  const mask = (ALL_128 << BigInt(128 - bits)) & ALL_128;
  return { net: parseV6(base) & mask, mask, reason };
});

function inV6(value: bigint, base: string, bits: number): boolean {
  const mask = (ALL_128 << BigInt(128 - bits)) & ALL_128;
  return (value & mask) === (parseV6(base) & mask);
}

function classifyV4(value: number): string | undefined {
  for (const range of V4_TABLE) if ((value & range.mask) >>> 0 === range.net) return range.reason;
  return undefined;
}

const LOW_32 = 0xffffffffn;

function classifyV6(value: bigint): string | undefined {
  if (value === 0n) return 'unspecified';
  if (value === 1n) return 'loopback';
  const low32 = Number(value & LOW_32);
  // IPv4-mapped ::ffff:a.b.c.d — a dual-stack socket connects to a.b.c.d itself.
  if (value >> 32n === 0xffffn) return classifyV4(low32);
  // IPv4-compatible ::a.b.c.d (deprecated, never routed): the embedded address's reason, else 'reserved'.
  if (value >> 32n === 0n) return classifyV4(low32) ?? 'reserved';
  // NAT64 well-known prefix 64:ff9b::/96: the translator connects to the embedded IPv4 address.
  if (inV6(value, '64:ff9b::', 96)) return classifyV4(low32);
  // 6to4 2002:AABB:CCDD::/48: tunnelled to the IPv4 address in bits 16..47.
  if (inV6(value, '2002::', 16)) return classifyV4(Number((value >> 80n) & LOW_32));
  // Teredo 2001:0:SSSS:SSSS:flags:port:CCCC:CCCC: server address in bits 32..63, client address inverted in the low 32.
  if (inV6(value, '2001::', 32)) return classifyV4(Number((value >> 64n) & LOW_32)) ?? classifyV4(~low32 >>> 0);
  for (const range of V6_TABLE) if ((value & range.mask) === range.net) return range.reason;
  if (!inV6(value, '2000::', 3)) return 'reserved';
  return undefined;
}

/** An address without its brackets and IPv6 %zone. */
function bareAddress(ip: string): string {
  const text = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const zone = text.indexOf('%');
  return zone !== -1 && text.includes(':') ? text.slice(0, zone) : text;
}

/**
 * Why `ip` may not be connected to, or undefined when it is a public address. Pure.
 * Accepts dotted-quad IPv4 and any IPv6 text form (with or without brackets and a %zone); anything else
 * (a host name, '127.1') is not an address and is refused as 'not-an-ip' (fail closed: normalise first, e.g.
 * with checkHostLiteral).
 */
export function forbiddenReason(ip: string): string | undefined {
  const text = bareAddress(ip);
  if (isIPv4(text)) return classifyV4(parseDottedV4(text));
  if (isIPv6(text)) return classifyV6(parseV6(text));
  return 'not-an-ip';
}

// ---------------------------------------------------------------------------------------------------------
// This host's own addresses

/** The reason given for an address of this very machine (checked before the ranges: it is the more specific). */
export const SAME_HOST = 'same-host';

/** The IPv4 addresses an IPv6 address leads to: IPv4-mapped and -compatible, NAT64, 6to4, Teredo server and client. */
function embeddedV4(value: bigint): number[] {
  const low32 = Number(value & LOW_32);
  // ::/127 (unspecified, loopback) is not the compatible form of 0.0.0.0/0.0.0.1.
  if (value >> 32n === 0xffffn || (value >> 32n === 0n && value > 1n) || inV6(value, '64:ff9b::', 96)) return [low32];
  if (inV6(value, '2002::', 16)) return [Number((value >> 80n) & LOW_32)];
  if (inV6(value, '2001::', 32)) return [Number((value >> 64n) & LOW_32), ~low32 >>> 0];
  return [];
}

/** Comparable keys for every address `ip` reaches (any spelling of one address gives the same keys); [] if not an IP. */
function reachedKeys(ip: string): string[] {
  const text = bareAddress(ip);
  if (isIPv4(text)) return [`4:${parseDottedV4(text)}`];
  if (!isIPv6(text)) return [];
  const value = parseV6(text);
  return [`6:${value.toString(16)}`, ...embeddedV4(value).map((v4) => `4:${v4}`)];
}

/** A set of this host's addresses for sameHostReason; entries that are not IP addresses are ignored. */
export function hostAddressSet(addresses: Iterable<string>): ReadonlySet<string> {
  const keys = new Set<string>();
  for (const address of addresses) for (const key of reachedKeys(address)) keys.add(key);
  return keys;
}

/** SAME_HOST when `ip` (any spelling, or an IPv6 form embedding it) is one of `host`'s addresses. Pure. */
export function sameHostReason(ip: string, host: ReadonlySet<string>): string | undefined {
  return reachedKeys(ip).some((key) => host.has(key)) ? SAME_HOST : undefined;
}

/** Why `ip` may not be connected to: one of this host's addresses, else forbiddenReason. Pure. */
export function refusalReason(ip: string, host: ReadonlySet<string>): string | undefined {
  return sameHostReason(ip, host) ?? forbiddenReason(ip);
}

type InterfaceList = ReturnType<typeof os.networkInterfaces>;

/**
 * The addresses of the machine's interfaces that the ranges may not already refuse: internal ones (loopback)
 * are left out, so 127.0.0.1 keeps its 'loopback' reason.
 */
export function interfaceAddresses(interfaces: InterfaceList): string[] {
  const addresses: string[] = [];
  for (const list of Object.values(interfaces)) for (const entry of list ?? []) if (!entry.internal) addresses.push(entry.address);
  return addresses;
}

/** Addresses configured as this host's (AXON_IP): a router's public address is on no interface of the miner. */
let declaredAddresses: readonly string[] = [];
/** Interfaces change rarely (DHCP, a container's network); a few seconds of staleness costs one syscall less per lookup. */
const HOST_ADDRESSES_TTL_MS = 5000;
let cached: { set: ReadonlySet<string>; at: number } | undefined;

/** Declares addresses of this host that no interface shows (AXON_IP); the server calls it at start. */
export function declareHostAddresses(addresses: Iterable<string | undefined>): void {
  declaredAddresses = [...addresses].filter((address): address is string => address !== undefined && address !== '');
  cached = undefined;
}

/** The machine's interface addresses, or none where the system cannot list them (the declared ones still hold). */
function systemInterfaces(): InterfaceList {
  try {
    return os.networkInterfaces();
  } catch {
    return {};
  }
}

/**
 * This host's addresses: the declared ones and those of its interfaces, re-read at most every
 * HOST_ADDRESSES_TTL_MS (an address gained later is refused within that time).
 */
export function hostAddresses(now: number = performance.now()): ReadonlySet<string> {
  if (cached === undefined || now < cached.at || now - cached.at >= HOST_ADDRESSES_TTL_MS) {
    cached = { set: hostAddressSet([...declaredAddresses, ...interfaceAddresses(systemInterfaces())]), at: now };
  }
  return cached.set;
}

// ---------------------------------------------------------------------------------------------------------
// Literal hosts

/** One part of a WHATWG/inet_aton IPv4 spelling: decimal, 0x hex, or 0-prefixed octal. */
function parseV4Part(part: string): number | undefined {
  let digits = part;
  let radix = 10;
  if (/^0x/i.test(digits)) {
    digits = digits.slice(2);
    radix = 16;
    if (digits === '') return 0;
  } else if (digits.length > 1 && digits.startsWith('0')) {
    digits = digits.slice(1);
    radix = 8;
  }
  const valid = radix === 16 ? /^[0-9a-f]+$/i : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!valid.test(digits)) return undefined;
  const value = Number.parseInt(digits, radix);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** The legacy IPv4 spellings ('127.1', '0x7f000001', '2130706433', '0177.0.0.1') as a dotted quad, else undefined. */
function legacyV4(host: string): string | undefined {
  const parts = host.split('.');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length === 0 || parts.length > 4) return undefined;
  const numbers: number[] = [];
  for (const part of parts) {
    if (part === '') return undefined;
    const n = parseV4Part(part);
    if (n === undefined) return undefined;
    numbers.push(n);
  }
  const last = numbers.pop()!;
  if (numbers.some((n) => n > 255) || last >= 256 ** (4 - numbers.length)) return undefined;
  let value = last;
  numbers.forEach((n, i) => {
    value += n * 256 ** (3 - i);
  });
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/**
 * The IP address a URL host names literally, or undefined for a host name. Brackets are stripped; legacy IPv4
 * spellings are normalised as the WHATWG URL parser (and inet_aton) read them, should a host reach here
 * without going through `new URL()`.
 */
export function hostLiteral(hostname: string): string | undefined {
  let host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (isIP(host) !== 0) return host;
  const zone = host.indexOf('%');
  if (zone !== -1 && isIPv6(host.slice(0, zone))) return host;
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (isIPv4(host)) return host;
  return legacyV4(host);
}

/**
 * Why a URL's host may not be connected to when it is an IP literal, or undefined when it is a public literal
 * (not this host's) or a host name (names are checked after resolution, by guardedLookup). Takes
 * `new URL(...).hostname` as is (brackets included or not). Run it on every hop before connecting;
 * createGuardedAgent runs it too. `host`: this host's addresses, by default hostAddresses().
 */
export function checkHostLiteral(hostname: string, host: ReadonlySet<string> = hostAddresses()): string | undefined {
  const literal = hostLiteral(hostname);
  return literal === undefined ? undefined : refusalReason(literal, host);
}

// ---------------------------------------------------------------------------------------------------------
// Resolution and connection

export interface GuardOptions {
  /** true: no checks at all (DOWNLOAD_ALLOW_PRIVATE=true, for local testing). */
  allowPrivate: boolean;
  /** The resolver whose answers are checked; default dns.lookup. Tests inject a fake one. */
  lookup?: LookupFunction;
  /** This host's addresses, asked at each check; default hostAddresses. Tests inject loopback ones. */
  hostAddresses?: () => ReadonlySet<string>;
}

const systemLookup = dns.lookup as unknown as LookupFunction;

/**
 * A `lookup` for net.connect/tls.connect (dns.lookup's signature): resolves every address of the name once,
 * and refuses with an AddressNotAllowedError when ANY of them is forbidden. Otherwise it answers with the
 * same addresses, in the resolver's order, so the socket connects to exactly what was checked.
 *
 * Refusing on any (rather than filtering to the allowed ones): the outcome does not depend on record order or
 * on which family happy-eyeballs (autoSelectFamily, which asks for all addresses) tries first; a public video
 * host has no business publishing an internal address, and a name that mixes both is a rebinding attempt.
 */
export function guardedLookup(options: GuardOptions): LookupFunction {
  const resolve = options.lookup ?? systemLookup;
  if (options.allowPrivate) return resolve;
  const host = options.hostAddresses ?? (() => hostAddresses());
  return (hostname, lookupOptions, callback) => {
    resolve(hostname, { ...lookupOptions, all: true }, (error, answer, answerFamily) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      const addresses = Array.isArray(answer) ? answer : [{ address: answer, family: answerFamily ?? isIP(answer) }];
      if (addresses.length === 0) {
        const notFound: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        notFound.code = 'ENOTFOUND';
        callback(notFound, '', 0);
        return;
      }
      const own = host();
      for (const { address } of addresses) {
        const reason = refusalReason(address, own);
        if (reason !== undefined) {
          callback(new AddressNotAllowedError(hostname, address, reason), '', 0);
          return;
        }
      }
      if (lookupOptions.all) callback(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

export interface GuardedAgentOptions extends Omit<Agent.Options, 'connect' | 'factory' | 'socketPath'>, GuardOptions {
  /** buildConnector options (timeout, keepAlive, TLS options, ...); `lookup` is always the guarded one. */
  connect?: Omit<Partial<buildConnector.BuildOptions>, 'lookup' | 'socketPath'>;
}

/**
 * An undici Agent whose every connection is made through guardedLookup, to the checked address. Its connector
 * also refuses an IP-literal host itself (net.connect would not call `lookup` for one, and undici bypasses it
 * for an http: literal with a servername), with the same AddressNotAllowedError. Agent options pass through;
 * the connector options Client would otherwise build from (connectTimeout, autoSelectFamily,
 * autoSelectFamilyAttemptTimeout, maxCachedSessions, allowH2) are forwarded to buildConnector.
 */
export function createGuardedAgent(options: GuardedAgentOptions): Agent {
  const { allowPrivate, lookup, hostAddresses: host = () => hostAddresses(), connect, ...agentOptions } = options;
  const { connectTimeout, autoSelectFamily, autoSelectFamilyAttemptTimeout, maxCachedSessions, allowH2 } = agentOptions;
  const base = buildConnector({
    ...(connectTimeout === undefined ? {} : { timeout: connectTimeout }),
    ...(autoSelectFamily === undefined ? {} : { autoSelectFamily, autoSelectFamilyAttemptTimeout }),
    ...(maxCachedSessions === undefined ? {} : { maxCachedSessions }),
    ...(allowH2 === undefined ? {} : { allowH2 }),
    ...connect,
    lookup: guardedLookup({ allowPrivate, lookup, hostAddresses: host }),
  } as buildConnector.BuildOptions);
  const guarded: buildConnector.connector = (connectOptions, callback) => {
    if (!allowPrivate) {
      const literal = hostLiteral(connectOptions.hostname);
      const reason = literal === undefined ? undefined : refusalReason(literal, host());
      if (literal !== undefined && reason !== undefined) {
        callback(new AddressNotAllowedError(connectOptions.hostname, literal, reason), null);
        return;
      }
    }
    base(connectOptions, callback);
  };
  return new Agent({ ...agentOptions, connect: guarded });
}
