// Copies a checked-out tree into a staging directory: files with their executable bits,
// directories, and symlinks that stay inside the release; never .git. A symlink pointing
// outside is refused, as in zips: the release would depend on files it does not contain.
import { chmod, copyFile, lstat, mkdir, readdir, readlink, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fetchError } from './errors.js';

export interface CopySummary {
  files: number;
  symlinks: number;
}

export async function copyTree(source: string, destination: string, describeSource: string): Promise<CopySummary> {
  const summary: CopySummary = { files: 0, symlinks: 0 };
  const root = resolve(destination);
  const walk = async (from: string, to: string): Promise<void> => {
    for (const entry of await readdir(from, { withFileTypes: true })) {
      if (entry.name === '.git') continue;
      const sourcePath = join(from, entry.name);
      const targetPath = join(to, entry.name);
      if (entry.isDirectory()) {
        await mkdir(targetPath, { mode: 0o755 });
        await walk(sourcePath, targetPath);
      } else if (entry.isSymbolicLink()) {
        const target = await readlink(sourcePath);
        const fromRoot = relative(root, resolve(dirname(targetPath), target));
        if (isAbsolute(target) || fromRoot === '..' || fromRoot.startsWith('..' + sep)) {
          throw fetchError(
            `${describeSource} rejected: "${relative(root, targetPath)}" is a symlink to "${target}", outside the release; nothing was deployed`,
          );
        }
        await symlink(target, targetPath);
        summary.symlinks++;
      } else if (entry.isFile()) {
        await copyFile(sourcePath, targetPath);
        await chmod(targetPath, (await lstat(sourcePath)).mode & 0o777);
        summary.files++;
      }
    }
  };
  await walk(source, root);
  return summary;
}
