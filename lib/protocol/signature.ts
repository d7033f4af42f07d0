/**
 * Request signatures (docs/security.md): the two message schemes seen in the wild, sr25519 verification that also
 * accepts `<Bytes>`-wrapped messages, hotkey comparison by public key, and the signing side for the challenge
 * client. No state and no clock except in `makeNonce`; the nonce rules live in server/nonces.ts.
 */
import { randomInt } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { blake2b } from '@noble/hashes/blake2.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { u8aToHex, u8aWrapBytes } from '@polkadot/util';
import { decodeAddress, encodeAddress, sr25519Verify } from '@polkadot/util-crypto';

/** `fiber`: "{nonce}:{miner_hotkey}:{sha256hex(body)}"; `central`: Score's validator, "{nonce}{blake2b256hex(body)}". */
export type SignatureScheme = 'fiber' | 'central';

/** Header names as the bare spelling; every one is also accepted with an `X-` prefix. */
export const HEADER = {
  validatorHotkey: 'validator-hotkey',
  nonce: 'nonce',
  signature: 'signature',
  minerHotkey: 'miner-hotkey',
} as const;

const encoder = new TextEncoder();

function bytesOf(body: Uint8Array | string): Uint8Array {
  return typeof body === 'string' ? encoder.encode(body) : body;
}

/** Lowercase hex, no `0x`: what both schemes put in the message. */
export function sha256Hex(body: Uint8Array | string): string {
  return bytesToHex(sha256(bytesOf(body)));
}

export function blake2b256Hex(body: Uint8Array | string): string {
  return bytesToHex(blake2b(bytesOf(body), { dkLen: 32 }));
}

/** The fiber message; a request without a body signs just "{nonce}:{miner_hotkey}". */
export function fiberMessage(nonce: string, minerHotkey: string, body: Uint8Array | string): string {
  const bytes = bytesOf(body);
  return bytes.length === 0 ? `${nonce}:${minerHotkey}` : `${nonce}:${minerHotkey}:${sha256Hex(bytes)}`;
}

/** Score's central-validator message: no separators, no miner hotkey. */
export function centralMessage(nonce: string, body: Uint8Array | string): string {
  return `${nonce}${blake2b256Hex(body)}`;
}

/** `0x` + 128 hex chars -> 64 bytes; anything else (no prefix, wrong length, non-hex) -> undefined. */
export function parseSignatureHex(value: string): Uint8Array | undefined {
  if (!/^0x[0-9a-fA-F]{128}$/.test(value)) return undefined;
  return Uint8Array.from(Buffer.from(value.slice(2), 'hex'));
}

/**
 * SS58 address with any network prefix -> 32-byte public key, or undefined when it is not a valid 32-byte
 * account address. Hex is refused on purpose: the headers carry SS58 and decodeAddress would take hex as-is.
 */
