/**
 * Every environment variable the project reads is documented, in env.example and in README.md's table. The
 * names are collected from the source text, not from a list kept by hand: the literals in lib/core/config.ts's
 * `pick(env, [...])`, `parseBool(env, [...])`, ... calls, and every `env.NAME` / `env['NAME']` /
 * `process.env.NAME` read in lib/, server/ and tasks/. A variable read through a computed index (`env[name]`)
 * takes its names from the upper-case string literals of the same file (the array it iterates over, the
 * credential names config.ts chooses between). So a new variable fails this test until it is documented.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** The code that runs for a miner: the server, the tasks and their library (not tests, bench or scripts). */
const SCANNED = ['lib', 'server', 'tasks'];

/** Read, but not a miner's setting: documented in neither file. */
const INTERNAL = [
  // set by the justfile for one `just deploy` run: the lock id its steps share (lib/deploy/step.ts, tasks/deploy.ts)
  'DEPLOY_RUN',
  // dotenv-flow's choice of `.env.<NODE_ENV>` files; not one of ours
  'NODE_ENV',
];

/** Documented in README.md, deliberately not in env.example. */
const README_ONLY = [
  // decides whether the .env files are read at all, so a line in .env cannot set it (the image sets it)
  'DOTENV_DISABLE',
  // read by glibc when the process starts, before any .env file (the image and `npm start` set it)
  'GLIBC_TUNABLES',
  // dev keys (//Alice) for local test chains only: not offered in the template a miner copies to .env
  'HOTKEY_URI',
  'ALLOW_DEV_KEYS',
];

const NAME = '[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*';
const QUOTED_NAME = new RegExp(`(['"\`])(${NAME})\\1`, 'g');
/** config.ts's readers: the first argument is the env, the second the names (a variable and its aliases). */
const CONFIG_READERS = /\b(?:pick|parseBool|parseInteger|parseNumber|parseBytes|parseList)\(\s*env\s*,\s*\[([^\]]*)\]/g;

