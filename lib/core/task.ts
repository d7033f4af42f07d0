/**
 * One shape for every task (`npx tsx tasks/x.ts`): flags parsed once from a declared spec (node:util parseArgs),
 * unknown flags refused with the usage (exit 2), `--help`/`-h` (exit 0), `--verbose` (debug logging, stack
 * traces), `--json` where the task reports, LOG_LEVEL applied from the environment, errors rendered as the
 * one-line cause plus `next:` (describeError), exit codes 0 ok / 1 failed / 2 usage. `.env` files are loaded
 * only by runIfEntryPoint, at the edge, for the profile the command line names (`env=hk2`, `--env hk2`: takeProfile).
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
import { profileNameProblem } from './settings.ts';

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
      return reportFailure(error, err, flags.verbose);
    }
  };
}

/** A task's error as the one-line cause and `next:`; its exit code (UsageError 2, anything else 1). */
function reportFailure(error: unknown, err: (line: string) => void, verbose: boolean): number {
  err(describeError(error, verbose));
  return error instanceof UsageError ? 2 : 1;
}

/**
 * The profile words out of a task's command line: `env=NAME` (as just hands recipe words on), `--env NAME` and
 * `--env=NAME`; the rest is the task's. Without one, `fromEnv` (the real environment's DEPLOY_PROFILE). Two
 * different profiles, or a name that cannot be one, are a UsageError. Words after `--` are left alone.
 */
export function takeProfile(argv: readonly string[], fromEnv?: string): { profile?: string; argv: string[] } {
  const rest: string[] = [];
  let profile: string | undefined;
  let word: string | undefined;
  const take = (name: string, as: string) => {
    const problem = profileNameProblem(name);
    if (problem) throw new UsageError(`${as}: not a profile name`, problem);
    if (profile !== undefined && profile !== name) throw new UsageError(`${word} and ${as}: one profile per command`, 'give env=NAME once');
    profile = name;
    word = as;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg.startsWith('env=')) take(arg.slice('env='.length), arg);
    else if (arg.startsWith('--env=')) take(arg.slice('--env='.length), arg);
    else if (arg === '--env') {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('-')) throw new UsageError('--env needs a value', 'write --env NAME, e.g. --env hk2');
      take(value, `--env ${value}`);
      i++;
    } else rest.push(arg);
  }
  const inEnv = fromEnv?.trim() || undefined;
  if (profile !== undefined && inEnv !== undefined && inEnv !== profile)
    throw new UsageError(
      `${word} but DEPLOY_PROFILE=${inEnv} in the environment: which profile?`,
      `give one: unset DEPLOY_PROFILE or drop ${word}`,
    );
  if (profile === undefined && inEnv !== undefined) take(inEnv, `DEPLOY_PROFILE=${inEnv}`);
  return { profile, argv: rest };
}

/**
 * When `moduleUrl` is the entry point: the profile out of the command line (takeProfile), `.env*` loaded for it,
 * then `main` run with the rest; its result is the exit code. A bad profile or a missing .env.NAME is reported
 * like any task error.
 */
export function runIfEntryPoint(moduleUrl: string, main: (argv: string[]) => Promise<number>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  const err = (line: string) => void process.stderr.write(`${line}\n`);
  let argv: string[];
  try {
    const taken = takeProfile(process.argv.slice(2), process.env.DEPLOY_PROFILE);
    loadEnvFiles(taken.profile);
    argv = taken.argv;
  } catch (error) {
    process.exitCode = reportFailure(error, err, process.argv.includes('--verbose'));
    return;
  }
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      err(describeError(error, true));
      process.exitCode = 1;
    },
  );
}
