// A real redis-server on a free loopback port, with a password, no persistence; stopped (by its
// process id) when the test ends. stop() and start() let a test take it away mid-rollout.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './git-servers.js';

export interface TestRedis {
  url: string;
  password: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

async function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export async function startRedis(t: Pick<TestContext, 'after'>): Promise<TestRedis> {
  const port = await freePort();
  const password = `redis-pass-${Math.random().toString(36).slice(2)}`;
  let child: ChildProcess | undefined;
  const directory = mkdtempSync(join(tmpdir(), 'repo-deploy-redis-'));
  const redis: TestRedis = {
    url: `redis://:${password}@127.0.0.1:${port}/0`,
    password,
    port,
    async start() {
      // --dir: a server writes dump.rdb where it runs (a replica does, at each sync), and a later
      // one started there loads it, --save '' or not: a test's server starts in a directory of its own.
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--save', '', '--appendonly', 'no', '--dir', directory], { stdio: 'ignore' });
      for (let tries = 0; !(await acceptsConnections(port)); tries++) {
        if (tries > 200) throw new Error('redis-server did not start');
        await sleep(25);
      }
    },
    async stop() {
      const running = child;
      child = undefined;
      if (!running?.pid || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      process.kill(running.pid, 'SIGKILL');
      await exited;
    },
  };
  await redis.start();
  t.after(async () => {
    await redis.stop();
    rmSync(directory, { recursive: true, force: true });
  });
  return redis;
}
