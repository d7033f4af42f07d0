/**
 * Offline checks against real subtensor metadata (no network, no runtime): call encodings against
 * test/fixtures/vectors/calls.json, and a signed set_commitment built for finney's current extension list
 * (metadata v16, spec 381) that decodes back and verifies.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import { Metadata, TypeRegistry } from '@polkadot/types';
import type { RuntimeVersion } from '@polkadot/types/interfaces';
import { expandMetadata } from '@polkadot/types/metadata';
import { hexToU8a, u8aToHex } from '@polkadot/util';
import { blake2AsU8a, cryptoWaitReady, signatureVerify } from '@polkadot/util-crypto';
import { axonArgs, intToIpv4, ipv4ToInt, nonPublicReason, versionToInt } from '../../lib/chain/axon.ts';
import { commitmentInfo, parseRevealedCommitments } from '../../lib/chain/commitment.ts';
import {
  blocksUntilNextEpoch,
  extensionOverridesFor,
  SUBTENSOR_EXTENSION_OVERRIDES,
  unknownExtensions,
} from '../../lib/chain/connection.ts';
import { FIXTURES_DIR } from '../support/fixtures.ts';

const calls = JSON.parse(readFileSync(path.join(FIXTURES_DIR, 'vectors/calls.json'), 'utf8'));

let registry: TypeRegistry;
let decorated: ReturnType<typeof expandMetadata>;

before(async () => {
  await cryptoWaitReady();
  registry = new TypeRegistry();
  const metadata = new Metadata(registry, readFileSync(path.join(FIXTURES_DIR, 'chain/subtensor-metadata-spec381.scale')));
  registry.setMetadata(metadata, undefined, undefined, true);
  decorated = expandMetadata(registry, metadata);
});

/** The TimelockEncrypted ciphertext and round inside the calls.json set_commitment call (its documented layout). */
function ciphertextFromVector(): { ciphertext: Uint8Array; round: bigint } {
  const bytes = hexToU8a(calls.set_commitment.call_hex);
  // 0x12 0x00 | netuid u16 | compact(#fields)=0x04 | 0x86 | compact(262)=0x1904 | ciphertext | u64
  assert.equal(bytes[5], 0x86);
  const len = calls.set_commitment.ciphertext_len as number;
  const ciphertext = bytes.subarray(8, 8 + len);
  const round = Buffer.from(bytes.subarray(8 + len)).readBigUInt64LE();
  return { ciphertext, round };
}

test('the runtime declares only extensions we know (spec 381) and the overrides cover exactly the custom ones', () => {
  const declared = registry.signedExtensions;
  assert.ok(declared.includes('SubtensorTransactionExtension'));
  assert.deepEqual(unknownExtensions(declared), []);
  assert.deepEqual(Object.keys(extensionOverridesFor(declared)).sort(), [
    'DrandPriority',
    'SubtensorTransactionExtension',
    'SudoTransactionExtension',
  ]);
  assert.deepEqual(unknownExtensions([...declared, 'BrandNewExtension']), ['BrandNewExtension']);
  assert.ok(SUBTENSOR_EXTENSION_OVERRIDES.ChargeTransactionPaymentWrapper);
});

test("the overrides match the metadata: each overridden extension's explicit and implicit types encode to nothing", () => {
  const metadata = registry.metadata;
  const extensions = metadata.extrinsic.transactionExtensions;
  let checked = 0;
  for (const ext of extensions) {
    const name = ext.identifier.toString();
    const override = SUBTENSOR_EXTENSION_OVERRIDES[name];
    if (!override) continue;
    const explicitBytes = registry.createType(registry.createLookupType(ext.type)).toU8a().length;
    const implicitBytes = registry.createType(registry.createLookupType(ext.implicit)).toU8a().length;
    assert.deepEqual([Object.keys(override.extrinsic), Object.keys(override.payload)], [[], []], name);
    assert.equal(explicitBytes, 0, `${name} carries ${explicitBytes} explicit bytes but the override declares none`);
    assert.equal(implicitBytes, 0, `${name} signs ${implicitBytes} implicit bytes but the override declares none`);
    checked++;
  }
  assert.equal(checked, 3);
  // and ChargeTransactionPayment (known to polkadot-js) carries the compact tip
  const ctp = extensions.find((e) => e.identifier.toString() === 'ChargeTransactionPayment')!;
  assert.equal(u8aToHex(registry.createType(registry.createLookupType(ctp.type), 5).toU8a()), '0x14');
});

test('set_commitment with one TimelockEncrypted field encodes byte-exactly like calls.json', () => {
  const { ciphertext, round } = ciphertextFromVector();
  assert.equal(round, BigInt(calls.set_commitment.reveal_round));
  const call = decorated.tx.commitments.setCommitment(calls.set_commitment.netuid, commitmentInfo(ciphertext, round));
  assert.equal(call.toHex(), calls.set_commitment.call_hex);
});

test('serve_axon encodes byte-exactly like calls.json', () => {
  const v = calls.serve_axon;
  assert.equal(ipv4ToInt(v.ip).toString(), v.ip_u128);
  assert.equal(intToIpv4(BigInt(v.ip_u128)), v.ip);
  const a = axonArgs({ netuid: v.netuid, ip: v.ip, port: v.port, version: v.version });
  const call = decorated.tx.subtensorModule.serveAxon(
    a.netuid,
    a.version,
    a.ip,
    a.port,
    a.ipType,
    a.protocol,
    a.placeholder1,
    a.placeholder2,
  );
  assert.equal(call.toHex(), v.call_hex);
});

