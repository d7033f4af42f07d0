/**
 * Subtensor connection and transaction submission (polkadot-js).
 *
 *   const api = await connectChain(config.chain);          // endpoint, then fallback, bounded by a timeout
 *   const api = await connectProvider(provider);           // any ProviderInterface (tests: ChopsticksProvider)
 *   const r = await submitTx(api, tx, hotkey.pair, { context: { hotkey, netuid } });
 *   ...
 *   await api.disconnect();                                 // always, in finally
 *
 * Subtensor declares transaction extensions polkadot-js does not know; the overrides below are applied only to
 * the extensions the connected runtime declares, and an extension that is neither known to polkadot-js nor
 * overridden here makes the connection fail loudly (signing would otherwise produce garbage the chain rejects).
 */
import { inspect } from 'node:util';
import { ApiPromise, WsProvider } from '@polkadot/api';
import type { SubmittableExtrinsic } from '@polkadot/api/types';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { ProviderInterface } from '@polkadot/rpc-provider/types';
import { findUnknownExtensions } from '@polkadot/types/extrinsic/signedExtensions';
import type { ExtDef } from '@polkadot/types/extrinsic/signedExtensions/types';
import type { DispatchError, EventRecord } from '@polkadot/types/interfaces';
import { MinerError } from '../core/errors.ts';
import { log } from '../core/log.ts';
import { redactUrl, redactUrls } from '../core/redact.ts';

/** Transaction-extension definitions for subtensor's custom extensions (docs/chain.md). */
export const SUBTENSOR_EXTENSION_OVERRIDES: ExtDef = {
  ChargeTransactionPaymentWrapper: { extrinsic: { tip: 'Compact<Balance>' }, payload: {} },
  SudoTransactionExtension: { extrinsic: {}, payload: {} },
  CheckShieldedTxValidity: { extrinsic: {}, payload: {} },
  SubtensorTransactionExtension: { extrinsic: {}, payload: {} },
  DrandPriority: { extrinsic: {}, payload: {} },
};

/** Mortal era length used for every transaction (like the Python SDK). */
const ERA_PERIOD = 128;

/** The overrides for just the extensions a runtime declares. */
export function extensionOverridesFor(declared: readonly string[]): ExtDef {
  const out: ExtDef = {};
  for (const name of declared) {
    const def = SUBTENSOR_EXTENSION_OVERRIDES[name];
    if (def) out[name] = def;
  }
  return out;
}

/** Declared extensions that neither polkadot-js nor our overrides know (must be empty to sign safely). */
export function unknownExtensions(declared: readonly string[]): string[] {
  return findUnknownExtensions([...declared], extensionOverridesFor(declared));
}

/**
 * Re-apply the runtime's declared extension list with only the matching overrides, and refuse unknown ones.
 * Called by connectProvider/connectChain; exported for code that builds its own ApiPromise.
 */
export function applyExtensionOverrides(api: ApiPromise): string[] {
  const declared = [...api.registry.signedExtensions];
  const unknown = unknownExtensions(declared);
  if (unknown.length > 0) {
    throw new MinerError(`the chain's runtime declares transaction extension(s) this toolkit does not know: ${unknown.join(', ')}`, {
      hint: 'the runtime changed; refusing to sign transactions it would reject. Update score-miner (lib/chain.ts SUBTENSOR_EXTENSION_OVERRIDES)',
    });
  }
  (api.registry as unknown as { setSignedExtensions(names: string[], user: ExtDef, noInitWarn: boolean): void }).setSignedExtensions(
    declared,
    extensionOverridesFor(declared),
    true,
  );
  return declared;
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface ConnectOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  /** Name used in messages (an endpoint URL: redacted here, see lib/core/redact.ts). */
  label?: string;
}

/** Create an ApiPromise over a ready-made provider (tests: `new ChopsticksProvider(chain)`). */
export async function connectProvider(provider: ProviderInterface, options: ConnectOptions = {}): Promise<ApiPromise> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const label = options.label === undefined ? 'the chain' : redactUrl(options.label);
  let api: ApiPromise | undefined;
  try {
    const creating = ApiPromise.create({
      provider,
      throwOnConnect: true,
      noInitWarn: true,
      signedExtensions: SUBTENSOR_EXTENSION_OVERRIDES,
    });
    api = await withTimeout(
      creating,
      timeoutMs,
      () =>
        new MinerError(`could not connect to ${label} within ${Math.round(timeoutMs / 1000)} s`, {
          hint: 'check the endpoint (BITTENSOR_SUBTENSOR_ENDPOINT), your network, or raise CHAIN_CONNECT_TIMEOUT_S',
        }),
    );
    applyExtensionOverrides(api);
    return api;
  } catch (error) {
    if (api) await api.disconnect().catch(() => undefined);
    else await provider.disconnect().catch(() => undefined);
    if (error instanceof MinerError) throw error;
    throw new MinerError(`could not connect to ${label}: ${redactUrls((error as Error)?.message ?? String(error))}`, {
      hint: 'check the endpoint (BITTENSOR_SUBTENSOR_ENDPOINT) and that the node is up',
      cause: error,
    });
  }
}

