// The steps of a release switch (an update or a rollback), in order, as one table: whether each
// comes after the swap, how recovery treats a switch a crash interrupted in it, and how status
// names it. The switch journals each step before it starts (switch-release.ts), recovery reads
// the journal's step here (recovery.ts), status says it (operator/commands.ts).
export interface SwitchStepRule {
  /** From the swap on, the new release may have been live: undoing means reverting. */
  afterSwap: boolean;
  /**
   * After a crash in this step: `undo` removes the unfinished release (the live one is
   * unchanged); `revert` puts the previous release back and runs the post-update hooks in phase
   * "revert"; `by-live-link` is the swap itself, one rename: the live link says whether it happened.
   */
  recovery: 'undo' | 'revert' | 'by-live-link';
  /** How status and the log name the step. */
  says: string;
}

export const switchSteps = {
  stage: { afterSwap: false, recovery: 'undo', says: 'stage' },
  'pre-update': { afterSwap: false, recovery: 'undo', says: 'pre-update' },
  swap: { afterSwap: false, recovery: 'by-live-link', says: 'swap' },
  'post-update': { afterSwap: true, recovery: 'revert', says: 'post-update' },
  gate: { afterSwap: true, recovery: 'revert', says: 'the health gate (not committed until it passes)' },
  revert: { afterSwap: true, recovery: 'revert', says: 'revert' },
} as const satisfies Record<string, SwitchStepRule>;

export type SwitchStep = keyof typeof switchSteps;

/** Whether a switch interrupted in `step` had swapped (or may have): recovery then reverts it. */
export function interruptedAfterSwap(step: SwitchStep, liveLinkSwapped: boolean): boolean {
  // The live link is the truth: a link that points at the new release was swapped, whatever the
  // step says (a crash between the rename and the journal's next step).
  const rule: SwitchStepRule = switchSteps[step];
  return rule.recovery === 'revert' || liveLinkSwapped;
}
