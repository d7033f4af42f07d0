import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { u8aToHex, u8aWrapBytes } from '@polkadot/util';
import { cryptoWaitReady, encodeAddress, sr25519Verify } from '@polkadot/util-crypto';
import {
  BODY_HASHES,
  blake2b256Hex,
  bodyDigests,
  centralMessage,
  decodeHotkey,
  fiberMessage,
  hotkeyToHex,
  makeNonce,
  parseSignatureHex,
  readHeader,
  SR25519_VERIFY,
  sameHotkey,
  schemeOfNonce,
  sha256Hex,
  signRequest,
  verifyRequestSignature,
  verifySr25519,
} from '../../lib/protocol/signature.ts';

const BODY = '{"challenge_id":"c1","video_url":"https://example.com/v.mp4","frames":null}';
const body = Buffer.from(BODY);
let alice: KeyringPair;
let bob: KeyringPair;
let miner: KeyringPair;

before(async () => {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  alice = keyring.addFromUri('//Alice');
  bob = keyring.addFromUri('//Bob');
  miner = keyring.addFromUri('//Charlie');
});

test('hash vectors from docs/security.md', () => {
  assert.equal(sha256Hex(body), '257e6468a61badb447410213565c68ba5bbc447c3a983296beb0d8c80de24f0d');
  assert.equal(blake2b256Hex(body), '9bd4bcf32fa1ae9c9fc3ff2139afe08bd542a0c42a57e6f7744da8989f959e9f');
  assert.equal(sha256Hex(BODY), sha256Hex(body));
});

test('message layouts of both schemes', () => {
  assert.equal(fiberMessage('17_ab', '5Miner', body), '17_ab:5Miner:257e6468a61badb447410213565c68ba5bbc447c3a983296beb0d8c80de24f0d');
  assert.equal(fiberMessage('17_ab', '5Miner', Buffer.alloc(0)), '17_ab:5Miner');
  assert.equal(centralMessage('17', body), '179bd4bcf32fa1ae9c9fc3ff2139afe08bd542a0c42a57e6f7744da8989f959e9f');
});

test('signature hex: 0x + 128 hex only', () => {
  const good = u8aToHex(alice.sign('x'));
  assert.equal(parseSignatureHex(good)?.length, 64);
  assert.equal(parseSignatureHex(good.toUpperCase().replace('0X', '0x'))?.length, 64);
  assert.equal(parseSignatureHex(good.slice(2)), undefined);
  assert.equal(parseSignatureHex(good.slice(0, -2)), undefined);
  assert.equal(parseSignatureHex(`${good}00`), undefined);
  assert.equal(parseSignatureHex(`${good.slice(0, -1)}g`), undefined);
});

test('hotkeys compare by public key across SS58 prefixes; junk does not decode', () => {
  const polkadotSpelling = encodeAddress(alice.publicKey, 0);
  assert.notEqual(polkadotSpelling, alice.address);
  assert.ok(sameHotkey(polkadotSpelling, alice.address));
  assert.ok(!sameHotkey(bob.address, alice.address));
  assert.equal(hotkeyToHex(polkadotSpelling), u8aToHex(alice.publicKey));
  assert.equal(decodeHotkey(u8aToHex(alice.publicKey)), undefined, 'hex is not an SS58 header value');
  assert.equal(decodeHotkey(`${alice.address.slice(0, -1)}x`), undefined, 'bad checksum');
  assert.equal(decodeHotkey('not an address'), undefined);
});

test('hotkeyToHex: the one SS58-or-hex -> lookup key helper (stake snapshots, the stake gate, wallets)', () => {
  const hex = u8aToHex(alice.publicKey);
  assert.match(hex, /^0x[0-9a-f]{64}$/);
  assert.equal(hotkeyToHex(alice.address), hex);
  assert.equal(hotkeyToHex(hex), hex, 'a 0x-hex public key passes through');
  assert.equal(hotkeyToHex(hex.toUpperCase().replace('0X', '0x')), hex, 'lower-cased');
  for (const junk of [hex.slice(2), `${hex}00`, hex.slice(0, -2), `${alice.address.slice(0, -1)}x`, '', 'not an address']) {
    assert.equal(hotkeyToHex(junk), undefined, junk);
  }
});

