// The daemon's loop on a virtual clock: the instants at which it checks are asserted exactly
// (schedule, splay, backoff, SIGHUP, stop), with real checks of a real local zip. No wall-clock
// margins: the clock advances only when the daemon sleeps.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { loadSettings } from '../src/settings/config.js';
import { runDaemon } from '../src/daemon/daemon.js';
import { createLogger } from '../src/base/log.js';
import { makeSandbox } from './helpers/cli.js';
import { temporaryDirectory } from './helpers/temp.js';
import { VirtualClock } from './helpers/virtual-clock.js';
import { zipTree } from './helpers/zips.js';


interface Run {
  checks: Array<{ at: string; result: string; failedInARow?: number }>;
  lines: string[];
  /** The state file the agent wrote, read after the daemon stopped. */
  state?: { consecutiveFailedChecks: number };
}

/** Runs the daemon until `stopAfter` checks (or `onCheck` decides), on a virtual clock starting at `start`. */
async function runOnClock(t: TestContext, configText: string, start: string, stopAfter: number, options: { random?: number[]; remote?: 'present' | 'missing'; onCheck?: (run: Run, signals: EventEmitter) => void } = {}): Promise<Run> {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root, configText);
  const archive = join(root, 'app.zip');
  if (options.remote !== 'missing') await zipTree({ 'index.html': 'version 1\n' }, archive, root);
  const settings = await loadSettings({ flags: { config: sandbox.config, remote: archive, local: sandbox.live, cache: sandbox.cache, preHooks: sandbox.preHooks, postHooks: sandbox.postHooks }, env: {}, cwd: root });
  const run: Run = { checks: [], lines: [] };
  const signals = new EventEmitter();
  const clock = new VirtualClock(Date.parse(start));
  const draws = [...(options.random ?? [])];
  const context = { settings, log: createLogger({ verbose: true, write: (line) => run.lines.push(line), now: clock.now }), env: {}, now: clock.now, lockWaitMs: 0 };
  await runDaemon({
    agent: context,
    apps: [{ context }],
    clock,
    random: () => draws.shift() ?? 0,
    signals,
    onCheck: (outcome, startedAt) => {
      run.checks.push({ at: startedAt.toISOString(), result: outcome instanceof Error ? 'error' : outcome.result, failedInARow: outcome instanceof Error ? undefined : outcome.failedChecksInARow });
      options.onCheck?.(run, signals);
      if (run.checks.length >= stopAfter) signals.emit('SIGTERM');
    },
  });
  const { readFile } = await import('node:fs/promises');
  run.state = JSON.parse(await readFile(join(sandbox.cache, 'state.json'), 'utf8'));
  return run;
}

test('a check at start, then one at each tick plus the splay drawn for it, at exact instants', async (t) => {
  const run = await runOnClock(t, 'schedule = */10 * * * * *\nsplay = 3\n', '2026-01-01T00:00:01.000Z', 4, { random: [0.5, 0.1, 0.9] });
  assert.deepEqual(run.checks.map((check) => check.at), ['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:11.500Z', '2026-01-01T00:00:20.300Z', '2026-01-01T00:00:32.700Z']);
  assert.deepEqual(run.checks.map((check) => check.result), ['updated', 'unchanged', 'unchanged', 'unchanged']);
});

test('backoff: after each failed check the ticks are skipped for a doubling delay capped at max-backoff', async (t) => {
  const run = await runOnClock(t, 'schedule = * * * * * *\nretry-backoff = 5\nmax-backoff = 20\n', '2026-01-01T00:00:00.500Z', 5, { remote: 'missing' });
  assert.deepEqual(run.checks.map((check) => check.at), ['2026-01-01T00:00:00.500Z', '2026-01-01T00:00:06.000Z', '2026-01-01T00:00:16.000Z', '2026-01-01T00:00:36.000Z', '2026-01-01T00:00:56.000Z']);
  assert.ok(run.checks.every((check) => check.result === 'failed'));
  assert.deepEqual(run.lines.filter((line) => /check failed/.test(line)).map((line) => /next check in (\d+) s/.exec(line)?.[1]).slice(0, 4), ['5', '10', '20', '20']);
  // One count: what status shows (the state) is what the backoff and /healthz were given.
  assert.deepEqual(run.checks.map((check) => check.failedInARow), [1, 2, 3, 4, 5]);
  assert.equal(run.state?.consecutiveFailedChecks, 5);
});

test('SIGHUP checks at once, without waiting for the next tick; a yearly schedule waits a year', async (t) => {
  let hungUp = false;
  const run = await runOnClock(t, 'schedule = 0 0 1 1 *\n', '2026-03-01T12:00:00.000Z', 3, {
    onCheck: (current, signals) => {
      if (!hungUp) {
        hungUp = true;
        signals.emit('SIGHUP');
      }
    },
  });
  assert.deepEqual(run.checks.map((check) => check.at), ['2026-03-01T12:00:00.000Z', '2026-03-01T12:00:00.000Z', '2027-01-01T00:00:00.000Z']);
  assert.ok(run.lines.some((line) => /SIGHUP received: checking now/.test(line)));
});

test('a stop between checks ends the loop at once, and no check follows', async (t) => {
  const run = await runOnClock(t, 'schedule = * * * * * *\n', '2026-01-01T00:00:00.000Z', 1);
  assert.equal(run.checks.length, 1);
  assert.ok(run.lines.some((line) => /SIGTERM received: stopping/.test(line)));
  assert.ok(run.lines.at(-1)?.includes('repo-deploy stopped'));
});
