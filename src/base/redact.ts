// Credentials must never reach a log line, an error message or the state file. Two kinds exist:
// passwords and tokens inside URLs (recognised by shape) and secrets the agent was given (S3
// keys, tokens), registered here when the settings are read.

const registeredSecrets = new Set<string>();

/** Remember a secret so that every later redact() masks it wherever it appears. */
export function registerSecret(secret: string | undefined): void {
  // Very short values would mask ordinary words; real keys and tokens are longer.
  if (secret && secret.length >= 4) registeredSecrets.add(secret);
}

// scheme://user:password@host  and  scheme://token@host (a bare token before @ is a secret
// for https, but for ssh-style URLs the user name is not: git@host stays readable).
const urlUserInfo = /\b([a-z][a-z0-9+.-]*:\/\/)([^/@\s:]*):([^/@\s]*)@/gi;
const httpBareToken = /\b(https?:\/\/|git\+https:\/\/)([^/@\s:]+)@/gi;

export function redact(text: string): string {
  let result = text.replace(urlUserInfo, (_match, scheme: string, user: string) => `${scheme}${user}:***@`);
  result = result.replace(httpBareToken, (_match, scheme: string) => `${scheme}***@`);
  for (const secret of registeredSecrets) {
    if (result.includes(secret)) result = result.split(secret).join('***');
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret && result.includes(encoded)) result = result.split(encoded).join('***');
  }
  return result;
}
