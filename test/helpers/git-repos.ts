// Real git repositories for tests: a working repository that commits, and a bare "server"
// repository it pushes to (with uploadpack.allowFilter, as hosted servers have it).
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile, chmod, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const identity = ['-c', 'user.email=test@example.invalid', '-c', 'user.name=Test'];

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', [...identity, ...args], { cwd, maxBuffer: 64 << 20 });
  return stdout.trim();
}

export interface TestRepository {
  /** The bare repository that servers serve. */
  bare: string;
  work: string;
  /** Writes files (content, or { mode } / { symlink }) and commits; returns the commit id. */
  commit(files: Record<string, string | { content: string; mode: number } | { symlink: string } | null>, message?: string): Promise<string>;
  push(force?: boolean): Promise<void>;
  tag(name: string, options?: { annotated?: boolean; commit?: string }): Promise<void>;
  checkoutBranch(name: string, create?: boolean): Promise<void>;
  resetHard(commit: string): Promise<void>;
}

export async function createRepository(root: string, name = 'app'): Promise<TestRepository> {
  const bare = join(root, 'srv', `${name}.git`);
  const work = join(root, `${name}-work`);
  await mkdir(bare, { recursive: true });
  await git(bare, 'init', '-q', '--bare', '-b', 'main');
  await git(bare, 'config', 'uploadpack.allowFilter', 'true');
  await git(bare, 'config', 'uploadpack.allowAnySHA1InWant', 'true');
  await git(bare, 'config', 'http.receivepack', 'false');
  await git(root, 'init', '-q', '-b', 'main', work);
  await git(work, 'remote', 'add', 'origin', bare);
  let branch = 'main';
  const repository: TestRepository = {
    bare,
    work,
    async commit(files, message = 'change') {
      for (const [path, spec] of Object.entries(files)) {
        const target = join(work, path);
        await rm(target, { force: true, recursive: true });
        if (spec === null) continue;
        await mkdir(dirname(target), { recursive: true });
        if (typeof spec === 'string') await writeFile(target, spec);
        else if ('symlink' in spec) await symlink(spec.symlink, target);
        else {
          await writeFile(target, spec.content);
          await chmod(target, spec.mode);
        }
      }
      await git(work, 'add', '-A');
      await git(work, 'commit', '-q', '--allow-empty', '-m', message);
      await repository.push();
      return git(work, 'rev-parse', 'HEAD');
    },
    async push(force = false) {
      await git(work, 'push', '-q', ...(force ? ['--force'] : []), 'origin', `${branch}:${branch}`);
    },
    async tag(name, options = {}) {
      const target = options.commit ?? 'HEAD';
      if (options.annotated) await git(work, 'tag', '-a', '-m', `tag ${name}`, name, target);
      else await git(work, 'tag', name, target);
      await git(work, 'push', '-q', 'origin', `refs/tags/${name}`);
    },
    async checkoutBranch(name, create = false) {
      await git(work, 'checkout', '-q', ...(create ? ['-b'] : []), name);
      branch = name;
    },
    async resetHard(commit) {
      await git(work, 'reset', '-q', '--hard', commit);
    },
  };
  return repository;
}
