// The daemon's memory over a long idle run: a real daemon process on a 1-second schedule against
// an unchanged HTTP remote (each check a conditional GET answered 304). Its resident memory is
// read from /proc at the Nth check, the count read from its own /metrics.
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../test/helpers/git-servers.js';

export interface DaemonMemory {
  /** Resident memory in MiB, by check count: all of it, and the private anonymous part alone. */
  rssMiB: Record<number, number>;
  anonymousMiB: Record<number, number>;
  checks: number;
  failedChecks: number;
}

/**
 * VmRSS, and RssAnon: the process's own heap and buffers, without the pages of the node binary
 * and libraries it has read (RssFile), which grow as code runs for the first time, are shared
 * with every other node process and are given back under memory pressure.
 */
async function residentMiB(pid: number): Promise<{ rss: number; anonymous: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rss: kib('VmRSS') / 1024, anonymous: kib('RssAnon') / 1024 };
}

async function checksSoFar(port: number): Promise<{ total: number; failed: number }> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text(), () => '');
  let total = 0;
  let failed = 0;
  for (const match of text.matchAll(/^repo_deploy_checks_total\{result="([^"]+)"\} (\d+)/gm)) {
    total += Number(match[2]);
    if (match[1] === 'failed') failed += Number(match[2]);
  }
  return { total, failed };
}

/** Starts the daemon; the returned function waits until the last sample point, stops it by its pid and reports. */
export async function startDaemonMemoryRun(cli: string, root: string, remote: string, samplePoints: number[]): Promise<() => Promise<DaemonMemory>> {
  await mkdir(join(root, 'none'), { recursive: true });
  const port = await freePort();
  await writeFile(join(root, 'daemon.cfg'), `schedule = * * * * * *\nhttp-listen = 127.0.0.1:${port}\n`);
  const args = [cli, '-c', join(root, 'daemon.cfg'), '-r', remote, '-l', join(root, 'www', 'current'), '--cache', join(root, 'cache'), '--pre-hooks', join(root, 'none'), '--post-hooks', join(root, 'none')];
  const daemon = spawn(process.execPath, args, { stdio: 'ignore' });
  const exited = new Promise((done) => daemon.once('exit', done));
  const rssMiB: Record<number, number> = {};
  const anonymousMiB: Record<number, number> = {};
  const sampling = (async () => {
    for (const point of samplePoints) {
      // Polled every quarter second: the sample is taken within a check or so of the point.
      for (let checks = await checksSoFar(port); checks.total < point; checks = await checksSoFar(port)) {
        if (daemon.exitCode !== null) throw new Error(`the daemon exited with ${daemon.exitCode}`);
        await sleep(250);
      }
      const resident = await residentMiB(daemon.pid as number);
      rssMiB[point] = resident.rss;
      anonymousMiB[point] = resident.anonymous;
    }
    return checksSoFar(port);
  })();
  void sampling.catch(() => undefined); // awaited below; this only keeps an early failure from being unhandled
  return async () => {
    try {
      const { total, failed } = await sampling;
      return { rssMiB, anonymousMiB, checks: total, failedChecks: failed };
    } finally {
      daemon.kill('SIGTERM');
      await exited;
    }
  };
}
