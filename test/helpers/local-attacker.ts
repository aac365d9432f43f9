// An unprivileged local user (`nobody`) doing what it can against the agent's lock: take the
// lock files' names first or hold them open (flock(1) creates and locks any file it can open),
// and bind or connect to the abstract socket names earlier versions locked with (abstract sockets
// have no permissions). It says on stdout what it managed, then stays until the test stops it.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, realpath, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { TestContext } from 'node:test';

const script = `
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
const [mode, ...targets] = process.argv.slice(2);
const report = [];
const held = [];
for (const target of targets) {
  if (target.startsWith('@')) {
    const name = '\\0' + target.slice(1);
    const outcome = await new Promise((done) => {
      if (mode === 'squat') {
        const server = createServer();
        server.once('error', (error) => done('bind ' + error.code));
        server.listen(name, () => { held.push(server); done('bound'); });
      } else {
        const socket = connect(name);
        socket.once('error', (error) => done('connect ' + error.code));
        socket.once('connect', () => { held.push(socket); done('connected'); });
      }
    });
    report.push(target + ': ' + outcome);
  } else {
    const outcome = await new Promise((done) => {
      const child = spawn('flock', ['--nonblock', '--shared', target, '-c', 'echo held; exec sleep 100000'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (chunk) => { text += chunk; if (text.includes('held')) done('flocked'); });
      child.stderr.on('data', (chunk) => { text += chunk; });
      child.on('close', (code) => done('flock exit ' + code + ' ' + text.trim()));
    });
    report.push(target + ': ' + outcome);
  }
}
process.stdout.write('attacker ready: ' + report.join('; ') + '\\n');
setInterval(() => undefined, 1 << 30);
`;

/** The abstract socket name repo-deploy up to 0.1.0 locked `path` with. */
export async function legacyLockSocketName(path: string): Promise<string> {
  const directory = await realpath(dirname(path));
  return `@repo-deploy-lock-${createHash('sha256').update(join(directory, basename(path))).digest('hex')}`;
}

export interface LocalAttacker {
  /** What it managed, one "target: outcome" per target. */
  report: string;
}

/**
 * Runs the attack as `nobody` from `root` (made traversable, as /var/cache and /var/deploy are on
 * a server). Targets: lock file paths, and abstract socket names prefixed with "@".
 * The whole process group is killed, by its pid, when the test ends.
 */
export async function startLocalAttacker(t: TestContext, root: string, mode: 'squat' | 'hold', targets: string[]): Promise<LocalAttacker> {
  await chmod(root, 0o755);
  const scriptPath = join(root, 'local-attacker.mjs');
  await writeFile(scriptPath, script, { mode: 0o644 });
  const child = spawn('runuser', ['-u', 'nobody', '--', process.execPath, scriptPath, mode, ...targets], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolveExit) => child.once('close', () => resolveExit()));
  t.after(async () => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // Already gone.
    }
    await exited;
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const report = await new Promise<string>((resolveReport, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = /attacker ready: (.*)\n/.exec(output);
      if (line) resolveReport(line[1] as string);
    });
    child.once('close', (code) => reject(new Error(`the attacker exited (${code}) before it was ready:\n${output}`)));
  });
  return { report };
}
