// The git mirror's size over many deploys (issue 22): a repository whose every commit changes a
// 1 MiB file, deployed by `repo-deploy -f` after each commit; the mirror is measured after the
// given deploys, with the releases directory (kept to keep-releases) beside it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { directorySize } from '../src/remotes/git/compact-mirror.js';
import { measure } from './measure.js';

const run = promisify(execFile);
const identity = ['-c', 'user.email=bench@example.invalid', '-c', 'user.name=Bench'];

export interface MirrorGrowth {
  /** Deploys done → bytes of the mirror's .git, and of the releases directory. */
  mirrorBytes: Record<number, number>;
  releasesBytes: Record<number, number>;
  packs: Record<number, number>;
  /** Deploys done → the wall time of that deploy. */
  seconds: Record<number, number>;
}

export async function measureMirrorGrowth(cli: string, root: string, agentArgs: (root: string, remote: string) => Promise<string[]>, samplePoints: number[]): Promise<MirrorGrowth> {
  const bare = join(root, 'srv', 'app.git');
  const work = join(root, 'work');
  await mkdir(bare, { recursive: true });
  await run('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  await run('git', ['-C', bare, 'config', 'uploadpack.allowFilter', 'true']);
  await run('git', ['init', '-q', '-b', 'main', work]);
  const args = await agentArgs(join(root, 'agent'), `${bare}#main`);
  const cache = args[args.indexOf('--cache') + 1] as string;
  const releases = join(root, 'agent', 'www', 'releases');
  const growth: MirrorGrowth = { mirrorBytes: {}, releasesBytes: {}, packs: {}, seconds: {} };
  const last = Math.max(...samplePoints);
  for (let deploy = 1; deploy <= last; deploy++) {
    await writeFile(join(work, 'index.html'), `deploy ${deploy}\n`);
    await writeFile(join(work, 'data.bin'), randomBytes(1024 * 1024));
    await run('git', ['-C', work, 'add', '-A']);
    await run('git', [...identity, '-C', work, 'commit', '-q', '-m', `deploy ${deploy}`]);
    await run('git', ['-C', work, 'push', '-q', bare, 'main']);
    const result = await measure(process.execPath, [cli, ...args]);
    if (samplePoints.includes(deploy)) {
      growth.seconds[deploy] = result.seconds;
      const [mirror] = await readdir(join(cache, 'git'));
      const gitDirectory = join(cache, 'git', mirror as string, '.git');
      growth.mirrorBytes[deploy] = await directorySize(gitDirectory);
      growth.releasesBytes[deploy] = await directorySize(releases);
      growth.packs[deploy] = (await readdir(join(gitDirectory, 'objects', 'pack'))).filter((name) => name.endsWith('.pack')).length;
    }
  }
  return growth;
}
