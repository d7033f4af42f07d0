/**
 * Tasks are thin: a task parses flags, calls lib and prints. Logic two tasks share lives in lib/, so no task
 * imports another (`from './challenge.ts'` in tasks/eval.ts would make eval depend on challenge's command line).
 * The imports are read from the source text of every tasks/*.ts, static and dynamic alike.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const TASKS = path.resolve(import.meta.dirname, '../../tasks');

/** Every module specifier of `source`: `import ... from 'x'`, `export ... from 'x'`, `import('x')`, `import 'x'`. */
function specifiers(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/\b(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) found.push(match[1] as string);
  return found;
}

/** A specifier that, written in tasks/, names another task: `./x.ts`, or a path that comes back into tasks/. */
function isTaskImport(specifier: string): boolean {
  if (!specifier.startsWith('.')) return false;
  return path.dirname(path.resolve(TASKS, specifier)) === TASKS;
}

test('the import scan sees static, re-exported and dynamic imports, and tells task imports from lib imports', () => {
  const source = `import { a } from './challenge.ts';\nexport { b } from "../lib/core/task.ts";\nconst c = await import('../tasks/commit.ts');\nimport 'node:fs';`;
  assert.deepEqual(specifiers(source), ['./challenge.ts', '../lib/core/task.ts', '../tasks/commit.ts', 'node:fs']);
  assert.deepEqual(specifiers(source).map(isTaskImport), [true, false, true, false]);
});

/** The one exception: `just deploy` runs the five steps' own `main`s in-process, in order (tasks/deploy.ts). */
const ALLOWED: Record<string, string[]> = {
  'deploy.ts': ['./build.ts', './commit.ts', './push.ts', './rehearse.ts', './share.ts', './start.ts'],
};

test('no task imports another task', () => {
  const files = readdirSync(TASKS).filter((name) => name.endsWith('.ts'));
  assert.ok(files.includes('challenge.ts') && files.includes('eval.ts'), `tasks/ listed: ${files.join(', ')}`);
  const offending: string[] = [];
  let libImports = 0;
  for (const name of files) {
    for (const specifier of specifiers(readFileSync(path.join(TASKS, name), 'utf8'))) {
      if (isTaskImport(specifier) && !ALLOWED[name]?.includes(specifier)) offending.push(`tasks/${name} imports ${specifier}`);
      else if (specifier.startsWith('../lib/')) libImports++;
    }
  }
  assert.ok(libImports > files.length, `the scan found only ${libImports} lib imports in ${files.length} tasks`);
  assert.deepEqual(offending, [], 'move the shared code into lib/ and import it from there in both tasks');
});
