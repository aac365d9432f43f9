// Git remotes: a branch, tag or commit, the whole tree or one subdirectory of it.
//   check: `git ls-remote` names the remote commit without transferring a pack; an unchanged
//          commit ends the check there (a first deploy of a branch fetches it at once: there is
//          nothing to compare with). A new commit is fetched shallow and without blobs
//          (--depth 1 --filter=blob:none) into one mirror per repository in the cache; with a
//          subdirectory its tree id decides, so a commit that does not touch it deploys nothing.
//   stage: a sparse checkout of that subdirectory (git fetches the blobs it needs in one batch),
//          copied into the release without .git.
// A mirror left broken by a crash (a *.lock file, an unreadable repository) is rebuilt, never trusted.
// Every git command on the mirror names its repository (--git-dir, --work-tree) and may not look
// for one above the cache: a broken mirror must never make git fall back to a repository that
// happens to enclose the cache (see mirror-git.ts).
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gitMirrorPath } from '../core/cache-layout.js';
import { copyTree } from '../base/copy-tree.js';
import { fetchError, messageOf } from '../base/errors.js';
import { compactMirror } from './git/compact-mirror.js';
import { confinedGitEnvironment, mirrorRunner, type MirrorGit } from './git/mirror-git.js';
import { GitFailure, gitEnvironment, runGit, type GitRunContext } from './git/run-git.js';
import { isCommitId, type GitRemote } from '../core/git-url.js';
import { ensureOwnDirectory } from '../base/own-directory.js';
import type { GitRepositoryRemote } from '../core/remote.js';
import { redact } from '../base/redact.js';
import { describeSignatureFailure, isShallow, verificationEnvironment } from '../verify/git-trust.js';
import { VerificationError } from '../verify/refusal.js';
import type { CheckContext, Fetcher, PendingRevision, RemoteState } from '../core/remote-contract.js';
import type { GitSettings } from '../core/settings.js';
import { counted } from '../base/counted.js';

const targetRef = 'refs/repo-deploy/target';

interface RemoteCommit {
  commit: string;
  /** The ref that names it on the remote, e.g. refs/heads/main; undefined for a pinned commit id. */
  remoteRef: string | undefined;
}

/**
 * Finds the commit a ref names on the remote, without fetching: branches first, then tags.
 * `lastRef` is the ref it resolved to at the last deploy from this remote.
 */
async function lookUpRemoteCommit(remote: GitRemote, run: GitRunner, lastRef: string | undefined): Promise<RemoteCommit> {
  const ref: string | undefined = remote.ref;
  if (isCommitId(remote.ref)) return { commit: remote.ref.toLowerCase(), remoteRef: undefined };
  const listed = async (options: string[], candidates: string[]) => {
    // ls-remote matches its patterns on the client; only --heads and --tags make the server send
    // less (protocol v2's ref prefixes). Without them a server with 10,000 refs/pull/* sends all.
    // A tag's peeled entry (^{}) is listed with it; ^{} is no pattern of its own.
    const patterns = candidates.filter((name) => !name.endsWith('^{}'));
    const refs = new Map<string, string>();
    for (const line of await run(['ls-remote', ...options, '--', remote.repository, ...patterns], 'ls-remote')) {
      const [commit, name] = line.split('\t');
      if (commit && name) refs.set(name, commit);
    }
    // In order of preference; an annotated tag's peeled commit (^{}) before the tag object itself.
    for (const name of candidates) {
      const commit = refs.get(name);
      if (commit) return { commit, remoteRef: name.replace(/\^\{\}$/, '') };
    }
    return undefined;
  };
  const tag = (name: string) => [`refs/tags/${name}^{}`, `refs/tags/${name}`];
  // Asking for branches alone is what `git ls-remote --heads URL main` sends: --tags too made the
  // server list every tag (6 KB for 100 tags, against 219 bytes). A ref that was a tag at the
  // last deploy is asked for both at once, so that a branch of the same name still wins.
  const branchOrTag = async (name: string) =>
    lastRef?.startsWith('refs/tags/')
      ? listed(['--heads', '--tags'], [`refs/heads/${name}`, ...tag(name)])
      : ((await listed(['--heads'], [`refs/heads/${name}`])) ?? (await listed(['--tags'], tag(name))));
  const found =
    ref === undefined || ref === 'HEAD'
      ? await listed([], ['HEAD'])
      : ((await branchOrTag(ref)) ??
        // A full ref name outside branches and tags (refs/pull/7/head): the whole list, as it must.
        (ref.startsWith('refs/') ? await listed([], [ref]) : undefined));
  if (found) return found;
  throw fetchError(
    remote.ref === undefined
      ? `the git repository ${redact(remote.repository)} has no default branch (HEAD)`
      : `the git repository ${redact(remote.repository)} has no branch or tag "${remote.ref}"`,
    { hint: 'check the part after # in the remote; for a commit, give its full 40-character id' },
  );
}

