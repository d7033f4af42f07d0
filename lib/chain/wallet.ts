/**
 * The miner's hotkey: loaded from a Bittensor wallet file, checked against the address the file claims.
 *
 *   {BITTENSOR_WALLET_PATH}/{coldkey}/hotkeys/{hotkey}         (JSON: secretSeed | secretPhrase | privateKey, ss58Address)
 *   {BITTENSOR_WALLET_PATH}/{coldkey}/hotkeys/{hotkey}pub.txt  (JSON: ss58Address, publicKey, accountId; no secret)
 *
 * loadHotkey builds the key pair, for the tasks that sign on the operator's machine (commit, axon, challenge).
 * loadHotkeyAddress reads only the public address, for the server, which only verifies (docs/security.md,
 * "What the container holds").
 *
 * Key material is tried in the order secretSeed (32-byte mini secret) -> secretPhrase (mnemonic) -> privateKey
 * (canonical schnorrkel scalar||nonce, converted to the ed25519-expanded form polkadot-js expects). The derived
 * address must equal `ss58Address`. Dev URIs (`//Alice`) are honoured only when explicitly allowed (tests).
 * The coldkey is never read.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { hexToU8a, isHex, stringToU8a, u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, encodeAddress, mnemonicValidate, signatureVerify } from '@polkadot/util-crypto';
import type { MinerConfig } from '../core/config.ts';
import { MinerError } from '../core/errors.ts';
import { log } from '../core/log.ts';
import { decodeHotkey } from '../protocol/signature.ts';

const SS58_PREFIX = 42;

export type HotkeySource = 'secretSeed' | 'secretPhrase' | 'privateKey' | 'uri';

export interface Hotkey {
  pair: KeyringPair;
  /** SS58 (prefix 42) address of the hotkey. */
  address: string;
  /** 0x-hex of the 32-byte sr25519 public key. */
  publicKeyHex: string;
  source: HotkeySource;
  /** The wallet file it came from (absent for a dev URI). */
  file?: string;
}

export interface LoadHotkeyOptions {
  /** Environment for HOTKEY_URI / ALLOW_DEV_KEYS (default process.env). */
  env?: Record<string, string | undefined>;
  /** Accept a dev URI such as //Alice (tests only). Same as ALLOW_DEV_KEYS=1. */
  allowDevKeys?: boolean;
  /** Use this URI instead of the wallet file (requires allowDevKeys or ALLOW_DEV_KEYS=1). */
  uri?: string;
}

type WalletNames = Pick<MinerConfig['wallet'], 'path' | 'coldkey' | 'hotkey'>;

const ENCRYPTED_MARKERS = ['$NACL', 'gAAAAA', '$ANSIBLE_VAULT'];

export function hotkeyPath(wallet: WalletNames): string {
  return path.join(wallet.path, wallet.coldkey, 'hotkeys', wallet.hotkey);
}

/** The hotkey's public file, which current bittensor wallets write next to the hotkey file. */
export function hotkeyPubPath(wallet: WalletNames): string {
  return `${hotkeyPath(wallet)}pub.txt`;
}

function keyring(): Keyring {
  return new Keyring({ type: 'sr25519', ss58Format: SS58_PREFIX });
}

function toHotkey(pair: KeyringPair, source: HotkeySource, file?: string): Hotkey {
  return { pair, address: pair.address, publicKeyHex: u8aToHex(pair.publicKey), source, file };
}

/**
 * Canonical schnorrkel secret (scalar || nonce, 64 bytes) -> the ed25519-expanded form polkadot-js uses
 * (scalar multiplied by the cofactor 8: a 3-bit left shift of the 32-byte little-endian scalar; nonce unchanged).
 */
export function canonicalToExpandedSecret(canonical: Uint8Array): Uint8Array {
  if (canonical.length !== 64) throw new Error(`expected a 64-byte secret key, got ${canonical.length} bytes`);
  const out = new Uint8Array(64);
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const b = canonical[i];
    out[i] = ((b << 3) | carry) & 0xff;
    carry = b >> 5;
  }
  out.set(canonical.subarray(32), 32);
  return out;
}

