// A lost state (the cache deleted, state.json gone) costs a re-download, never the live release:
// release names are unique against what is on disk, and a failure path removes only what its own
// run made. The clock is injected, so "the same revision again within the same second" is certain.
import assert from 'node:assert/strict';
import { readFile, readdir, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSettings } from '../src/settings/config.js';
import { createLogger } from '../src/base/log.js';
import { checkForUpdate } from '../src/check/update.js';
import { makeSandbox } from './helpers/cli.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

test('the same revision deployed again within the same second after the state was lost: the live release stays live, 5 of 5 times', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root);
  const archive = join(root, 'app.zip');
  await zipTree({ 'index.html': 'version 1\n' }, archive, root);
  const settings = await loadSettings({ flags: { config: sandbox.config, remote: archive, local: sandbox.live, cache: sandbox.cache, preHooks: sandbox.preHooks, postHooks: sandbox.postHooks }, env: {}, cwd: root });
  const lines: string[] = [];
  const now = () => new Date('2026-12-03T08:00:00.250Z');
  const context = { settings, log: createLogger({ verbose: true, write: (line) => lines.push(line), now }), env: {}, now, signal: new AbortController().signal, lockWaitMs: 0 };

  assert.equal((await checkForUpdate(context)).result, 'updated');
  for (let attempt = 1; attempt <= 5; attempt++) {
    const before = await readlink(sandbox.live);
    // Alternately the whole cache and the state file alone, as an operator or a full disk loses them.
    await rm(attempt % 2 ? sandbox.cache : join(sandbox.cache, 'state.json'), { recursive: true, force: true });
    const outcome = await checkForUpdate(context);
    assert.equal(outcome.result, 'updated', `attempt ${attempt}: ${lines.join('\n')}`);
    const after = await readlink(sandbox.live);
    assert.notEqual(after, before, `attempt ${attempt} made a release of its own`);
    assert.equal(await readFile(join(sandbox.live, 'index.html'), 'utf8'), 'version 1\n', `attempt ${attempt}: the live link points at a whole release`);
    assert.equal(await readFile(join(root, 'www', before, 'index.html'), 'utf8'), 'version 1\n', `attempt ${attempt}: the release live before is still on disk`);
  }
  // The releases the lost states forgot are listed again and pruned like the others.
  const onDisk = (await readdir(join(root, 'www', 'releases'))).filter((name) => !name.startsWith('.'));
  assert.equal(onDisk.length, settings.keepReleases, onDisk.join(', '));
  assert.ok(lines.some((line) => /releases? on disk that the state did not list \(it was lost\)/.test(line)));
});
