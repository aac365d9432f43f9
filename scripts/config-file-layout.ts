// The layout of etc/repo-deploy.cfg: its paragraphs, in order, each a comment and the keys it
// explains. Defaults come from the settings table (src/core/settings-schema.ts); a value here is
// an example for a key without a default. scripts/generate-docs.ts writes the file from this, and
// fails when a key of the table is missing here.

export type ConfigFileEntry = { key: string; value?: string; active?: boolean } | { text: string };

export const configFileLayout: Array<{ comment: string[]; entries: ConfigFileEntry[] }> = [
  {
    comment: [
      '/etc/repo-deploy/repo-deploy.cfg',
      '`key = value`, one per line; lines starting with # are comments; a value may contain "=".',
      'Keys use dashes (underscores work too). Any key can also come from the environment as',
      'REPO_DEPLOY_<KEY> (e.g. REPO_DEPLOY_REMOTE); a flag beats the environment, which beats this file.',
    ],
    entries: [
    ],
  },
  {
    comment: [
      'What to deploy (required). One of:',
      '  s3://bucket/path/app.zip',
      '  https://ci.example.com/builds/app.zip          (user:token@ in the URL becomes Basic auth)',
      '  git@github.com:org/app.git/sub/dir#main        (git: a subdirectory and a branch, tag or commit)',
      '  /srv/builds/app.zip  or  file:///srv/builds/app.zip',
    ],
    entries: [
      { key: 'remote', value: 'https://ci.example.com/builds/app.zip', active: true },
    ],
  },
  {
    comment: [
      'In an app file of conf.d/ only: apps with the same group share one live path and deploy as',
      'one release, each remote in a subdirectory named after its app.',
    ],
    entries: [
      { key: 'group', value: 'web' },
    ],
  },
  {
    comment: [
      'The live path the application reads: a symlink to releases/<id> in the same directory.',
    ],
    entries: [
      { key: 'local' },
    ],
  },
  {
    comment: [
      'Work directory: downloads, git mirror, state.json, lock.',
    ],
    entries: [
      { key: 'cache' },
    ],
  },
  {
    comment: [
      'When the daemon checks: cron, 5 fields (or 6 with seconds first).',
    ],
    entries: [
      { key: 'schedule' },
    ],
  },
  {
    comment: [
      'Hook directories (run-parts style: executable files, in name order).',
    ],
    entries: [
      { key: 'pre-hooks' },
      { key: 'post-hooks' },
    ],
  },
  {
    comment: [
      'Seconds a hook may run before it and its process group are killed (counts as failed).',
    ],
    entries: [
      { key: 'hook-timeout' },
    ],
  },
  {
    comment: [
      'Releases kept on disk; the live one and the one before it are never pruned.',
    ],
    entries: [
      { key: 'keep-releases' },
    ],
  },
  {
    comment: [
      'S3: keys (both or neither), region, and an S3-compatible endpoint (path-style addressing).',
      'Without keys: ~/.amazon/account-key (accessKey=... / secretKey=...), then the AWS default chain.',
    ],
    entries: [
      { key: 'aws-access-key', value: 'AKIA...' },
      { key: 'aws-secret-key', value: '...' },
      { key: 'aws-region', value: 'eu-west-1' },
      { key: 's3-endpoint', value: 'http://127.0.0.1:4569' },
    ],
  },
  {
    comment: [
      'OCI (oci://HOST/REPOSITORY:TAG): a Docker config.json with the registry login (default',
      '~/.docker/config.json, else anonymous); plain HTTP for a registry on a private network;',
      'the platform of an image index (default this host\'s); the media type of the layer to deploy;',
      'with a remote named without a tag, the semver range whose highest tag is deployed.',
    ],
    entries: [
      { key: 'oci-credentials', value: '/etc/repo-deploy/registry.json' },
      { key: 'oci-insecure' },
      { key: 'oci-platform', value: 'linux/amd64' },
      { key: 'oci-layer', value: 'application/vnd.cncf.flux.content.v1.tar+gzip' },
      { key: 'oci-semver', value: '^1.4' },
    ],
  },
  {
    comment: [
      'HTTP: seconds to connect, to get response headers, and within which a download must make',
      'progress (1 KiB at least: a trickle fails); seconds for a whole download; redirects followed;',
      'whether a redirect from https:// to plain http:// is followed (no: refused).',
    ],
    entries: [
      { key: 'http-timeout' },
      { key: 'download-timeout' },
      { key: 'max-redirects' },
      { key: 'allow-insecure-redirects' },
    ],
  },
  {
    comment: [
      'Zip bomb limits: total uncompressed size (K, M, G suffixes) and number of entries; the largest',
      'archive downloaded (an endless body fails there; default: max-unpacked-size).',
    ],
    entries: [
      { key: 'max-unpacked-size' },
      { key: 'max-entries' },
      { key: 'max-download-size', value: '4G' },
    ],
  },
  {
    comment: [
      'HTTP and S3 zips: fetch only the entries that changed since the last archive, with range',
      'requests (yes; that archive is kept in the cache), or download every new archive whole (no).',
    ],
    entries: [{ key: 'delta' }],
  },
  {
    comment: [
      'Git: seconds one git operation may take (git and its children are then ended); submodules',
      '(off, shallow: one level at depth 1, recursive); SSH key, known_hosts file, and whether an',
      'unknown host key is refused (yes) or recorded on first contact (accept-new).',
    ],
    entries: [
      { key: 'git-timeout' },
      { key: 'git-submodules' },
      { key: 'ssh-key', value: '/etc/repo-deploy/deploy_key' },
      { key: 'ssh-known-hosts', value: '/etc/repo-deploy/known_hosts' },
      { key: 'ssh-strict-host-key-checking' },
    ],
  },
  {
    comment: [
      'Daemon: random delay (seconds) before each scheduled check; failed updates of one revision',
      'before it is held back (and failed checks in a row before /healthz turns unhealthy); backoff',
      'after failed checks (seconds, doubling, capped); how long a running hook may finish on SIGTERM.',
    ],
    entries: [
      { key: 'splay' },
      { key: 'max-attempts' },
      { key: 'retry-backoff' },
      { key: 'max-backoff' },
      { key: 'stop-grace' },
    ],
  },
  {
    comment: [
      'The health gate: after the post-update hooks, this command (exit 0 = healthy) or URL (2xx) must',
      'pass, and keep passing for health-settle seconds (tried every health-interval), or the update',
      'is reverted like a failed post-update hook.',
    ],
    entries: [
      { key: 'health-check', value: 'curl -fsS http://127.0.0.1:8080/healthz' },
      { key: 'health-timeout' },
      { key: 'health-settle' },
      { key: 'health-interval' },
    ],
  },
  {
    comment: [
      'Rolling updates across a fleet, coordinated through a shared Redis (see docs/fleet.md): at most',
      'max-parallel servers (or N%) updating at once, canary servers first, the revision halted for the',
      'whole fleet once max-failed-hosts servers failed it. Without Redis no update starts, unless',
    ],
    entries: [
      { key: 'fleet-fail-open', value: 'yes.' },
      { key: 'fleet-redis', value: 'redis://:password@redis.internal:6379/0' },
      { text: 'or through Sentinel, following a failover at the next check:' },
      { key: 'fleet-redis', value: 'redis-sentinel://:password@sentinel-1:26379,sentinel-2:26379/fleet-primary' },
      { text: 'or a Redis Cluster, through any of its nodes:' },
      { key: 'fleet-redis', value: 'redis-cluster://:password@redis-1:6379,redis-2:6379' },
      { key: 'fleet-name', value: 'web-production' },
      { key: 'host-id', value: 'web-01' },
      { key: 'max-parallel' },
      { key: 'min-healthy' },
      { key: 'canary' },
      { key: 'canary-promote' },
      { key: 'bake-time' },
      { key: 'max-failed-hosts' },
      { key: 'fleet-lease' },
      { key: 'fleet-fail-open' },
      { text: 'With rediss:// and a private CA, or a Redis that requires client certificates (mutual TLS):' },
      { key: 'fleet-tls-ca', value: '/etc/repo-deploy/redis-ca.pem' },
      { key: 'fleet-tls-cert', value: '/etc/repo-deploy/redis-client.pem' },
      { key: 'fleet-tls-key', value: '/etc/repo-deploy/redis-client.key' },
    ],
  },
  {
    comment: [
      'Serve /healthz and /metrics (Prometheus) on this address; off when unset.',
    ],
    entries: [
      { key: 'http-listen', value: '127.0.0.1:9464' },
    ],
  },
  {
    comment: [
      'Deploy on push: POST /check on http-listen, for a request signed (GitHub), carrying the token',
      '(GitLab) or a bearer token with this secret, or the absolute path of a file holding it (chmod 600).',
      'At most one accepted trigger per webhook-min-interval seconds.',
    ],
    entries: [
      { key: 'webhook-secret', value: '/etc/repo-deploy/webhook-secret' },
      { key: 'webhook-min-interval' },
    ],
  },
  {
    comment: [
      'Deploy windows: updates start only within one of these "<cron> <duration>" entries (";" between',
      'them), in this IANA time zone (default: the system\'s). Checks still run outside them.',
    ],
    entries: [
      { key: 'deploy-window', value: '0 9 * * 1-5 8h' },
      { key: 'deploy-window-timezone', value: 'Europe/Berlin' },
    ],
  },
  {
    comment: [
      'Deploy a revision only once it has been on the remote, unchanged, this many seconds.',
    ],
    entries: [
      { key: 'min-age' },
    ],
  },
  {
    comment: [
      'Verified deploys: an OpenSSH allowed_signers file (archives need a good <remote>.sig made with',
      '`ssh-keygen -Y sign -n repo-deploy`; commits or tags a good SSH signature); or pin one archive',
      'by its sha256; GPG-signed commits with an exported keyring; refuse git history rewrites;',
      'for oci:// artifacts, the cosign public keys one of which must have signed a revision, or the',
      'keyless signer (certificate identity and OIDC issuer) and the Sigstore trusted root it chains to.',
    ],
    entries: [
      { key: 'allowed-signers', value: '/etc/repo-deploy/allowed_signers' },
      { key: 'checksum', value: 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' },
      { key: 'gpg-keyring', value: '/etc/repo-deploy/release-keys.asc' },
      { key: 'cosign-public-key', value: '/etc/repo-deploy/cosign.pub' },
      { key: 'cosign-identity', value: 'https://github.com/acme/site/.github/workflows/release.yml@refs/heads/main' },
      { key: 'cosign-issuer', value: 'https://token.actions.githubusercontent.com' },
      { key: 'sigstore-trusted-root', value: '/etc/repo-deploy/trusted_root.json' },
      { key: 'refuse-rewrites' },
    ],
  },
  {
    comment: [
      'Paths your hooks add to a release (glob patterns, comma-separated), which `repo-deploy verify`',
      'and `rollback`\'s check of the target do not count as differences.',
    ],
    entries: [
      { key: 'verify-ignore', value: 'shared, shared/**' },
    ],
  },
  {
    comment: [
      'Drift: the daemon compares the live tree with its release every verify-interval seconds (0: never),',
      'records and notifies a difference, and with drift-action = redeploy deploys the release again.',
    ],
    entries: [
      { key: 'verify-interval', value: '300' },
      { key: 'drift-action' },
    ],
  },
  {
    comment: [
      'The deploy history (repo-deploy history): hash-chained JSON Lines in the cache, rotated by',
      'size with the chain carried on; how many rotated files are kept.',
    ],
    entries: [
      { key: 'history' },
      { key: 'history-max-size' },
      { key: 'history-keep-files' },
    ],
  },
  {
    comment: [
      'Notifications of history events, queued on disk and retried until delivered: a JSON webhook',
      '(signed with notify-secret as X-Hub-Signature-256), a Slack incoming webhook, an ntfy topic.',
    ],
    entries: [
      { key: 'notify', value: 'https://ops.example.com/hooks/deploys, slack+https://hooks.slack.com/services/T000/B000/XXXX' },
      { key: 'notify-on', value: 'failures, reverts, holds, halts, commits' },
      { key: 'notify-secret', value: '/etc/repo-deploy/notify-secret' },
      { key: 'notify-timeout' },
    ],
  },
  {
    comment: [
      'Log lines as plain text or JSON lines.',
    ],
    entries: [
      { key: 'log-format' },
    ],
  },
];