/** Inverse of canonicalToExpandedSecret (used by tests to write wallet files like the Python SDK does). */
export function expandedToCanonicalSecret(expanded: Uint8Array): Uint8Array {
  if (expanded.length !== 64) throw new Error(`expected a 64-byte secret key, got ${expanded.length} bytes`);
  const out = new Uint8Array(64);
  for (let i = 0; i < 32; i++) {
    const next = i + 1 < 32 ? expanded[i + 1] : 0;
    out[i] = ((expanded[i] >> 3) | (next << 5)) & 0xff;
  }
  out.set(expanded.subarray(32), 32);
  return out;
}

function malformed(file: string, what: string): MinerError {
  return new MinerError(`hotkey file ${file} is malformed: ${what}`, {
    hint: 'regenerate it with `btcli wallet regen_hotkey` from your mnemonic, or point BITTENSOR_WALLET_PATH/BITTENSOR_WALLET_COLD/BITTENSOR_WALLET_HOT at a valid hotkey file',
  });
}

function hexField(file: string, name: string, value: unknown, bytes: number): Uint8Array {
  if (typeof value !== 'string' || !isHex(value.startsWith('0x') ? value : `0x${value}`)) {
    throw malformed(file, `${name} is not a hex string`);
  }
  const u8a = hexToU8a(value.startsWith('0x') ? value : `0x${value}`);
  if (u8a.length !== bytes) throw malformed(file, `${name} has ${u8a.length} bytes, expected ${bytes}`);
  return u8a;
}

/**
 * Parse the text of a hotkey file into a key pair (after `cryptoWaitReady()`); `file` is used in messages.
 * Throws MinerError for an encrypted file, malformed JSON, missing key material or an address mismatch.
 */