export function decodeHotkey(address: string): Uint8Array | undefined {
  if (!/^[1-9A-HJ-NP-Za-km-z]{40,60}$/.test(address)) return undefined;
  try {
    const key = decodeAddress(address, false, -1);
    return key.length === 32 ? key : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The one hotkey -> public key helper for lookups: an SS58 address (any prefix) or a `0x` + 64 hex public key
 * -> `0x` + 64 lowercase hex, the key stake snapshots and StakeSource lookups use; undefined when it is neither.
 */
export function hotkeyToHex(hotkey: string): string | undefined {
  if (/^0x[0-9a-fA-F]{64}$/.test(hotkey)) return hotkey.toLowerCase();
  const key = decodeHotkey(hotkey);
  return key ? u8aToHex(key) : undefined;
}

/** Two addresses name the same account even when written with different SS58 prefixes. */
export function sameHotkey(a: string, b: string): boolean {
  const ka = decodeHotkey(a);
  const kb = decodeHotkey(b);
  return ka !== undefined && kb !== undefined && u8aToHex(ka) === u8aToHex(kb);
}

/** sr25519 only (the spec's schemes); the message as signed or wrapped in `<Bytes>...</Bytes>`. */
export function verifySr25519(message: string | Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  const bytes = bytesOf(message);
  for (const candidate of [bytes, u8aWrapBytes(bytes)]) {
    try {
      if (sr25519Verify(candidate, signature, publicKey)) return true;
    } catch {
      // Wrong key or signature length: not valid, never an exception for the caller.
    }
  }
  return false;
}

export interface VerifyInput {
  nonce: string;
  body: Uint8Array;
  signature: Uint8Array;
  signerPublicKey: Uint8Array;
  /**
   * Miner hotkey strings the fiber message may contain (our own SS58, and the `miner-hotkey` header when it
   * names the same key with another prefix). Empty: the fiber scheme cannot match.
   */
  minerHotkeys: readonly string[];
}

/** The scheme whose message the signature covers, or undefined when none does. */
export function verifyRequestSignature(input: VerifyInput): SignatureScheme | undefined {
  if (verifySr25519(centralMessage(input.nonce, input.body), input.signature, input.signerPublicKey)) return 'central';
  for (const minerHotkey of new Set(input.minerHotkeys)) {
    if (verifySr25519(fiberMessage(input.nonce, minerHotkey, input.body), input.signature, input.signerPublicKey)) return 'fiber';
  }
  return undefined;
}

/**
 * A security header by its bare name, also found as `X-{name}`; names are matched case-insensitively so a
 * plain object from a test behaves like node's lowercased headers. Bare wins when both are present.
 */
export function readHeader(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, name: string): string | undefined {
  const wanted = [name.toLowerCase(), `x-${name.toLowerCase()}`];
  for (const target of wanted) {
    for (const [key, value] of Object.entries(headers)) {
      if (key.toLowerCase() !== target || value === undefined) continue;
      const text = Array.isArray(value) ? value.join(', ') : String(value);
      if (text.trim() !== '') return text.trim();
    }
  }
  return undefined;
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A fresh nonce as each scheme's validator makes it: central `"{ns}"`, fiber `"{ns}_{10 alphanumerics}"`. */
export function makeNonce(scheme: SignatureScheme, nowMs: number = Date.now()): string {
  const ns = (BigInt(Math.floor(nowMs)) * 1_000_000n).toString();
  if (scheme === 'central') return ns;
  let suffix = '';
  for (let i = 0; i < 10; i++) suffix += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return `${ns}_${suffix}`;
}

/** The part of a keyring pair the signer needs (keeps this module free of @polkadot/keyring). */
export interface Signer {
  address: string;
  publicKey: Uint8Array;
  sign(message: Uint8Array | string): Uint8Array;
}

export interface SignOptions {
  /** Required for the fiber scheme (it is part of the message); sent as `miner-hotkey` when given. */
  minerHotkey?: string;
  nonce?: string;
  nowMs?: number;
  /** Sign `<Bytes>`+message+`</Bytes>` like substrate tooling does (testing the miner's acceptance). */
  wrap?: boolean;
}

/**
 * Headers for one request, signed like the chosen validator: central sends every header twice (bare and
 * `X-` prefixed); fiber sends the bare names only.
 */
export function signRequest(
  signer: Signer,
  scheme: SignatureScheme,
  body: Uint8Array | string,
  options: SignOptions = {},
): Record<string, string> {
  const nonce = options.nonce ?? makeNonce(scheme, options.nowMs);
  let message: string;
  if (scheme === 'fiber') {
    if (!options.minerHotkey) throw new Error('the fiber scheme signs the miner hotkey: pass minerHotkey');
    message = fiberMessage(nonce, options.minerHotkey, body);
  } else {
    message = centralMessage(nonce, body);
  }
  const bytes = encoder.encode(message);
  const signature = u8aToHex(signer.sign(options.wrap ? u8aWrapBytes(bytes) : bytes));
  const validatorHotkey = encodeAddress(signer.publicKey, 42);

  const bare: Record<string, string> = {
    [HEADER.validatorHotkey]: validatorHotkey,
    [HEADER.nonce]: nonce,
    [HEADER.signature]: signature,
  };
  if (options.minerHotkey) bare[HEADER.minerHotkey] = options.minerHotkey;
  if (scheme === 'fiber') return bare;

  const both: Record<string, string> = { ...bare };
  for (const [name, value] of Object.entries(bare)) {
    both[
      `X-${name
        .split('-')
        .map((w) => w[0].toUpperCase() + w.slice(1))
        .join('-')}`
    ] = value;
  }
  return both;
}
