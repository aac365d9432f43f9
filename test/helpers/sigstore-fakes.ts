// A Sigstore of the test's own, to sign as cosign does and to verify offline against it: a
// certificate authority standing for Fulcio (made by openssl, issuing short-lived certificates
// with Fulcio's identity and issuer extensions), a transparency log standing for Rekor (an ECDSA
// key that signs entry timestamps and one-entry checkpoints), the `trusted_root.json` naming both,
// and the signatures themselves: cosign v3's Sigstore bundle (a DSSE envelope around an in-toto
// statement of predicate https://sigstore.dev/cosign/sign/v1), pushed as a referrer of the signed
// manifest, and cosign v2's keyless `.sig` tag (certificate and Rekor bundle annotations).
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ociManifestType, ociIndexType, pushBlob, pushManifest, type TestRegistry } from './oci-registry.js';

export const bundleType = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const signPredicate = 'https://sigstore.dev/cosign/sign/v1';
const inTotoType = 'application/vnd.in-toto+json';
const fulcioIssuerV1 = '1.3.6.1.4.1.57264.1.1';
const fulcioIssuerV2 = '1.3.6.1.4.1.57264.1.8';

const b64 = (data: Buffer | string) => Buffer.from(data).toString('base64');
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest();
const derOf = (pem: string) => new X509Certificate(pem).raw;
const pae = (type: string, payload: Buffer) => Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${payload.length} `), payload]);

export interface CertificateAuthority {
  directory: string;
  keyPath: string;
  certificatePath: string;
  certificatePem: string;
}

/** A root CA (ECDSA P-256, valid ten years), as a private Fulcio's. */
export function makeCertificateAuthority(directory: string, name = 'test-fulcio'): CertificateAuthority {
  const key = join(directory, `${name}.key`);
  const certificate = join(directory, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', certificate, '-subj', `/O=sigstore-test/CN=${name}`, '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'pipe' });
  return { directory, keyPath: key, certificatePath: certificate, certificatePem: readFileSync(certificate, 'utf8') };
}

export interface SigningCertificate {
  certificatePem: string;
  privateKey: KeyObject;
  identity: string;
  issuer: string;
}

/** A leaf certificate as Fulcio issues one: the identity as an email or URI SAN, the OIDC issuer in both of Fulcio's extensions, code signing only. */
export function issueCertificate(ca: CertificateAuthority, identity: string, issuer: string, { days = 1 } = {}): SigningCertificate {
  const stem = join(ca.directory, `leaf-${createHash('sha256').update(identity + issuer + Math.random()).digest('hex').slice(0, 12)}`);
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${stem}.key`, '-out', `${stem}.csr`, '-subj', '/O=sigstore-test'], { stdio: 'pipe' });
  const san = identity.includes('://') ? `URI:${identity}` : `email:${identity}`;
  writeFileSync(`${stem}.ext`, [
    `subjectAltName=critical,${san}`,
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=codeSigning',
    'authorityKeyIdentifier=keyid',
    `${fulcioIssuerV1}=DER:${Buffer.from(issuer).toString('hex').match(/../g)!.join(':')}`,
    `${fulcioIssuerV2}=ASN1:UTF8String:${issuer}`,
    '',
  ].join('\n'));
  execFileSync('openssl', ['x509', '-req', '-in', `${stem}.csr`, '-CA', ca.certificatePath, '-CAkey', ca.keyPath, '-set_serial', String(Date.now()), '-out', `${stem}.pem`, '-days', String(days), '-extfile', `${stem}.ext`], { stdio: 'pipe' });
  return { certificatePem: readFileSync(`${stem}.pem`, 'utf8'), privateKey: createPrivateKey(readFileSync(`${stem}.key`)), identity, issuer };
}

/** A transparency log: its key, and entries it vouches for with a signed entry timestamp and a one-entry checkpoint. */
export class TransparencyLog {
  readonly key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  readonly origin = 'rekor.sigstore-test.example';
  get publicDer(): Buffer {
    return this.key.publicKey.export({ type: 'spki', format: 'der' });
  }
  get logId(): Buffer {
    return sha256(this.publicDer);
  }

