// Ranged zip deltas (issue 26): an update of a release whose files changed in part, served by
// Debian's nginx on loopback (ranges and multipart/byteranges, as a real server answers them),
// timed from outside as whole processes: the agent with deltas (the default) alternated with the
// agent with `delta = no` (a whole download), each starting from the same state (the previous
// release live and its archive kept), with the bytes the server sent counted by a relay in front
// of nginx. Three releases:
//   - the bench's application release (node_modules three times over and four 48 MiB build
//     outputs: about 22,000 files, 216 MiB), 2% of its files changed at random, every file's
//     mtime new (as a fresh build gives): the case deltas are for;
//   - the same update through a relay limited to 10 Mbit/s, as a server across a WAN (with --large,
//     or --only delta; a whole download then takes minutes);
//   - 20,000 small files, 2% changed: headers and directory are most of that archive, and the
//     agent rightly gives the delta up (the row shows what trying costs).
import { execFile } from 'node:child_process';
import { cp, mkdir, readdir, rename, rm, utimes, writeFile, readFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startCountingRelay, type CountingRelay } from '../test/helpers/counting-relay.js';
import { listenOnLoopback } from '../test/helpers/listen.js';
import { startNginx } from '../test/helpers/nginx.js';
import { makeApplicationTree, makeTree, zipDirectory } from './fixtures.js';
import { alternate, cleanupContext, measure, spreadOf, type Measurement } from './measure.js';
import { inMiB, inSeconds, log, ratio, rows } from './report.js';

const run = promisify(execFile);

export interface DeltaOptions {
  cli: string;
  work: string;
  repetitions: number;
  nodeModules: string;
  /** Also the 10 Mbit/s rows (a whole download of 216 MiB takes about three minutes there). */
  throttled: boolean;
}

/** Every regular file under `root`, relative. */
async function filesUnder(root: string, prefix = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(join(root, prefix), { withFileTypes: true })) {
    const path = join(prefix, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(root, path)));
    else if (entry.isFile()) found.push(path);
  }
  return found;
}

/** Changes `share` of the files (chosen by a seeded generator) and gives every file a new mtime, as a new build does. */
async function changeSome(root: string, share: number): Promise<number> {
  const files = (await filesUnder(root)).sort();
  let seed = 26;
  const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const chosen = new Set<string>();
  while (chosen.size < Math.round(files.length * share)) chosen.add(files[Math.floor(next() * files.length)]!);
  for (const path of chosen) await writeFile(join(root, path), `${await readFile(join(root, path), 'utf8').catch(() => '')}\n// changed in version 2\n`);
  const later = new Date(Date.now() + 3600_000);
  for (const path of files) await utimes(join(root, path), later, later);
  return chosen.size;
}

interface ThrottlingRelay {
  port: number;
  /** Bits per second passed on at most; undefined: as fast as they come. */
  rate: number | undefined;
}

