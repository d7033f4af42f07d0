/**
 * What the chain says about this miner, and what to do about each problem.
 *
 *   npx tsx tasks/status.ts [--json]
 *
 * registered? uid, axon ip:port, stake, pending commitment (reveal round), latest revealed payload and block,
 * whether validators would use it (track "private", role absent or "miner", element_id, image_repo, image_tag),
 * and when the digest they would spot-check was last rehearsed (tasks/spotcheck.ts) with what result.
 * Exit code 0 when nothing needs doing, 1 when a problem was found or the chain could not be read.
 */
import { latestRevealed, validatorFilter } from '../lib/chain/commitment.ts';
import { bestBlockNumber, openApi, uidOf } from '../lib/chain/connection.ts';
import { diagnose } from '../lib/chain/diagnose.ts';
import { fetchStakes, stakeOf } from '../lib/chain/metagraph.ts';
import { readAxon, readPending, readRevealed } from '../lib/chain/neuron.ts';
import { loadHotkey } from '../lib/chain/wallet.ts';
import { loadConfig } from '../lib/core/config.ts';
import { type ChainTaskDeps, defineTask, type FlagSpec, runIfEntryPoint } from '../lib/core/task.ts';
import { chooseCommitment, describeRehearsal, type RehearsalRecord, readRehearsals } from '../lib/deploy/spotcheck.ts';

const USAGE = `usage: npx tsx tasks/status.ts [--json] [--verbose]

Show the miner's on-chain state (registration, axon, stake, commitments) and what to fix.
Exit code 0 when all is well, 1 when something needs doing, 2 for a wrong command line.

  --json      print the report as JSON on stdout
  --verbose   debug logging and stack traces on failure
  --help      this text`;

export type StatusDeps = ChainTaskDeps;

export interface StatusReport {
  network: string;
  endpoint: string;
  netuid: number;
  block: number;
  hotkey: string;
  registered: boolean;
  uid: number | null;
  axon: { ip: string; port: number; block: number } | null;
  stake_rao: string;
  stake_tao: number;
  pending: { block: number; reveal_rounds: string[] } | null;
  revealed: { block: number; text: string; passes_filter: boolean; payload: Record<string, unknown> | null } | null;
  /** The last spot-check rehearsal (tasks/spotcheck.ts) of the digest the validator would use; null without one. */
  spotcheck: { digest: string; rehearsal: RehearsalRecord | null; summary: string } | null;
  problems: Array<{ problem: string; fix: string }>;
  ok: boolean;
}

export async function status(deps: StatusDeps = {}): Promise<StatusReport> {
  const env = deps.env ?? process.env;
  const config = loadConfig(env);
  const { netuid, elementId } = config.chain;
  const hotkey = await loadHotkey(config.wallet, { env, allowDevKeys: deps.allowDevKeys });
  const api = await openApi(config.chain, deps.provider);
  try {
    const block = await bestBlockNumber(api);
    const uid = await uidOf(api, netuid, hotkey.address);
    const axon = await readAxon(api, netuid, hotkey.address);
    let stake = 0n;
    let stakeError: string | undefined;
    try {
      stake = stakeOf(await fetchStakes(api, netuid), hotkey.address);
    } catch (error) {
      stakeError = error instanceof Error ? error.message : String(error);
    }
    const pending = await readPending(api, netuid, hotkey.address);
    const entries = await readRevealed(api, netuid, hotkey.address);
    const latest = latestRevealed(entries);

    // The digest Score would spot-check, and when it was last rehearsed here.
    let spotcheck: StatusReport['spotcheck'] = null;
    const chosen = chooseCommitment(entries, elementId);
    if (chosen.ok) {
      const { digest } = chosen.image;
      const rehearsal = readRehearsals(config.deploy.stateDir)[digest] ?? null;
      spotcheck = { digest, rehearsal, summary: describeRehearsal(digest, rehearsal ?? undefined) };
    }

    const findings = diagnose({
      netuid,
      network: config.chain.network,
      elementId,
      wallet: config.wallet,
      hotkey: hotkey.address,
      registered: uid !== undefined,
      axon,
      configuredAxon: { ip: config.axon.ip, port: config.axon.port ?? config.server.port },
      stakeError,
      pending,
      latest,
      rehearsal: spotcheck?.rehearsal ? { ...spotcheck.rehearsal, digest: spotcheck.digest } : undefined,
    });
    const verdict = latest && validatorFilter(latest.text, elementId);
    const problems = findings.map(({ problem, fix }) => ({ problem, fix }));
    return {
      network: config.chain.network,
      endpoint: config.chain.endpoint,
      netuid,
      block,
      hotkey: hotkey.address,
      registered: uid !== undefined,
      uid: uid ?? null,
      axon: axon ? { ip: axon.ip, port: axon.port, block: axon.block } : null,
      stake_rao: stake.toString(),
      stake_tao: Number(stake) / 1e9,
      pending: pending ? { block: pending.block, reveal_rounds: pending.revealRounds.map(String) } : null,
      revealed:
        latest && verdict ? { block: latest.block, text: latest.text, passes_filter: verdict.ok, payload: verdict.payload ?? null } : null,
      spotcheck,
      problems,
      ok: problems.length === 0,
    };
  } finally {
    await api.disconnect().catch(() => undefined);
  }
}

function formatStatus(r: StatusReport): string {
  const lines = [
    `hotkey    ${r.hotkey} on netuid ${r.netuid} (${r.network}, block ${r.block})`,
    `registered ${r.registered ? `yes, uid ${r.uid}` : 'NO'}`,
    `axon      ${r.axon ? `${r.axon.ip}:${r.axon.port} (block ${r.axon.block})` : 'none'}`,
    `stake     ${r.stake_tao} TAO (${r.stake_rao} rao)`,
    `pending   ${r.pending ? `commitment from block ${r.pending.block}, reveal round ${r.pending.reveal_rounds.join(', ') || '-'}` : 'none'}`,
    `revealed  ${r.revealed ? `block ${r.revealed.block}: ${r.revealed.text}` : 'none'}`,
    `validator ${r.revealed ? (r.revealed.passes_filter ? 'would use this commitment' : 'would IGNORE this commitment') : 'has nothing to use'}`,
  ];
  if (r.spotcheck) lines.push(`spotcheck ${r.spotcheck.summary}`);
  if (r.problems.length === 0) lines.push('ok: nothing to do');
  for (const p of r.problems) lines.push(`problem: ${p.problem}\n  next: ${p.fix}`);
  return lines.join('\n');
}

const FLAGS = {} satisfies FlagSpec;

export const main = defineTask<typeof FLAGS, StatusDeps>({
  usage: USAGE,
  flags: FLAGS,
  json: true,
  async run({ flags, env, out, deps }) {
    const report = await status({ ...deps, env });
    out(flags.json ? JSON.stringify(report) : formatStatus(report));
    return report.ok ? 0 : 1;
  },
});

runIfEntryPoint(import.meta.url, main);
