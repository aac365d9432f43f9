// The folders of src/ are stacked (docs/development.md): a file imports from its own folder and
// from folders below it, never from one above. This reads every import and says which climbs.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const source = resolve(dirname(fileURLToPath(import.meta.url)), '../src');
/** From the bottom up; '.' is src/ itself (cli.ts, entry.ts). */
const stack = ['base', 'core', 'notify', 'settings', 'verify', 'history', 'remotes', 'release', 'gates', 'fleet', 'check', 'daemon', 'operator', '.'];

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith('.ts') ? [path] : [];
  });
}

function folderOf(path: string): string {
  const parts = relative(source, path).split('/');
  return parts.length > 1 ? parts[0]! : '.';
}

test('every folder of src/ is on the stack, and no import climbs back up it', () => {
  const climbs: string[] = [];
  for (const file of sourceFiles(source)) {
    const folder = folderOf(file);
    assert.ok(stack.includes(folder), `src/${relative(source, file)} is in a folder the stack does not name (${folder})`);
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/(?:from|import\(|import)\s*'(\.{1,2}\/[^']*)'/g)) {
      const target = resolve(dirname(file), specifier!);
      if (!target.startsWith(source)) {
        climbs.push(`src/${relative(source, file)} imports ${specifier}, outside src/`);
        continue;
      }
      if (stack.indexOf(folderOf(target)) > stack.indexOf(folder)) climbs.push(`src/${relative(source, file)} (${folder}) imports ${specifier} (${folderOf(target)})`);
    }
  }
  assert.deepEqual(climbs, []);
});
