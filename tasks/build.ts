/**
 * Build the miner image Score will pull: `docker build -f Dockerfile.miner --platform linux/amd64 -t <image>:<tag> .`
 *
 *   npx tsx tasks/build.ts --tag v1.0.0 [--dockerfile F] [--build-arg MODEL_SRC=models/mine] [--build-arg BASE_IMAGE=...]
 *
 * 1. the image name from the registry settings (lower-cased: docker refuses upper-case repository names)
 * 2. a model folder passed as MODEL_SRC must lie inside the build context (checked here, not by docker's
 *    "failed to compute cache key")
 * 3. docker build (cached layers make a rebuild quick), then record the image id for the next steps
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, PROJECT_ROOT } from '../lib/core/config.ts';
import { defineTask, runIfEntryPoint, UsageError } from '../lib/core/task.ts';
import { buildCommand, imageIdCommand, modelSourceInContext } from '../lib/deploy/docker.ts';
import { lockHome } from '../lib/deploy/engine.ts';
import { checkTag, imageReference } from '../lib/deploy/registry.ts';
import { docker } from '../lib/deploy/run-docker.ts';
import { readState, writeState } from '../lib/deploy/state.ts';
import { runStep } from '../lib/deploy/step.ts';
import { deployTarget } from '../lib/deploy/target.ts';

const USAGE = `usage: npx tsx tasks/build.ts --tag TAG [--dockerfile FILE] [--build-arg NAME=VALUE ...] [--json] [--verbose]

Build the miner image <registry>/<user>/<repo>:TAG from Dockerfile.miner for linux/amd64 and record its id.

  --tag TAG              the image tag, e.g. v1.0.0 (required)
  --dockerfile FILE      another Dockerfile (default Dockerfile.miner)
  --build-arg NAME=VALUE passed to docker build; MODEL_SRC=<folder in the project> bakes in your model,
                         BASE_IMAGE=<image> changes the Node 24 base
  --json                 print {"image", "image_id", "reference"} on stdout
  --verbose              show docker's output as it builds

Reads IMAGE_REGISTRY, DOCKERHUB_USERNAME (or REGISTRY_USERNAME), IMAGE_REPO, BUILD_PLATFORM, BUILD_NETWORK,
and MODEL_SRC / BASE_IMAGE as default build arguments.`;

export function parseBuildArgs(words: string[]): Record<string, string> {
  const args: Record<string, string> = {};
  for (const word of words) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(word);
    if (!match) throw new UsageError(`--build-arg ${JSON.stringify(word)} is not NAME=VALUE`);
    args[match[1]] = match[2];
  }
  return args;
}

export const main = defineTask({
  usage: USAGE,
  flags: { tag: { type: 'string' }, dockerfile: { type: 'string' }, 'build-arg': { type: 'string', multiple: true } },
  json: true,
  async run({ flags, env, out, err }) {
    if (!flags.tag) throw new UsageError('--tag is required', 'e.g. npx tsx tasks/build.ts --tag v1.0.0');
    const tag = checkTag(flags.tag);
    const config = loadConfig(env);
    const target = deployTarget(config.deploy);
    const reference = imageReference(target.image, tag);
    const dockerfile = path.resolve(PROJECT_ROOT, flags.dockerfile ?? 'Dockerfile.miner');
    if (!existsSync(dockerfile)) throw new UsageError(`${dockerfile} does not exist`, 'give --dockerfile a file inside the project');
    // MODEL_SRC and BASE_IMAGE may live in .env, so `just deploy` bakes in the miner's own model.
    const buildArgs = {
      ...Object.fromEntries((['MODEL_SRC', 'BASE_IMAGE'] as const).flatMap((name) => (env[name] ? [[name, env[name] as string]] : []))),
      ...parseBuildArgs(flags['build-arg']),
    };
    if (buildArgs.MODEL_SRC) {
      buildArgs.MODEL_SRC = modelSourceInContext(PROJECT_ROOT, buildArgs.MODEL_SRC);
      const model = path.join(PROJECT_ROOT, buildArgs.MODEL_SRC);
      if (!existsSync(path.join(model, 'model.json')) || !existsSync(path.join(model, 'model.onnx'))) {
        throw new UsageError(`MODEL_SRC ${buildArgs.MODEL_SRC} holds no model.json + model.onnx`, 'see README, "Model folder"');
      }
    }
    const { stateDir } = config.deploy;
    const run = { env, verbose: flags.verbose };
    const say = flags.json ? err : out;
    let imageId = '';
    await runStep(
      { step: 'build', lockHome: lockHome(config.deploy), out: say, tag },
      `docker build ${reference} (${config.deploy.platform})`,
      async () => {
        const state = readState(stateDir, target.repo, tag);
        await docker(
          buildCommand({
            dockerfile,
            reference,
            platform: config.deploy.platform,
            buildArgs,
            context: PROJECT_ROOT,
            network: config.deploy.buildNetwork,
          }),
          run,
        );
        imageId = await docker(imageIdCommand(reference), run);
        await writeState(stateDir, { ...state, build: { imageId, reference, at: new Date().toISOString() } });
        const unchanged = state.build?.imageId === imageId;
        return { produced: `${reference} ${imageId.slice(0, 19)}${unchanged ? ' (unchanged)' : ''}` };
      },
    );
    if (flags.json) out(JSON.stringify({ image: target.image, reference, image_id: imageId }));
    return 0;
  },
});

runIfEntryPoint(import.meta.url, main);
