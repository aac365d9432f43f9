// Sigstore bundles, checked offline with @sigstore/verify: cosign v3's signatures (a bundle whose
// DSSE envelope holds an in-toto statement naming the signed manifest's digest), by a key of
// cosign-public-key or keyless (a certificate of cosign-identity from cosign-issuer, chained to a
// certificate authority of sigstore-trusted-root, with the transparency log's entry and, where
// the root lists CT logs, an SCT). Cosign v2's keyless signatures (the `.sig` tag's certificate
// and Rekor bundle annotations) are put into a bundle's shape here and checked the same way.
//
// Loaded only when a signature is checked: @sigstore/verify and its protobuf types are large.
import { createHash, type KeyObject } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier, type SignedEntity } from '@sigstore/verify';
import { usageError } from '../base/errors.js';
import { readSmallRegularFile } from '../base/small-file.js';

/** The in-toto predicate cosign v3 gives an image signature. */
export const cosignSignPredicate = 'https://sigstore.dev/cosign/sign/v1';
const inTotoPayloadType = 'application/vnd.in-toto+json';

export type Verdict = { signer: string } | { refusal: string };

export interface NamedKey {
  key: KeyObject;
  name: string;
}

/** What a signature must satisfy: a key of cosign-public-key, or keyless identity and issuer under the trusted root. */
export interface SigstorePolicy {
  keys: NamedKey[];
  keyless: { identity: string; issuer: string } | undefined;
  trustedRoot: TrustedRoot | undefined;
}

const noRoot: TrustedRoot = { mediaType: '', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] };

/** sigstore-trusted-root: a `trusted_root.json` (as `cosign trusted-root create` or Sigstore's TUF repository gives it); a file that is not one is a usage error. */
export function readTrustedRoot(path: string): TrustedRoot {
  const fail = (why: string) => usageError(`sigstore-trusted-root = ${path} ${why}`, 'give it a trusted_root.json: Sigstore\'s (from its TUF repository, `cosign trusted-root`), or your own Fulcio and Rekor\'s');
  let root: TrustedRoot;
  try {
    root = TrustedRoot.fromJSON(JSON.parse(readSmallRegularFile(path, 4 << 20)));
  } catch (error) {
    throw fail(`cannot be read as a trusted root (${(error as Error).message})`);
  }
  if (root.certificateAuthorities.length === 0) throw fail('lists no certificate authority, so no keyless signature could ever verify');
  try {
    toTrustMaterial(root); // parses every certificate and key now, not at the first signature
  } catch (error) {
    throw fail(`holds a certificate or key that cannot be parsed (${(error as Error).message})`);
  }
  return root;
}

/**
 * The signer of a Sigstore bundle that vouches for `digest` under the policy, or why it does not:
 * it covers another digest, it is not a bundle, its key or identity is not trusted, its
 * certificate, transparency log entry or signature does not check out.
 */
export function verifyCosignBundle(bundleBytes: Buffer, digest: string, policy: SigstorePolicy): Verdict {
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(JSON.parse(bundleBytes.toString('utf8')));
  } catch (error) {
    return { refusal: `a Sigstore bundle cannot be read (${(error as Error).message})` };
  }
  const covered = digestsCovered(bundle);
  if (!covered.includes(digest)) return { refusal: `a Sigstore bundle covers ${covered.join(', ') || 'no manifest digest'}, not ${digest}` };
  return verifyEntity(toSignedEntity(bundle), policy);
}

/**
 * A cosign v2 keyless signature (the `.sig` tag's layer: a simple-signing payload, its signature,
 * the signing certificate and the Rekor entry's "bundle" annotation), checked as a Sigstore
 * bundle of version 0.1 would be. The caller has checked that the payload names the digest.
 */
export function verifyCosignV2Keyless(payload: Buffer, signatureBase64: string, certificatePem: string, rekorBundle: string | undefined, policy: SigstorePolicy): Verdict {
  let bundle: Bundle;
  try {
    const certificate = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(certificatePem)?.[1];
    if (!certificate) return { refusal: 'a cosign signature carries a certificate that is not PEM' };
    const tlogEntries = rekorBundle ? [rekorEntry(JSON.parse(rekorBundle) as RekorBundle)] : [];
    bundle = bundleFromJSON({
      mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
      verificationMaterial: { x509CertificateChain: { certificates: [{ rawBytes: certificate.replace(/\s+/g, '') }] }, tlogEntries, timestampVerificationData: { rfc3161Timestamps: [] } },
      messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(payload).digest('base64') }, signature: signatureBase64 },
    });
  } catch (error) {
    return { refusal: `a cosign keyless signature cannot be read (${(error as Error).message})` };
  }
  return verifyEntity(toSignedEntity(bundle, payload), policy);
}

interface RekorBundle {
  SignedEntryTimestamp: string;
  Payload: { body: string; integratedTime: number; logIndex: number; logID: string };
}

