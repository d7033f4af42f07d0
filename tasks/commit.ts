/**
 * Publish the miner's image on chain where Score's validators read it, and wait until the chain reveals it.
 *
 *   npx tsx tasks/commit.ts                      (after tasks/push.ts: repo, tag and digest from the deploy state)
 *   npx tsx tasks/commit.ts --image user/repo --tag v1.0.0 --digest sha256:<64 hex>
 *
 * 1. load config and the hotkey; build the payload {"role","track","image_repo","image_tag","image_digest",
 *    "element_id","hotkey"} and refuse it over 778 bytes
 * 2. timelock-encrypt it to the drand round about one block ahead (like the SDK's set_reveal_commitment)
 * 3. check the hotkey is registered on the netuid; skip when the latest revealed commitment already is this
 *    payload (unless --force); submit Commitments.set_commitment with one TimelockEncrypted field
 * 4. poll Commitments.RevealedCommitments until the payload appears (the chain drops undecryptable
 *    commitments silently, so a commit is only done when its reveal is seen)
 * `--dry-run --json` stops after step 2 without connecting and prints {payload, reveal_round, ciphertext_hex}.
 * The steps are lib/chain/publish.ts; this task resolves the image (flags or deploy state) and records the step.
 */

import { existsSync } from 'node:fs';
import { type CommitDeps, type CommitResult, commit } from '../lib/chain/publish.ts';
import { type Env, loadConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { defineTask, type FlagSpec, runIfEntryPoint, UsageError } from '../lib/core/task.ts';
import { lockHome } from '../lib/deploy/engine.ts';
import { rehearsalGate } from '../lib/deploy/rehearse.ts';
import { readRehearsals } from '../lib/deploy/spotcheck.ts';
import { readState, requireStep, resolveTag, stateFile, writeState } from '../lib/deploy/state.ts';
import { runStep } from '../lib/deploy/step.ts';
import { deployTarget } from '../lib/deploy/target.ts';

const USAGE = `usage: npx tsx tasks/commit.ts [--tag <tag>] [--image <repo> --digest <sha256:...>] [options]

Commit the image to the chain (timelock-encrypted, revealed about one block later) and wait for the reveal.
Without --image/--digest, the repository and the pushed digest come from the deploy state (tasks/push.ts);
without --tag, the tag pushed last.

  --image <repo>          image repository, e.g. user/repo or ghcr.io/user/repo
  --tag <tag>             image tag, e.g. v1.0.0
  --digest <sha256:...>   digest of the pushed image (sha256: + 64 hex)
  --reveal-timeout <s>    how long to wait for the reveal (default 180)
  --force                 commit even when the latest revealed commitment already is this payload, or when
                          the digest's last rehearsal (tasks/rehearse.ts, tasks/spotcheck.ts) failed
  --env NAME              the profile: .env.NAME over .env (its own hotkey)
  --dry-run               build and encrypt only; do not connect
  --json                  print the result as JSON on stdout
  --verbose               debug logging and stack traces on failure
  --help                  this text

Reads BITTENSOR_SUBTENSOR_ENDPOINT, BITTENSOR_SUBTENSOR_FALLBACK, SCOREVISION_NETUID, SCOREVISION_ELEMENT_ID,
BITTENSOR_WALLET_PATH/_COLD/_HOT, DRAND_PUBLIC_KEY, CHAIN_CONNECT_TIMEOUT_S (see env.example).`;

const FLAGS = {
  image: { type: 'string' },
  tag: { type: 'string' },
  digest: { type: 'string' },
  'reveal-timeout': { type: 'string' },
  'dry-run': { type: 'boolean' },
  force: { type: 'boolean' },
} satisfies FlagSpec;

/** --image/--tag/--digest as given, the rest from the deploy state (what tasks/push.ts recorded). */
function imageFromState(
  flags: { image?: string; tag?: string; digest?: string },
  env: Env,
): { image: string; tag: string; digest: string } {
  if (flags.image && flags.tag && flags.digest) return { image: flags.image, tag: flags.tag, digest: flags.digest };
  const deploy = loadConfig(env).deploy;
  const image = flags.image ?? deployTarget(deploy).repo;
  const tag = resolveTag(deploy.stateDir, image, flags.tag);
  if (!tag)
    throw new MinerError(`no pushed image of ${image} in the deploy state`, {
      hint: 'run tasks/push.ts first, or give --tag, --image and --digest',
    });
  const digest = flags.digest ?? requireStep(readState(deploy.stateDir, image, tag), 'push', 'pushed digest').digest;
  return { image, tag, digest };
}

export const main = defineTask<typeof FLAGS, CommitDeps>({
  usage: USAGE,
  flags: FLAGS,
  json: true,
  async run({ flags, env, out, err, deps }) {
    const timeout = flags['reveal-timeout'] === undefined ? 180 : Number(flags['reveal-timeout']);
    if (!Number.isFinite(timeout) || timeout <= 0)
      throw new UsageError(`--reveal-timeout ${flags['reveal-timeout']} is not a positive number of seconds`);
    const dryRun = flags['dry-run'];
    const { image, tag, digest } = imageFromState(flags, env);
    const options = { image, tag, digest, revealTimeoutS: timeout, dryRun, force: flags.force };
    let result: CommitResult;
    if (dryRun) result = await commit(options, { ...deps, env });
    else {
      // A deploy step: lock, headline, record for the summary, and the blocks kept in the deploy state.
      const { deploy } = loadConfig(env);
      const say = flags.json ? err : out;
      let committed: CommitResult | undefined;
      await runStep(
        { step: 'commit', lockHome: lockHome(deploy), out: say, tag },
        `commit ${image}:${tag}@${digest.slice(0, 19)} on chain`,
        async () => {
          const gate = rehearsalGate(digest, readRehearsals(deploy.stateDir)[digest], {
            force: Boolean(flags.force),
            tag,
            profile: deploy.profile,
          });
          if (gate) say(gate);
          committed = await commit(options, { ...deps, env });
          const block = committed.commit_block ?? 0;
          const revealBlock = committed.reveal_block ?? 0;
          // The commit is the hotkey's own: kept in its profile's folder, beside the image's records.
          if (existsSync(stateFile(deploy.stateDir, image, tag)))
            await writeState(deploy.profileDir, {
              ...readState(deploy.profileDir, image, tag),
              commit: { block, revealBlock, at: new Date().toISOString() },
            });
          return committed.unchanged
            ? { result: 'skipped', produced: `already revealed in block ${revealBlock}` }
            : { produced: `block ${block}, revealed in ${revealBlock}` };
        },
      );
      result = committed as CommitResult;
    }
    if (flags.json) {
      out(
        JSON.stringify(
          dryRun ? { payload: result.payload, reveal_round: result.reveal_round, ciphertext_hex: result.ciphertext_hex } : result,
        ),
      );
    } else if (dryRun) {
      out(
        `dry run: payload ${JSON.stringify(result.payload)}\nreveal round ${result.reveal_round}, ciphertext ${result.ciphertext_hex.length / 2 - 1} bytes (not submitted)`,
      );
    } else if (result.unchanged) {
      out(
        `the chain already holds ${result.payload.image_repo}:${result.payload.image_tag} as the latest reveal (block ${result.reveal_block})`,
      );
    } else {
      out(
        `committed ${result.payload.image_repo}:${result.payload.image_tag}@${result.payload.image_digest} for hotkey ${result.hotkey} (uid ${result.uid}) on netuid ${result.netuid}: included in block ${result.commit_block}, revealed in block ${result.reveal_block}`,
      );
    }
    return 0;
  },
});

runIfEntryPoint(import.meta.url, main);
