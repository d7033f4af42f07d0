/**
 * A real subtensor runtime (spec 300 wasm) running in-process with chopsticks-core, for integration tests.
 *
 *   const local = await startLocalChain();            // ~3-5 s; one per test file (chopsticks' executor is global)
 *   local.api                                          // ApiPromise over ChopsticksProvider (extension overrides applied)
 *   local.newProvider()                                // another provider on the same chain, for code under test
 *   await local.registerHotkey(1, hotkeyAddress)       // burned_register by //Alice (coldkey) on netuid 1
 *   await local.addStake(hotkeyAddress, 1, 10n ** 9n)  // //Alice stakes on the hotkey
 *   await local.fund(address, 10n ** 12n)              // set free balance (and keep TotalIssuance consistent)
 *   local.drand.publicKeyHex                           // use as DRAND_PUBLIC_KEY for the code under test
 *   await local.revealPending(1)                       // what the pallet does when the drand round arrives
 *   const stop = local.autoReveal(1)                   // ... repeatedly in the background
 *   const ws = await local.serveWs()                   // JSON-RPC over ws://127.0.0.1:<port> (subprocesses)
 *   await local.close()
 *
 * Genesis comes from the wasm's own GenesisBuilder (preset "default" + dev balances + Sudo = //Alice),
 * cached in $TMPDIR/score-miner-chain/<sha256 of wasm + options>.json. The wasm imports BLS host functions
 * chopsticks lacks (allowUnresolvedImports), so the drand/reveal paths of the pallet cannot run: the harness
 * plays drand with its own BLS key and reveals by decrypting CommitmentOf and writing RevealedCommitments.
 * Blocks are built instantly when a transaction arrives (buildBlockMode Instant); `newBlock()` builds one on demand.
 *
 * Adjustments made at start (each a real-runtime limitation, not a shortcut around the code under test):
 * - Babe.EpochIndex pushed far ahead: chopsticks cannot complete this BABE runtime's 15-block session rotation,
 *   whose on_initialize then claims the full block weight and every transaction fails with exhaustsResources;
 * - registration limits of netuid 0/1 raised, SubtokenEnabled(1) = true (so tests can register and stake).
 * The chain starts at block 1 with netuids 0 (root) and 1; //Alice..//Ferdie hold 1e9 TAO each.
 * Failed transactions: chopsticks reports a refused transaction only as status Invalid; the reason is in
 * `applyErrors` (set LOCALCHAIN_DEBUG=1 to print them). CHOPSTICKS_LOG_LEVEL (default error) for its logger.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Blockchain, ChopsticksProvider as ChopsticksProviderType, Genesis } from '@acala-network/chopsticks-core';
import type { ApiPromise } from '@polkadot/api';
import type { SubmittableExtrinsic } from '@polkadot/api/types';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { compactAddLength, hexToString, hexToU8a, stringToU8a, u8aToHex } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { connectProvider, type SubmitResult, submitTx } from '../../lib/chain/connection.ts';
import { decryptTimelock, drandPublicKeyFromSecret, scaleDecodeString, signDrandRound } from '../../lib/chain/timelock.ts';
import { FIXTURES_DIR } from './fixtures.ts';

export const RUNTIME_WASM = process.env.SUBTENSOR_RUNTIME_WASM ?? path.join(FIXTURES_DIR, 'chain/subtensor-runtime-spec300.wasm');
export const DEV_ACCOUNTS = ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie'] as const;
/** Free balance of each dev account at genesis (rao): 1e9 TAO. */
export const DEV_BALANCE = 10n ** 18n;
/** Netuid that exists at genesis in this runtime (0 is root). */
export const TEST_NETUID = 1;
/** The test drand beacon's secret key (BLS12-381 scalar, big-endian). Not a secret: tests only. */
export const TEST_DRAND_SECRET = hexToU8a('0x2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a01');

type Chopsticks = typeof import('@acala-network/chopsticks-core');
let chopsticksModule: Promise<Chopsticks> | undefined;

