// The one list of settings: each key's name, how its value is read, its default and its
// documentation. The config file, the environment (REPO_DEPLOY_<KEY>), the flags and the
// README's table all come from here, so a new setting is added in one place.
import type { DeployWindow } from './deploy-window.js';
import type { Remote } from './remote.js';

export type SettingKind =
  | 'string' | 'path' | 'seconds' | 'count' | 'bytes' | 'boolean' | 'enum' | 'secret'
  | 'remote' | 'listen' | 'checksum' | 'list' | 'secret-source' | 'windows' | 'timezone' | 'redis-url' | 'count-or-percent';

export interface SettingSpec {
  key: string;
  /** The property of Settings that holds the value read. */
  field: string;
  kind: SettingKind;
  /** The default as it would be written in the config file; undefined means "not set". */
  defaultValue?: string;
  /** When not set, the value of this other setting is taken. */
  defaultFrom?: string;
  /** For 'enum': the accepted words. */
  choices?: readonly string[];
  /** For 'count' and 'seconds': the smallest accepted value. */
  minimum?: number;
  /** For 'seconds': the largest accepted value; by default maximumSeconds. */
  maximum?: number;
  description: string;
}

/** A number of servers, or a percentage of the fleet's live members ("2", "25%"). */
export type CountOrPercent = { count: number } | { percent: number };

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * The longest duration a 'seconds' setting accepts: Node's timers take at most 2^31-1 ms (24.8
 * days); a longer one warns TimeoutOverflowWarning and fires after 1 ms, so a hook-timeout of 30
 * days made every hook "time out" at once.
 */
export const maximumSeconds = Math.floor((2 ** 31 - 1) / 1000);

