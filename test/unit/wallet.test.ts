import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import { stringToU8a, u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, mnemonicToMiniSecret, signatureVerify, sr25519PairFromSeed } from '@polkadot/util-crypto';
import { canonicalToExpandedSecret, expandedToCanonicalSecret, hotkeyPath, loadHotkey } from '../../lib/chain/wallet.ts';
import { MinerError } from '../../lib/core/errors.ts';

// The well-known Substrate dev phrase; its raw (underived) sr25519 address is published in Substrate's docs.
const DEV_PHRASE = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
const DEV_PHRASE_ADDRESS = '5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV';

let root: string;
const wallet = (hotkey: string) => ({ path: root, coldkey: 'cold', hotkey });

function writeHotkey(name: string, content: string | Record<string, unknown>): string {
  const dir = path.join(root, 'cold', 'hotkeys');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o600 });
  return file;
}

/** A wallet file the way the Python SDK writes it (privateKey in canonical schnorrkel form). */
function walletJson(seed: Uint8Array, phrase?: string): Record<string, unknown> {
  const pair = sr25519PairFromSeed(seed);
  const address = new Keyring({ type: 'sr25519', ss58Format: 42 }).encodeAddress(pair.publicKey);
  return {
    accountId: u8aToHex(pair.publicKey),
    publicKey: u8aToHex(pair.publicKey),
    privateKey: u8aToHex(expandedToCanonicalSecret(pair.secretKey)),
    secretPhrase: phrase ?? null,
    secretSeed: u8aToHex(seed),
    ss58Address: address,
  };
}

function verifies(pair: { sign(m: Uint8Array): Uint8Array }, address: string): boolean {
  const msg = stringToU8a(`message ${Math.random()}`);
  return signatureVerify(msg, pair.sign(msg), address).isValid;
}

async function rejects(promise: Promise<unknown>, pattern: RegExp, hintPattern?: RegExp): Promise<MinerError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof MinerError, `expected MinerError, got ${String(error)}`);
    assert.match(error.message, pattern);
    if (hintPattern) assert.match(error.hint ?? '', hintPattern);
    return error;
  }
  assert.fail(`expected a rejection matching ${pattern}`);
}

