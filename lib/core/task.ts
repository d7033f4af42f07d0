/**
 * One shape for every task (`npx tsx tasks/x.ts`): flags parsed once from a declared spec (node:util parseArgs),
 * unknown flags refused with the usage (exit 2), `--help`/`-h` (exit 0), `--verbose` (debug logging, stack
 * traces), `--json` where the task reports, LOG_LEVEL applied from the environment, errors rendered as the
 * one-line cause plus `next:` (describeError), exit codes 0 ok / 1 failed / 2 usage. `.env` files are loaded
 * only by runIfEntryPoint, at the edge.
 *
 *   export const main = defineTask({
 *     usage: USAGE,
 *     flags: { image: { type: 'string' }, 'dry-run': { type: 'boolean' } },
 *     json: true,
 *     async run({ flags, env, out, deps }) { ...; return 0; },
 *   });
 *   runIfEntryPoint(import.meta.url, main);
 *
 * `main(argv, deps)` never calls process.exit and never reads process.env when `deps.env` is given, so tests run
 * it in-process with their own environment, output sinks and (for chain tasks) provider.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ProviderInterface } from '@polkadot/rpc-provider/types';
import { type Env, loadEnvFiles, parseLogLevel } from './config.ts';
import { describeError, MinerError } from './errors.ts';
import { setLogLevel } from './log.ts';

/** What every task lets a caller inject. */
export interface TaskDeps {
  /** Environment (default process.env). */
  env?: Env;
  /** One line of stdout (default process.stdout). */
  out?: (line: string) => void;
  /** One line of stderr (default process.stderr). */
  err?: (line: string) => void;
}

/** Chain tasks (axon, commit, status) also take a provider and the dev-key permission. */
export interface ChainTaskDeps extends TaskDeps {
  /** Connect through this provider instead of the configured endpoint (tests: a ChopsticksProvider). */
  provider?: ProviderInterface;
  /** Accept HOTKEY_URI dev keys (tests). */
  allowDevKeys?: boolean;
}

/** A wrong command line: exit 2 instead of 1. Throw it from `run` for checks the flag spec cannot express. */
export class UsageError extends MinerError {
  constructor(message: string, hint = 'run with --help for the options') {
    super(message, { hint, kind: 'invalid-input' });
    this.name = 'UsageError';
  }
}

interface FlagOption {
  type: 'string' | 'boolean';
  /** One-letter alias, e.g. 'f' for -f. */
  short?: string;
  /** A string flag that may be given several times (values in order). */
  multiple?: boolean;
}

export type FlagSpec = Record<string, FlagOption>;

/** Parsed values: booleans are false when absent, strings undefined. */
export type FlagValues<S extends FlagSpec> = {
  [K in keyof S]: S[K]['type'] extends 'boolean' ? boolean : S[K]['multiple'] extends true ? string[] : string | undefined;
};

/** The flags every task has. */
interface CommonFlags {
  help: boolean;
  verbose: boolean;
  /** Always false for a task that does not declare `json: true`. */
  json: boolean;
}

export interface TaskContext<S extends FlagSpec, D extends TaskDeps> {
  flags: FlagValues<S> & CommonFlags;
  env: Env;
  out: (line: string) => void;
  err: (line: string) => void;
  /** Everything the caller injected (provider, clock, ...). */
  deps: D;
  /** Words that are not flags, for a task that declares `positionals: true`. */
  positionals: string[];
}

export interface TaskDefinition<S extends FlagSpec, D extends TaskDeps> {
  /** Printed by --help (stdout) and after a flag error (stderr). */
  usage: string;
  /** The task's own flags; help (-h), verbose and json (with `json: true`) are added. */
  flags: S;
  /** The task reports: accept --json. */
  json?: boolean;
  /** Accept words that are not flags (e.g. `tag=v1.0.0` handed on by just); refused otherwise. */
  positionals?: boolean;
  /** Resolves to the exit code (0 ok, 1 something to fix); throws to fail (UsageError: 2, anything else: 1). */
  run(context: TaskContext<S, D>): Promise<number>;
}