test('SR25519_VERIFY (WebAssembly) gives the verdicts of the JS sr25519Verify', () => {
  const message = new TextEncoder().encode(centralMessage('1', body));
  const good = alice.sign(message);
  const flipped = Uint8Array.from(good);
  flipped[10] ^= 1;
  const cases: Array<[Uint8Array, Uint8Array, Uint8Array]> = [
    [message, good, alice.publicKey],
    [message, good, bob.publicKey],
    [message, bob.sign(message), alice.publicKey],
    [message, flipped, alice.publicKey],
    [new TextEncoder().encode('other'), good, alice.publicKey],
  ];
  const verdicts = (verify: (m: Uint8Array, s: Uint8Array, k: Uint8Array) => boolean) =>
    cases.map(([m, s, k]) => {
      try {
        return verify(m, s, k);
      } catch {
        return false;
      }
    });
  assert.deepEqual(verdicts(SR25519_VERIFY), [true, false, false, false, false]);
  assert.deepEqual(verdicts(SR25519_VERIFY), verdicts(sr25519Verify));
});

test('sr25519: plain and <Bytes>-wrapped messages verify, others do not', () => {
  const message = centralMessage('1', body);
  assert.ok(verifySr25519(message, alice.sign(message), alice.publicKey));
  assert.ok(verifySr25519(message, alice.sign(u8aWrapBytes(new TextEncoder().encode(message))), alice.publicKey));
  assert.ok(!verifySr25519(message, bob.sign(message), alice.publicKey));
  assert.ok(!verifySr25519(`${message}0`, alice.sign(message), alice.publicKey));
  assert.ok(!verifySr25519(message, new Uint8Array(63), alice.publicKey), 'wrong length is false, not a throw');
});

function verifyHeaders(headers: Record<string, string>, minerHotkey: string | undefined, bytes: Uint8Array = body) {
  return verifyRequestSignature({
    nonce: readHeader(headers, 'nonce')!,
    digests: bodyDigests(bytes),
    signature: parseSignatureHex(readHeader(headers, 'signature')!)!,
    signerPublicKey: decodeHotkey(readHeader(headers, 'validator-hotkey')!)!,
    minerHotkey,
  });
}

test('signRequest central: every header twice, verifies as central', () => {
  const headers = signRequest(alice, 'central', body, { minerHotkey: miner.address, nowMs: 1_700_000_000_000 });
  assert.deepEqual(Object.keys(headers).sort(), [
    'X-Miner-Hotkey',
    'X-Nonce',
    'X-Signature',
    'X-Validator-Hotkey',
    'miner-hotkey',
    'nonce',
    'signature',
    'validator-hotkey',
  ]);
  assert.equal(headers.nonce, '1700000000000000000');
  assert.equal(headers['X-Nonce'], headers.nonce);
  assert.equal(headers['validator-hotkey'], alice.address);
  assert.equal(verifyHeaders(headers, undefined), 'central');
});

test('signRequest fiber: bare headers, nonce with suffix, verifies as fiber only with the right miner hotkey', () => {
  const headers = signRequest(alice, 'fiber', body, { minerHotkey: miner.address });
  assert.deepEqual(Object.keys(headers).sort(), ['miner-hotkey', 'nonce', 'signature', 'validator-hotkey']);
  assert.match(headers.nonce, /^\d{19}_[A-Za-z0-9]{10}$/);
  assert.equal(verifyHeaders(headers, miner.address), 'fiber');
  assert.equal(verifyHeaders(headers, bob.address), undefined);
  assert.equal(verifyHeaders(headers, undefined), undefined);
  assert.throws(() => signRequest(alice, 'fiber', body), /minerHotkey/);
});

test('wrapped signatures verify under both schemes; a one-byte body change does not', () => {
  for (const scheme of ['central', 'fiber'] as const) {
    const headers = signRequest(alice, scheme, body, { minerHotkey: miner.address, wrap: true });
    assert.equal(verifyHeaders(headers, miner.address), scheme);
    const tampered = Buffer.from(body);
    tampered[tampered.length - 2] ^= 1;
    assert.equal(verifyHeaders(headers, miner.address, tampered), undefined);
  }
});

test('readHeader: case-insensitive, bare or X- prefixed, bare wins', () => {
  assert.equal(readHeader({ 'X-Nonce': '5' }, 'nonce'), '5');
  assert.equal(readHeader({ 'x-nonce': '5' }, 'nonce'), '5');
  assert.equal(readHeader({ Nonce: '4', 'x-nonce': '5' }, 'nonce'), '4');
  assert.equal(readHeader({ nonce: '  ' }, 'nonce'), undefined);
  assert.equal(readHeader({}, 'nonce'), undefined);
});

