/**
 * drand quicknet timelock encryption, byte-compatible with the `tle` crate that subtensor uses to reveal
 * `TimelockEncrypted` commitments (docs/chain.md, "Timelock encryption"). Boneh–Franklin IBE on BLS12-381 with the
 * round's identity in G1, an AES-256-GCM body, and arkworks serialisation (u64 little-endian length prefixes).
 * Everything here is pure apart from drawing randomness when `fixed` values are not given.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { compactAddLength, compactFromU8aLim, stringToU8a, u8aToString } from '@polkadot/util';
import { MinerError } from '../core/errors.ts';

type G1Point = ReturnType<typeof bls12_381.G1.Point.fromHex>;
type G2Point = ReturnType<typeof bls12_381.G2.Point.fromHex>;
type Gt = ReturnType<typeof bls12_381.pairing>;

const QUICKNET_GENESIS_SECS = 1692803367;
const QUICKNET_PERIOD_SECS = 3;
/** RFC 9380 suite of drand's bls-unchained-g1-rfc9380 scheme (signatures and identities live in G1). */
const DRAND_G1_DST = 'BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_';
/** The pallet's bound on the `TimelockEncrypted` ciphertext. */
export const MAX_TIMELOCK_CIPHERTEXT_BYTES = 1024;
/** U(96) + 8+V(32) + 8+W(32) + 8(body) + 8(ct) + tag(16) + 8+nonce(12) + 8+"AES_GCM_"(8): ciphertext = P + 244. */
export const TIMELOCK_OVERHEAD_BYTES = 244;
/** Largest plaintext (SCALE string: compact length || UTF-8) that still fits 1024 bytes: 1024 - 244. */
export const MAX_TIMELOCK_PLAINTEXT_BYTES = MAX_TIMELOCK_CIPHERTEXT_BYTES - TIMELOCK_OVERHEAD_BYTES;
/** Largest commitment JSON: 780 minus the 2-byte compact prefix that lengths 64..16383 take. */
export const MAX_COMMITMENT_JSON_BYTES = MAX_TIMELOCK_PLAINTEXT_BYTES - 2;

const CIPHER_SUITE = new TextEncoder().encode('AES_GCM_');
const G1_BYTES = 48;
const G2_BYTES = 96;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const FP_BYTES = 48;

export interface FixedRandomness {
  sigma?: Uint8Array;
  /** The AES-256 key `k` (the vectors call it "esk"). */
  key?: Uint8Array;
  nonce?: Uint8Array;
}

// ---------------------------------------------------------------- small helpers