before(async () => {
  await cryptoWaitReady();
  root = mkdtempSync(path.join(os.tmpdir(), 'score-wallet-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('canonical <-> expanded secret conversion round-trips and is a x8 of the scalar', () => {
  const seed = new Uint8Array(32).fill(7);
  const { secretKey } = sr25519PairFromSeed(seed);
  const canonical = expandedToCanonicalSecret(secretKey);
  assert.deepEqual(canonicalToExpandedSecret(canonical), secretKey);
  // the expanded scalar's low 3 bits are zero (it is the canonical scalar times the cofactor 8)
  assert.equal(secretKey[0] & 7, 0);
  assert.notDeepEqual(canonical.subarray(0, 32), secretKey.subarray(0, 32));
  assert.deepEqual(canonical.subarray(32), secretKey.subarray(32));
});

test('loads a hotkey from secretSeed', async () => {
  const seed = mnemonicToMiniSecret(DEV_PHRASE);
  const json = walletJson(seed, DEV_PHRASE);
  writeHotkey('seed', json);
  const hk = await loadHotkey(wallet('seed'), { env: {} });
  assert.equal(hk.source, 'secretSeed');
  assert.equal(hk.address, DEV_PHRASE_ADDRESS);
  assert.equal(hk.file, hotkeyPath(wallet('seed')));
  assert.ok(verifies(hk.pair, DEV_PHRASE_ADDRESS));
});

test('loads a hotkey from secretPhrase when there is no seed', async () => {
  const json = walletJson(mnemonicToMiniSecret(DEV_PHRASE), DEV_PHRASE);
  delete json.secretSeed;
  writeHotkey('phrase', json);
  const hk = await loadHotkey(wallet('phrase'), { env: {} });
  assert.equal(hk.source, 'secretPhrase');
  assert.equal(hk.address, DEV_PHRASE_ADDRESS);
  assert.ok(verifies(hk.pair, DEV_PHRASE_ADDRESS));
});

test('loads a hotkey from the canonical privateKey only (converted to the expanded form)', async () => {
  const seed = new Uint8Array(32).map((_, i) => i * 3 + 1);
  const json = walletJson(seed);
  delete json.secretSeed;
  delete json.secretPhrase;
  writeHotkey('priv', json);
  const hk = await loadHotkey(wallet('priv'), { env: {} });
  assert.equal(hk.source, 'privateKey');
  assert.equal(hk.address, json.ss58Address);
  assert.ok(verifies(hk.pair, hk.address), 'signatures made with the converted key verify against the public key');
});

test('a privateKey stored in expanded form (wrong) is refused, not used to sign garbage', async () => {
  const seed = new Uint8Array(32).fill(9);
  const json = walletJson(seed);
  json.privateKey = u8aToHex(sr25519PairFromSeed(seed).secretKey); // the expanded key, not canonical
  delete json.secretSeed;
  writeHotkey('priv-expanded', json);
  await rejects(loadHotkey(wallet('priv-expanded'), { env: {} }), /privateKey does not belong/);
});

test('missing file: the path and both ways out', async () => {
  const err = await rejects(loadHotkey(wallet('nope'), { env: {} }), /hotkey file not found: .*cold\/hotkeys\/nope/);
  assert.match(err.hint ?? '', /btcli wallet new_hotkey --wallet.name cold --wallet.hotkey nope/);
  assert.match(err.hint ?? '', /BITTENSOR_WALLET_PATH/);
});

test('encrypted hotkey files are recognised', async () => {
  for (const [name, content] of [
    ['nacl', '$NACL\x00\x01binary'],
    ['fernet', 'gAAAAABlxyz'],
    ['ansible', '$ANSIBLE_VAULT;1.1;AES256\n6133'],
  ]) {
    writeHotkey(name, content);
    await rejects(loadHotkey(wallet(name), { env: {} }), /is encrypted/, /without a password/);
  }
});

test('malformed files: bad JSON, no key material, bad address, bad hex, wrong seed length', async () => {
  writeHotkey('badjson', '{"secretSeed": "0x12",');
  await rejects(loadHotkey(wallet('badjson'), { env: {} }), /malformed: not JSON/);
  writeHotkey('array', '[1,2]');
  await rejects(loadHotkey(wallet('array'), { env: {} }), /malformed: not a JSON object/);
  writeHotkey('nokey', { ss58Address: DEV_PHRASE_ADDRESS });
  await rejects(loadHotkey(wallet('nokey'), { env: {} }), /none of secretSeed, secretPhrase, privateKey/);
  writeHotkey('noaddr', { secretSeed: u8aToHex(new Uint8Array(32)) });
  await rejects(loadHotkey(wallet('noaddr'), { env: {} }), /ss58Address is missing/);
  writeHotkey('badaddr', { secretSeed: u8aToHex(new Uint8Array(32)), ss58Address: 'not-an-address' });
  await rejects(loadHotkey(wallet('badaddr'), { env: {} }), /malformed: ss58Address "not-an-address" is not an SS58 address/);
  writeHotkey('badhex', { secretSeed: '0xzz', ss58Address: DEV_PHRASE_ADDRESS });
  await rejects(loadHotkey(wallet('badhex'), { env: {} }), /secretSeed is not a hex string/);
  writeHotkey('short', { secretSeed: '0x1234', ss58Address: DEV_PHRASE_ADDRESS });
  await rejects(loadHotkey(wallet('short'), { env: {} }), /secretSeed has 2 bytes, expected 32/);
  writeHotkey('badphrase', { secretPhrase: 'not a real mnemonic at all', ss58Address: DEV_PHRASE_ADDRESS });
  await rejects(loadHotkey(wallet('badphrase'), { env: {} }), /secretPhrase is not a valid BIP39 mnemonic/);
});

test('address mismatch is refused', async () => {
  const json = walletJson(new Uint8Array(32).fill(1));
  json.ss58Address = DEV_PHRASE_ADDRESS;
  writeHotkey('mismatch', json);
  await rejects(
    loadHotkey(wallet('mismatch'), { env: {} }),
    new RegExp(`derives 5\\w+ but the file says ss58Address ${DEV_PHRASE_ADDRESS}`),
  );
});

test('a hotkey path that cannot be read as a file is reported with the cause', async () => {
  // (Tests run as root, which reads any mode, so a directory in the file's place stands in for "unreadable".)
  mkdirSync(hotkeyPath(wallet('a-directory')), { recursive: true });
  await rejects(loadHotkey(wallet('a-directory'), { env: {} }), /cannot read hotkey file .*a-directory: EISDIR/);
});

test('dev URIs only with explicit permission', async () => {
  await rejects(loadHotkey(wallet('missing'), { env: { HOTKEY_URI: '//Alice' } }), /dev keys are not allowed/);
  const alice = await loadHotkey(wallet('missing'), { env: { HOTKEY_URI: '//Alice', ALLOW_DEV_KEYS: '1' } });
  assert.equal(alice.address, '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY');
  assert.equal(alice.source, 'uri');
  const bob = await loadHotkey(wallet('missing'), { env: {}, uri: '//Bob', allowDevKeys: true });
  assert.equal(bob.address, '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty');
});
