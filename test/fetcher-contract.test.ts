// The contract every fetcher fulfils, run in-process against each kind of remote on a real
// server of its kind (see helpers/remote-adapters.ts): what a first check stages, that an
// unchanged remote sends no body, that the same content elsewhere is recognised, that failures
// are fetch errors with a hint, that a stop ends a download that never ends, that dispose
// leaves the downloads directory empty, and that credentials never show.
import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { cacheLayoutFor } from '../src/core/cache-layout.js';
import { loadSettings, type Settings } from '../src/settings/config.js';
import { DeployError } from '../src/base/errors.js';
import { createFetcher } from '../src/remotes/registry.js';
import type { CheckResult, DeployedRevision, PendingRevision } from '../src/core/remote-contract.js';
import { createLogger } from '../src/base/log.js';
import { redact } from '../src/base/redact.js';
import { parseRemote } from '../src/core/remote.js';
import { remoteAdapters, type Elsewhere, type RemoteAdapter } from './helpers/remote-adapters.js';
import { temporaryDirectory } from './helpers/temp.js';
import type { TreeSpec } from './helpers/zips.js';

const version1: TreeSpec = {
  'index.html': 'version 1\n',
  'bin/start.sh': { content: '#!/bin/sh\necho start\n', mode: 0o755 },
  'config/app.json': { content: '{"debug":false}\n', mode: 0o644 },
  'latest': { symlink: 'index.html' },
  'assets/current': { symlink: '../config' },
};

interface Harness {
  adapter: RemoteAdapter;
  root: string;
  downloads: string;
  logLines: string[];
  check(options?: { remote?: Elsewhere; deployed?: DeployedRevision; signal?: AbortSignal }): Promise<CheckResult>;
  stage(pending: PendingRevision): Promise<string>;
}

async function harness(t: TestContext, make: (t: TestContext, root: string) => Promise<RemoteAdapter>): Promise<Harness> {
  const root = await temporaryDirectory(t);
  const adapter = await make(t, root);
  const cache = join(root, 'cache');
  const cacheLayout = cacheLayoutFor(cache);
  const downloads = cacheLayout.downloads;
  // Long network limits: only the check's own logic (or a stop) may end a slow remote here.
  const base: Settings = { ...(await loadSettings({ flags: { cache, local: join(root, 'www', 'current') }, env: {}, cwd: root })), httpTimeoutMs: 600_000, downloadTimeoutMs: 1_800_000, gitTimeoutMs: 600_000 };
  const logLines: string[] = [];
  const log = createLogger({ verbose: true, write: (line) => logLines.push(line) });
  let staged = 0;
  return {
    adapter,
    root,
    downloads,
    logLines,
    async check(options = {}) {
      const target = options.remote ?? { remote: adapter.remote };
      const settings = { ...base, ...adapter.settings, ...target.settings };
      const fetcher = await createFetcher(parseRemote(target.remote), settings);
      return fetcher.check({ settings, cache: cacheLayout, deployed: options.deployed, live: options.deployed, log, env: process.env, signal: options.signal ?? new AbortController().signal });
    },
    async stage(pending) {
      const directory = join(root, 'staged', String(++staged));
      await mkdir(directory, { recursive: true });
      await pending.stage(directory);
      return directory;
    },
  };
}

function pendingOf(result: CheckResult): PendingRevision {
  assert.equal(result.changed, true, 'the remote has a new revision');
  return result as PendingRevision;
}

async function assertTree(directory: string, tree: TreeSpec): Promise<void> {
  const found: string[] = [];
  const walk = async (relative: string) => {
    for (const entry of await readdir(join(directory, relative), { withFileTypes: true })) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(path);
      else found.push(path);
    }
  };
  await walk('');
  assert.deepEqual(found.sort(), Object.keys(tree).sort(), 'exactly the published files, nothing else');
  for (const [path, spec] of Object.entries(tree)) {
    const absolute = join(directory, path);
    if (typeof spec === 'string') assert.equal(await readFile(absolute, 'utf8'), spec, path);
    else if ('symlink' in spec) assert.equal(await readlink(absolute), spec.symlink, path);
    else {
      assert.equal(await readFile(absolute, 'utf8'), spec.content, path);
      assert.equal((await lstat(absolute)).mode & 0o777, spec.mode, `${path} keeps its mode`);
    }
  }
}

