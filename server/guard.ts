/**
 * The request guard: the seam between the raw request and the challenge handler. It sees the headers and
 * the raw body bytes exactly as received (the signatures cover those bytes) and either resolves or throws a
 * HttpError carrying the status (401/403).
 *
 * Order (docs/security.md): stake gate first (needs only the caller's hotkey), then signature + nonce. Within the
 * signature step: headers present -> signature well-formed -> nonce acceptable -> signature verifies under
 * the scheme the nonce names -> nonce consumed. The nonce is recorded only after the signature verifies, so a
 * forged request cannot burn a real validator's nonce or grow the store.
 *
 * A forged request costs one hash of its body (at most MAX_BODY_BYTES) and at most two sr25519 verifications
 * (lib/protocol/signature.ts); server/http.ts's per-address limits decide how many get this far. Rejections are
 * logged once per reason and then counted (RepeatSummary), with the caller's strings cut short.
 */
import { accessSync, constants } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { u8aToHex } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import type { MinerConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { clip, type LogLevel, log, RepeatSummary } from '../lib/core/log.ts';
import {
  type BodyDigests,
  type BodyHashes,
  bodyDigests,
  decodeHotkey,
  HEADER,
  parseSignatureHex,
  readHeader,
  sameHotkey,
  verifyRequestSignature,
} from '../lib/protocol/signature.ts';
import { HttpError } from './http.ts';
import { NonceStore } from './nonces.ts';
import type { StakeSource } from './stake.ts';

export interface GuardRequest {
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body's digests (lazy), when the caller needs one too (the replay key): each hash still runs once. */
  digests?: BodyDigests;
}

export interface RequestGuard {
  /** Resolves when the request may proceed; throws HttpError(401|403) otherwise. */
  check(request: GuardRequest): Promise<void>;
  /** State for GET /health (toggles, metagraph sync, nonce store size). */
  health(): Record<string, unknown>;
  /** Stop background work (metagraph refresh, nonce purge timers). */
  close(): void;
}

/** Both toggles off (local testing, spot checks): every request proceeds. */
export const openGuard: RequestGuard = {
  async check() {},
  health: () => ({ blacklist: false, verify: false }),
  close() {},
};

export interface GuardOptions {
  blacklistEnabled: boolean;
  verifyEnabled: boolean;
  /** Stake gate threshold in TAO (`total_stake / 1e9 < minStakeTao` is rejected). */
  minStakeTao: number;
  /** SS58 hotkeys (any prefix) that skip the stake lookup; they still have to sign when verify is on. */
  validatorAllowlist?: readonly string[];
  /** Required when blacklistEnabled. The guard closes it on close(). */
  stakeSource?: StakeSource;
  /**
   * This miner's hotkey (SS58). The fiber scheme signs it; without it the fiber scheme can only be checked
   * against the request's own `miner-hotkey` header.
   */
  minerHotkey?: string;
  /** Injected by tests (clock, purge); default: a store with the 120 s window. The guard closes it. */
  nonces?: NonceStore;
  /** Injected by tests (clock, writer); default: one line per reason per minute. The guard stops it. */
  rejections?: RepeatSummary;
  /** Injected by tests to count the hashing; default BODY_HASHES. */
  bodyHashes?: BodyHashes;
}

/** Python's str(float) for the 403 text ("Insufficient stake of 999.5", "... of 12.0"). */
export function formatStake(tao: number): string {
  return Number.isInteger(tao) && Math.abs(tao) < 1e16 ? `${tao}.0` : String(tao);
}

/** The caller's strings in a rejection's log line (hotkey, nonce: up to 16 KiB of header each), cut short. */
function clipped(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([key, value]) => [key, typeof value === 'string' ? clip(value) : value]));
}

function decodeAllowlist(list: readonly string[]): Set<string> {
  const keys = new Set<string>();
  for (const entry of list) {
    const key = decodeHotkey(entry);
    if (!key) {
      throw new MinerError(`VALIDATOR_ALLOWLIST entry ${JSON.stringify(entry)} is not an SS58 hotkey address`, {
        hint: 'use comma-separated SS58 addresses such as 5DFwFpurRFaT5VtjdsATUnRakGhvUdgCghF61457QbWdsnJp',
      });
    }
    keys.add(u8aToHex(key));
  }
  return keys;
}

