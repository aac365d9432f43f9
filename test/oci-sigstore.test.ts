// Cosign v3 and keyless signatures against a real registry (Debian's docker-registry) and a
// Sigstore of the test's own (helpers/sigstore-fakes.ts: a CA made by openssl for Fulcio, an
// ECDSA key for Rekor, the trusted_root.json naming them): Sigstore bundles found through the
// referrers fallback tag (docker-registry 2.8 has no referrers API) and through the referrers API
// (a front that answers it), keyless certificates checked for identity, issuer, chain and the
// log's time, cosign v2's keyless `.sig` tag; every refusal exits 8 with the live release kept.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { makeSandbox, runCli, type Sandbox } from './helpers/cli.js';
import { startRegistryFront } from './helpers/oci-fronts.js';
import { fluxLayerType, ociManifestType, pushArtifact, pushBlob, pushManifest, registryBinary, sha256Digest, startRegistry, tarGzOf, type TestRegistry } from './helpers/oci-registry.js';
import { bundleType, cosignBundle, issueCertificate, makeCertificateAuthority, pushBundleReferrer, pushCosignV2Keyless, TransparencyLog, trustedRootJson, type CertificateAuthority } from './helpers/sigstore-fakes.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

const skip = existsSync(registryBinary) ? false : `needs Debian's docker-registry (${registryBinary}); .ci/run installs it`;

const identity = 'https://github.com/acme/site/.github/workflows/release.yml@refs/heads/main';
const issuer = 'https://token.actions.githubusercontent.com';
const repository = 'apps/site';

interface Setup {
  registry: TestRegistry;
  sandbox: Sandbox;
  ca: CertificateAuthority;
  log: TransparencyLog;
  root: string;
  publish(version: string): Promise<string>;
  once(host?: string): ReturnType<typeof runCli>;
}

/** A registry, a CA and a log, a trusted root naming them, and a sandbox whose config is `config` (paths under the setup's root). */
async function setup(t: TestContext, config: (root: string) => string): Promise<Setup> {
  const registry = await startRegistry(t);
  const root = await temporaryDirectory(t);
  const ca = makeCertificateAuthority(root);
  const log = new TransparencyLog();
  await writeFile(join(root, 'trusted_root.json'), trustedRootJson([ca], [log]));
  const sandbox = await makeSandbox(root, `oci-insecure = yes\n${config(root)}`);
  return {
    registry,
    sandbox,
    ca,
    log,
    root,
    publish: (version) => pushArtifact(registry, repository, 'stable', [{ mediaType: fluxLayerType, data: tarGzOf({ 'index.html': `version ${version}\n` }) }]),
    once: (host = registry.host) => runCli(sandbox.args(`oci://${host}/${repository}:stable`), { HOME: root }),
  };
}

const keyless = (root: string) => `cosign-identity = ${identity}\ncosign-issuer = ${issuer}\nsigstore-trusted-root = ${join(root, 'trusted_root.json')}\n`;

/** Publishes version 1, signed keyless by the right identity, and deploys it. */
async function deployFirst(t: TestContext, s: Setup): Promise<string> {
  const first = await s.publish('1');
  await pushBundleReferrer(s.registry, repository, first, cosignBundle(first, issueCertificate(s.ca, identity, issuer), s.log));
  const result = await s.once();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  return first;
}

