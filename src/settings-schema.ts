// The one list of settings: each key's name, how its value is read, its default and its
// documentation. The config file, the environment (REPO_DEPLOY_<KEY>), the flags and the
// README's table all come from here, so a new setting is added in one place.

export type SettingKind = 'string' | 'path' | 'seconds' | 'count' | 'bytes' | 'boolean' | 'enum' | 'secret';

export interface SettingSpec {
  key: string;
  kind: SettingKind;
  /** The default as it would be written in the config file; undefined means "not set". */
  defaultValue?: string;
  /** For 'enum': the accepted words. */
  choices?: readonly string[];
  /** For 'count' and 'seconds': the smallest accepted value. */
  minimum?: number;
  description: string;
}

export const settingSpecs = [
  { key: 'remote', kind: 'string', description: 'What to deploy: a git URL, an http(s) or s3 zip URL, or a local zip (see Remotes).' },
  { key: 'local', kind: 'path', defaultValue: '/var/deploy/current', description: 'The live path the application reads; a symlink to releases/<id> beside it.' },
  { key: 'cache', kind: 'path', defaultValue: '/var/cache/repo-deploy', description: 'Work directory: downloads, git mirror, state, lock.' },
  { key: 'schedule', kind: 'string', defaultValue: '* * * * *', description: 'Cron expression (5 fields, or 6 with seconds) for the daemon\'s checks.' },
  { key: 'pre-hooks', kind: 'path', defaultValue: '/etc/repo-deploy/pre-update.d', description: 'Directory of pre-update hooks; a non-zero exit blocks the update.' },
  { key: 'post-hooks', kind: 'path', defaultValue: '/etc/repo-deploy/post-update.d', description: 'Directory of post-update hooks; a non-zero exit reverts the update.' },
  { key: 'hook-timeout', kind: 'seconds', defaultValue: '300', minimum: 1, description: 'Seconds a hook may run before it and its process group are killed (counts as failed).' },
  { key: 'keep-releases', kind: 'count', defaultValue: '5', minimum: 2, description: 'Releases kept on disk; the live one and the one before it are never pruned.' },
  { key: 'aws-access-key', kind: 'secret', description: 'S3 access key id (with aws-secret-key).' },
  { key: 'aws-secret-key', kind: 'secret', description: 'S3 secret access key (with aws-access-key). Never logged.' },
  { key: 'aws-region', kind: 'string', description: 'S3 region; else the AWS SDK\'s own lookup.' },
  { key: 's3-endpoint', kind: 'string', description: 'S3-compatible endpoint such as http://127.0.0.1:4569; path-style addressing is then used.' },
  { key: 'http-timeout', kind: 'seconds', defaultValue: '30', minimum: 1, description: 'Seconds to connect, to receive response headers, and within which a download must make progress (a span with nothing, or two in a row under 1 KiB, fail it).' },
  { key: 'download-timeout', kind: 'seconds', defaultValue: '1800', minimum: 1, description: 'Seconds a whole check and download may take.' },
  { key: 'max-redirects', kind: 'count', defaultValue: '5', minimum: 0, description: 'HTTP redirects followed before the check fails.' },
  { key: 'max-unpacked-size', kind: 'bytes', defaultValue: '4G', description: 'Largest total uncompressed size of an archive (suffixes K, M, G); stops zip bombs.' },
  { key: 'max-download-size', kind: 'bytes', description: 'Largest archive downloaded (suffixes K, M, G); a larger one, or an endless body, fails the check. Default: max-unpacked-size.' },
  { key: 'allow-insecure-redirects', kind: 'boolean', defaultValue: 'no', description: 'yes follows a redirect from https:// to plain http://; by default such a downgrade fails the check.' },
  { key: 'max-entries', kind: 'count', defaultValue: '200000', minimum: 1, description: 'Largest number of entries in an archive.' },
  { key: 'git-timeout', kind: 'seconds', defaultValue: '300', minimum: 1, description: 'Seconds one git operation may take before git and its children are ended.' },
  { key: 'git-submodules', kind: 'enum', defaultValue: 'off', choices: ['off', 'shallow', 'recursive'], description: 'Check out submodules: off, shallow (one level, depth 1) or recursive.' },
  { key: 'ssh-key', kind: 'path', description: 'Private key file for git over SSH.' },
  { key: 'ssh-known-hosts', kind: 'path', description: 'known_hosts file for git over SSH; unknown host keys are refused.' },
  { key: 'ssh-strict-host-key-checking', kind: 'enum', defaultValue: 'yes', choices: ['yes', 'accept-new'], description: 'yes refuses unknown SSH host keys; accept-new records a new host\'s key on first contact.' },
  { key: 'splay', kind: 'seconds', defaultValue: '0', minimum: 0, description: 'Up to this many seconds of random delay before each scheduled check, so a fleet does not hit the remote at once.' },
  { key: 'max-attempts', kind: 'count', defaultValue: '3', minimum: 1, description: 'Failed updates of one revision (blocked or reverted) before it is held back until the remote changes or `repo-deploy retry`; also failed checks in a row before /healthz reports unhealthy.' },
  { key: 'retry-backoff', kind: 'seconds', defaultValue: '10', minimum: 1, description: 'After a failed check, scheduled checks wait this long, doubled at each further failure.' },
  { key: 'max-backoff', kind: 'seconds', defaultValue: '900', minimum: 1, description: 'The longest wait between checks after repeated failures.' },
  { key: 'stop-grace', kind: 'seconds', defaultValue: '30', minimum: 0, description: 'On SIGTERM or SIGINT, seconds a running hook may go on before its process group is ended.' },
  { key: 'http-listen', kind: 'string', description: 'Address for /healthz and /metrics, e.g. 127.0.0.1:9464; off when unset.' },
  { key: 'allowed-signers', kind: 'path', description: 'OpenSSH allowed_signers file: when set, only archives with a good `<remote>.sig` and commits or tags signed by these keys are deployed.' },
  { key: 'checksum', kind: 'string', description: 'sha256:<hex> of the one archive allowed to deploy.' },
  { key: 'gpg-keyring', kind: 'path', description: 'A GnuPG public keyring (exported keys): git commits and tags may also be GPG-signed by these keys.' },
  { key: 'verify-ignore', kind: 'string', description: 'Comma-separated glob patterns of paths that hooks add to a release (e.g. shared, shared/**): `verify` and `rollback` do not count them as differences.' },
  { key: 'refuse-rewrites', kind: 'boolean', defaultValue: 'no', description: 'yes refuses a git revision that does not descend from the deployed one (no downgrades by force-push).' },
  { key: 'log-format', kind: 'enum', defaultValue: 'text', choices: ['text', 'json'], description: 'Log lines as plain text or JSON lines.' },
] as const satisfies readonly SettingSpec[];

export type SettingKey = (typeof settingSpecs)[number]['key'];

export const knownSettingKeys: ReadonlySet<string> = new Set(settingSpecs.map((spec) => spec.key));

/** REPO_DEPLOY_<KEY>: dashes become underscores, upper case. */
export function environmentName(key: string): string {
  return `REPO_DEPLOY_${key.toUpperCase().replace(/-/g, '_')}`;
}
