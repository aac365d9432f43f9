// Reads the settings once, at start: flag > environment (REPO_DEPLOY_<KEY>) > config file >
// default. Every value is checked here, so a bad one is reported before anything touches the disk.
import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { closestKey, readConfigFile, type RawSetting } from './config-file.js';
import { parseDeployWindows, parseTimeZone, validateDeployWindows } from '../core/deploy-window.js';
import { type DeployError, messageOf, systemErrorCode, usageError } from '../base/errors.js';
import { registerSecret } from '../base/redact.js';
import { parseRedisAddress } from './redis-address.js';
import { NotASmallFile, readSmallRegularFile } from '../base/small-file.js';
import { parseRemote, type Remote } from '../core/remote.js';
import type { Settings } from '../core/settings.js';
import { environmentName, knownSettingKeys, maximumSeconds, settingSpecs, type SchemaSettings, type SettingKey, type SettingSpec } from '../core/settings-schema.js';
import { selectedEvents } from '../notify/events.js';
import { parseTargets } from '../notify/targets.js';

export type { Settings };

export const defaultConfigPath = '/etc/repo-deploy/repo-deploy.cfg';


/** The flags of the original command line that carry a setting. */
export interface SettingFlags {
  config?: string;
  cache?: string;
  preHooks?: string;
  postHooks?: string;
  remote?: string;
  local?: string;
  verbose?: boolean;
}

export interface LoadOptions {
  flags: SettingFlags;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** check-config: a named path that does not exist is returned in pathProblems, not thrown. */
  collectPathProblems?: boolean;
  /**
   * One app of a conf.d directory (settings/apps.ts): its file is read between the environment
   * and the main file, so an app inherits what it does not set.
   */
  app?: AppFile;
  /** The main file, already read (so conf.d's apps do not read it once each); -c a directory: none. */
  mainFile?: { path: string; settings: Map<string, RawSetting> };
}

export interface AppFile {
  name: string;
  path: string;
  settings: Map<string, RawSetting>;
}

interface SourcedValue {
  value: string;
  /** Where the value came from, for error messages: "--local", "REPO_DEPLOY_LOCAL", "file.cfg:3". */
  source: string;
  /** Relative paths are taken relative to this directory. */
  baseDirectory: string;
}

const flagOfKey: Partial<Record<SettingKey, keyof SettingFlags>> = {
  remote: 'remote',
  local: 'local',
  cache: 'cache',
  'pre-hooks': 'preHooks',
  'post-hooks': 'postHooks',
};