function hexToBytes(hex: string, what: string): Uint8Array {
  const clean = hex.trim().replace(/^0x/i, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) {
    throw new MinerError(`${what} is not valid hex`, { hint: 'pass the value as a hex string, with or without 0x' });
  }
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  return a.map((byte, i) => byte ^ b[i]);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function u64le(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

/** arkworks `Vec<u8>` serialisation: u64 LE length then the bytes (not SCALE compact). */
function arkBytes(bytes: Uint8Array): Uint8Array {
  return concat(u64le(bytes.length), bytes);
}

function bigIntToBytesLE(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

function bytesToBigIntBE(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${toHex(bytes)}`);
}

function requireLength(bytes: Uint8Array | undefined, length: number, what: string): Uint8Array | undefined {
  if (bytes !== undefined && bytes.length !== length) {
    throw new MinerError(`${what} must be ${length} bytes, got ${bytes.length}`);
  }
  return bytes;
}

function normaliseRound(round: bigint | number): bigint {
  const value = typeof round === 'bigint' ? round : Number.isSafeInteger(round) ? BigInt(round) : -1n;
  if (value < 0n || value >= 1n << 64n) {
    throw new MinerError(`drand round must be an integer in 0..2^64-1, got ${String(round)}`);
  }
  return value;
}

// ---------------------------------------------------------------- the scheme's building blocks

/** Identity of a round: sha256 of the round number as u64 big-endian (drand's unchained message). */
export function identityFor(round: bigint | number): Uint8Array {
  const message = new Uint8Array(8);
  new DataView(message.buffer).setBigUint64(0, normaliseRound(round), false);
  return sha256(message);
}

/** Q_id = hash_to_G1(identity): the point the round's signature is a multiple of. */
export function identityPoint(round: bigint | number): G1Point {
  return bls12_381.G1.hashToCurve(identityFor(round), { DST: DRAND_G1_DST });
}

/** arkworks serialisation of a GT element: 12 Fp limbs, 48 bytes LE each, c0.c0.c0 first (same tower as noble). */
export function gtToArkworks(gt: Gt): Uint8Array {
  const limbs: bigint[] = [];
  for (const fp6 of [gt.c0, gt.c1]) {
    for (const fp2 of [fp6.c0, fp6.c1, fp6.c2]) limbs.push(fp2.c0, fp2.c1);
  }
  return concat(...limbs.map((limb) => bigIntToBytesLE(limb, FP_BYTES)));
}

/** H2: sha256 of the arkworks GT bytes; masks sigma. */
export function h2(gt: Gt): Uint8Array {
  return sha256(gtToArkworks(gt));
}

/** H3: sha256(sigma || k) as a big-endian integer mod r; the encryption scalar. */
export function h3(sigma: Uint8Array, key: Uint8Array): bigint {
  return bls12_381.fields.Fr.create(bytesToBigIntBE(sha256(concat(sigma, key))));
}

/** H4: sha256(sigma); masks the AES key. */
export function h4(sigma: Uint8Array): Uint8Array {
  return sha256(sigma);
}

function scalarTimesG2(r: bigint): G2Point {
  // r = 0 has probability 2^-255; refusing it keeps U a valid non-identity point.
  if (r === 0n) throw new MinerError('timelock scalar H3(sigma, k) is zero; retry with fresh randomness');
  return bls12_381.G2.Point.BASE.multiply(r);
}

function parseG2(bytes: Uint8Array, what: string): G2Point {
  let point: G2Point;
  try {
    point = bls12_381.G2.Point.fromBytes(bytes);
  } catch (cause) {
    throw new MinerError(`${what} is not a valid BLS12-381 G2 point`, { cause });
  }
  // noble accepts the infinity encoding (BLS serialises it) but the pairing rejects it.
  if (point.is0()) throw new MinerError(`${what} is the point at infinity, not a usable BLS12-381 G2 point`);
  return point;
}

function parseG1(bytes: Uint8Array, what: string): G1Point {
  let point: G1Point;
  try {
    point = bls12_381.G1.Point.fromBytes(bytes);
  } catch (cause) {
    throw new MinerError(`${what} is not a valid BLS12-381 G1 point`, { cause });
  }
  // noble accepts the infinity encoding (BLS serialises it) but the pairing rejects it.
  if (point.is0()) throw new MinerError(`${what} is the point at infinity, not a usable BLS12-381 G1 point`);
  return point;
}

function parsePublicKey(publicKeyHex: string): G2Point {
  const bytes = hexToBytes(publicKeyHex, 'drand public key');
  if (bytes.length !== G2_BYTES) {
    throw new MinerError(`drand public key must be ${G2_BYTES} bytes (G2 compressed), got ${bytes.length}`, {
      hint: 'check DRAND_PUBLIC_KEY; unset it to use drand quicknet',
    });
  }
  return parseG2(bytes, 'drand public key');
}

function parseSignature(roundSignatureHex: string): G1Point {
  const bytes = hexToBytes(roundSignatureHex, 'drand round signature');
  if (bytes.length !== G1_BYTES) {
    throw new MinerError(`drand round signature must be ${G1_BYTES} bytes (G1 compressed), got ${bytes.length}`, {
      hint: 'use the "signature" field of a quicknet (bls-unchained-g1-rfc9380) beacon',
    });
  }
  return parseG1(bytes, 'drand round signature');
}

// ---------------------------------------------------------------- AES-256-GCM body

function aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  return concat(cipher.update(plaintext), cipher.final(), cipher.getAuthTag());
}

function aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (sealed.length < TAG_BYTES) throw malformed(`AES-GCM body is ${sealed.length} bytes, shorter than its tag`);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return concat(decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final());
  } catch (cause) {
    throw new MinerError('timelock ciphertext failed AES-GCM authentication (tag mismatch): it was corrupted or altered', {
      cause,
      hint: 'the IBE header matched, so the body bytes changed after encryption',
    });
  }
}

// ---------------------------------------------------------------- serialisation

interface TimelockParts {
  u: Uint8Array;
  v: Uint8Array;
  w: Uint8Array;
  sealed: Uint8Array;
  nonce: Uint8Array;
}

function serialise(parts: TimelockParts): Uint8Array {
  const body = concat(arkBytes(parts.sealed), arkBytes(parts.nonce));
  return concat(parts.u, arkBytes(parts.v), arkBytes(parts.w), arkBytes(body), arkBytes(CIPHER_SUITE));
}

function malformed(detail: string): MinerError {
  return new MinerError(`timelock ciphertext is malformed: ${detail}`, {
    hint: 'pass the full ciphertext bytes as stored on chain (without the SCALE length prefix)',
  });
}

/** Cursor over arkworks bytes; every read is bounds-checked so truncation reports where it happened. */
function reader(bytes: Uint8Array) {
  let offset = 0;
  const take = (length: number, what: string): Uint8Array => {
    if (offset + length > bytes.length) {
      throw malformed(`truncated in ${what} (needs ${length} bytes at offset ${offset}, total ${bytes.length})`);
    }
    const out = bytes.subarray(offset, offset + length);
    offset += length;
    return out;
  };
  const vec = (what: string, expected?: number): Uint8Array => {
    const raw = take(8, `${what} length`);
    const length = new DataView(raw.buffer, raw.byteOffset, 8).getBigUint64(0, true);
    if (expected !== undefined && length !== BigInt(expected)) {
      throw malformed(`${what} length is ${length}, expected ${expected}`);
    }
    if (length > BigInt(bytes.length)) throw malformed(`${what} length ${length} exceeds the ciphertext`);
    return take(Number(length), what);
  };
  return { take, vec, done: () => offset === bytes.length, offset: () => offset };
}

function deserialise(ciphertext: Uint8Array): TimelockParts {
  const top = reader(ciphertext);
  const u = top.take(G2_BYTES, 'U');
  const v = top.vec('V', 32);
  const w = top.vec('W', 32);
  const body = reader(top.vec('body'));
  const suite = top.vec('cipher suite');
  if (!top.done()) throw malformed(`${ciphertext.length - top.offset()} trailing bytes`);
  if (toHex(suite) !== toHex(CIPHER_SUITE))
    throw malformed(`unknown cipher suite ${JSON.stringify(Buffer.from(suite).toString('latin1'))}`);
  const sealed = body.vec('AES-GCM ciphertext');
  const nonce = body.vec('AES-GCM nonce', NONCE_BYTES);
  if (!body.done()) throw malformed('trailing bytes in the body');
  return { u, v, w, sealed, nonce };
}

// ---------------------------------------------------------------- public API

/**
 * Encrypts `plaintext` to drand round `round` under `publicKeyHex` (G2, compressed). The result is what
 * `TimelockEncrypted.encrypted` carries. `fixed` pins sigma/k/nonce so tests can reproduce vectors.
 */
export function encryptTimelock(
  plaintext: Uint8Array,
  round: bigint | number,
  publicKeyHex: string,
  fixed: FixedRandomness = {},
): Uint8Array {
  if (plaintext.length > MAX_TIMELOCK_PLAINTEXT_BYTES) {
    throw new MinerError(
      `timelock plaintext is ${plaintext.length} bytes; the chain accepts at most ${MAX_TIMELOCK_PLAINTEXT_BYTES} ` +
        `(ciphertext = plaintext + ${TIMELOCK_OVERHEAD_BYTES} <= ${MAX_TIMELOCK_CIPHERTEXT_BYTES})`,
      { hint: `shorten the commitment JSON to at most ${MAX_COMMITMENT_JSON_BYTES} UTF-8 bytes` },
    );
  }
  const publicKey = parsePublicKey(publicKeyHex);
  const sigma = requireLength(fixed.sigma, 32, 'sigma') ?? Uint8Array.from(randomBytes(32));
  const key = requireLength(fixed.key, 32, 'AES key') ?? Uint8Array.from(randomBytes(32));
  const nonce = requireLength(fixed.nonce, NONCE_BYTES, 'nonce') ?? Uint8Array.from(randomBytes(NONCE_BYTES));

  const r = h3(sigma, key);
  const u = scalarTimesG2(r).toBytes(true);
  const gid = bls12_381.pairing(identityPoint(round), publicKey.multiply(r));
  const v = xor(sigma, h2(gid));
  const w = xor(key, h4(sigma));
  return serialise({ u, v, w, sealed: aesGcmSeal(key, nonce, plaintext), nonce });
}

/**
 * Decrypts with the round's signature (G1, compressed hex), as the pallet does at reveal time. Throws
 * MinerError on malformed input, on a signature for another round/key, and on a failed GCM tag.
 */
export function decryptTimelock(ciphertext: Uint8Array, roundSignatureHex: string): Uint8Array {
  const parts = deserialise(ciphertext);
  const signature = parseSignature(roundSignatureHex);
  const u = parseG2(parts.u, 'timelock ciphertext U');
  const sigma = xor(parts.v, h2(bls12_381.pairing(signature, u)));
  const key = xor(parts.w, h4(sigma));
  const r = h3(sigma, key);
  if (r === 0n || !bls12_381.G2.Point.BASE.multiply(r).equals(u)) {
    throw new MinerError('timelock decryption failed: the round signature does not open this ciphertext (U != H3(sigma, k) * G2)', {
      hint: 'use the signature of the exact reveal_round the ciphertext was made for, from the same drand key',
    });
  }
  return aesGcmOpen(key, parts.nonce, parts.sealed);
}

/**
 * Quicknet round reached `blocksUntilReveal` blocks after `nowSecs` (docs/chain.md):
 * floor((now - genesis + round(blocks * blockTime)) / 3), in integer seconds.
 */
export function revealRoundFor(nowSecs: number, blocksUntilReveal: number, blockTimeS = 12): number {
  const delay = Math.round(blocksUntilReveal * blockTimeS);
  return Math.floor((Math.floor(nowSecs) - QUICKNET_GENESIS_SECS + delay) / QUICKNET_PERIOD_SECS);
}

/** SCALE `String`: compact(length) || UTF-8 — the timelock plaintext and the revealed commitment value. */
export function scaleEncodeString(s: string): Uint8Array {
  return compactAddLength(stringToU8a(s));
}

/** Inverse of scaleEncodeString; rejects a length prefix that does not match the bytes. */
export function scaleDecodeString(bytes: Uint8Array): string {
  const [prefix, length] = bytes.length === 0 ? [0, 0] : compactFromU8aLim(bytes);
  if (prefix === 0 || prefix + length !== bytes.length) {
    throw new MinerError(`not a SCALE string: length prefix says ${length} bytes, ${bytes.length - prefix} present`);
  }
  return u8aToString(bytes.subarray(prefix));
}

/** Commitment JSON -> TimelockEncrypted bytes, refusing JSON that would exceed the pallet's 1024-byte bound. */
export function encryptCommitmentJson(json: string, round: bigint | number, publicKeyHex: string, fixed: FixedRandomness = {}): Uint8Array {
  const jsonBytes = stringToU8a(json).length;
  if (jsonBytes > MAX_COMMITMENT_JSON_BYTES) {
    throw new MinerError(`commitment JSON is ${jsonBytes} UTF-8 bytes; timelock commitments allow at most ${MAX_COMMITMENT_JSON_BYTES}`, {
      hint: 'shorten image_repo/image_tag or drop optional fields; the ciphertext must stay <= 1024 bytes',
    });
  }
  return encryptTimelock(scaleEncodeString(json), round, publicKeyHex, fixed);
}

// ---------------------------------------------------------------- a test drand beacon

function parseSecretKey(secretKey: Uint8Array): bigint {
  const sk = bytesToBigIntBE(secretKey);
  if (secretKey.length !== 32 || sk === 0n || sk >= bls12_381.fields.Fr.ORDER) {
    throw new MinerError('test drand secret key must be 32 bytes (big-endian) in 1..r-1');
  }
  return sk;
}

/** Public key (G2 compressed hex) for a test drand secret key, usable as DRAND_PUBLIC_KEY. */
export function drandPublicKeyFromSecret(secretKey: Uint8Array): string {
  return toHex(bls12_381.G2.Point.BASE.multiply(parseSecretKey(secretKey)).toBytes(true));
}

/** Round signature (G1 compressed hex) as bls-unchained-g1-rfc9380 makes it: sk * hash_to_G1(sha256(round BE)). */
export function signDrandRound(secretKey: Uint8Array, round: bigint | number): string {
  return toHex(identityPoint(round).multiply(parseSecretKey(secretKey)).toBytes(true));
}

/** True when `signatureHex` is the drand signature of `round` under `publicKeyHex`: e(sig, G2) == e(Q_id, pk). */
export function verifyDrandRound(signatureHex: string, round: bigint | number, publicKeyHex: string): boolean {
  const signature = parseSignature(signatureHex);
  const publicKey = parsePublicKey(publicKeyHex);
  const { Fp12 } = bls12_381.fields;
  return Fp12.eql(bls12_381.pairing(signature, bls12_381.G2.Point.BASE), bls12_381.pairing(identityPoint(round), publicKey));
}