export const settingSpecs = [
  { key: 'remote', field: 'remote', kind: 'remote', description: 'What to deploy: a git URL, an http(s) or s3 zip URL, or a local zip (see [Remotes](#remotes)).' },
  { key: 'group', field: 'group', kind: 'string', description: 'In an app file of `conf.d/`: apps with the same group share one live path and are deployed as one release, each remote in a subdirectory named after its app, gated, switched and reverted together ([Many apps](#many-apps-on-one-host)).' },
  { key: 'local', field: 'local', kind: 'path', defaultValue: '/var/deploy/current', description: 'The live path the application reads; a symlink to `releases/<id>` beside it.' },
  { key: 'cache', field: 'cache', kind: 'path', defaultValue: '/var/cache/repo-deploy', description: 'Work directory: downloads, git mirror, state, lock.' },
  { key: 'schedule', field: 'schedule', kind: 'string', defaultValue: '* * * * *', description: 'Cron expression (5 fields, or 6 with seconds) for the daemon\'s checks.' },
  { key: 'pre-hooks', field: 'preHooks', kind: 'path', defaultValue: '/etc/repo-deploy/pre-update.d', description: 'Directory of pre-update hooks; a non-zero exit blocks the update.' },
  { key: 'post-hooks', field: 'postHooks', kind: 'path', defaultValue: '/etc/repo-deploy/post-update.d', description: 'Directory of post-update hooks; a non-zero exit reverts the update.' },
  { key: 'hook-timeout', field: 'hookTimeoutMs', kind: 'seconds', defaultValue: '300', minimum: 1, description: 'Seconds a hook may run before it and its process group are killed (counts as failed).' },
  { key: 'keep-releases', field: 'keepReleases', kind: 'count', defaultValue: '5', minimum: 2, description: 'Releases kept on disk (at least 2); the live one and the one before it are never pruned.' },
  { key: 'health-check', field: 'healthCheck', kind: 'string', description: 'The health gate: a command (run like a hook, with its environment and `REPO_DEPLOY_PHASE=health-check`; exit 0 = healthy) or an `http(s)://` URL that must answer 2xx, after the post-update hooks of an update. A failure reverts the update. Off when unset.' },
  { key: 'health-timeout', field: 'healthTimeoutMs', kind: 'seconds', defaultValue: '10', minimum: 1, description: 'Seconds one health check may take (a command is then ended with its process group).' },
  { key: 'health-settle', field: 'healthSettleMs', kind: 'seconds', defaultValue: '0', minimum: 0, description: 'Seconds the health check must keep passing, tried every `health-interval`, before the update is committed; `0` checks once.' },
  { key: 'health-interval', field: 'healthIntervalMs', kind: 'seconds', defaultValue: '5', minimum: 1, description: 'Seconds between health checks during `health-settle`.' },
  { key: 'fleet-redis', field: 'fleetRedis', kind: 'redis-url', description: 'Coordinates rollouts across a fleet: `redis://[user:password@]host:port[/db]`, `rediss://` (TLS), `redis-sentinel://[user:password@]host:port[,host:port]/PRIMARY[/db]` (the primary found through Sentinel at each check, so a failover is followed), or `redis-cluster://[user:password@]host:port[,host:port]` (a Redis Cluster through any of its nodes). The password is never logged or shown. Off when unset. See [docs/fleet.md](docs/fleet.md).' },
  { key: 'fleet-name', field: 'fleetName', kind: 'string', description: 'The fleet\'s key namespace in Redis, so several fleets share one Redis; required with `fleet-redis`.' },
  { key: 'host-id', field: 'hostId', kind: 'string', description: 'This server\'s name in the fleet. Default: the host name.' },
  { key: 'max-parallel', field: 'maxParallel', kind: 'count-or-percent', defaultValue: '1', minimum: 1, description: 'At most this many servers (or `N%` of the live members) between the start of their pre-update hooks and the end of their health gate (or revert).' },
  { key: 'canary', field: 'canary', kind: 'count-or-percent', defaultValue: '0', description: 'A new revision is first deployed by at most this many servers (or `N%`); the others wait until that many have passed the gate. A failed canary halts the revision.' },
  { key: 'max-failed-hosts', field: 'maxFailedHosts', kind: 'count', defaultValue: '1', minimum: 1, description: 'Servers that failed the same revision (blocked, reverted, failed the gate) before it is halted for the whole fleet.' },
  { key: 'min-healthy', field: 'minHealthy', kind: 'count-or-percent', defaultValue: '0', description: 'At least this many of the live members (or `N%`, rounded down) must not be updating once another starts: the capacity a rollout leaves serving.' },
  { key: 'bake-time', field: 'bakeTimeMs', kind: 'seconds', defaultValue: '0', description: 'Seconds the fleet waits after a server commits a revision before the next server starts it, so a problem that shows late is seen before it spreads.' },
  { key: 'canary-promote', field: 'canaryPromote', kind: 'enum', defaultValue: 'auto', choices: ['auto', 'manual'], description: '`manual`: once the canaries have passed their gate, the rest of the fleet waits for `repo-deploy fleet promote`.' },
  { key: 'fleet-lease', field: 'fleetLeaseMs', kind: 'seconds', defaultValue: '60', minimum: 3, description: 'Seconds a slot and a membership last unless renewed: a server that dies frees its slot within this time.' },
  { key: 'fleet-tls-ca', field: 'fleetTlsCa', kind: 'path', description: 'With `rediss://`: a PEM file of the CA certificates that signed the Redis server\'s certificate (a private CA); else the system\'s and `NODE_EXTRA_CA_CERTS`.' },
  { key: 'fleet-tls-cert', field: 'fleetTlsCert', kind: 'path', description: 'With `rediss://`: this server\'s client certificate (PEM), for a Redis that requires one (`tls-auth-clients yes`); with `fleet-tls-key`.' },
  { key: 'fleet-tls-key', field: 'fleetTlsKey', kind: 'path', description: 'With `rediss://`: the private key (PEM) of `fleet-tls-cert`.' },
  { key: 'fleet-fail-open', field: 'fleetFailOpen', kind: 'boolean', defaultValue: 'no', description: '`yes` deploys without the fleet when its Redis cannot be reached; by default no update starts then.' },
  { key: 'aws-access-key', field: 'awsAccessKey', kind: 'secret', description: 'S3 access key id (with `aws-secret-key`).' },
  { key: 'aws-secret-key', field: 'awsSecretKey', kind: 'secret', description: 'S3 secret access key (with `aws-access-key`). Never logged.' },
  { key: 'aws-region', field: 'awsRegion', kind: 'string', description: 'S3 region; else the AWS SDK\'s own lookup.' },
  { key: 's3-endpoint', field: 's3Endpoint', kind: 'string', description: 'S3-compatible endpoint such as `http://127.0.0.1:4569`; path-style addressing is then used.' },
  { key: 'http-timeout', field: 'httpTimeoutMs', kind: 'seconds', defaultValue: '30', minimum: 1, description: 'Seconds to connect, to receive response headers, and within which a download must make progress (a span with nothing, or two in a row under 1 KiB, fail it).' },
  { key: 'download-timeout', field: 'downloadTimeoutMs', kind: 'seconds', defaultValue: '1800', minimum: 1, description: 'Seconds a whole check and download may take.' },
  { key: 'max-redirects', field: 'maxRedirects', kind: 'count', defaultValue: '5', minimum: 0, description: 'HTTP redirects followed before the check fails.' },
  { key: 'max-unpacked-size', field: 'maxUnpackedBytes', kind: 'bytes', defaultValue: '4G', description: 'Largest total uncompressed size of an archive (suffixes K, M, G); stops zip bombs.' },
  { key: 'max-download-size', field: 'maxDownloadBytes', kind: 'bytes', defaultFrom: 'max-unpacked-size', description: 'Largest archive downloaded (suffixes K, M, G); a larger one, or an endless body, fails the check.' },
  { key: 'delta', field: 'delta', kind: 'boolean', defaultValue: 'yes', description: 'For an HTTP(S) or S3 zip: `yes` fetches only the entries that changed since the last archive downloaded, with range requests, and rebuilds the new archive\'s exact bytes (its sha256 and signature are checked as for a full download); the last archive is kept in `<cache>/delta-base/` for that. `no` downloads every new archive whole and keeps none ([Deltas](#deltas-http-and-s3)).' },
  { key: 'allow-insecure-redirects', field: 'allowInsecureRedirects', kind: 'boolean', defaultValue: 'no', description: '`yes` follows a redirect from https:// to plain http://; by default such a downgrade fails the check (a redirect to any other scheme, such as `file:`, never is followed).' },
  { key: 'oci-credentials', field: 'ociCredentials', kind: 'path', description: 'For an `oci://` remote: a Docker `config.json` holding the registry\'s login (`auths`; written by `docker login`); by default `~/.docker/config.json` when it exists, else anonymous pulls. A credential helper is not run.' },
  { key: 'oci-insecure', field: 'ociInsecure', kind: 'boolean', defaultValue: 'no', description: '`yes` talks plain HTTP to the `oci://` registry, for one on loopback or a private network; by default only https://.' },
  { key: 'oci-platform', field: 'ociPlatform', kind: 'string', description: 'For an `oci://` image index: the platform to deploy, `OS/ARCH[/VARIANT]` (e.g. `linux/arm64`); by default this host\'s.' },
  { key: 'oci-semver', field: 'ociSemver', kind: 'string', description: 'For an `oci://` remote named without a tag: a semver range (e.g. `^1.4`, `>=2.0.0 <3`); the highest tag that satisfies it is deployed (tags like `1.4.2` or `v1.4.2`; pre-releases only when the range names one).' },
  { key: 'oci-layer', field: 'ociLayer', kind: 'string', description: 'For an `oci://` artifact of several layers: the media type of the layer to deploy; by default a Flux artifact\'s layer, or the one layer there is.' },
  { key: 'max-entries', field: 'maxEntries', kind: 'count', defaultValue: '200000', minimum: 1, description: 'Largest number of entries in an archive.' },
  { key: 'git-timeout', field: 'gitTimeoutMs', kind: 'seconds', defaultValue: '300', minimum: 1, description: 'Seconds one git operation may take before git and its children (ssh, git-remote-https) are ended.' },
  { key: 'git-submodules', field: 'gitSubmodules', kind: 'enum', defaultValue: 'off', choices: ['off', 'shallow', 'recursive'], description: 'Check out submodules: `off`, `shallow` (one level, depth 1) or `recursive`.' },
  { key: 'ssh-key', field: 'sshKey', kind: 'path', description: 'Private key file for git over SSH.' },
  { key: 'ssh-known-hosts', field: 'sshKnownHosts', kind: 'path', description: 'known_hosts file for git over SSH.' },
  { key: 'ssh-strict-host-key-checking', field: 'sshStrictHostKeyChecking', kind: 'enum', defaultValue: 'yes', choices: ['yes', 'accept-new'], description: '`yes` refuses unknown SSH host keys; `accept-new` records a new host\'s key on first contact.' },
  { key: 'splay', field: 'splayMs', kind: 'seconds', defaultValue: '0', minimum: 0, description: 'Up to this many seconds of random delay before each scheduled check, so a fleet does not hit the remote at once.' },
  { key: 'max-attempts', field: 'maxAttempts', kind: 'count', defaultValue: '3', minimum: 1, description: 'Failed updates of one revision (blocked or reverted) before it is held back until the remote changes or `repo-deploy retry`; also failed checks in a row before `/healthz` reports unhealthy.' },
  { key: 'retry-backoff', field: 'retryBackoffMs', kind: 'seconds', defaultValue: '10', minimum: 1, description: 'After a failed check, scheduled checks wait this many seconds, doubled at each further failure.' },
  { key: 'max-backoff', field: 'maxBackoffMs', kind: 'seconds', defaultValue: '900', minimum: 1, description: 'The longest wait (seconds) between checks after repeated failures.' },
  { key: 'stop-grace', field: 'stopGraceMs', kind: 'seconds', defaultValue: '30', minimum: 0, description: 'On SIGTERM or SIGINT, seconds a running hook may go on before its process group is ended.' },
  { key: 'http-listen', field: 'httpListen', kind: 'listen', description: '`HOST:PORT` for `/healthz`, `/metrics` and `POST /check` (e.g. `127.0.0.1:9464`); off when unset.' },
  { key: 'webhook-secret', field: 'webhookSecret', kind: 'secret-source', description: 'Turns on `POST /check` (deploy on push): the shared secret (16 characters or more), or the absolute path of a file holding it (a regular file of at most 4 KiB; a warning when group or others can read it). Never logged. See [docs/running.md](docs/running.md#operator-control).' },
  { key: 'webhook-min-interval', field: 'webhookMinIntervalMs', kind: 'seconds', defaultValue: '5', minimum: 1, description: 'Seconds between two accepted `POST /check` requests; one sooner gets 429 with `Retry-After`.' },
  { key: 'deploy-window', field: 'deployWindow', kind: 'windows', description: 'When updates may start: `<cron> <duration>` entries separated by `;`, e.g. `0 9 * * 1-5 8h`. Outside every window checks run but nothing is deployed. Unset: always.' },
  { key: 'deploy-window-timezone', field: 'deployWindowTimezone', kind: 'timezone', description: 'IANA time zone of the window\'s cron expressions (e.g. `Europe/Berlin`); default the system\'s.' },
  { key: 'min-age', field: 'minAgeMs', kind: 'seconds', defaultValue: '0', minimum: 0, description: 'Seconds a revision must stay on the remote, unchanged, after this agent first saw it, before it is deployed; one replaced sooner is never deployed.' },
  { key: 'allowed-signers', field: 'allowedSigners', kind: 'path', description: 'OpenSSH allowed_signers file: when set, only archives with a good `<remote>.sig` and commits or tags signed by these keys are deployed.' },
  { key: 'checksum', field: 'checksum', kind: 'checksum', description: '`sha256:<hex>` of the one archive allowed to deploy.' },
  { key: 'cosign-public-key', field: 'cosignPublicKey', kind: 'path', description: 'For an `oci://` remote: a PEM file of one or more cosign public keys (`cosign.pub`); when set, a revision deploys only if a cosign signature by one of them covers its manifest digest (cosign v2\'s `sha256-<hex>.sig` tag, or cosign v3\'s Sigstore bundle among the digest\'s referrers).' },
  { key: 'cosign-identity', field: 'cosignIdentity', kind: 'string', description: 'For an `oci://` remote, keyless cosign signatures: the signing certificate\'s identity (its subject alternative name, matched exactly), e.g. `https://github.com/acme/site/.github/workflows/release.yml@refs/heads/main`. Goes with `cosign-issuer` and `sigstore-trusted-root`.' },
  { key: 'cosign-issuer', field: 'cosignIssuer', kind: 'string', description: 'For keyless cosign signatures: the OIDC issuer the certificate must name, e.g. `https://token.actions.githubusercontent.com`.' },
  { key: 'sigstore-trusted-root', field: 'sigstoreTrustedRoot', kind: 'path', description: 'A `trusted_root.json` (Sigstore\'s, or your own Fulcio and Rekor\'s) that keyless signatures are checked against, offline: the certificate must chain to one of its authorities at the time one of its transparency logs vouches for, with an SCT when it lists CT logs. With `cosign-public-key`, a key signature\'s log entry is then checked too.' },
  { key: 'gpg-keyring', field: 'gpgKeyring', kind: 'path', description: 'A GnuPG public keyring (exported keys): git commits and tags may also be GPG-signed by these keys.' },
  { key: 'verify-ignore', field: 'verifyIgnore', kind: 'list', description: 'Comma-separated glob patterns of paths that hooks add to a release (e.g. `shared, shared/**`): `verify` and `rollback` do not count them as differences.' },
  { key: 'refuse-rewrites', field: 'refuseRewrites', kind: 'boolean', defaultValue: 'no', description: '`yes` refuses a git revision that does not descend from the live one (no downgrade by force-push).' },
  { key: 'verify-interval', field: 'verifyIntervalMs', kind: 'seconds', defaultValue: '0', minimum: 0, description: 'The daemon compares the live tree with its release\'s manifest every this many seconds (0: never): files whose size, mode, inode or times changed are hashed; differences (beyond `verify-ignore`) set `repo_deploy_drift_files`, are recorded in the history and notified (`drift`).' },
  { key: 'drift-action', field: 'driftAction', kind: 'enum', defaultValue: 'report', choices: ['report', 'redeploy'], description: '`report` only says a drift; `redeploy` also deploys the remote\'s revision again as a new release, hooks and gates as for an update (not in a fleet: there it is reported only).' },
  { key: 'notify', field: 'notify', kind: 'list', description: 'Where to send notifications of history events, comma-separated: `https://…` (JSON, signed with `notify-secret`), `slack+https://hooks.slack.com/services/…` (a Slack incoming webhook), `ntfy+https://ntfy.sh/TOPIC`. Plain `http://` only for loopback and private addresses. Queued on disk and retried until delivered ([History and notifications](#history-and-notifications)).' },
  { key: 'notify-on', field: 'notifyOn', kind: 'list', description: 'Which events are sent: groups (`failures`, `reverts`, `holds`, `halts`, `commits`, `starts`, `waits`, `operator`, `drift`, `all`) or event names, comma-separated. Default: `failures, reverts, holds, halts, commits`.' },
  { key: 'notify-secret', field: 'notifySecret', kind: 'secret-source', description: 'The key of the `X-Hub-Signature-256: sha256=<HMAC>` header on JSON notifications (16 characters or more), or the absolute path of a file holding it. Never logged.' },
  { key: 'notify-timeout', field: 'notifyTimeoutMs', kind: 'seconds', defaultValue: '10', minimum: 1, maximum: 300, description: 'Seconds a notification target has to answer (at most 300: a run of `-f` waits that long for a silent one at its end); a slower one is tried again later, with backoff.' },
  { key: 'history', field: 'history', kind: 'boolean', defaultValue: 'yes', description: '`no` keeps no deploy history (`repo-deploy history` then has nothing to show, and nothing is notified: notifications are made from it).' },
  { key: 'history-max-size', field: 'historyMaxSize', kind: 'bytes', defaultValue: '8M', description: 'The deploy history (`<cache>/history/history.jsonl`) is rotated when it reaches this size (suffixes K, M, G); the hash chain goes on in the next file.' },
  { key: 'history-keep-files', field: 'historyKeepFiles', kind: 'count', defaultValue: '4', minimum: 1, description: 'Rotated history files kept beside the current one; older ones are removed (`history --verify` then proves the chain from the oldest entry kept).' },
  { key: 'log-format', field: 'logFormat', kind: 'enum', defaultValue: 'text', choices: ['text', 'json'], description: 'Log lines as plain `text` or `json` lines.' },
] as const satisfies readonly SettingSpec[];

