// The health gate: after the post-update hooks of an update succeed, `health-check` (a command,
// run like a hook, or an http(s) URL that must answer 2xx) must pass, and with health-settle it
// must keep passing, tried every health-interval, for that many seconds. A failure, or a stop
// during the gate, reverts the update exactly as a failed post-update hook does; the revision is
// committed only once the gate has passed.
import { sleepUnlessAborted } from '../base/abortable-sleep.js';
import { DeployError, messageOf, systemErrorCode } from '../base/errors.js';
import { hookProcessEnvironment, type HookEnvironment } from './hooks.js';
import type { Logger } from '../base/log.js';
import { runProcess } from '../base/process.js';

export interface HealthGate {
  check: string;
  timeoutMs: number;
  settleMs: number;
  intervalMs: number;
}

export interface HealthGateRun {
  gate: HealthGate;
  hookEnvironment: HookEnvironment;
  baseEnv: NodeJS.ProcessEnv;
  log: Logger;
  /** The agent is stopping: the gate ends, unpassed. */
  signal: AbortSignal;
  now: () => Date;
  /** Told the check command's process group as it starts (journaled, like a hook's). */
  onProcess?: (pid: number) => void;
}

const isUrl = (check: string) => /^https?:\/\//i.test(check);

/** Resolves when the gate passed; throws a post-hook DeployError saying why it did not. */
export async function passHealthGate(run: HealthGateRun): Promise<void> {
  const { gate, log } = run;
  const started = run.now().getTime();
  log.info(`health gate: ${isUrl(gate.check) ? `GET ${gate.check}` : 'running the health check'}${gate.settleMs ? `, which must keep passing for ${gate.settleMs / 1000} s` : ''}`);
  for (let attempt = 1; ; attempt++) {
    const failure = await tryOnce(run);
    const elapsedMs = run.now().getTime() - started;
    if (failure) {
      const when = gate.settleMs ? ` at try ${attempt}, ${Math.round(elapsedMs / 1000)} s into health-settle` : '';
      throw new DeployError('post-hook', `the health check failed${when}: ${failure}`);
    }
    if (elapsedMs >= gate.settleMs) break;
    await sleepUnlessAborted(Math.min(gate.intervalMs, gate.settleMs - elapsedMs), run.signal);
    if (run.signal.aborted) throw new DeployError('post-hook', 'the health gate was ended because the agent is stopping');
  }
  log.info(`health gate passed${gate.settleMs ? ` for ${gate.settleMs / 1000} s` : ''}`);
}

/** One try: undefined when healthy, else what was wrong. */
async function tryOnce(run: HealthGateRun): Promise<string | undefined> {
  const { gate } = run;
  if (run.signal.aborted) return 'the agent is stopping';
  if (isUrl(gate.check)) return tryUrl(gate, run.signal);
  const result = await runProcess('/bin/sh', ['-c', gate.check], {
    env: hookProcessEnvironment(run.baseEnv, run.hookEnvironment, 'health-check'),
    timeoutMs: gate.timeoutMs,
    signal: run.signal,
    onSpawn: run.onProcess,
    onLine: (line) => run.log.debug(`[health-check] ${line}`),
  });
  if (result.exitCode === 0) return undefined;
  const last = result.outputTail.at(-1) ? `: ${result.outputTail.at(-1)}` : '';
  if (result.spawnError) return `the command could not be started (${result.spawnError.message})`;
  if (result.timedOut) return `the command took longer than health-timeout (${gate.timeoutMs / 1000} s) and was ended with its process group`;
  if (result.aborted) return 'the agent is stopping';
  return `the command ${result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`}${last}`;
}

async function tryUrl(gate: HealthGate, stop: AbortSignal): Promise<string | undefined> {
  const signal = AbortSignal.any([stop, AbortSignal.timeout(gate.timeoutMs)]);
  // Loaded only for a URL gate: no -f run without one pays for loading undici.
  const { Agent, request } = await import('../base/http-client.js');
  const dispatcher = new Agent({ connectTimeout: gate.timeoutMs, headersTimeout: gate.timeoutMs, bodyTimeout: gate.timeoutMs });
  try {
    const response = await request(gate.check, { method: 'GET', signal, dispatcher });
    await response.body.dump().catch(() => undefined);
    return response.statusCode >= 200 && response.statusCode < 300 ? undefined : `${gate.check} answered HTTP ${response.statusCode}`;
  } catch (error) {
    if (stop.aborted) return 'the agent is stopping';
    if (signal.aborted) return `${gate.check} did not answer within health-timeout (${gate.timeoutMs / 1000} s)`;
    const code = systemErrorCode(error) ?? systemErrorCode((error as { cause?: unknown }).cause);
    return `${gate.check} could not be reached (${code ?? messageOf(error)})`;
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
}
