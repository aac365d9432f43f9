// npm run bench: each figure of ours beside a reference tool measured on the same data in the
// same run, with the ratio and the goal (issue "Benchmarks beside the reference tools").
//   npm run bench            the standard run (a few minutes on 2 cores)
//   npm run bench -- --large also a 512 MiB archive, to show memory does not grow with it
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRepository, git } from '../test/helpers/git-repos.js';
import { startGitDaemon } from '../test/helpers/git-servers.js';
import { startHttpServer } from '../test/helpers/http-server.js';
import { s3AccessKey, startS3 } from '../test/helpers/s3-server.js';
import { measureFleetCost } from './fleet-cost.js';
import { makeTree, zipDirectory } from './fixtures.js';
import { cleanupContext, measure, median, repeat, requireTools } from './measure.js';

const run = promisify(execFile);
const repository = resolve(fileURLToPath(new URL('..', import.meta.url)));
const cli = join(repository, 'dist', 'cli.js');
const large = process.argv.includes('--large');

interface Row {
  figure: string;
  ours: string;
  reference: string;
  ratio: string;
  goal: string;
  met: boolean | undefined;
}
const rows: Row[] = [];
const seconds = (value: number) => `${value.toFixed(2)} s`;
const ms = (value: number) => `${value.toFixed(0)} ms`;
const mb = (value: number) => `${value.toFixed(0)} MB`;
const ratio = (ours: number, reference: number) => `${(ours / reference).toFixed(2)}x`;
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

/** -f with a sandbox under `root`: an empty config, no hooks. */
async function deployArgs(root: string, remote: string, config = ''): Promise<string[]> {
  await mkdir(root, { recursive: true });
  await writeFile(join(root, 'bench.cfg'), config);
  return ['-f', '-c', join(root, 'bench.cfg'), '-r', remote, '-l', join(root, 'www', 'current'), '--cache', join(root, 'cache'), '--pre-hooks', join(root, 'none'), '--post-hooks', join(root, 'none')];
}

async function extraction(work: string): Promise<void> {
  log('1/6 zip extraction: making 8,000 small files and one 128 MiB file');
  const variants = large ? [32, 128, 512] : [32, 128];
  const peaks: Record<number, number> = {};
  for (const largeMiB of variants) {
    const source = join(work, `tree-${largeMiB}`);
    await makeTree(source, 8000, largeMiB);
    const archive = join(work, `archive-${largeMiB}.zip`);
    await zipDirectory(source, archive);
    await rm(source, { recursive: true });
    const target = join(work, `deploy-${largeMiB}`);
    const times = largeMiB === 128 ? 3 : 1;
    // Each run starts with the disk quiet: the previous run's deletion is written back first.
    const clean = (directory: string) => async () => {
      await rm(directory, { recursive: true, force: true });
      await run('sync', []);
    };
    const ours = await repeat(times, async () => measure(process.execPath, [cli, ...(await deployArgs(target, archive))]), clean(target));
    peaks[largeMiB] = ours.peakMb;
    if (largeMiB !== 128) continue;
    const unzipTarget = join(work, 'unzip-out');
    const reference = await repeat(times, () => measure('unzip', ['-q', archive, '-d', unzipTarget]), clean(unzipTarget));
    rows.push({ figure: 'first deploy from a local zip (8,000 files + 128 MiB), time', ours: seconds(ours.seconds), reference: `unzip -q: ${seconds(reference.seconds)}`, ratio: ratio(ours.seconds, reference.seconds), goal: '<= 1.5x', met: ours.seconds / reference.seconds <= 1.5 });
    rows.push({ figure: 'same, peak resident memory', ours: mb(ours.peakMb), reference: `unzip -q: ${mb(reference.peakMb)}`, ratio: ratio(ours.peakMb, reference.peakMb), goal: '<= 150 MB', met: ours.peakMb <= 150 });
    await rm(unzipTarget, { recursive: true, force: true });
  }
  const sizes = Object.keys(peaks).map(Number);
  const smallest = Math.min(...sizes);
  const largest = Math.max(...sizes);
  rows.push({
    figure: `peak memory as the archive grows (${sizes.map((size) => `${size} MiB`).join(', ')})`,
    ours: sizes.map((size) => mb(peaks[size] as number)).join(', '),
    reference: '',
    ratio: ratio(peaks[largest] as number, peaks[smallest] as number),
    goal: 'flat (<= 1.2x)',
    met: (peaks[largest] as number) / (peaks[smallest] as number) <= 1.2,
  });
}