/** Import chopsticks with its (pino) logger quiet unless CHOPSTICKS_LOG_LEVEL says otherwise. */
function chopsticks(): Promise<Chopsticks> {
  if (!chopsticksModule) {
    const saved = process.env.LOG_LEVEL;
    process.env.LOG_LEVEL = process.env.CHOPSTICKS_LOG_LEVEL ?? 'error';
    chopsticksModule = import('@acala-network/chopsticks-core').finally(() => {
      if (saved === undefined) delete process.env.LOG_LEVEL;
      else process.env.LOG_LEVEL = saved;
    });
  }
  return chopsticksModule;
}

const GENESIS_FORMAT = 'score-miner-genesis-v1';

function memoryStorage() {
  const store = new Map<string, string>();
  return {
    getStorage: async (key: string) => store.get(key),
    getNextKey: async (prefix: string, key: string) => [...store.keys()].sort().find((k) => k.startsWith(prefix) && k > key),
    offchainGetStorage: async () => undefined,
    offchainTimestamp: async () => Date.now(),
    offchainRandomSeed: async () => u8aToHex(new Uint8Array(32)),
    offchainSubmitTransaction: async () => false,
  };
}

/**
 * Build (or load from the cache) a raw chain spec for `wasmPath` using the runtime's GenesisBuilder API,
 * as `node build-spec --raw` does: default preset, dev accounts funded, Sudo = //Alice.
 */
export async function buildRawSpec(wasmPath = RUNTIME_WASM): Promise<Genesis> {
  const wasmBytes = readFileSync(wasmPath);
  const key = createHash('sha256').update(GENESIS_FORMAT).update(wasmBytes).digest('hex').slice(0, 32);
  const cacheDir = path.join(os.tmpdir(), 'score-miner-chain');
  const cacheFile = path.join(cacheDir, `${key}.json`);
  if (existsSync(cacheFile)) {
    try {
      return JSON.parse(readFileSync(cacheFile, 'utf8')) as Genesis;
    } catch {
      // rebuild a damaged cache file
    }
  }
  const { runTask } = await chopsticks();
  await cryptoWaitReady();
  const wasm = u8aToHex(wasmBytes);
  const storage = memoryStorage();
  const call = async (method: string, arg: string) => {
    const result = await runTask(
      { wasm, calls: [[method, [arg as `0x${string}`]]], mockSignatureHost: false, allowUnresolvedImports: true, runtimeLogLevel: 0 },
      storage,
    );
    if ('Error' in result) throw new Error(`${method}: ${result.Error}`);
    return result.Call;
  };
  // GenesisBuilder_get_preset(None) -> Option<Vec<u8>> JSON of the default config
  const preset = hexToString((await call('GenesisBuilder_get_preset', '0x00')).result);
  const config = JSON.parse(preset.slice(preset.indexOf('{'))) as Record<string, Record<string, unknown>>;
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  const dev = DEV_ACCOUNTS.map((n) => keyring.addFromUri(`//${n}`).address);
  config.balances.balances = dev.map((a) => [a, Number(DEV_BALANCE)]);
  config.sudo.key = dev[0];
  const built = await call('GenesisBuilder_build_state', u8aToHex(compactAddLength(stringToU8a(JSON.stringify(config)))));
  if (built.result !== '0x00') throw new Error(`GenesisBuilder_build_state failed: ${hexToString(built.result)}`);
  const top: Record<string, string> = {};
  for (const [k, v] of built.storageDiff) if (v !== null) top[k] = v;
  top['0x3a636f6465'] = wasm; // :code
  const genesis: Genesis = {
    id: 'score-miner-local',
    name: 'subtensor (score-miner local test chain)',
    properties: { ss58Format: 42, tokenDecimals: 9, tokenSymbol: 'TAO' },
    genesis: { raw: { top } },
  };
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(genesis));
  renameSync(tmp, cacheFile);
  return genesis;
}

export interface RevealedByHarness {
  hotkey: string;
  text: string;
  block: number;
  round: bigint;
}

