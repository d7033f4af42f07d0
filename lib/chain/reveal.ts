/**
 * Waiting for a commitment's reveal: Commitments.set_commitment only stores the ciphertext, and the chain drops a
 * commitment it cannot decrypt without a word, so a commit is done only when its reveal is seen.
 */
import type { ApiPromise } from '@polkadot/api';
import { MinerError } from '../core/errors.ts';
import { log } from '../core/log.ts';
import { isSamePayload } from './commitment.ts';
import { bestBlockNumber } from './connection.ts';
import { readPending, readRevealed } from './neuron.ts';

export interface RevealWait {
  netuid: number;
  hotkey: string;
  /** The committed payload JSON. */
  json: string;
  /** The drand round it was encrypted to. */
  round: number;
  /** The block that included the commitment. */
  commitBlock: number;
  timeoutS: number;
  pollMs: number;
}

/**
 * The block of this commitment's reveal. RevealedCommitments keeps earlier reveals (newest 10), and a rerun with
 * the same payload finds identical text there: only an entry from a block after the one that included this
 * commitment can be its reveal. Not the including block itself: the pallet reveals in on_initialize, before that
 * block's extrinsics, so a reveal recorded there is of a commitment submitted earlier.
 */
export async function waitForReveal(api: ApiPromise, w: RevealWait): Promise<number> {
  const started = Date.now();
  const deadline = started + w.timeoutS * 1000;
  let lastProgress = started;
  for (;;) {
    const entries = await readRevealed(api, w.netuid, w.hotkey);
    const hit = entries.find((e) => e.block > w.commitBlock && isSamePayload(e.text, w.json));
    if (hit) return hit.block;
    if (Date.now() >= deadline) break;
    if (Date.now() - lastProgress >= 10_000) {
      lastProgress = Date.now();
      log.info('waiting for the reveal', {
        reveal_round: w.round,
        block: await bestBlockNumber(api),
        waited_s: Math.round((Date.now() - started) / 1000),
      });
    }
    await new Promise((r) => setTimeout(r, Math.max(50, Math.min(w.pollMs, deadline - Date.now()))));
  }
  const pending = await readPending(api, w.netuid, w.hotkey);
  if (pending?.revealRounds.includes(BigInt(w.round))) {
    throw new MinerError(`the commitment (reveal round ${w.round}) was not revealed within ${w.timeoutS} s; it is still pending on chain`, {
      hint: 'the chain reveals when the drand round reaches it; check again with `npx tsx tasks/status.ts` in a minute, or rerun with a longer --reveal-timeout',
    });
  }
  throw new MinerError(
    `the commitment (reveal round ${w.round}) was not revealed within ${w.timeoutS} s and is no longer pending: the chain could not decrypt it`,
    {
      hint: "the chain drops commitments it cannot decrypt; unset DRAND_PUBLIC_KEY (it must be drand quicknet's key on finney) and commit again",
    },
  );
}
