/**
 * env.example and docs/configuration.md, generated from the settings table (lib/core/settings.ts), so the
 * documentation cannot drift from what loadConfig reads and what the container gets.
 *
 *   node scripts/settings-docs.ts --write    (rewrite both files)
 *   node scripts/settings-docs.ts --check    (exit 1 naming the files that differ; test/unit/env-docs.test.ts does the same)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GROUPS, SETTING_LIST, type Setting, type SettingGroup } from '../lib/core/settings.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ENV_EXAMPLE = path.join(ROOT, 'env.example');
export const CONFIGURATION_DOC = path.join(ROOT, 'docs/configuration.md');

const WIDTH = 110;

type Entry = Setting<unknown> & { name: string };

/** `text` as `# ` comment lines of at most WIDTH characters (a longer word stays whole). */
function comment(text: string): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line.length + 1 + word.length > WIDTH && line !== '#') {
      lines.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  if (line !== '#') lines.push(line);
  return lines;
}

function sentence(text: string): string {
  return text.endsWith('.') ? text : `${text}.`;
}

function groups(): [SettingGroup, Entry[]][] {
  return (Object.keys(GROUPS) as SettingGroup[])
    .map((group): [SettingGroup, Entry[]] => [group, SETTING_LIST.filter((s) => s.group === group)])
    .filter(([, entries]) => entries.length > 0);
}

export function renderEnvExample(): string {
  const out = [
    '# score-miner configuration. Copy to .env and edit; every variable is optional.',
    '# The server and the tasks read .env / .env.local (dotenv-flow); real environment variables win.',
    '# A profile (just deploy tag=v1.0.0 env=hk2) reads .env.hk2 over this file: one hotkey each.',
    '# Generated from lib/core/settings.ts by `node scripts/settings-docs.ts --write`: edit the table there, not this file.',
    '# docs/configuration.md has the same settings as a table, and which of them the miner container gets.',
  ];
  for (const [group, entries] of groups()) {
    const shown = entries.filter((s) => !s.docsOnly);
    if (shown.length === 0) continue;
    const { title, intro } = GROUPS[group];
    out.push('', `# ---- ${title} ${'-'.repeat(Math.max(4, WIDTH - title.length - 7))}`);
    if (intro) out.push(...comment(intro));
    for (const setting of shown) {
      const aliases = setting.aliases?.length ? ` Also accepted: ${setting.aliases.join(', ')}.` : '';
      out.push(...comment(`${sentence(setting.doc)}${aliases}`));
      out.push(setting.example !== undefined ? `# ${setting.name}=${setting.example}` : `${setting.name}=${setting.default ?? ''}`);
    }
  }
  return `${out.join('\n')}\n`;
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

export function renderConfigurationDoc(): string {
  const out = [
    '# Configuration',
    '',
    'Every setting is an environment variable, read from `.env` / `.env.local` in the project root (dotenv-flow) or',
    "from the real environment, which wins. Invalid values stop the program at start-up with the variable's name,",
    'the value and the expected form. [`env.example`](../env.example) lists the same settings with their defaults:',
    'copy it to `.env` and edit. A profile (`env=NAME` on a recipe, `--env NAME` on a task) reads `.env.NAME` and',
    '`.env.NAME.local` over them: one hotkey each (README, "One box, two boxes, two hotkeys").',
    '',
    'Names in brackets are aliases (the spot-check harness sets `VERIFY` and `BLACKLIST`, btcli users write',
    '`WALLET_NAME`): each reads exactly as the first name. **container**: `tasks/start.ts` passes the setting to',
    'the miner container under the first name, whichever alias `.env` used, so `just deploy` runs the miner with',
    'what `npm start` reads; the others are read on the host only. Registry tokens never reach the container.',
    '',
    'This page and env.example are generated from the settings table in `lib/core/settings.ts`',
    '(`node scripts/settings-docs.ts --write`); a test fails when they differ from it. A new setting is one entry there.',
  ];
  for (const [group, entries] of groups()) {
    const { title, intro } = GROUPS[group];
    out.push('', `## ${title}`, '');
    if (intro) out.push(intro, '');
    out.push('| variable | default | container | meaning |', '| --- | --- | --- | --- |');
    for (const setting of entries) {
      const names = [setting.name, ...(setting.aliases ?? [])].map((n) => `\`${n}\``);
      const variable = names.length > 1 ? `${names[0]} (${names.slice(1).join(', ')})` : names[0];
      const fallback = setting.defaultText ?? (setting.default !== undefined ? `\`${setting.default}\`` : '—');
      out.push(`| ${variable} | ${cell(fallback)} | ${setting.container ? 'yes' : ''} | ${cell(setting.doc)} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** The generated files and what each should hold. */
export function generated(): { file: string; text: string }[] {
  return [
    { file: ENV_EXAMPLE, text: renderEnvExample() },
    { file: CONFIGURATION_DOC, text: renderConfigurationDoc() },
  ];
}

function main(argv: string[]): number {
  const write = argv.includes('--write');
  if (!write && !argv.includes('--check')) {
    process.stderr.write('usage: node scripts/settings-docs.ts --write | --check\n');
    return 2;
  }
  const stale: string[] = [];
  for (const { file, text } of generated()) {
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {}
    if (current === text) continue;
    if (write) {
      writeFileSync(file, text);
      process.stdout.write(`wrote ${path.relative(ROOT, file)}\n`);
    } else stale.push(path.relative(ROOT, file));
  }
  if (stale.length) {
    process.stderr.write(`error: ${stale.join(', ')} differ from lib/core/settings.ts\n  next: node scripts/settings-docs.ts --write\n`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