export async function loadSettings({ flags, env, cwd, collectPathProblems = false, app, mainFile }: LoadOptions): Promise<Settings> {
  const namedConfig = flags.config ?? env[environmentName('config')];
  const mainPath = mainFile?.path ?? resolve(cwd, namedConfig ?? defaultConfigPath);
  const mainSettings = mainFile?.settings ?? (await readConfigFile(mainPath, namedConfig !== undefined, knownSettingKeys));
  const configPath = app?.path ?? mainPath;
  const fileSettings = app?.settings ?? mainSettings;
  const fromFile = (key: string): SourcedValue | undefined => {
    for (const [path, settings] of app ? [[app.path, app.settings] as const, [mainPath, mainSettings] as const] : [[mainPath, mainSettings] as const]) {
      const fileValue: RawSetting | undefined = settings.get(key);
      if (fileValue && fileValue.value !== '') return { value: fileValue.value, source: `${path}:${fileValue.line}`, baseDirectory: dirname(path) };
    }
    return undefined;
  };

  const lookup = (spec: SettingSpec): SourcedValue | undefined => {
    const flagName = flagOfKey[spec.key as SettingKey];
    const flagValue = flagName ? flags[flagName] : undefined;
    if (typeof flagValue === 'string') return { value: flagValue, source: `--${spec.key}`, baseDirectory: cwd };
    const envName = environmentName(spec.key);
    const envValue = env[envName];
    if (envValue !== undefined && envValue !== '') return { value: envValue, source: envName, baseDirectory: cwd };
    const fileValue = fromFile(spec.key);
    if (fileValue) return fileValue;
    if (spec.defaultValue !== undefined) return { value: spec.defaultValue, source: 'default', baseDirectory: cwd };
    return undefined;
  };

  const specByKey = new Map<string, SettingSpec>(settingSpecs.map((spec) => [spec.key, spec]));
  const values: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const spec of settingSpecs) {
    const fallback = 'defaultFrom' in spec ? specByKey.get(spec.defaultFrom) : undefined;
    const sourced = lookup(spec) ?? (fallback && lookup(fallback));
    values[spec.field] = interpret(spec, sourced, cwd);
    if (sourced) sources.set(spec.key, sourced.source);
  }
  // An app of conf.d that names no cache of its own gets one under the agent's, by its name:
  // its lock, state, downloads and mirrors are its own.
  if (app && !fromAppFile(app, 'cache')) values.cache = join(values.cache as string, 'apps', app.name);
  // The one place values meet their types: each was read by its own spec's kind just above.
  const schemaSettings = values as SchemaSettings;
  const pathProblems = await checkNamedPaths(schemaSettings, sources);
  if (pathProblems[0] && !collectPathProblems) throw pathProblems[0].error;
  const secretFiles = settingSpecs
    .filter((spec) => spec.kind === 'secret-source')
    .flatMap((spec) => {
      const path = lookup(spec)?.value;
      return path?.startsWith('/') ? [{ key: spec.key, path }] : [];
    });
  // The environment is the agent's: its misspelled variables are said once, by the main settings.
  const warnings = [...(app ? [] : misspelledVariables(env)), ...(await exposedSecrets(configPath, fileSettings)), ...exposedSecretFiles(secretFiles)];

  if (schemaSettings.fleetRedis && !/^[A-Za-z0-9._-]+$/.test(schemaSettings.fleetName ?? '')) {
    throw usageError(schemaSettings.fleetName ? `fleet-name = "${schemaSettings.fleetName}" may hold only letters, digits, ".", "_" and "-"` : 'fleet-redis is set, but fleet-name is not', 'name the fleet: fleet-name = web-production');
  }
  const { fleetTlsCa, fleetTlsCert, fleetTlsKey } = schemaSettings;
  if ((fleetTlsCa || fleetTlsCert || fleetTlsKey) && !schemaSettings.fleetRedis?.startsWith('rediss://')) {
    throw usageError(`${fleetTlsCa ? 'fleet-tls-ca' : fleetTlsCert ? 'fleet-tls-cert' : 'fleet-tls-key'} is set, but fleet-redis is not a rediss:// (TLS) URL`, 'use rediss://host:port for a Redis that speaks TLS, or remove the fleet-tls-* settings');
  }
  if ((fleetTlsCert === undefined) !== (fleetTlsKey === undefined)) {
    throw usageError(`fleet-tls-cert and fleet-tls-key go together, but only ${fleetTlsCert ? 'fleet-tls-cert' : 'fleet-tls-key'} is set`, 'set both for a client certificate, or neither');
  }
  if (schemaSettings.deployWindow.length > 0) await validateDeployWindows(schemaSettings.deployWindow, schemaSettings.deployWindowTimezone);

  await validateOciReference(schemaSettings);
  // Said at start, not at the first event hours later.
  parseTargets(schemaSettings.notify);
  selectedEvents(schemaSettings.notifyOn);

  const { awsAccessKey, awsSecretKey } = schemaSettings;
  if ((awsAccessKey === undefined) !== (awsSecretKey === undefined)) {
    throw usageError(
      `aws-access-key and aws-secret-key go together, but only ${awsAccessKey ? 'aws-access-key' : 'aws-secret-key'} is set`,
      'set both, or neither to use ~/.amazon/account-key or the AWS default credentials',
    );
  }

  const verboseFromEnv = env[environmentName('verbose')];
  return {
    ...schemaSettings,
    configPath,
    verbose: flags.verbose === true || verboseFromEnv === '1' || verboseFromEnv === 'true',
    warnings,
    pathProblems,
  };
}

const fromAppFile = (app: AppFile, key: string) => (app.settings.get(key)?.value ?? '') !== '';

const pathExists = (path: string) => stat(path).then(() => true, () => false);

/**
 * Paths the operator named that must exist: a hook directory named by a flag, the environment
 * or the file (a typo there would otherwise mean "no hooks" in silence; only the default
 * directories may be missing), and the SSH key and known-hosts files.
 */
