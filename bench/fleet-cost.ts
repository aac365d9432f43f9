// The fleet coordination's cost per member as the fleet grows: simulated members (the agent's
// own Fleet client, the same calls in the same order as a check) against a real redis-server.
// Redis counts the commands it ran and the CPU it used; both are divided by the members' checks.
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { loadSettings, type Settings } from '../src/settings/config.js';
import { Fleet } from '../src/fleet/fleet.js';
import { freePort } from '../test/helpers/git-servers.js';

export interface FleetCost {
  members: number;
  idleCommandsPerCheck: number;
  idleCpuMicrosecondsPerCheck: number;
  rolloutCommandsPerCheck: number;
  rolloutCpuMicrosecondsPerCheck: number;
}

async function redisStats(redis: Redis): Promise<{ commands: number; cpuMicroseconds: number }> {
  const info = await redis.info();
  const value = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  // The INFO call itself is counted too; it is one command, the same at every size.
  return { commands: value('total_commands_processed'), cpuMicroseconds: (value('used_cpu_sys') + value('used_cpu_user')) * 1e6 };
}

/** One check of a member, as FleetRollout.join/plan/permit/finish make it: a connection of its own. */
async function memberCheck(settings: Settings, live: string, rollingOut: string | undefined): Promise<void> {
  const fleet = await Fleet.connect(settings, `bench-instance-${settings.hostId}`);
  const now = new Date();
  await fleet.heartbeat(now, 'idle', live);
  await fleet.epoch(undefined, now);
  const current = await fleet.current();
  const scouting = await fleet.scout();
  if (rollingOut && current?.revision === rollingOut) await fleet.begin(rollingOut);
  await fleet.heartbeat(now, rollingOut ? 'waiting' : 'idle', live);
  if (scouting) await fleet.releaseScout();
  await fleet.close();
}

export async function measureFleetCost(sizes: number[]): Promise<FleetCost[]> {
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '20000', '--dir', tmpdir()], { stdio: 'ignore' });
  try {
    for (let tries = 0; ; tries++) {
      const up = await new Promise<boolean>((resolve) => {
        const socket = createConnection({ port, host: '127.0.0.1' }, () => (socket.destroy(), resolve(true)));
        socket.on('error', () => resolve(false));
      });
      if (up) break;
      if (tries > 200) throw new Error('redis-server did not start');
      await sleep(25);
    }
    const url = `redis://127.0.0.1:${port}/0`;
    const admin = new Redis(url);
    const results: FleetCost[] = [];
    for (const size of sizes) {
      const base = await loadSettings({ flags: {}, env: { REPO_DEPLOY_FLEET_REDIS: url, REPO_DEPLOY_FLEET_NAME: `bench-${size}`, REPO_DEPLOY_MAX_PARALLEL: '2', REPO_DEPLOY_REMOTE: 'https://ci.example.com/builds/app.zip' }, cwd: process.cwd() });
      const members: Settings[] = Array.from({ length: size }, (_, index) => ({ ...base, hostId: `member-${index}` }));
      // At least 1,000 member checks at every size: Redis's CPU counters also take in its own
      // background work, which swamped the 10 checks of a small fleet (1,840 us a check in one
      // run, 607 us in the next).
      const rounds = Math.max(1, Math.ceil(1000 / size));
      const measureRound = async (rollingOut: string | undefined) => {
        const before = await redisStats(admin);
        for (let round = 0; round < rounds; round++) {
          for (const member of members) await memberCheck(member, 'sha256:live', rollingOut);
        }
        const after = await redisStats(admin);
        const checks = size * rounds;
        return { commands: (after.commands - before.commands - 1) / checks, cpu: (after.cpuMicroseconds - before.cpuMicroseconds) / checks };
      };
      await measureRound(undefined); // every member registered once, as after a day of checks
      const idle = await measureRound(undefined);
      const publisher = await Fleet.connect(members[0] as Settings);
      await publisher.publishCurrent({ revision: 'sha256:next', remote: 'bench', remoteState: { etag: '"x"' }, by: 'member-0' }, new Date(), (await publisher.current())?.seq ?? '');
      await publisher.close();
      const rollout = await measureRound('sha256:next');
      results.push({ members: size, idleCommandsPerCheck: idle.commands, idleCpuMicrosecondsPerCheck: idle.cpu, rolloutCommandsPerCheck: rollout.commands, rolloutCpuMicrosecondsPerCheck: rollout.cpu });
    }
    await admin.quit();
    return results;
  } finally {
    server.kill('SIGKILL');
  }
}

// Run by itself: node --import tsx bench/fleet-cost.ts
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await measureFleetCost([10, 1000]), null, 2));
}
