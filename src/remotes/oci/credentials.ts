// Registry credentials from a Docker config.json (`oci-credentials`, by default
// ~/.docker/config.json): `auths` keyed by registry host (or its https:// URL), each with
// `auth` (base64 of user:password) or `username` and `password`. A credential helper
// (`credHelpers`, `credsStore`) would run a program; the agent does not, and says so.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { usageError } from '../../base/errors.js';
import { registerSecret } from '../../base/redact.js';
import { readSmallRegularFile } from '../../base/small-file.js';
import type { Credentials } from '../../core/remote.js';

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

const defaultCredentialsFile = (env: NodeJS.ProcessEnv) => join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json');

/** The keys a config may file a registry under: "host:port", "https://host:port", "https://host:port/v1/" and so on. */
function keyMatches(key: string, registry: string): boolean {
  const bare = key.replace(/^https?:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  const wanted = registry.toLowerCase();
  return bare === wanted || (wanted === 'registry-1.docker.io' && bare === 'index.docker.io');
}

/**
 * The credentials for `registry` in the file, or undefined when it names none (anonymous pulls).
 * A missing default file is no error; a missing named file is.
 */
function credentialsFor(registry: string, file: string, named: boolean): Credentials | undefined {
  let text: string;
  try {
    text = readSmallRegularFile(file, 1 << 20);
  } catch (error) {
    if (!named && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw usageError(`oci-credentials = ${file} cannot be read (${(error as Error).message})`, 'point oci-credentials at a Docker config.json (docker login writes one)');
  }
  let config: DockerConfig;
  try {
    config = JSON.parse(text) as DockerConfig;
  } catch (error) {
    throw usageError(`${file} is not JSON (${(error as Error).message})`, 'it must be a Docker config.json: {"auths": {"HOST": {"auth": "BASE64(user:password)"}}}');
  }
  const entry = Object.entries(config.auths ?? {}).find(([key]) => keyMatches(key, registry))?.[1];
  if (entry) {
    let user = entry.username;
    let password = entry.password;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw usageError(`${file}: the "auth" for ${registry} is not base64 of user:password`);
      user = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
    if (user !== undefined && password !== undefined) {
      registerSecret(password);
      return { user, password };
    }
  }
  const helper = Object.entries(config.credHelpers ?? {}).find(([key]) => keyMatches(key, registry))?.[1] ?? (entry ? undefined : config.credsStore);
  if (helper) {
    throw usageError(
      `${file} keeps the credentials for ${registry} in the credential helper "docker-credential-${helper}", which repo-deploy does not run`,
      `write them into a config.json of their own for the agent (docker --config DIR login ${registry}) and set oci-credentials = DIR/config.json`,
    );
  }
  return undefined;
}

/** The login for `registry`: from `oci-credentials` when set (then the file must be usable), else from the default file if there is one. */
export function loginFor(registry: string, ociCredentials: string | undefined, env: NodeJS.ProcessEnv): { file: string; credentials: Credentials | undefined } {
  const file = ociCredentials ?? defaultCredentialsFile(env);
  return { file, credentials: credentialsFor(registry, file, ociCredentials !== undefined) };
}
