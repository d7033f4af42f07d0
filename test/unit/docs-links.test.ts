/**
 * README.md and docs/*.md stay true to the tree: every relative link leads to a file that exists (and, with a
 * `#fragment`, to a heading of that file, by GitHub's anchor rules); every `npm` script, `just` recipe and
 * `tasks/*.ts` file the README names in code exists; and a deploy summary shown in a fenced block is exactly what
 * lib/deploy/report.ts prints for the rows it shows.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type SummaryWhere, summaryTable } from '../../lib/deploy/report.ts';
import { STEPS, type StepName, type StepRecord } from '../../lib/deploy/state.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DOCS = path.join(ROOT, 'docs');
const MARKDOWN = [
  'README.md',
  ...readdirSync(DOCS)
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** The text outside fenced code blocks (links inside them are code, not links), and the blocks themselves. */
function splitFences(markdown: string): { prose: string; blocks: string[] } {
  const prose: string[] = [];
  const blocks: string[] = [];
  let block: string[] | undefined;
  let indent = '';
  for (const line of markdown.split('\n')) {
    const fence = /^(\s*)(```|~~~)/.exec(line);
    if (fence && !block) {
      block = [];
      indent = fence[1];
    } else if (fence && block) {
      blocks.push(block.join('\n'));
      block = undefined;
    } else if (block) block.push(line.startsWith(indent) ? line.slice(indent.length) : line);
    else prose.push(line);
  }
  return { prose: prose.join('\n'), blocks };
}

/** Inline code spans (`like this`) of prose. */
function codeSpans(prose: string): string[] {
  return [...prose.matchAll(/`([^`\n]+)`/g)].map((match) => match[1]);
}

/** Link targets of `[text](target)` in prose, code spans left out. */
function linkTargets(prose: string): string[] {
  const withoutCode = prose.replace(/`[^`\n]*`/g, '');
  return [...withoutCode.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => match[1]);
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens; repeats get -1, -2, ... */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const match of splitFences(markdown).prose.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = match[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** What is wrong with one link target from `file` (undefined: it resolves). */
function brokenLink(file: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // http:, https:, mailto: — not a local file
  const [pathPart, fragment] = target.split('#', 2);
  const resolved = pathPart ? path.resolve(path.dirname(path.join(ROOT, file)), decodeURIComponent(pathPart)) : path.join(ROOT, file);
  if (!resolved.startsWith(ROOT)) return `${target} leaves the repository`;
  if (!existsSync(resolved)) return `${target}: no such file`;
  if (fragment === undefined) return undefined;
  if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) return `${target}: an anchor into a non-markdown file`;
  const anchors = headingAnchors(readFileSync(resolved, 'utf8'));
  return anchors.has(fragment) ? undefined : `${target}: no heading with anchor #${fragment}`;
}

test('headingAnchors: GitHub slugs, code and punctuation dropped, repeats numbered', () => {
  const markdown = [
    '# Title',
    '## What a stranger learns: `/health` and failed downloads',
    '## Install and run',
    '## Install and run',
    '```',
    '## not a heading',
    '```',
  ].join('\n');
  assert.deepEqual(
    [...headingAnchors(markdown)],
    ['title', 'what-a-stranger-learns-health-and-failed-downloads', 'install-and-run', 'install-and-run-1'],
  );
});

test('linkTargets: links in prose only, not in code spans or fenced blocks', () => {
  const { prose } = splitFences('see [a](docs/a.md#x) and `[b](b.md)`\n```\n[c](c.md)\n```\n[d](https://example.com)');
  assert.deepEqual(linkTargets(prose), ['docs/a.md#x', 'https://example.com']);
});

test('every relative link in README.md and docs/*.md resolves to a file and heading', () => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of MARKDOWN) {
    for (const target of linkTargets(splitFences(read(file)).prose)) {
      checked += 1;
      const problem = brokenLink(file, target);
      if (problem) broken.push(`${file}: ${problem}`);
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(checked > 40, `only ${checked} links found: the parser lost them`);
});

test('docs/README.md indexes every page in docs/', () => {
  const index = linkTargets(splitFences(read('docs/README.md')).prose);
  const pages = readdirSync(DOCS).filter((name) => name.endsWith('.md') && name !== 'README.md');
  assert.deepEqual(
    pages.filter((page) => !index.includes(page)),
    [],
  );
});

/** The commands of README.md: its fenced blocks line by line and its code spans. */
function readmeCommands(): string[] {
  const { prose, blocks } = splitFences(read('README.md'));
  return [...blocks.flatMap((block) => block.split('\n')), ...codeSpans(prose)].map((line) => line.trim());
}

test('README.md: every npm script, just recipe and tasks/*.ts it names exists', () => {
  const scripts = Object.keys(JSON.parse(read('package.json')).scripts as Record<string, string>);
  const recipes = [...read('justfile').matchAll(/^([a-z][\w-]*)(?:\s[^:=\n]*)?:(?!=)/gm)].map((match) => match[1]);
  const commands = readmeCommands();
  const npm = commands.flatMap((line) => [...line.matchAll(/\bnpm (?:run )?([a-z][\w:-]*)/g)].map((match) => match[1]));
  const just = commands.flatMap((line) => [...line.matchAll(/(?:^|[;&|]\s*)just ([a-z][\w-]*)/g)].map((match) => match[1]));
  const tasks = [...read('README.md').matchAll(/\btasks\/([\w-]+)\.ts\b/g)].map((match) => match[1]);
  const npmBuiltins = ['ci', 'install'];
  assert.ok(npm.includes('start') && npm.includes('test') && npm.includes('demo'), `npm commands found: ${npm}`);
  assert.ok(just.includes('deploy') && just.includes('axon') && just.includes('status'), `just recipes found: ${just}`);
  assert.deepEqual(
    npm.filter((name) => !scripts.includes(name) && !npmBuiltins.includes(name)),
    [],
    'npm scripts not in package.json',
  );
  assert.deepEqual(
    just.filter((name) => !recipes.includes(name)),
    [],
    'just recipes not in the justfile',
  );
  assert.deepEqual(
    tasks.filter((name) => !existsSync(path.join(ROOT, 'tasks', `${name}.ts`))),
    [],
    'tasks/*.ts files that do not exist',
  );
});

test('README.md: every justfile recipe and every tasks/*.ts is listed', () => {
  const readme = read('README.md');
  const recipes = [...read('justfile').matchAll(/^([a-z][\w-]*)(?:\s[^:=\n]*)?:(?!=)/gm)].map((match) => match[1]);
  const tasks = readdirSync(path.join(ROOT, 'tasks')).filter((name) => name.endsWith('.ts'));
  assert.deepEqual(
    recipes.filter((recipe) => !readme.includes(`\`just ${recipe}`)),
    [],
  );
  assert.deepEqual(
    tasks.filter((task) => !readme.includes(`tasks/${task}`)),
    [],
  );
});

/** The rows of a printed summary table, back to the records that print them (column widths from the dashes). */
function parseSummary(block: string): { records: StepRecord[]; words: string[]; where: SummaryWhere } {
  const lines = block.split('\n');
  const starts = [...lines[1].matchAll(/-+/g)].map((match) => match.index);
  const cell = (line: string, column: number) => line.slice(starts[column], starts[column + 1]).trim();
  const records: StepRecord[] = [];
  for (const line of lines.slice(2)) {
    if (line === '') break;
    const [step, result, produced, time] = [0, 1, 2, 3].map((column) => cell(line, column));
    if (time === '') continue; // `not run` / `skipped`: no record
    assert.ok(STEPS.includes(step as StepName), `unknown step ${step}`);
    records.push({ step: step as StepName, result: result as StepRecord['result'], produced, seconds: Number.parseFloat(time) });
  }
  const rerun = lines.at(-1)?.trim() ?? '';
  const words = rerun.startsWith('just deploy ') ? rerun.split(' ').slice(2) : [];
  const miner = /^miner on (.+?)(?: \(profile (.+)\))?; total /m.exec(block);
  assert.ok(miner, `no "miner on HOST; total" line in:\n${block}`);
  return { records, words, where: { host: miner[1], ...(miner[2] ? { profile: miner[2] } : {}) } };
}

test('the deploy summaries shown in README.md and docs/deploy.md are what lib/deploy/report.ts prints', () => {
  const shown = ['README.md', 'docs/deploy.md'].flatMap((file) =>
    splitFences(read(file)).blocks.filter((block) => /^step\s+result\s+produced\s+time\n/.test(block)),
  );
  assert.ok(shown.length >= 2, `summaries found: ${shown.length}`);
  for (const block of shown) {
    const { records, words, where } = parseSummary(block);
    assert.equal(block.trimEnd(), summaryTable(records, words, where));
  }
});
