/**
 * What the chain tasks share: the seams tests inject (environment, chain provider, output), and how a task
 * module runs when it is the entry point (`npx tsx tasks/x.ts`) — tests import the same module instead.
 */
import { pathToFileURL } from 'node:url';
import type { ProviderInterface } from '@polkadot/rpc-provider/types';
import { loadEnvFiles } from './config.ts';

export type Env = Record<string, string | undefined>;

export interface ChainTaskDeps {
  /** Environment (default process.env). */
  env?: Env;
  /** Connect through this provider instead of the configured endpoint (tests: a ChopsticksProvider). */
  provider?: ProviderInterface;
  /** Accept HOTKEY_URI dev keys (tests). */
  allowDevKeys?: boolean;
  out?: (line: string) => void;
  err?: (line: string) => void;
}

/** Load `.env*` and run `main` with the command line when `moduleUrl` is the entry point; its result is the exit code. */
export function runIfEntryPoint(moduleUrl: string, main: (argv: string[]) => Promise<number>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  loadEnvFiles();
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
