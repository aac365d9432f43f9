// Every setting is documented where operators look (the README's table and etc/repo-deploy.cfg),
// and the README's links into docs/ lead somewhere: the long documentation lives in docs/*.md,
// each file linked from the README, so a newcomer reads the README alone and can follow the rest.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { settingSpecs } from '../src/core/settings-schema.js';
import { spawnSync } from 'node:child_process';

const root = fileURLToPath(new URL('..', import.meta.url));

test('every config key is documented in the README and in etc/repo-deploy.cfg, with its default', async () => {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const example = await readFile(join(root, 'etc', 'repo-deploy.cfg'), 'utf8');
  for (const spec of settingSpecs) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${spec.key}\` |`));
    assert.ok(row, `README documents ${spec.key}`);
    if ('defaultValue' in spec) assert.ok(row.includes(`\`${spec.defaultValue}\``), `README gives the default of ${spec.key}`);
    assert.match(example, new RegExp(`^#? ?${spec.key} = `, 'm'), `etc/repo-deploy.cfg documents ${spec.key}`);
  }
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
}

/** The headings of a markdown file, outside code blocks. */
function anchorsIn(text: string): Set<string> {
  const anchors = new Set<string>();
  let inCode = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) inCode = !inCode;
    else if (!inCode && /^#{1,6} /.test(line)) anchors.add(anchorOf(line.replace(/^#+ /, '')));
  }
  return anchors;
}

/** Relative links ([text](target)) of a markdown file, outside code blocks. */
function relativeLinks(text: string): string[] {
  const prose = text.replace(/^```[\s\S]*?^```/gm, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]!).filter((target) => !/^[a-z]+:/.test(target));
}

test('every relative link of the README and of docs/*.md leads to a file and a heading that exist', async () => {
  const documents = ['README.md', ...(await readdir(join(root, 'docs'))).filter((name) => name.endsWith('.md')).map((name) => join('docs', name))];
  for (const document of documents) {
    const text = await readFile(join(root, document), 'utf8');
    for (const link of relativeLinks(text)) {
      const [file, anchor] = link.split('#') as [string, string | undefined];
      const target = file === '' ? join(root, document) : join(root, dirname(document), file);
      assert.ok(existsSync(target), `${document} links to ${link}, which does not exist`);
      if (anchor !== undefined) {
        assert.ok(anchorsIn(await readFile(target, 'utf8')).has(anchor), `${document} links to ${link}: ${relative(root, target)} has no such heading`);
      }
    }
  }
});

test('every file in docs/ is linked from the README', async () => {
  const links = new Set(relativeLinks(await readFile(join(root, 'README.md'), 'utf8')).map((link) => link.split('#')[0]));
  for (const name of await readdir(join(root, 'docs'))) {
    if (name.endsWith('.md')) assert.ok(links.has(`docs/${name}`), `README links to docs/${name}`);
  }
});

test('the README\'s exit-code and settings tables and etc/repo-deploy.cfg are what scripts/generate-docs.ts makes from the tables in src/', () => {
  const check = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'generate-docs.ts'), '--check'], { cwd: root, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
});
