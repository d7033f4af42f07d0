/**
 * Where this miner's image goes, from the configuration: the image name to build and push, the repository to
 * commit on chain, the registry host to log in to. Every deploy step starts here.
 */
import type { MinerConfig } from '../core/config.ts';
import { MinerError } from '../core/errors.ts';
import { committedRepo, imageName, registryHost } from './registry.ts';

export interface DeployTarget {
  /** `docker.io/user/repo`, `ghcr.io/user/repo` or `host:port/user/repo`, lower-cased. */
  image: string;
  /** What the commitment names and the state is keyed by (`user/repo` on Docker Hub). */
  repo: string;
  registryHost: string;
  username: string;
  /** The repository's name inside the account (Docker Hub's web API speaks of namespace/name). */
  name: string;
}

export function deployTarget(deploy: MinerConfig['deploy']): DeployTarget {
  if (!deploy.username) {
    throw new MinerError(`${deploy.credentialNames.username} is not set: the image name needs the registry account`, {
      hint: `set ${deploy.credentialNames.username} (and ${deploy.credentialNames.token}) in .env, see env.example`,
    });
  }
  const image = imageName({ registry: deploy.registry, username: deploy.username, repo: deploy.repo, dockerhubHost: deploy.dockerhubHost });
  return {
    image,
    repo: committedRepo(image),
    registryHost: registryHost(deploy.registry, { dockerhubHost: deploy.dockerhubHost }),
    // Registry accounts are lower-case (Docker Hub, GHCR); a miner may write theirs capitalised.
    username: deploy.username.toLowerCase(),
    name: image.split('/').slice(2).join('/'),
  };
}

/** The token for pushing, or the error naming the variable to set. */
export function requireToken(deploy: MinerConfig['deploy']): string {
  if (!deploy.token) {
    throw new MinerError(`${deploy.credentialNames.token} is not set`, {
      hint:
        deploy.registry === 'dockerhub'
          ? 'create a Docker Hub personal access token (Read & Write) and set DOCKERHUB_TOKEN in .env'
          : `set ${deploy.credentialNames.token} in .env to a token that may push (GHCR: a token with write:packages)`,
    });
  }
  return deploy.token;
}
