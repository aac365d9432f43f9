// A git remote as SPEC.md writes it: the repository ends at the first path segment ending in
// ".git"; what follows up to "#" is a subdirectory; what follows "#" is a branch, tag or commit.
// The original tool kept the "#" in the path and so never deployed a "#branch" URL.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { usageError } from '../base/errors.js';
import { acceptedRemoteForms } from './remote-forms.js';
import { redact } from '../base/redact.js';

export interface GitRemote {
  /** What git is given: the repository URL or path, credentials removed. */
  repository: string;
  /** A user name and password or token that were in the URL, to reach git through the environment. */
  credentials: { user: string; password: string } | undefined;
  /** Relative path inside the repository; '' for the whole tree. */
  subdirectory: string;
  /** Branch, tag or full commit id; undefined for the remote's default branch. */
  ref: string | undefined;
}

const scpLike = /^([A-Za-z0-9._-]+@[A-Za-z0-9.-]+):(.*)$/;
const schemeUrl = /^([a-z][a-z0-9+.-]*):\/\/([^/]*)(\/.*)?$/i;

/** Splits a path at the end of its first segment that ends in ".git". */
function splitRepositoryPath(path: string): { repositoryPath: string; subdirectory: string } {
  const match = /\.git(?=\/|$)/.exec(path);
  if (!match) return { repositoryPath: path, subdirectory: '' };
  const end = match.index + '.git'.length;
  return { repositoryPath: path.slice(0, end), subdirectory: path.slice(end) };
}

function normaliseSubdirectory(subdirectory: string, remote: string): string {
  const parts = subdirectory.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw usageError(`the git remote "${redact(remote)}" has ".." in its subdirectory`);
  return parts.join('/');
}

export function parseGitRemote(remote: string): GitRemote {
  const hash = remote.indexOf('#');
  const beforeRef = hash === -1 ? remote : remote.slice(0, hash);
  const ref = hash === -1 ? undefined : decodeURIComponent(remote.slice(hash + 1)) || undefined;
  if (ref !== undefined && (ref.startsWith('-') || /[\s~^:?*[\\]|\.\.|@\{/.test(ref))) {
    throw usageError(`the git ref "${ref}" in "${redact(remote)}" is not a valid branch, tag or commit name`);
  }

  const scp = scpLike.exec(beforeRef);
  if (scp && !beforeRef.includes('://')) {
    const { repositoryPath, subdirectory } = splitRepositoryPath(scp[2] ?? '');
    return { repository: `${scp[1]}:${repositoryPath}`, credentials: undefined, subdirectory: normaliseSubdirectory(subdirectory, remote), ref };
  }

  const url = schemeUrl.exec(beforeRef);
  if (url) {
    const scheme = (url[1] ?? '').toLowerCase().replace(/^git\+/, '');
    if (scheme === 'file') {
      const { repositoryPath, subdirectory } = splitRepositoryPath(fileURLToPath(`file://${url[2]}${url[3] ?? ''}`));
      return { repository: repositoryPath, credentials: undefined, subdirectory: normaliseSubdirectory(subdirectory, remote), ref };
    }
    if (!['ssh', 'git', 'http', 'https'].includes(scheme)) {
      throw usageError(`the git remote "${redact(remote)}" uses an unknown scheme "${url[1]}"`, `use one of: ${acceptedRemoteForms.join('; ')}`);
    }
    let authority = url[2] ?? '';
    let credentials: GitRemote['credentials'];
    const at = authority.lastIndexOf('@');
    if ((scheme === 'http' || scheme === 'https') && at !== -1) {
      const userInfo = authority.slice(0, at);
      const colon = userInfo.indexOf(':');
      credentials = colon === -1
        ? { user: decodeURIComponent(userInfo), password: '' }
        : { user: decodeURIComponent(userInfo.slice(0, colon)), password: decodeURIComponent(userInfo.slice(colon + 1)) };
      authority = authority.slice(at + 1);
    }
    const { repositoryPath, subdirectory } = splitRepositoryPath(url[3] ?? '/');
    return {
      repository: `${scheme}://${authority}${repositoryPath}`,
      credentials,
      subdirectory: normaliseSubdirectory(subdirectory, remote),
      ref,
    };
  }

  if (beforeRef.startsWith('/') || beforeRef.startsWith('.')) {
    const { repositoryPath, subdirectory } = splitRepositoryPath(beforeRef);
    return { repository: resolve(repositoryPath), credentials: undefined, subdirectory: normaliseSubdirectory(subdirectory, remote), ref };
  }
  throw usageError(`the remote "${redact(remote)}" is not a git URL`, `use one of: ${acceptedRemoteForms.join('; ')}`);
}

/** A full commit id pins the release; anything else is a branch or tag looked up on the remote. */
export const isCommitId = (ref: string | undefined): ref is string => ref !== undefined && /^[0-9a-f]{40}([0-9a-f]{24})?$/i.test(ref);
