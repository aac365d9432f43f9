// Git content the operator's keys vouch for: the commit (or, for a tag ref, the tag) must carry
// a good signature by an allowed signer; SSH signatures through gpg.ssh.allowedSignersFile, GPG
// ones through a GnuPG home in the cache holding gpg-keyring. With refuse-rewrites, a new
// commit must descend from the live one.
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheLayoutFor } from '../core/cache-layout.js';
import type { GitSettings } from '../core/settings.js';
import { usageError } from '../base/errors.js';
import { runProcess } from '../base/process.js';

/** Environment additions for `git verify-commit` / `verify-tag`. */
export async function verificationEnvironment(settings: GitSettings, inherited: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {};
  if (settings.gpgKeyring) {
    const home = cacheLayoutFor(settings.cache).gnupgHome;
    await mkdir(home, { recursive: true, mode: 0o700 });
    // Imported afresh at each verification, so a changed keyring takes effect.
    const output: string[] = [];
    const result = await runProcess('gpg', ['--batch', '--quiet', '--homedir', home, '--import', settings.gpgKeyring], {
      env: { PATH: inherited.PATH, HOME: home },
      timeoutMs: settings.gitTimeoutMs,
      onLine: (line) => output.push(line),
    });
    if (result.exitCode !== 0) {
      const reason = result.spawnError ? `gpg could not be started (${result.spawnError.message})` : output.find((line) => line.trim()) ?? `gpg exited with ${result.exitCode ?? result.signal}`;
      throw usageError(`cannot import gpg-keyring ${settings.gpgKeyring}: ${reason}`, 'give an exported public keyring (gpg --export KEYID > file), or install gnupg');
    }
    env.GNUPGHOME = home;
  }
  return env;
}

/** Why git refused a signature, in plain words. */
export function describeSignatureFailure(output: string): string {
  if (/no signature found/i.test(output)) return 'it is not signed';
  if (/allowedSignersFile needs to be configured/i.test(output)) return 'it is SSH-signed, but allowed-signers is not set';
  if (/No principal matched|not in the allowed signers|No public key|NO_PUBKEY|ERRSIG|Can't check signature/i.test(output)) return 'it is signed by a key that is not an allowed signer';
  if (/BAD signature|BADSIG|Signature verification failed/i.test(output)) return 'its signature does not match its content';
  return `its signature is not good (${output.split('\n').find((line) => line.trim()) ?? 'no detail'})`;
}

export const isShallow = (mirror: string) => stat(join(mirror, '.git', 'shallow')).then(() => true, () => false);
