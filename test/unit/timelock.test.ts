import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import * as wasm from '@ideallabs/timelock_wasm_wrapper';
import { bls12_381 } from '@noble/curves/bls12-381.js';
import {
  decryptTimelock,
  drandPublicKeyFromSecret,
  encryptCommitmentJson,
  encryptTimelock,
  gtToArkworks,
  h2,
  h3,
  h4,
  identityFor,
  identityPoint,
  MAX_COMMITMENT_JSON_BYTES,
  MAX_TIMELOCK_CIPHERTEXT_BYTES,
  MAX_TIMELOCK_PLAINTEXT_BYTES,
  revealRoundFor,
  scaleDecodeString,
  scaleEncodeString,
  signDrandRound,
  TIMELOCK_OVERHEAD_BYTES,
  verifyDrandRound,
} from '../../lib/chain/timelock.ts';
import { QUICKNET_PUBLIC_KEY } from '../../lib/core/config.ts';
import { MinerError } from '../../lib/core/errors.ts';
import { FIXTURES_DIR } from '../support/fixtures.ts';

const VECTORS_DIR = path.join(FIXTURES_DIR, 'vectors');
const VECTOR_FILES = [
  'ts_round1000_hello_bittensor.json',
  'ts_round2000.json',
  'wasm_rust_round1000.json',
  'wasm_rust_round1000_scale_str.json',
];

interface Vector {
  round: number;
  signature: string;
  ciphertext_hex: string;
  plaintext_scale_hex?: string;
  plaintext_hex?: string;
  plaintext_str?: string;
  sigma?: string;
  esk?: string;
  nonce?: string;
}

const readVector = <T = Vector>(name: string): T => JSON.parse(readFileSync(path.join(VECTORS_DIR, name), 'utf8')) as T;
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const expectedPlaintext = (v: Vector): string => (v.plaintext_scale_hex ?? v.plaintext_hex) as string;

// The wasm build of the Rust `tle` crate (pinned 1.0.0) is the oracle; Node has no fetch of file URLs, so init sync.
const wasmEntry = createRequire(import.meta.url).resolve('@ideallabs/timelock_wasm_wrapper');
wasm.initSync({ module: readFileSync(wasmEntry.replace(/\.js$/, '_bg.wasm')) });
const wasmEncrypt = (plaintext: Uint8Array, round: number, publicKeyHex: string): Uint8Array =>
  Uint8Array.from(wasm.tle(identityFor(round), plaintext, randomBytes(32), bytes(publicKeyHex), 'bls12_381') as number[]);
const wasmDecrypt = (ciphertext: Uint8Array, signatureHex: string): Uint8Array =>
  Uint8Array.from(wasm.tld(ciphertext, bytes(signatureHex), 'bls12_381') as number[]);

// A test beacon key (any scalar below the group order; 0x11.. is well below r = 0x73ed..).
const TEST_SECRET = new Uint8Array(32).fill(0x11);

function assertMinerError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof MinerError, `expected MinerError, got ${String(error)}`);
    assert.match(error.message, message);
    return true;
  });
}

// ---------------------------------------------------------------- vectors

for (const name of VECTOR_FILES) {
  test(`decrypts ${name} with its real quicknet signature`, () => {
    const v = readVector(name);
    assert.equal(hex(decryptTimelock(bytes(v.ciphertext_hex), v.signature)), expectedPlaintext(v));
  });
}

test('vectors carry genuine quicknet signatures for their rounds', () => {
  for (const name of VECTOR_FILES) {
    const v = readVector(name);
    assert.ok(verifyDrandRound(v.signature, v.round, QUICKNET_PUBLIC_KEY), name);
    assert.ok(!verifyDrandRound(v.signature, v.round + 1, QUICKNET_PUBLIC_KEY), `${name} (other round)`);
  }
});

test('reproduces every intermediate of ts_round1000_intermediates.json', () => {
  const i = readVector<Record<string, string | number | boolean>>('ts_round1000_intermediates.json');
  const v = readVector('ts_round1000_hello_bittensor.json');
  const sigma = bytes(v.sigma as string);
  const key = bytes(v.esk as string);

  assert.equal(hex(identityFor(1000)), i.identity_message_sha256_round_be);
  const qId = identityPoint(1000);
  assert.equal(hex(qId.toBytes(true)), i.Q_id_G1_compressed);
  const r = h3(sigma, key);
  assert.equal(r.toString(16).padStart(64, '0'), i.r_scalar_hex);
  const u = bls12_381.G2.Point.BASE.multiply(r);
  assert.equal(hex(u.toBytes(true)), i.U_G2_compressed);

  const gtDecrypt = bls12_381.pairing(bls12_381.G1.Point.fromHex(v.signature), u);
  const gtEncrypt = bls12_381.pairing(qId, bls12_381.G2.Point.fromHex(QUICKNET_PUBLIC_KEY).multiply(r));
  assert.equal(bls12_381.fields.Fp12.eql(gtDecrypt, gtEncrypt), i.e_sig_U_equals_e_Qid_rPpub);
  const ark = gtToArkworks(gtEncrypt);
  assert.equal(ark.length, i.gt_ark_bytes_len);
  assert.equal(hex(ark.subarray(0, 64)), i.gt_ark_bytes_first64);
  assert.equal(hex(h2(gtEncrypt)), i.h2_sha256_of_gt_ark_bytes);
  assert.equal(hex(h4(sigma)), i.h4_sigma);
});

