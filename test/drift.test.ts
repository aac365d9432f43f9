// Drift detection (verify-interval): a real daemon whose live tree is edited by hand, including
// an edit that keeps the file's size and mtime (only its ctime tells); the drift is counted in
// /metrics, recorded in the history, notified, and with drift-action = redeploy repaired by a new
// release made through the hooks. Later checks hash only what changed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { freePort } from './helpers/git-servers.js';
import { listenOnLoopback } from './helpers/listen.js';
import { setup } from './helpers/zip-agent.js';
import { temporaryDirectory } from './helpers/temp.js';
import { DriftWatcher, fullWalkEveryMs } from '../src/verify/drift.js';
import { writeManifest } from '../src/verify/manifest.js';

const historyOf = async (cache: string) => (await readFile(join(cache, 'history', 'history.jsonl'), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, any>);

test('an edit by hand (even one that keeps size and mtime), an added and a deleted file: counted in /metrics, recorded in the history, notified; later checks hash only what changed', async (t) => {
  const port = await freePort();
  const received: string[] = [];
  const receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push(body);
      response.writeHead(204).end();
    });
  });
  const receiverPort = await listenOnLoopback(t, receiver);
  const s = await setup(t, `schedule = 0 0 1 1 *\nverify-interval = 1\nhttp-listen = 127.0.0.1:${port}\nnotify = http://127.0.0.1:${receiverPort}/drift\nnotify-on = drift\n`);
  await s.publish('1');
  const agent = s.agent(['-v']);
  await agent.waitFor(/deployed revision/);
  const first = await agent.waitFor(/drift check of release \S+: 0 of \d+ entries differ \(1 files hashed\)/);
  // Intact and untouched, the next checks do not even walk the tree (it is watched).
  await agent.waitFor(/drift check of release \S+: nothing stirred in the tree since the last walk \(0 entries differed then\)/, 15_000, agent.lines.indexOf(first) + 1);

  // Same size, same mtime: only the ctime says it changed.
  const index = join(s.sandbox.live, 'index.html');
  const original = await readFile(index, 'utf8');
  const reference = join(s.root, 'mtime-reference');
  execFileSync('cp', ['--preserve=timestamps', index, reference]);
  await writeFile(index, original.replace('version 1', 'version X'));
  execFileSync('touch', ['-r', reference, index]);
  assert.equal((await stat(index)).mtimeMs, (await stat(reference)).mtimeMs);
  await appendFile(join(s.sandbox.live, 'planted.php'), '<?php system($_GET["c"]);\n');
  const drifted = await agent.waitFor(/the live tree drifted from release \S+: 1 changed, 0 missing, 1 extra \(changed index\.html, extra planted\.php\)/);
  assert.ok(drifted);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  assert.match(metrics, /repo_deploy_drift_files 2/);
  const told = (await historyOf(s.sandbox.cache)).filter((entry) => entry.event === 'drift');
  assert.equal(told.length, 1, 'told once, not at every check');
  assert.deepEqual(told[0]!.files, { changed: 1, missing: 0, extra: 1 });
  assert.equal(told[0]!.by, 'drift check');
  for (let tries = 0; received.length === 0 && tries < 100; tries++) await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  assert.match((JSON.parse(received[0]!) as { summary: string }).summary, /the live tree drifted from its release \(/);

  // Put back by hand: the next check says so, and the count goes to 0.
  await writeFile(index, original);
  await rm(join(s.sandbox.live, 'planted.php'));
  await agent.waitFor(/matches its manifest again/);
  assert.match(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), /repo_deploy_drift_files 0/);
  await agent.stop();
  const verified = await runCli(['history', '--verify', '-c', s.sandbox.config, '--cache', s.sandbox.cache, '-l', s.sandbox.live]);
  assert.equal(verified.code, 0, verified.stdout);
});

test('drift-action = redeploy: a drifted live release is replaced by a new release of the same revision, made through the hooks', async (t) => {
  const s = await setup(t, 'schedule = 0 0 1 1 *\nverify-interval = 1\ndrift-action = redeploy\n');
  await s.publish('1');
  const agent = s.agent();
  await agent.waitFor(/deployed revision/);
  // The log line may come before a reader sees the state file replaced: wait for the state.
  const current = async (wanted: (release: string) => boolean = () => true) => {
    for (;;) {
      const state = await s.state().catch(() => undefined);
      if (state?.current && wanted(state.current.release)) return state.current as { release: string; revision: string };
      await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    }
  };
  const before = await current();
  const hooksBefore = (await s.hookLines()).length;
  await writeFile(join(s.sandbox.live, 'index.html'), 'defaced\n');
  await agent.waitFor(/drifted from its manifest \(drift-action = redeploy\): deploying the remote's revision again/);
  const redeployed = await agent.waitFor(/deployed revision \S+ as release (\S+) \(was release/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  const after = await current((release) => release !== before.release);
  assert.notEqual(after.release, before.release, 'a new release');
  assert.equal(after.revision, before.revision, 'of the same revision');
  assert.ok(redeployed.includes(after.release));
  assert.ok((await s.hookLines()).length > hooksBefore, 'the hooks ran');
  // The state is committed before the update's end is told to the history: wait for that entry.
  const told = async () => (await historyOf(s.sandbox.cache)).map((entry) => `${entry.event}${entry.by ? ` by ${entry.by}` : ''}`);
  let events = await told();
  while (events.at(-1) !== 'update-committed by drift check') {
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    events = await told();
  }
  assert.ok(events.includes('drift by drift check'), events.join(', '));
  await agent.stop();
});

test('the drift watcher walks a release once, then only after something stirred in the tree, and at least hourly; an edit between walks is never missed', async (t) => {
  const root = await temporaryDirectory(t);
  const release = join(root, 'release');
  await mkdir(join(release, 'css'), { recursive: true });
  await writeFile(join(release, 'index.html'), 'v1\n');
  await writeFile(join(release, 'css', 'site.css'), 'body{}\n');
  const manifest = join(root, 'manifest.json');
  await writeManifest(release, manifest);
  let now = Date.parse('2026-12-04T03:00:00Z');
  const watcher = new DriftWatcher(() => now);
  t.after(() => watcher.close());
  const check = () => watcher.check(release, 'r1', manifest, () => false);
  const first = await check();
  assert.deepEqual([first.walked, first.hashed, first.changed.length], [true, 2, 0]);
  assert.equal((await check()).walked, false, 'nothing stirred: no walk');
  // An edit in a subdirectory: the watcher stirs, the next check walks and finds it.
  await writeFile(join(release, 'css', 'site.css'), 'body{color:red}\n');
  let edited = await check();
  for (let tries = 0; !edited.walked && tries < 100; tries++) {
    await sleep(20); // the inotify event is delivered on the event loop
    edited = await check();
  }
  assert.equal(edited.walked, true);
  assert.deepEqual(edited.changed, ['css/site.css']);
  assert.equal((await check()).walked, false);
  // An hour on, a full walk even though nothing stirred (inotify can drop events).
  now += fullWalkEveryMs;
  const hourly = await check();
  assert.equal(hourly.walked, true);
  assert.deepEqual(hourly.changed, ['css/site.css']);
});