/** A TCP proxy in front of git daemon: connections, bytes sent to the client, and whether a pack went by. */
async function countingTcpProxy(targetPort: number) {
  const stats = { connections: 0, bytes: 0, packs: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    stats.connections++;
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    upstream.on('data', (chunk: Buffer) => {
      stats.bytes += chunk.length;
      if (chunk.includes('PACK')) stats.packs++;
    });
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    port: (server.address() as AddressInfo).port,
    stats,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((done) => server.close(done));
    },
  };
}

async function idleChecks(work: string): Promise<void> {
  log('2/6 idle checks: HTTP, S3 (s3rver), git daemon');
  const { context, cleanup } = cleanupContext();
  try {
    const source = join(work, 'idle-tree');
    await makeTree(source, 200, 0);
    const archive = join(work, 'idle.zip');
    await zipDirectory(source, archive);

    const http = await startHttpServer(context);
    http.route('/app.zip', { kind: 'file', path: archive });
    const httpArgs = await deployArgs(join(work, 'idle-http'), http.url('/app.zip'));
    await measure(process.execPath, [cli, ...httpArgs]);
    http.resetCounters();
    const httpIdle = await repeat(5, () => measure(process.execPath, [cli, ...httpArgs]));
    const perCheckRequests = http.requests.length / 5;
    const etag = String(http.requests.at(-1)?.headers['if-none-match'] ?? '');
    const curl = await repeat(5, () => measure('curl', ['-s', '-o', '/dev/null', '-H', `If-None-Match: ${etag}`, http.url('/app.zip')]));
    rows.push({ figure: 'idle check, HTTP: requests / body bytes', ours: `${perCheckRequests} / ${http.bodyBytesSent}`, reference: '', ratio: '', goal: '1 / 0', met: perCheckRequests === 1 && http.bodyBytesSent === 0 });
    rows.push({ figure: 'idle check, HTTP: time (whole -f run)', ours: ms(httpIdle.seconds * 1000), reference: `curl If-None-Match: ${ms(curl.seconds * 1000)}`, ratio: ratio(httpIdle.seconds, curl.seconds), goal: '', met: undefined });

    const s3 = await startS3(context);
    await s3.upload('app.zip', await readFile(archive));
    const s3Args = await deployArgs(join(work, 'idle-s3'), `s3://${s3.bucket}/app.zip`, `s3-endpoint = ${s3.endpoint}\naws-region = us-east-1\naws-access-key = ${s3AccessKey}\naws-secret-key = bench-secret\n`);
    await measure(process.execPath, [cli, ...s3Args]);
    s3.resetCounters();
    const s3Idle = await repeat(5, () => measure(process.execPath, [cli, ...s3Args]));
    rows.push({ figure: 'idle check, S3: requests / body bytes', ours: `${s3.requests / 5} / ${s3.bodyBytes}`, reference: '', ratio: '', goal: '1 / 0', met: s3.requests / 5 === 1 && s3.bodyBytes === 0 });
    rows.push({ figure: 'idle check, S3: time (whole -f run)', ours: ms(s3Idle.seconds * 1000), reference: 'no S3 client on the machine', ratio: '', goal: '', met: undefined });

    const repo = await createRepository(join(work, 'idle-git'));
    await repo.commit({ 'web/index.html': 'v1\n', 'other.txt': 'x\n' });
    const daemon = await startGitDaemon(context, join(work, 'idle-git', 'srv'));
    const daemonPort = Number(/:(\d+)\//.exec(daemon.url('x'))?.[1]);
    const proxy = await countingTcpProxy(daemonPort);
    context.after(() => proxy.close());
    const gitRemote = `git://127.0.0.1:${proxy.port}/app.git/web#main`;
    const gitArgs = await deployArgs(join(work, 'idle-git-deploy'), gitRemote);
    await measure(process.execPath, [cli, ...gitArgs]);
    Object.assign(proxy.stats, { connections: 0, bytes: 0, packs: 0 });
    const gitIdle = await repeat(5, () => measure(process.execPath, [cli, ...gitArgs]));
    const idleStats = { ...proxy.stats };
    const lsRemote = await repeat(5, () => measure('git', ['ls-remote', `git://127.0.0.1:${proxy.port}/app.git`, 'refs/heads/main']));
    rows.push({ figure: 'idle check, git daemon: connections / bytes / packs', ours: `${idleStats.connections / 5} / ${idleStats.bytes / 5} / ${idleStats.packs}`, reference: '', ratio: '', goal: 'no pack', met: idleStats.packs === 0 });
    rows.push({ figure: 'idle check, git daemon: time (whole -f run)', ours: ms(gitIdle.seconds * 1000), reference: `git ls-remote: ${ms(lsRemote.seconds * 1000)}`, ratio: ratio(gitIdle.seconds, lsRemote.seconds), goal: '', met: undefined });
  } finally {
    await cleanup();
  }
}

async function gitFirstDeploy(work: string): Promise<void> {
  log('3/6 git first deploy: a 20,000-file repository, one 500-file subdirectory');
  const { context, cleanup } = cleanupContext();
  try {
    const root = join(work, 'big-git');
    const repo = await createRepository(root);
    for (let index = 0; index < 20_000; index++) {
      const directory = index < 500 ? join(repo.work, 'web', `d${index % 20}`) : join(repo.work, 'src', `m${index % 400}`);
      if (index < 20 || (index >= 500 && index < 900)) await mkdir(directory, { recursive: true });
      await writeFile(join(directory, `f${index}.txt`), `file ${index}\n${'line of source code\n'.repeat(index % 40)}`);
    }
    await git(repo.work, 'add', '-A');
    await git(repo.work, 'commit', '-q', '-m', 'big');
    await repo.push();
    const daemon = await startGitDaemon(context, join(root, 'srv'));
    const ours = await repeat(3, async () => measure(process.execPath, [cli, ...(await deployArgs(join(work, 'git-deploy'), `${daemon.url('app.git')}/web#main`))]), () => rm(join(work, 'git-deploy'), { recursive: true, force: true }));
    const cloneDirectory = join(work, 'git-clone');
    const reference = await repeat(3, () => measure('sh', ['-c', `git clone -q --depth 1 --filter=blob:none --sparse ${daemon.url('app.git')} ${cloneDirectory} && git -C ${cloneDirectory} sparse-checkout set web`]), () => rm(cloneDirectory, { recursive: true, force: true }));
    rows.push({ figure: 'git first deploy of web/ (500 of 20,000 files)', ours: seconds(ours.seconds), reference: `git clone --depth 1 --filter=blob:none --sparse + sparse-checkout set: ${seconds(reference.seconds)}`, ratio: ratio(ours.seconds, reference.seconds), goal: '<= 1.2x', met: ours.seconds / reference.seconds <= 1.2 });
  } finally {
    await cleanup();
  }
}

async function startReader(live: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repository, 'bench', 'swap-reader.ts'), live], { stdio: ['ignore', 'pipe', 'inherit'], cwd: repository });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  await new Promise<void>((ready) => {
    const look = () => (output.includes('ready') ? ready() : setTimeout(look, 20));
    look();
  });
  return async () => {
    child.kill('SIGTERM');
    await new Promise((done) => child.once('exit', done));
    return JSON.parse(output.split('\n').find((line) => line.startsWith('{')) ?? '{}') as { passes: number; failed: number; mixed: number };
  };
}