for (const name of ['ts_round1000_hello_bittensor.json', 'ts_round2000.json']) {
  test(`re-encrypts ${name} byte for byte with its fixed sigma/k/nonce`, () => {
    const v = readVector(name);
    const fixed = { sigma: bytes(v.sigma as string), key: bytes(v.esk as string), nonce: bytes(v.nonce as string) };
    const ciphertext = encryptTimelock(bytes(v.plaintext_scale_hex as string), v.round, QUICKNET_PUBLIC_KEY, fixed);
    assert.equal(hex(ciphertext), v.ciphertext_hex);
  });
}

test('encryptCommitmentJson is SCALE(string) then encrypt (hello vector)', () => {
  const v = readVector('ts_round1000_hello_bittensor.json');
  const fixed = { sigma: bytes(v.sigma as string), key: bytes(v.esk as string), nonce: bytes(v.nonce as string) };
  assert.equal(hex(encryptCommitmentJson(v.plaintext_str as string, 1000, QUICKNET_PUBLIC_KEY, fixed)), v.ciphertext_hex);
});

// ---------------------------------------------------------------- the Rust implementation as oracle

test('ours encrypts -> Rust tle (wasm) decrypts', () => {
  const v = readVector('wasm_rust_round1000.json');
  const plaintext = scaleEncodeString('{"role":"miner","track":"private","image_tag":"v1.0.0"}');
  const ciphertext = encryptTimelock(plaintext, 1000, QUICKNET_PUBLIC_KEY);
  assert.equal(ciphertext.length, plaintext.length + TIMELOCK_OVERHEAD_BYTES);
  assert.equal(hex(wasmDecrypt(ciphertext, v.signature)), hex(plaintext));
});

test('Rust tle (wasm) encrypts -> ours decrypts', () => {
  const v = readVector('ts_round2000.json');
  const plaintext = Uint8Array.from(randomBytes(300));
  const ciphertext = wasmEncrypt(plaintext, 2000, QUICKNET_PUBLIC_KEY);
  assert.equal(ciphertext.length, plaintext.length + TIMELOCK_OVERHEAD_BYTES);
  assert.equal(hex(decryptTimelock(ciphertext, v.signature)), hex(plaintext));
});

// ---------------------------------------------------------------- a test drand beacon

test('a test BLS key signs rounds that open what its public key encrypted (ours and wasm)', () => {
  const publicKey = drandPublicKeyFromSecret(TEST_SECRET);
  assert.match(publicKey, /^[0-9a-f]{192}$/);
  const signature = signDrandRound(TEST_SECRET, 1000);
  assert.match(signature, /^[0-9a-f]{96}$/);
  assert.ok(verifyDrandRound(signature, 1000, publicKey));
  assert.ok(!verifyDrandRound(signature, 1000, QUICKNET_PUBLIC_KEY));

  const plaintext = scaleEncodeString('registered by a test beacon');
  const ours = encryptTimelock(plaintext, 1000n, publicKey);
  assert.equal(hex(decryptTimelock(ours, signature)), hex(plaintext));
  assert.equal(hex(wasmDecrypt(ours, signature)), hex(plaintext));
  assert.equal(hex(decryptTimelock(wasmEncrypt(plaintext, 1000, publicKey), signature)), hex(plaintext));
  assertMinerError(() => decryptTimelock(ours, signDrandRound(TEST_SECRET, 1001)), /does not open this ciphertext/);
});

test('signDrandRound agrees with noble short signatures (bls-unchained-g1-rfc9380)', () => {
  const signature = bls12_381.shortSignatures.sign(
    bls12_381.shortSignatures.hash(identityFor(77), 'BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_'),
    TEST_SECRET,
  );
  assert.equal(signDrandRound(TEST_SECRET, 77), hex(signature.toBytes(true)));
});

// ---------------------------------------------------------------- budget, reveal round, SCALE

