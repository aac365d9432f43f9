// Real archives for tests: made by the `zip` command from a directory tree, or by a streaming
// writer (yazl, which writes data descriptors after each entry).
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import yazl from 'yazl';

const run = promisify(execFile);

export type TreeSpec = Record<string, string | { content: string; mode?: number } | { symlink: string }>;

export async function writeTree(root: string, tree: TreeSpec): Promise<void> {
  for (const [path, spec] of Object.entries(tree)) {
    const target = join(root, path);
    await mkdir(dirname(target), { recursive: true });
    if (typeof spec === 'string') await writeFile(target, spec);
    else if ('symlink' in spec) await symlink(spec.symlink, target);
    else {
      await writeFile(target, spec.content);
      if (spec.mode !== undefined) await chmod(target, spec.mode);
    }
  }
}

/** Zips a tree with the real `zip` command (symlinks stored as links, modes kept). */
export async function zipTree(tree: TreeSpec, zipPath: string, workDirectory: string): Promise<string> {
  const source = join(workDirectory, `tree-${Math.random().toString(36).slice(2)}`);
  await mkdir(source, { recursive: true });
  await writeTree(source, tree);
  await run('zip', ['-qry', zipPath, '.'], { cwd: source });
  return zipPath;
}

/** Writes a zip with yazl's streaming entries, which carry data descriptors. */
export async function streamingZip(files: Record<string, string>, zipPath: string): Promise<string> {
  const zip = new yazl.ZipFile();
  for (const [name, content] of Object.entries(files)) {
    zip.addReadStream(Readable.from([Buffer.from(content)]), name, { mode: 0o100644 });
  }
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(zipPath));
  return zipPath;
}
