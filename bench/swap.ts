// The swap under load: 50 updates while a reader loops over the live tree, beside the original
// tool's way of updating in place (cp -a over the live directory).
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { zipDirectory } from './fixtures.js';
import { median } from './measure.js';
import { rows } from './report.js';

const run = promisify(execFile);

async function startReader(repository: string, live: string) {
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

export async function measureSwap(work: string, cli: string, repository: string): Promise<void> {
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
  await mkdir(join(root, 'none'), { recursive: true });
  await writeFile(join(root, 'bench.cfg'), 'keep-releases = 3\n');
  const live = join(root, 'www', 'current');
  const argsFor = (archive: string) => ['-f', '-c', join(root, 'bench.cfg'), '-r', archive, '-l', live, '--cache', join(root, 'cache'), '--pre-hooks', join(root, 'none'), '--post-hooks', join(root, 'none')];
  await run(process.execPath, [cli, ...argsFor(archives[0] as string)]);
  const stopReader = await startReader(repository, live);
  const swapTimes: number[] = [];
  for (let update = 1; update <= 50; update++) {
    const { stderr } = await run(process.execPath, [cli, ...argsFor(archives[update % 2] as string)]);
    const staged = /^(\S+) INFO {2}staged release/m.exec(stderr)?.[1];
    const swapped = /^(\S+) INFO {2}live path .* now points at/m.exec(stderr)?.[1];
    if (staged && swapped) swapTimes.push(Date.parse(swapped) - Date.parse(staged));
  }
  const ours = await stopReader();

  // The reference: the original tool synced files into the live directory; cp -a does the same.
  const plain = join(work, 'swap-plain');
  await run('cp', ['-a', `${join(work, 'swap-v1')}/.`, plain]);
  const stopPlainReader = await startReader(repository, plain);
  const copyTimes: number[] = [];
  for (let update = 1; update <= 50; update++) {
    const started = performance.now();
    await run('cp', ['-a', `${join(work, update % 2 ? 'swap-v2' : 'swap-v1')}/.`, plain]);
    copyTimes.push(performance.now() - started);
  }
  const reference = await stopPlainReader();
  rows.push({ figure: 'swap: staged -> live (median of 50, with the pre-update step)', ours: `${median(swapTimes).toFixed(0)} ms`, reference: `cp -a over the live tree: ${median(copyTimes).toFixed(0)} ms`, goal: '', met: undefined });
  rows.push({ figure: 'swap: failed / mixed reader passes during 50 updates', ours: `${ours.failed} / ${ours.mixed} of ${ours.passes}`, reference: `cp -a: ${reference.failed} / ${reference.mixed} of ${reference.passes}`, goal: '0 / 0', met: ours.failed + ours.mixed === 0 && ours.passes > 0 });
}