let consoleRedacted = false;

/**
 * @polkadot/rpc-provider logs on its own, through console.error, with the endpoint exactly as given
 * ("API-WS: disconnected from wss://...?apikey=...: 1006"): from the first connection on, URLs in what this
 * process writes with console.error / console.warn are redacted (lib/core/redact.ts). Once per process.
 */
function redactConsoleUrls(): void {
  if (consoleRedacted) return;
  consoleRedacted = true;
  for (const method of ['error', 'warn'] as const) {
    const write = console[method].bind(console);
    console[method] = (...args: unknown[]) =>
      write(...args.map((arg) => (typeof arg === 'string' ? redactUrls(arg) : arg instanceof Error ? redactUrls(inspect(arg)) : arg)));
  }
}

/** Connect to `endpoint`, then to `fallbackEndpoint` when the first cannot be reached in time. */
export async function connectChain(chain: { endpoint: string; fallbackEndpoint?: string; connectTimeoutMs: number }): Promise<ApiPromise> {
  const endpoints = [
    chain.endpoint,
    ...(chain.fallbackEndpoint && chain.fallbackEndpoint !== chain.endpoint ? [chain.fallbackEndpoint] : []),
  ];
  const failures: string[] = [];
  redactConsoleUrls();
  for (const endpoint of endpoints) {
    const shown = redactUrl(endpoint); // a provider's ?apikey= never reaches a log or a message
    log.info('connecting to subtensor', { endpoint: shown });
    const provider = new WsProvider(endpoint, 1_000, {}, chain.connectTimeoutMs);
    try {
      const api = await connectProvider(provider, { timeoutMs: chain.connectTimeoutMs, label: endpoint });
      log.info('connected', { endpoint: shown, spec: api.runtimeVersion.specVersion.toNumber() });
      return api;
    } catch (error) {
      const message = redactUrls(error instanceof Error ? error.message : String(error));
      // an unknown extension is not a connectivity problem: don't paper over it with the fallback
      if (/transaction extension/.test(message)) throw error;
      failures.push(message);
      log.warn('connection failed', { endpoint: shown, error: message });
    }
  }
  throw new MinerError(`cannot reach subtensor: ${failures.join('; ')}`, {
    hint: chain.fallbackEndpoint
      ? 'check your network and the endpoints in BITTENSOR_SUBTENSOR_ENDPOINT / BITTENSOR_SUBTENSOR_FALLBACK'
      : 'check your network, or set BITTENSOR_SUBTENSOR_FALLBACK to a second endpoint (e.g. your own subtensor node)',
  });
}

/** What the failed call was about, for one-line hints. */
export interface ErrorContext {
  hotkey?: string;
  netuid?: number;
}

/** A dispatch (or pool) error from the chain, with its `pallet.Error` name. */
export class ChainError extends MinerError {
  /** e.g. "commitments.AccountNotAllowedCommit", or "Invalid" for a transaction-pool rejection. */
  readonly chainError: string;
  constructor(chainError: string, message: string, hint?: string) {
    super(message, { hint });
    this.name = 'ChainError';
    this.chainError = chainError;
  }
}

/** Blocks until the subnet's next epoch starts (subtensor: tempo - (block + netuid + 1) % (tempo + 1)). */
export function blocksUntilNextEpoch(block: number, netuid: number, tempo: number): number {
  if (tempo === 0) return 0;
  return tempo - ((block + netuid + 1) % (tempo + 1));
}

async function epochEta(api: ApiPromise, netuid: number): Promise<number | undefined> {
  try {
    const tempo = Number((await api.query.subtensorModule.tempo(netuid)).toString());
    const block = (await api.rpc.chain.getHeader()).number.toNumber();
    return blocksUntilNextEpoch(block, netuid, tempo);
  } catch {
    return undefined;
  }
}

