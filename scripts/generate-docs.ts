// Writes what the docs would otherwise repeat by hand from the tables in src/: the README's
// exit-code table (base/errors.ts exitCodeDocs) and settings table (core/settings-schema.ts),
// and etc/repo-deploy.cfg (those settings, laid out by scripts/config-file-layout.ts).
//   node --import tsx scripts/generate-docs.ts           writes them
//   node --import tsx scripts/generate-docs.ts --check   changes nothing; exit 1 naming what differs
// test/docs.test.ts runs the check, so a table and its docs cannot drift apart.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitCodeDocs } from '../src/base/errors.js';
import { settingSpecs, type SettingSpec } from '../src/core/settings-schema.js';
import { configFileLayout } from './config-file-layout.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A markdown table row; an empty cell is written `| |`, as by hand. */
const row = (cells: string[]) => `| ${cells.join(' | ')} |`.replace(/\|  \|/g, '| |');

const marker = (name: string) => [`<!-- generated from src/ by scripts/generate-docs.ts: ${name} -->`, `<!-- end of ${name} -->`] as const;

function exitCodeTable(): string[] {
  return ['| code | meaning | what to do |', '|---|---|---|', ...[...exitCodeDocs].sort((a, b) => a.code - b.code).map((doc) => row([String(doc.code), doc.meaning, doc.whatToDo]))];
}

const defaultCell = (spec: SettingSpec): string => ('defaultValue' in spec && spec.defaultValue !== undefined ? `\`${spec.defaultValue}\`` : 'defaultFrom' in spec ? (spec.defaultFrom ?? '') : '');

function settingsTable(): string[] {
  return ['| key | default | meaning |', '|---|---|---|', ...settingSpecs.map((spec) => row([`\`${spec.key}\``, defaultCell(spec), spec.description]))];
}

/** The README with each generated table put between its markers. */
function withTables(readme: string): string {
  let text = readme;
  for (const [name, lines] of [['exit codes', exitCodeTable()], ['settings', settingsTable()]] as const) {
    const [begin, end] = marker(name);
    const from = text.indexOf(begin);
    const to = text.indexOf(end);
    if (from === -1 || to < from) throw new Error(`README.md has no "${begin}" ... "${end}" around the ${name} table`);
    text = `${text.slice(0, from + begin.length)}\n${lines.join('\n')}\n${text.slice(to)}`;
  }
  return text;
}

function configFile(): string {
  const specs = new Map<string, SettingSpec>(settingSpecs.map((spec) => [spec.key, spec]));
  const seen = new Set<string>();
  const paragraphs = configFileLayout.map(({ comment, entries }) => [
    ...comment.map((line) => `#${line ? ` ${line}` : ''}`),
    ...entries.map((entry) => {
      if ('text' in entry) return `#${entry.text ? ` ${entry.text}` : ''}`;
      const spec = specs.get(entry.key);
      if (!spec) throw new Error(`scripts/config-file-layout.ts names ${entry.key}, which is no setting`);
      const value = entry.value ?? ('defaultValue' in spec ? spec.defaultValue : undefined);
      if (value === undefined) throw new Error(`scripts/config-file-layout.ts gives ${entry.key} no example, and it has no default`);
      seen.add(entry.key);
      return `${entry.active ? '' : '# '}${entry.key} = ${value}`;
    }),
  ].join('\n'));
  const missing = settingSpecs.filter((spec) => !seen.has(spec.key)).map((spec) => spec.key);
  if (missing.length) throw new Error(`scripts/config-file-layout.ts does not lay out ${missing.join(', ')}`);
  return `${paragraphs.join('\n\n')}\n`;
}

const check = process.argv.includes('--check');
const targets = [
  { path: join(root, 'README.md'), make: (current: string) => withTables(current) },
  { path: join(root, 'etc', 'repo-deploy.cfg'), make: () => configFile() },
];
const stale: string[] = [];
for (const { path, make } of targets) {
  const current = await readFile(path, 'utf8');
  const generated = make(current);
  if (generated === current) continue;
  if (check) stale.push(path);
  else await writeFile(path, generated);
}
if (stale.length) {
  process.stderr.write(`generate-docs: ${stale.join(', ')} differ from the tables in src/; run: node --import tsx scripts/generate-docs.ts\n`);
  process.exitCode = 1;
}
