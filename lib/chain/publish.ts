/**
 * Publishing the miner's image where Score's validators read it: the payload, timelock-encrypted to the drand
 * round about one block ahead (like the SDK's set_reveal_commitment), Commitments.set_commitment with one
 * TimelockEncrypted field, and the wait for its reveal (lib/chain/reveal.ts). tasks/commit.ts is its command line.
 */
import { u8aToHex } from '@polkadot/util';
import { type Env, loadConfig } from '../core/config.ts';
import { log } from '../core/log.ts';
import { redactUrl } from '../core/redact.ts';
import type { ChainTaskDeps } from '../core/task.ts';
import { buildPayload, checkPayloadSize, commitmentInfo, isSamePayload, latestRevealed, type Payload, payloadJson } from './commitment.ts';
import { connectChain, connectProvider, submitTx, uidOf } from './connection.ts';
import { netuidMismatch, notRegisteredError, SCORE_NETUID } from './diagnose.ts';
import { readRevealed } from './neuron.ts';
import { waitForReveal } from './reveal.ts';
import { encryptCommitmentJson, revealRoundFor } from './timelock.ts';
import { loadHotkey } from './wallet.ts';

export interface CommitDeps extends ChainTaskDeps {
  /** Clock in ms that picks the reveal round (default Date.now); waiting for the reveal uses the real clock. */
  now?: () => number;
  /** Reveal polling interval (default 2000 ms). */
  pollMs?: number;
}

export interface CommitOptions {
  image: string;
  tag: string;
  digest: string;
  revealTimeoutS: number;
  dryRun: boolean;
  force?: boolean;
}

export interface CommitResult {
  payload: Payload;
  reveal_round: number;
  ciphertext_hex: string;
  netuid: number;
  hotkey: string;
  uid?: number;
  commit_block?: number;
  reveal_block?: number;
  /** True when the chain already held this payload as the latest reveal and nothing was submitted. */
  unchanged?: boolean;
}

/** The whole commit story; throws MinerError with a hint on any failure. */
export async function commit(options: CommitOptions, deps: CommitDeps = {}): Promise<CommitResult> {
  const env: Env = deps.env ?? process.env;
  const now = deps.now ?? Date.now;
  const config = loadConfig(env);
  const { netuid } = config.chain;
  const wrongNetuid = netuidMismatch(netuid);
  if (wrongNetuid)
    log.warn(`${wrongNetuid}: validators of subnet ${SCORE_NETUID} will not see this commitment`, { SCOREVISION_NETUID: netuid });
  if (config.chain.network !== 'finney') log.warn(`network is ${config.chain.network} (${redactUrl(config.chain.endpoint)}), not finney`);

  const hotkey = await loadHotkey(config.wallet, { env, allowDevKeys: deps.allowDevKeys });
  const payload = buildPayload({
    imageRepo: options.image,
    imageTag: options.tag,
    imageDigest: options.digest,
    elementId: config.chain.elementId,
    hotkey: hotkey.address,
  });
  const json = payloadJson(payload);
  const size = checkPayloadSize(json);
  const round = revealRoundFor(Math.floor(now() / 1000), 1);
  const ciphertext = encryptCommitmentJson(json, round, config.chain.drandPublicKeyHex);
  const result: CommitResult = { payload, reveal_round: round, ciphertext_hex: u8aToHex(ciphertext), netuid, hotkey: hotkey.address };
  log.info('payload ready', { bytes: size, reveal_round: round, ciphertext_bytes: ciphertext.length, hotkey: hotkey.address });
  if (options.dryRun) return result;

  const api = deps.provider
    ? await connectProvider(deps.provider, { timeoutMs: config.chain.connectTimeoutMs })
    : await connectChain(config.chain);
  try {
    const uid = await uidOf(api, netuid, hotkey.address);
    if (uid === undefined) throw notRegisteredError(hotkey.address, netuid, config.wallet);
    result.uid = uid;
    if (!options.force) {
      const latest = latestRevealed(await readRevealed(api, netuid, hotkey.address));
      if (latest && isSamePayload(latest.text, json)) {
        log.info('the latest revealed commitment already is this payload: nothing to submit (--force commits again)', {
          reveal_block: latest.block,
        });
        return { ...result, reveal_block: latest.block, unchanged: true };
      }
    }
    log.info('submitting set_commitment', { netuid, uid });
    const included = await submitTx(api, api.tx.commitments.setCommitment(netuid, commitmentInfo(ciphertext, round)), hotkey.pair, {
      context: { hotkey: hotkey.address, netuid },
    });
    result.commit_block = included.blockNumber;
    log.info('commitment included', { block: included.blockNumber, hash: included.blockHash });
    result.reveal_block = await waitForReveal(api, {
      netuid,
      hotkey: hotkey.address,
      json,
      round,
      commitBlock: included.blockNumber,
      timeoutS: options.revealTimeoutS,
      pollMs: deps.pollMs ?? 2000,
    });
    log.info('commitment revealed', { block: result.reveal_block });
    return result;
  } finally {
    await api.disconnect().catch(() => undefined);
  }
}
