#!/usr/bin/env node
// npm run demo: deploys the bundled example (examples/site, zipped here) into demo/ of this
// clone, with the example hooks, twice: the second run finds nothing new. No server, no root.
import { spawnSync } from 'node:child_process';
import { createWriteStream, readdirSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import yazl from 'yazl';

const root = fileURLToPath(new URL('..', import.meta.url));
const demo = join(root, 'demo');
const site = join(root, 'examples', 'site');

function addTree(zip, directory) {
  for (const name of readdirSync(directory).sort()) {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) addTree(zip, path);
    else zip.addFile(path, relative(site, path));
  }
}

await rm(demo, { recursive: true, force: true });
await mkdir(demo, { recursive: true });
const zip = new yazl.ZipFile();
addTree(zip, site);
zip.end();
await pipeline(zip.outputStream, createWriteStream(join(demo, 'site.zip')));

const config = join(demo, 'repo-deploy.cfg');
await writeFile(
  config,
  [
    '# Written by npm run demo. Relative paths are relative to this file.',
    `remote = ${join(demo, 'site.zip')}`,
    'local = www/current',
    'cache = cache',
    `pre-hooks = ${join(root, 'hooks.d-examples', 'pre-update.d')}`,
    `post-hooks = ${join(root, 'hooks.d-examples', 'post-update.d')}`,
    'hook-timeout = 30',
    '',
  ].join('\n'),
);

const cli = join(root, 'dist', 'cli.js');
function deploy(title) {
  console.log(`\n== ${title}\n$ repo-deploy -f -c demo/repo-deploy.cfg`);
  const result = spawnSync(process.execPath, [cli, '-f', '-c', config], { stdio: 'inherit' });
  console.log(`exit status ${result.status}`);
  if (result.status !== 0) process.exit(result.status ?? 1);
}

deploy('First run: downloads, stages, runs the hooks, swaps the live link');
deploy('Second run: the archive has not changed, so nothing is staged and no hook runs');

const live = join(demo, 'www', 'current');
console.log(`\n${relative(root, live)} -> ${readlinkSync(live)}`);
console.log(`releases: ${readdirSync(join(demo, 'www', 'releases')).filter((name) => !name.startsWith('.')).join(', ')}`);
console.log(`state:    ${relative(root, join(demo, 'cache', 'state.json'))}`);
console.log('\nEdit examples/site/index.html and run npm run demo again to see a new release.');
