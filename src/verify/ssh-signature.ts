// Detached SSH signatures (`ssh-keygen -Y sign -n repo-deploy`), checked with ssh-keygen against
// an OpenSSH allowed_signers file: find the principal whose key made the signature, then verify
// the bytes under that principal and the repo-deploy namespace.
import { runProcess } from '../base/process.js';

export const signatureNamespace = 'repo-deploy';

interface KeygenResult {
  code: number | null;
  output: string;
}

// ssh-keygen reads a signature and hashes the archive: generous, but never endless.
const keygenTimeoutMs = 120_000;

async function sshKeygen(args: string[], path: string | undefined, stdinFile?: string): Promise<KeygenResult> {
  const lines: string[] = [];
  const result = await runProcess('ssh-keygen', args, { env: { PATH: path }, timeoutMs: keygenTimeoutMs, stdinFile, onLine: (line) => lines.push(line) });
  if (result.spawnError) return { code: null, output: `ssh-keygen could not be started: ${result.spawnError.message}` };
  if (result.timedOut) return { code: null, output: `ssh-keygen took longer than ${keygenTimeoutMs / 1000} seconds` };
  return { code: result.exitCode, output: lines.join('\n').trim() };
}

/** Resolves with the signer's principal, or rejects with why the signature is not good. */
export async function verifySshSignature(allowedSigners: string, dataPath: string, signaturePath: string, env: NodeJS.ProcessEnv): Promise<string> {
  const found = await sshKeygen(['-Y', 'find-principals', '-s', signaturePath, '-f', allowedSigners], env.PATH);
  const principal = found.output.split('\n')[0]?.trim();
  if (found.code !== 0 || !principal) {
    throw new Error(/Could not parse|invalid|not a signature|Couldn't parse/i.test(found.output)
      ? `the signature is malformed (${found.output.split('\n')[0]})`
      : 'the signature was made by a key that is not in allowed-signers');
  }
  const verified = await sshKeygen(['-Y', 'verify', '-f', allowedSigners, '-I', principal, '-n', signatureNamespace, '-s', signaturePath], env.PATH, dataPath);
  if (verified.code !== 0) {
    throw new Error(/namespace/i.test(verified.output)
      ? `the signature is not for the "${signatureNamespace}" namespace`
      : `the signature by ${principal} does not match the archive (${verified.output.split('\n')[0]})`);
  }
  return principal;
}