async function checkNamedPaths(settings: SchemaSettings, sources: Map<string, string>): Promise<Settings['pathProblems']> {
  const problems: Settings['pathProblems'] = [];
  for (const [key, directory] of [['pre-hooks', settings.preHooks], ['post-hooks', settings.postHooks]] as const) {
    const source = sources.get(key);
    if (source !== 'default' && !(await pathExists(directory))) {
      problems.push({ key, error: usageError(`${source}: the ${key} directory ${directory} does not exist`, `create it (mkdir -p ${directory}), or remove the setting to run no ${key.replace('-hooks', '-update')} hooks`) });
    }
  }
  const { sshKey, sshKnownHosts } = settings;
  if (sshKey && !(await pathExists(sshKey))) {
    problems.push({ key: 'ssh-key', error: usageError(`${sources.get('ssh-key')}: the ssh-key file ${sshKey} does not exist`, 'give the path of the private key git should use over SSH') });
  }
  // With accept-new, ssh creates the file at the first contact; with yes, nothing could ever match.
  if (sshKnownHosts && settings.sshStrictHostKeyChecking === 'yes' && !(await pathExists(sshKnownHosts))) {
    problems.push({ key: 'ssh-known-hosts', error: usageError(`${sources.get('ssh-known-hosts')}: the ssh-known-hosts file ${sshKnownHosts} does not exist`, 'fill it with ssh-keyscan -p PORT HOST, or set ssh-strict-host-key-checking = accept-new for a first contact') });
  }
  for (const [key, path] of [['fleet-tls-ca', settings.fleetTlsCa], ['fleet-tls-cert', settings.fleetTlsCert], ['fleet-tls-key', settings.fleetTlsKey]] as const) {
    if (path && !(await pathExists(path))) problems.push({ key, error: usageError(`${sources.get(key)}: the ${key} file ${path} does not exist`, 'give the path of a PEM file') });
  }
  return problems;
}

// REPO_DEPLOY_* variables that are not settings: the hook variables (a hook may run repo-deploy
// status) and the agent's own test switch.
const otherAgentVariables = new Set(['REPO_DEPLOY_CONFIG', 'REPO_DEPLOY_VERBOSE', 'REPO_DEPLOY_APP', 'REPO_DEPLOY_PHASE', 'REPO_DEPLOY_REVISION', 'REPO_DEPLOY_PREVIOUS_REVISION', 'REPO_DEPLOY_TEST_PAUSE_AT', 'REPO_DEPLOY_TEST_RESUME_FILE', 'REPO_DEPLOY_TEST_DELAY_AT']);

/** A REPO_DEPLOY_* variable that names no setting is a typo an operator would want to hear of. */
function misspelledVariables(env: NodeJS.ProcessEnv): string[] {
  const known = new Map(settingSpecs.map((spec) => [environmentName(spec.key), spec.key]));
  const warnings: string[] = [];
  for (const name of Object.keys(env)) {
    if (!name.startsWith('REPO_DEPLOY_') || known.has(name) || otherAgentVariables.has(name)) continue;
    const suggestion = closestKey(name, known.keys());
    warnings.push(`the environment variable ${name} is not a setting and is ignored${suggestion ? `; did you mean ${suggestion}?` : ''}`);
  }
  return warnings;
}

/** A config file holding a secret must not be readable by others on the host. */
async function exposedSecrets(configPath: string, fileSettings: Map<string, RawSetting>): Promise<string[]> {
  const secrets = [...fileSettings.entries()].filter(([key, raw]) => {
    const spec = settingSpecs.find((candidate) => candidate.key === key);
    return spec?.kind === 'secret' || (spec?.kind === 'secret-source' && !raw.value.startsWith('/')) || (key === 'remote' && hasUrlCredentials(raw.value));
  });
  if (secrets.length === 0) return [];
  const info = await stat(configPath).catch(() => undefined);
  if (!info || (info.mode & 0o077) === 0) return [];
  return [
    `the config file ${configPath} holds a secret (${secrets.map(([key]) => key).join(', ')}) and can be read by group or others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 ${configPath}`,
  ];
}

const hasUrlCredentials = (value: string) => /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]+@/i.test(value) && /^(https?|git\+https?|s3):/i.test(value);