  /** The entry of `body` (a Rekor entry's JSON) as a bundle holds it; `integratedTime` in seconds. */
  entry(body: object, integratedTime = Math.floor(Date.now() / 1000), { withProof = true } = {}): object {
    const canonical = Buffer.from(JSON.stringify(body));
    // The SET signs the canonical JSON of these four, keys in sorted order.
    const promised = JSON.stringify({ body: b64(canonical), integratedTime, logID: this.logId.toString('hex'), logIndex: 0 });
    const root = sha256(Buffer.concat([Buffer.from([0]), canonical]));
    const note = `${this.origin} - 1\n1\n${b64(root)}\n`;
    const noteSignature = sign('sha256', Buffer.from(note), this.key.privateKey);
    return {
      logIndex: '0',
      logId: { keyId: b64(this.logId) },
      kindVersion: { kind: (body as { kind: string }).kind, version: (body as { apiVersion: string }).apiVersion },
      integratedTime: String(integratedTime),
      inclusionPromise: { signedEntryTimestamp: b64(sign('sha256', Buffer.from(promised), this.key.privateKey)) },
      ...(withProof ? { inclusionProof: { logIndex: '0', rootHash: b64(root), treeSize: '1', hashes: [], checkpoint: { envelope: `${note}\n\u2014 ${this.origin} ${b64(Buffer.concat([this.logId.subarray(0, 4), noteSignature]))}\n` } } } : {}),
      canonicalizedBody: b64(canonical),
    };
  }
}

/** A trusted_root.json naming the certificate authorities and transparency logs, no CT log, no TSA. */
export function trustedRootJson(cas: CertificateAuthority[], logs: TransparencyLog[]): string {
  return JSON.stringify({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: logs.map((log) => ({ baseUrl: `https://${log.origin}`, hashAlgorithm: 'SHA2_256', publicKey: { rawBytes: b64(log.publicDer), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start: '2020-01-01T00:00:00Z' } }, logId: { keyId: b64(log.logId) } })),
    certificateAuthorities: cas.map((ca) => ({ subject: { organization: 'sigstore-test', commonName: 'test-fulcio' }, uri: 'https://fulcio.sigstore-test.example', certChain: { certificates: [{ rawBytes: b64(derOf(ca.certificatePem)) }] }, validFor: { start: '2020-01-01T00:00:00Z' } })),
    ctlogs: [],
    timestampAuthorities: [],
  }, null, 2);
}

export type BundleSigner = { privateKey: KeyObject; publicKey: KeyObject } | SigningCertificate;

