/**
 * What the chain holds about one hotkey on one subnet (reads only): uid, axon, pending and revealed
 * commitments. Tasks (commit, axon, status) build their story on these.
 */
import type { ApiPromise } from '@polkadot/api';
import { type AxonInfo, parseAxonInfo } from './axon.ts';
import { parseRevealedCommitments, type RevealedEntry } from './commitment.ts';

export { uidOf } from './connection.ts';

/** `SubtensorModule.Axons(netuid, hotkey)`, or undefined when never served (ip 0). */
export async function readAxon(api: ApiPromise, netuid: number, hotkey: string): Promise<AxonInfo | undefined> {
  const info = parseAxonInfo((await api.query.subtensorModule.axons(netuid, hotkey)).toJSON());
  return info && info.ip !== '0.0.0.0' ? info : undefined;
}

/** `Commitments.RevealedCommitments(netuid, hotkey)` decoded, oldest first. */
export async function readRevealed(api: ApiPromise, netuid: number, hotkey: string): Promise<RevealedEntry[]> {
  const value = (await api.query.commitments.revealedCommitments(netuid, hotkey)).toJSON() as Array<[string, number]> | null;
  return parseRevealedCommitments(value);
}

export interface PendingCommitment {
  /** Block the commitment was submitted in. */
  block: number;
  /** reveal_round of each TimelockEncrypted field not yet revealed. */
  revealRounds: bigint[];
  /** Ciphertext (0x-hex) of each such field. */
  ciphertexts: string[];
  /** Number of fields of any kind. */
  fields: number;
}

interface FieldCodec {
  isTimelockEncrypted?: boolean;
  asTimelockEncrypted?: { encrypted: { toHex(): string }; revealRound: { toBigInt(): bigint } };
}

/** `Commitments.CommitmentOf(netuid, hotkey)`: the registration not yet (fully) revealed. */
export async function readPending(api: ApiPromise, netuid: number, hotkey: string): Promise<PendingCommitment | undefined> {
  const option = (await api.query.commitments.commitmentOf(netuid, hotkey)) as unknown as {
    isNone: boolean;
    unwrap(): { block: { toNumber(): number }; info: { fields: FieldCodec[] } };
  };
  if (option.isNone) return undefined;
  const registration = option.unwrap();
  const timelocked = registration.info.fields.filter((f) => f.isTimelockEncrypted && f.asTimelockEncrypted);
  return {
    block: registration.block.toNumber(),
    revealRounds: timelocked.map((f) => f.asTimelockEncrypted!.revealRound.toBigInt()),
    ciphertexts: timelocked.map((f) => f.asTimelockEncrypted!.encrypted.toHex()),
    fields: registration.info.fields.length,
  };
}