test('RevealedCommitments value decodes to [block, text] with the SCALE string prefix stripped', () => {
  const value = registry.createType('Vec<(Bytes, u64)>', calls.revealed_commitments_value.hex);
  const entries = parseRevealedCommitments(value.toJSON() as Array<[string, number]>);
  assert.deepEqual(
    entries.map((e) => [e.block, e.text]),
    calls.revealed_commitments_value.decoded,
  );
});

test('axon helpers: versions, public/private addresses', () => {
  assert.equal(versionToInt('10.2.0'), 10002000);
  assert.equal(nonPublicReason('127.0.0.1'), 'loopback');
  assert.equal(nonPublicReason('10.1.2.3'), 'private (RFC 1918)');
  assert.equal(nonPublicReason('172.31.255.255'), 'private (RFC 1918)');
  assert.equal(nonPublicReason('172.32.0.1'), undefined);
  assert.equal(nonPublicReason('192.168.1.1'), 'private (RFC 1918)');
  assert.equal(nonPublicReason('100.100.0.1'), 'carrier-grade NAT (RFC 6598)');
  assert.equal(nonPublicReason('8.8.8.8'), undefined);
  assert.throws(() => ipv4ToInt('256.1.1.1'), /not an IPv4/);
  assert.throws(() => axonArgs({ netuid: 1, ip: '8.8.8.8', port: 0, version: 1 }), /not in 1..65535/);
});

test('blocksUntilNextEpoch follows subtensor (tempo - (block + netuid + 1) % (tempo + 1))', () => {
  assert.equal(blocksUntilNextEpoch(0, 1, 100), 98);
  assert.equal(blocksUntilNextEpoch(98, 1, 100), 0);
  assert.equal(blocksUntilNextEpoch(99, 1, 100), 100);
  assert.equal(blocksUntilNextEpoch(1000, 44, 360), 360 - ((1000 + 45) % 361));
});

test('a signed set_commitment for spec 381 decodes back and its sr25519 signature verifies', () => {
  const declared = registry.signedExtensions;
  registry.setSignedExtensions(declared, extensionOverridesFor(declared));
  const pair = new Keyring({ type: 'sr25519', ss58Format: 42 }).addFromUri('//ScoreMinerTest');
  const { ciphertext, round } = ciphertextFromVector();
  const call = decorated.tx.commitments.setCommitment(44, commitmentInfo(ciphertext, round));
  const genesisHash = '0x2f0555cc76fc2840a25a6ea3b9637146806f1f44b090c175ffde2a7e5ab36c03';
  const blockHash = u8aToHex(new Uint8Array(32).fill(0xab));
  const era = registry.createType('ExtrinsicEra', { current: 5_000_123, period: 128 });
  const runtimeVersion = registry.createType('RuntimeVersion', { specVersion: 381, transactionVersion: 1 }) as unknown as RuntimeVersion;

  const extrinsic = registry.createType('Extrinsic', call, { version: 4 });
  extrinsic.sign(pair, { blockHash, genesisHash, era, nonce: 7, tip: 0, runtimeVersion, signedExtensions: declared });
  const hex = extrinsic.toHex();

  const decoded = registry.createType('Extrinsic', hex);
  assert.equal(decoded.isSigned, true);
  assert.equal(decoded.signer.toString(), pair.address);
  assert.equal(decoded.nonce.toNumber(), 7);
  assert.equal(decoded.tip.toNumber(), 0);
  assert.equal(decoded.era.isMortalEra, true);
  assert.equal(decoded.era.asMortalEra.period.toNumber(), 128);
  assert.equal(decoded.method.toHex(), call.toHex());
  assert.equal(`${decoded.method.section}.${decoded.method.method}`, 'commitments.setCommitment');
  // the decoded call carries our field
  const info = (
    decoded.method.args[1] as unknown as {
      fields: Array<{
        isTimelockEncrypted: boolean;
        asTimelockEncrypted: { encrypted: { toHex(): string }; revealRound: { toBigInt(): bigint } };
      }>;
    }
  ).fields;
  assert.equal(info.length, 1);
  assert.equal(info[0].isTimelockEncrypted, true);
  assert.equal(info[0].asTimelockEncrypted.encrypted.toHex(), u8aToHex(ciphertext));
  assert.equal(info[0].asTimelockEncrypted.revealRound.toBigInt(), round);

  // rebuild the signing payload from the decoded extrinsic and verify the signature over it
  const payload = registry.createType(
    'ExtrinsicPayload',
    {
      method: decoded.method.toHex(),
      era: decoded.era,
      nonce: decoded.nonce,
      tip: decoded.tip,
      specVersion: 381,
      transactionVersion: 1,
      genesisHash,
      blockHash,
      mode: 0,
    },
    { version: 4 },
  );
  const message = payload.toU8a({ method: true });
  const signed = message.length > 256 ? blake2AsU8a(message) : message;
  assert.equal(signatureVerify(signed, decoded.signature.toU8a(), pair.address).isValid, true);
  // and a different nonce in the payload does not verify (the check can fail)
  const other = registry
    .createType(
      'ExtrinsicPayload',
      {
        method: decoded.method.toHex(),
        era: decoded.era,
        nonce: 8,
        tip: decoded.tip,
        specVersion: 381,
        transactionVersion: 1,
        genesisHash,
        blockHash,
        mode: 0,
      },
      { version: 4 },
    )
    .toU8a({ method: true });
  assert.equal(signatureVerify(other.length > 256 ? blake2AsU8a(other) : other, decoded.signature.toU8a(), pair.address).isValid, false);
});
