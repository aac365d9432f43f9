// Runs the built command line as operators do: a child process with arguments and environment,
// capturing its output and exit status.
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const cliPath = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/cli.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ReturnType<typeof spawn>;
  done: Promise<CliResult>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  // 'close' waits for every holder of the pipes; a grandchild the CLI left behind must not keep a
  // test waiting, so 'exit' plus a moment for the last output ends the run too.
  const done = new Promise<CliResult>((resolvePromise) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null) => resolvePromise({ code, signal, stdout, stderr });
    child.on('close', finish);
    child.on('exit', (code, signal) => setTimeout(() => finish(code, signal), 500).unref());
  });
  return { child, done };
}

export const runCli = (args: string[], env?: NodeJS.ProcessEnv) => startCli(args, env).done;

/** A deployment sandbox: live path, cache, hook directories, a config file. */
export interface Sandbox {
  root: string;
  live: string;
  cache: string;
  preHooks: string;
  postHooks: string;
  config: string;
  /** The standard flags pointing at this sandbox, plus -f. */
  args(remote: string, ...extra: string[]): string[];
  liveTarget(): Promise<string>;
  liveFile(path: string): Promise<string>;
}

export async function makeSandbox(root: string, configText = ''): Promise<Sandbox> {
  const sandbox: Sandbox = {
    root,
    live: join(root, 'www', 'current'),
    cache: join(root, 'cache'),
    preHooks: join(root, 'pre-update.d'),
    postHooks: join(root, 'post-update.d'),
    config: join(root, 'repo-deploy.cfg'),
    args: (remote, ...extra) => [
      '-f', '-c', sandbox.config, '-r', remote, '-l', sandbox.live, '--cache', sandbox.cache,
      '--pre-hooks', sandbox.preHooks, '--post-hooks', sandbox.postHooks, ...extra,
    ],
    liveTarget: () => readlink(sandbox.live),
    liveFile: (path) => readFile(join(sandbox.live, path), 'utf8'),
  };
  await mkdir(join(root, 'www'), { recursive: true });
  // Named on the command line, so they must exist (a named hook directory that does not is an error).
  await mkdir(sandbox.preHooks, { recursive: true });
  await mkdir(sandbox.postHooks, { recursive: true });
  await writeFile(sandbox.config, configText);
  return sandbox;
}

/** Writes an executable hook script. */
export async function writeHook(directory: string, name: string, body: string): Promise<string> {
  await mkdir(directory, { recursive: true });
  const path = join(directory, name);
  await writeFile(path, body.startsWith('#!') ? body : `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** A hook that appends its phase and environment to a log file, and exits with a status read from a file. */
export async function writeRecordingHook(directory: string, name: string, logFile: string, exitCodeFile?: string): Promise<string> {
  const exitLine = exitCodeFile ? `[ -f "${exitCodeFile}" ] && exit "$(cat "${exitCodeFile}")"` : '';
  return writeHook(
    directory,
    name,
    `echo "${name} phase=$REPO_DEPLOY_PHASE current=$CURRENT_CONFIG previous=$PREVIOUS_CONFIG revision=$REPO_DEPLOY_REVISION previous_revision=$REPO_DEPLOY_PREVIOUS_REVISION" >> "${logFile}"\n${exitLine}\nexit 0`,
  );
}