function parseHotkeyFile(text: string, file: string): Hotkey {
  const trimmed = text.trimStart();
  const marker = ENCRYPTED_MARKERS.find((m) => trimmed.startsWith(m));
  if (marker) {
    throw new MinerError(`hotkey file ${file} is encrypted (${marker}...); the miner needs an unencrypted hotkey`, {
      hint: 'regenerate the hotkey without a password (`btcli wallet regen_hotkey --no-use-password`) — the coldkey can stay encrypted',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch (error) {
    throw malformed(file, `not JSON (${(error as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw malformed(file, 'not a JSON object');
  const data = json as Record<string, unknown>;
  const claimed = data.ss58Address;
  if (typeof claimed !== 'string' || claimed === '') throw malformed(file, 'ss58Address is missing');
  const claimedKey = decodeHotkey(claimed);
  if (!claimedKey) throw malformed(file, `ss58Address ${JSON.stringify(claimed)} is not an SS58 address`);

  const kr = keyring();
  let pair: KeyringPair;
  let source: HotkeySource;
  if (data.secretSeed !== undefined && data.secretSeed !== null) {
    pair = kr.addFromSeed(hexField(file, 'secretSeed', data.secretSeed, 32));
    source = 'secretSeed';
  } else if (typeof data.secretPhrase === 'string' && data.secretPhrase.trim() !== '') {
    const phrase = data.secretPhrase.trim().split(/\s+/).join(' ');
    if (!mnemonicValidate(phrase)) throw malformed(file, 'secretPhrase is not a valid BIP39 mnemonic');
    pair = kr.addFromMnemonic(phrase);
    source = 'secretPhrase';
  } else if (data.privateKey !== undefined && data.privateKey !== null) {
    const canonical = hexField(file, 'privateKey', data.privateKey, 64);
    const publicKey = data.publicKey !== undefined ? hexField(file, 'publicKey', data.publicKey, 32) : claimedKey;
    pair = kr.addFromPair({ publicKey, secretKey: canonicalToExpandedSecret(canonical) });
    // addFromPair trusts the public key it is given: prove the secret matches it with a real signature.
    const probe = stringToU8a('score-miner hotkey check');
    if (!signatureVerify(probe, pair.sign(probe), publicKey).isValid) {
      throw malformed(file, 'privateKey does not belong to publicKey/ss58Address');
    }
    source = 'privateKey';
  } else {
    throw malformed(file, 'none of secretSeed, secretPhrase, privateKey is present');
  }

  if (u8aToHex(pair.publicKey) !== u8aToHex(claimedKey)) {
    throw new MinerError(`hotkey file ${file}: the key derives ${pair.address} but the file says ss58Address ${claimed}`, {
      hint: 'the file was edited or mixed up; regenerate it with `btcli wallet regen_hotkey` from the mnemonic of the registered hotkey',
    });
  }
  return toHotkey(pair, source, file);
}

/**
 * Load the configured hotkey. With a dev URI (options.uri or HOTKEY_URI) and explicit permission
 * (options.allowDevKeys or ALLOW_DEV_KEYS=1) the URI is used instead of the file.
 */
export async function loadHotkey(wallet: WalletNames, options: LoadHotkeyOptions = {}): Promise<Hotkey> {
  await cryptoWaitReady();
  const env = options.env ?? process.env;
  const uri = options.uri ?? (env.HOTKEY_URI?.trim() || undefined);
  if (uri !== undefined) {
    const allowed = options.allowDevKeys === true || env.ALLOW_DEV_KEYS === '1' || env.ALLOW_DEV_KEYS === 'true';
    if (!allowed) {
      throw new MinerError('HOTKEY_URI is set but dev keys are not allowed', {
        hint: 'unset HOTKEY_URI to use your wallet file (dev keys such as //Alice are for local test chains; set ALLOW_DEV_KEYS=1 only there)',
      });
    }
    try {
      return toHotkey(keyring().addFromUri(uri), 'uri');
    } catch (error) {
      throw new MinerError(`HOTKEY_URI is not a valid key URI (${(error as Error).message})`, { hint: 'use a form such as //Alice' });
    }
  }

  const file = hotkeyPath(wallet);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new MinerError(`hotkey file not found: ${file}`, {
        hint:
          `either create/restore it (\`btcli wallet new_hotkey --wallet.name ${wallet.coldkey} --wallet.hotkey ${wallet.hotkey}\`, ` +
          'or `btcli wallet regen_hotkey` from its mnemonic), or point BITTENSOR_WALLET_PATH, BITTENSOR_WALLET_COLD and ' +
          'BITTENSOR_WALLET_HOT at the hotkey you already have',
      });
    }
    if (code === 'EACCES') {
      throw new MinerError(`hotkey file ${file} is not readable by this user`, {
        hint: `fix its owner/mode (chmod 600 ${file}) or run as the wallet's owner`,
      });
    }
    throw new MinerError(`cannot read hotkey file ${file}: ${(error as Error).message}`, { hint: 'check the path and permissions' });
  }
  const hotkey = parseHotkeyFile(text, file);
  try {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) log.warn(`hotkey file ${file} is readable by other users (mode ${mode.toString(8)}); run chmod 600 on it`);
  } catch {
    // the file was just read; a failing stat is not worth failing over
  }
  return hotkey;
}

export type HotkeyAddressSource = 'setting' | 'public file' | 'hotkey file';

/** The hotkey's public address, and where it came from: nothing secret. */
export interface HotkeyAddress {
  /** SS58 (prefix 42) address. */
  address: string;
  /** 0x-hex of the 32-byte sr25519 public key. */
  publicKeyHex: string;
  source: HotkeyAddressSource;
  /** The file it was read from (absent for the setting). */
  file?: string;
}

/** Where the address may come from: the wallet's names, and MINER_HOTKEY_SS58 (config.wallet.hotkeyAddress). */
export type HotkeyAddressOrigin = WalletNames & { hotkeyAddress?: string };

const ADDRESS_SETTING_HINT = "set MINER_HOTKEY_SS58 to your hotkey's SS58 address (the server needs nothing else)";

function addressOf(key: Uint8Array, source: HotkeyAddressSource, file?: string): HotkeyAddress {
  const found: HotkeyAddress = { address: encodeAddress(key, SS58_PREFIX), publicKeyHex: u8aToHex(key), source };
  if (file !== undefined) found.file = file;
  return found;
}

/** The text of a file, or undefined when it does not exist; other failures are errors that name the setting. */
function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'EACCES') {
      throw new MinerError(`${file} is not readable by this user (uid ${process.getuid?.() ?? '?'})`, {
        hint: `${ADDRESS_SETTING_HINT}, or make the file readable by the user the miner runs as`,
      });
    }
    throw new MinerError(`cannot read ${file}: ${(error as Error).message}`, { hint: ADDRESS_SETTING_HINT });
  }
}