test('a cosign v3 bundle signed by the key of cosign-public-key, found through the referrers fallback tag (docker-registry has no referrers API), deploys', { skip }, async (t) => {
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const s = await setup(t, (root) => `cosign-public-key = ${join(root, 'cosign.pub')}\n`);
  await writeFile(join(s.root, 'cosign.pub'), key.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const digest = await s.publish('1');
  // As cosign v3 by key with the transparency log on: the entry is there, and (no trusted root) not required.
  await pushBundleReferrer(s.registry, repository, digest, cosignBundle(digest, key, s.log));
  const result = await s.once();
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /is signed with cosign by .*cosign\.pub/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');

  const stranger = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const second = await s.publish('2');
  await pushBundleReferrer(s.registry, repository, second, cosignBundle(second, stranger, undefined));
  const refused = await s.once();
  assert.equal(refused.code, 8, refused.stderr);
  assert.match(refused.stderr, /a signature is by none of the keys of cosign-public-key/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('keyless: a bundle whose certificate names cosign-identity and cosign-issuer and chains to the trusted root deploys, found through the referrers API', { skip }, async (t) => {
  const s = await setup(t, keyless);
  const front = await startRegistryFront(t, s.registry, 'referrers');
  const digest = await s.publish('1');
  const referrer = await pushBundleReferrer(s.registry, repository, digest, cosignBundle(digest, issueCertificate(s.ca, identity, issuer), s.log), { fallbackTag: false });
  front.referrers.set(digest, [referrer]);
  const result = await s.once(front.host);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, new RegExp(`is signed with cosign by ${identity.replaceAll('.', '\\.')} \\(issuer ${issuer.replaceAll('.', '\\.')}\\)`));
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  assert.ok(front.requests.some((line) => line.startsWith(`GET /v2/${repository}/referrers/${digest}`)), front.requests.join('\n'));
  assert.ok(!front.requests.some((line) => line.includes(`/manifests/${digest.replace(':', '-')} `)), 'the fallback tag is not read where the referrers API answers');
});

test('keyless: another identity, another issuer, a certificate of another CA, or an email where a workflow was asked: refused (exit 8), the live release kept', { skip }, async (t) => {
  const s = await setup(t, keyless);
  await deployFirst(t, s);
  const strangerCa = makeCertificateAuthority(s.root, 'other-fulcio');
  const cases: Array<[string, ReturnType<typeof issueCertificate>, RegExp]> = [
    ['another identity', issueCertificate(s.ca, 'https://github.com/mallory/site/.github/workflows/release.yml@refs/heads/main', issuer), /signer is not the one asked for \(certificate identity error/],
    ['another issuer', issueCertificate(s.ca, identity, 'https://accounts.google.com'), /signer is not the one asked for \(invalid certificate extension - expected issuer=/],
    ['another CA', issueCertificate(strangerCa, identity, issuer), /certificate does not chain to sigstore-trusted-root/],
    ['an identity that only contains the one asked for', issueCertificate(s.ca, `${identity}-evil`, issuer), /signer is not the one asked for/],
  ];
  for (const [index, [what, certificate, expected]] of cases.entries()) {
    const digest = await s.publish(`${index + 2}`);
    await pushBundleReferrer(s.registry, repository, digest, cosignBundle(digest, certificate, s.log));
    const result = await s.once();
    assert.equal(result.code, 8, `${what}: ${result.stderr}`);
    assert.match(result.stderr, expected, what);
    assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n', what);
  }
});

test('keyless: no log entry (no time to check the certificate at), an entry signed by another log, or a log time after the certificate expired: refused (exit 8)', { skip }, async (t) => {
  const s = await setup(t, keyless);
  await deployFirst(t, s);
  const certificate = issueCertificate(s.ca, identity, issuer);
  const cases: Array<[string, (digest: string) => Buffer, RegExp]> = [
    ['no log entry', (digest) => cosignBundle(digest, certificate, undefined), /time cannot be vouched for \(expected 1 timestamps, got 0\)/],
    ['another log', (digest) => cosignBundle(digest, certificate, new TransparencyLog()), /transparency log entry does not check out/],
    ['logged after expiry', (digest) => cosignBundle(digest, certificate, s.log, { integratedTime: Math.floor(Date.now() / 1000) + 3 * 86_400 }), /certificate does not chain to sigstore-trusted-root/],
  ];
  for (const [index, [what, bundleOf, expected]] of cases.entries()) {
    const digest = await s.publish(`${index + 2}`);
    await pushBundleReferrer(s.registry, repository, digest, bundleOf(digest));
    const result = await s.once();
    assert.equal(result.code, 8, `${what}: ${result.stderr}`);
    assert.match(result.stderr, expected, what);
    assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n', what);
  }
});

test('a bundle over another digest (replayed from the release before), or whose statement was edited after signing: refused (exit 8)', { skip }, async (t) => {
  const s = await setup(t, keyless);
  const first = await deployFirst(t, s);
  const certificate = issueCertificate(s.ca, identity, issuer);
  const replayed = await s.publish('2');
  await pushBundleReferrer(s.registry, repository, replayed, cosignBundle(first, certificate, s.log));
  const replay = await s.once();
  assert.equal(replay.code, 8, replay.stderr);
  assert.match(replay.stderr, new RegExp(`a Sigstore bundle covers ${first}, not ${replayed}`));

  // The statement rewritten to name version 3, the signature left as it was (over version 1's).
  const edited = await s.publish('3');
  const bundle = JSON.parse(cosignBundle(first, certificate, s.log).toString()) as { dsseEnvelope: { payload: string } };
  const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString()) as { subject: Array<{ digest: { sha256: string } }> };
  statement.subject[0]!.digest.sha256 = edited.slice(7);
  bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
  await pushBundleReferrer(s.registry, repository, edited, Buffer.from(JSON.stringify(bundle)));
  const forged = await s.once();
  assert.equal(forged.code, 8, forged.stderr);
  assert.match(forged.stderr, /a keyless signature's (transparency log entry does not check out|signature does not verify)/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test("keyless cosign v2 (the .sig tag's certificate and Rekor bundle) deploys; the same without the Rekor entry is refused", { skip }, async (t) => {
  const s = await setup(t, keyless);
  const certificate = issueCertificate(s.ca, identity, issuer);
  const first = await s.publish('1');
  await pushCosignV2Keyless(s.registry, repository, first, certificate, s.log);
  const result = await s.once();
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /is signed with cosign by https:\/\/github\.com\/acme/);
  const second = await s.publish('2');
  await pushCosignV2Keyless(s.registry, repository, second, certificate, undefined);
  const refused = await s.once();
  assert.equal(refused.code, 8, refused.stderr);
  assert.match(refused.stderr, /time cannot be vouched for/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('absurd keyless settings are usage errors (exit 2) naming the setting, before anything is downloaded; check-config reports the policy', { skip }, async (t) => {
  const s = await setup(t, () => '');
  const digest = await s.publish('1');
  await pushBundleReferrer(s.registry, repository, digest, cosignBundle(digest, issueCertificate(s.ca, identity, issuer), s.log));
  const remote = `oci://${s.registry.host}/${repository}:stable`;
  const run = (env: Record<string, string>, args = s.sandbox.args(remote)) => runCli(args, { HOME: s.root, ...env });
  const rootPath = join(s.root, 'trusted_root.json');
  const halfKeyless = await run({ REPO_DEPLOY_COSIGN_IDENTITY: identity, REPO_DEPLOY_SIGSTORE_TRUSTED_ROOT: rootPath });
  assert.equal(halfKeyless.code, 2, halfKeyless.stderr);
  assert.match(halfKeyless.stderr, /keyless cosign signatures need cosign-identity, cosign-issuer and sigstore-trusted-root together; cosign-issuer is not set/);
  await writeFile(join(s.root, 'garbage.json'), '{"tlogs": "no"}');
  const badRoot = await run({ REPO_DEPLOY_COSIGN_IDENTITY: identity, REPO_DEPLOY_COSIGN_ISSUER: issuer, REPO_DEPLOY_SIGSTORE_TRUSTED_ROOT: join(s.root, 'garbage.json') });
  assert.equal(badRoot.code, 2, badRoot.stderr);
  assert.match(badRoot.stderr, /sigstore-trusted-root = .*garbage\.json (cannot be read as a trusted root|lists no certificate authority)/);
  const fifoRoot = await run({ REPO_DEPLOY_COSIGN_IDENTITY: identity, REPO_DEPLOY_COSIGN_ISSUER: issuer, REPO_DEPLOY_SIGSTORE_TRUSTED_ROOT: '/dev/zero' });
  assert.equal(fifoRoot.code, 2, fifoRoot.stderr);
  assert.match(fifoRoot.stderr, /sigstore-trusted-root = \/dev\/zero cannot be read/);
  const rootAlone = await run({ REPO_DEPLOY_SIGSTORE_TRUSTED_ROOT: rootPath });
  assert.equal(rootAlone.code, 2, rootAlone.stderr);
  assert.match(rootAlone.stderr, /sigstore-trusted-root is set, but neither cosign-public-key nor cosign-identity says whose signature to require/);
  assert.equal(existsSync(s.sandbox.live), false);

  const report = await run({ REPO_DEPLOY_COSIGN_IDENTITY: identity, REPO_DEPLOY_COSIGN_ISSUER: issuer, REPO_DEPLOY_SIGSTORE_TRUSTED_ROOT: rootPath }, ['check-config', ...s.sandbox.args(remote).filter((argument) => argument !== '-f')]);
  assert.equal(report.code, 0, report.stderr);
  assert.match(report.stdout, new RegExp(`ok +oci: .*cosign signature by keyless by ${identity.replaceAll('.', '\\.')} from ${issuer.replaceAll('.', '\\.')}, checked against .*trusted_root\\.json \\(1 certificate authority, 1 transparency log, 0 CT logs\\)`));
});

test('cosign settings on a remote that is not oci:// are a usage error (exit 2): they would let an archive deploy unverified', async (t) => {
  const root = await temporaryDirectory(t);
  await writeFile(join(root, 'cosign.pub'), generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const sandbox = await makeSandbox(root, `cosign-public-key = ${join(root, 'cosign.pub')}\n`);
  await zipTree({ 'index.html': 'unsigned\n' }, join(root, 'site.zip'), root);
  const result = await runCli(sandbox.args(`file://${join(root, 'site.zip')}`), { HOME: root });
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /cosign-public-key is set, but the remote .*site\.zip is not an oci:\/\/ remote: cosign vouches only for OCI artifacts/);
  assert.equal(existsSync(sandbox.live), false);
});

test('a registry that lists 40 bundles that are not there, and one that is not JSON, before the good one: at most 16 are read, the revision is refused (exit 8) saying why, the live release kept', { skip }, async (t) => {
  const s = await setup(t, keyless);
  const front = await startRegistryFront(t, s.registry, 'referrers');
  const first = await s.publish('1');
  front.referrers.set(first, [await pushBundleReferrer(s.registry, repository, first, cosignBundle(first, issueCertificate(s.ca, identity, issuer), s.log), { fallbackTag: false })]);
  assert.equal((await s.once(front.host)).code, 0);

  const second = await s.publish('2');
  const missing = Array.from({ length: 40 }, (_, index) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${index.toString(16).padStart(64, '0')}`, size: 500, artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' }));
  const junk = await pushBundleReferrer(s.registry, repository, second, Buffer.from('this is not a bundle'), { fallbackTag: false });
  const good = await pushBundleReferrer(s.registry, repository, second, cosignBundle(second, issueCertificate(s.ca, identity, issuer), s.log), { fallbackTag: false });
  // A referrer whose bundle layer claims 50 MiB: passed over unread, not a failed check.
  const bundleDigest = await pushBlob(s.registry, repository, cosignBundle(second, issueCertificate(s.ca, identity, issuer), s.log));
  const empty = await pushBlob(s.registry, repository, Buffer.from('{}'));
  const hugeManifest = { schemaVersion: 2, mediaType: ociManifestType, artifactType: bundleType, config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 }, layers: [{ mediaType: bundleType, digest: bundleDigest, size: 50 << 20 }] };
  const huge = { mediaType: ociManifestType, digest: await pushManifest(s.registry, repository, sha256Digest(JSON.stringify(hugeManifest)), hugeManifest, ociManifestType), size: 0, artifactType: bundleType };
  front.referrers.set(second, [huge, junk, ...missing, good]);
  const before = front.requests.length;
  const refused = await s.once(front.host);
  assert.equal(refused.code, 8, refused.stderr);
  assert.match(refused.stderr, /a Sigstore bundle cannot be read \(Unexpected token/);
  assert.match(refused.stderr, /a Sigstore bundle of 52428800 bytes \(more than 1048576\) was passed over/);
  assert.match(refused.stderr, /14 referrers listed as Sigstore bundles are not in the registry or hold none \(sha256:0{64}, …\)/);
  assert.doesNotMatch(refused.stderr, /remembered/);
  const manifestReads = front.requests.slice(before).filter((line) => /^GET \/v2\/apps\/site\/manifests\/sha256:/.test(line));
  assert.ok(manifestReads.length <= 17, `${manifestReads.length} manifests read`);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');

  // The good bundle listed first: deployed at the next check (a cosign refusal is not remembered).
  front.referrers.set(second, [good, huge, junk, ...missing]);
  const deployed = await s.once(front.host);
  assert.equal(deployed.code, 0, deployed.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
});
