#!/usr/bin/env node
// npm run demo: deploys the bundled example (examples/site, zipped here with a build number) into
// demo/ of this clone, with the example hooks. The first run deploys build 1, then checks again
// and finds nothing new; each later run publishes the next build and the agent updates from the
// old release to the new one. No server, no root. `npm run demo -- --fresh` starts over.
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import yazl from 'yazl';

const root = fileURLToPath(new URL('..', import.meta.url));
// DEMO_DIR: where the demo lives (its test runs it in a temporary directory).
const demo = process.env.DEMO_DIR ?? join(root, 'demo');
const site = join(root, 'examples', 'site');
const buildFile = join(demo, 'build-number');

function addTree(zip, directory) {
  for (const name of readdirSync(directory).sort()) {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) addTree(zip, path);
    else zip.addFile(path, relative(site, path));
  }
}

/** The site as a CI job would publish it: its files plus build.txt, so every build differs. */
async function publish(build) {
  const zip = new yazl.ZipFile();
  addTree(zip, site);
  zip.addBuffer(Buffer.from(`build ${build}\n`), 'build.txt');
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(join(demo, 'site.zip')));
  await writeFile(buildFile, `${build}\n`);
}

if (process.argv.includes('--fresh')) await rm(demo, { recursive: true, force: true });
const previousBuild = existsSync(buildFile) ? Number(readFileSync(buildFile, 'utf8')) || 0 : 0;
const build = previousBuild + 1;
await mkdir(demo, { recursive: true });
await publish(build);

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
  console.log(`\n== ${title}\n$ repo-deploy -f -c ${relative(process.cwd(), config)}`);
  const result = spawnSync(process.execPath, [cli, '-f', '-c', config], { stdio: 'inherit' });
  console.log(`exit status ${result.status}`);
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (previousBuild === 0) {
  deploy(`First run: build ${build} is published; the agent downloads it, stages a release, runs the hooks, swaps the live link`);
} else {
  deploy(`Build ${build} is published: the agent stages it as a new release and updates from build ${previousBuild}`);
}
deploy('Checking again: the archive has not changed, so nothing is staged and no hook runs');

const live = join(demo, 'www', 'current');
console.log(`\n${relative(process.cwd(), live)} -> ${readlinkSync(live)}  (${readFileSync(join(live, 'build.txt'), 'utf8').trim()})`);
console.log(`releases: ${readdirSync(join(demo, 'www', 'releases')).filter((name) => !name.startsWith('.')).join(', ')}`);
console.log(`state:    ${relative(process.cwd(), join(demo, 'cache', 'state.json'))}`);
console.log(`\nRun npm run demo again to publish build ${build + 1} and see the update; then try`);
console.log(`node dist/cli.js status -c ${relative(process.cwd(), config)}, releases, and rollback.`);