async function swap(work: string): Promise<void> {
  log('4/6 the swap: 50 updates with a reader looping over the live tree');
  const archives: string[] = [];
  for (const version of ['v1', 'v2']) {
    const source = join(work, `swap-${version}`);
    await mkdir(source, { recursive: true });
    for (let index = 0; index < 200; index++) await writeFile(join(source, `file${index}.txt`), `${version} ${'y'.repeat(4000)}\n`);
    const archive = join(work, `swap-${version}.zip`);
    await zipDirectory(source, archive);
    archives.push(archive);
  }
  const root = join(work, 'swap-deploy');
  const live = join(root, 'www', 'current');
  const argsFor = async (archive: string) => deployArgs(root, archive, 'keep-releases = 3\n');
  await run(process.execPath, [cli, ...(await argsFor(archives[0] as string))]);
  const stopReader = await startReader(live);
  const swapTimes: number[] = [];
  for (let update = 1; update <= 50; update++) {
    const { stderr } = await run(process.execPath, [cli, ...(await argsFor(archives[update % 2] as string))]);
    const staged = /^(\S+) INFO {2}staged release/m.exec(stderr)?.[1];
    const swapped = /^(\S+) INFO {2}live path .* now points at/m.exec(stderr)?.[1];
    if (staged && swapped) swapTimes.push(Date.parse(swapped) - Date.parse(staged));
  }
  const ours = await stopReader();

  // The reference: the original tool synced files into the live directory; cp -a does the same.
  const plain = join(work, 'swap-plain');
  await run('cp', ['-a', `${join(work, 'swap-v1')}/.`, plain]);
  const stopPlainReader = await startReader(plain);
  const copyTimes: number[] = [];
  for (let update = 1; update <= 50; update++) {
    const started = performance.now();
    await run('cp', ['-a', `${join(work, update % 2 ? 'swap-v2' : 'swap-v1')}/.`, plain]);
    copyTimes.push(performance.now() - started);
  }
  const reference = await stopPlainReader();
  rows.push({ figure: 'swap: staged -> live (median of 50, with pre-update step)', ours: ms(median(swapTimes)), reference: `cp -a sync: ${ms(median(copyTimes))}`, ratio: '', goal: '', met: undefined });
  rows.push({ figure: 'swap: failed / mixed reader passes during 50 updates', ours: `${ours.failed} / ${ours.mixed} of ${ours.passes}`, reference: `cp -a sync: ${reference.failed} / ${reference.mixed} of ${reference.passes}`, ratio: '', goal: '0 / 0', met: ours.failed + ours.mixed === 0 && ours.passes > 0 });
}

