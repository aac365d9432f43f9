// The apps one agent runs. The original form is one config file (or flags alone): one app. The
// directory form is a conf.d/ of `NAME.cfg` files, one app each, beside the main file (or named
// by -c): the main file holds the agent-wide settings and the defaults every app inherits.
// A bad app file is reported and that app skipped; two apps that would share a live path,
// releases/ or a cache are refused as a whole, since either would corrupt the other.
import { lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { DeployError, messageOf, systemErrorCode, usageError } from '../base/errors.js';
import { layoutFor } from '../core/release-layout.js';
import type { Settings } from '../core/settings.js';
import { environmentName, knownSettingKeys, settingSpecs } from '../core/settings-schema.js';
import { readConfigFile, type RawSetting } from './config-file.js';
import { defaultConfigPath, loadSettings, type LoadOptions } from './config.js';

export interface App {
  /** The file's name without .cfg; '' for the one app of the original form. */
  name: string;
  settings: Settings;
}

export interface AppProblem {
  name: string;
  file: string;
  error: DeployError;
}

export interface AgentApps {
  /** 'single': one config file (or flags), as repo-deploy 1.0.8; 'directory': conf.d's apps. */
  form: 'single' | 'directory';
  /** The agent-wide settings: http-listen, log-format, the webhook; the main file's, or the one app's. */
  agent: Settings;
  apps: App[];
  /** App files that could not be used: each is skipped, and check-config fails naming it. */
  problems: AppProblem[];
  /** The conf.d directory read, in the directory form. */
  directory?: string;
}

/** Settings only the agent as a whole has: one HTTP server, one log. */
export const agentWideKeys: ReadonlySet<string> = new Set(['http-listen', 'log-format', 'webhook-min-interval']);

const appNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** More app files than this is a directory named by mistake (-c /usr/lib), not a host's apps. */
export const maxApps = 1000;

export async function loadApps(options: LoadOptions): Promise<AgentApps> {
  const { flags, env, cwd } = options;
  const namedConfig = flags.config ?? env[environmentName('config')];
  const configPath = resolve(cwd, namedConfig ?? defaultConfigPath);
  const namedIsDirectory = statSync(configPath, { throwIfNoEntry: false })?.isDirectory() === true;
  const remoteFromCommandLine = flags.remote ?? (env[environmentName('remote')] || undefined);
  if (namedIsDirectory && remoteFromCommandLine !== undefined) {
    throw usageError(`-c names the directory ${configPath} (one app per file), and ${flags.remote !== undefined ? '-r' : environmentName('remote')} names one remote`, 'give a config file with -c for a one-off run with -r, or run the apps of the directory without -r');
  }
  const mainFile = namedIsDirectory
    ? { path: configPath, settings: new Map<string, RawSetting>() }
    : { path: configPath, settings: await readConfigFile(configPath, namedConfig !== undefined, knownSettingKeys) };
  const directory = namedIsDirectory ? configPath : join(dirname(configPath), 'conf.d');
  // The original command line keeps its meaning: a remote given by -r or the environment is the
  // one app, whatever conf.d holds.
  const files = remoteFromCommandLine === undefined ? appFiles(directory, namedIsDirectory) : [];
  if (files.length === 0) {
    if (namedIsDirectory) throw usageError(`the directory ${configPath} holds no app file (NAME.cfg)`, 'add one file per app, e.g. api.cfg with remote = ... and local = ...');
    const settings = await loadSettings({ ...options, mainFile });
    if (settings.group !== undefined) throw usageError(`group = ${settings.group} is set, but there is no apps directory (${directory})`, 'a group joins apps of conf.d/ that share one live path; put each remote in conf.d/NAME.cfg with the same group');
    return { form: 'single', agent: settings, apps: [{ name: '', settings }], problems: [] };
  }
  const mainRemote = mainFile.settings.get('remote');
  if (mainRemote && mainRemote.value !== '') {
    throw usageError(`${configPath}:${mainRemote.line} names a remote, and ${directory} holds apps (${files.map((file) => basename(file)).join(', ')})`, `move the main file's remote and local into ${join(directory, 'NAME.cfg')}, so each app is one file`);
  }
  const agent = await loadSettings({ ...options, mainFile });
  const apps: App[] = [];
  const problems: AppProblem[] = [];
  for (const file of files) {
    const name = basename(file, '.cfg');
    try {
      apps.push({ name, settings: await loadApp(name, file, options, mainFile) });
    } catch (error) {
      problems.push({ name, file, error: error instanceof DeployError ? error : usageError(`${file}: ${messageOf(error)}`) });
    }
  }
  const deployed = composeGroups(apps, agent, problems);
  refuseSharedPaths(deployed);
  return { form: 'directory', agent, apps: deployed, problems, directory };
}

/** The NAME.cfg files of the directory, sorted; an unreadable or unsafe directory is refused whole. */
function appFiles(directory: string, named: boolean): string[] {
  let info: Stats | undefined;
  try {
    info = statSync(directory);
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT' && !named) return [];
    throw usageError(`the apps directory ${directory} cannot be read (${systemErrorCode(error) ?? messageOf(error)})`);
  }
  if (!info.isDirectory()) return [];
  refuseWritableByOthers(directory, info, 'the apps directory');
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch (error) {
    throw usageError(`the apps directory ${directory} cannot be read (${systemErrorCode(error) ?? messageOf(error)})`, 'run as its owner (usually root), or fix its permissions');
  }
  const files = names.filter((name) => name.endsWith('.cfg') && !name.startsWith('.')).sort();
  if (files.length > maxApps) throw usageError(`the apps directory ${directory} holds ${files.length} .cfg files; the agent runs at most ${maxApps} apps`, 'name the directory of the apps with -c');
  return files.map((name) => join(directory, name));
}

/**
 * Whoever can write an app file decides what the agent (often root) deploys and which hooks it
 * runs: a file or directory that group or others may write, or that another user owns, is refused.
 */
function refuseWritableByOthers(path: string, info: Stats, what: string): void {
  const uid = process.getuid?.();
  if ((info.mode & 0o022) !== 0 && !(info.isDirectory() && (info.mode & 0o1000) !== 0 && info.uid === uid)) {
    throw usageError(`${what} ${path} can be written by group or others (mode ${(info.mode & 0o7777).toString(8)}): anyone who can write it decides what this agent deploys`, `chmod go-w ${path}`);
  }
  if (uid !== undefined && info.uid !== uid && info.uid !== 0) {
    throw usageError(`${what} ${path} is owned by uid ${info.uid}, neither this agent's user (uid ${uid}) nor root: that user decides what this agent deploys`, `chown ${uid === 0 ? 'root' : uid} ${path}`);
  }
}

async function loadApp(name: string, file: string, options: LoadOptions, mainFile: { path: string; settings: Map<string, RawSetting> }): Promise<Settings> {
  if (!appNamePattern.test(name)) {
    throw usageError(`${file}: "${name}" cannot name an app (letters, digits, ".", "_" and "-", at most 64, starting with a letter or digit)`, 'rename the file, e.g. api.cfg');
  }
  const info = lstatSync(file);
  // A symlink is how an operator enables an app kept elsewhere (sites-enabled); its target is judged.
  refuseWritableByOthers(file, info.isSymbolicLink() ? statSync(file) : info, 'the app file');
  const settings = await readConfigFile(file, true, knownSettingKeys);
  for (const [key, raw] of settings) {
    if (agentWideKeys.has(key)) throw usageError(`${file}:${raw.line}: ${key} is the whole agent's, not one app's`, `set it in ${mainFile.path}`);
  }
  const loaded = await loadSettings({ ...options, app: { name, path: file, settings }, mainFile });
  if (!loaded.remote) throw usageError(`${file}: no remote is set`, `add "remote = ..." to ${file}`);
  return loaded;
}

/**
 * Settings a group's apps must agree on, as they share one release: everything but what reaches
 * each member's remote (its address, credentials, transfer limits and trust), which stays its own.
 */
const memberOwnKeys: ReadonlySet<string> = new Set([
  'remote', 'cache', 'group', 'ssh-key', 'ssh-known-hosts', 'ssh-strict-host-key-checking', 'aws-access-key', 'aws-secret-key', 'aws-region', 's3-endpoint',
  'http-timeout', 'download-timeout', 'max-redirects', 'max-unpacked-size', 'max-download-size', 'allow-insecure-redirects', 'max-entries', 'git-timeout',
  'git-submodules', 'allowed-signers', 'checksum', 'gpg-keyring', 'refuse-rewrites', 'webhook-secret',
]);

/**
 * Apps that name one group become one app of that name: one live path, lock, state and cache
 * (CACHE/apps/GROUP), its release built from every member's remote, each in a subdirectory
 * named after its app. A group whose members disagree on a shared setting is skipped, named.
 */
function composeGroups(apps: App[], agent: Settings, problems: AppProblem[]): App[] {
  const groups = new Map<string, App[]>();
  const alone: App[] = [];
  for (const app of apps) {
    if (app.settings.group === undefined) alone.push(app);
    else groups.set(app.settings.group, [...(groups.get(app.settings.group) ?? []), app]);
  }
  const composed: App[] = [...alone];
  for (const [group, members] of groups) {
    const [first] = members as [App, ...App[]];
    const file = members.map((member) => member.settings.configPath).join(', ');
    try {
      if (!appNamePattern.test(group)) throw usageError(`${first.settings.configPath}: group = "${group}" cannot name a group (letters, digits, ".", "_" and "-", at most 64)`);
      if (apps.some((app) => app.name === group)) throw usageError(`group = ${group} (${file}) has the name of an app; a group's release, state and metrics go by its name`, 'name the group apart from every app');
      for (const member of members.slice(1)) {
        for (const spec of settingSpecs) {
          if (memberOwnKeys.has(spec.key)) continue;
          const [mine, theirs] = [first, member].map((app) => JSON.stringify((app.settings as unknown as Record<string, unknown>)[spec.field]));
          if (mine !== theirs) {
            throw usageError(`the apps ${first.name} and ${member.name} of group ${group} set ${spec.key} differently (${first.settings.configPath}, ${member.settings.configPath}); they share one release`, `set ${spec.key} the same in both, or once in the main file`);
          }
        }
      }
      const cache = join(agent.cache, 'apps', group);
      const remote = { kind: 'group' as const, display: `group ${group} (${members.map((member) => `${member.name}: ${member.settings.remote!.display}`).join(', ')})` };
      composed.push({ name: group, settings: { ...first.settings, cache, remote, configPath: first.settings.configPath, groupMembers: members.map((member) => ({ name: member.name, settings: { ...member.settings, cache } })) } });
    } catch (error) {
      problems.push({ name: group, file, error: error instanceof DeployError ? error : usageError(messageOf(error)) });
    }
  }
  return composed.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Two apps on one live path, one releases/ directory (live paths in one parent directory) or one
 * cache, or one app's paths inside another's, would prune, lock or overwrite each other.
 */
function refuseSharedPaths(apps: App[]): void {
  const places = apps.flatMap(({ name, settings }) => {
    const layout = layoutFor(settings.local);
    return [
      { name, file: settings.configPath, what: 'live path', path: layout.live },
      { name, file: settings.configPath, what: 'releases directory', path: layout.releasesDirectory },
      { name, file: settings.configPath, what: 'cache', path: resolve(settings.cache) },
    ];
  });
  for (const [index, place] of places.entries()) {
    for (const other of places.slice(index + 1)) {
      if (other.name === place.name) continue;
      const inside = (inner: string, outer: string) => {
        const path = relative(outer, inner);
        return path !== '..' && !path.startsWith('../');
      };
      if (!inside(place.path, other.path) && !inside(other.path, place.path)) continue;
      const how = place.path === other.path ? `share one ${place.what === other.what ? place.what : `path (${place.what} of one, ${other.what} of the other)`}, ${place.path}` : `overlap: ${place.what} ${place.path} and ${other.what} ${other.path}`;
      throw usageError(
        `the apps ${place.name} (${place.file}) and ${other.name} (${other.file}) ${how}`,
        place.what === 'releases directory' || other.what === 'releases directory'
          ? 'releases/ sits beside the live path: give each app a live path in a directory of its own, e.g. local = /srv/NAME/current'
          : 'give each app its own local and cache (an app without cache gets CACHE/apps/NAME)',
      );
    }
  }
}