export interface LocalChain {
  chain: Blockchain;
  api: ApiPromise;
  /** Transactions the block builder refused (chopsticks reports them only as status Invalid): newest last. */
  applyErrors: Array<{ extrinsic: string; error: unknown }>;
  keyring: Keyring;
  /** //Alice .. //Ferdie, funded; //Alice is the Sudo key. */
  dev: Record<(typeof DEV_ACCOUNTS)[number], KeyringPair>;
  drand: { secretKey: Uint8Array; publicKeyHex: string; sign(round: bigint | number): string };
  /** A new provider on the same in-process chain (give it to the code under test; it may disconnect it). */
  newProvider(): ChopsticksProviderType;
  /** Sign with `signer` and wait for inclusion (lib/chain submitTx). */
  send(tx: SubmittableExtrinsic<'promise'>, signer: KeyringPair): Promise<SubmitResult>;
  /** Build one empty block now. */
  newBlock(): Promise<number>;
  head(): number;
  /** Write raw or pallet-shaped storage on the head block (chopsticks setStorage). */
  setStorage(values: Parameters<Chopsticks['setStorage']>[1]): Promise<void>;
  /** Set an account's free balance and adjust Balances.TotalIssuance by the difference. */
  fund(address: string, rao: bigint): Promise<void>;
  /** burned_register `hotkey` on `netuid` paid by `coldkey` (default //Alice); returns the uid. */
  registerHotkey(netuid: number, hotkey: string, coldkey?: KeyringPair): Promise<number>;
  /** add_stake from `coldkey` (default //Alice, who must own the hotkey) to `hotkey` on `netuid`. */
  addStake(hotkey: string, netuid: number, rao: bigint, coldkey?: KeyringPair): Promise<void>;
  /**
   * Reveal pending TimelockEncrypted commitments on `netuid` like the pallet does: decrypt with the test drand
   * signature of the field's reveal_round, append (plaintext, block) to RevealedCommitments (newest 10), drop
   * the field from CommitmentOf. Decryption failures are dropped silently (as on chain). Builds a block.
   */
  revealPending(netuid: number, options?: { maxRound?: bigint }): Promise<RevealedByHarness[]>;
  /**
   * Serve the chain's JSON-RPC over a WebSocket on 127.0.0.1 (for code that connects by URL, e.g. tasks run
   * as subprocesses with BITTENSOR_SUBTENSOR_ENDPOINT=url). A minimal RFC 6455 server, no extra dependency.
   */
  serveWs(): Promise<{ url: string; close(): Promise<void> }>;
  /** Run revealPending every `intervalMs` until the returned stop function is called. */
  autoReveal(netuid: number, intervalMs?: number): () => Promise<void>;
  close(): Promise<void>;
}

