/**
 * The axon record validators use to find the miner (`SubtensorModule.serve_axon` / `Axons(netuid, hotkey)`):
 * pure encoding and checks. IPv4 a.b.c.d is stored as the integer (a<<24)|(b<<16)|(c<<8)|d in a u128,
 * ip_type 4, protocol 4, placeholders 0, version major*10^6 + minor*10^3 + patch.
 */
import { isIPv4 } from 'node:net';
import { MinerError } from '../core/errors.ts';

/** Dotted IPv4 (node:net's check, the same one lib/core/config.ts applies to AXON_IP) -> its 32-bit integer. */
export function ipv4ToInt(ip: string): bigint {
  const trimmed = ip.trim();
  if (!isIPv4(trimmed))
    throw new MinerError(`${JSON.stringify(ip)} is not an IPv4 address`, { hint: 'set AXON_IP to your public IPv4, e.g. 203.0.113.7' });
  return trimmed.split('.').reduce((n, octet) => (n << 8n) | BigInt(octet), 0n);
}

export function intToIpv4(value: bigint | number | string): string {
  const n = BigInt(value);
  return [24n, 16n, 8n, 0n].map((s) => ((n >> s) & 255n).toString()).join('.');
}

/** "1.2.3" -> 1002003. */
export function versionToInt(version: string): number {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) throw new MinerError(`version ${JSON.stringify(version)} is not major.minor.patch`);
  return Number(m[1]) * 1_000_000 + Number(m[2]) * 1_000 + Number(m[3]);
}

const NON_PUBLIC: Array<[string, number, string]> = [
  ['0.0.0.0', 8, 'unspecified ("this network")'],
  ['10.0.0.0', 8, 'private (RFC 1918)'],
  ['100.64.0.0', 10, 'carrier-grade NAT (RFC 6598)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private (RFC 1918)'],
  ['192.168.0.0', 16, 'private (RFC 1918)'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

/** Why `ip` cannot be reached from the internet (loopback, private, ...), or undefined when it is public. */
export function nonPublicReason(ip: string): string | undefined {
  const n = ipv4ToInt(ip);
  for (const [base, bits, why] of NON_PUBLIC) {
    const mask = ((1n << BigInt(bits)) - 1n) << BigInt(32 - bits);
    if ((n & mask) === (ipv4ToInt(base) & mask)) return why;
  }
  return undefined;
}

export interface AxonArgs {
  netuid: number;
  version: number;
  ip: bigint;
  port: number;
  ipType: 4;
  protocol: 4;
  placeholder1: 0;
  placeholder2: 0;
}

/** Arguments of serve_axon, in call order. */
export function axonArgs(input: { netuid: number; ip: string; port: number; version: number }): AxonArgs {
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535) {
    throw new MinerError(`axon port ${input.port} is not in 1..65535`, {
      hint: 'set AXON_PORT (or MINER_PORT) to the port validators reach',
    });
  }
  return {
    netuid: input.netuid,
    version: input.version,
    ip: ipv4ToInt(input.ip),
    port: input.port,
    ipType: 4,
    protocol: 4,
    placeholder1: 0,
    placeholder2: 0,
  };
}

/** An `Axons` storage value (`.toJSON()`), reduced to what matters. */
export interface AxonInfo {
  ip: string;
  port: number;
  ipType: number;
  protocol: number;
  version: number;
  block: number;
}

export function parseAxonInfo(json: unknown): AxonInfo | undefined {
  if (json === null || typeof json !== 'object') return undefined;
  const j = json as Record<string, unknown>;
  if (j.ip === undefined || j.port === undefined) return undefined;
  return {
    ip: intToIpv4(BigInt(j.ip as string | number)),
    port: Number(j.port),
    ipType: Number(j.ipType ?? j.ip_type ?? 0),
    protocol: Number(j.protocol ?? 0),
    version: Number(j.version ?? 0),
    block: Number(j.block ?? 0),
  };
}
