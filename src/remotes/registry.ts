// Makes the fetcher for a parsed remote, loading that fetcher's module, and so its heavy
// libraries (the AWS SDK), only when a remote of that kind is used.
import type { Remote } from '../core/remote.js';
import type { Fetcher } from '../core/remote-contract.js';
import type { Settings } from '../core/settings.js';

export async function createFetcher(remote: Remote, settings: Settings): Promise<Fetcher> {
  switch (remote.kind) {
    case 'group':
      return (await import('./group.js')).groupFetcher(settings.groupMembers ?? [], createFetcher);
    case 'http-zip':
      return (await import('./http-zip.js')).httpZipFetcher(remote);
    case 'local-zip':
      return (await import('./local-zip.js')).localZipFetcher(remote);
    case 'git':
      return (await import('./git.js')).gitFetcher(remote);
    case 's3-zip':
      return (await import('./s3-zip.js')).s3ZipFetcher(remote);
    case 'oci':
      return (await import('./oci.js')).ociFetcher(remote);
  }
}
