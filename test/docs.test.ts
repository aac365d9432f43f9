// Every setting is documented where operators look: the README's table and etc/repo-deploy.cfg.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { settingSpecs } from '../src/settings-schema.js';

test('every config key is documented in the README and in etc/repo-deploy.cfg, with its default', async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const example = await readFile(new URL('../etc/repo-deploy.cfg', import.meta.url), 'utf8');
  for (const spec of settingSpecs) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${spec.key}\` |`));
    assert.ok(row, `README documents ${spec.key}`);
    if ('defaultValue' in spec) assert.ok(row.includes(`\`${spec.defaultValue}\``), `README gives the default of ${spec.key}`);
    assert.match(example, new RegExp(`^#? ?${spec.key} = `, 'm'), `etc/repo-deploy.cfg documents ${spec.key}`);
  }
});
