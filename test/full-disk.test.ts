// A full disk: going back to the previous release needs no free space (the link is pointed back
// first, the journal written after), the original failure is always logged, and no message says
// the live release is unchanged when it changed. Each test runs on a small tmpfs of its own that a
// hook or the health check fills to the last byte.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { makeSandbox, runCli, writeHook } from './helpers/cli.js';
import { createRepository } from './helpers/git-repos.js';
import { temporaryDirectory } from './helpers/temp.js';
import { fillCommand, smallDisk } from './helpers/small-disk.js';
import { setup, type Setup } from './helpers/zip-agent.js';

/** Version 1 deployed on a small disk of its own; version 2 published. Undefined where mounting is refused. */
async function onSmallDisk(t: TestContext, configText = ''): Promise<Setup | undefined> {
  const disk = await smallDisk(t, '8m');
  if (!disk) return undefined;
  const s = await setup(t, configText, { root: disk });
  await s.publish('1');
  const first = await s.once();
  assert.equal(first.code, 0, first.stderr);
  await s.publish('2');
  return s;
}

const execFileAsync = promisify(execFile);
const filler = (s: Setup) => join(s.root, 'filler');

test('a full disk after the swap, then a failing post-update hook: the previous release is live again, the hook\'s failure is logged, exit 5', async (t) => {
  const s = await onSmallDisk(t);
  if (!s) return;
  const good = await s.sandbox.liveTarget();
  await writeHook(s.sandbox.postHooks, '20-fills-then-fails', `[ "$REPO_DEPLOY_PHASE" = post-update ] || exit 0\n${fillCommand(filler(s))}\necho "migration failed: disk full"\nexit 1`);
  const result = await s.once();
  assert.equal(result.code, 5, result.stderr);
  assert.equal(await s.sandbox.liveTarget(), good, 'the previous release is live again');
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  assert.match(result.stderr, /post-update hook 20-fills-then-fails failed with exit code 1: migration failed: disk full/);
  assert.match(result.stderr, /reverted the live path to release /);
  assert.doesNotMatch(result.stderr, /the live release is unchanged/);

  // On a disk that is still full, the next run fails to stage and release 1 stays live. The
  // revert removed the failed release, which may have freed the few blocks a tiny release needs:
  // they are taken again, so the disk is full whatever the revert freed.
  await promisify(execFile)('sh', ['-c', `${fillCommand(`${filler(s)}-again`)} || true`]);
  const stillFull = await s.once();
  assert.equal(stillFull.code, 3, stillFull.stderr);
  assert.match(stillFull.stderr, /no space left .*; the live release is unchanged/);
  assert.equal(await s.sandbox.liveTarget(), good);
});

test('a full disk after the swap, then a failing health check: the previous release is live again, the check\'s failure is logged, exit 5', async (t) => {
  const s = await onSmallDisk(t);
  if (!s) return;
  const good = await s.sandbox.liveTarget();
  await writeFile(s.sandbox.config, `health-check = ${fillCommand(join(s.root, 'filler'))}; echo "503 from the app"; exit 3\n`);
  const result = await s.once();
  assert.equal(result.code, 5, result.stderr);
  assert.equal(await s.sandbox.liveTarget(), good, 'the previous release is live again');
  assert.match(result.stderr, /the health check failed: the command exited with 3: 503 from the app/);
  assert.doesNotMatch(result.stderr, /the live release is unchanged/);
});

