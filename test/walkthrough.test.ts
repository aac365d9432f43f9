// The README's "Deploy your own app" walkthrough, run as written: every shell block in order, the
// config block a reader saves (once the git-subdirectory one, once the zip one, with the URL of a
// real server on loopback in place of the example's), then the crontab line, which meets a release
// the pre-update hook refuses and then a good one. Nothing here is a copy of the README's steps:
// change a step there and this test runs the new one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, readlink, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { cliPath } from './helpers/cli.js';
import { createRepository } from './helpers/git-repos.js';
import { startGitHttpServer } from './helpers/git-servers.js';
import { startHttpServer } from './helpers/http-server.js';
import { readmeSectionBlocks, type CodeBlock } from './helpers/readme-steps.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

interface Shell {
  code: number;
  stdout: string;
  stderr: string;
}

function shell(script: string, env: NodeJS.ProcessEnv, cwd: string): Promise<Shell> {
  return new Promise((resolve) => {
    execFile('bash', ['-euo', 'pipefail', '-c', script], { env, cwd, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }));
  });
}

/** The remote a reader deploys: where its example URL stands, and how to publish a version. */
interface App {
  exampleUrl: string;
  url: string;
  publish(files: Record<string, string>): Promise<void>;
}

async function gitApp(t: TestContext, root: string): Promise<App> {
  const repository = await createRepository(root, 'myapp');
  const server = await startGitHttpServer(t, join(root, 'srv'));
  let previous: string[] = [];
  return {
    exampleUrl: 'https://git.example.com/you/myapp.git',
    url: server.url('myapp.git'),
    async publish(files) {
      // Only public/ is deployed; a file beside it proves the subdirectory is what went live.
      const tree: Record<string, string | null> = { 'NOT-DEPLOYED.md': 'outside public/\n' };
      for (const name of previous) tree[`public/${name}`] = null;
      for (const [name, content] of Object.entries(files)) tree[`public/${name}`] = content;
      previous = Object.keys(files);
      await repository.commit(tree);
    },
  };
}

async function zipApp(t: TestContext, root: string): Promise<App> {
  const server = await startHttpServer(t);
  const zipPath = join(root, 'myapp.zip');
  server.route('/builds/myapp.zip', { kind: 'file', path: zipPath });
  let build = 0;
  return {
    exampleUrl: 'https://ci.example.com/builds/myapp.zip',
    url: server.url('/builds/myapp.zip'),
    async publish(files) {
      const next = await zipTree(files, join(root, `build-${++build}.zip`), root);
      await rename(next, zipPath); // published whole, as a CI upload would be
    },
  };
}

/** The walkthrough as one shell script: its shell blocks, and the chosen config block saved. */
function walkthroughScript(blocks: CodeBlock[], app: App): string {
  const configs = blocks.filter((block) => block.language === 'ini');
  assert.equal(configs.length, 2, 'the walkthrough gives a config for a git subdirectory and one for a zip URL');
  const chosen = configs.find((block) => block.text.includes(app.exampleUrl));
  assert.ok(chosen, `a config block uses ${app.exampleUrl}`);
  const steps: string[] = [];
  for (const block of blocks) {
    if (block.language === 'sh') steps.push(block.text);
    else if (block === chosen) steps.push(`cat > ~/myapp-deploy/myapp.cfg <<'END_OF_CONFIG'\n${block.text.replace(app.exampleUrl, app.url)}END_OF_CONFIG\n`);
  }
  return steps.join('\n');
}

