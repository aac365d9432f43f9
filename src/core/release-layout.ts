// Where one app's releases live: the live path is a symlink to releases/<id> in the same parent
// directory. Here, below the settings, so that two apps sharing a releases/ can be refused when
// the settings are read; release/releases.ts does everything else with it.
import { dirname, join, resolve } from 'node:path';

export interface Layout {
  live: string;
  releasesDirectory: string;
}

export function layoutFor(livePath: string): Layout {
  const live = resolve(livePath);
  return { live, releasesDirectory: join(dirname(live), 'releases') };
}

export const releasePath = (layout: Layout, id: string) => join(layout.releasesDirectory, id);

