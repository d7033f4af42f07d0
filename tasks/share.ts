/**
 * Give Score read access to the private image, so its spot checks can pull it.
 *
 *   npx tsx tasks/share.ts [--tag v1.0.0]
 *
 * Docker Hub: add Score's account (SCORE_DOCKERHUB_USER, default scorevision) as a read-only collaborator, read
 * the collaborator list back, and report exactly what the Hub answered (adding collaborators to a private
 * repository needs a paid plan). GHCR and other registries have no API for this: print the manual steps and
 * check whether the image can be pulled without credentials — never claim a success this task cannot see.
 */
import { loadConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { defineTask, runIfEntryPoint } from '../lib/core/task.ts';
import { lockHome } from '../lib/deploy/engine.ts';
import { addCollaborator, hubLogin, listCollaborators } from '../lib/deploy/hub.ts';
import { isPullableAnonymously } from '../lib/deploy/registry.ts';
import { readState, requirePushedTag, requireStep, writeState } from '../lib/deploy/state.ts';
import { runStep, type StepOutcome } from '../lib/deploy/step.ts';
import { deployTarget, requireToken } from '../lib/deploy/target.ts';

const USAGE = `usage: npx tsx tasks/share.ts [--tag TAG] [--json] [--verbose]

Give Score's account read access to the pushed image.
  Docker Hub: adds SCORE_DOCKERHUB_USER (default scorevision) as a read-only collaborator and checks the list.
  GHCR / other registries: prints the manual steps and checks whether the image is pullable without credentials.

  --tag TAG    the pushed tag (default: the one pushed last)
  --json       print what the registry answered on stdout
  --verbose    stack traces on failure`;

export const main = defineTask({
  usage: USAGE,
  flags: { tag: { type: 'string' } },
  json: true,
  async run({ flags, env, out, err }) {
    const config = loadConfig(env);
    const { deploy } = config;
    const target = deployTarget(deploy);
    const tag = requirePushedTag(deploy.stateDir, target.repo, flags.tag);
    const say = flags.json ? err : out;
    const collaborator = deploy.scoreHubUser;
    let share: NonNullable<ReturnType<typeof readState>['share']> | undefined;
    await runStep(
      { step: 'share', lockHome: lockHome(deploy), out: say, tag },
      `give ${collaborator} read access to ${target.repo}`,
      async () => {
        const state = readState(deploy.stateDir, target.repo, tag);
        requireStep(state, 'push', 'pushed digest');
        let outcome: StepOutcome;
        if (deploy.registry === 'dockerhub') {
          const session = await hubLogin({ apiUrl: deploy.hubApiUrl, username: target.username, token: requireToken(deploy) });
          // Probe before acting: a collaborator already in the list is a rerun.
          const before = await listCollaborators(session, target.username, target.name);
          const present = before.some((user) => user.toLowerCase() === collaborator.toLowerCase());
          const added = present
            ? { variant: 'get', status: 200, detail: '', alreadyPresent: true }
            : await addCollaborator(session, target.username, target.name, collaborator);
          const listed = present ? before : await listCollaborators(session, target.username, target.name);
          if (!listed.map((user) => user.toLowerCase()).includes(collaborator.toLowerCase())) {
            throw new MinerError(
              `Docker Hub answered ${added.status} (${added.detail || 'no detail'}) but ${collaborator} is not in the collaborator list of ${target.repo}`,
              { hint: `add ${collaborator} by hand in the repository's Collaborators settings on hub.docker.com, then rerun` },
            );
          }
          share = {
            registry: 'dockerhub',
            collaborator,
            result: added.alreadyPresent ? 'already a collaborator' : 'added',
            detail: `${added.variant.toUpperCase()} answered ${added.status}${added.detail ? `: ${added.detail}` : ''}; collaborators: ${listed.join(', ')}`,
            at: new Date().toISOString(),
          };
          outcome = added.alreadyPresent
            ? { result: 'skipped', produced: `${collaborator} already a collaborator` }
            : { produced: `${collaborator} added (read)` };
        } else {
          const pullable = await isPullableAnonymously({ image: target.image, tag });
          const steps =
            target.registryHost === 'ghcr.io'
              ? [
                  `open https://github.com/users/${target.username}/packages/container/package/${target.name}/settings`,
                  `under "Manage access", add Score's GitHub account with the Read role (or make the package public)`,
                ]
              : [`give Score's account pull access to ${target.image} in ${target.registryHost}'s access settings`];
          for (const step of steps) say(`    manual step: ${step}`);
          share = {
            registry: target.registryHost,
            result: pullable ? 'public' : 'manual',
            detail: pullable
              ? 'the image can be pulled without credentials'
              : 'the image needs credentials to pull; access for Score cannot be checked from here',
            at: new Date().toISOString(),
          };
          outcome = pullable
            ? { produced: 'pullable without credentials' }
            : { result: 'manual', produced: 'manual steps printed; Score access not verifiable' };
        }
        await writeState(deploy.stateDir, { ...state, share });
        return outcome;
      },
    );
    if (flags.json) out(JSON.stringify(share));
    return 0;
  },
});

runIfEntryPoint(import.meta.url, main);