/** The crontab block: its variable lines, and the command of its one job line. */
function crontabJob(blocks: CodeBlock[]): { variables: Record<string, string>; command: string } {
  const crontab = blocks.filter((block) => block.language === 'crontab');
  assert.equal(crontab.length, 1, 'the walkthrough gives one crontab block');
  const variables: Record<string, string> = {};
  const jobs: string[] = [];
  for (const line of crontab[0]!.text.split('\n').filter((text) => text.trim() !== '' && !text.startsWith('#'))) {
    const variable = /^([A-Z_]+)=(.*)$/.exec(line);
    if (variable) variables[variable[1]!] = variable[2]!;
    else jobs.push(line);
  }
  assert.equal(jobs.length, 1, 'one job line');
  const fields = jobs[0]!.split(/\s+/);
  assert.deepEqual(fields.slice(0, 5), ['*', '*', '*', '*', '*'], 'once a minute');
  return { variables, command: fields.slice(5).join(' ') };
}

for (const [kind, makeApp] of [['a git subdirectory', gitApp], ['a zip URL', zipApp]] as const) {
  test(`the README's "Deploy your own app", run as written for ${kind}: check-config, -f, status, then the crontab line blocks a bad release and deploys the next`, async (t) => {
    const root = await temporaryDirectory(t);
    const home = join(root, 'home');
    const bin = join(root, 'bin');
    await mkdir(home);
    await mkdir(bin);
    // `repo-deploy` on the PATH, as `npm install -g` puts it there.
    await writeFile(join(bin, 'repo-deploy'), `#!/bin/sh\nexec "${process.execPath}" "${cliPath}" "$@"\n`);
    await chmod(join(bin, 'repo-deploy'), 0o755);
    const app = await makeApp(t, root);
    await app.publish({ 'index.html': 'version 1\n' });

    const blocks = await readmeSectionBlocks('Deploy your own app');
    const env = { HOME: home, PATH: `${bin}:${process.env.PATH}`, LANG: 'C.UTF-8' };
    const run = await shell(walkthroughScript(blocks, app), env, home);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.doesNotMatch(run.stdout, /FAILED/);
    assert.match(run.stdout, /^ok +found: the remote is reachable; revision [0-9a-f]{12} .*would be deployed at the next check$/m);
    assert.match(run.stderr, /10-has-index/, 'the pre-update hook ran');
    assert.match(run.stderr, /\[50-reload\] now serving \S+ from \//, 'the post-update hook ran and its line is in the log');
    assert.match(run.stdout, /releases\/\S+/, 'ls -l shows the link to its release');
    assert.match(run.stdout, /^live: +\S+ \(revision [0-9a-f]{12}\)$/m, 'status shows the live release');

    const deployDirectory = join(home, 'myapp-deploy');
    const live = join(deployDirectory, 'www', 'current');
    assert.match(await readlink(live), /^releases\//);
    assert.equal(await readFile(join(live, 'index.html'), 'utf8'), 'version 1\n');
    await assert.rejects(readFile(join(live, 'NOT-DEPLOYED.md')), 'only the named subdirectory is deployed');

    // The crontab line, as cron runs it: sh -c, with the crontab's PATH (repo-deploy is where
    // npm -g put it) and HOME.
    const job = crontabJob(blocks);
    const cronEnv = { HOME: home, PATH: `${bin}:${job.variables.PATH ?? '/usr/bin:/bin'}` };
    const cron = () => shell(job.command, cronEnv, home);
    const log = () => readFile(join(deployDirectory, 'deploy.log'), 'utf8');

    await app.publish({ 'about.html': 'no index here\n' });
    const blocked = await cron();
    assert.equal(blocked.code, 4, 'blocked by the pre-update hook (exit 4)');
    assert.match(await log(), /no index\.html in this release/);
    assert.match(await log(), /blocked: pre-update hook 10-has-index failed with exit code 1/);
    assert.equal(await readFile(join(live, 'index.html'), 'utf8'), 'version 1\n', 'the live release stays');

    await app.publish({ 'index.html': 'version 3\n' });
    const deployed = await cron();
    assert.equal(deployed.code, 0, await log());
    assert.equal(await readFile(join(live, 'index.html'), 'utf8'), 'version 3\n');
    assert.match(await log(), /\[50-reload\] now serving/);
  });
}
