// The layout on disk: the live path is a relative symlink to releases/<id> in the same parent
// directory. A release is staged under a hidden name and renamed when complete; the live link is
// replaced by creating a new link beside it and renaming it over the old one, so a reader sees the
// whole old tree or the whole new tree, never a mix and never nothing.
import { lstat, mkdir, readdir, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { layoutFor, releasePath, type Layout } from '../core/release-layout.js';
import { syncDirectory } from '../base/atomic-file.js';
import { usageError, systemErrorCode } from '../base/errors.js';
import { ensureOwnDirectory } from '../base/own-directory.js';

export { layoutFor, releasePath, type Layout } from '../core/release-layout.js';

const stagingPrefix = '.staging-';
const swapLinkName = (layout: Layout) => `.${basename(layout.live)}.swap-${process.pid}`;
const isSwapLinkOf = (layout: Layout, name: string) => name.startsWith(`.${basename(layout.live)}.swap-`);

/**
 * The release the live path points at, or undefined when there is no live path yet. Refuses a
 * live path the agent did not create: it never replaces a tree it does not own.
 */
export async function readLiveRelease(layout: Layout): Promise<string | undefined> {
  let info;
  try {
    info = await lstat(layout.live);
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  if (!info.isSymbolicLink()) {
    throw usageError(
      `the live path ${layout.live} is a real ${info.isDirectory() ? 'directory' : 'file'}, not a link made by repo-deploy`,
      `move it away (mv ${layout.live} ${layout.live}.orig) and run again, or run "repo-deploy adopt" to make it the first release (a failed first deploy then reverts to it); repo-deploy never deletes a tree it did not create`,
    );
  }
  const target = resolve(dirname(layout.live), await readlink(layout.live));
  if (dirname(target) !== layout.releasesDirectory) {
    throw usageError(
      `the live path ${layout.live} links to ${target}, outside ${layout.releasesDirectory}`,
      `remove the link (rm ${layout.live}) and run again`,
    );
  }
  return basename(target);
}

/** Whether a release the live link names is there: its directory exists (not removed by hand). */
export async function releaseExists(layout: Layout, id: string): Promise<boolean> {
  const info = await lstat(releasePath(layout, id)).catch(() => undefined);
  return info?.isDirectory() === true;
}

/**
 * A new release id: sortable by time, with the revision's start to recognise it. Unique against
 * the disk as well as `known` (the state's releases): with the state lost, the same revision
 * deployed again within the second would otherwise get the live release's name.
 */
export async function newReleaseId(layout: Layout, revision: string, now: Date, known: Iterable<string>): Promise<string> {
  const names = await readdir(layout.releasesDirectory).catch(() => [] as string[]);
  const taken = new Set([...known, ...names, ...names.filter((name) => name.startsWith(stagingPrefix)).map((name) => name.slice(stagingPrefix.length))]);
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const short = revision.replace(/^[a-z0-9]+:/, '').replace(/[^A-Za-z0-9]/g, '').slice(0, 12);
  let id = `${stamp}-${short}`;
  for (let suffix = 2; taken.has(id) || taken.has(`.manifest-${id}.json`); suffix++) id = `${stamp}-${short}-${suffix}`;
  return id;
}

/** Fills a hidden staging directory and gives it its final name only when complete. */
export async function stageRelease(layout: Layout, id: string, fill: (directory: string) => Promise<void>): Promise<string> {
  await ensureOwnDirectory(layout.releasesDirectory);
  const staging = join(layout.releasesDirectory, `${stagingPrefix}${id}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { mode: 0o755 });
  try {
    await fill(staging);
    const final = releasePath(layout, id);
    await rename(staging, final);
    await syncDirectory(layout.releasesDirectory);
    return final;
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Points the live path at a release atomically, or removes it (undoing a first deploy).
 * `beforeRename` runs between creating the new link and renaming it (a test pause point).
 */
export async function pointLiveAt(layout: Layout, id: string | undefined, beforeRename?: () => Promise<void>): Promise<void> {
  const parent = dirname(layout.live);
  if (id === undefined) {
    await unlink(layout.live).catch((error) => {
      if (systemErrorCode(error) !== 'ENOENT') throw error;
    });
  } else {
    const swapLink = join(parent, swapLinkName(layout));
    await rm(swapLink, { force: true });
    await symlink(relative(parent, releasePath(layout, id)), swapLink);
    await beforeRename?.();
    await rename(swapLink, layout.live);
  }
  await syncDirectory(parent);
}

/**
 * Removes a release and its manifest, never the one the live link points at: every failure path
 * and recovery calls this, and none of them may take the live tree away (a name that clashed with
 * the live release's once did).
 */
export async function removeRelease(layout: Layout, id: string): Promise<void> {
  if ((await readLiveRelease(layout).catch(() => undefined)) === id) return;
  await rm(releasePath(layout, id), { recursive: true, force: true });
  await rm(join(layout.releasesDirectory, `.manifest-${id}.json`), { force: true });
}

/** Removes what an interrupted attempt left: staging directories and swap links. */
export async function removeLeftovers(layout: Layout): Promise<string[]> {
  const removed: string[] = [];
  const releaseNames = await readdir(layout.releasesDirectory).catch(() => [] as string[]);
  for (const name of releaseNames.filter((entry) => entry.startsWith(stagingPrefix))) {
    await rm(join(layout.releasesDirectory, name), { recursive: true, force: true });
    removed.push(join(layout.releasesDirectory, name));
  }
  const parent = dirname(layout.live);
  const parentNames = await readdir(parent).catch(() => [] as string[]);
  for (const name of parentNames.filter((entry) => isSwapLinkOf(layout, entry))) {
    await rm(join(parent, name), { force: true });
    removed.push(join(parent, name));
  }
  return removed;
}

/** A name newReleaseId makes: `20261203T080000Z-<up to 12 of the revision>[-N]`. */
const agentReleaseName = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z-[A-Za-z0-9]{1,12}(?:-\d+)?$/;

/** When a release of the agent's own naming was made (from its name), or undefined for any other name. */
export function releaseNameTime(name: string): Date | undefined {
  const parts = agentReleaseName.exec(name);
  return parts ? new Date(`${parts[1]}-${parts[2]}-${parts[3]}T${parts[4]}:${parts[5]}:${parts[6]}Z`) : undefined;
}

/** Release directories on disk, staging ones excluded. */
export async function listReleaseDirectories(layout: Layout): Promise<string[]> {
  const names = await readdir(layout.releasesDirectory).catch(() => [] as string[]);
  return names.filter((name) => !name.startsWith('.')).sort();
}