export async function startLocalChain(options: { wasmPath?: string } = {}): Promise<LocalChain> {
  await cryptoWaitReady();
  const cs = await chopsticks();
  const genesis = await buildRawSpec(options.wasmPath);
  const chain = await cs.setup({
    genesis: new cs.GenesisProvider(genesis),
    buildBlockMode: cs.BuildBlockMode.Instant,
    allowUnresolvedImports: true,
    runtimeLogLevel: 0,
  });
  const api = await connectProvider(new cs.ChopsticksProvider(chain), { timeoutMs: 60_000, label: 'local chopsticks chain' });
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  const dev = Object.fromEntries(DEV_ACCOUNTS.map((n) => [n, keyring.addFromUri(`//${n}`)])) as LocalChain['dev'];
  const drand = {
    secretKey: TEST_DRAND_SECRET,
    publicKeyHex: drandPublicKeyFromSecret(TEST_DRAND_SECRET),
    sign: (round: bigint | number) => signDrandRound(TEST_DRAND_SECRET, round),
  };
  let revealing: Promise<unknown> = Promise.resolve();
  const applyErrors: LocalChain['applyErrors'] = [];
  chain.txPool.event.on(cs.APPLY_EXTRINSIC_ERROR, ([extrinsic, error]: [string, { toJSON(): unknown }]) => {
    applyErrors.push({ extrinsic, error: error.toJSON() });
    if (process.env.LOCALCHAIN_DEBUG) console.error('apply extrinsic error', JSON.stringify(error.toJSON()));
  });
  // This BABE runtime has 15-block epochs; chopsticks cannot complete the session rotation, whose
  // on_initialize then claims the whole block weight every block and every normal transaction is refused
  // (exhaustsResources). Push the next epoch change out of reach.
  if (api.query.babe?.epochIndex) await cs.setStorage(chain, { Babe: { EpochIndex: 1_000_000_000 } });
  // lift the per-block / per-interval registration limits so tests can register many hotkeys quickly
  await cs.setStorage(chain, {
    SubtensorModule: {
      MaxRegistrationsPerBlock: [
        [[0], 1000],
        [[TEST_NETUID], 1000],
      ],
      TargetRegistrationsPerInterval: [
        [[0], 1000],
        [[TEST_NETUID], 1000],
      ],
      // staking on the genesis subnet is off until its owner starts the subtoken; tests stake
      ...(api.query.subtensorModule.subtokenEnabled ? { SubtokenEnabled: [[[TEST_NETUID], true]] } : {}),
    },
  });

  const local: LocalChain = {
    chain,
    api,
    keyring,
    applyErrors,
    dev,
    drand,
    newProvider: () => new cs.ChopsticksProvider(chain),
    send: async (tx, signer) => {
      // chopsticks drops a transaction its block builder refuses (e.g. exhaustsResources after a heavy
      // on_initialize) instead of keeping it for the next block as a node would: build a block and resend.
      for (let attempt = 1; ; attempt++) {
        const before = applyErrors.length;
        try {
          return await submitTx(api, tx, signer, { timeoutMs: 60_000 });
        } catch (error) {
          const refused = applyErrors.slice(before).some((e) => JSON.stringify(e.error).includes('exhaustsResources'));
          if (!refused || attempt >= 3) throw error;
          if (process.env.LOCALCHAIN_DEBUG)
            console.error(`retrying ${tx.method.section}.${tx.method.method} at block ${chain.head.number}`);
          await chain.newBlock();
        }
      }
    },
    newBlock: async () => (await chain.newBlock()).number,
    head: () => chain.head.number,
    setStorage: async (values) => {
      await cs.setStorage(chain, values);
    },
    fund: async (address, rao) => {
      const account = (await api.query.system.account(address)) as unknown as {
        data: { free: { toBigInt(): bigint } };
        toJSON(): Record<string, unknown>;
      };
      const issuance = (await api.query.balances.totalIssuance()) as unknown as { toBigInt(): bigint };
      const delta = rao - account.data.free.toBigInt();
      const current = account.toJSON() as { providers?: number; data?: Record<string, unknown> };
      await cs.setStorage(chain, {
        System: {
          Account: [[[address], { ...current, providers: Math.max(1, current.providers ?? 0), data: { ...current.data, free: rao } }]],
        },
        Balances: { TotalIssuance: issuance.toBigInt() + delta },
      });
    },
    registerHotkey: async (netuid, hotkey, coldkey = dev.Alice) => {
      await local.send(api.tx.subtensorModule.burnedRegister(netuid, hotkey), coldkey);
      const uid = (await api.query.subtensorModule.uids(netuid, hotkey)).toJSON();
      if (uid === null || uid === undefined) throw new Error(`registration of ${hotkey} on netuid ${netuid} did not produce a uid`);
      return Number(uid);
    },
    addStake: async (hotkey, netuid, rao, coldkey = dev.Alice) => {
      await local.send(api.tx.subtensorModule.addStake(hotkey, netuid, rao), coldkey);
    },
    revealPending: (netuid, opts = {}) => {
      const run = revealing.then(() => revealOnce(local, netuid, opts.maxRound));
      revealing = run.catch(() => undefined);
      return run;
    },
    serveWs: () => serveWebSocket(chain, cs.allHandlers),
    autoReveal: (netuid, intervalMs = 300) => {
      let stopped = false;
      const loop = (async () => {
        while (!stopped) {
          await local.revealPending(netuid).catch(() => undefined);
          await new Promise((r) => setTimeout(r, intervalMs));
        }
      })();
      return async () => {
        stopped = true;
        await loop;
      };
    },
    close: async () => {
      await revealing.catch(() => undefined);
      await api.disconnect().catch(() => undefined);
      await chain.close();
      await cs.destroyWorker();
    },
  };
  return local;
}

