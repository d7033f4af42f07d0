/**
 * Push the built image and record the digest the registry itself reports (what commit puts on chain).
 *
 *   npx tsx tasks/push.ts [--tag v1.0.0]
 *
 * 1. the image tasks/build.ts recorded for the tag (without --tag: the one built last is not guessed — the tag is needed)
 * 2. Docker Hub: log in to the web API, create the repository as private when it is missing
 * 3. skip when the registry already holds this tag at the digest recorded for this image id (a rerun)
 * 4. docker login --password-stdin (the token never on a command line), docker push
 * 5. read the digest back from the registry (Registry API v2) and record it
 */
import { loadConfig } from '../lib/core/config.ts';
import { MinerError } from '../lib/core/errors.ts';
import { log } from '../lib/core/log.ts';
import { defineTask, runIfEntryPoint, UsageError } from '../lib/core/task.ts';
import { imageIdCommand, loginCommand, pushCommand } from '../lib/deploy/docker.ts';
import { lockHome } from '../lib/deploy/engine.ts';
import { ensurePrivateRepository, hubLogin } from '../lib/deploy/hub.ts';
import { checkTag, readRemoteDigest } from '../lib/deploy/registry.ts';
import { docker, dockerProbe } from '../lib/deploy/run-docker.ts';
import { readState, requireStep, writeState } from '../lib/deploy/state.ts';
import { runStep } from '../lib/deploy/step.ts';
import { deployTarget, requireToken } from '../lib/deploy/target.ts';

const USAGE = `usage: npx tsx tasks/push.ts --tag TAG [--json] [--verbose]

Push the image tasks/build.ts built for TAG and record the digest read back from the registry.
Docker Hub (IMAGE_REGISTRY=dockerhub, the default): the repository is created private when missing.

  --tag TAG    the tag built by tasks/build.ts (required)
  --json       print {"reference", "digest"} on stdout
  --verbose    show docker's output

Reads IMAGE_REGISTRY, DOCKERHUB_USERNAME/DOCKERHUB_TOKEN (or REGISTRY_USERNAME/REGISTRY_TOKEN), IMAGE_REPO,
DOCKERHUB_API_URL.`;

/** `docker push` ends with "<tag>: digest: sha256:... size: N". */
export function pushedDigest(output: string): string | undefined {
  return /digest: (sha256:[0-9a-f]{64})/.exec(output)?.[1];
}

export const main = defineTask({
  usage: USAGE,
  flags: { tag: { type: 'string' } },
  json: true,
  async run({ flags, env, out, err }) {
    if (!flags.tag) throw new UsageError('--tag is required', 'e.g. npx tsx tasks/push.ts --tag v1.0.0');
    const tag = checkTag(flags.tag);
    const config = loadConfig(env);
    const { deploy } = config;
    const target = deployTarget(deploy);
    const token = requireToken(deploy);
    const run = { env, verbose: flags.verbose };
    const say = flags.json ? err : out;
    let reference = '';
    let digest = '';
    await runStep({ step: 'push', lockHome: lockHome(deploy), out: say, tag }, `push ${target.image}:${tag}`, async () => {
      const state = readState(deploy.stateDir, target.repo, tag);
      const built = requireStep(state, 'build', 'built image');
      reference = built.reference;
      const local = await dockerProbe(imageIdCommand(reference), run);
      if (!local.ok || local.stdout !== built.imageId) {
        throw new MinerError(`the image ${reference} recorded by tasks/build.ts is not in the local Docker engine any more`, {
          hint: `run tasks/build.ts --tag ${tag} first`,
        });
      }

      if (deploy.registry === 'dockerhub') {
        const session = await hubLogin({ apiUrl: deploy.hubApiUrl, username: target.username, token });
        const repository = await ensurePrivateRepository(session, target.username, target.name, 'Score Vision miner (score-miner)');
        if (!repository.isPrivate)
          log.warn(`Docker Hub repository ${target.repo} is public: spot checks work, but anyone can pull your model`);
        else log.info(`Docker Hub repository ${target.repo}: ${repository.outcome}, private`);
      }

      // A rerun: the registry already holds this tag at the digest recorded when this very image was pushed (a
      // rebuilt image — a fix — is pushed again even though the registry still answers the old digest).
      if (state.push?.imageId === built.imageId) {
        const remote = await readRemoteDigest({ image: target.image, tag, username: target.username, password: token }).catch(
          () => undefined,
        );
        if (remote === state.push.digest) {
          digest = remote;
          return { result: 'skipped', produced: `${digest} (already in the registry)` };
        }
      }

      await docker(loginCommand(target.registryHost, target.username), { ...run, input: token });
      const output = await docker(pushCommand(reference), run);
      digest = await readRemoteDigest({ image: target.image, tag, username: target.username, password: token });
      const printed = pushedDigest(output);
      if (printed && printed !== digest) {
        throw new MinerError(`the registry holds ${digest} for ${reference}, but docker pushed ${printed}`, {
          hint: 'another push to the same tag raced this one: push a new tag',
        });
      }
      await writeState(deploy.stateDir, { ...state, push: { reference, digest, imageId: built.imageId, at: new Date().toISOString() } });
      return { produced: digest };
    });
    if (flags.json) out(JSON.stringify({ reference, digest }));
    return 0;
  },
});

runIfEntryPoint(import.meta.url, main);
