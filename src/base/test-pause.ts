// A test-only switch: with REPO_DEPLOY_TEST_PAUSE_AT=<step> the agent says so on stderr and
// waits at that step forever, so a test can kill -9 it exactly there; or, with
// REPO_DEPLOY_TEST_RESUME_FILE=<path>, until that file exists, so a test can act exactly there
// (change a remote between two steps) and let the agent go on. Inert unless set. The one read of
// process.env outside cli.ts: the switch must reach steps that no context is handed to.
import { existsSync } from 'node:fs';

const pauseAt = process.env.REPO_DEPLOY_TEST_PAUSE_AT;
const resumeFile = process.env.REPO_DEPLOY_TEST_RESUME_FILE;

export async function pausePoint(step: string): Promise<void> {
  // A trailing * matches any step with that start (`write .manifest-*`: a release's manifest, whatever its id).
  if (pauseAt === undefined || (pauseAt.endsWith('*') ? !step.startsWith(pauseAt.slice(0, -1)) : pauseAt !== step)) return;
  process.stderr.write(`repo-deploy: paused at ${step} (REPO_DEPLOY_TEST_PAUSE_AT)\n`);
  if (!resumeFile) return new Promise(() => setInterval(() => undefined, 1 << 30));
  await new Promise<void>((resume) => {
    const poll = setInterval(() => {
      if (!existsSync(resumeFile)) return;
      clearInterval(poll);
      resume();
    }, 20);
  });
}

// A test-only switch: with REPO_DEPLOY_TEST_DELAY_AT=<step> the agent waits half a second at that
// step, so a test can make a race that is rare under load happen every time. Inert unless set.
const delayAt = process.env.REPO_DEPLOY_TEST_DELAY_AT;

export async function delayPoint(step: string): Promise<void> {
  if (delayAt !== step) return;
  // Said, so that a test can act inside the delay (send a signal) rather than guess when it is.
  process.stderr.write(`repo-deploy: delaying at ${step} (REPO_DEPLOY_TEST_DELAY_AT)\n`);
  await new Promise((resolveDelay) => setTimeout(resolveDelay, 500));
}
