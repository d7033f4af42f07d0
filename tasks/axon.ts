/**
 * Publish where validators reach the miner: SubtensorModule.serve_axon(AXON_IP, AXON_PORT or MINER_PORT).
 *
 *   npx tsx tasks/axon.ts [--force] [--json]
 *
 * 1. read AXON_IP (public IPv4; loopback/private refused unless --force) and the port
 * 2. load the hotkey, connect, check it is registered on the netuid
 * 3. skip when the chain already holds the same ip:port; else submit serve_axon
 * 4. read Axons(netuid, hotkey) back and verify
 * The steps are lib/chain/serve-axon.ts; this task is their command line.
 */
import { type AxonDeps, serveAxon } from '../lib/chain/serve-axon.ts';
import { defineTask, type FlagSpec, runIfEntryPoint } from '../lib/core/task.ts';

const USAGE = `usage: npx tsx tasks/axon.ts [--force] [--json] [--verbose]

Publish the miner's address on chain (serve_axon) so validators can reach it; skipped when unchanged.

  --force     publish even a loopback/private/CGNAT address (local test chains only)
  --json      print the result as JSON on stdout
  --verbose   debug logging and stack traces on failure
  --help      this text

Reads AXON_IP (public IPv4), AXON_PORT (else MINER_PORT, default 8000), SCOREVISION_NETUID,
BITTENSOR_SUBTENSOR_ENDPOINT/_FALLBACK, BITTENSOR_WALLET_PATH/_COLD/_HOT.`;

const FLAGS = { force: { type: 'boolean' } } satisfies FlagSpec;

export const main = defineTask<typeof FLAGS, AxonDeps>({
  usage: USAGE,
  flags: FLAGS,
  json: true,
  async run({ flags, env, out, deps }) {
    const result = await serveAxon({ force: flags.force }, { ...deps, env });
    if (flags.json) out(JSON.stringify(result));
    else if (result.changed)
      out(
        `axon ${result.ip}:${result.port} published for hotkey ${result.hotkey} (uid ${result.uid}) on netuid ${result.netuid} in block ${result.block}`,
      );
    else
      out(
        `axon ${result.ip}:${result.port} already published for hotkey ${result.hotkey} (uid ${result.uid}) on netuid ${result.netuid}; nothing to do`,
      );
    return 0;
  },
});

runIfEntryPoint(import.meta.url, main);