interface TimelockField {
  isTimelockEncrypted: boolean;
  asTimelockEncrypted: { encrypted: { toU8a(bare: boolean): Uint8Array }; revealRound: { toBigInt(): bigint } };
  toJSON(): unknown;
}

async function revealOnce(local: LocalChain, netuid: number, maxRound?: bigint): Promise<RevealedByHarness[]> {
  const { api } = local;
  const entries = await api.query.commitments.commitmentOf.entries(netuid);
  if (entries.length === 0) return [];
  const block = local.head() + 1; // the block that will carry the reveal
  const revealed: RevealedByHarness[] = [];
  const rawWrites: [string, string | null][] = [];
  for (const [key, value] of entries) {
    const hotkey = key.args[1].toString();
    const registration = (
      value as unknown as { unwrapOr(x: null): null | { info: { fields: TimelockField[] }; deposit: unknown; block: unknown } }
    ).unwrapOr(null);
    if (!registration) continue;
    const keep: unknown[] = [];
    const plaintexts: { text: string; bytes: Uint8Array; round: bigint }[] = [];
    let touched = false;
    for (const field of registration.info.fields) {
      if (!field.isTimelockEncrypted) {
        keep.push(field.toJSON());
        continue;
      }
      const round = field.asTimelockEncrypted.revealRound.toBigInt();
      if (maxRound !== undefined && round > maxRound) {
        keep.push(field.toJSON());
        continue;
      }
      touched = true;
      try {
        const bytes = decryptTimelock(field.asTimelockEncrypted.encrypted.toU8a(true), local.drand.sign(round));
        plaintexts.push({ bytes, round, text: '' });
      } catch {
        // the pallet drops fields it cannot decrypt, without an event
      }
    }
    if (!touched) continue;
    const commitmentKey = key.toHex();
    if (keep.length === 0) {
      rawWrites.push([commitmentKey, null]);
    } else {
      const typeName = api.registry.createLookupType(api.query.commitments.commitmentOf.creator.meta.type.asMap.value);
      const updated = api.createType(typeName, {
        ...(registration as unknown as { toJSON(): Record<string, unknown> }).toJSON(),
        info: { fields: keep },
      });
      rawWrites.push([commitmentKey, u8aToHex(updated.toU8a())]);
    }
    if (plaintexts.length === 0) continue;
    const existing = (await api.query.commitments.revealedCommitments(netuid, hotkey)).toJSON() as Array<[string, number]> | null;
    const list: Array<[string, number]> = [...(existing ?? [])];
    for (const p of plaintexts) {
      list.push([u8aToHex(p.bytes), block]);
      revealed.push({ hotkey, text: scaleDecodeString(p.bytes), block, round: p.round });
    }
    const newest = list.slice(-10);
    const revealedKey = api.query.commitments.revealedCommitments.key(netuid, hotkey);
    rawWrites.push([revealedKey, u8aToHex(api.createType('Vec<(Bytes, u64)>', newest).toU8a())]);
  }
  if (rawWrites.length === 0) return [];
  await local.setStorage(rawWrites);
  await local.newBlock();
  return revealed;
}

// ---------------------------------------------------------------- a minimal JSON-RPC WebSocket server

type RpcHandlers = Chopsticks['allHandlers'];

function wsFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const len = payload.length;
  const header = len < 126 ? Buffer.from([0x81, len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126 && len < 65536) {
    header[0] = 0x81;
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else if (len >= 65536) {
    header[0] = 0x81;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([header, payload]);
}

/** Parse complete client frames from `buffer`; returns [messages, rest, closed]. Client frames are masked. */
function parseFrames(buffer: Buffer): { messages: Array<{ opcode: number; data: Buffer }>; rest: Buffer } {
  const messages: Array<{ opcode: number; data: Buffer }> = [];
  let offset = 0;
  let partial: Buffer[] = [];
  let partialOpcode = 0;
  for (;;) {
    if (buffer.length - offset < 2) break;
    const b0 = buffer[offset];
    const b1 = buffer[offset + 1];
    let len = b1 & 0x7f;
    let pos = offset + 2;
    if (len === 126) {
      if (buffer.length - pos < 2) break;
      len = buffer.readUInt16BE(pos);
      pos += 2;
    } else if (len === 127) {
      if (buffer.length - pos < 8) break;
      len = Number(buffer.readBigUInt64BE(pos));
      pos += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const maskLen = masked ? 4 : 0;
    if (buffer.length - pos < maskLen + len) break;
    const mask = buffer.subarray(pos, pos + maskLen);
    const data = Buffer.from(buffer.subarray(pos + maskLen, pos + maskLen + len));
    if (masked) for (let i = 0; i < data.length; i++) data[i] ^= mask[i & 3];
    offset = pos + maskLen + len;
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if (opcode !== 0) partialOpcode = opcode;
    partial.push(data);
    if (fin) {
      messages.push({ opcode: partialOpcode, data: Buffer.concat(partial) });
      partial = [];
    }
  }
  return { messages, rest: buffer.subarray(offset) };
}

async function serveWebSocket(chain: Blockchain, handlers: RpcHandlers): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Duplex>();
  const server = http.createServer((_req, res) => {
    res.writeHead(426).end('WebSocket only');
  });
  server.on('upgrade', (req, socket: Duplex) => {
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string') {
      socket.destroy();
      return;
    }
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    sockets.add(socket);
    const subscriptions = new Map<string, () => void>();
    const send = (value: unknown) => {
      if (!socket.destroyed) socket.write(wsFrame(JSON.stringify(value)));
    };
    const manager = {
      subscribe: (method: string, subid: string, onCancel: () => void = () => undefined) => {
        subscriptions.set(subid, onCancel);
        return (result: unknown) => send({ jsonrpc: '2.0', method, params: { subscription: subid, result } });
      },
      unsubscribe: (subid: string) => {
        subscriptions.get(subid)?.();
        subscriptions.delete(subid);
      },
    };
    const cleanup = () => {
      for (const cancel of subscriptions.values()) cancel();
      subscriptions.clear();
      sockets.delete(socket);
    };
    let buffer: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const { messages, rest } = parseFrames(buffer);
      buffer = rest;
      for (const { opcode, data } of messages) {
        if (opcode === 0x8) {
          socket.end(Buffer.from([0x88, 0]));
          cleanup();
          return;
        }
        if (opcode === 0x9) {
          socket.write(Buffer.concat([Buffer.from([0x8a, data.length]), data]));
          continue;
        }
        if (opcode !== 0x1) continue;
        let request: { id?: number | string; method?: string; params?: unknown[] };
        try {
          request = JSON.parse(data.toString('utf8'));
        } catch {
          send({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
          continue;
        }
        const handler = request.method ? handlers[request.method] : undefined;
        if (!handler) {
          send({ jsonrpc: '2.0', id: request.id, error: { code: -32601, message: `Method not found: ${request.method}` } });
          continue;
        }
        handler({ chain }, request.params ?? [], manager).then(
          (result: unknown) => send({ jsonrpc: '2.0', id: request.id, result: result ?? null }),
          (error: { code?: number; message?: string }) =>
            send({ jsonrpc: '2.0', id: request.id, error: { code: error?.code ?? -32603, message: error?.message ?? String(error) } }),
        );
      }
    });
    socket.on('close', cleanup);
    socket.on('error', cleanup);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
