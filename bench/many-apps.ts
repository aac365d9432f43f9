// Many apps in one daemon (issue 24): a real daemon process with a conf.d of N apps, each an HTTP
// zip on a 1-second schedule (an idle check is a conditional GET answered 304), beside the same
// daemon with one app, alternated in each repetition. Read from outside: resident memory from
// /proc, CPU time from /proc/PID/stat (its own and that of the children it waited for: the
// flock(1) runs that take its locks), checks from its own /metrics. In the N-app daemon the first
// app's pre-update hook hangs for the whole run; the longest gap between two checks of any other
// app (sampled every 100 ms from /metrics) says how much the hang delays them.
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../test/helpers/git-servers.js';
import type { TestHttpServer } from '../test/helpers/http-server.js';

export interface ManyAppsRun {
  apps: number;
  residentMiB: number;
  /** CPU seconds per idle check per app, over the measured window. */
  cpuPerCheck: number;
  checks: number;
  failedChecks: number;
  /** The longest time one app (not the hung one) went without a check, in seconds. */
  longestGapSeconds: number;
  /** How long one check took, on average over every app's checks (from the daemon's histogram). */
  meanCheckSeconds: number;
}

const clockTicksPerSecond = 100; // Linux's USER_HZ

/** CPU time of a process and of its children it has waited for (utime, stime, cutime, cstime). */
export async function cpuSeconds(pid: number): Promise<number> {
  // Fields after the command name (which may hold spaces): from the 12th to the 15th.
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields.slice(11, 15).reduce((total, field) => total + Number(field), 0) / clockTicksPerSecond;
}

async function residentMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
}

/** Checks per app from /metrics, and the failed ones. */
async function checksByApp(port: number): Promise<{ byApp: Map<string, number>; failed: number; checkSeconds: number; checkCount: number }> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text(), () => '');
  const byApp = new Map<string, number>();
  let failed = 0;
  const total = (series: string) => sum([...text.matchAll(new RegExp(`^repo_deploy_check_duration_seconds_${series}\\{[^}]*\\} ([0-9.e+-]+)`, 'gm'))].map((match) => Number(match[1])));
  for (const match of text.matchAll(/^repo_deploy_checks_total\{app="([^"]+)",result="([^"]+)"\} (\d+)/gm)) {
    byApp.set(match[1]!, (byApp.get(match[1]!) ?? 0) + Number(match[3]));
    if (match[2] === 'failed' || match[2] === 'error') failed += Number(match[3]);
  }
  return { byApp, failed, checkSeconds: total('sum'), checkCount: total('count') };
}

/** The environment etc/repo-deploy.service gives the daemon (its Environment= lines, one setting each). */
async function unitEnvironment(cli: string): Promise<Record<string, string>> {
  const unit = await readFile(join(dirname(cli), '..', 'etc', 'repo-deploy.service'), 'utf8');
  return Object.fromEntries([...unit.matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)].map((match) => [match[1]!, match[2]!]));
}

const sum = (values: Iterable<number>) => [...values].reduce((total, value) => total + value, 0);

/**
 * One daemon with `apps` apps, each an archive served by `http` at /app-N.zip; with `hangFirst`,
 * app-00's pre-update hook never ends. Runs `seconds` after every other app has checked 3 times.
 * `fresh`: from nothing, every app deploying at the daemon's start; otherwise a daemon restarted
 * over what the last run in `root` deployed, whose checks are idle from the first.
 */
export async function runManyApps(cli: string, root: string, http: TestHttpServer, archive: string, apps: number, { hangFirst, seconds, fresh }: { hangFirst: boolean; seconds: number; fresh: boolean }): Promise<ManyAppsRun> {
  if (fresh) await rm(root, { recursive: true, force: true });
  const conf = join(root, 'etc', 'conf.d');
  await mkdir(conf, { recursive: true });
  const none = join(root, 'none');
  await mkdir(none, { recursive: true });
  const hangHooks = join(root, 'hang.d');
  await mkdir(hangHooks, { recursive: true });
  await writeFile(join(hangHooks, '10-hang'), '#!/bin/sh\nexec sleep 3600\n');
  await chmod(join(hangHooks, '10-hang'), 0o755);
  const port = await freePort();
  await writeFile(join(root, 'etc', 'repo-deploy.cfg'), `schedule = * * * * * *\nhttp-listen = 127.0.0.1:${port}\ncache = ${join(root, 'cache')}\npre-hooks = ${none}\npost-hooks = ${none}\nstop-grace = 1\n`, { mode: 0o600 });
  const names = Array.from({ length: apps }, (_, index) => `app-${String(index).padStart(2, '0')}`);
  for (const name of names) {
    http.route(`/${name}.zip`, { kind: 'file', path: archive });
    const hang = hangFirst && name === 'app-00' ? `pre-hooks = ${hangHooks}\nhook-timeout = 3600\n` : '';
    await writeFile(join(conf, `${name}.cfg`), `remote = ${http.url(`/${name}.zip`)}\nlocal = ${join(root, 'srv', name, 'current')}\n${hang}`, { mode: 0o600 });
  }
  const watched = names.filter((name) => !(hangFirst && name === 'app-00'));
  // BENCH_DAEMON_NODE_ARGS: node flags for the daemon, e.g. --cpu-prof --cpu-prof-dir=/tmp/prof to see where its time goes.
  const nodeArgs = process.env.BENCH_DAEMON_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  // Run as the systemd unit runs it, with the unit's environment.
  const daemon = spawn(process.execPath, [...nodeArgs, cli, '-c', join(root, 'etc', 'repo-deploy.cfg')], { stdio: 'ignore', detached: true, env: { ...process.env, ...(await unitEnvironment(cli)) } });
  const exited = new Promise((done) => daemon.once('exit', done));
  try {
    const pid = daemon.pid as number;
    for (let seen = await checksByApp(port); !watched.every((name) => (seen.byApp.get(name) ?? 0) >= 3); seen = await checksByApp(port)) {
      if (daemon.exitCode !== null) throw new Error(`the daemon exited with ${daemon.exitCode}`);
      await sleep(100);
    }
    const cpuBefore = await cpuSeconds(pid);
    const before = await checksByApp(port);
    const lastChange = new Map(watched.map((name) => [name, { count: before.byApp.get(name) ?? 0, at: Date.now() }]));
    let longestGap = 0;
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      await sleep(100);
      const now = await checksByApp(port);
      for (const name of watched) {
        const last = lastChange.get(name)!;
        const count = now.byApp.get(name) ?? 0;
        longestGap = Math.max(longestGap, (Date.now() - last.at) / 1000);
        if (count !== last.count) lastChange.set(name, { count, at: Date.now() });
      }
    }
    const after = await checksByApp(port);
    const cpuAfter = await cpuSeconds(pid);
    const resident = await residentMiB(pid);
    const checks = sum(watched.map((name) => after.byApp.get(name) ?? 0)) - sum(watched.map((name) => before.byApp.get(name) ?? 0));
    return { apps, residentMiB: resident, cpuPerCheck: (cpuAfter - cpuBefore) / checks, checks, failedChecks: after.failed, longestGapSeconds: longestGap, meanCheckSeconds: (after.checkSeconds - before.checkSeconds) / (after.checkCount - before.checkCount) };
  } finally {
    // The whole process group: the hung hook's sleep goes with the daemon.
    if (daemon.exitCode === null) process.kill(-(daemon.pid as number), 'SIGTERM');
    await exited;
    try {
      process.kill(-(daemon.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