/** Explanation + next step for the errors a miner meets; `docs` is the runtime's own text as a fallback. */
async function explain(api: ApiPromise, name: string, docs: string, ctx: ErrorContext): Promise<{ message: string; hint?: string }> {
  const hk = ctx.hotkey ?? 'the hotkey';
  const net = ctx.netuid ?? '?';
  switch (name) {
    case 'AccountNotAllowedCommit':
    case 'HotKeyNotRegisteredInSubNet':
    case 'HotKeyNotRegisteredInNetwork':
    case 'HotKeyAccountNotExists':
      return {
        message: `hotkey ${hk} is not registered on netuid ${net}`,
        hint: `register it first (btcli subnet register --netuid ${net}), or check BITTENSOR_WALLET_HOT / SCOREVISION_NETUID point at the registered hotkey`,
      };
    case 'SpaceLimitExceeded': {
      const eta = ctx.netuid === undefined ? undefined : await epochEta(api, ctx.netuid);
      const when = eta === undefined ? 'at the next epoch' : `in ${eta} blocks (about ${Math.ceil((eta * 12) / 60)} min)`;
      return {
        message: `commit budget for this epoch used; next epoch ${eta === undefined ? 'soon' : `in ${eta} blocks`}`,
        hint: `commit again ${when}; the previous commitment of this epoch stays in force`,
      };
    }
    case 'TooManyFieldsInCommitmentInfo':
      return {
        message: 'the commitment has too many fields',
        hint: 'this is a bug in score-miner: a commitment carries exactly one field',
      };
    case 'ServingRateLimitExceeded':
      return {
        message: `axon for ${hk} was served too recently (rate limit about 50 blocks)`,
        hint: 'wait about 10 minutes and run the axon task again',
      };
    case 'InvalidIpAddress':
    case 'InvalidIpType':
    case 'InvalidPort':
      return {
        message: `the chain refused the axon address (${name})`,
        hint: 'set AXON_IP to your public IPv4 and AXON_PORT/MINER_PORT to a port from 1 to 65535',
      };
    case 'NotEnoughBalanceToStake':
    case 'NotEnoughBalanceToPayForRegistration':
    case 'InsufficientBalance':
      return { message: `not enough balance (${name})`, hint: 'fund the paying account (the coldkey for registration/stake) and retry' };
    default:
      return { message: docs || name, hint: undefined };
  }
}

/** Turn a DispatchError into a ChainError named `pallet.Error` with a one-line hint. */
async function explainDispatchError(api: ApiPromise, dispatchError: DispatchError, ctx: ErrorContext = {}): Promise<ChainError> {
  let full: string;
  let name: string;
  let docs = '';
  if (dispatchError.isModule) {
    const meta = api.registry.findMetaError(dispatchError.asModule);
    full = `${meta.section}.${meta.name}`;
    name = meta.name;
    docs = meta.docs.join(' ').trim();
  } else {
    full = dispatchError.type;
    name = dispatchError.type;
    docs = dispatchError.toString();
  }
  const { message, hint } = await explain(api, name, docs, ctx);
  return new ChainError(full, `${full}: ${message}`, hint);
}

/** Subtensor's `CustomTransactionError` codes ("1010: Invalid Transaction: Custom error: N"). */
const SUBTENSOR_CUSTOM_ERRORS: Record<number, { name: string; hint: string }> = {
  0: { name: 'ColdkeyInSwapSchedule', hint: 'the coldkey is scheduled for a swap; wait until the swap completes' },
  1: { name: 'StakeAmountTooLow', hint: 'stake at least 0.0005 TAO' },
  2: { name: 'BalanceTooLow', hint: 'the account has less than requested' },
  3: { name: 'SubnetDoesntExist', hint: 'check SCOREVISION_NETUID (Score Vision is 44 on finney)' },
  4: { name: 'HotkeyAccountDoesntExist', hint: 'the hotkey is not registered; register it first (btcli subnet register)' },
  5: { name: 'NotEnoughStakeToWithdraw', hint: 'not enough stake for this amount (fees included)' },
  6: { name: 'RateLimitExceeded', hint: 'too many transactions of this kind; wait a few blocks and rerun' },
  7: { name: 'InsufficientLiquidity', hint: "the subnet pool's liquidity is too low for this amount" },
  8: { name: 'SlippageTooHigh', hint: 'reduce the amount' },
  9: { name: 'TransferDisallowed', hint: 'this subnet does not allow stake transfers' },
  10: {
    name: 'HotKeyNotRegisteredInNetwork',
    hint: 'the hotkey is not registered on this subnet; register it first (btcli subnet register)',
  },
  11: { name: 'InvalidIpAddress', hint: 'set AXON_IP to your public IPv4' },
  12: {
    name: 'ServingRateLimitExceeded',
    hint: 'the axon was served too recently (rate limit about 50 blocks); wait about 10 minutes and rerun',
  },
  13: { name: 'InvalidPort', hint: 'set AXON_PORT/MINER_PORT to a port from 1 to 65535' },
  14: { name: 'TransactionPriorityTooLow', hint: 'another transaction from this account is pending; wait one block and rerun' },
  255: { name: 'BadRequest', hint: 'the runtime refused the call (e.g. staking disabled on this subnet, bad arguments)' },
};