/**
 * The public key a wallet file names in `ss58Address`, parsed so that no other field is ever kept: the JSON
 * reviver drops every other field (secretSeed, secretPhrase, privateKey) as it is parsed. `publicKey` and
 * `accountId`, where the public file has them, must name the same key.
 */
function readAddressField(text: string, file: string, crossCheck: readonly string[]): Uint8Array {
  const wanted = new Set(['ss58Address', ...crossCheck]);
  const bad = (what: string) =>
    new MinerError(`${file} is malformed: ${what}`, {
      hint: `${ADDRESS_SETTING_HINT}, or rewrite the file (\`btcli wallet regen-hotkeypub\` writes the public file)`,
    });
  let root: unknown;
  try {
    root = JSON.parse(text, (key, value) => (key === '' || wanted.has(key) ? value : undefined));
  } catch (error) {
    throw bad(`not JSON (${(error as Error).message})`);
  }
  if (root === null || typeof root !== 'object' || Array.isArray(root)) throw bad('not a JSON object');
  const fields = root as Record<string, unknown>;
  const claimed = fields.ss58Address;
  if (typeof claimed !== 'string' || claimed === '') throw bad('ss58Address is missing');
  const key = decodeHotkey(claimed);
  if (!key) throw bad(`ss58Address ${JSON.stringify(claimed)} is not an SS58 address`);
  for (const name of crossCheck) {
    const value = fields[name];
    if (value === undefined || value === null) continue;
    const hex = typeof value === 'string' ? (value.startsWith('0x') ? value : `0x${value}`).toLowerCase() : '';
    if (hex !== u8aToHex(key)) throw bad(`${name} is not the public key of ss58Address ${claimed}`);
  }
  return key;
}

/**
 * The miner hotkey's public address, for the server, which only verifies: MINER_HOTKEY_SS58, else the wallet's
 * public file `{hotkey}pub.txt`, else the `ss58Address` of the hotkey file itself. Never builds a key pair and
 * never keeps a secret field; the coldkey is never read. Throws a MinerError naming all three ways when none
 * gives an address.
 */
export function loadHotkeyAddress(origin: HotkeyAddressOrigin): HotkeyAddress {
  if (origin.hotkeyAddress !== undefined) {
    const key = decodeHotkey(origin.hotkeyAddress.trim());
    if (!key) {
      throw new MinerError(`MINER_HOTKEY_SS58=${JSON.stringify(origin.hotkeyAddress)} is not an SS58 address`, {
        hint: "set it to your hotkey's SS58 address, as `btcli wallet list` shows it",
      });
    }
    return addressOf(key, 'setting');
  }

  const pubFile = hotkeyPubPath(origin);
  const pubText = readIfPresent(pubFile);
  if (pubText !== undefined) return addressOf(readAddressField(pubText, pubFile, ['publicKey', 'accountId']), 'public file', pubFile);

  const file = hotkeyPath(origin);
  const text = readIfPresent(file);
  if (text === undefined) {
    throw new MinerError(`no address for the miner hotkey: MINER_HOTKEY_SS58 is not set, and neither ${pubFile} nor ${file} exists`, {
      hint:
        `${ADDRESS_SETTING_HINT}, or make the wallet's public file ${pubFile} (\`btcli wallet regen-hotkeypub\`) or the hotkey file ` +
        'readable there (BITTENSOR_WALLET_PATH, BITTENSOR_WALLET_COLD, BITTENSOR_WALLET_HOT name it)',
    });
  }
  const marker = ENCRYPTED_MARKERS.find((m) => text.trimStart().startsWith(m));
  if (marker) {
    throw new MinerError(`hotkey file ${file} is encrypted and there is no public file ${pubFile} to read the address from`, {
      hint: `${ADDRESS_SETTING_HINT}, or write the public file (\`btcli wallet regen-hotkeypub\`)`,
    });
  }
  return addressOf(readAddressField(text, file, []), 'hotkey file', file);
}
