// Maps a remote to its fetcher and loads that fetcher's module, and so its heavy libraries
// (the AWS SDK), only when a remote of that kind is used.
import { classifyRemote, type RemoteKind } from '../remote.js';
import type { Fetcher } from './types.js';

const loaders: Record<RemoteKind, () => Promise<Fetcher>> = {
  'http-zip': async () => (await import('./http-zip.js')).httpZipFetcher,
  'local-zip': async () => (await import('./local-zip.js')).localZipFetcher,
  git: async () => (await import('./git.js')).gitFetcher,
  's3-zip': async () => (await import('./s3-zip.js')).s3ZipFetcher,
};

export async function fetcherFor(remote: string): Promise<Fetcher> {
  return loaders[classifyRemote(remote)]();
}
