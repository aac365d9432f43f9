// The git mirror kept small over any number of deploys. Each deploy's fetch, and the blobs its
// checkout fetches on demand, add a promisor pack, and each shallow fetch a line to .git/shallow;
// nothing in git removes them here: gc.auto and maintenance are off, as no process may outlive a
// -f run, and `git repack -a -d` keeps every object of a promisor pack whether anything reaches it
// or not (git 2.39, six deploys of a changed 300 KB file: repack kept 18 objects and 1.7 MiB where
// 3 objects and 0.3 MiB were reachable). So once the packs pass a bound, the objects reachable
// from the deployed commit go into one new pack, marked promisor (blobs outside a sparse checkout
// are still fetched on demand), the old packs are removed, and `git prune` drops loose objects and
// the shallow lines that nothing reaches any more. All of it synchronous, under the agent's lock.
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { messageOf } from '../../base/errors.js';
import type { Logger } from '../../base/log.js';
import type { MirrorGit } from './mirror-git.js';

/** Packs a mirror may hold before it is compacted: each deploy adds about two. */
export const maxMirrorPacks = 4;

/** Compacts the mirror when it holds more than maxMirrorPacks packs; `deployed` is the commit just checked out. */
export async function compactMirror(mirror: string, git: MirrorGit, deployed: string, log: Logger): Promise<void> {
  const packDirectory = join(mirror, '.git', 'objects', 'pack');
  const packs = (await readdir(packDirectory).catch(() => [] as string[])).filter((name) => name.endsWith('.pack'));
  if (packs.length <= maxMirrorPacks) return;
  try {
    // The new pack holds what refs and HEAD reach: HEAD must be the deployed commit, or its objects would go.
    if ((await git(['rev-parse', 'HEAD'], 'rev-parse'))[0]?.trim() !== deployed) return;
    const before = await directorySize(join(mirror, '.git'));
    // Reflogs would keep every commit deployed before reachable, and so their shallow lines.
    await git(['reflog', 'expire', '--expire=now', '--all'], 'reflog expire');
    const [name] = await git(['pack-objects', '--all', '--indexed-objects', '--missing=allow-promisor', '--quiet', join(packDirectory, 'pack')], 'pack-objects');
    if (!name || !/^[0-9a-f]{40,64}$/.test(name.trim())) throw new Error(`git pack-objects named no pack (${name ?? 'nothing'})`);
    const kept = `pack-${name.trim()}`;
    // Marked before the old packs go: from then on only this pack says that missing blobs are the remote's to give.
    await writeFile(join(packDirectory, `${kept}.promisor`), '');
    for (const pack of packs.map((file) => file.slice(0, -'.pack'.length)).filter((pack) => pack !== kept)) {
      for (const suffix of ['.pack', '.idx', '.promisor', '.rev', '.keep', '.bitmap']) await rm(join(packDirectory, pack + suffix), { force: true });
    }
    await git(['prune', '--expire=now'], 'prune');
    log.debug(`compacted the git mirror ${mirror}: ${packs.length} packs into 1, ${before} into ${await directorySize(join(mirror, '.git'))} bytes`);
  } catch (error) {
    // The deploy does not depend on it: the mirror is whole whatever step failed, and the next deploy tries again.
    log.warn(`could not compact the git mirror ${mirror} (${messageOf(error)}); it is tried again after the next deploy`);
  }
}

/** Bytes under a directory (its files, not following links). */
export async function directorySize(directory: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(directory, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath ?? entry.path, entry.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
