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

/** An artifact in an OCI registry, by tag or by manifest digest. */
export interface OciRemote {
  kind: 'oci';
  display: string;
  /** host[:port] */
  registry: string;
  repository: string;
  /** At most one of tag and digest; neither when oci-semver chooses the tag. */
  tag?: string;
  digest?: string;
}

/** The remotes of a group's apps, deployed as one release (the members are in Settings.groupMembers). */
export interface GroupRemote {
  kind: 'group';
  display: string;
}

export type Remote = GitRepositoryRemote | HttpZipRemote | S3ZipRemote | LocalZipRemote | OciRemote | GroupRemote;
export type RemoteKind = Remote['kind'];

const scpLikeGit = /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!\/\/)/;
const gitSchemes = /^(git\+ssh|git\+https|git\+http|git\+file|ssh|git):\/\//i;
// A path segment that ends in .git: "/app.git", "/app.git/sub", "/app.git#main".
const gitSegment = /\.git(?=$|[/#])/;

function classifyRemote(text: string): Exclude<RemoteKind, 'group'> {
  if (/^s3:\/\//i.test(text)) return 's3-zip';
  if (/^oci:\/\//i.test(text)) return 'oci';
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
    case 'oci':
      return parseOciRemote(text.trim());
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

// The distribution spec's grammar: path components of lower-case letters and digits joined by
// separators; tags of at most 128 characters; digests (sha256 only, here) in hex.
const repositoryPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const digestPattern = /^sha256:[0-9a-f]{64}$/;
const registryPattern = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** oci://HOST[:PORT]/REPO:TAG, oci://HOST[:PORT]/REPO@sha256:DIGEST, or oci://HOST[:PORT]/REPO with oci-semver */
function parseOciRemote(text: string): OciRemote {
  const form = 'oci://HOST[:PORT]/REPOSITORY:TAG or oci://HOST[:PORT]/REPOSITORY@sha256:DIGEST';
  const rest = text.replace(/^oci:\/\//i, '');
  const slash = rest.indexOf('/');
  const registry = slash < 0 ? rest : rest.slice(0, slash);
  if (registry.includes('@')) throw usageError(`the remote "${redact(text)}" carries credentials`, 'put them in a Docker config.json named by oci-credentials, never in the remote');
  if (!registryPattern.test(registry)) throw usageError(`the remote "${redact(text)}" names no registry host`, `use ${form}`);
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  let repository: string;
  let tag: string | undefined;
  let digest: string | undefined;
  const at = path.indexOf('@');
  if (at >= 0) {
    repository = path.slice(0, at);
    digest = path.slice(at + 1);
    if (!digestPattern.test(digest)) throw usageError(`the remote "${redact(text)}" has a digest that is not sha256:<64 hex digits>`, `use ${form}`);
  } else {
    const colon = path.lastIndexOf(':');
    // No tag: oci-semver chooses one (the settings refuse it without).
    repository = colon < 0 || colon < path.lastIndexOf('/') ? path : path.slice(0, colon);
    tag = repository === path ? undefined : path.slice(colon + 1);
    if (tag !== undefined && !tagPattern.test(tag)) throw usageError(`the remote "${redact(text)}" has a tag that is not a registry tag (letters, digits, ".", "_", "-", at most 128)`, `use ${form}`);
  }
  if (!repositoryPattern.test(repository)) throw usageError(`the remote "${redact(text)}" has a repository name a registry does not take (lower-case letters, digits, separators)`, `use ${form}`);
  return { kind: 'oci', display: text, registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}
