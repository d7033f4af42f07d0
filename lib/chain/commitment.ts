/**
 * The Score Vision commitment: payload building, the size check, the `TimelockEncrypted` field for
 * `Commitments.set_commitment`, and reading back `Commitments.RevealedCommitments` — all pure.
 *
 * Score reads only RevealedCommitments(netuid, hotkey) = Vec<(Bytes, u64 block)>, where each Bytes holds the
 * revealed plaintext: a SCALE string (compact length || UTF-8 JSON). It picks the highest-block entry with
 * track == "private", role absent or "miner", matching element_id, non-empty image_repo and image_tag.
 */
import { hexToU8a, isHex, stringToU8a, u8aToHex } from '@polkadot/util';
import { MinerError } from '../core/errors.ts';
import { MAX_COMMITMENT_JSON_BYTES, scaleDecodeString } from './timelock.ts';

/** Largest commitment JSON in UTF-8 bytes (1024-byte ciphertext bound minus the timelock envelope). */
export const MAX_PAYLOAD_BYTES = MAX_COMMITMENT_JSON_BYTES;

export interface PayloadInput {
  imageRepo: string;
  imageTag: string;
  imageDigest: string;
  elementId: string;
  /** SS58 address of the committing hotkey. */
  hotkey: string;
}

/** The payload object, keys in the order the validator's examples use. */
export interface Payload {
  role: 'miner';
  track: 'private';
  image_repo: string;
  image_tag: string;
  image_digest: string;
  element_id: string;
  hotkey: string;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const REPO = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Throws unless `digest` is `sha256:` + 64 lower-case hex characters. */
export function validateDigest(digest: string): string {
  if (!DIGEST.test(digest)) {
    throw new MinerError(`image digest ${JSON.stringify(digest)} is not of the form sha256:<64 hex>`, {
      hint: 'pass the digest `docker push` printed (or `docker inspect --format "{{index .RepoDigests 0}}" IMAGE`, the part after @)',
    });
  }
  return digest;
}

/** Throws unless `repo` looks like a registry repository (e.g. `user/repo`, `ghcr.io/user/repo`) and `tag` a tag. */
function validateImage(repo: string, tag: string): void {
  const path = repo.includes('/') && /[.:]/.test(repo.split('/')[0]) ? repo.slice(repo.indexOf('/') + 1) : repo;
  if (!repo || !REPO.test(path)) {
    throw new MinerError(`image repo ${JSON.stringify(repo)} is not a valid repository name`, {
      hint: 'use lower-case `user/repo` (Docker Hub) or `ghcr.io/user/repo`, without a tag or digest',
    });
  }
  if (!TAG.test(tag)) {
    throw new MinerError(`image tag ${JSON.stringify(tag)} is not a valid tag`, { hint: 'use a tag such as v1.0.0' });
  }
}

export function buildPayload(input: PayloadInput): Payload {
  validateImage(input.imageRepo, input.imageTag);
  validateDigest(input.imageDigest);
  if (!input.elementId)
    throw new MinerError('element_id is empty', { hint: 'set SCOREVISION_ELEMENT_ID (default manako/DetectFootballEvent)' });
  return {
    role: 'miner',
    track: 'private',
    image_repo: input.imageRepo,
    image_tag: input.imageTag,
    image_digest: input.imageDigest,
    element_id: input.elementId,
    hotkey: input.hotkey,
  };
}

/** The exact JSON text committed (compact, key order as built). */
export function payloadJson(payload: Payload): string {
  return JSON.stringify(payload);
}

function payloadBytes(json: string): number {
  return stringToU8a(json).length;
}

/** Refuse a payload over the 778-byte limit (the ciphertext would exceed the pallet's 1024-byte bound). */
export function checkPayloadSize(json: string): number {
  const size = payloadBytes(json);
  if (size > MAX_PAYLOAD_BYTES) {
    throw new MinerError(`commitment payload is ${size} bytes; the limit is ${MAX_PAYLOAD_BYTES} UTF-8 bytes`, {
      hint: 'shorten the image repo/tag (the digest and hotkey have fixed lengths)',
    });
  }
  return size;
}

/**
 * The `Data::TimelockEncrypted` field in the form polkadot-js encodes. The ciphertext goes in as a hex string:
 * a raw Uint8Array for a `Bytes` field would be read as already length-prefixed (docs/chain.md, "polkadot-js pitfalls").
 */
function timelockField(
  ciphertext: Uint8Array,
  revealRound: bigint | number,
): { TimelockEncrypted: { encrypted: string; revealRound: bigint } } {
  return { TimelockEncrypted: { encrypted: u8aToHex(ciphertext), revealRound: BigInt(revealRound) } };
}

/** `CommitmentInfo` with the single timelock field. */
export function commitmentInfo(ciphertext: Uint8Array, revealRound: bigint | number): { fields: ReturnType<typeof timelockField>[] } {
  return { fields: [timelockField(ciphertext, revealRound)] };
}

export interface RevealedEntry {
  /** The revealed text (SCALE string prefix stripped). */
  text: string;
  block: number;
}

/** One revealed value (bytes or hex, a SCALE string) -> its text. Falls back to raw UTF-8 if unprefixed. */
export function decodeRevealedText(value: Uint8Array | string): string {
  const bytes = typeof value === 'string' ? (isHex(value) ? hexToU8a(value) : stringToU8a(value)) : value;
  try {
    return scaleDecodeString(bytes);
  } catch {
    return new TextDecoder().decode(bytes);
  }
}

/** `Vec<(Bytes, u64)>` as [bytes|hex, block][] (e.g. `.toJSON()` of the storage value) -> entries, oldest first. */
export function parseRevealedCommitments(
  value: ReadonlyArray<readonly [Uint8Array | string, number | bigint | string]> | null | undefined,
): RevealedEntry[] {
  if (!value) return [];
  return value.map(([bytes, block]) => ({ text: decodeRevealedText(bytes), block: Number(block) }));
}

/** The entry with the highest block (the one a validator uses when it passes the filter). */
export function latestRevealed(entries: readonly RevealedEntry[]): RevealedEntry | undefined {
  let best: RevealedEntry | undefined;
  for (const e of entries) if (!best || e.block >= best.block) best = e;
  return best;
}

/** True when a revealed text is exactly the committed payload (byte-exact JSON, or the same object). */
export function isSamePayload(text: string, json: string): boolean {
  if (text === json) return true;
  try {
    return JSON.stringify(JSON.parse(text)) === JSON.stringify(JSON.parse(json));
  } catch {
    return false;
  }
}

export interface FilterVerdict {
  ok: boolean;
  /** Each reason the validator would skip it, with what to do. */
  problems: Array<{ problem: string; fix: string }>;
  payload?: Record<string, unknown>;
}

/** The validator's filter on a revealed text, explained. */
export function validatorFilter(text: string, elementId: string): FilterVerdict {
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    return { ok: false, problems: [{ problem: 'revealed commitment is not JSON', fix: 'commit again with `tasks/commit.ts`' }] };
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    return { ok: false, problems: [{ problem: 'revealed commitment is not a JSON object', fix: 'commit again with `tasks/commit.ts`' }] };
  }
  const p = payload as Record<string, unknown>;
  const problems: FilterVerdict['problems'] = [];
  const again = 'commit again with `tasks/commit.ts` (it builds the full payload)';
  if (p.track !== 'private') problems.push({ problem: `track is ${JSON.stringify(p.track)}, not "private"`, fix: again });
  if (p.role !== undefined && p.role !== 'miner') problems.push({ problem: `role is ${JSON.stringify(p.role)}, not "miner"`, fix: again });
  if (p.element_id !== elementId)
    problems.push({
      problem: `element_id is ${JSON.stringify(p.element_id)}, validators expect ${JSON.stringify(elementId)}`,
      fix: `check SCOREVISION_ELEMENT_ID and ${again}`,
    });
  if (typeof p.image_repo !== 'string' || p.image_repo === '') problems.push({ problem: 'image_repo is missing or empty', fix: again });
  if (typeof p.image_tag !== 'string' || p.image_tag === '') problems.push({ problem: 'image_tag is missing or empty', fix: again });
  return { ok: problems.length === 0, problems, payload: p };
}
