// The remote, parsed once where it enters (the settings) into what its fetcher needs: which kind
// it is, decided by its form alone (SPEC.md, "Remotes"), its parts, and a display form without
// credentials for logs, messages and the state file. Credentials found here are registered as
// secrets at once, so no later message can show them.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { usageError } from '../base/errors.js';
import { parseGitRemote, type GitRemote } from './git-url.js';
import { redact, registerSecret } from '../base/redact.js';
import { acceptedRemoteForms } from './remote-forms.js';

export interface Credentials {
  user: string;
  password: string;
}

export interface GitRepositoryRemote extends GitRemote {
  kind: 'git';
  display: string;
}

export interface HttpZipRemote {
  kind: 'http-zip';
  display: string;
  /** The URL to request: credentials and fragment removed. */
  url: string;
  /** user:password that were in the URL, sent as Basic authorization. */
  credentials: Credentials | undefined;
}

export interface S3ZipRemote {
  kind: 's3-zip';
  display: string;
  bucket: string;
  key: string;
}

export interface LocalZipRemote {
  kind: 'local-zip';
  display: string;
  /** Absolute path of the archive. */
  path: string;
}

/** The remotes of a group's apps, deployed as one release (the members are in Settings.groupMembers). */
export interface GroupRemote {
  kind: 'group';
  display: string;
}

export type Remote = GitRepositoryRemote | HttpZipRemote | S3ZipRemote | LocalZipRemote | GroupRemote;
export type RemoteKind = Remote['kind'];

const scpLikeGit = /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!\/\/)/;
const gitSchemes = /^(git\+ssh|git\+https|git\+http|git\+file|ssh|git):\/\//i;
// A path segment that ends in .git: "/app.git", "/app.git/sub", "/app.git#main".
const gitSegment = /\.git(?=$|[/#])/;

function classifyRemote(text: string): Exclude<RemoteKind, 'group'> {
  if (/^s3:\/\//i.test(text)) return 's3-zip';
  if (gitSchemes.test(text) || scpLikeGit.test(text)) return 'git';
  if (/^https?:\/\//i.test(text)) {
    const withoutQuery = text.replace(/[?].*$/, '');
    return gitSegment.test(new URL(withoutQuery.replace(/#.*$/, '')).pathname) ? 'git' : 'http-zip';
  }
  if (/^file:\/\//i.test(text) || text.startsWith('/') || text.startsWith('./') || text.startsWith('../')) {
    return /\.zip$/i.test(text.replace(/#.*$/, '')) ? 'local-zip' : 'git';
  }
  throw usageError(
    `the remote "${redact(text)}" fits none of the accepted forms`,
    `use one of: ${acceptedRemoteForms.join('; ')}`,
  );
}

/** Parses a remote as the operator wrote it; a usage error names what is wrong with it. */
export function parseRemote(text: string, cwd = process.cwd()): Remote {
  const kind = classifyRemote(text.trim());
  switch (kind) {
    case 'git': {
      const git = parseGitRemote(text.trim());
      registerSecret(git.credentials?.password);
      return { kind, display: redact(text), ...git };
    }
    case 'http-zip':
      return parseHttpZipRemote(text);
    case 's3-zip': {
      const match = /^s3:\/\/([^/]+)\/(.+)$/i.exec(text.trim());
      if (!match) throw usageError(`the remote "${redact(text)}" is not of the form s3://bucket/path/app.zip`);
      return { kind, display: redact(text), bucket: match[1] as string, key: decodeURIComponent(match[2] as string) };
    }
    case 'local-zip': {
      const withoutFragment = text.trim().replace(/#.*$/, '');
      const path = /^file:\/\//i.test(withoutFragment) ? fileURLToPath(withoutFragment) : resolve(cwd, withoutFragment);
      return { kind, display: redact(text), path };
    }
  }
}

/** user:password move out of the URL (undici refuses them there) into credentials. */
function parseHttpZipRemote(text: string): HttpZipRemote {
  const url = new URL(text.trim());
  let credentials: Credentials | undefined;
  if (url.username || url.password) {
    credentials = { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
    registerSecret(credentials.password);
    url.username = '';
    url.password = '';
  }
  url.hash = '';
  return { kind: 'http-zip', display: redact(text), url: url.toString(), credentials };
}
