// The deploy history: what each run tells it, that an edit, a removed line, a cut-off end or
// junk is caught by --verify, that a kill -9 in the middle of an append is detected and
// repaired, that rotation carries the chain, and that no one else can read it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFile, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, writeHook } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { setup } from './helpers/zip-agent.js';
import { temporaryDirectory } from './helpers/temp.js';
import { appendEntry, historyFilesIn } from '../src/history/chain-file.js';
import { verifyChain } from '../src/history/verify-chain.js';

const historyFile = (cache: string) => join(cache, 'history', 'history.jsonl');

async function entries(cache: string): Promise<Array<Record<string, any>>> {
  return (await readFile(historyFile(cache), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

test('history: updates, a revert and a rollback are told with revisions, files, who asked and exit codes; --verify proves it whole', async (t) => {
  const agent = await setup(t);
  const { sandbox } = agent;
  const history = (...extra: string[]) => runCli(['history', '-c', sandbox.config, '--cache', sandbox.cache, '-l', sandbox.live, ...extra]);
  await agent.publish('1');
  assert.equal((await agent.once()).code, 0);
  await agent.publish('2');
  assert.equal((await agent.once()).code, 0);
  await agent.publish('3');
  await writeFile(join(agent.root, 'post-exit'), '1');
  assert.equal((await agent.once()).code, 5);
  await rm(join(agent.root, 'post-exit'));
  const rolled = await runCli(['rollback', '-c', sandbox.config, '--cache', sandbox.cache, '-l', sandbox.live, '--pre-hooks', sandbox.preHooks, '--post-hooks', sandbox.postHooks]);
  assert.equal(rolled.code, 0, rolled.stderr);

  const told = await entries(sandbox.cache);
  assert.deepEqual(told.map((entry) => entry.event), ['update-started', 'update-committed', 'update-started', 'update-committed', 'update-started', 'update-reverted', 'rollback']);
  assert.deepEqual(told.map((entry) => entry.seq), [1, 2, 3, 4, 5, 6, 7]);
  const [, firstCommit, , secondCommit, , reverted, rollback] = told as [any, any, any, any, any, any, any];
  assert.equal(firstCommit.revisionFrom, undefined);
  assert.equal(secondCommit.revisionFrom, firstCommit.revisionTo);
  assert.deepEqual(secondCommit.files, { added: 0, changed: 1, removed: 0, sample: { added: [], changed: ['index.html'], removed: [] } });
  assert.match(secondCommit.description, /^archive .*app\.zip \(sha256 [0-9a-f]{12}\)$/);
  assert.match(secondCommit.by, /^operator root@/);
  assert.equal(secondCommit.exitCode, 0);
  assert.equal(typeof secondCommit.durationMs, 'number');
  assert.equal(reverted.exitCode, 5);
  assert.match(reverted.error, /post-update hook 10-record/);
  assert.equal(rollback.revisionTo, firstCommit.revisionTo);
  assert.equal(rollback.revisionFrom, secondCommit.revisionTo);

  const verified = await history('--verify');
  assert.equal(verified.code, 0, verified.stdout);
  assert.match(verified.stdout, /the history is whole: 7 entries/);
  const text = await history('--limit', '2');
  assert.equal(text.code, 0);
  assert.deepEqual(text.stdout.trim().split('\n').map((line) => line.split('  ')[2]), ['update-reverted', 'rollback']);
  const json = await history('--json', '--since', '1h');
  assert.equal(json.stdout.trim().split('\n').length, 7);
  const future = await history('--since', '2999-01-01');
  assert.match(future.stdout, /no history entries since 2999-01-01/);
  const bad = await history('--since', 'yesterday-ish');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--since "yesterday-ish" is neither a time .* nor a duration back from now/);
  const badLimit = await history('--limit', '0');
  assert.equal(badLimit.code, 2);
});

test('history --verify: an edited line, a removed line, lines cut off the end and junk are each caught (exit 8)', async (t) => {
  const agent = await setup(t);
  const { sandbox } = agent;
  const verify = () => runCli(['history', '--verify', '-c', sandbox.config, '--cache', sandbox.cache, '-l', sandbox.live]);
  const pause = (...extra: string[]) => runCli(['pause', '-c', sandbox.config, '--cache', sandbox.cache, '-l', sandbox.live, ...extra]);
  const resume = () => runCli(['resume', '-c', sandbox.config, '--cache', sandbox.cache, '-l', sandbox.live]);
  for (let round = 0; round < 3; round++) {
    await pause('--reason', `round ${round}`);
    await resume();
  }
  const file = historyFile(sandbox.cache);
  const original = await readFile(file, 'utf8');
  assert.equal((await verify()).code, 0);

  // Someone rewrites the reason of entry 3, keeping the JSON valid.
  await writeFile(file, original.replace('"reason":"round 1"', '"reason":"nothing to see"'));
  let result = await verify();
  assert.equal(result.code, 8);
  assert.match(result.stdout, /history\.jsonl:4: entry 4 does not follow the line before it/);

  // Someone removes entry 2.
  const lines = original.split('\n');
  await writeFile(file, [...lines.slice(0, 1), ...lines.slice(2)].join('\n'));
  result = await verify();
  assert.equal(result.code, 8);
  assert.match(result.stdout, /entry 3 follows entry 1: 1 removed/);

  // Someone cuts the last two entries off: the chain that is left is whole, the head is not.
  await writeFile(file, lines.slice(0, 4).join('\n') + '\n');
  result = await verify();
  assert.equal(result.code, 8);
  assert.match(result.stdout, /the history ends at entry 4, but entry 6 was written .*entries were cut off the end/);

  // Someone appends a junk line.
  await writeFile(file, original + 'not json at all\n');
  result = await verify();
  assert.equal(result.code, 8);
  assert.match(result.stdout, /history\.jsonl:7: not a history entry/);

  // Put back, it is whole again.
  await writeFile(file, original);
  assert.equal((await verify()).code, 0);
});

test('history: a kill -9 in the middle of an append leaves a partial line that is reported, then cut off and recorded by the next append', async (t) => {
  const agent = await setup(t);
  const { sandbox } = agent;
  const common = ['-c', sandbox.config, '--cache', sandbox.cache, '-l', sandbox.live];
  assert.equal((await runCli(['pause', ...common, '--reason', 'before'])).code, 0);
  assert.equal((await runCli(['resume', ...common])).code, 0);
  const killed = startAgent(t, ['pause', ...common, '--reason', 'killed'], { REPO_DEPLOY_TEST_PAUSE_AT: 'history append' });
  await killed.waitFor(/paused at history append/);
  killed.child.kill('SIGKILL');
  await killed.done;
  const text = await readFile(historyFile(sandbox.cache), 'utf8');
  assert.ok(!text.endsWith('\n'), 'the last line is partial');

  const shown = await runCli(['history', ...common]);
  assert.match(shown.stdout, /the last line is partial: an append was cut short by a crash/);
  const verified = await runCli(['history', '--verify', ...common]);
  assert.equal(verified.code, 0, verified.stdout);
  assert.match(verified.stdout, /note: {3}a partial last line of \d+ bytes/);

  const resumed = await runCli(['resume', ...common]);
  assert.equal(resumed.code, 0);
  assert.match(resumed.stderr, /the deploy history ended in a partial line of \d+ bytes .*cut off, and entry 3 says so/);
  const told = await entries(sandbox.cache);
  assert.deepEqual(told.map((entry) => entry.event), ['pause', 'resume', 'history-repaired', 'resume']);
  const after = await runCli(['history', '--verify', ...common]);
  assert.equal(after.code, 0, after.stdout);
  assert.doesNotMatch(after.stdout, /partial/);
});

test('history: rotated by size, the chain carried across files; files beyond history-keep-files go and --verify says from where it proves', async (t) => {
  const agent = await setup(t, 'history-max-size = 1K\nhistory-keep-files = 2\n');
  const { sandbox } = agent;
  const common = ['-c', sandbox.config, '--cache', sandbox.cache, '-l', sandbox.live];
  for (let round = 0; round < 12; round++) {
    await runCli(['pause', ...common, '--reason', `round ${round} ${'x'.repeat(100)}`]);
    await runCli(['resume', ...common]);
  }
  const names = (await readdir(join(sandbox.cache, 'history'))).filter((name) => name.endsWith('.jsonl')).sort();
  assert.equal(names.length, 3, names.join(', '));
  assert.match(names[0] as string, /^history-\d{12}\.jsonl$/);
  const verified = await runCli(['history', '--verify', ...common]);
  assert.equal(verified.code, 0, verified.stdout);
  assert.match(verified.stdout, /entries 1 to \d+ were rotated away/);
  const all = await runCli(['history', '--json', ...common]);
  const seqs = all.stdout.trim().split('\n').map((line) => JSON.parse(line).seq as number);
  assert.equal(seqs.at(-1), 24);
  assert.deepEqual(seqs, seqs.map((_, index) => (seqs[0] as number) + index));

  // An edit in a rotated file is caught like any other.
  const oldest = join(sandbox.cache, 'history', names[0] as string);
  await writeFile(oldest, (await readFile(oldest, 'utf8')).replace(/round \d+/, 'round 99'));
  const broken = await runCli(['history', '--verify', ...common]);
  assert.equal(broken.code, 8);
});

test('history: private to the agent (directory 700, files 600); the user nobody can neither read nor add to it', async (t) => {
  const agent = await setup(t);
  const { sandbox } = agent;
  await agent.publish('1');
  assert.equal((await agent.once()).code, 0);
  const directory = join(sandbox.cache, 'history');
  assert.equal((await stat(directory)).mode & 0o777, 0o700);
  assert.equal((await stat(historyFile(sandbox.cache))).mode & 0o777, 0o600);
  const read = spawnSync('runuser', ['-u', 'nobody', '--', 'cat', historyFile(sandbox.cache)], { encoding: 'utf8' });
  assert.notEqual(read.status, 0);
  const write = spawnSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', `echo junk >> ${historyFile(sandbox.cache)}`], { encoding: 'utf8' });
  assert.notEqual(write.status, 0);
});

test('history: a secret in the remote URL never reaches the history', async (t) => {
  const agent = await setup(t);
  const { sandbox } = agent;
  await agent.publish('1');
  const withSecret = agent.remote.replace('http://', 'http://deployer:hunter2-sekrit@');
  const result = await runCli(sandbox.args(withSecret));
  assert.equal(result.code, 0, result.stderr);
  const text = await readFile(historyFile(sandbox.cache), 'utf8');
  assert.match(text, /update-committed/);
  assert.doesNotMatch(text, /hunter2-sekrit/);
});

test('history: the daemon says the schedule asked, and a truncated history file (0 bytes) is caught by the head', async (t) => {
  const agent = await setup(t);
  await agent.publish('1');
  const daemon = agent.agent();
  await daemon.waitFor(/deployed revision/);
  await daemon.stop();
  const told = await entries(agent.sandbox.cache);
  assert.equal(told.at(-1)?.by, 'schedule');
  await truncate(historyFile(agent.sandbox.cache), 0);
  const verified = await runCli(['history', '--verify', '-c', agent.sandbox.config, '--cache', agent.sandbox.cache, '-l', agent.sandbox.live]);
  assert.equal(verified.code, 8);
  assert.match(verified.stdout, /entries were cut off the end/);
  await appendFile(historyFile(agent.sandbox.cache), '');
});

test('history = no: a deploy records no history (and so notifies nothing); history says so plainly', async (t) => {
  const agent = await setup(t, 'history = no\nnotify = http://127.0.0.1:9/never\n');
  const { sandbox } = agent;
  await agent.publish('1');
  const result = await agent.once();
  assert.equal(result.code, 0, result.stderr);
  await assert.rejects(stat(join(sandbox.cache, 'history')), /ENOENT/);
  await assert.rejects(stat(join(sandbox.cache, 'outbox')), /ENOENT/);
  const shown = await runCli(['history', '-c', sandbox.config, '--cache', sandbox.cache, '-l', sandbox.live]);
  assert.equal(shown.code, 0);
  assert.match(shown.stdout, /no history yet/);
});

test('an append whose head file cannot be written takes its line back: the history and its head never disagree by more than a kill -9 can make them', async (t) => {
  const directory = await temporaryDirectory(t);
  const files = historyFilesIn(join(directory, 'history'));
  const options = { maxFileBytes: 1 << 20, keepFiles: 2 };
  await appendEntry(files, { event: 'pause', time: '2026-12-04T00:00:00.000Z' }, options);
  const before = await readFile(files.current, 'utf8');
  // The head's directory gone: its new copy cannot be made (as on a disk with no page left for it).
  await assert.rejects(appendEntry({ ...files, head: join(directory, 'absent', 'head.json') }, { event: 'resume', time: '2026-12-04T00:00:01.000Z' }, options), /ENOENT/);
  assert.equal(await readFile(files.current, 'utf8'), before, 'the line the head does not name was taken back');
  await appendEntry(files, { event: 'resume', time: '2026-12-04T00:00:02.000Z' }, options);
  const report = await verifyChain(files);
  assert.deepEqual(report.problems, []);
  assert.equal(report.entries, 2);
});
