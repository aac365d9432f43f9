// The settings one app runs with, as the rest of the agent sees them: the schema's values plus
// what is derived at start. Loading them (flags, environment, files) is settings/config.ts's job;
// this type lives here, at the bottom, so fetchers, the fleet and the context need not import the loader.
import type { DeployError } from '../base/errors.js';
import type { SchemaSettings } from './settings-schema.js';

export type Settings = SchemaSettings & {
  configPath: string;
  verbose: boolean;
  /** Said once the logger exists: a config file that exposes a secret, a misspelled variable. */
  warnings: string[];
  /** Named paths that do not exist, by setting, kept for check-config to report with every other part (else thrown). */
  pathProblems: Array<{ key: string; error: DeployError }>;
  /** A group of apps (settings/apps.ts): each member's own settings, its remote among them, by app name. */
  groupMembers?: Array<{ name: string; settings: Settings }>;
};

/**
 * What the agent as a whole runs with, whatever its apps: one HTTP server, one log. In the
 * directory form these come from the main file alone (settings/apps.ts refuses them in an app's).
 */
export type AgentSettings = Pick<Settings, 'httpListen' | 'webhookSecret' | 'webhookMinIntervalMs' | 'logFormat' | 'verbose' | 'warnings' | 'configPath'>;

/** The slices of an app's settings that its remote reads: each fetcher is handed only its own. */
export type TrustSettings = Pick<Settings, 'allowedSigners' | 'checksum' | 'cosignPublicKey' | 'cosignIdentity' | 'cosignIssuer' | 'sigstoreTrustedRoot' | 'gpgKeyring' | 'refuseRewrites'>;
export type ZipSettings = TrustSettings & Pick<Settings, 'httpTimeoutMs' | 'maxDownloadBytes' | 'maxEntries' | 'maxUnpackedBytes' | 'delta'>;
export type HttpZipSettings = ZipSettings & Pick<Settings, 'allowInsecureRedirects' | 'downloadTimeoutMs' | 'maxRedirects'>;
export type S3ZipSettings = ZipSettings & Pick<Settings, 'awsAccessKey' | 'awsSecretKey' | 'awsRegion' | 's3Endpoint' | 'downloadTimeoutMs'>;
export type OciSettings = TrustSettings & Pick<Settings, 'httpTimeoutMs' | 'downloadTimeoutMs' | 'maxDownloadBytes' | 'maxEntries' | 'maxUnpackedBytes' | 'ociCredentials' | 'ociInsecure' | 'ociPlatform' | 'ociLayer' | 'ociSemver'>;
export type GitSettings = TrustSettings & Pick<Settings, 'cache' | 'gitSubmodules' | 'gitTimeoutMs' | 'sshKey' | 'sshKnownHosts' | 'sshStrictHostKeyChecking'>;
