// Git confined to one mirror. Without an explicit repository, git looks for one in the working
// directory and then in every directory above it: a mirror whose HEAD is broken would then be
// taken for a plain folder of whatever repository encloses the cache, and `remote set-url`,
// `fetch` and `checkout --force` would rewrite that repository. So every command on a mirror
// names its repository and work tree, and GIT_CEILING_DIRECTORIES stops any search at the cache.
import { join } from 'node:path';
import { runGit, type GitRunContext } from './run-git.js';

/** Runs one git command on the mirror; resolves with its stdout lines. */
export type MirrorGit = (args: string[], operation: string, extraEnv?: NodeJS.ProcessEnv) => Promise<string[]>;

/** An environment in which git never searches for a repository above `ceiling`, nor takes one from the caller. */
export function confinedGitEnvironment(env: NodeJS.ProcessEnv, ceiling: string): NodeJS.ProcessEnv {
  const confined: NodeJS.ProcessEnv = { ...env, GIT_CEILING_DIRECTORIES: ceiling };
  // Inherited from a hook or a shell, these would point git at another repository, and the
  // pathspec ones would make the subdirectory a pattern (or make ls-tree refuse it).
  const repositoryVariables = ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_COMMON_DIR', 'GIT_NAMESPACE'];
  const pathspecVariables = ['GIT_GLOB_PATHSPECS', 'GIT_NOGLOB_PATHSPECS', 'GIT_ICASE_PATHSPECS', 'GIT_LITERAL_PATHSPECS'];
  for (const name of [...repositoryVariables, ...pathspecVariables]) {
    delete confined[name];
  }
  return confined;
}

export function mirrorRunner(mirror: string, context: GitRunContext): MirrorGit {
  const location = ['--git-dir', join(mirror, '.git'), '--work-tree', mirror];
  return (args, operation, extraEnv) =>
    runGit([...location, ...args], { ...context, env: extraEnv ? { ...context.env, ...extraEnv } : context.env, operation, cwd: mirror });
}