/** The real guard. Throws a MinerError at creation for a configuration that could never accept a request. */
export function createGuard(options: GuardOptions): RequestGuard {
  const { blacklistEnabled, verifyEnabled, minStakeTao, stakeSource } = options;
  if (blacklistEnabled && !stakeSource) {
    throw new MinerError('the stake gate is enabled but has no stake source', {
      hint: 'pass stakeSource to createGuard (createGuardFromConfig builds one from the chain)',
    });
  }
  const allowlist = decodeAllowlist(options.validatorAllowlist ?? []);
  const nonces = verifyEnabled ? (options.nonces ?? new NonceStore()) : undefined;
  const ownKey = options.minerHotkey === undefined ? undefined : decodeHotkey(options.minerHotkey);
  if (options.minerHotkey !== undefined && !ownKey) {
    throw new MinerError(`miner hotkey ${JSON.stringify(options.minerHotkey)} is not an SS58 address`, {
      hint: 'check MINER_HOTKEY_SS58 or the wallet file',
    });
  }

  const rejections = options.rejections ?? new RepeatSummary().start();

  /** Log (the first of its reason, then a count per interval) and throw the caller's answer. */
  function reject(status: 401 | 403, detail: string, reason: string, fields: Record<string, unknown> = {}): never {
    // Missing headers are what port scanners produce: keep them out of the default log level.
    const level: LogLevel = status === 401 && reason === 'missing header' ? 'debug' : 'info';
    rejections.note(`${status} ${reason}`, level, 'request rejected', { status, detail, reason, ...clipped(fields) });
    throw new HttpError(status, detail);
  }

  function requireHeader(headers: IncomingHttpHeaders, name: string): string {
    const value = readHeader(headers, name);
    if (value === undefined) reject(401, `Missing header: ${name}`, 'missing header');
    return value;
  }

  function stakeGate(headers: IncomingHttpHeaders): void {
    const hotkey = requireHeader(headers, HEADER.validatorHotkey);
    const key = decodeHotkey(hotkey);
    // Not an address at all: it cannot be in the metagraph either.
    if (!key) reject(403, 'Hotkey not found in metagraph', 'hotkey is not SS58', { hotkey });
    const hex = u8aToHex(key);
    if (allowlist.has(hex)) return;
    const rao = stakeSource!.lookup(hex);
    if (rao === undefined) reject(403, 'Hotkey not found in metagraph', 'not in metagraph', { hotkey });
    // Same float arithmetic as the reference miner: total_stake / 1e9 < threshold.
    const tao = Number(rao) / 1e9;
    if (tao < minStakeTao) reject(403, `Insufficient stake of ${formatStake(tao)}`, 'stake below threshold', { hotkey, min: minStakeTao });
  }

  /** The miner hotkey as a fiber signer put it in its message (one spelling: one message to verify). */
  function fiberHotkey(headers: IncomingHttpHeaders): string | undefined {
    const claimed = readHeader(headers, HEADER.minerHotkey);
    if (!options.minerHotkey) return claimed;
    // The caller may spell our key with another SS58 prefix; it sends the spelling it signed (fiber uses one string for both).
    if (claimed && claimed !== options.minerHotkey && sameHotkey(claimed, options.minerHotkey)) return claimed;
    return options.minerHotkey;
  }

  function signatureGate(headers: IncomingHttpHeaders, body: Buffer, given: BodyDigests | undefined): void {
    const hotkey = requireHeader(headers, HEADER.validatorHotkey);
    const nonce = requireHeader(headers, HEADER.nonce);
    const signatureHex = requireHeader(headers, HEADER.signature);

    const signature = parseSignatureHex(signatureHex);
    if (!signature) reject(401, 'Invalid signature', 'signature is not 0x + 128 hex', { hotkey });
    const signer = decodeHotkey(hotkey);
    if (!signer) reject(401, 'Invalid signature', 'validator-hotkey is not SS58', { hotkey });

    const verdict = nonces!.check(nonce);
    if (verdict !== 'ok') reject(401, 'Invalid nonce', `nonce ${verdict}`, { hotkey, nonce });

    // Hashed here, once: only now can the body's hash matter.
    const digests = given ?? bodyDigests(body, options.bodyHashes);
    const scheme = verifyRequestSignature({ nonce, digests, signature, signerPublicKey: signer, minerHotkey: fiberHotkey(headers) });
    if (!scheme) reject(401, 'Invalid signature', 'does not verify', { hotkey });

    // Checked again atomically: two requests racing with one nonce cannot both pass.
    if (!nonces!.consume(nonce)) reject(401, 'Invalid nonce', 'nonce replayed', { hotkey, nonce });
    log.debug('request verified', { hotkey: clip(hotkey), scheme });
  }

  return {
    async check({ headers, body, digests }) {
      if (blacklistEnabled) stakeGate(headers);
      if (verifyEnabled) signatureGate(headers, body, digests);
    },
    health() {
      return {
        blacklist: blacklistEnabled,
        verify: verifyEnabled,
        min_stake_tao: blacklistEnabled ? minStakeTao : undefined,
        allowlist: allowlist.size,
        miner_hotkey: options.minerHotkey,
        nonces: nonces?.size,
        metagraph: blacklistEnabled ? stakeSource?.health() : undefined,
      };
    },
    close() {
      nonces?.close();
      stakeSource?.close?.();
      rejections.stop();
    },
  };
}

