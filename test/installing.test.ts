// The README's "Installing" section, run as written into a scratch root that stands for `/`: the
// package made by `npm pack`, `npm install -g` of it, every shell step in order, the config edit
// the prose asks for, then the installed files checked as the system would use them: the unit by
// `systemd-analyze verify` (and its security rating against what the unit and the docs say), its
// ExecStart run as the daemon, the cron file's name and its job line run as cron would.
// Paths under /etc, /var and /usr/local are moved under the scratch root; `systemctl` steps are
// not run (there is no systemd to talk to in a test), the unit is verified instead.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startHttpServer } from './helpers/http-server.js';
import { readmeSectionBlocks } from './helpers/readme-steps.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

const repository = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { ...options, timeout: 150_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }));
  });
}

const onPath = (tool: string) => (process.env.PATH ?? '').split(':').some((directory) => directory !== '' && existsSync(join(directory, tool)));
const missing = ['systemd-analyze', 'logrotate'].filter((tool) => !onPath(tool));

/** A path of the real system (under /etc, /var or /usr/local) moved under the scratch root. */
const underRoot = (root: string, text: string) => text.replace(/(^|[\s"'=>:])\/(etc|var|usr\/local)(?=\/|\s|$)/gm, `$1${root}/$2`);

test('the README\'s Installing steps, run as written into a scratch root: the package installs, check-config passes, the unit verifies and its daemon deploys, the cron line deploys', { skip: missing.length ? `${missing.join(' and ')} not installed (Debian packages systemd, logrotate): the installed files cannot be checked as the system reads them` : false }, async (t) => {
  const scratch = await temporaryDirectory(t);
  const root = join(scratch, 'root');
  const home = join(root, 'root'); // where the operator copied the package
  await mkdir(home, { recursive: true });
  // What every Debian box has before the package comes; the README's steps make the rest.
  for (const directory of ['etc/systemd/system', 'etc/cron.d', 'etc/logrotate.d', 'var/log', 'usr/local/bin']) await mkdir(join(root, directory), { recursive: true });

  // "Build the package in a clone of this repository (npm pack)": the suite has built dist/.
  const npmEnv = {
    ...process.env,
    npm_config_prefix: join(root, 'usr', 'local'),
    npm_config_prefer_offline: 'true', // the packages npm ci fetched are in the npm cache
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_loglevel: 'error',
  };
  const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', home], { cwd: repository, env: npmEnv });
  assert.equal(pack.code, 0, pack.stderr);
  assert.equal((await readdir(home)).filter((name) => /^repo-deploy-.*\.tgz$/.test(name)).length, 1);

  // The remote the operator edits in: a zip on a real HTTP server.
  const server = await startHttpServer(t);
  const zipPath = join(scratch, 'app.zip');
  server.route('/builds/app.zip', { kind: 'file', path: zipPath });
  const publish = async (version: string) => {
    const next = await zipTree({ 'index.html': `version ${version}\n` }, join(scratch, `build-${version}.zip`), scratch);
    await rename(next, zipPath);
  };
  await publish('1');

  const config = join(root, 'etc', 'repo-deploy', 'repo-deploy.cfg');
  const env = {
    ...npmEnv,
    PATH: `${join(root, 'usr', 'local', 'bin')}:${process.env.PATH}`,
    REPO_DEPLOY_CONFIG: config, // the default /etc/repo-deploy/repo-deploy.cfg, under the root
  };
  const blocks = (await readmeSectionBlocks('Installing')).filter((block) => block.language === 'sh');
  const skipped: string[] = [];
  let edited = false;
  for (const block of blocks) {
    if (/check-config/.test(block.text)) {
      // "Edit /etc/repo-deploy/repo-deploy.cfg now: set remote to what you deploy" (the example's
      // ci.example.com is never asked: tests reach loopback only).
      const text = await readFile(config, 'utf8');
      assert.equal(text.match(/^remote = .*/gm)?.length, 1, 'the example config sets one remote');
      // The scratch root stands for /: the defaults (/var/deploy/current, /var/cache/repo-deploy,
      // /etc/repo-deploy/*.d) are given their place under it.
      await writeFile(config, `${text.replace(/^remote = .*/m, `remote = ${server.url('/builds/app.zip')}`)}\n` +
        ['local = /var/deploy/current', 'cache = /var/cache/repo-deploy', 'pre-hooks = /etc/repo-deploy/pre-update.d', 'post-hooks = /etc/repo-deploy/post-update.d']
          .map((line) => underRoot(root, line)).join('\n') + '\n');
      edited = true;
    }
    const lines = block.text.split('\n').filter((line) => {
      if (!/^\s*systemctl\b/.test(line)) return true;
      skipped.push(line);
      return false;
    });
    const step = await run('bash', ['-euo', 'pipefail', '-c', underRoot(root, lines.join('\n'))], { env, cwd: home });
    assert.equal(step.code, 0, `the step\n${block.text}\nfailed: ${step.stdout}${step.stderr}`);
    if (/repo-deploy --version/.test(block.text)) assert.match(step.stdout, /\d+\.\d+\.\d+/, 'the installed command runs');
    if (/check-config/.test(block.text)) {
      assert.doesNotMatch(step.stdout, /FAILED/);
      assert.match(step.stdout, /would be deployed at the next check/);
    }
  }
  assert.ok(edited, 'the README checks the config with check-config after the edit');
  assert.deepEqual(skipped, ['systemctl daemon-reload', 'systemctl enable --now repo-deploy']);

  // The unit: systemd accepts it as written, with no warning.
  const unitPath = join(root, 'etc', 'systemd', 'system', 'repo-deploy.service');
  const unit = await readFile(unitPath, 'utf8');
  const verify = await run('systemd-analyze', ['verify', unitPath]);
  assert.equal(verify.code, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), '', 'systemd-analyze verify has nothing to say about the unit');
  // Every path it may write exists once the steps ran (or starts with "-": then a missing one does not stop the unit).
  for (const entry of (/^ReadWritePaths=(.*)$/m.exec(unit)?.[1] ?? '').split(/\s+/).filter(Boolean)) {
    assert.ok(entry.startsWith('-') || existsSync(join(root, entry)), `ReadWritePaths ${entry} exists or is optional`);
    assert.ok(existsSync(join(root, entry.replace(/^-/, ''))), `the README's steps make ${entry}`);
  }
  // The rating said in the unit's comment and in docs/security-model.md is the one systemd gives.
  const security = await run('systemd-analyze', ['security', '--offline=true', unitPath]);
  const rating = /Overall exposure level for repo-deploy\.service: (\d+\.\d+)/.exec(security.stdout)?.[1];
  assert.ok(rating, security.stdout + security.stderr);
  assert.match(unit, new RegExp(`rates this unit ${rating.replace('.', '\\.')} `));
  assert.match(await readFile(join(repository, 'docs', 'security-model.md'), 'utf8'), new RegExp(`rates it ${rating.replace('.', '\\.')} `));

  // Its ExecStart, as systemd runs it (PATH with /usr/local/bin): the daemon deploys at its first check.
  const execStart = /^ExecStart=(.*)$/m.exec(unit)?.[1];
  assert.ok(execStart);
  const [command, ...args] = underRoot(root, execStart).split(/\s+/);
  const daemon = spawn(command!, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let daemonLog = '';
  daemon.stderr.on('data', (chunk: Buffer) => (daemonLog += chunk.toString()));
  const daemonExit = new Promise<number | null>((resolve) => daemon.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (daemon.exitCode === null && daemon.signalCode === null) process.kill(daemon.pid!, 'SIGKILL');
  });
  const live = join(root, 'var', 'deploy', 'current');
  for (let waited = 0; !/deployed revision/.test(daemonLog); waited += 100) {
    assert.ok(waited < 60_000 && daemon.exitCode === null, `the daemon deploys at its first check: ${daemonLog}`);
    await sleep(100);
  }
  process.kill(daemon.pid!, 'SIGTERM');
  assert.equal(await daemonExit, 0, daemonLog);
  assert.equal(await readFile(join(live, 'index.html'), 'utf8'), 'version 1\n');

  // The cron file: a name cron reads (run-parts rules: letters, digits, "_" and "-" only), and its
  // job line run as cron runs it (sh -c, with the file's PATH), deploying the next build.
  const cronDirectory = join(root, 'etc', 'cron.d');
  for (const name of await readdir(cronDirectory)) assert.match(name, /^[A-Za-z0-9_-]+$/, `cron reads /etc/cron.d/${name}`);
  const cron = await readFile(join(cronDirectory, 'repo-deploy'), 'utf8');
  const cronPath = /^PATH=(.*)$/m.exec(cron)?.[1];
  assert.ok(cronPath?.split(':').includes('/usr/local/bin'), 'the cron file\'s PATH finds what npm install -g installed');
  const jobs = cron.split('\n').filter((line) => /^[*0-9]/.test(line));
  assert.equal(jobs.length, 1);
  const fields = jobs[0]!.split(/\s+/);
  assert.equal(fields[5], 'root', 'a /etc/cron.d line names its user');
  await publish('2');
  const job = await run('sh', ['-c', underRoot(root, fields.slice(6).join(' '))], { env: { ...env, PATH: underRoot(root, `:${cronPath}`).slice(1) }, cwd: '/' });
  assert.equal(job.code, 0, await readFile(join(root, 'var', 'log', 'repo-deploy.log'), 'utf8').catch(() => job.stderr));
  assert.equal(await readFile(join(live, 'index.html'), 'utf8'), 'version 2\n');
  assert.match(await readFile(join(root, 'var', 'log', 'repo-deploy.log'), 'utf8'), /deployed revision/);
  assert.match(await readlink(live), /^releases\//);

  // The logrotate file, as logrotate reads it: a forced rotation moves the log aside and makes a
  // new one with the mode it names; the next cron run writes to the new file.
  const logDirectory = join(root, 'var', 'log');
  const rotatedConfig = join(scratch, 'logrotate-under-root');
  await writeFile(rotatedConfig, underRoot(root, await readFile(join(root, 'etc', 'logrotate.d', 'repo-deploy'), 'utf8')));
  const rotation = await run('logrotate', ['--force', '--state', join(scratch, 'logrotate.state'), rotatedConfig], { env });
  assert.equal(rotation.code, 0, rotation.stderr);
  assert.match(await readFile(join(logDirectory, 'repo-deploy.log.1'), 'utf8'), /deployed revision/);
  assert.equal((await stat(join(logDirectory, 'repo-deploy.log'))).mode & 0o777, 0o640);
});
