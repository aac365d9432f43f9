// Content the operator's keys do not vouch for: the check fails with exit status 8, no hook runs,
// and the revision is remembered (held back) so it is not downloaded again at every check.
import { createHash } from 'node:crypto';
import type { TrustSettings } from '../core/settings.js';
import { DeployError } from '../base/errors.js';
import { readSmallRegularFile } from '../base/small-file.js';
import type { RemoteState } from '../core/remote-contract.js';

export class VerificationError extends DeployError {
  constructor(
    message: string,
    /** The refused revision and the remote's answer for it, to recognise it without a download. */
    readonly revision: string,
    readonly remoteState: RemoteState,
    /**
     * False where the signature may simply not be there yet (an OCI artifact is pushed, then
     * signed): the revision is looked at again at the next check instead of being held back.
     * Checking costs a few small requests there, no download.
     */
    readonly remember = true,
  ) {
    super('verification', message, { hint: remember ? 'the live release is unchanged; it is not downloaded again until the remote changes' : 'the live release is unchanged; the next check looks for a signature again' });
    this.name = 'VerificationError';
  }
}

/**
 * What a refusal was judged under: the trust settings and the content of the files they name.
 * A refusal is forgotten when these change (a signer added, refuse-rewrites turned off).
 */
export async function trustFingerprint(settings: TrustSettings): Promise<string> {
  // Read only as regular files of a bounded size: a FIFO named by mistake hung every check here.
  const content = async (path: string | undefined) => {
    if (!path) return '';
    try {
      return readSmallRegularFile(path, 4 << 20);
    } catch {
      return 'unreadable';
    }
  };
  return createHash('sha256')
    .update(JSON.stringify([settings.checksum ?? '', settings.refuseRewrites, await content(settings.allowedSigners), await content(settings.gpgKeyring), await content(settings.cosignPublicKey), settings.cosignIdentity ?? '', settings.cosignIssuer ?? '', await content(settings.sigstoreTrustedRoot)]))
    .digest('hex')
    .slice(0, 16);
}

/** The trust settings that ask for verified content, by name; none: anything may deploy. */
export function verificationAskedBy(settings: TrustSettings): string[] {
  const asked: Array<[string, unknown]> = [
    ['allowed-signers', settings.allowedSigners],
    ['checksum', settings.checksum],
    ['gpg-keyring', settings.gpgKeyring],
    ['cosign-public-key', settings.cosignPublicKey],
    ['cosign-identity', settings.cosignIdentity],
  ];
  return asked.filter(([, value]) => value !== undefined).map(([name]) => name);
}

/**
 * Why a release on disk may not go live again (a rollback, the fleet's rollback, the repair of a
 * missing live release), or undefined when it may: with a trust setting set, a release deployed
 * while none was (or adopted) would put unverified content live. A release of an older agent,
 * which did not record it, is let through.
 */
export function unverifiedRefusal(settings: TrustSettings, release: { id: string; verified?: boolean }): string | undefined {
  const asked = verificationAskedBy(settings);
  if (asked.length === 0 || release.verified !== false) return undefined;
  return `release ${release.id} was deployed without verification, and ${asked.join(' and ')} ${asked.length > 1 ? 'ask' : 'asks'} for verified content`;
}
