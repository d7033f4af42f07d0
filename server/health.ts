/**
 * Who sees what on GET /health. A stranger gets liveness only (ok, model name and version, ready); the details
 * (model folder, ffmpeg binary, providers, queue depth, the miner hotkey, the metagraph sync and its last
 * error) are for callers on this machine and for holders of HEALTH_TOKEN. The queue depth would time a replay,
 * and paths and errors map the host. Pure functions of the peer's address and the Authorization header, so the
 * decision is tested without sending from an address a test cannot have.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export interface HealthAccess {
  /**
   * HEALTH_TRUST_LOOPBACK: callers from this machine see the details. Off where a reverse proxy on the same
   * host forwards strangers (they would all arrive from loopback).
   */
  trustLoopback: boolean;
  /** HEALTH_TOKEN: `Authorization: Bearer <token>` sees the details from anywhere. */
  token?: string;
}

/** 127.0.0.0/8 and ::1; BlockList also matches their IPv4-mapped forms (::ffff:127.0.0.1, as a dual-stack socket reports IPv4). */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Is `address` (a socket's remoteAddress) a loopback address? Only 127.0.0.0/8, ::1 and IPv4-mapped
 * ::ffff:127.x count: not the IPv6 forms that merely embed 127.x (NAT64, 6to4, IPv4-compatible), which
 * arrive from other machines. Anything that is not an address (undefined, a name) is not loopback.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  if (isIPv4(address)) return LOOPBACK.check(address, 'ipv4');
  if (isIPv6(address)) return LOOPBACK.check(address, 'ipv6');
  return false;
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * Does `Authorization: Bearer <token>` carry `token`? Compared in constant time over SHA-256 digests (equal
 * lengths whatever was sent, so neither the token's bytes nor its length leak through timing).
 */
export function bearerTokenMatches(authorization: string | undefined, token: string | undefined): boolean {
  if (!token || !authorization) return false;
  const sent = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization)?.[1];
  if (sent === undefined) return false;
  return timingSafeEqual(digest(sent), digest(token));
}

/** The caller sees the details: from loopback (when trusted) or with the token. */
export function showsHealthDetails(access: HealthAccess, remoteAddress: string | undefined, headers: IncomingHttpHeaders): boolean {
  if (access.trustLoopback && isLoopbackAddress(remoteAddress)) return true;
  return bearerTokenMatches(headers.authorization, access.token);
}