/** One value read by its spec's kind; unset is undefined (an empty list for a list). */
function interpret(spec: SettingSpec, sourced: SourcedValue | undefined, cwd: string): unknown {
  if (sourced === undefined) return spec.kind === 'list' || spec.kind === 'windows' ? [] : undefined;
  const { value, source, baseDirectory } = sourced;
  const bad = (expected: string) => usageError(`${source}: ${spec.key} = "${value}" is not ${expected}`);
  switch (spec.kind) {
    case 'string':
      return value;
    case 'secret':
      registerSecret(value);
      return value;
    case 'path':
      return resolve(baseDirectory, value);
    case 'seconds':
    case 'count': {
      if (!/^\d+$/.test(value)) throw bad(spec.kind === 'seconds' ? 'a whole number of seconds' : 'a whole number');
      const number = Number(value);
      if (spec.minimum !== undefined && number < spec.minimum) throw bad(`at least ${spec.minimum}`);
      if (spec.kind === 'count') return number;
      const maximum = spec.maximum ?? maximumSeconds;
      if (number > maximum) throw bad(spec.maximum !== undefined ? `at most ${maximum} seconds` : `at most ${maximum} seconds (${Math.floor(maximum / 8_640) / 10} days: the longest wait the agent's timers can make)`);
      return number * 1000;
    }
    case 'bytes':
      return parseByteSize(value) ?? (() => { throw bad('a size such as 500M or 4G'); })();
    case 'boolean':
      if (/^(yes|true|on|1)$/i.test(value)) return true;
      if (/^(no|false|off|0)$/i.test(value)) return false;
      throw bad('yes or no');
    case 'enum':
      if (spec.choices?.includes(value)) return value;
      throw bad(`one of ${spec.choices?.join(', ')}`);
    // Relative remotes are taken from the working directory, as git and the original tool do.
    case 'remote':
      return parseRemote(value, cwd);
    case 'listen':
      return parseListenAddress(value);
    case 'checksum':
      return parseChecksum(value);
    case 'list':
      return value.split(',').map((pattern) => pattern.trim()).filter(Boolean);
    case 'secret-source':
      return readSecretSource(spec.key, value, source);
    case 'windows':
      return parseDeployWindows(value, source);
    case 'timezone':
      return parseTimeZone(value, source);
    case 'redis-url': {
      const address = parseRedisAddress(value);
      if (!address) {
        throw usageError(`${source}: ${spec.key} is not a redis://, rediss://, redis-sentinel:// or redis-cluster:// URL`, 'write it as redis://host:port[/db], redis-sentinel://host:port[,host:port]/primary-name[/db] or redis-cluster://host:port[,host:port], with "user:password@" after the "//" when the server needs them');
      }
      registerSecret(address.kind === 'standalone' ? decodeURIComponent(new URL(value).password) : address.password);
      return value;
    }
    case 'count-or-percent': {
      const match = /^(\d+)(%?)$/.exec(value.trim());
      if (!match || (match[2] && (Number(match[1]) < 1 || Number(match[1]) > 100))) throw bad('a number of servers or a percentage such as 25%');
      // max-parallel = 0 would let no server ever start: the fleet would stall for good.
      if (!match[2] && spec.minimum !== undefined && Number(match[1]) < spec.minimum) throw bad(`at least ${spec.minimum} (or a percentage such as 25%)`);
      return match[2] ? { percent: Number(match[1]) } : { count: Number(match[1]) };
    }
  }
}

/**
 * A secret given as its value, or as the absolute path of a file holding it (so it need not
 * stand in the config file); registered so no log line can show it.
 */
function readSecretSource(key: string, value: string, source: string): string {
  let secret = value;
  if (value.startsWith('/')) {
    try {
      secret = readSmallRegularFile(value, maxSecretFileBytes).trim();
    } catch (error) {
      const reason = error instanceof NotASmallFile ? error.message : (systemErrorCode(error) ?? messageOf(error));
      throw usageError(`${source}: cannot read the ${key} file ${value} (${reason})`, `give the path of a regular file of at most ${maxSecretFileBytes} bytes holding the secret, readable by the agent only`);
    }
  }
  // Refused before it is registered: a refused value is never used, and registering "short"
  // would mask the agent's own words ("is too ***").
  if (secret.length < 16) throw usageError(`${source}: ${key} is too short: a shared secret needs at least 16 characters`, 'make one with: openssl rand -hex 32');
  registerSecret(secret);
  return secret;
}

/** A secret file holds one line; anything longer than this was named by mistake. */
export const maxSecretFileBytes = 4096;

/** A file holding a secret must not be readable by others on the host (the config file's rule). */
function exposedSecretFiles(files: Array<{ key: string; path: string }>): string[] {
  return files.flatMap(({ key, path }) => {
    const info = statSync(path, { throwIfNoEntry: false });
    if (!info || (info.mode & 0o077) === 0) return [];
    return [`the ${key} file ${path} can be read by group or others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 ${path}`];
  });
}

