/**
 * The Docker engine a deploy starts, rolls back and rehearses the miner on (DEPLOY_HOST): this machine's, or a
 * remote one reached through Docker's own transports — `ssh://user@host` (DOCKER_HOST) or a docker context
 * (DOCKER_CONTEXT). Build and push always run here; the remote engine pulls the pushed digest. Nothing of our
 * own runs on the remote host: the docker CLI here speaks to its daemon.
 */
import path from 'node:path';
import type { MinerConfig } from '../core/config.ts';
import { MinerError } from '../core/errors.ts';
import type { Env } from '../core/settings.ts';
import type { DockerRunOptions } from './run-docker.ts';
import type { DeployState } from './state.ts';

export interface DeployEngine {
  /** What the summary and messages call it: `this machine` or DEPLOY_HOST as written. */
  label: string;
  /** Another machine: its loopback is not ours, so readiness comes from the engine, not 127.0.0.1 here. */
  remote: boolean;
  /** The host name of an ssh:// engine (its published ports answer there); undefined for a context. */
  hostname?: string;
  /** What the docker CLI's environment gets to reach it (empty for this machine's engine). */
  dockerEnv: Record<string, string>;
}

export const LOCAL_ENGINE: DeployEngine = { label: 'this machine', remote: false, dockerEnv: {} };

/** DEPLOY_HOST (as settings.ts checked it) -> the engine. */
export function deployEngine(host: string | undefined): DeployEngine {
  if (!host) return LOCAL_ENGINE;
  if (host.startsWith('ssh://')) {
    const authority = host.slice('ssh://'.length);
    const hostname = authority.slice(authority.indexOf('@') + 1).replace(/:\d+$/, '');
    // DOCKER_CONTEXT emptied: a context chosen in the environment must not win over the host asked for.
    return { label: host, remote: true, hostname, dockerEnv: { DOCKER_HOST: host, DOCKER_CONTEXT: '' } };
  }
  // A context: DOCKER_HOST emptied, since the docker CLI prefers it to DOCKER_CONTEXT.
  return { label: `context ${host}`, remote: true, dockerEnv: { DOCKER_CONTEXT: host, DOCKER_HOST: '' } };
}

/** How the deploy tasks run the docker CLI against `engine`. */
export function engineRun(env: Env, engine: DeployEngine, verbose?: boolean): DockerRunOptions {
  return { env: { ...env, ...engine.dockerEnv }, verbose };
}

/**
 * Where the deploy lock lives: one per engine and container name, so two profiles (two containers) or two hosts
 * deploy one after the other, or side by side, without waiting for each other or clashing.
 */
export function lockHome(deploy: Pick<MinerConfig['deploy'], 'stateDir' | 'host' | 'containerName'>): string {
  const engine = deploy.host ? deploy.host.replace(/[^A-Za-z0-9._-]+/g, '_') : 'local';
  return path.join(deploy.stateDir, 'locks', `${engine}--${deploy.containerName.replace(/[^A-Za-z0-9._-]+/g, '_')}`);
}

/**
 * The image `start` runs on `engine`, and so the one the rehearsal answers with beside the pushed digest: on this
 * machine the local build (the tag as built), elsewhere the pushed digest (the remote engine pulls it; it has no
 * build of ours). Undefined when neither is recorded.
 */
export function startReference(state: DeployState, engine: DeployEngine): string | undefined {
  const pushed = state.push && `${state.repo}@${state.push.digest}`;
  return engine.remote ? pushed : (state.build?.reference ?? pushed);
}

/**
 * docker's output when its CLI could not reach a remote `engine` at all ("error during connect": ssh refused, timed
 * out or denied the key; a context's daemon down) -> the cause, with ssh's own words, and the next step; undefined
 * for any other output. docker's line is long and ssh's words come last, past where a cause is otherwise cut.
 */
export function engineUnreachable(engine: DeployEngine, output: string): MinerError | undefined {
  if (!engine.remote || !/error during connect/i.test(output)) return undefined;
  const lines = (text: string) =>
    text
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
  const sshSaid = /stderr=([\s\S]*)$/.exec(output)?.[1];
  const said = sshSaid ? lines(sshSaid).join('; ') : (lines(output).find((line) => /error during connect/i.test(line)) as string);
  const ssh = /^ssh:\/\/(.+?)(?::(\d+))?$/.exec(engine.label);
  const hint = ssh
    ? `check that \`ssh ${ssh[2] ? `-p ${ssh[2]} ` : ''}${ssh[1]} docker version\` works from this machine without a prompt (the host up, your key loaded, its host key known), then rerun`
    : `check that \`docker --context ${engine.dockerEnv.DOCKER_CONTEXT} version\` works from this machine, then rerun`;
  return new MinerError(`cannot reach the Docker engine on ${engine.label}: ${said.slice(0, 300)}`, { hint });
}