/** A branch or tag name; undefined for a commit id, HEAD or a full ref name (which are looked up as they are). */
const plainName = (ref: string | undefined): string | undefined => (ref === undefined || ref === 'HEAD' || ref.startsWith('refs/') || isCommitId(ref) ? undefined : ref);

type GitRunner = (args: string[], operation: string, cwd?: string) => Promise<string[]>;

/** One mirror per repository (not per subdirectory or ref), named by the credential-free URL. */
async function findLockFiles(directory: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (path: string, depth: number) => {
    let entries;
    try {
      entries = await readdir(path, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.isDirectory() && depth < 3 && entry.name !== 'objects') await walk(join(path, entry.name), depth + 1);
      else if (entry.name.endsWith('.lock')) found.push(join(path, entry.name));
    }
  };
  await walk(join(directory, '.git'), 0);
  return found;
}

/**
 * A usable mirror, created or rebuilt when what is there cannot be trusted; returns whether it
 * was reused. Its remote "origin" holds the credential-free URL: a partial clone fetches missing
 * blobs later from a named promisor remote (which `fetch --filter` records itself); credentials
 * still come only from the environment.
 */
async function prepareMirror(path: string, remote: GitRemote, context: CheckContext<GitSettings>, git: MirrorGit, run: GitRunner): Promise<boolean> {
  const exists = await stat(join(path, '.git')).then(() => true, () => false);
  if (exists) {
    // We hold the agent's lock: no git of ours is running, so a lock file is a crash leftover.
    const locks = await findLockFiles(path);
    let broken = locks.length > 0 ? `left-over lock files (${locks.map((lock) => lock.slice(path.length + 1)).join(', ')})` : '';
    if (!broken) {
      try {
        await git(['rev-parse', '--git-dir'], 'sanity check');
      } catch (error) {
        // git's own words only: the whole failure message (operation, remote, hint) nested in this one read as a second error.
        broken = `is not a usable repository (${error instanceof GitFailure ? error.gitSaid : messageOf(error).split('\n')[0]})`;
      }
    }
    if (!broken) {
      await git(['remote', 'set-url', 'origin', remote.repository], 'remote set-url');
      return true;
    }
    // Any git command can leave this (init, fetch, checkout), cut short by a crash, a stop or a full disk.
    context.log.warn(`the git mirror ${path} ${locks.length > 0 ? 'has ' : ''}${broken}, left by an interrupted git command (a crash, a stop or a full disk); rebuilding it`);
    await rm(path, { recursive: true, force: true });
  }
  await mkdir(path, { recursive: true });
  // `init` is given the path, so it never looks for a repository around it.
  await run(['init', '--quiet', path], 'init', dirname(path));
  await git(['remote', 'add', 'origin', remote.repository], 'remote add');
  return false;
}

/** A commit's subject and author are cut to this many characters in the history and notifications. */
const maxCommitWords = 200;

