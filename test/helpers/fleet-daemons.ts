// A fleet of real agents (daemons) on one redis-server and one origin, for rollout tests.
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeSandbox, runCli, writeHook, type Sandbox } from './cli.js';
import { startAgent, type RunningAgent } from './daemon.js';
import { startHttpServer, type TestHttpServer } from './http-server.js';
import { startRedis, type TestRedis } from './redis-server.js';
import { temporaryDirectory } from './temp.js';
import { zipTree, type TreeSpec } from './zips.js';

export interface Member {
  host: string;
  sandbox: Sandbox;
  args: string[];
  agent?: RunningAgent;
}

export interface Fleet {
  root: string;
  redis: TestRedis;
  origin: TestHttpServer;
  members: Member[];
  spans: string;
  publish(version: string, extra?: TreeSpec): Promise<void>;
  start(member: Member): RunningAgent;
  /** Waits until every listed member serves `version`. */
  waitForVersion(version: string, members?: Member[]): Promise<void>;
  liveVersion(member: Member): Promise<string | undefined>;
  command(...args: string[]): ReturnType<typeof runCli>;
  /** The most servers that were between their update's start and its gate at one instant. */
  mostAtOnce(): Promise<number>;
  starts(): Promise<string[]>;
  downloads(): number;
  /** Publishes version 1, starts every member, waits until all serve it; returns the update starts so far. */
  allOnVersion1(): Promise<number>;
  /** Waits until an update starts after the first `count` starts. */
  nextStart(count: number): Promise<void>;
}

/** `preUpdate` is more of the pre-update hook; $SANDBOX in it is the server's own directory, $FLEET the test's. */
export async function fleet(t: TestContext, size: number, settings: string, preUpdate = ''): Promise<Fleet> {
  const root = await temporaryDirectory(t);
  const redis = await startRedis(t);
  const origin = await startHttpServer(t);
  const archive = join(root, 'app.zip');
  origin.route('/app.zip', { kind: 'file', path: archive });
  const spans = join(root, 'spans.log');
  const members: Member[] = [];
  for (let index = 0; index < size; index++) {
    const host = `server-${index}`;
    const gate = `echo "end ${host} $(date +%s%N)" >> ${spans}; test ! -e "$CURRENT_CONFIG/broken"`;
    const config = `fleet-redis = ${redis.url}\nfleet-name = web\nhost-id = ${host}\nschedule = * * * * * *\nhealth-check = ${gate}\n${settings}`;
    const sandbox = await makeSandbox(join(root, host), config);
    await writeHook(sandbox.preHooks, '10-span', `echo "start ${host} $(date +%s%N)" >> ${spans}\n${preUpdate.replaceAll('$SANDBOX', sandbox.root).replaceAll('$FLEET', root)}`);
    const args = sandbox.args(origin.url('/app.zip')).filter((argument) => argument !== '-f');
    members.push({ host, sandbox, args });
  }
  const value: Fleet = {
    root,
    redis,
    origin,
    members,
    spans,
    async publish(version, extra = {}) {
      await zipTree({ 'index.html': `version ${version}\n`, ...extra }, join(root, 'next.zip'), root);
      await rename(join(root, 'next.zip'), archive);
    },
    start(member) {
      member.agent = startAgent(t, member.args);
      return member.agent;
    },
    liveVersion: (member) => member.sandbox.liveFile('index.html').then((text) => text.trim().replace(/^version /, ''), () => undefined),
    async waitForVersion(version, which = members) {
      for (;;) {
        const versions = await Promise.all(which.map((member) => value.liveVersion(member)));
        if (versions.every((live) => live === version)) return;
        const exited = which.find((member) => member.agent && member.agent.child.exitCode !== null);
        if (exited) throw new Error(`${exited.host} exited:\n${exited.agent?.lines.join('\n')}`);
        await sleep(100);
      }
    },
    command: (...args) => runCli([...args, '-c', members[0]!.sandbox.config]),
    async mostAtOnce() {
      const events = (await readFile(spans, 'utf8')).split('\n').filter(Boolean).map((line) => {
        const [kind, host, at] = line.split(' ');
        return { kind, host, at: BigInt(at ?? '0') };
      });
      events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
      let open = 0;
      let most = 0;
      const updating = new Set<string>();
      for (const event of events) {
        if (event.kind === 'start') updating.add(event.host ?? '');
        else updating.delete(event.host ?? '');
        open = updating.size;
        most = Math.max(most, open);
      }
      return most;
    },
    starts: async () => (await readFile(spans, 'utf8').catch(() => '')).split('\n').filter((line) => line.startsWith('start ')),
    downloads: () => origin.requests.filter((request) => request.path === '/app.zip' && request.status === 200).length,
    async allOnVersion1() {
      await value.publish('1');
      for (const member of members) value.start(member);
      await value.waitForVersion('1');
      return (await value.starts()).length;
    },
    async nextStart(count) {
      while ((await value.starts()).length === count) await sleep(50);
    },
  };
  return value;
}

export async function stopAll(f: Fleet): Promise<string> {
  let output = '';
  for (const member of f.members) {
    if (!member.agent || member.agent.child.exitCode !== null || member.agent.child.signalCode !== null) continue;
    const result = await member.agent.stop();
    output += result.stderr;
  }
  return output;
}
