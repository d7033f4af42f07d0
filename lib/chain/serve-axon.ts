/**
 * Publishing where validators reach the miner: SubtensorModule.serve_axon(AXON_IP, AXON_PORT or MINER_PORT),
 * skipped when the chain already holds that address, and read back. tasks/axon.ts is its command line.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, PROJECT_ROOT } from '../core/config.ts';
import { MinerError } from '../core/errors.ts';
import { log } from '../core/log.ts';
import type { ChainTaskDeps } from '../core/task.ts';
import { type AxonInfo, axonArgs, nonPublicReason, versionToInt } from './axon.ts';
import { openApi, submitTx, uidOf } from './connection.ts';
import { netuidMismatch, notRegisteredError } from './diagnose.ts';
import { readAxon } from './neuron.ts';
import { loadHotkey } from './wallet.ts';

export type AxonDeps = ChainTaskDeps;

export interface AxonResult {
  hotkey: string;
  netuid: number;
  uid: number;
  ip: string;
  port: number;
  /** false when the chain already held this ip:port. */
  changed: boolean;
  block?: number;
  axon: AxonInfo;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export async function serveAxon(options: { force: boolean }, deps: AxonDeps = {}): Promise<AxonResult> {
  const env = deps.env ?? process.env;
  const config = loadConfig(env);
  const { netuid } = config.chain;
  const ip = config.axon.ip;
  if (!ip) {
    throw new MinerError('AXON_IP is not set', {
      hint: "set AXON_IP to this server's public IPv4 (e.g. the output of `curl -4 https://ifconfig.me`)",
    });
  }
  const port = config.axon.port ?? config.server.port;
  const why = nonPublicReason(ip);
  if (why && !options.force) {
    throw new MinerError(`AXON_IP ${ip} is ${why}: validators on the internet cannot reach it`, {
      hint: 'set AXON_IP to your public IPv4 (and forward the port to the miner); use --force only on a local test chain',
    });
  }
  const wrongNetuid = netuidMismatch(netuid);
  if (wrongNetuid) log.warn(wrongNetuid);
  const args = axonArgs({ netuid, ip, port, version: versionToInt(packageVersion()) });
  const hotkey = await loadHotkey(config.wallet, { env, allowDevKeys: deps.allowDevKeys });

  const api = await openApi(config.chain, deps.provider);
  try {
    const uid = await uidOf(api, netuid, hotkey.address);
    if (uid === undefined) throw notRegisteredError(hotkey.address, netuid, config.wallet);
    const current = await readAxon(api, netuid, hotkey.address);
    if (current && current.ip === ip && current.port === port) {
      log.info('axon already published', { ip, port, since_block: current.block });
      return { hotkey: hotkey.address, netuid, uid, ip, port, changed: false, axon: current };
    }
    log.info('publishing axon', { ip, port, previous: current ? `${current.ip}:${current.port}` : 'none' });
    const tx = api.tx.subtensorModule.serveAxon(
      args.netuid,
      args.version,
      args.ip,
      args.port,
      args.ipType,
      args.protocol,
      args.placeholder1,
      args.placeholder2,
    );
    const included = await submitTx(api, tx, hotkey.pair, { context: { hotkey: hotkey.address, netuid } });
    const after = await readAxon(api, netuid, hotkey.address);
    if (!after || after.ip !== ip || after.port !== port) {
      throw new MinerError(
        `serve_axon was included in block ${included.blockNumber} but the chain holds ${after ? `${after.ip}:${after.port}` : 'no axon'}, not ${ip}:${port}`,
        {
          hint: 'run `npx tsx tasks/status.ts` to see what the chain holds, then rerun this task',
        },
      );
    }
    log.info('axon published', { ip, port, block: included.blockNumber });
    return { hotkey: hotkey.address, netuid, uid, ip, port, changed: true, block: included.blockNumber, axon: after };
  } finally {
    await api.disconnect().catch(() => undefined);
  }
}
