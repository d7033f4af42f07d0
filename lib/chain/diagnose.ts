/**
 * What the chain's facts about a miner mean, and what to do about each problem: pure rules, no chain. The tasks
 * gather the facts (tasks/status.ts reads them all; commit and axon use the netuid and registration rules), this
 * module words the findings, once.
 */
import { MinerError } from '../core/errors.ts';
import { REHEARSE_COMMAND } from '../deploy/spotcheck.ts';
import { validatorFilter } from './commitment.ts';

/** Score Vision's subnet on finney. */
export const SCORE_NETUID = 44;

/** `netuid is N, not 44 (...)` when the netuid is not Score Vision's; undefined when it is. */
export function netuidMismatch(netuid: number): string | undefined {
  return netuid === SCORE_NETUID ? undefined : `netuid is ${netuid}, not ${SCORE_NETUID} (Score Vision on finney)`;
}

/** The cause when a hotkey has no uid on the netuid. */
export function notRegisteredMessage(hotkey: string, netuid: number): string {
  return `hotkey ${hotkey} is not registered on netuid ${netuid}`;
}

/** The btcli command that registers this wallet's hotkey on the netuid. */
export function registerCommand(netuid: number, wallet: { coldkey: string; hotkey: string }): string {
  return `btcli subnet register --netuid ${netuid} --wallet.name ${wallet.coldkey} --wallet.hotkey ${wallet.hotkey}`;
}

/** The error a task that needs a registered hotkey (commit, axon) throws without one. */
export function notRegisteredError(hotkey: string, netuid: number, wallet: { coldkey: string; hotkey: string }): MinerError {
  return new MinerError(notRegisteredMessage(hotkey, netuid), {
    hint: `register it first (${registerCommand(netuid, wallet)}), or check BITTENSOR_WALLET_HOT / SCOREVISION_NETUID`,
  });
}

/** Everything tasks/status.ts reads about the miner, chain and local state alike. */
export interface StatusFacts {
  netuid: number;
  network: string;
  elementId: string;
  wallet: { coldkey: string; hotkey: string };
  /** SS58 address of the miner's hotkey. */
  hotkey: string;
  registered: boolean;
  /** The axon the chain holds. */
  axon?: { ip: string; port: number };
  /** The axon this config would publish (AXON_IP, AXON_PORT or MINER_PORT). */
  configuredAxon: { ip?: string; port: number };
  /** Why the stake could not be read, when it could not. */
  stakeError?: string;
  pending?: { revealRounds: readonly bigint[] };
  /** The latest revealed commitment. */
  latest?: { text: string; block: number };
  /** The last spot-check rehearsal of the digest the validator would use. */
  rehearsal?: { digest: string; result: 'PASS' | 'FAIL'; cause?: string };
}

/** Which rule found the problem: the stable key of a finding (the words may change, this does not). */
export type FindingRule =
  | 'netuid'
  | 'network'
  | 'not-registered'
  | 'no-axon'
  | 'axon-mismatch'
  | 'stake-unreadable'
  | 'filter'
  | 'revealed-hotkey'
  | 'no-commitment'
  | 'pending'
  | 'rehearsal-failed';

export interface Finding {
  rule: FindingRule;
  problem: string;
  fix: string;
}

/** Every problem the facts show, in the order a miner fixes them. */
export function diagnose(f: StatusFacts): Finding[] {
  const findings: Finding[] = [];
  const netuid = netuidMismatch(f.netuid);
  if (netuid)
    findings.push({ rule: 'netuid', problem: netuid, fix: `set SCOREVISION_NETUID=${SCORE_NETUID} unless you are testing on purpose` });
  if (f.network !== 'finney')
    findings.push({
      rule: 'network',
      problem: `network is ${f.network}, not finney`,
      fix: 'set BITTENSOR_SUBTENSOR_ENDPOINT=finney unless you are testing on purpose',
    });
  if (!f.registered)
    findings.push({ rule: 'not-registered', problem: notRegisteredMessage(f.hotkey, f.netuid), fix: registerCommand(f.netuid, f.wallet) });

  const want = f.configuredAxon;
  if (f.registered && !f.axon)
    findings.push({
      rule: 'no-axon',
      problem: 'no axon published: validators cannot find the miner',
      fix: 'set AXON_IP (and AXON_PORT) and run `npx tsx tasks/axon.ts`',
    });
  else if (f.axon && want.ip && (f.axon.ip !== want.ip || f.axon.port !== want.port))
    findings.push({
      rule: 'axon-mismatch',
      problem: `the chain holds axon ${f.axon.ip}:${f.axon.port} but this config says ${want.ip}:${want.port}`,
      fix: 'run `npx tsx tasks/axon.ts` to publish the configured address',
    });

  if (f.stakeError !== undefined)
    findings.push({
      rule: 'stake-unreadable',
      problem: `could not read stake: ${f.stakeError}`,
      fix: 'check the endpoint; stake is informational only',
    });

  if (f.latest) {
    const verdict = validatorFilter(f.latest.text, f.elementId);
    for (const p of verdict.problems) findings.push({ rule: 'filter', ...p });
    if (verdict.ok && verdict.payload?.hotkey !== undefined && verdict.payload.hotkey !== f.hotkey)
      findings.push({
        rule: 'revealed-hotkey',
        problem: `the revealed payload names hotkey ${String(verdict.payload.hotkey)}, not ${f.hotkey}`,
        fix: 'commit again with `tasks/commit.ts`',
      });
  } else if (f.registered && !f.pending) {
    findings.push({
      rule: 'no-commitment',
      problem: 'no revealed commitment: validators do not know your image',
      fix: 'run `npx tsx tasks/commit.ts --image <repo> --tag <tag> --digest <sha256:...>`',
    });
  }
  if (f.pending && f.pending.revealRounds.length > 0 && !f.latest)
    findings.push({
      rule: 'pending',
      problem: `a commitment is pending (reveal round ${f.pending.revealRounds.join(', ')}) and nothing is revealed yet`,
      fix: 'wait a minute and run status again; if it stays pending, commit again',
    });

  if (f.rehearsal?.result === 'FAIL')
    findings.push({
      rule: 'rehearsal-failed',
      problem: `the last spot-check rehearsal of the committed digest ${f.rehearsal.digest.slice(0, 19)} failed: ${f.rehearsal.cause ?? 'see its output'}`,
      fix: `Score's spot check would fail the same way and blacklist the hotkey: fix the image, push and commit it, then rehearse again (${REHEARSE_COMMAND})`,
    });
  return findings;
}
