// Cosign signatures by public key, as cosign v2 stores them beside an artifact: a manifest tagged
// `sha256-<hex of the signed manifest's digest>.sig` in the same repository, each layer a
// "simple signing" payload (JSON naming the signed digest) whose signature is the layer's
// `dev.cosignproject.cosign/signature` annotation (base64, ECDSA over the payload's bytes). A
// revision is verified when one payload names its digest and is signed by one of the keys of
// `cosign-public-key`; the payload's bytes are checked against their digest as they are read.
//
// Not yet: cosign v3's Sigstore bundles (through the referrers API) and keyless signatures
// against a trusted root; the transparency log entry of a key-based signature is not required.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { usageError } from '../base/errors.js';
import { readSmallRegularFile } from '../base/small-file.js';

export const simpleSigningType = 'application/vnd.dev.cosign.simplesigning.v1+json';
const signatureAnnotation = 'dev.cosignproject.cosign/signature';
const largestPayload = 64 << 10;

/** A layer of a signature manifest, as the registry client reads it. */
interface SignatureLayer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** What the registry must answer for a signature check (the registry client does): the tag's manifest, and small blobs. */
export interface SignatureSource {
  manifestIfPresent(reference: string): Promise<{ json: { layers?: SignatureLayer[] } } | undefined>;
  blobBytes(descriptor: SignatureLayer, maxBytes: number): Promise<Buffer>;
}

export interface CosignKey {
  key: KeyObject;
  /** Where it came from, for messages: the file and the key's place in it. */
  name: string;
}

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
 * The key that signed `digest`, or the reason none did (no signature, another key, a payload
 * naming another digest). Never throws for a missing or bad signature: the caller refuses.
 */
export async function findCosignSigner(source: SignatureSource, digest: string, keys: CosignKey[]): Promise<{ signer: string } | { refusal: string }> {
  const signatures = await source.manifestIfPresent(signatureTag(digest));
  if (!signatures) return { refusal: `no cosign signature (tag ${signatureTag(digest)}) was found` };
  const reasons = new Set<string>();
  for (const layer of signatures.json.layers ?? []) {
    const signature = layer.annotations?.[signatureAnnotation];
    if (layer.mediaType !== simpleSigningType || !signature) continue;
    const payload = await source.blobBytes(layer, largestPayload);
    const signed = signedDigest(payload);
    if (signed !== digest) {
      reasons.add(`a signature covers ${signed ?? 'no manifest digest'}, not ${digest}`);
      continue;
    }
    const signer = keys.find(({ key }) => verifies(key, payload, signature));
    if (signer) return { signer: signer.name };
    reasons.add('a signature is by none of the keys of cosign-public-key');
  }
  return { refusal: reasons.size > 0 ? [...reasons].join('; ') : `the signature tag ${signatureTag(digest)} holds no cosign signature` };
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