type TaskMain<D extends TaskDeps> = (argv?: string[], deps?: D) => Promise<number>;

const COMMON: FlagSpec = { help: { type: 'boolean', short: 'h' }, verbose: { type: 'boolean' } };

/** A value such as -1 or -0.5 is a value, not a flag that was meant to follow `--name`. */
const NEGATIVE_NUMBER = /^-\d/;

/** argv -> values, or a UsageError naming the first thing wrong. Help wins over any other mistake. */
function parseFlags(argv: string[], spec: FlagSpec, positionals?: string[]): Record<string, string | string[] | boolean | undefined> {
  // strict: false hands over every token, so the messages below (not node's) name what is wrong
  const { tokens } = parseArgs({ args: argv, options: spec, strict: false, allowPositionals: true, tokens: true });
  const values: Record<string, string | string[] | boolean | undefined> = {};
  for (const [name, option] of Object.entries(spec)) values[name] = option.type === 'boolean' ? false : option.multiple ? [] : undefined;
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help' && Object.hasOwn(spec, 'help'))) return { ...values, help: true };
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      if (positionals) {
        positionals.push(token.value);
        continue;
      }
      throw new UsageError(`unexpected argument ${JSON.stringify(token.value)}`, 'see the usage below');
    }
    const option = Object.hasOwn(spec, token.name) ? spec[token.name] : undefined;
    if (!option) throw new UsageError(`unknown option ${token.rawName}`, 'see the usage below');
    if (option.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`${token.rawName} takes no value`, 'see the usage below');
      values[token.name] = true;
    } else {
      const value = token.value;
      if (value === undefined || (!token.inlineValue && value.startsWith('-') && !NEGATIVE_NUMBER.test(value)))
        throw new UsageError(
          `${token.rawName} needs a value`,
          `write ${token.rawName} VALUE (or ${token.rawName}=VALUE); see the usage below`,
        );
      if (option.multiple) (values[token.name] as string[]).push(value);
      else values[token.name] = value;
    }
  }
  return values;
}

/** Build a task's `main(argv, deps)` from its definition. */
export function defineTask<S extends FlagSpec, D extends TaskDeps = TaskDeps>(definition: TaskDefinition<S, D>): TaskMain<D> {
  const spec: FlagSpec = { ...definition.flags, ...COMMON, ...(definition.json ? { json: { type: 'boolean' } } : {}) };
  return async (argv = process.argv.slice(2), deps = {} as D) => {
    const out = deps.out ?? ((line: string) => void process.stdout.write(`${line}\n`));
    const err = deps.err ?? ((line: string) => void process.stderr.write(`${line}\n`));
    const positionals: string[] = [];
    let flags: FlagValues<S> & CommonFlags;
    try {
      flags = { json: false, ...parseFlags(argv, spec, definition.positionals ? positionals : undefined) } as FlagValues<S> & CommonFlags;
    } catch (error) {
      err(describeError(error));
      err('');
      err(definition.usage);
      return 2;
    }
    if (flags.help) {
      out(definition.usage);
      return 0;
    }
    const env = deps.env ?? process.env;
    try {
      setLogLevel(flags.verbose ? 'debug' : parseLogLevel(env));
      return await definition.run({ flags, env, out, err, deps, positionals });
    } catch (error) {
      err(describeError(error, flags.verbose));
      return error instanceof UsageError ? 2 : 1;
    }
  };
}

/** Load `.env*` and run `main` with the command line when `moduleUrl` is the entry point; its result is the exit code. */
export function runIfEntryPoint(moduleUrl: string, main: (argv: string[]) => Promise<number>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  loadEnvFiles();
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${describeError(error, true)}\n`);
      process.exitCode = 1;
    },
  );
}