const byteSuffixes: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** "512M" -> bytes; undefined when the text is not a size. */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+)\s*([KMGT]?)i?B?$/i.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * (byteSuffixes[(match[2] ?? '').toUpperCase()] ?? 1);
}

/** checksum = sha256:<64 hex digits>, kept in lower case. */
export function parseChecksum(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const match = /^sha256:([0-9a-f]{64})$/i.exec(text.trim());
  if (!match) throw usageError(`checksum = "${text}" is not sha256:<64 hex digits>`, 'compute it with: sha256sum app.zip');
  return `sha256:${(match[1] as string).toLowerCase()}`;
}

/** "127.0.0.1:9464" -> host and port; a bare port listens on 127.0.0.1. */
export function parseListenAddress(text: string | undefined): { host: string; port: number } | undefined {
  if (text === undefined) return undefined;
  const match = /^(?:\[?([^\]]*)\]?:)?(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw usageError(`http-listen = "${text}" is not HOST:PORT, e.g. 127.0.0.1:9464`);
  return { host: match[1] || '127.0.0.1', port };
}

/** The remote is required to check or deploy; status commands do without it. */
export function requireRemote(settings: Settings): Remote {
  if (!settings.remote) {
    throw usageError(
      'no remote is set',
      `give one with -r, ${environmentName('remote')} or "remote = ..." in ${settings.configPath}`,
    );
  }
  return settings.remote;
}

/**
 * An oci:// remote names a tag or a digest, or lets oci-semver choose the tag: one of the three.
 * The cosign settings vouch only for OCI artifacts: on another remote they would let a revision
 * deploy unverified that the operator meant to be verified, so they are refused there.
 */
async function validateOciReference({ remote, ociSemver, cosignPublicKey, cosignIdentity, cosignIssuer, sigstoreTrustedRoot }: SchemaSettings): Promise<void> {
  const keyless = { 'cosign-identity': cosignIdentity, 'cosign-issuer': cosignIssuer, 'sigstore-trusted-root': sigstoreTrustedRoot };
  const cosignSetting = cosignPublicKey !== undefined ? 'cosign-public-key' : Object.entries(keyless).find(([, value]) => value !== undefined)?.[0];
  if (remote?.kind !== 'oci') {
    if (ociSemver !== undefined && remote) throw usageError(`oci-semver is set, but the remote ${remote.display} is not an oci:// remote`, 'remove oci-semver');
    if (cosignSetting && remote) throw usageError(`${cosignSetting} is set, but the remote ${remote.display} is not an oci:// remote: cosign vouches only for OCI artifacts`, 'sign archives with allowed-signers (a <remote>.sig) or commits with allowed-signers / gpg-keyring, and remove the cosign settings');
    return;
  }
  const missing = Object.entries(keyless).filter(([, value]) => value === undefined).map(([key]) => key);
  const keylessAsked = (cosignIdentity ?? cosignIssuer) !== undefined;
  if (keylessAsked && missing.length > 0) throw usageError(`keyless cosign signatures need cosign-identity, cosign-issuer and sigstore-trusted-root together; ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set`, 'for example cosign-identity = https://github.com/acme/site/.github/workflows/release.yml@refs/heads/main, cosign-issuer = https://token.actions.githubusercontent.com');
  if (sigstoreTrustedRoot !== undefined && !keylessAsked && cosignPublicKey === undefined) throw usageError('sigstore-trusted-root is set, but neither cosign-public-key nor cosign-identity says whose signature to require', 'add cosign-identity and cosign-issuer (keyless), or cosign-public-key');
  const form = 'oci://HOST[:PORT]/REPOSITORY:TAG, oci://HOST[:PORT]/REPOSITORY@sha256:DIGEST, or oci://HOST[:PORT]/REPOSITORY with oci-semver = RANGE';
  if (ociSemver === undefined) {
    if (!remote.tag && !remote.digest) throw usageError(`the remote "${remote.display}" names no tag or digest`, `use ${form}: a deploy names what it deploys`);
    return;
  }
  if (remote.tag || remote.digest) throw usageError(`oci-semver = ${ociSemver} chooses the tag, but the remote "${remote.display}" names one`, `name the repository alone: oci://${remote.registry}/${remote.repository}`);
  const { validRange } = await import('../base/lazy/semver.js');
  if (!validRange(ociSemver)) throw usageError(`oci-semver = "${ociSemver}" is not a semver range`, 'for example ^1.4, ~2.0.3 or >=1.2.0 <2');
}