/** The ways out when verification is on and the miner hotkey's address cannot be found. */
const ADDRESS_WAYS_OUT =
  "set MINER_HOTKEY_SS58 to the hotkey's SS58 address (tasks/start.ts does), or mount the wallet read-only " +
  '(docker run -v ~/.bittensor/wallets:/wallets:ro -e BITTENSOR_WALLET_PATH=/wallets -e BITTENSOR_WALLET_COLD=<coldkey name> ' +
  "-e BITTENSOR_WALLET_HOT=<hotkey name>: the server reads <hotkey name>pub.txt, else the hotkey file's ss58Address), " +
  'or for local testing only set BLACKLIST_ENABLED=false and VERIFY_ENABLED=false';

export interface GuardFromConfigDeps {
  /** The miner's hotkey address; default: lib/chain/wallet.ts loadHotkeyAddress(config.wallet). */
  loadMinerHotkey?: (config: MinerConfig) => Promise<string>;
  /** Default: createChainStakeSource(config) from server/stake-chain.ts, synced before returning. */
  createStakeSource?: (config: MinerConfig) => Promise<StakeSource>;
}

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** Only the public address: the server verifies, it never signs, so no secret is read or kept. */
async function defaultMinerHotkey(config: MinerConfig): Promise<string> {
  const { hotkeyPath, loadHotkeyAddress } = await import('../lib/chain/wallet.ts');
  const found = loadHotkeyAddress(config.wallet);
  log.info('miner hotkey address', { source: found.source, file: found.file });
  if (found.source !== 'setting' && readable(hotkeyPath(config.wallet))) {
    // Not read, but within reach: a compromised decoder in this process could read the secret too.
    log.warn('the hotkey file with its secret is readable by the miner; it needs only the address', {
      file: hotkeyPath(config.wallet),
      hint: 'set MINER_HOTKEY_SS58 and mount no wallet (tasks/start.ts does this), or mount only the public file',
    });
  }
  return found.address;
}

async function defaultStakeSource(config: MinerConfig): Promise<StakeSource> {
  const { createChainStakeSource } = await import('./stake-chain.ts');
  return createChainStakeSource(config);
}

/**
 * The guard the server runs, from configuration. Logs the toggles, loads the miner hotkey (verify), syncs the
 * metagraph (blacklist) and fails with a MinerError that names what is missing and the ways out — at
 * start-up, before the port opens, never as a 500 on the first request. Both toggles off: openGuard.
 */
export async function createGuardFromConfig(config: MinerConfig, deps: GuardFromConfigDeps = {}): Promise<RequestGuard> {
  const { blacklistEnabled, verifyEnabled } = config.security;
  log.info(`Blacklist: ${blacklistEnabled ? 'ENABLED' : 'DISABLED'}`);
  log.info(`Verify: ${verifyEnabled ? 'ENABLED' : 'DISABLED'}`);
  if (!blacklistEnabled && !verifyEnabled) {
    log.warn('All security DISABLED - local testing only');
    return openGuard;
  }
  await cryptoWaitReady();

  // The allow-list is checked first: a typo there should not wait for a chain sync to be reported.
  decodeAllowlist(config.security.validatorAllowlist);

  let minerHotkey: string | undefined;
  if (verifyEnabled) {
    try {
      minerHotkey = await (deps.loadMinerHotkey ?? defaultMinerHotkey)(config);
    } catch (error) {
      const cause = error instanceof Error ? error.message : String(error);
      throw new MinerError(`request verification is enabled but the miner hotkey's address cannot be found: ${cause}`, {
        hint: ADDRESS_WAYS_OUT,
        cause: error,
      });
    }
    log.info('miner hotkey loaded', { hotkey: minerHotkey });
  }

  let stakeSource: StakeSource | undefined;
  if (blacklistEnabled) {
    try {
      stakeSource = await (deps.createStakeSource ?? defaultStakeSource)(config);
    } catch (error) {
      // Name the root cause once (the sync error wraps the connection error).
      const root = error instanceof Error && error.cause instanceof Error ? error.cause : error;
      const cause = root instanceof Error ? root.message : String(root);
      throw new MinerError(
        `the stake gate is enabled but the metagraph of netuid ${config.chain.netuid} cannot be read from ${config.chain.endpoint}: ${cause}`,
        {
          hint:
            'check BITTENSOR_SUBTENSOR_ENDPOINT / SCOREVISION_NETUID and network access to the endpoint; ' +
            'for local testing only set BLACKLIST_ENABLED=false and VERIFY_ENABLED=false',
          cause: error,
        },
      );
    }
  }

  return createGuard({
    blacklistEnabled,
    verifyEnabled,
    minStakeTao: config.security.minStakeTao,
    validatorAllowlist: config.security.validatorAllowlist,
    stakeSource,
    minerHotkey,
  });
}
