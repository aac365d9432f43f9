// Copies a checked-out tree into a staging directory: files with their executable bits,
// directories, and symlinks that stay inside the release; never .git. A symlink leading
// outside, directly or through the tree's other links, is refused, as in zips: the release
// would depend on files it does not contain. Links are created last, after they are all judged.
import { chmod, copyFile, lstat, mkdir, readdir, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchError } from './errors.js';
import { inParallel } from './in-parallel.js';
import { releaseMode } from './release-modes.js';
import { linkStaysInside } from './symlink-containment.js';

/** Twice libuv's four threads: one file's calls wait while another's run. */
const filesAtOnce = 8;

export interface CopySummary {
  files: number;
  symlinks: number;
}

export async function copyTree(source: string, destination: string, describeSource: string): Promise<CopySummary> {
  const summary: CopySummary = { files: 0, symlinks: 0 };
  const links = new Map<string, string>();
  const files: string[] = [];
  // Directories are made as the walk finds them, files copied after, several at a time: each file
  // is two or three calls on libuv's thread pool, which one file at a time kept idle (a git first
  // deploy of 500 files took 1.11x as long; docs/performance.md).
  const walk = async (relativeDirectory: string): Promise<void> => {
    for (const entry of await readdir(join(source, relativeDirectory), { withFileTypes: true })) {
      if (entry.name === '.git') continue;
      const path = relativeDirectory ? `${relativeDirectory}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        await mkdir(join(destination, path), { mode: 0o755 });
        await walk(path);
      } else if (entry.isSymbolicLink()) {
        links.set(path, await readlink(join(source, path)));
      } else if (entry.isFile()) {
        files.push(path);
      }
    }
  };
  await walk('');
  await inParallel(files, filesAtOnce, async (path) => {
    const targetPath = join(destination, path);
    const sourceMode = (await lstat(join(source, path))).mode & 0o7777;
    // copyFile gives the copy the source's mode; a checkout made under a loose umask must not
    // make the release group- or world-writable, so that mode is narrowed where it needs to be.
    await copyFile(join(source, path), targetPath);
    if (releaseMode(sourceMode) !== sourceMode) await chmod(targetPath, releaseMode(sourceMode));
  });
  summary.files = files.length;
  for (const path of links.keys()) {
    if (!linkStaysInside(path, links)) {
      throw fetchError(`${describeSource} rejected: "${path}" is a symlink to "${links.get(path)}", outside the release; nothing was deployed`);
    }
  }
  for (const [path, target] of links) {
    await symlink(target, join(destination, path));
    summary.symlinks++;
  }
  return summary;
}
