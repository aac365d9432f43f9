// An agent deploying a zip from a real HTTP server on loopback, with recording hooks: the setup
// most tests of the agent's behaviour start from.
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { makeSandbox, runCli, writeRecordingHook, type Sandbox } from './cli.js';
import { startAgent, type RunningAgent } from './daemon.js';
import { startHttpServer, type TestHttpServer } from './http-server.js';
import { temporaryDirectory } from './temp.js';
import { zipTree } from './zips.js';

export interface Setup {
  root: string;
  sandbox: Sandbox;
  server: TestHttpServer;
  remote: string;
  hookLog: string;
  publish(version: string): Promise<void>;
  /** Daemon arguments: the sandbox's flags without -f. */
  daemonArgs(...extra: string[]): string[];
  agent(extra?: string[], env?: NodeJS.ProcessEnv): RunningAgent;
  once(extra?: string[], env?: NodeJS.ProcessEnv): ReturnType<typeof runCli>;
  hookLines(): Promise<string[]>;
  state(): Promise<any>;
}

/** `root`: where the sandbox goes (a small filesystem of a full-disk test); a fresh temporary directory by default. */
export async function setup(t: TestContext, configText = '', { root: given }: { root?: string } = {}): Promise<Setup> {
  const root = given ?? (await temporaryDirectory(t));
  const sandbox = await makeSandbox(root, configText);
  const server = await startHttpServer(t);
  const archive = join(root, 'app.zip');
  server.route('/app.zip', { kind: 'file', path: archive });
  const hookLog = join(root, 'hooks.log');
  await writeRecordingHook(sandbox.preHooks, '10-record', hookLog, join(root, 'pre-exit'));
  await writeRecordingHook(sandbox.postHooks, '10-record', hookLog, join(root, 'post-exit'));
  const remote = server.url('/app.zip');
  const setupValue: Setup = {
    root,
    sandbox,
    server,
    remote,
    hookLog,
    async publish(version) {
      // Written beside and renamed over, as a careful publisher does: a daemon checking every
      // second must never see a half-written archive.
      const next = join(root, `next-${version}-${Date.now()}.zip`);
      await zipTree({ 'index.html': `version ${version}\n` }, next, root);
      await rename(next, archive);
    },
    daemonArgs: (...extra) => sandbox.args(remote, ...extra).filter((argument) => argument !== '-f'),
    agent: (extra = [], env = {}) => startAgent(t, setupValue.daemonArgs(...extra), env),
    once: (extra = [], env = {}) => runCli([...sandbox.args(remote), ...extra], env),
    hookLines: async () => (await readFile(hookLog, 'utf8').catch(() => '')).split('\n').filter(Boolean),
    state: async () => JSON.parse(await readFile(join(sandbox.cache, 'state.json'), 'utf8')),
  };
  return setupValue;
}

