import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import { stringToU8a, u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, encodeAddress, mnemonicToMiniSecret, signatureVerify, sr25519PairFromSeed } from '@polkadot/util-crypto';
import {
  canonicalToExpandedSecret,
  expandedToCanonicalSecret,
  hotkeyPath,
  hotkeyPubPath,
  loadHotkey,
  loadHotkeyAddress,
} from '../../lib/chain/wallet.ts';
import { loadConfig } from '../../lib/core/config.ts';
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

// ---- loadHotkeyAddress: the public address only, for the server ----

const DEV_PHRASE_KEY = () => u8aToHex(sr25519PairFromSeed(mnemonicToMiniSecret(DEV_PHRASE)).publicKey);

/** The public file as bittensor wallets write it: the public fields, the secret ones null. */
function publicJson(address: string, publicKeyHex: string): Record<string, unknown> {
  return { accountId: publicKeyHex, publicKey: publicKeyHex, privateKey: null, secretPhrase: null, secretSeed: null, ss58Address: address };
}

function throwsMiner(run: () => unknown, pattern: RegExp, hintPattern?: RegExp): MinerError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof MinerError, `expected MinerError, got ${String(error)}`);
    assert.match(error.message, pattern);
    if (hintPattern) assert.match(error.hint ?? '', hintPattern);
    return error;
  }
  assert.fail(`expected a MinerError matching ${pattern}`);
}

test('loadHotkeyAddress: MINER_HOTKEY_SS58 first, any SS58 prefix, returned as prefix 42; the wallet is not read', () => {
  // A malformed public file and hotkey file under this name: the setting alone decides, nothing else is read.
  writeHotkey('set', 'not json');
  writeHotkey('setpub.txt', 'not json');
  const polkadotSpelling = encodeAddress(DEV_PHRASE_KEY(), 0);
  assert.notEqual(polkadotSpelling, DEV_PHRASE_ADDRESS);
  assert.deepEqual(loadHotkeyAddress({ ...wallet('set'), hotkeyAddress: polkadotSpelling }), {
    address: DEV_PHRASE_ADDRESS,
    publicKeyHex: DEV_PHRASE_KEY(),
    source: 'setting',
  });
  throwsMiner(
    () => loadHotkeyAddress({ ...wallet('set'), hotkeyAddress: '5NotAnAddress' }),
    /MINER_HOTKEY_SS58="5NotAnAddress" is not an SS58 address/,
  );
});

test('loadConfig validates MINER_HOTKEY_SS58 and hands it to the wallet settings', () => {
  assert.equal(loadConfig({ MINER_HOTKEY_SS58: ` ${DEV_PHRASE_ADDRESS} ` }).wallet.hotkeyAddress, DEV_PHRASE_ADDRESS);
  assert.equal(loadConfig({}).wallet.hotkeyAddress, undefined);
  throwsMiner(
    () => loadConfig({ MINER_HOTKEY_SS58: 'default' }),
    /^MINER_HOTKEY_SS58="default" is not valid: expected your hotkey's SS58 address/,
  );
});

test("loadHotkeyAddress: the wallet's public file {hotkey}pub.txt comes before the hotkey file", () => {
  const file = writeHotkey('pubbedpub.txt', publicJson(DEV_PHRASE_ADDRESS, DEV_PHRASE_KEY()));
  assert.equal(file, hotkeyPubPath(wallet('pubbed')));
  // The hotkey file beside it names another key: it is not consulted.
  writeHotkey('pubbed', walletJson(new Uint8Array(32).fill(3)));
  assert.deepEqual(loadHotkeyAddress(wallet('pubbed')), {
    address: DEV_PHRASE_ADDRESS,
    publicKeyHex: DEV_PHRASE_KEY(),
    source: 'public file',
    file,
  });
  // A public file alone (an encrypted or absent hotkey file) is enough.
  writeHotkey('onlypub.txt', { ss58Address: DEV_PHRASE_ADDRESS });
  assert.equal(loadHotkeyAddress(wallet('only')).address, DEV_PHRASE_ADDRESS);
  writeHotkey('encpub.txt', publicJson(DEV_PHRASE_ADDRESS, DEV_PHRASE_KEY()));
  writeHotkey('enc', '$NACL\x00\x01binary');
  assert.equal(loadHotkeyAddress(wallet('enc')).source, 'public file');
});

