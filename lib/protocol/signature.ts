/**
 * Request signatures (docs/security.md): the two message schemes seen in the wild, sr25519 verification that also
 * accepts `<Bytes>`-wrapped messages, hotkey comparison by public key, and the signing side for the challenge
 * client. No state and no clock except in `makeNonce`; the nonce rules live in server/nonces.ts.
 *
 * What a forged request can make the server do is bounded: the body is hashed once per hash function
 * (`bodyDigests`), and the nonce's form picks the one scheme tried, so at most two sr25519 verifications run
 * (the message plain and `<Bytes>`-wrapped), each in WebAssembly (`SR25519_VERIFY`).
 */
import { createHash, randomInt } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { u8aToHex, u8aWrapBytes } from '@polkadot/util';
import { blake2AsU8a, decodeAddress, encodeAddress, sr25519Verify } from '@polkadot/util-crypto';
import { isReady as wasmReady, sr25519Verify as wasmSr25519Verify } from '@polkadot/wasm-crypto';

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

/** The two hash functions the schemes use; injectable so a test can count the calls. */
export interface BodyHashes {
  sha256(bytes: Uint8Array): Uint8Array;
  blake2b256(bytes: Uint8Array): Uint8Array;
}

/** Native sha256 (node:crypto) and polkadot's blake2b (WebAssembly once cryptoWaitReady() has run, else JS). */
export const BODY_HASHES: BodyHashes = {
  sha256: (bytes) => createHash('sha256').update(bytes).digest(),
  blake2b256: (bytes) => blake2AsU8a(bytes, 256),
};

/** A body's hashes as lowercase hex without `0x` (what both schemes put in the message), each computed at most once. */
export interface BodyDigests {
  /** The fiber scheme signs no hash for an empty body. */
  readonly empty: boolean;
  sha256Hex(): string;
  blake2b256Hex(): string;
}

/** Digests computed when first asked for, then kept: one request's messages never hash its body twice. */
export function bodyDigests(body: Uint8Array | string, hashes: BodyHashes = BODY_HASHES): BodyDigests {
  const bytes = bytesOf(body);
  let sha: string | undefined;
  let blake: string | undefined;
  return {
    empty: bytes.length === 0,
    sha256Hex: () => (sha ??= Buffer.from(hashes.sha256(bytes)).toString('hex')),
    blake2b256Hex: () => (blake ??= Buffer.from(hashes.blake2b256(bytes)).toString('hex')),
  };
}

function digestsOf(body: Uint8Array | string | BodyDigests): BodyDigests {
  return typeof body === 'string' || body instanceof Uint8Array ? bodyDigests(body) : body;
}

export function sha256Hex(body: Uint8Array | string): string {
  return bodyDigests(body).sha256Hex();
}

export function blake2b256Hex(body: Uint8Array | string): string {
  return bodyDigests(body).blake2b256Hex();
}

/** The fiber message; a request without a body signs just "{nonce}:{miner_hotkey}". */
export function fiberMessage(nonce: string, minerHotkey: string, body: Uint8Array | string | BodyDigests): string {
  const digests = digestsOf(body);
  return digests.empty ? `${nonce}:${minerHotkey}` : `${nonce}:${minerHotkey}:${digests.sha256Hex()}`;
}

/** Score's central-validator message: no separators, no miner hotkey. */
export function centralMessage(nonce: string, body: Uint8Array | string | BodyDigests): string {
  return `${nonce}${digestsOf(body).blake2b256Hex()}`;
}

/**
 * The scheme a nonce's form names (the two validators make them differently, see makeNonce): fiber's has a `_`
 * and a random suffix, the central validator's is the bare nanoseconds.
 */
export function schemeOfNonce(nonce: string): SignatureScheme {
  return nonce.includes('_') ? 'fiber' : 'central';
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

/** One sr25519 verification, as @polkadot/util-crypto's sr25519Verify (injectable so a test can count them). */
export type Sr25519Verify = (message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array) => boolean;

/**
 * schnorrkel compiled to WebAssembly (@polkadot/wasm-crypto, ready once cryptoWaitReady() has run), else
 * @polkadot/util-crypto's pure-JS @scure/sr25519: the same verdicts, but a well-formed forged signature costs the
 * JS one ~3-5 ms here against ~0.4 ms, and the server verifies on its event loop.
 */
export const SR25519_VERIFY: Sr25519Verify = (message, signature, publicKey) =>
  wasmReady() ? wasmSr25519Verify(signature, message, publicKey) : sr25519Verify(message, signature, publicKey);

/**
 * sr25519 only (the spec's schemes); the message as signed or wrapped in `<Bytes>...</Bytes>`: at most two
 * verifications.
 */
export function verifySr25519(
  message: string | Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
  verify: Sr25519Verify = SR25519_VERIFY,
): boolean {
  const bytes = bytesOf(message);
  for (const candidate of [bytes, u8aWrapBytes(bytes)]) {
    try {
      if (verify(candidate, signature, publicKey)) return true;
    } catch {
      // Wrong key or signature length: not valid, never an exception for the caller.
    }
  }
  return false;
}

export interface VerifyInput {
  nonce: string;
  /** bodyDigests(body) of the raw body: the message is built from it, so the body is not hashed again. */
  digests: BodyDigests;
  signature: Uint8Array;
  signerPublicKey: Uint8Array;
  /**
   * The miner hotkey as the fiber message spells it: our own SS58, or the `miner-hotkey` header when it names
   * the same key with another prefix. Undefined: the fiber scheme cannot match.
   */
  minerHotkey?: string;
  /** Default: SR25519_VERIFY. */
  verify?: Sr25519Verify;
}

/**
 * The scheme whose message the signature covers, or undefined when it does not verify. Only the scheme the
 * nonce's form names is tried (schemeOfNonce): at most two sr25519 verifications per request.
 */
export function verifyRequestSignature(input: VerifyInput): SignatureScheme | undefined {
  const scheme = schemeOfNonce(input.nonce);
  let message: string;
  if (scheme === 'central') message = centralMessage(input.nonce, input.digests);
  else if (input.minerHotkey !== undefined) message = fiberMessage(input.nonce, input.minerHotkey, input.digests);
  else return undefined;
  return verifySr25519(message, input.signature, input.signerPublicKey, input.verify) ? scheme : undefined;
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