async function startup(work: string): Promise<void> {
  log('5/6 start-up and idle memory');
  const help = await repeat(10, () => measure(process.execPath, [cli, '--help']));
  const bare = await repeat(10, () => measure(process.execPath, ['-e', '0']));
  const overhead = (help.seconds - bare.seconds) * 1000;
  rows.push({ figure: 'repo-deploy --help (median of 10)', ours: ms(help.seconds * 1000), reference: `node -e 0: ${ms(bare.seconds * 1000)}`, ratio: `+${overhead.toFixed(0)} ms`, goal: '<= +150 ms', met: overhead <= 150 });

  const { context, cleanup } = cleanupContext();
  try {
    const source = join(work, 'memory-tree');
    await makeTree(source, 50, 0);
    const archive = join(work, 'memory.zip');
    await zipDirectory(source, archive);
    const http = await startHttpServer(context);
    http.route('/app.zip', { kind: 'file', path: archive });
    const root = join(work, 'memory-agent');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'empty.cfg'), '');
    const { stdout } = await run(process.execPath, ['--expose-gc', join(repository, 'bench', 'idle-memory.mjs'), http.url('/app.zip'), root, '10,1000,2000,6000'], { cwd: repository, maxBuffer: 1 << 20 });
    const result = JSON.parse(stdout) as { samples: Record<number, { rssMb: number; heapMb: number }>; millisecondsPerCheck: number };
    const at = (check: number) => result.samples[check] as { rssMb: number; heapMb: number };
    rows.push({
      figure: 'idle daemon checks: heap after the 10th / 1,000th check',
      ours: `${at(10).heapMb.toFixed(1)} / ${at(1000).heapMb.toFixed(1)} MB`,
      reference: `RSS ${at(10).rssMb.toFixed(0)} / ${at(1000).rssMb.toFixed(0)} MB`,
      ratio: ratio(at(1000).heapMb, at(10).heapMb),
      goal: 'flat (heap <= 1.1x)',
      met: at(1000).heapMb / at(10).heapMb <= 1.1,
    });
    rows.push({
      figure: 'same, after warm-up: heap after the 2,000th / 6,000th check',
      ours: `${at(2000).heapMb.toFixed(1)} / ${at(6000).heapMb.toFixed(1)} MB`,
      reference: `RSS ${at(2000).rssMb.toFixed(0)} / ${at(6000).rssMb.toFixed(0)} MB`,
      ratio: ratio(at(6000).heapMb, at(2000).heapMb),
      goal: 'flat (heap <= 1.1x)',
      met: at(6000).heapMb / at(2000).heapMb <= 1.1,
    });
    rows.push({ figure: 'idle check time in the daemon (HTTP 304)', ours: `${result.millisecondsPerCheck.toFixed(1)} ms`, reference: '', ratio: '', goal: '', met: undefined });
  } finally {
    await cleanup();
  }
}

