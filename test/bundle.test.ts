// The shipped program is dist/, an esbuild bundle with code splitting (scripts/bundle.mjs). The
// bundle differs from Node in one way that bit us: a lazy `import('pkg')` of a CommonJS package
// yields only its default export there, so every named export read from it was undefined.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.js';

const root = join(import.meta.dirname, '..');

async function sourceFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith('.ts')).map((entry) => join(entry.parentPath, entry.name));
}

test('every package the program imports lazily is an ES module; CommonJS ones go through src/lazy/', async () => {
  const offenders: string[] = [];
  for (const file of await sourceFiles(join(root, 'src'))) {
    for (const [, specifier] of (await readFile(file, 'utf8')).matchAll(/\bimport\(\s*'([^'.][^']*)'\s*\)/g)) {
      const name = specifier!.startsWith('@') ? specifier!.split('/').slice(0, 2).join('/') : specifier!.split('/')[0]!;
      const manifest = JSON.parse(await readFile(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { type?: string };
      if (manifest.type !== 'module') offenders.push(`${file.slice(root.length + 1)}: import('${specifier}') of a CommonJS package`);
    }
  }
  assert.deepEqual(offenders, []);
});

test('the bundle loads every lazily imported package with its named exports (a bad schedule names the bad field)', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'repo-deploy-bundle-'));
  t.after(() => rm(directory, { recursive: true, force: true }));
  await writeFile(join(directory, 'agent.cfg'), 'remote = file:///nonexistent\nschedule = 61 * * * *\n');
  const result = await runCli(['check-config', '-c', join(directory, 'agent.cfg')]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stdout, /^FAILED +schedule: schedule "61 \* \* \* \*" is not a valid cron expression: minute "61"/m);
});

test('an idle HTTP check loads neither the zip reader nor the multipart parser (deltas load them only when an archive changed) nor undici\'s index (fetch, WebSocket, mocks, caches)', async (t) => {
  const { setup } = await import('./helpers/zip-agent.js');
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const record = join(s.root, 'loads.txt');
  const register = join(import.meta.dirname, 'helpers', 'record-loads-register.mjs');
  const idle = await s.once([], { NODE_OPTIONS: `--import=${register}`, RECORD_LOADS_TO: record });
  assert.equal(idle.code, 0, idle.stderr);
  const chunks = (await readFile(record, 'utf8')).split('\n').filter((url) => url.includes('/dist/'));
  assert.ok(chunks.some((url) => url.includes('/http-zip-')), chunks.join('\n'));
  for (const url of chunks) {
    const text = await readFile(new URL(url), 'utf8');
    assert.doesNotMatch(text, /\/\/ node_modules\/(yauzl|@remix-run\/multipart-parser)\//, `${url.split('/').pop()} holds the zip reader or the multipart parser`);
    assert.doesNotMatch(text, /\/\/ node_modules\/undici\/(index\.js|lib\/(mock|cache|web\/websocket)\/)/, `${url.split('/').pop()} holds undici's index or the parts only it loads`);
  }
});

test('--help wraps its descriptions between words, never inside one (cliui from its CommonJS build)', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0, help.stderr);
  const joined = help.stdout.replace(/\s*\n\s*/g, ' ');
  for (const sentence of ['Show the live release, the last check and its result, held-back revisions', 'Check the live tree against the manifest made when it was deployed (exit 8 on any difference)']) {
    assert.ok(joined.includes(sentence), `--help broke "${sentence}" inside a word:\n${help.stdout}`);
  }
});

test('the bundle takes packages\' ES module builds where they have one (the AWS SDK\'s dist-es, tree-shaken: an idle S3 check loaded all of dist-cjs, 1 MB)', async () => {
  const chunks = (await readdir(join(root, 'dist'))).filter((name) => name.endsWith('.js'));
  const commonJsBuilds = new Set<string>();
  for (const name of chunks) {
    for (const [, module] of (await readFile(join(root, 'dist', name), 'utf8')).matchAll(/^\/\/ node_modules\/((?:@aws-sdk|@smithy)\/[^/]+)\/dist-cjs\//gm)) commonJsBuilds.add(module!);
  }
  assert.deepEqual([...commonJsBuilds], []);
});
