// A fleet for fault tests: a real redis-server, an origin serving the zip, and members, each in
// its own sandbox, with the fleet's settings shared and a member's own added.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { makeSandbox, runCli, type Sandbox } from './cli.js';
import { startHttpServer, type TestHttpServer } from './http-server.js';
import { startRedis, type TestRedis } from './redis-server.js';
import { temporaryDirectory } from './temp.js';
import { zipTree } from './zips.js';

/** What `fleet status --json` prints, as far as these tests read it. */
export interface FleetStatusJson {
  halt: { reason: string } | null;
  members: Array<{ host: string; instance: string | null; clash: { instance: string } | null }>;
  current: { revision: string; by: string } | null;
  progress: { committed: string[]; inProgress: string[]; halted: unknown } | null;
}

export interface Rig {
  root: string;
  redis: TestRedis;
  origin: TestHttpServer;
  publish(version: string): Promise<void>;
  /** A member named `host` (host-id), in its own directory (`directory`, default the name). */
  member(host: string, settings?: string, directory?: string): Promise<Sandbox & { daemonArgs: string[]; once: (env?: NodeJS.ProcessEnv) => ReturnType<typeof runCli> }>;
  fleetStatus(): Promise<FleetStatusJson>;
  /** redis-cli against the fleet's Redis (a test reading or forging what agents wrote); its stdout. */
  redisCli(...args: string[]): Promise<string>;
}

export async function rig(t: TestContext, fleetSettings: string): Promise<Rig> {
  const root = await temporaryDirectory(t);
  const redis = await startRedis(t);
  const origin = await startHttpServer(t);
  const archive = join(root, 'app.zip');
  origin.route('/app.zip', { kind: 'file', path: archive });
  const members: Sandbox[] = [];
  const value: Rig = {
    root,
    redis,
    origin,
    async publish(version) {
      await zipTree({ 'index.html': `version ${version}\n` }, join(root, 'next.zip'), root);
      await rename(join(root, 'next.zip'), archive);
    },
    async member(host, settings = '', directory = host) {
      const sandbox = await makeSandbox(join(root, directory), `fleet-redis = ${redis.url}\nfleet-name = web\nhost-id = ${host}\n${fleetSettings}${settings}`);
      members.push(sandbox);
      const args = sandbox.args(origin.url('/app.zip'));
      return { ...sandbox, daemonArgs: args.filter((argument) => argument !== '-f'), once: (env = {}) => runCli(args, env) };
    },
    async redisCli(...args) {
      return (await promisify(execFile)('redis-cli', ['-p', String(redis.port), '-a', redis.password, '--no-auth-warning', ...args])).stdout;
    },
    async fleetStatus() {
      return JSON.parse((await runCli(['fleet', 'status', '--json', '-c', members[0]!.config])).stdout);
    },
  };
  return value;
}

/** A hook that says it runs, then waits until the test creates `release`. */
export const waitingHook = (release: string) => `echo "inside, waiting"\nwhile [ ! -e "${release}" ]; do sleep 0.05; done`;

/** LD_PRELOAD for libfaketime (Debian's faketime package): a process whose clock runs `offset` ahead. */
export function clockAhead(offset: string): NodeJS.ProcessEnv {
  for (const directory of ['/usr/lib/x86_64-linux-gnu/faketime', '/usr/lib/aarch64-linux-gnu/faketime', '/usr/lib/faketime']) {
    try {
      if (readdirSync(directory).includes('libfaketime.so.1')) return { LD_PRELOAD: join(directory, 'libfaketime.so.1'), FAKETIME: offset, DONT_FAKE_MONOTONIC: '1' };
    } catch {
      // not this layout
    }
  }
  throw new Error('libfaketime.so.1 not found: install Debian\'s faketime package (.ci/run does)');
}