/** The environment variable names a source text reads. */
function variablesRead(source: string): Set<string> {
  const names = new Set<string>();
  const quoted = (text: string) => [...text.matchAll(QUOTED_NAME)].map((m) => m[2]);
  // env.NAME, env?.NAME, process.env.NAME
  for (const m of source.matchAll(new RegExp(`\\benv\\??\\.(${NAME})\\b`, 'g'))) names.add(m[1]);
  // env['NAME'], env?.['NAME']
  for (const m of source.matchAll(new RegExp(`\\benv(?:\\?\\.)?\\[\\s*(['"\`])(${NAME})\\1\\s*\\]`, 'g'))) names.add(m[2]);
  // const { NAME, OTHER: alias } = process.env
  for (const m of source.matchAll(/\{([^{}]*)\}\s*=\s*(?:process\.)?env\b/g)) {
    for (const part of m[1].split(',')) {
      const key = part.split(/[:=]/)[0].trim();
      if (new RegExp(`^${NAME}$`).test(key)) names.add(key);
    }
  }
  // pick(env, ['NAME', 'ALIAS']) and the other readers of config.ts
  let computed = false;
  for (const m of source.matchAll(CONFIG_READERS)) {
    for (const name of quoted(m[1])) names.add(name);
    // an entry that is not a string literal, e.g. [credentialNames.username]
    if (m[1].replace(QUOTED_NAME, '').replace(/[\s,]/g, '') !== '') computed = true;
  }
  // env[name]: a computed index
  if (/\benv(?:\?\.)?\[\s*(?!['"`\s])/.test(source)) computed = true;
  if (computed) for (const name of quoted(source)) names.add(name);
  return names;
}

function sourceFiles(): string[] {
  return SCANNED.flatMap((dir) =>
    readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts'))
      .map((file) => path.join(ROOT, dir, file)),
  );
}

/** Every variable read in lib/, server/ and tasks/, with the files that read it. */
function collectVariables(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of sourceFiles()) {
    for (const name of variablesRead(readFileSync(file, 'utf8'))) {
      found.set(name, [...(found.get(name) ?? []), path.relative(ROOT, file)]);
    }
  }
  return found;
}

/** The names that do not appear as a whole word in `text` (MINER_PORT does not document PORT). */
function undocumented(names: Iterable<string>, text: string): string[] {
  return [...names].filter((name) => !new RegExp(`(?<![A-Za-z0-9_])${name}(?![A-Za-z0-9_])`).test(text)).sort();
}

const envExample = readFileSync(path.join(ROOT, 'env.example'), 'utf8');
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

test('variablesRead: every form of read is collected, and nothing else', () => {
  const source = [
    "const a = pick(env, ['NEW_SETTING', 'NEW_ALIAS'])?.value;",
    "const b = parseBool(env, ['SOME_SWITCH'], false);",
    "const c = parseInteger(env, ['A_NUMBER'], 1, 0, 9);",
    'const d = process.env.DIRECT_READ;',
    'const e = env?.OPTIONAL_READ;',
    'const f = env[\'BRACKET_READ\'] ?? process.env["DOUBLE_QUOTED"];',
    'const { DESTRUCTURED, RENAMED: renamed } = process.env;',
    "const message = 'NOT_READ is only a string here';",
    'const g = environment.NOT_ENV + myenv.NOT_EITHER;',
  ].join('\n');
  assert.deepEqual([...variablesRead(source)].sort(), [
    'A_NUMBER',
    'BRACKET_READ',
    'DESTRUCTURED',
    'DIRECT_READ',
    'DOUBLE_QUOTED',
    'NEW_ALIAS',
    'NEW_SETTING',
    'OPTIONAL_READ',
    'RENAMED',
    'SOME_SWITCH',
  ]);
});

test('variablesRead: a computed index (env[name]) takes the upper-case literals of the file', () => {
  const dynamic = "const names = ['DYN_ONE', 'DYN_TWO'] as const;\nfor (const name of names) use(env[name]);\nconst x = 'lower_case';";
  assert.deepEqual([...variablesRead(dynamic)].sort(), ['DYN_ONE', 'DYN_TWO']);
  const indirect = "const names = { user: 'HUB_USER' };\nconst u = pick(env, [names.user]);\nconst p = pick(env, ['PLAIN']);";
  assert.deepEqual([...variablesRead(indirect)].sort(), ['HUB_USER', 'PLAIN']);
  // without a computed read, a literal is not a variable
  assert.deepEqual([...variablesRead("const names = ['DYN_ONE'];\nuse(env.OTHER);")], ['OTHER']);
});

test('undocumented: a name is documented only as a whole word', () => {
  const text = '# Port\nMINER_PORT=8000\n# Also accepted: NETUID.\n| `VERIFY_ENABLED` (`VERIFY`) |';
  assert.deepEqual(undocumented(['MINER_PORT', 'PORT', 'NETUID', 'VERIFY', 'VERIFY_ENABLED', 'FAKE_NEW_VARIABLE', 'MINER'], text), [
    'FAKE_NEW_VARIABLE',
    'MINER',
    'PORT',
  ]);
});

test('the collection finds the variables known to be read (config aliases, computed, direct reads)', () => {
  const found = collectVariables();
  const expected = [
    // config.ts, with aliases
    'MINER_PORT',
    'PORT',
    'BLACKLIST_ENABLED',
    'BLACKLIST',
    'SUBTENSOR_NETWORK',
    'LOG_LEVEL',
    'IMAGE_REPO',
    'DOCKERHUB_REPO',
    // config.ts, chosen through credentialNames
    'DOCKERHUB_USERNAME',
    'DOCKERHUB_TOKEN',
    'REGISTRY_USERNAME',
    'REGISTRY_TOKEN',
    // tasks/build.ts, through env[name]
    'MODEL_SRC',
    'BASE_IMAGE',
    // direct reads
    'DOTENV_DISABLE',
    'HOTKEY_URI',
    'ALLOW_DEV_KEYS',
    'DEPLOY_RUN',
  ];
  assert.deepEqual(
    expected.filter((name) => !found.has(name)),
    [],
  );
  assert.ok(found.size >= 60, `only ${found.size} variables found: ${[...found.keys()].join(', ')}`);
  assert.deepEqual(found.get('MODEL_SRC'), ['tasks/build.ts']);
  assert.ok(found.get('DEPLOY_RUN')?.includes('tasks/deploy.ts'));
  // the exceptions are variables that are read (no stale entry hides a name)
  assert.deepEqual(
    README_ONLY.filter((name) => !found.has(name)),
    [],
  );
});

const documentedNames = () => {
  const found = collectVariables();
  const names = [...found.keys()].filter((name) => !INTERNAL.includes(name));
  const where = (list: string[]) => list.map((name) => `${name} (${found.get(name)?.join(', ')})`);
  return { names, where };
};

test('every variable read is in env.example (except the internal and README-only ones listed above)', () => {
  const { names, where } = documentedNames();
  const missing = undocumented(
    names.filter((name) => !README_ONLY.includes(name)),
    envExample,
  );
  assert.deepEqual(where(missing), [], 'read but not in env.example');
});

test('every variable read is in README.md (except the internal ones listed above)', () => {
  const { names, where } = documentedNames();
  assert.deepEqual(where(undocumented(names, readme)), [], 'read but not in README.md');
});
