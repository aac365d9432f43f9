// Cosign signatures, found where cosign stores them beside an artifact and checked offline:
//
// - cosign v2: a manifest tagged `sha256-<hex of the signed manifest's digest>.sig` in the same
//   repository, each layer a "simple signing" payload (JSON naming the signed digest) whose
//   signature is the layer's `dev.cosignproject.cosign/signature` annotation: by a key (ECDSA over
//   the payload's bytes, checked here), or keyless (with the certificate and Rekor annotations,
//   checked in sigstore-bundle.ts);
// - cosign v3: a Sigstore bundle attached to the digest as a referrer (the referrers API, or the
//   `sha256-<hex>` fallback tag where the registry has no such API), checked in sigstore-bundle.ts.
//
// A revision is verified when one signature names its digest and satisfies the policy: a key of
// cosign-public-key, or a certificate of cosign-identity from cosign-issuer under
// sigstore-trusted-root. Every payload and bundle is checked against its digest as it is read.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { usageError } from '../base/errors.js';
import { readSmallRegularFile } from '../base/small-file.js';
import type { NamedKey, SigstorePolicy, Verdict } from './sigstore-bundle.js';

export type CosignPolicy = SigstorePolicy;

export const simpleSigningType = 'application/vnd.dev.cosign.simplesigning.v1+json';
const signatureAnnotation = 'dev.cosignproject.cosign/signature';
const certificateAnnotation = 'dev.sigstore.cosign/certificate';
const rekorBundleAnnotation = 'dev.sigstore.cosign/bundle';
const largestPayload = 64 << 10;
const largestBundle = 1 << 20;
/** Referrers tried at most: a repository flooded with bogus bundles costs a bounded number of reads. */
const mostBundles = 16;
/** cosign v3 names its bundles `application/vnd.dev.sigstore.bundle.v0.3+json`; earlier versions `…bundle+json;version=0.x`. */
const isBundleType = (type: string | undefined) => type !== undefined && /^application\/vnd\.dev\.sigstore\.bundle(\.v0\.\d+)?\+json(;version=0\.\d+)?$/.test(type);

/** A layer of a signature manifest, as the registry client reads it. */
interface SignatureLayer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

type SignatureManifest = { json: { layers?: SignatureLayer[] } };

/** What the registry must answer for a signature check (the registry client does). */
export interface SignatureSource {
  manifestIfPresent(reference: string): Promise<SignatureManifest | undefined>;
  /** The manifests that name `digest` as their subject (OCI 1.1 referrers). */
  referrers(digest: string): Promise<Array<{ digest: string; artifactType?: string }>>;
  blobBytes(descriptor: SignatureLayer, maxBytes: number): Promise<Buffer>;
}

/** The trust settings of cosign, read and checked; undefined when none is set. */
export async function readCosignPolicy(settings: { cosignPublicKey?: string; cosignIdentity?: string; cosignIssuer?: string; sigstoreTrustedRoot?: string }): Promise<CosignPolicy | undefined> {
  const { cosignPublicKey, cosignIdentity, cosignIssuer, sigstoreTrustedRoot } = settings;
  if (!cosignPublicKey && !cosignIdentity && !cosignIssuer && !sigstoreTrustedRoot) return undefined;
  return {
    keys: cosignPublicKey ? readCosignKeys(cosignPublicKey) : [],
    keyless: cosignIdentity && cosignIssuer ? { identity: cosignIdentity, issuer: cosignIssuer } : undefined,
    trustedRoot: sigstoreTrustedRoot ? (await import('./sigstore-bundle.js')).readTrustedRoot(sigstoreTrustedRoot) : undefined,
  };
}

/** A key of cosign-public-key, named for messages by its file and its place in it. */
export type CosignKey = NamedKey;

/** The PEM public keys of the file (one or more blocks); a file with none, or a bad one, is a usage error. */
export function readCosignKeys(path: string): CosignKey[] {
  let text: string;
  try {
    // A FIFO or /dev/zero named by mistake must not hang the check or fill memory.
    text = readSmallRegularFile(path, 1 << 20);
  } catch (error) {
    throw usageError(`cosign-public-key = ${path} cannot be read (${(error as Error).message})`, 'name the cosign.pub file itself');
  }
  const blocks = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw usageError(`cosign-public-key = ${path} holds no PEM public key`, 'give it the cosign.pub that `cosign generate-key-pair` wrote (-----BEGIN PUBLIC KEY-----)');
  return blocks.map((block, index) => {
    try {
      return { key: createPublicKey(block), name: blocks.length > 1 ? `${path} (key ${index + 1})` : path };
    } catch (error) {
      throw usageError(`cosign-public-key = ${path}: key ${index + 1} is not a public key (${(error as Error).message})`);
    }
  });
}