export const gitFetcher = (remote: GitRepositoryRemote): Fetcher<GitSettings> => ({
  async check(context) {
    const displayRemote = remote.display;
    const mirror = gitMirrorPath(context.cache, remote.repository);
    const env = confinedGitEnvironment(gitEnvironment(remote, context.settings, context.env), dirname(mirror));
    const runContext: GitRunContext = { settings: context.settings, env, log: context.log, signal: context.signal, displayRemote };
    const run: GitRunner = (args, operation, cwd) => runGit(args, { ...runContext, operation, cwd: cwd ?? dirname(mirror) });
    const git = mirrorRunner(mirror, runContext);
    await ensureOwnDirectory(dirname(mirror));

    const deployedState = context.deployed?.remoteState ?? {};
    const lastRef = context.deployed?.sameRemote ? deployedState.ref : undefined;
    // A first deploy from this remote has no commit to compare with: a branch is fetched at once,
    // without asking the server for its commit first (ls-remote: a connection and 60-70 ms of a
    // 1.1 s first deploy). Only a name the server has no branch of is then looked up (a tag).
    const firstBranch = context.deployed?.sameRemote ? undefined : plainName(remote.ref);
    const looked = firstBranch === undefined ? await lookUpRemoteCommit(remote, run, lastRef) : undefined;
    if (looked && context.deployed?.sameRemote && deployedState.commit === looked.commit) {
      context.log.debug(`${displayRemote}: still at ${looked.commit.slice(0, 12)}`);
      return { changed: false };
    }

    const reused = await prepareMirror(mirror, remote, context, git, run);
    // refuse-rewrites needs the history between the live commit and the new one.
    const history = context.settings.refuseRewrites ? ((await isShallow(mirror)) ? ['--unshallow'] : []) : ['--depth', '1'];
    const fetchTarget = (ref: string) => git(['fetch', '--quiet', '--no-tags', ...history, '--filter=blob:none', 'origin', `+${ref}:${targetRef}`], 'fetch');
    /**
     * A first deploy's branch, fetched; undefined when the server has no branch of that name (a
     * server that prints those words itself only gets the listing that follows, as before).
     */
    const fetchedBranch = async (name: string): Promise<string | undefined> => {
      const branch = `refs/heads/${name}`;
      try {
        await fetchTarget(branch);
        return branch;
      } catch (error) {
        if (error instanceof GitFailure && /couldn't find remote ref/i.test(error.gitSaid)) return undefined;
        throw error;
      }
    };
    let remoteRef = firstBranch === undefined ? undefined : await fetchedBranch(firstBranch);
    let source = remoteRef;
    if (source === undefined) {
      const found = looked ?? (await lookUpRemoteCommit(remote, run, lastRef));
      remoteRef = found.remoteRef;
      source = found.remoteRef ?? found.commit;
      await fetchTarget(source);
    }
    const fetchSource: string = source;
    // One git run for the commit (a tag peeled), its root tree, and its author and subject for the
    // history (the pusher's words: kept short, printed only escaped).
    const [commit = '', rootTree = '', author = '', subject = ''] = (await gitLine(git, ['log', '-1', '--no-show-signature', '--format=%H%x00%T%x00%an%x00%s', targetRef], 'log')).split('\0');
    // The content's identity is the tree deployed (the subdirectory's, or the root's): equal
    // trees are equal files, whichever commit, ref or URL names them.
    const tree = remote.subdirectory ? await subdirectoryTree(git, commit, remote.subdirectory, displayRemote) : rootTree;

    const remoteState: RemoteState = { commit, tree, ...(remoteRef ? { ref: remoteRef } : {}) };
    if (context.deployed && deployedState.tree === tree) {
      context.log.info(`${displayRemote}: commit ${commit.slice(0, 12)} does not change ${remote.subdirectory || 'the tree'}; nothing to deploy`);
      return { changed: false, remoteState };
    }

    await verifyTrust(context, displayRemote, git, commit, remoteState);

    const pending: PendingRevision = {
      changed: true,
      revision: commit,
      description: `commit ${commit.slice(0, 12)}${remote.subdirectory ? ` (${remote.subdirectory} tree ${tree.slice(0, 12)})` : ''} of ${displayRemote}`,
      remoteState,
      commit: { subject: subject.slice(0, maxCommitWords), author: author.slice(0, maxCommitWords) },
      async stage(directory) {
        await materialise(git, remote, commit, context, reused);
        const summary = await copyTree(remote.subdirectory ? join(mirror, remote.subdirectory) : mirror, directory, `commit ${commit.slice(0, 12)} of ${displayRemote}`);
        context.log.info(`checked out ${counted(summary.files, 'file')} and ${counted(summary.symlinks, 'symlink')}`);
        await compactMirror(mirror, git, commit, context.log);
      },
      async dispose() {},
      async commitsSince(from, limit) {
        // Reachable from the new commit through the mirror's history (a shallow mirror cuts it).
        const reachable = () => git(['merge-base', '--is-ancestor', from, commit], 'merge-base').then(() => true, () => false);
        // The mirror is shallow (depth 1) unless refuse-rewrites: deepened for the plan, commits and trees only.
        if (!(await reachable())) await git(['fetch', '--quiet', '--no-tags', '--deepen=500', '--filter=blob:none', 'origin', `+${fetchSource}:${targetRef}`], 'fetch').catch(() => undefined);
        if (!(await reachable())) return undefined;
        return git(['log', `--max-count=${limit}`, '--format=%h %s (%an)', `${from}..${commit}`, ...(remote.subdirectory ? ['--', remote.subdirectory] : [])], 'log');
      },
    };
    return pending;
  },
});

/** Signatures (allowed-signers, gpg-keyring) and ancestry (refuse-rewrites) of a new commit. */
async function verifyTrust(context: CheckContext<GitSettings>, display: string, git: MirrorGit, commit: string, remoteState: RemoteState): Promise<void> {
  const { settings } = context;
  const refuse = (reason: string) => new VerificationError(`refused commit ${commit.slice(0, 12)} of ${display}: ${reason}`, commit, remoteState);
  if (settings.allowedSigners || settings.gpgKeyring) {
    const isTag = (await gitLine(git, ['cat-file', '-t', targetRef], 'cat-file')) === 'tag';
    const extraEnv = await verificationEnvironment(settings, context.env);
    const object = isTag ? targetRef : commit;
    // An unsigned object makes verify-commit fail without a word: say so plainly.
    const signed = /^gpgsig |-----BEGIN (PGP|SSH) SIGNATURE-----/m.test((await git(['cat-file', '-p', object], 'cat-file')).join('\n'));
    try {
      if (!signed) throw new Error('no signature found');
      await git(isTag ? ['verify-tag', '--raw', targetRef] : ['verify-commit', '--raw', commit], 'signature check', extraEnv);
    } catch (error) {
      throw refuse(`${isTag ? 'the tag' : 'the commit'}: ${describeSignatureFailure(messageOf(error))}`);
    }
    context.log.info(`${isTag ? 'tag' : 'commit'} ${commit.slice(0, 12)} carries a good signature by an allowed signer`, { revision: commit });
  }
  const liveCommit = context.live?.remoteState.commit;
  if (settings.refuseRewrites && liveCommit && liveCommit !== commit) {
    try {
      await git(['merge-base', '--is-ancestor', liveCommit, commit], 'ancestry check');
    } catch {
      throw refuse(`it does not descend from the live commit ${liveCommit.slice(0, 12)} (refuse-rewrites is set)`);
    }
  }
}

/** Checks out only what the release needs; a partial clone fetches the missing blobs in one batch. */
async function materialise(git: MirrorGit, remote: GitRemote, commit: string, context: CheckContext<GitSettings>, reused: boolean): Promise<void> {
  if (remote.subdirectory) await git(['sparse-checkout', 'set', '--cone', '--', remote.subdirectory], 'sparse-checkout');
  else await git(['sparse-checkout', 'disable'], 'sparse-checkout');
  await git(['checkout', '--quiet', '--force', '--detach', commit], 'checkout');
  // Only a reused mirror can hold files no commit has (a crash, a changed sparse set).
  if (reused) await git(['clean', '-ffdxq'], 'clean');
  if (context.settings.gitSubmodules !== 'off') {
    const args = ['submodule', 'update', '--init', '--force', '--depth', '1'];
    if (context.settings.gitSubmodules === 'recursive') args.push('--recursive');
    args.push('--', remote.subdirectory || '.');
    await git(args, 'submodule update');
    // `clean` above does not enter submodules: a nested submodule removed upstream would stay.
    const foreach = ['submodule', 'foreach', '--quiet', ...(context.settings.gitSubmodules === 'recursive' ? ['--recursive'] : []), 'git clean -ffdxq'];
    await git(foreach, 'submodule clean');
  }
}

/** The tree a subdirectory of a commit is, in one git run: its entry in the commit's tree, with its type. */
async function subdirectoryTree(git: MirrorGit, commit: string, subdirectory: string, display: string): Promise<string> {
  // ls-tree takes its paths literally (the GIT_*_PATHSPECS that would change that are not passed on, mirror-git.ts).
  const entry = (await git(['ls-tree', '-z', commit, '--', subdirectory], 'ls-tree')).join('\n');
  const [, type, id] = /^\d+ (\w+) ([0-9a-f]+)\t/.exec(entry) ?? [];
  if (!type || !id) {
    throw fetchError(`the subdirectory "${subdirectory}" does not exist in commit ${commit.slice(0, 12)} of ${display}`, {
      hint: 'check the path between .git and # in the remote',
    });
  }
  if (type !== 'tree') throw fetchError(`"${subdirectory}" in ${display} is a file, not a directory`);
  return id;
}

/** The one line a git query prints. */
async function gitLine(git: MirrorGit, args: string[], operation: string): Promise<string> {
  return ((await git(args, operation))[0] ?? '').trim();
}