const deployedFrom = (pending: PendingRevision): DeployedRevision => ({ revision: pending.revision, remoteState: pending.remoteState, sameRemote: true });

for (const [kind, make] of Object.entries(remoteAdapters)) {
  test(`${kind}: a first check stages exactly the published files, with their modes and symlinks; dispose empties the downloads`, async (t) => {
    const h = await harness(t, make);
    await h.adapter.publish(version1);
    const pending = pendingOf(await h.check());
    assert.match(pending.revision, /\S/);
    await assertTree(await h.stage(pending), version1);
    await pending.dispose();
    assert.deepEqual(await readdir(h.downloads).catch(() => []), [], 'nothing left in the downloads directory');
  });

  test(`${kind}: an unchanged remote is unchanged and sends no body; a new version is a new revision`, async (t) => {
    const h = await harness(t, make);
    await h.adapter.publish(version1);
    const first = pendingOf(await h.check());
    await first.dispose();
    const before = h.adapter.transferred?.();
    const again = await h.check({ deployed: deployedFrom(first) });
    assert.equal(again.changed, false);
    if (before !== undefined) assert.equal(h.adapter.transferred?.(), before, 'no body (or pack) for an unchanged remote');
    await h.adapter.publish({ ...version1, 'index.html': 'version 2\n' });
    const second = pendingOf(await h.check({ deployed: deployedFrom(first) }));
    assert.notEqual(second.revision, first.revision);
    await second.dispose();
  });

  test(`${kind}: the same content at another remote is recognised as the deployed revision`, async (t) => {
    const h = await harness(t, make);
    await h.adapter.publish(version1);
    const first = pendingOf(await h.check());
    await first.dispose();
    const elsewhere = await h.adapter.sameContentElsewhere();
    const result = await h.check({ remote: { remote: elsewhere }, deployed: { ...deployedFrom(first), sameRemote: false } });
    assert.equal(result.changed, false, `${redact(elsewhere)} holds what is deployed`);
  });

  test(`${kind}: an unreachable remote is a fetch error with a hint, and credentials show nowhere`, async (t) => {
    const h = await harness(t, make);
    await h.adapter.publish(version1);
    const pending = pendingOf(await h.check());
    await pending.dispose();
    const error = await h.check({ remote: h.adapter.unreachable }).then(() => undefined, (caught: unknown) => caught);
    assert.ok(error instanceof DeployError, `a DeployError: ${String(error)}`);
    assert.equal(error.kind, 'fetch');
    assert.ok(error.hint, `a hint says what to do: ${error.message}`);
    if (h.adapter.secret) {
      for (const text of [pending.description, error.message, ...h.logLines]) assert.ok(!text.includes(h.adapter.secret), `the secret shows in: ${text}`);
    }
  });

  test(`${kind}: a stop ends a check whose remote never answers`, async (t) => {
    const h = await harness(t, make);
    await h.adapter.publish(version1);
    if (!h.adapter.neverAnswers) {
      t.skip(`a ${kind} remote cannot be made to hang: its reads are local`);
      return;
    }
    const hanging = await h.adapter.neverAnswers();
    const stop = new AbortController();
    const checking = h.check({ remote: hanging, signal: stop.signal });
    // The remote holds the request; without the stop this check would wait for the 600 s limits.
    setTimeout(() => stop.abort(), 300);
    await assert.rejects(checking);
    assert.deepEqual(await readdir(h.downloads).catch(() => []), [], 'no partial download is left');
  });
}