test('payload budget: 778-byte JSON fills 1024 bytes exactly, 779 is refused with a clear message', () => {
  assert.equal(MAX_TIMELOCK_PLAINTEXT_BYTES, 780);
  assert.equal(MAX_COMMITMENT_JSON_BYTES, 778);
  const json = (n: number) => JSON.stringify({ pad: 'x'.repeat(n - 10) });
  assert.equal(utf8(json(778)).length, 778);
  assert.equal(encryptCommitmentJson(json(778), 5, QUICKNET_PUBLIC_KEY).length, MAX_TIMELOCK_CIPHERTEXT_BYTES);
  assertMinerError(() => encryptCommitmentJson(json(779), 5, QUICKNET_PUBLIC_KEY), /779 UTF-8 bytes.*at most 778/);
  // Multi-byte characters count as bytes, not characters.
  assertMinerError(() => encryptCommitmentJson('é'.repeat(390), 5, QUICKNET_PUBLIC_KEY), /780 UTF-8 bytes/);
  assertMinerError(() => encryptTimelock(new Uint8Array(781), 5, QUICKNET_PUBLIC_KEY), /781 bytes.*at most 780/);
});

test('revealRoundFor follows docs/chain.md', () => {
  const genesis = 1692803367;
  assert.equal(revealRoundFor(genesis + 3000, 10), 1040);
  assert.equal(revealRoundFor(genesis + 3000.9, 10), 1040); // whole seconds only
  assert.equal(revealRoundFor(genesis + 3002, 10), 1040);
  assert.equal(revealRoundFor(genesis + 3003, 10), 1041);
  assert.equal(revealRoundFor(genesis, 3, 0.25), 0); // round(0.75) = 1 s -> round 0
  assert.equal(revealRoundFor(genesis, 10, 0.25), 1); // round(2.5) = 3 s -> round 1
});

test('scaleEncodeString: compact length then UTF-8, both prefix widths', () => {
  assert.equal(hex(scaleEncodeString('hello, bittensor!')), '4468656c6c6f2c2062697474656e736f7221');
  assert.equal(hex(scaleEncodeString('x'.repeat(100)).subarray(0, 2)), '9101');
  assert.equal(scaleEncodeString('x'.repeat(100)).length, 102);
  assert.equal(scaleDecodeString(scaleEncodeString('héllo')), 'héllo');
  assertMinerError(() => scaleDecodeString(bytes('10616263')), /not a SCALE string/);
});

// ---------------------------------------------------------------- bad input

test('bad input: each failure is a MinerError that says what is wrong', () => {
  const v = readVector('ts_round1000_hello_bittensor.json');
  const good = bytes(v.ciphertext_hex);
  const flip = (offset: number) => {
    const copy = good.slice();
    copy[offset] ^= 0x01;
    return copy;
  };

  assertMinerError(() => decryptTimelock(good.subarray(0, good.length - 1), v.signature), /malformed: truncated in cipher suite/);
  assertMinerError(() => decryptTimelock(good.subarray(0, 50), v.signature), /malformed: truncated in U/);
  assertMinerError(() => decryptTimelock(Uint8Array.from([...good, 0]), v.signature), /malformed: 1 trailing bytes/);
  // The sealed body starts after U(96) + V,W (2*40) + body length(8) + ct length(8).
  assertMinerError(() => decryptTimelock(flip(96 + 80 + 16), v.signature), /AES-GCM authentication \(tag mismatch\)/);
  assertMinerError(() => decryptTimelock(flip(good.length - 40), v.signature), /AES-GCM authentication/); // in the tag
  assertMinerError(() => decryptTimelock(flip(96 + 8), v.signature), /does not open this ciphertext/); // in V
  assertMinerError(() => decryptTimelock(flip(96 + 40 + 8), v.signature), /does not open this ciphertext/); // in W
  assertMinerError(() => decryptTimelock(flip(5), v.signature), /U is not a valid BLS12-381 G2 point|does not open/);
  assertMinerError(() => decryptTimelock(flip(96), v.signature), /malformed: V length is 33, expected 32/);

  const round2000 = readVector('ts_round2000.json').signature;
  assertMinerError(() => decryptTimelock(good, round2000), /round signature does not open this ciphertext/);
  assertMinerError(() => decryptTimelock(good, v.signature.slice(0, 94)), /must be 48 bytes \(G1 compressed\), got 47/);
  assertMinerError(() => decryptTimelock(good, 'ff'.repeat(48)), /not a valid BLS12-381 G1 point/);
  assertMinerError(() => decryptTimelock(good, 'zz'), /not valid hex/);
  assertMinerError(() => decryptTimelock(good, `c0${'00'.repeat(47)}`), /signature is the point at infinity/);
  const infinityU = good.slice();
  infinityU.set(bytes(`c0${'00'.repeat(95)}`), 0);
  assertMinerError(() => decryptTimelock(infinityU, v.signature), /U is the point at infinity/);
  assertMinerError(() => encryptTimelock(utf8('x'), 1, QUICKNET_PUBLIC_KEY.slice(2)), /public key must be 96 bytes/);
  assertMinerError(() => encryptTimelock(utf8('x'), -1, QUICKNET_PUBLIC_KEY), /round must be an integer/);
  assertMinerError(() => encryptTimelock(utf8('x'), 1, QUICKNET_PUBLIC_KEY, { nonce: new Uint8Array(8) }), /nonce must be 12 bytes/);
});