/** A relay that passes the server's bytes on at `relay.rate` at most (a token bucket of 10 ms slices). */
async function startThrottlingRelay(context: Parameters<typeof listenOnLoopback>[0], targetPort: number): Promise<ThrottlingRelay> {
  const relay: ThrottlingRelay = { port: 0, rate: undefined };
  const server = createServer((client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    client.pipe(upstream);
    const queue: Buffer[] = [];
    let allowance = 0;
    let ended = false;
    const timer = setInterval(() => {
      const perSlice = relay.rate === undefined ? Infinity : relay.rate / 8 / 100;
      allowance = Math.min(allowance + perSlice, perSlice * 2);
      while (queue.length > 0 && allowance > 0) {
        const chunk = queue.shift()!;
        const part = allowance >= chunk.length ? chunk : chunk.subarray(0, Math.floor(allowance));
        if (part.length < chunk.length) queue.unshift(chunk.subarray(part.length));
        if (part.length === 0) break;
        allowance -= part.length;
        client.write(part);
      }
      if (queue.length < 16 && upstream.isPaused()) upstream.resume();
      if (ended && queue.length === 0) client.end();
    }, 10);
    upstream.on('data', (chunk: Buffer) => {
      queue.push(chunk);
      if (queue.length >= 16) upstream.pause();
    });
    upstream.on('end', () => (ended = true));
    const close = () => {
      clearInterval(timer);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
  });
  relay.port = await listenOnLoopback(context, server);
  return relay;
}

interface Update {
  label: string;
  /** The release before and after, zipped. */
  before: string;
  after: string;
  files: number;
  changed: number;
}

async function makeUpdate(work: string, label: string, makeRelease: (root: string) => Promise<void>): Promise<Update> {
  const tree = join(work, `delta-${label}-tree`);
  await makeRelease(tree);
  const before = join(work, `delta-${label}-1.zip`);
  await zipDirectory(tree, before);
  const files = (await filesUnder(tree)).length;
  const changed = await changeSome(tree, 0.02);
  const after = join(work, `delta-${label}-2.zip`);
  await zipDirectory(tree, after);
  await rm(tree, { recursive: true });
  return { label, before, after, files, changed };
}

export async function measureDelta({ cli, work, repetitions, nodeModules, throttled }: DeltaOptions): Promise<void> {
  const { context, cleanup } = cleanupContext();
  try {
    const served = join(work, 'delta-served');
    await mkdir(served, { recursive: true });
    const nginx = await startNginx(context, served, work);
    const nginxPort = Number(new URL(nginx.url('/')).port);
    // The agent -> a relay that can limit the rate -> a relay that counts -> nginx: one URL for
    // every case, so the kept archive (named by the URL) serves them all.
    const relay = await startCountingRelay(context, nginxPort);
    const throttle = await startThrottlingRelay(context, relay.port);

    const application = await makeUpdate(work, 'application', (root) => makeApplicationTree(root, nodeModules, 3, 4, 48));
    const small = await makeUpdate(work, 'small', (root) => makeTree(root, 20_000, 0));
    const cases: Array<{ update: Update; rate: number | undefined }> = [
      { update: application, rate: undefined },
      ...(throttled ? [{ update: application, rate: 10_000_000 }] : []),
      { update: small, rate: undefined },
    ];
    for (const { update, rate } of cases) {
      const speed = rate === undefined ? 'loopback' : `${rate / 1e6} Mbit/s`;
      log(`delta: ${update.label} release (${update.files} files, ${update.changed} changed) over ${speed}`);
      await measureOne({ cli, work, repetitions: rate === undefined ? repetitions : 1, served, relay, throttle, rate, update, speed });
    }
  } finally {
    await cleanup();
  }
}

interface OneCase {
  cli: string;
  work: string;
  repetitions: number;
  served: string;
  relay: CountingRelay;
  throttle: ThrottlingRelay;
  rate: number | undefined;
  update: Update;
  speed: string;
}

async function measureOne({ cli, work, repetitions, served, relay, throttle, rate, update, speed }: OneCase): Promise<void> {
  const agentRoot = join(work, 'delta-agent');
  const prepared = join(work, 'delta-agent-prepared');
  const url = `http://127.0.0.1:${throttle.port}/app.zip`;
  const args = ['-f', '-r', url, '-l', join(agentRoot, 'www', 'current'), '--cache', join(agentRoot, 'cache'), '--pre-hooks', join(agentRoot, 'hooks'), '--post-hooks', join(agentRoot, 'hooks')];
  // The previous release live, its archive kept: prepared once, put back before every run.
  await rm(agentRoot, { recursive: true, force: true });
  await rm(prepared, { recursive: true, force: true });
  await mkdir(join(agentRoot, 'hooks'), { recursive: true });
  await cp(update.before, join(served, 'app.zip'));
  throttle.rate = undefined;
  await measure(process.execPath, [cli, ...args]);
  throttle.rate = rate;
  await cp(agentRoot, prepared, { recursive: true, verbatimSymlinks: true });
  await cp(update.after, join(served, 'next.zip'));
  await rename(join(served, 'next.zip'), join(served, 'app.zip'));

  const bytes: Record<'delta' | 'whole', number[]> = { delta: [], whole: [] };
  const counted = (name: 'delta' | 'whole', env: NodeJS.ProcessEnv) => async (): Promise<Measurement> => {
    relay.reset();
    const measurement = await measure(process.execPath, [cli, ...args], { env: { ...process.env, ...env } });
    bytes[name].push(relay.bytes);
    return measurement;
  };
  const results = await alternate(
    repetitions,
    { delta: counted('delta', {}), whole: counted('whole', { REPO_DEPLOY_DELTA: 'no' }) },
    async () => {
      await rm(agentRoot, { recursive: true, force: true });
      await cp(prepared, agentRoot, { recursive: true, verbatimSymlinks: true });
      await run('sync', []);
    },
  );
  const recorded = (list: number[]) => spreadOf(list.slice(list.length - repetitions).map((value) => value / 2 ** 20));
  const [deltaBytes, wholeBytes] = [recorded(bytes.delta), recorded(bytes.whole)];
  const what = `${update.files.toLocaleString('en')} files, ${update.changed} changed`;
  if (update.label === 'application' && speed === 'loopback') {
    rows.push({
      figure: `delta update over HTTP (nginx, loopback) of a release of ${what}: bytes from the server`,
      ours: inMiB(deltaBytes),
      reference: `whole download: ${inMiB(wholeBytes)}`,
      goal: `<= 5% of a whole download (now ${((100 * deltaBytes.median) / wholeBytes.median).toFixed(1)}%)`,
      met: deltaBytes.median <= 0.05 * wholeBytes.median,
    });
    rows.push({
      figure: 'same update: wall time',
      ours: inSeconds(results.delta.seconds),
      reference: `whole download: ${inSeconds(results.whole.seconds)}`,
      goal: `<= 1.2x a whole download (now ${ratio(results.delta.seconds.median, results.whole.seconds.median)})`,
      met: results.delta.seconds.median <= 1.2 * results.whole.seconds.median,
    });
  } else if (update.label === 'application') {
    rows.push({
      figure: `same update through a relay limited to ${speed}: wall time (${repetitions} run each)`,
      ours: inSeconds(results.delta.seconds),
      reference: `whole download: ${inSeconds(results.whole.seconds)}`,
      goal: `<= 0.2x a whole download (now ${ratio(results.delta.seconds.median, results.whole.seconds.median)})`,
      met: results.delta.seconds.median <= 0.2 * results.whole.seconds.median,
    });
  } else {
    rows.push({
      figure: `update of ${what} of about 200 bytes (headers and directory: most of the archive): bytes from the server, the delta given up from the archive's end`,
      ours: inMiB(deltaBytes),
      reference: `delta = no: ${inMiB(wholeBytes)}`,
      goal: `<= the whole archive + 65 KiB (now +${((deltaBytes.median - wholeBytes.median) * 1024).toFixed(0)} KiB)`,
      met: deltaBytes.median <= wholeBytes.median + 65 / 1024,
    });
    rows.push({ figure: 'same update: wall time', ours: inSeconds(results.delta.seconds), reference: `delta = no: ${inSeconds(results.whole.seconds)}`, goal: '', met: undefined });
  }
  throttle.rate = undefined;
  await rm(agentRoot, { recursive: true, force: true });
  await rm(prepared, { recursive: true, force: true });
}
