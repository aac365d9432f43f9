// Chooses the zip library by measurement: the same archives extracted by our yauzl-based
// extractor, unzipper's central-directory mode (Open.file) and unzipper's streaming mode
// (Extract), each in its own process so time and peak memory are its own. Counts the files
// each one actually wrote, because a fast extractor that drops entries is worthless.
//   node --import tsx bench/extract-libraries.ts
import { execFile, execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import yazl from 'yazl';

type Library = 'yauzl (ours)' | 'unzipper Open.file' | 'unzipper Extract (streaming)';
const libraries: Library[] = ['yauzl (ours)', 'unzipper Open.file', 'unzipper Extract (streaming)'];

async function worker(library: Library, archive: string, destination: string): Promise<void> {
  const started = performance.now();
  let error = '';
  try {
    if (library === 'yauzl (ours)') {
      const { extractZip } = await import('../src/remotes/extract.js');
      await extractZip(archive, destination, { maxUnpackedBytes: 64 * 1024 ** 3, maxEntries: 10_000_000 });
    } else if (library === 'unzipper Open.file') {
      const unzipper = await import('unzipper');
      const directory = await unzipper.Open.file(archive);
      await directory.extract({ path: destination, concurrency: 16 });
    } else {
      const unzipper = await import('unzipper');
      await pipeline(createReadStream(archive), unzipper.Extract({ path: destination }));
    }
  } catch (caught) {
    error = caught instanceof Error ? caught.message : String(caught);
  }
  const seconds = (performance.now() - started) / 1000;
  const peakMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ seconds, peakMb, error }));
}

async function makeArchives(root: string): Promise<Array<{ name: string; path: string; files: number }>> {
  const archives = [];
  for (const [name, count] of [['20,001 small files (zip)', 20_001], ['70,000 files, zip64 (zip)', 70_000]] as const) {
    const source = join(root, `tree-${count}`);
    for (let index = 0; index < count; index++) {
      const directory = join(source, `d${index % 100}`);
      if (index < 100) await mkdir(directory, { recursive: true });
      await writeFile(join(directory, `f${index}.txt`), `file ${index}\n`);
    }
    const path = join(root, `a-${count}.zip`);
    execFileSync('zip', ['-qr', path, '.'], { cwd: source });
    await rm(source, { recursive: true });
    archives.push({ name, path, files: count });
  }
  const streamed = new yazl.ZipFile();
  for (let index = 0; index < 5000; index++) streamed.addReadStream(Readable.from([Buffer.from(`file ${index}\n`)]), `d${index % 50}/f${index}.txt`);
  streamed.end();
  const streamedPath = join(root, 'descriptors.zip');
  await pipeline(streamed.outputStream, createWriteStream(streamedPath));
  archives.push({ name: '5,000 files with data descriptors (yazl)', path: streamedPath, files: 5000 });
  return archives;
}

async function main(): Promise<void> {
  const [mode, library, archive, destination] = process.argv.slice(2);
  if (mode === '--worker') return worker(library as Library, archive as string, destination as string);
  const root = await mkdtemp(join(tmpdir(), 'extract-libraries-'));
  try {
    const archives = await makeArchives(root);
    const run = promisify(execFile);
    console.log('| archive | library | files written | seconds | peak RSS MB | error |');
    console.log('|---|---|---|---|---|---|');
    for (const archive of archives) {
      for (const candidate of libraries) {
        const destination = join(root, 'out');
        await rm(destination, { recursive: true, force: true });
        await mkdir(destination);
        const { stdout } = await run(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', candidate, archive.path, destination], { maxBuffer: 1 << 20 });
        const result = JSON.parse(stdout) as { seconds: number; peakMb: number; error: string };
        const written = Number(execFileSync('sh', ['-c', `find "${destination}" -type f | wc -l`]).toString().trim());
        console.log(`| ${archive.name} | ${candidate} | ${written} of ${archive.files} | ${result.seconds.toFixed(2)} | ${result.peakMb.toFixed(0)} | ${result.error.slice(0, 60)} |`);
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
