// One entry of a release's manifest (verify/manifest.ts writes and reads them): here, below the
// fetchers' contract, because a fetcher that wrote the tree may hand its entries over.
export interface ManifestEntry {
  path: string;
  type: 'file' | 'symlink' | 'directory';
  size?: number;
  mode: number;
  sha256?: string;
  target?: string;
}