/** Explain a transaction-pool rejection such as "1010: Invalid Transaction: Transaction is outdated". */
function explainPoolError(error: unknown): ChainError {
  const text = error instanceof Error ? error.message : String(error);
  let hint = 'rerun; if it persists, check the chain status and your endpoint';
  const custom = /Custom error: (\d+)|"custom":\s*(\d+)/i.exec(text);
  const known = custom ? SUBTENSOR_CUSTOM_ERRORS[Number(custom[1] ?? custom[2])] : undefined;
  if (known) {
    return new ChainError(
      `Invalid.Custom.${known.name}`,
      `transaction rejected by the node: ${known.name} (subtensor custom error ${custom![1] ?? custom![2]})`,
      known.hint,
    );
  }
  if (/outdated|stale|Priority is too low|AlreadyImported|already imported/i.test(text)) {
    hint = 'another transaction from this hotkey used the same nonce; wait one block and rerun';
  } else if (/bad signature|BadProof/i.test(text)) {
    hint = "the chain rejected the signature: the runtime's transaction extensions probably changed; update score-miner";
  } else if (/pay some fees|Payment/i.test(text)) {
    hint = 'the signing account cannot pay the transaction fee; send it a little TAO';
  } else if (/ancient birth block|AncientBirthBlock/i.test(text)) {
    hint = 'the transaction era expired; rerun';
  }
  return new ChainError('Invalid', `transaction rejected by the node: ${text}`, hint);
}

export interface SubmitOptions {
  /** Explicit nonce (default: the node's next index for the signer, which counts pending transactions). */
  nonce?: number;
  /** Mortal era in blocks (default ERA_PERIOD = 128). */
  era?: number;
  /** Reject if not included within this time (default 120 s). */
  timeoutMs?: number;
  /** Used to word the hints of dispatch errors. */
  context?: ErrorContext;
}

export interface SubmitResult {
  blockHash: string;
  blockNumber: number;
  txHash: string;
  events: EventRecord[];
}

/**
 * Sign with `signer`, submit, and wait for inclusion in a block. Rejects with a ChainError named after the
 * dispatch error (`commitments.AccountNotAllowedCommit: hotkey ... is not registered on netuid 44`) when the
 * extrinsic failed, or with the pool's reason when it was not accepted.
 */
export async function submitTx(
  api: ApiPromise,
  tx: SubmittableExtrinsic<'promise'>,
  signer: KeyringPair,
  options: SubmitOptions = {},
): Promise<SubmitResult> {
  const nonce = options.nonce ?? (await api.rpc.system.accountNextIndex(signer.address)).toNumber();
  const timeoutMs = options.timeoutMs ?? 120_000;
  const label = `${tx.method.section}.${tx.method.method}`;
  let unsub: (() => void) | undefined;
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<SubmitResult>((resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new MinerError(`${label} was not included in a block within ${Math.round(timeoutMs / 1000)} s`, {
              hint: 'the chain may be congested or your endpoint stalled; check `tasks/status.ts` and rerun',
            }),
          ),
        timeoutMs,
      );
      tx.signAndSend(signer, { nonce, era: options.era ?? ERA_PERIOD }, (result) => {
        const { status, dispatchError, events } = result;
        if (status.isInBlock || status.isFinalized) {
          const blockHash = (status.isInBlock ? status.asInBlock : status.asFinalized).toHex();
          if (dispatchError) {
            explainDispatchError(api, dispatchError, options.context).then(reject, reject);
            return;
          }
          api.rpc.chain
            .getHeader(blockHash)
            .then((header) => resolve({ blockHash, blockNumber: header.number.toNumber(), txHash: result.txHash.toHex(), events }))
            .catch(reject);
        } else if (status.isInvalid || status.isDropped || status.isUsurped) {
          reject(explainPoolError(new Error(`${label} ${status.type}`)));
        }
      })
        .then((u) => {
          if (settled) u();
          else unsub = u;
        })
        .catch((error: unknown) => reject(explainPoolError(error)));
    });
  } finally {
    settled = true;
    clearTimeout(timer);
    unsub?.();
  }
}

/** Current best block number. */
export async function bestBlockNumber(api: ApiPromise): Promise<number> {
  return (await api.rpc.chain.getHeader()).number.toNumber();
}

/** `SubtensorModule.Uids(netuid, hotkey)`: the uid, or undefined when the hotkey is not registered. */
export async function uidOf(api: ApiPromise, netuid: number, hotkey: string): Promise<number | undefined> {
  const value = await api.query.subtensorModule.uids(netuid, hotkey);
  const json = value.toJSON();
  return json === null || json === undefined ? undefined : Number(json);
}

/** connectChain for the configured endpoints, or connectProvider when a provider is given (tests). */
export async function openApi(
  chain: { endpoint: string; fallbackEndpoint?: string; connectTimeoutMs: number },
  provider?: ProviderInterface,
): Promise<ApiPromise> {
  return provider ? connectProvider(provider, { timeoutMs: chain.connectTimeoutMs }) : connectChain(chain);
}
