// What a check's outcome ends a -f run with, on the failure model's codes (base/errors.ts): a
// failure carries its own kind's code; the other outcomes are mapped here, once.
import { ExitCode } from '../base/errors.js';
import type { CheckOutcome } from './agent-context.js';

const exitCodeOfResult: Record<Exclude<CheckOutcome['result'], 'failed'>, number> = {
  unchanged: ExitCode.ok,
  updated: ExitCode.ok,
  'held-back': ExitCode.heldBack,
  blocked: ExitCode.blockedByPreHook,
  reverted: ExitCode.revertedAfterPostHook,
  refused: ExitCode.verificationFailed,
  // A stop is no failure; a waiting revision is what the gates are for; a preview deploys nothing.
  stopped: ExitCode.ok,
  waiting: ExitCode.ok,
  'would-update': ExitCode.ok,
};

export function outcomeExitCode(outcome: CheckOutcome): number {
  return outcome.result === 'failed' ? outcome.error.exitCode : exitCodeOfResult[outcome.result];
}