/** cosign v3's signature of `digest`: a Sigstore bundle v0.3 (DSSE, in-toto statement), with a log entry when a log is given. */
export function cosignBundle(digest: string, signer: BundleSigner, log: TransparencyLog | undefined, { integratedTime }: { integratedTime?: number } = {}): Buffer {
  const statement = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'artifact', digest: { sha256: digest.replace('sha256:', '') } }], predicateType: signPredicate, predicate: {} }));
  const signature = sign('sha256', pae(inTotoType, statement), signer.privateKey);
  const verifierPem = 'certificatePem' in signer ? signer.certificatePem : signer.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const envelope = { payload: b64(statement), payloadType: inTotoType, signatures: [{ sig: b64(signature), keyid: '' }] };
  const body = { apiVersion: '0.0.1', kind: 'dsse', spec: { envelopeHash: { algorithm: 'sha256', value: sha256(JSON.stringify(envelope)).toString('hex') }, payloadHash: { algorithm: 'sha256', value: sha256(statement).toString('hex') }, signatures: [{ signature: b64(signature), verifier: b64(verifierPem) }] } };
  return Buffer.from(JSON.stringify({
    mediaType: bundleType,
    verificationMaterial: {
      ...('certificatePem' in signer ? { certificate: { rawBytes: b64(derOf(signer.certificatePem)) } } : { publicKey: { hint: b64(sha256(signer.publicKey.export({ type: 'spki', format: 'der' }))) } }),
      tlogEntries: log ? [log.entry(body, integratedTime)] : [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    dsseEnvelope: envelope,
  }));
}

/**
 * Pushes `bundle` as cosign v3 does: a manifest of artifact type "Sigstore bundle" whose subject
 * is the signed manifest; registered in the `sha256-<hex>` fallback tag's index (what clients
 * read where the registry has no referrers API), unless `fallbackTag` is false. Returns the
 * referrer's descriptor (for a front that serves the referrers API).
 */
export async function pushBundleReferrer(registry: TestRegistry, repository: string, subjectDigest: string, bundle: Buffer, { fallbackTag = true } = {}): Promise<{ mediaType: string; digest: string; size: number; artifactType: string }> {
  const authorization: Record<string, string> = registry.login ? { authorization: `Basic ${b64(`${registry.login.user}:${registry.login.password}`)}` } : {};
  const head = await fetch(`http://${registry.host}/v2/${repository}/manifests/${subjectDigest}`, { method: 'HEAD', headers: { accept: ociManifestType, ...authorization } });
  const subject = { digest: subjectDigest, size: Number(head.headers.get('content-length')) };
  const empty = Buffer.from('{}');
  const manifest = {
    schemaVersion: 2,
    mediaType: ociManifestType,
    artifactType: bundleType,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: await pushBlob(registry, repository, empty), size: empty.length },
    layers: [{ mediaType: bundleType, digest: await pushBlob(registry, repository, bundle), size: bundle.length }],
    subject: { mediaType: ociManifestType, ...subject },
    annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': signPredicate },
  };
  const size = Buffer.byteLength(JSON.stringify(manifest));
  const digest = await pushManifest(registry, repository, `sha256:${sha256(JSON.stringify(manifest)).toString('hex')}`, manifest, ociManifestType);
  const descriptor = { mediaType: ociManifestType, digest, size, artifactType: bundleType };
  if (fallbackTag) {
    const tag = subject.digest.replace(':', '-');
    const existing = await fetch(`http://${registry.host}/v2/${repository}/manifests/${tag}`, { headers: { accept: ociIndexType, ...authorization } });
    const manifests = existing.status === 200 ? ((await existing.json()) as { manifests: object[] }).manifests : [];
    await pushManifest(registry, repository, tag, { schemaVersion: 2, mediaType: ociIndexType, manifests: [...manifests, descriptor] }, ociIndexType);
  }
  return descriptor;
}

/** cosign v2's keyless signature: the `.sig` tag's layer with the certificate and the Rekor entry (hashedrekord, SET only) in annotations. */
export async function pushCosignV2Keyless(registry: TestRegistry, repository: string, digest: string, signer: SigningCertificate, log: TransparencyLog | undefined): Promise<void> {
  const payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': `${registry.host}/${repository}` }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional: null }));
  const signature = sign('sha256', payload, signer.privateKey).toString('base64');
  const body = { apiVersion: '0.0.1', kind: 'hashedrekord', spec: { data: { hash: { algorithm: 'sha256', value: sha256(payload).toString('hex') } }, signature: { content: signature, publicKey: { content: b64(signer.certificatePem) } } } };
  const annotations: Record<string, string> = { 'dev.cosignproject.cosign/signature': signature, 'dev.sigstore.cosign/certificate': signer.certificatePem };
  if (log) {
    const entry = log.entry(body, undefined, { withProof: false }) as { integratedTime: string; canonicalizedBody: string; inclusionPromise: { signedEntryTimestamp: string } };
    annotations['dev.sigstore.cosign/bundle'] = JSON.stringify({ SignedEntryTimestamp: entry.inclusionPromise.signedEntryTimestamp, Payload: { body: entry.canonicalizedBody, integratedTime: Number(entry.integratedTime), logIndex: 0, logID: log.logId.toString('hex') } });
  }
  const config = Buffer.from('{}');
  await pushManifest(registry, repository, `${digest.replace(':', '-')}.sig`, {
    schemaVersion: 2,
    mediaType: ociManifestType,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await pushBlob(registry, repository, config), size: config.length },
    layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: await pushBlob(registry, repository, payload), size: payload.length, annotations }],
  }, ociManifestType);
}