test('loadHotkeyAddress: the legacy hotkey file gives only its ss58Address; no secret is parsed or returned', () => {
  const seed = mnemonicToMiniSecret(DEV_PHRASE);
  const json = walletJson(seed, DEV_PHRASE);
  const file = writeHotkey('legacy', json);
  const found = loadHotkeyAddress(wallet('legacy'));
  assert.deepEqual(found, { address: DEV_PHRASE_ADDRESS, publicKeyHex: DEV_PHRASE_KEY(), source: 'hotkey file', file });
  assert.deepEqual(Object.keys(found).sort(), ['address', 'file', 'publicKeyHex', 'source']);
  const shown = JSON.stringify(found);
  for (const secret of [json.secretSeed, json.privateKey, DEV_PHRASE, 'bottom drive'])
    assert.ok(!shown.includes(String(secret)), `${secret} leaked`);
  // The secret fields are not even read: garbage in them does not matter (loadHotkey would refuse this file).
  writeHotkey('legacy-garbage', { ...json, secretSeed: '0xzz', secretPhrase: 'not a mnemonic', privateKey: 42 });
  assert.equal(loadHotkeyAddress(wallet('legacy-garbage')).address, DEV_PHRASE_ADDRESS);
});

test('loadHotkeyAddress: none of the three: the error names the setting, both files and how to make them', () => {
  const error = throwsMiner(
    () => loadHotkeyAddress(wallet('nothing')),
    /^no address for the miner hotkey: MINER_HOTKEY_SS58 is not set, and neither .*cold\/hotkeys\/nothingpub\.txt nor .*cold\/hotkeys\/nothing exists$/,
  );
  assert.match(error.hint ?? '', /set MINER_HOTKEY_SS58 to your hotkey's SS58 address/);
  assert.match(error.hint ?? '', /btcli wallet regen-hotkeypub/);
  assert.match(error.hint ?? '', /BITTENSOR_WALLET_PATH, BITTENSOR_WALLET_COLD, BITTENSOR_WALLET_HOT/);
});

test('loadHotkeyAddress: malformed, mismatched, encrypted and unreadable files are named, with the setting as a way out', () => {
  const settingHint = /MINER_HOTKEY_SS58/;
  writeHotkey('badpub.txt', '{"ss58Address": ');
  throwsMiner(() => loadHotkeyAddress(wallet('bad')), /badpub\.txt is malformed: not JSON/, settingHint);
  writeHotkey('arraypub.txt', `["${DEV_PHRASE_ADDRESS}"]`);
  throwsMiner(() => loadHotkeyAddress(wallet('array')), /arraypub\.txt is malformed: not a JSON object/, settingHint);
  writeHotkey('mismatchpub.txt', publicJson(DEV_PHRASE_ADDRESS, u8aToHex(new Uint8Array(32).fill(5))));
  throwsMiner(() => loadHotkeyAddress(wallet('mismatch')), /mismatchpub\.txt is malformed: publicKey is not the public key of ss58Address/);
  writeHotkey('noaddress', { secretSeed: u8aToHex(new Uint8Array(32)), publicKey: DEV_PHRASE_KEY() });
  throwsMiner(() => loadHotkeyAddress(wallet('noaddress')), /hotkeys\/noaddress is malformed: ss58Address is missing/, settingHint);
  writeHotkey('notss58', { ss58Address: 'not-an-address' });
  throwsMiner(() => loadHotkeyAddress(wallet('notss58')), /notss58 is malformed: ss58Address "not-an-address" is not an SS58 address/);
  writeHotkey('vault', '$ANSIBLE_VAULT;1.1;AES256\n6133');
  throwsMiner(
    () => loadHotkeyAddress(wallet('vault')),
    /hotkey file .*vault is encrypted and there is no public file .*vaultpub\.txt/,
    /MINER_HOTKEY_SS58.*regen-hotkeypub/,
  );
  // (Tests run as root, which reads any mode: a directory in the public file's place stands in for "unreadable".)
  mkdirSync(hotkeyPubPath(wallet('dir')), { recursive: true });
  throwsMiner(() => loadHotkeyAddress(wallet('dir')), /cannot read .*dirpub\.txt: EISDIR/, settingHint);
});
