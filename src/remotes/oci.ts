// An artifact in an OCI registry (oci://HOST/REPOSITORY:TAG or @sha256:DIGEST): Flux's artifacts
// (one tar+gzip layer), a single tar or zip layer, or the layer `oci-layer` names.
//
// The revision is the digest of the manifest the reference points at (an image index's own
// digest when it is one), so the idle check is one HEAD of that manifest: no manifest body, no
// blob, and on Docker Hub no pull counted. A change reads the manifest (checked against its
// digest as it streams), picks the platform's manifest from an index, picks the layer, and
// downloads it checked against its digest; staging extracts it by the rules zip extraction keeps.
//
// Signatures: cosign's, by the keys of cosign-public-key (src/verify/cosign.ts), checked before
// a layer is downloaded; the other trust settings cannot vouch for an OCI artifact, so with one
// of them alone an OCI revision is refused, never deployed unverified.
import { constants, createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { arch } from 'node:process';
import { fetchError } from '../base/errors.js';
import { counted } from '../base/counted.js';
import type { ProgressSink } from '../base/progress.js';
import { withDeadline } from '../base/deadline.js';
import { newDownloadFile } from '../core/cache-layout.js';
import type { OciRemote } from '../core/remote.js';
import type { CheckContext, CheckResult, Fetcher } from '../core/remote-contract.js';
import type { OciSettings } from '../core/settings.js';
import { findCosignSigner, readCosignPolicy, type CosignPolicy } from '../verify/cosign.js';
import { VerificationError } from '../verify/refusal.js';
import { rejectEntriesBelowLinksOrFiles, rejected, releasePathOf } from './entry-path.js';
import type { ExtractLimits, ExtractSummary } from './extract.js';
import { loginFor } from './oci/credentials.js';
import { manifestMediaTypes, RegistryClient, type Descriptor, type Manifest } from './oci/registry-client.js';

export const fluxLayerType = 'application/vnd.cncf.flux.content.v1.tar+gzip';
const tarLayerTypes = new Set([
  fluxLayerType,
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/x-tar',
  'application/gzip',
  'application/tar+gzip',
]);
const zipLayerTypes = new Set(['application/zip', 'application/x-zip-compressed']);

/** Node's names for this host's CPU, as OCI platforms name them. */
const ociArchitecture: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export const ociFetcher = (remote: OciRemote): Fetcher<OciSettings> => ({
  check: (context) => withDeadline(context.signal, context.settings.downloadTimeoutMs, (deadline) => checkWithin(remote, context, deadline.signal)),
});

async function checkWithin(remote: OciRemote, context: CheckContext<OciSettings>, signal: AbortSignal): Promise<CheckResult> {
  const { settings, log } = context;
  const { credentials } = loginFor(remote.registry, settings.ociCredentials, context.env);
  const client = new RegistryClient(
    { registry: remote.registry, insecure: settings.ociInsecure, credentials, timeoutMs: settings.httpTimeoutMs, signal, log, tokenFile: context.cache.ociTokensFile },
    remote.repository,
  );
  try {
    const reference = remote.digest ?? remote.tag ?? (await highestMatchingTag(client, remote, settings.ociSemver!));
    // The idle check: one HEAD (a digest reference names its revision already).
    const named = remote.digest ?? (await client.manifestDigest(reference));
    if (named !== undefined && context.deployed?.revision === named) return { changed: false };
    const top = await client.manifest(reference, named);
    const revision = top.digest;
    if (context.deployed?.revision === revision) return { changed: false };
    await verifyRevision(context, client, remote, revision);
    const image = isIndex(top) ? await client.manifest(pickPlatform(top, settings.ociPlatform, remote).digest) : top;
    const content = pickContent(image, settings.ociLayer, remote);
    const layers = content.kind === 'archive' ? [content.layer] : content.files.map((file) => file.layer);
    const declared = layers.reduce((total, layer) => total + layer.size, 0);
    if (declared > settings.maxDownloadBytes) throw fetchError(`${remote.display}: its layers are ${declared} bytes, larger than max-download-size = ${settings.maxDownloadBytes}`, { hint: 'raise max-download-size if the artifact is genuine' });
    const paths: string[] = [];
    const dispose = async () => {
      for (const path of paths) await rm(path, { force: true });
    };
    try {
      for (const layer of layers) {
        paths.push(await newDownloadFile(context.cache, 'download'));
        await client.downloadBlob(layer, paths.at(-1)!, settings.maxDownloadBytes, context.progress);
      }
    } catch (error) {
      await dispose();
      throw error;
    }
    const tag = remote.tag === undefined && remote.digest === undefined ? ` tag ${reference},` : '';
    return {
      changed: true,
      revision,
      description: `artifact ${remote.display} (${revision.slice(0, 19)},${tag} ${content.kind === 'archive' ? `layer ${content.layer.mediaType}` : `${content.files.length} ${content.files.length === 1 ? 'file' : 'files'}`})`,
      remoteState: { digest: revision },
      async stage(directory) {
        const limits = { maxUnpackedBytes: settings.maxUnpackedBytes, maxEntries: settings.maxEntries };
        const summary = content.kind === 'archive' ? await extractLayer(content.layer, paths[0]!, directory, limits, remote.display, context.progress) : await writeFiles(content.files, paths, directory, limits, remote.display, context.progress);
        log.info(`extracted ${counted(summary.files, 'file')}, ${counted(summary.directories, 'directory', 'directories')}, ${counted(summary.symlinks, 'symlink')} (${counted(summary.bytes, 'byte')})`);
        return { fileHashes: summary.fileHashes };
      },
      dispose,
    };
  } finally {
    await client.close();
  }
}

/**
 * The trust settings, for an OCI revision: with cosign-public-key, a cosign signature by one of
 * its keys must cover the manifest's digest; allowed-signers, checksum and gpg-keyring vouch for
 * archives and commits, not for OCI artifacts, so with one of them set (and no cosign key) the
 * revision is refused, never deployed unverified.
 *
 * A cosign refusal is not remembered: signatures are attached beside an artifact, often after it
 * is pushed (`flux push artifact`, then `cosign sign`), so the next check looks again; it costs a
 * few small reads and no layer is downloaded before a signature verifies.
 */
async function verifyRevision(context: CheckContext<OciSettings>, client: RegistryClient, remote: OciRemote, revision: string): Promise<void> {
  const { settings } = context;
  const refuse = (reason: string, remember: boolean) => new VerificationError(`refused ${remote.display} (${revision.slice(0, 19)}): ${reason}`, revision, { digest: revision }, remember);
  const policy = await readCosignPolicy(settings);
  if (policy) {
    const found = await findCosignSigner(client, revision, policy);
    if ('refusal' in found) throw refuse(found.refusal, false);
    context.log.info(`artifact ${remote.display} (${revision.slice(0, 19)}) is signed with cosign by ${found.signer}`, { revision });
    return;
  }
  const asked = [settings.allowedSigners && 'allowed-signers', settings.checksum && 'checksum', settings.gpgKeyring && 'gpg-keyring'].filter(Boolean);
  if (asked.length > 0) throw refuse(`${asked.join(' and ')} ${asked.length > 1 ? 'ask' : 'asks'} for a verified revision, and an oci:// artifact is verified by cosign (cosign-public-key, or cosign-identity with cosign-issuer)`, true);
}

/**
 * The OCI settings as check-config reports them: where the registry is reached and how, the
 * login's source, the platform and layer chosen, and the signature keys; a credentials or key
 * file that cannot be used is thrown (a usage error naming it).
 */
export async function describeOciSettings(remote: OciRemote, settings: OciSettings, env: NodeJS.ProcessEnv): Promise<string> {
  const { file: credentialsFile, credentials: login } = loginFor(remote.registry, settings.ociCredentials, env);
  const policy = await readCosignPolicy(settings);
  return [
    `${settings.ociInsecure ? 'http' : 'https'}://${remote.registry}`,
    login ? `login ${login.user} from ${credentialsFile}` : `anonymous (no login for ${remote.registry} in ${credentialsFile})`,
    `platform ${settings.ociPlatform ?? `linux/${ociArchitecture[arch] ?? arch} (this host's)`}`,
    `layer ${settings.ociLayer ?? "a Flux artifact's, or the only one"}`,
    describePolicy(settings, policy),
  ].join('; ');
}

function describePolicy(settings: OciSettings, policy: CosignPolicy | undefined): string {
  if (!policy) return 'no signature required';
  const accepted = [
    policy.keys.length > 0 && `a key of ${settings.cosignPublicKey} (${counted(policy.keys.length, 'key')})`,
    policy.keyless && `keyless by ${policy.keyless.identity} from ${policy.keyless.issuer}`,
  ].filter(Boolean);
  const root = policy.trustedRoot && `, checked against ${settings.sigstoreTrustedRoot} (${counted(policy.trustedRoot.certificateAuthorities.length, 'certificate authority', 'certificate authorities')}, ${counted(policy.trustedRoot.tlogs.length, 'transparency log')}, ${counted(policy.trustedRoot.ctlogs.length, 'CT log')})`;
  return `cosign signature by ${accepted.join(' or ')}${root ?? ''}`;
}

/** oci-semver: the highest tag the range takes (a leading "v" allowed), from the registry's tag list. */
async function highestMatchingTag(client: RegistryClient, remote: OciRemote, range: string): Promise<string> {
  const { clean, maxSatisfying } = await import('../base/lazy/semver.js');
  const tags = await client.tags();
  const byVersion = new Map<string, string>();
  for (const tag of tags) {
    const version = clean(tag);
    if (version && !byVersion.has(version)) byVersion.set(version, tag);
  }
  const best = maxSatisfying([...byVersion.keys()], range);
  if (!best) throw fetchError(`${remote.display} has no tag that satisfies oci-semver = ${range} (${tags.length} tags, ${byVersion.size} of them versions)`, { hint: 'push a matching version, or widen the range' });
  return byVersion.get(best)!;
}

const isIndex = (manifest: Manifest) => manifest.mediaType === manifestMediaTypes.ociIndex || manifest.mediaType === manifestMediaTypes.dockerList || (manifest.json.manifests !== undefined && manifest.json.layers === undefined);

function pickPlatform(index: Manifest, wanted: string | undefined, remote: OciRemote): Descriptor {
  const [os, architecture, variant] = (wanted ?? `linux/${ociArchitecture[arch] ?? arch}`).split('/');
  const candidates = (index.json.manifests ?? []).filter((entry) => entry.platform?.os === os && entry.platform?.architecture === architecture && (variant === undefined || entry.platform?.variant === variant));
  const chosen = candidates[0];
  if (!chosen) {
    const offered = (index.json.manifests ?? []).map((entry) => [entry.platform?.os, entry.platform?.architecture, entry.platform?.variant].filter(Boolean).join('/')).join(', ');
    throw fetchError(`${remote.display} is an image index with no manifest for ${[os, architecture, variant].filter(Boolean).join('/')} (it has: ${offered || 'none with a platform'})`, { hint: 'set oci-platform to one it has' });
  }
  return chosen;
}

/** What an artifact deploys: one archive layer, extracted; or, as ORAS pushes files, each layer a file named by its title. */
/** ORAS's layers: a file written where its title says, or (unpack) a directory packed as a tar whose entries all lie under its title. */
interface OrasLayer {
  layer: Descriptor;
  path: string;
  unpack: boolean;
}
type Content = { kind: 'archive'; layer: Descriptor } | { kind: 'files'; files: OrasLayer[] };

const titleAnnotation = 'org.opencontainers.image.title';
// ORAS pushes a directory as a tar+gzip layer with this annotation (not deployed yet).
const unpackAnnotation = 'io.deis.oras.content.unpack';
const isArchiveType = (mediaType: string) => tarLayerTypes.has(mediaType) || zipLayerTypes.has(mediaType);

function pickContent(image: Manifest, wanted: string | undefined, remote: OciRemote): Content {
  const layers = image.json.layers ?? [];
  const types = layers.map((layer) => layer.mediaType).join(', ') || 'none';
  if (wanted) {
    const chosen = layers.find((layer) => layer.mediaType === wanted);
    if (!chosen) throw fetchError(`${remote.display} has no layer of media type ${wanted} (oci-layer); its layers: ${types}`);
    if (!isArchiveType(chosen.mediaType) && !/tar|zip/.test(chosen.mediaType)) {
      throw fetchError(`${remote.display}: the layer ${wanted} is neither a tar nor a zip, which repo-deploy can deploy`);
    }
    return { kind: 'archive', layer: chosen };
  }
  const flux = layers.find((layer) => layer.mediaType === fluxLayerType);
  if (flux) return { kind: 'archive', layer: flux };
  const titled = layers.length > 0 && layers.every((layer) => layer.annotations?.[titleAnnotation]);
  if (layers.length === 1 && isArchiveType(layers[0]!.mediaType) && layers[0]!.annotations?.[unpackAnnotation] === undefined) return { kind: 'archive', layer: layers[0]! };
  if (titled) {
    const files = layers.map((layer) => {
      const title = layer.annotations![titleAnnotation]!;
      const unpack = layer.annotations?.[unpackAnnotation] === 'true';
      if (unpack && !isArchiveType(layer.mediaType)) throw fetchError(`${remote.display}: the directory "${title}" is packed as ${layer.mediaType}, not as a tar`);
      const path = releasePathOf(title, remote.display);
      if (path === undefined) throw rejected(remote.display, title, 'names the release itself');
      return { layer, path, unpack };
    });
    const kinds = new Map<string, string>();
    for (const file of files) {
      if (kinds.has(file.path)) throw rejected(remote.display, file.path, 'appears twice');
      kinds.set(file.path, file.unpack ? 'directory' : 'file');
    }
    rejectEntriesBelowLinksOrFiles(files.map((file) => ({ path: file.path, name: file.path })), kinds, remote.display);
    return { kind: 'files', files };
  }
  throw fetchError(`${remote.display} has ${layers.length === 0 ? 'no layer' : `${layers.length} layers (${types})`}, none is a Flux artifact's, and not every one is a file named by its title`, {
    hint: layers.length > 1 ? 'set oci-layer to the media type of the layer to deploy' : 'push the artifact as a tar or zip layer (flux push artifact, oras push)',
  });
}

async function extractLayer(layer: Descriptor, path: string, directory: string, limits: ExtractLimits, display: string, progress: ProgressSink | undefined): Promise<ExtractSummary> {
  if (zipLayerTypes.has(layer.mediaType)) return (await import('./extract.js')).extractZip(path, directory, limits, display, progress);
  return (await import('./extract-tar.js')).extractTar(createReadStream(path), directory, limits, display, progress);
}

/**
 * ORAS's layers: directories first, each extracted by tar's rules into a directory of its own in
 * the release and moved to its title (every entry must lie under it), then files, each written
 * where its title says (its sha256 is its layer's digest). Nothing is replaced: a file that a
 * directory already holds is refused. The limits count all layers together.
 */
async function writeFiles(files: OrasLayer[], paths: string[], directory: string, limits: ExtractLimits, display: string, progress: ProgressSink | undefined): Promise<ExtractSummary> {
  const summary: ExtractSummary = { files: 0, directories: 0, symlinks: 0, bytes: 0, fileHashes: new Map() };
  const order = [...files.keys()].sort((a, b) => Number(files[b]!.unpack) - Number(files[a]!.unpack));
  for (const index of order) {
    const file = files[index]!;
    const entries = summary.files + summary.directories + summary.symlinks;
    if (entries >= limits.maxEntries) throw fetchError(`${display} rejected: more than max-entries = ${limits.maxEntries} entries`, { hint: 'raise max-entries if the artifact is genuine' });
    const target = join(directory, file.path);
    if (file.unpack) {
      add(summary, await unpackDirectory(file, paths[index]!, directory, { maxEntries: limits.maxEntries - entries, maxUnpackedBytes: limits.maxUnpackedBytes - summary.bytes }, display, progress));
      continue;
    }
    if (summary.bytes + file.layer.size > limits.maxUnpackedBytes) throw fetchError(`${display} rejected: its files are more than max-unpacked-size = ${limits.maxUnpackedBytes} bytes`, { hint: 'raise max-unpacked-size if the artifact is genuine' });
    await mkdir(dirname(target), { recursive: true });
    // COPYFILE_EXCL: nothing there is replaced or followed.
    await copyFile(paths[index]!, target, constants.COPYFILE_EXCL).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'EEXIST' ? rejected(display, file.path, 'is also in a directory layer') : error;
    });
    await chmod(target, 0o644);
    summary.fileHashes.set(file.path, file.layer.digest.slice('sha256:'.length));
    summary.files++;
    summary.bytes += file.layer.size;
    progress?.advance(file.layer.size);
  }
  return summary;
}

