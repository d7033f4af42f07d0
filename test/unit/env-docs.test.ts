/**
 * The settings table (lib/core/settings.ts) is the one list of environment variables: env.example and
 * docs/configuration.md are generated from it and must equal what the generator writes; a variable the code
 * names in a message or reads directly is one of its settings (or one of the few variables that are not a
 * miner's setting); the container never gets a registry credential.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SETTING_LIST, SETTING_NAMES } from '../../lib/core/settings.ts';
import { generated } from '../../scripts/settings-docs.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Named or read by the code, but not a miner's setting. */
const EXTERNAL = [
  // dotenv-flow's choice of `.env.<NODE_ENV>` files; the child processes' PATH; a container's temp folder
  'NODE_ENV',
  'PATH',
  'TMPDIR',
  // the placeholder in `NAME=VALUE` usage lines
  'NAME',
  // the docker CLI's own: how DEPLOY_HOST reaches the engine (lib/deploy/engine.ts)
  'DOCKER_HOST',
  'DOCKER_CONTEXT',
];

const NAME = '[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*';

/** The code that runs for a miner: the server, the tasks and their library. */
function sources(): { file: string; text: string }[] {
  return ['lib', 'server', 'tasks'].flatMap((dir) =>
    readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts'))
      .map((file) => ({ file: path.join(dir, file), text: readFileSync(path.join(ROOT, dir, file), 'utf8') })),
  );
}

/** `NAME=` as a message, hint or usage text writes it (`VERIFY=false`, `--build-arg MODEL_SRC=...`). */
function assignedNames(text: string): string[] {
  return [...text.matchAll(new RegExp(`(?<![A-Za-z0-9_$.])(${NAME})=(?!=)`, 'g'))].map((m) => m[1]);
}

/** `env.NAME`, `env?.NAME`, `process.env.NAME`, `env['NAME']`. */
function directReads(text: string): string[] {
  return [
    ...[...text.matchAll(new RegExp(`\\benv\\??\\.(${NAME})\\b`, 'g'))].map((m) => m[1]),
    ...[...text.matchAll(new RegExp(`\\benv(?:\\?\\.)?\\[\\s*(['"\`])(${NAME})\\1\\s*\\]`, 'g'))].map((m) => m[2]),
  ];
}

const unknown = (found: { file: string; name: string }[]) =>
  found.filter(({ name }) => !SETTING_NAMES.has(name) && !EXTERNAL.includes(name)).map(({ file, name }) => `${name} (${file})`);

test('env.example and docs/configuration.md are what scripts/settings-docs.ts generates from the table', () => {
  for (const { file, text } of generated()) {
    assert.equal(readFileSync(file, 'utf8'), text, `${path.relative(ROOT, file)} is stale: run node scripts/settings-docs.ts --write`);
  }
});

test('every NAME= in a message, hint or usage text names a setting (or an external variable)', () => {
  assert.deepEqual(assignedNames(`hint: 'set VERIFY=false or (IMAGE_REGISTRY=ghcr)', x === Y, \${name}=, a.B=`), [
    'VERIFY',
    'IMAGE_REGISTRY',
  ]);
  const found = sources().flatMap(({ file, text }) => assignedNames(text).map((name) => ({ file, name })));
  assert.ok(found.length >= 20, `only ${found.length} found`);
  assert.deepEqual(unknown(found), []);
});

test('every variable read directly (env.NAME) is a setting (or an external variable)', () => {
  assert.deepEqual(directReads("process.env.GLIBC_TUNABLES; env?.HOTKEY_URI; env['DOTENV_DISABLE']; environment.NOT"), [
    'GLIBC_TUNABLES',
    'HOTKEY_URI',
    'DOTENV_DISABLE',
  ]);
  const found = sources().flatMap(({ file, text }) => directReads(text).map((name) => ({ file, name })));
  assert.deepEqual(unknown(found), []);
});

test('the container gets no registry credential; the one secret it gets is HEALTH_TOKEN, which its server reads', () => {
  const secrets = SETTING_LIST.filter((s) => s.secret);
  assert.deepEqual(secrets.map((s) => s.name).sort(), ['DOCKERHUB_TOKEN', 'HEALTH_TOKEN', 'REGISTRY_TOKEN']);
  assert.deepEqual(
    secrets.filter((s) => s.container).map((s) => s.name),
    ['HEALTH_TOKEN'],
  );
  const deployOnly = SETTING_LIST.filter((s) => s.group === 'deploy' && s.container).map((s) => s.name);
  assert.deepEqual(deployOnly, []);
});