async function fleetCoordination(): Promise<void> {
  log('6/6 fleet coordination: 10 and 1,000 simulated members against one redis-server');
  const [small, big] = await measureFleetCost([10, 1000]);
  if (!small || !big) return;
  const flat = (ours: number, reference: number) => ours / reference <= 1.1;
  const perCheck = (value: number) => value.toFixed(1);
  rows.push({ figure: 'fleet: Redis commands per member per idle check, 1,000 members (reference: 10 members)', ours: perCheck(big.idleCommandsPerCheck), reference: perCheck(small.idleCommandsPerCheck), ratio: ratio(big.idleCommandsPerCheck, small.idleCommandsPerCheck), goal: 'O(1) per member (<= 1.1x)', met: flat(big.idleCommandsPerCheck, small.idleCommandsPerCheck) });
  rows.push({ figure: 'fleet: same, during a rollout (each member asks for a slot)', ours: perCheck(big.rolloutCommandsPerCheck), reference: perCheck(small.rolloutCommandsPerCheck), ratio: ratio(big.rolloutCommandsPerCheck, small.rolloutCommandsPerCheck), goal: 'O(1) per member (<= 1.1x)', met: flat(big.rolloutCommandsPerCheck, small.rolloutCommandsPerCheck) });
  rows.push({ figure: 'fleet: Redis CPU per member per check during a rollout', ours: `${big.rolloutCpuMicrosecondsPerCheck.toFixed(0)} us`, reference: `${small.rolloutCpuMicrosecondsPerCheck.toFixed(0)} us`, ratio: ratio(big.rolloutCpuMicrosecondsPerCheck, small.rolloutCpuMicrosecondsPerCheck), goal: 'O(1) per member (<= 1.5x: CPU time is noisy)', met: big.rolloutCpuMicrosecondsPerCheck / small.rolloutCpuMicrosecondsPerCheck <= 1.5 });
}

function printTable(): void {
  const header = ['figure', 'ours', 'reference', 'ratio', 'goal', 'met'];
  const lines = rows.map((row) => [row.figure, row.ours, row.reference, row.ratio, row.goal, row.met === undefined ? '' : row.met ? 'yes' : 'NO']);
  const out = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...lines.map((line) => `| ${line.join(' | ')} |`)];
  process.stdout.write(`\nrepo-deploy benchmarks, ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}\n\n${out.join('\n')}\n`);
}

await requireTools('unzip', 'zip', 'git', 'curl', '/usr/bin/time', 'redis-server');
const work = await mkdtemp(join(tmpdir(), 'repo-deploy-bench-'));
const started = Date.now();
try {
  await extraction(work);
  await idleChecks(work);
  await gitFirstDeploy(work);
  await swap(work);
  await startup(work);
  await fleetCoordination();
} finally {
  await rm(work, { recursive: true, force: true });
  printTable();
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
