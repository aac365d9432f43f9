// The data the benchmarks run on, made inside the run (nothing large is committed).
import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** `count` small files in 100 directories, plus (optionally) one large, partly compressible file. */
export async function makeTree(root: string, count: number, largeMiB: number, marker = 'v1'): Promise<void> {
  for (let directory = 0; directory < 100; directory++) await mkdir(join(root, `dir${directory}`), { recursive: true });
  for (let index = 0; index < count; index++) {
    await writeFile(join(root, `dir${index % 100}`, `file${index}.txt`), `${marker} file ${index}\n${'x'.repeat(index % 2000)}\n`);
  }
  if (largeMiB > 0) await makeLargeFile(join(root, 'large.bin'), largeMiB);
}

/** base64 of random bytes: about as compressible as a build artefact (3:4). */
async function makeLargeFile(path: string, mebibytes: number): Promise<void> {
  await run('sh', ['-c', `head -c ${Math.floor((mebibytes * 1024 * 1024 * 3) / 4)} /dev/urandom | base64 -w 0 > '${path}'`]);
}

/**
 * A release as a Node.js application ships: real package trees (this repository's own
 * node_modules, installed by npm ci: JavaScript, maps, type definitions, READMEs, licences),
 * copied under `copies` workspaces so the file count reaches what a monorepo ships, plus
 * large build outputs.
 */
export async function makeApplicationTree(root: string, nodeModules: string, copies: number, largeFiles: number, largeMiB: number): Promise<void> {
  for (let copy = 0; copy < copies; copy++) {
    await cp(nodeModules, join(root, copy === 0 ? 'node_modules' : join('packages', `service${copy}`, 'node_modules')), { recursive: true, verbatimSymlinks: true });
  }
  await mkdir(join(root, 'dist'), { recursive: true });
  for (let index = 0; index < largeFiles; index++) await makeLargeFile(join(root, 'dist', `bundle${index}.bin`), largeMiB);
}

export async function zipDirectory(source: string, zipPath: string): Promise<void> {
  await run('zip', ['-qr', '-y', zipPath, '.'], { cwd: source, maxBuffer: 64 << 20 });
}

/**
 * A bare repository with a long history and many refs, written in one `git fast-import`:
 * `commits` commits on main over a tree of `directories` directories of `filesPerDirectory`
 * files (each commit edits two files), `pullRefs` refs under refs/pull/N/head on older commits
 * (as a forge advertises them), and a tag every 50 commits.
 */
export async function makeGitHistory(bare: string, options: { commits: number; directories: string[]; filesPerDirectory: number; pullRefs: number }): Promise<void> {
  await mkdir(bare, { recursive: true });
  await run('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  for (const key of ['uploadpack.allowFilter', 'uploadpack.allowAnySHA1InWant']) await run('git', ['-C', bare, 'config', key, 'true']);
  const importer = spawn('git', ['-C', bare, 'fast-import', '--quiet'], { stdio: ['pipe', 'inherit', 'inherit'] });
  const exited = new Promise<number | null>((done) => importer.once('exit', done));
  const lines: string[] = [];
  const flush = async () => {
    const chunk = lines.join('');
    lines.length = 0;
    if (!importer.stdin.write(chunk)) await new Promise((done) => importer.stdin.once('drain', done));
  };
  const source = (path: string, version: number) => {
    const body = Array.from({ length: 40 }, (_, line) => `export const value${line} = ${JSON.stringify(`${path} v${version} line ${line}`)};\n`).join('');
    return `M 100644 inline ${path}\ndata ${Buffer.byteLength(body)}\n${body}`;
  };
  const paths = options.directories.flatMap((directory) => Array.from({ length: options.filesPerDirectory }, (_, index) => `${directory}/file${index}.js`));
  const when = 1_600_000_000;
  for (let commit = 1; commit <= options.commits; commit++) {
    const changes = commit === 1 ? paths.map((path) => source(path, 0)) : [0, 1].map((offset) => source(paths[(commit * 7919 + offset * 104729) % paths.length] as string, commit));
    const message = `change ${commit}`;
    lines.push(`commit refs/heads/main\nmark :${commit}\ncommitter Bench <bench@example.invalid> ${when + commit * 600} +0000\ndata ${message.length}\n${message}\n${changes.join('\n')}\n\n`);
    if (commit % 50 === 0) lines.push(`reset refs/tags/v${commit / 50}\nfrom :${commit}\n\n`);
    if (lines.length > 200) await flush();
  }
  for (let pull = 1; pull <= options.pullRefs; pull++) lines.push(`reset refs/pull/${pull}/head\nfrom :${1 + ((pull * 31) % options.commits)}\n\n`);
  lines.push('done\n');
  await flush();
  importer.stdin.end();
  if ((await exited) !== 0) throw new Error('git fast-import failed');
  await run('git', ['-C', bare, 'repack', '-adq']);
}
