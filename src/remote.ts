// Which fetcher a remote string belongs to, decided by its form alone (SPEC.md, "Remotes").
import { usageError } from './errors.js';
import { redact } from './redact.js';

export type RemoteKind = 'git' | 'http-zip' | 's3-zip' | 'local-zip';

export const acceptedRemoteForms = [
  's3://bucket/path/app.zip',
  'http(s)://host/path/app.zip',
  'git@host:org/app.git[/sub/dir][#ref]',
  'git+ssh://, git+https://, ssh://, git:// URLs to a repository',
  'https://host/org/app.git[/sub/dir][#ref]',
  'file:///srv/git/app.git[#ref] or /srv/git/app.git',
  'file:///path/app.zip or /path/app.zip',
];

const scpLikeGit = /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!\/\/)/;
const gitSchemes = /^(git\+ssh|git\+https|git\+http|git\+file|ssh|git):\/\//i;
// A path segment that ends in .git: "/app.git", "/app.git/sub", "/app.git#main".
const gitSegment = /\.git(?=$|[/#])/;

export function classifyRemote(remote: string): RemoteKind {
  const text = remote.trim();
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