export type SettingKey = (typeof settingSpecs)[number]['key'];

/** What each kind of setting becomes once read ('seconds' are kept in milliseconds). */
type ValueOf<Spec> =
  Spec extends { kind: 'seconds' | 'count' | 'bytes' } ? number
  : Spec extends { kind: 'boolean' } ? boolean
  : Spec extends { kind: 'enum'; choices: readonly (infer Choice)[] } ? Choice
  : Spec extends { kind: 'remote' } ? Remote
  : Spec extends { kind: 'listen' } ? ListenAddress
  : Spec extends { kind: 'list' } ? string[]
  : Spec extends { kind: 'windows' } ? DeployWindow[]
  : Spec extends { kind: 'count-or-percent' } ? CountOrPercent
  : string;

/** A setting with a default (or a list, empty when unset) always has a value. */
type SettingValue<Spec> = Spec extends { defaultValue: string } | { defaultFrom: string } | { kind: 'list' | 'windows' } ? ValueOf<Spec> : ValueOf<Spec> | undefined;

/** Every setting of the schema, typed by its kind: a new setting needs no other declaration. */
export type SchemaSettings = { -readonly [Spec in (typeof settingSpecs)[number] as Spec['field']]: SettingValue<Spec> };

/** The daemon's schedule when none is set: every minute. */
export const defaultSchedule = settingSpecs.find((spec) => spec.key === 'schedule')?.defaultValue;

export const knownSettingKeys: ReadonlySet<string> = new Set(settingSpecs.map((spec) => spec.key));

/** REPO_DEPLOY_<KEY>: dashes become underscores, upper case. */
export function environmentName(key: string): string {
  return `REPO_DEPLOY_${key.toUpperCase().replace(/-/g, '_')}`;
}