/** The transparency log entry cosign v2 keeps in its `dev.sigstore.cosign/bundle` annotation, as a bundle's tlogEntries hold it. */
function rekorEntry({ SignedEntryTimestamp, Payload }: RekorBundle): object {
  const body = JSON.parse(Buffer.from(Payload.body, 'base64').toString('utf8')) as { kind?: string; apiVersion?: string };
  return {
    logIndex: String(Payload.logIndex),
    logId: { keyId: Buffer.from(Payload.logID, 'hex').toString('base64') },
    kindVersion: { kind: body.kind, version: body.apiVersion },
    integratedTime: String(Payload.integratedTime),
    inclusionPromise: { signedEntryTimestamp: SignedEntryTimestamp },
    canonicalizedBody: Payload.body,
  };
}

/** The sha256 digests the bundle's in-toto statement names as subjects, when it is a cosign image signature. */
function digestsCovered(bundle: Bundle): string[] {
  if (bundle.content.$case !== 'dsseEnvelope') return [];
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== inTotoPayloadType) return [];
  try {
    const statement = JSON.parse(envelope.payload.toString('utf8')) as { predicateType?: string; subject?: Array<{ digest?: { sha256?: unknown } }> };
    if (statement.predicateType !== cosignSignPredicate) return [];
    return (statement.subject ?? []).map((subject) => subject.digest?.sha256).filter((hex): hex is string => typeof hex === 'string').map((hex) => `sha256:${hex}`);
  } catch {
    return [];
  }
}

function verifyEntity(entity: SignedEntity, policy: SigstorePolicy): Verdict {
  return entity.key.$case === 'public-key' ? verifyByKey(entity, policy) : verifyKeyless(entity, policy);
}

/**
 * A signature by a key: tried against each key of cosign-public-key (a bundle's key hint is not
 * trusted to choose). Without a trusted root the transparency log entry is not checked, as for
 * cosign v2's key signatures; with one, an entry from one of its logs is required.
 */
function verifyByKey(entity: SignedEntity, { keys, trustedRoot }: SigstorePolicy): Verdict {
  if (keys.length === 0) return { refusal: 'a signature is by a key, and cosign-public-key is not set' };
  const checked = trustedRoot ? entity : { ...entity, tlogEntries: [], timestamps: [] };
  const reasons = new Set<string>();
  for (const { key, name } of keys) {
    const material = toTrustMaterial(trustedRoot ?? noRoot, () => ({ publicKey: key, validFor: () => true }));
    try {
      new Verifier(material, { tlogThreshold: trustedRoot && trustedRoot.tlogs.length > 0 ? 1 : 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(checked);
      return { signer: name };
    } catch (error) {
      const code = (error as { code?: string }).code;
      reasons.add(code === 'SIGNATURE_ERROR' ? 'a signature is by none of the keys of cosign-public-key' : `a signature's ${describeFailure(error)}`);
    }
  }
  return { refusal: [...reasons].join('; ') };
}

/** A keyless signature: the certificate's identity and issuer, its chain to the trusted root, a timestamp from the log, the signature. */
function verifyKeyless(entity: SignedEntity, { keyless, trustedRoot }: SigstorePolicy): Verdict {
  if (!keyless || !trustedRoot) return { refusal: 'a signature is keyless (a certificate), and cosign-identity, cosign-issuer and sigstore-trusted-root are not set' };
  const verifier = new Verifier(toTrustMaterial(trustedRoot), {
    tlogThreshold: trustedRoot.tlogs.length > 0 ? 1 : 0,
    // The public-good root lists CT logs, and Fulcio embeds an SCT in every certificate it issues.
    ctlogThreshold: trustedRoot.ctlogs.length > 0 ? 1 : 0,
    // A certificate lives minutes: it is checked at the time the log (or a TSA) vouches for.
    timestampThreshold: 1,
  });
  try {
    verifier.verify(entity, { subjectAlternativeName: `^${escapeRegExp(keyless.identity)}$`, extensions: { issuer: keyless.issuer } });
    return { signer: `${keyless.identity} (issuer ${keyless.issuer})` };
  } catch (error) {
    return { refusal: `a keyless signature's ${describeFailure(error)}` };
  }
}

function describeFailure(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  const what: Record<string, string> = {
    UNTRUSTED_SIGNER_ERROR: 'signer is not the one asked for',
    CERTIFICATE_ERROR: 'certificate does not chain to sigstore-trusted-root',
    TIMESTAMP_ERROR: 'time cannot be vouched for',
    SIGNATURE_ERROR: 'signature does not verify',
    PUBLIC_KEY_ERROR: 'key is not trusted',
  };
  const kind = code && what[code] ? what[code] : code?.startsWith('TLOG') ? 'transparency log entry does not check out' : 'check failed';
  return `${kind} (${message ?? String(error)})`;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