test('makeNonce: central is bare unix ns, fiber adds 10 alphanumerics', () => {
  assert.equal(makeNonce('central', 1234.9), '1234000000');
  assert.match(makeNonce('fiber', 1000), /^1000000000_[A-Za-z0-9]{10}$/);
  assert.notEqual(makeNonce('fiber', 1000), makeNonce('fiber', 1000));
});

/** BODY_HASHES and sr25519Verify, each call counted. */
function counting() {
  const calls = { sha256: 0, blake2b256: 0, verify: 0 };
  return {
    calls,
    hashes: {
      sha256: (bytes: Uint8Array) => {
        calls.sha256++;
        return BODY_HASHES.sha256(bytes);
      },
      blake2b256: (bytes: Uint8Array) => {
        calls.blake2b256++;
        return BODY_HASHES.blake2b256(bytes);
      },
    },
    verify: (message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array) => {
      calls.verify++;
      return sr25519Verify(message, signature, publicKey);
    },
  };
}

test('bodyDigests: each hash computed once, on demand, whatever asks for it; the messages match the vectors', () => {
  const { calls, hashes } = counting();
  const digests = bodyDigests(body, hashes);
  assert.deepEqual(calls, { sha256: 0, blake2b256: 0, verify: 0 }, 'nothing hashed before it is needed');
  for (let i = 0; i < 3; i++) {
    assert.equal(centralMessage('17', digests), centralMessage('17', body));
    assert.equal(fiberMessage('17_ab', '5Miner', digests), fiberMessage('17_ab', '5Miner', body));
    assert.equal(digests.blake2b256Hex(), '9bd4bcf32fa1ae9c9fc3ff2139afe08bd542a0c42a57e6f7744da8989f959e9f');
  }
  assert.deepEqual(calls, { sha256: 1, blake2b256: 1, verify: 0 });
  assert.equal(fiberMessage('17_ab', '5Miner', bodyDigests(Buffer.alloc(0), hashes)), '17_ab:5Miner');
  assert.equal(calls.sha256, 1, 'an empty body is not hashed for fiber');
});

test("schemeOfNonce: fiber's nonce has a _ suffix, the central validator's is bare digits", () => {
  assert.equal(schemeOfNonce(makeNonce('central')), 'central');
  assert.equal(schemeOfNonce(makeNonce('fiber')), 'fiber');
  assert.equal(schemeOfNonce('abc'), 'central', 'malformed nonces are refused before this (server/nonces.ts)');
});

test('verifyRequestSignature: one hash and at most two sr25519 verifications, genuine or forged', () => {
  const forgedBy = (scheme: 'central' | 'fiber', wrap = false) => {
    const headers = signRequest(bob, scheme, body, { minerHotkey: miner.address, wrap });
    return { ...headers, 'validator-hotkey': alice.address }; // claims Alice, signed by Bob
  };
  const run = (headers: Record<string, string>) => {
    const { calls, hashes, verify } = counting();
    const scheme = verifyRequestSignature({
      nonce: headers.nonce,
      digests: bodyDigests(body, hashes),
      signature: parseSignatureHex(headers.signature)!,
      signerPublicKey: decodeHotkey(headers['validator-hotkey'])!,
      minerHotkey: miner.address,
      verify,
    });
    return { scheme, ...calls };
  };
  assert.deepEqual(run(signRequest(alice, 'central', body)), { scheme: 'central', sha256: 0, blake2b256: 1, verify: 1 });
  assert.deepEqual(run(signRequest(alice, 'central', body, { wrap: true })), { scheme: 'central', sha256: 0, blake2b256: 1, verify: 2 });
  assert.deepEqual(run(signRequest(alice, 'fiber', body, { minerHotkey: miner.address })), {
    scheme: 'fiber',
    sha256: 1,
    blake2b256: 0,
    verify: 1,
  });
  assert.deepEqual(run(forgedBy('central')), { scheme: undefined, sha256: 0, blake2b256: 1, verify: 2 });
  assert.deepEqual(run(forgedBy('fiber', true)), { scheme: undefined, sha256: 1, blake2b256: 0, verify: 2 });
});