/** One ORAS directory layer: extracted aside in the release, refused unless its only top-level entry is its title, then moved there. */
async function unpackDirectory(file: OrasLayer, path: string, directory: string, limits: ExtractLimits, display: string, progress: ProgressSink | undefined): Promise<ExtractSummary> {
  const aside = join(directory, `.oras-unpack-${file.layer.digest.slice(7, 19)}`);
  await mkdir(aside, { mode: 0o700 });
  const extracted = await (await import('./extract-tar.js')).extractTar(createReadStream(path), aside, limits, `${display} (directory ${file.path})`, progress);
  const top = await readdir(aside);
  const outside = top.find((name) => name !== file.path.split('/')[0]);
  if (outside !== undefined || (file.path.includes('/') && !(await stat(join(aside, file.path)).catch(() => undefined))?.isDirectory())) {
    throw rejected(display, outside ?? file.path, `lies outside the directory "${file.path}" its layer is titled`);
  }
  await mkdir(dirname(join(directory, file.path)), { recursive: true });
  await rename(join(aside, file.path), join(directory, file.path)).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ENOTEMPTY' || error.code === 'EEXIST' || error.code === 'ENOTDIR' ? rejected(display, file.path, 'appears in two directory layers') : error;
  });
  await rm(aside, { recursive: true, force: true });
  return extracted;
}

function add(total: ExtractSummary, part: ExtractSummary): void {
  total.files += part.files;
  total.directories += part.directories;
  total.symlinks += part.symlinks;
  total.bytes += part.bytes;
  for (const [name, hash] of part.fileHashes) total.fileHashes.set(name, hash);
}
