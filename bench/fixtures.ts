// The data the benchmarks run on, made inside the run (nothing large is committed).
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** `count` small files in 100 directories, plus (optionally) one large, partly compressible file. */
export async function makeTree(root: string, count: number, largeMiB: number, marker = 'v1'): Promise<void> {
  for (let directory = 0; directory < 100; directory++) await mkdir(join(root, `dir${directory}`), { recursive: true });
  for (let index = 0; index < count; index++) {
    await writeFile(join(root, `dir${index % 100}`, `file${index}.txt`), `${marker} file ${index}\n${'x'.repeat(index % 2000)}\n`);
  }
  if (largeMiB > 0) {
    // base64 of random bytes: about as compressible as a build artefact (3:4).
    await run('sh', ['-c', `head -c ${Math.floor((largeMiB * 1024 * 1024 * 3) / 4)} /dev/urandom | base64 -w 0 > ${join(root, 'large.bin')}`]);
  }
}

export async function zipDirectory(source: string, zipPath: string): Promise<void> {
  await run('zip', ['-qr', zipPath, '.'], { cwd: source, maxBuffer: 64 << 20 });
}
