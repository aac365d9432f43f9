// Whether a symlink in a release stays inside it, judged as the kernel would follow it: every
// link met on the way is followed too. Judged by its own text alone, `d/c -> b/../../x` looks
// inside, but when `d/b -> ../..` it leaves the release. Used by zip extraction and by the git
// tree copy, before any link is created.

/** The release's symlinks: path relative to the release (no leading or trailing slash) -> target. */
export type LinkTargets = ReadonlyMap<string, string>;

// As Linux's MAXSYMLINKS: a longer chain (or a loop) is refused.
const maxHops = 40;

/** The path (as parts) a target leads to from `start`, or undefined when it leaves the root or loops. */
function follow(start: readonly string[], target: string, links: LinkTargets, hops: number): string[] | undefined {
  if (target === '' || target.startsWith('/') || target.includes('\0')) return undefined;
  const parts = [...start];
  for (const component of target.split('/')) {
    if (component === '' || component === '.') continue;
    if (component === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
      continue;
    }
    parts.push(component);
    const link = links.get(parts.join('/'));
    if (link === undefined) continue;
    if (hops >= maxHops) return undefined;
    parts.pop();
    const reached = follow(parts, link, links, hops + 1);
    if (reached === undefined) return undefined;
    parts.splice(0, parts.length, ...reached);
  }
  return parts;
}

/** Whether the link at `linkPath` (a key of `links`) leads somewhere inside the release. */
export function linkStaysInside(linkPath: string, links: LinkTargets): boolean {
  const target = links.get(linkPath);
  if (target === undefined) return false;
  return follow(linkPath.split('/').slice(0, -1), target, links, 0) !== undefined;
}