test('a first deploy whose post-update hook fills the disk and succeeds: it stays live, and later runs on the full disk keep it live', async (t) => {
  const disk = await smallDisk(t, '8m');
  if (!disk) return;
  const s = await setup(t, '', { root: disk });
  await s.publish('1');
  // The hook keeps the downloaded archive (a hard link takes no space), so the agent's own clean-up
  // frees nothing and the final save of the state meets a disk that is still full.
  const held = join(s.root, 'held');
  await mkdir(held);
  const once = join(s.root, 'filled-once');
  await writeHook(s.sandbox.postHooks, '20-fills', `[ "$REPO_DEPLOY_PHASE" = post-update ] && [ ! -f ${once} ] || exit 0\ntouch ${once}\nln ${s.sandbox.cache}/downloads/* ${held}/\n${fillCommand(filler(s))}\nexit 0`);
  const first = await s.once();
  const live = await s.sandbox.liveTarget();
  const release = live.replace('releases/', '');
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  assert.equal(first.code, 3, first.stderr);
  assert.match(first.stderr, new RegExp(`the state could not be saved \\(no space left .*\\); release ${release} is live; the state was removed so that the next start does not undo`));
  for (let run = 1; run <= 2; run++) {
    const next = await s.once();
    assert.equal(await s.sandbox.liveTarget(), live, `run ${run} on the full disk keeps the first release live: ${next.stderr}`);
    assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
    assert.equal(next.code, 3, next.stderr);
    assert.match(next.stderr, new RegExp(`no space left .*the live release is unchanged`));
  }
  // Once space is freed, nothing undoes the first deploy: the live path is never removed.
  await rm(filler(s));
  const freed = await s.once();
  assert.equal(freed.code, 0, freed.stderr);
  assert.doesNotMatch(freed.stderr, /interrupted during|nothing is live/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('a full disk during git init of the mirror: "no space left" (exit 3); once freed, the mirror is rebuilt with a plain word on why', async (t) => {
  const disk = await smallDisk(t, '256k');
  if (!disk) return;
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root);
  const repo = await createRepository(root);
  await repo.commit({ 'app/index.html': 'v1\n' });
  const cache = join(disk, 'cache');
  const args = sandbox.args(`${repo.bare}/app#main`).map((argument) => (argument === sandbox.cache ? cache : argument));
  // Full but for three pages: the lock owner's note takes one, and git init meets the end of the disk.
  const slack = join(disk, 'slack');
  await writeFile(slack, Buffer.alloc(3 * 4096));
  await execFileAsync('sh', ['-c', fillCommand(join(disk, 'filler')) + '; true']);
  await rm(slack);
  const full = await runCli(args);
  assert.equal(full.code, 3, full.stderr);
  assert.match(full.stderr, /git init of .* failed: no space left on the filesystem holding the cache/);
  await rm(join(disk, 'filler'));
  const freed = await runCli(args);
  assert.equal(freed.code, 0, freed.stderr);
  assert.equal(await sandbox.liveFile('index.html'), 'v1\n');
  const warning = freed.stderr.split('\n').find((line) => line.includes('rebuilding it')) ?? '';
  assert.match(warning, /the git mirror .* (is not a usable repository|has left-over lock files) \(.+\), left by an interrupted git command \(a crash, a stop or a full disk\); rebuilding it/);
  assert.doesNotMatch(warning, /interrupted fetch|git \S+ of .* failed|the next check tries again/, 'one plain message, no error nested in it');
});

test('a full disk under the history and the outbox: the deploy goes on and says what was not recorded; once there is room, the history is whole again', async (t) => {
  // The cache's history and outbox each on a tiny filesystem of their own, filled to the last byte.
  const root = await mkdtemp(join(tmpdir(), 'repo-deploy-full-history-'));
  const cache = join(root, 'cache');
  const [history, outbox] = [await smallDisk(t, '64k', join(cache, 'history')), await smallDisk(t, '64k', join(cache, 'outbox'))];
  t.after(() => rm(root, { recursive: true, force: true }));
  if (!history || !outbox) return;
  await chmod(cache, 0o700);
  // A receiver that is never there: every message stays in the outbox.
  const s = await setup(t, 'notify = http://127.0.0.1:9/never\nnotify-on = all\n', { root });
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const fillers = [join(history, 'filler'), join(outbox, 'filler')];
  // cat ends in "no space left" (exit 1): that is the point.
  for (const path of fillers) await execFileAsync('sh', ['-c', `${fillCommand(path)}; true`]);

  await s.publish('2');
  const full = await s.once();
  assert.equal(full.code, 0, full.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n', 'the history tells what happened; it does not change it');
  assert.match(full.stderr, /the deploy history could not be written \(.*no space left.*\); event update-started is not recorded/i);
  assert.match(full.stderr, /event update-committed is not recorded/);
  assert.match(full.stderr, /notifications could not be sent \(.*no space left.*\); they stay in .*outbox for the next try/);

  for (const path of fillers) await rm(path);
  await s.publish('3');
  const roomy = await s.once();
  assert.equal(roomy.code, 0, roomy.stderr);
  const common = ['-c', s.sandbox.config, '--cache', s.sandbox.cache, '-l', s.sandbox.live];
  const verified = await runCli(['history', '--verify', ...common]);
  assert.equal(verified.code, 0, verified.stdout);
  const events = (await runCli(['history', '--json', ...common])).stdout.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { event: string }).event);
  assert.deepEqual(events.filter((event) => event.startsWith('update-')), ['update-started', 'update-committed', 'update-started', 'update-committed'], 'version 2 is missing, and said to be');
});