/** The tag cosign v2 stores a manifest's signatures under. */
export const signatureTag = (digest: string) => `${digest.replace(':', '-')}.sig`;

/**
 * Who signed `digest` under the policy, or why nobody did (no signature, another key or
 * identity, a signature over another digest). Cosign v2's signature tag is read first, then
 * cosign v3's Sigstore bundles among the digest's referrers. Never throws for a missing or bad
 * signature: the caller refuses.
 */
export async function findCosignSigner(source: SignatureSource, digest: string, policy: CosignPolicy): Promise<Verdict> {
  const reasons = new Set<string>();
  const signatures = await source.manifestIfPresent(signatureTag(digest));
  for (const layer of signatures?.json.layers ?? []) {
    const signature = layer.annotations?.[signatureAnnotation];
    if (layer.mediaType !== simpleSigningType || !signature) continue;
    const payload = await source.blobBytes(layer, largestPayload);
    const signed = signedDigest(payload);
    if (signed !== digest) {
      reasons.add(`a signature covers ${signed ?? 'no manifest digest'}, not ${digest}`);
      continue;
    }
    const certificate = layer.annotations?.[certificateAnnotation];
    const verdict = certificate
      ? (await import('./sigstore-bundle.js')).verifyCosignV2Keyless(payload, signature, certificate, layer.annotations?.[rekorBundleAnnotation], policy)
      : verifyByKey(payload, signature, policy.keys);
    if ('signer' in verdict) return verdict;
    reasons.add(verdict.refusal);
  }
  const passedOver: string[] = [];
  const bundles = (await source.referrers(digest)).filter((referrer) => isBundleType(referrer.artifactType)).slice(0, mostBundles);
  for (const referrer of bundles) {
    // A fallback tag's index is kept by clients and can name a manifest deleted since: passed over.
    const manifest = await source.manifestIfPresent(referrer.digest);
    const layer = manifest?.json.layers?.find((candidate) => isBundleType(candidate.mediaType));
    if (!layer) {
      passedOver.push(referrer.digest);
      continue;
    }
    if (layer.size > largestBundle) {
      reasons.add(`a Sigstore bundle of ${layer.size} bytes (more than ${largestBundle}) was passed over`);
      continue;
    }
    const verdict = (await import('./sigstore-bundle.js')).verifyCosignBundle(await source.blobBytes(layer, largestBundle), digest, policy);
    if ('signer' in verdict) return verdict;
    reasons.add(verdict.refusal);
  }
  if (passedOver.length > 0) reasons.add(`${passedOver.length === 1 ? 'a referrer' : `${passedOver.length} referrers`} listed as Sigstore bundles ${passedOver.length === 1 ? 'is' : 'are'} not in the registry or hold none (${passedOver[0]}${passedOver.length > 1 ? ', …' : ''})`);
  if (reasons.size > 0) return { refusal: [...reasons].join('; ') };
  return { refusal: `no cosign signature was found: neither a signature tag ${signatureTag(digest)} nor a Sigstore bundle among the referrers of ${digest}` };
}

function verifyByKey(payload: Buffer, signature: string, keys: CosignKey[]): Verdict {
  if (keys.length === 0) return { refusal: 'a signature is by a key, and cosign-public-key is not set' };
  const signer = keys.find(({ key }) => verifies(key, payload, signature));
  return signer ? { signer: signer.name } : { refusal: 'a signature is by none of the keys of cosign-public-key' };
}

/** The manifest digest a simple-signing payload vouches for, if it is one. */
function signedDigest(payload: Buffer): string | undefined {
  try {
    const json = JSON.parse(payload.toString('utf8')) as { critical?: { type?: string; image?: Record<string, unknown> } };
    if (json.critical?.type !== 'cosign container image signature') return undefined;
    const digest = json.critical.image?.['docker-manifest-digest'];
    return typeof digest === 'string' ? digest : undefined;
  } catch {
    return undefined;
  }
}

function verifies(key: KeyObject, payload: Buffer, signatureBase64: string): boolean {
  try {
    return verify('sha256', payload, { key, dsaEncoding: 'der' }, Buffer.from(signatureBase64, 'base64'));
  } catch {
    return false;
  }
}
