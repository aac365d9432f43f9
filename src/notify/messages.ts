// A history entry said for people (one line) and shaped for each kind of target: the generic
// webhook gets the whole entry as JSON with an HMAC signature, Slack a text message, ntfy a
// titled, prioritised text.
import { createHmac } from 'node:crypto';
import { oneLine } from '../base/log.js';
import { shortRevision } from '../core/short-revision.js';
import type { NotifyTarget } from './targets.js';

export interface QueuedEntry {
  seq: number;
  event: string;
  time: string;
  host?: string;
  [field: string]: unknown;
}

const failing = new Set(['update-failed', 'update-blocked', 'update-reverted', 'check-failed', 'refused', 'held-back', 'fleet-halt', 'drift', 'history-repaired']);

/** One line an operator reads on a phone: where, what, from what to what, why. */
export function summaryOf(entry: QueuedEntry, app: string | undefined): string {
  const text = (key: string) => (typeof entry[key] === 'string' ? (entry[key] as string) : undefined);
  const where = [entry.host, app].filter(Boolean).join('/') || 'repo-deploy';
  const from = text('revisionFrom');
  const to = text('revisionTo');
  const revisions = to ? (from ? ` ${shortRevision(from)} → ${shortRevision(to)}` : ` ${shortRevision(to)}`) : '';
  const verbs: Record<string, string> = {
    'update-committed': 'deployed',
    'update-started': 'deploying',
    'update-blocked': 'blocked by a pre-update hook',
    'update-reverted': 'reverted',
    'update-failed': 'failed',
    'update-stopped': 'stopped',
    'update-waiting': 'waiting',
    'check-failed': 'check failed',
    'held-back': 'held back',
    refused: 'refused',
    rollback: 'rolled back',
    retry: 'retry asked',
    adopt: 'adopted the live directory',
    pause: 'deploys paused',
    resume: 'deploys resumed',
    'fleet-halt': 'fleet halted',
    'fleet-resume': 'fleet resumed',
    recovery: 'recovered from an interrupted switch',
    drift: 'the live tree drifted from its release',
    'history-repaired': 'deploy history repaired',
  };
  const files = entry.files as { added: number; changed: number; removed: number } | undefined;
  const commit = entry.commit as { subject?: unknown; author?: unknown } | undefined;
  const details = [
    typeof commit?.subject === 'string' ? `"${commit.subject}"${typeof commit.author === 'string' ? ` by ${commit.author}` : ''}` : undefined,
    files ? `files +${files.added} ~${files.changed} -${files.removed}` : undefined,
    typeof entry.durationMs === 'number' ? `${(entry.durationMs / 1000).toFixed(1)} s` : undefined,
    text('reason'),
    text('error'),
    text('by') ? `by ${text('by')}` : undefined,
  ].filter(Boolean);
  // Commit subjects, authors and errors are other people's words: one line, printed escaped.
  return oneLine(`${where}: ${verbs[entry.event] ?? entry.event}${revisions}${details.length > 0 ? ` (${details.join('; ')})` : ''}`);
}

/**
 * Slack reads <…> as links and mentions (<!channel>, <https://…|text>): the three characters it
 * asks to escape are escaped, so a commit subject cannot ping a channel or hide a link.
 */
const slackEscaped = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export interface OutgoingRequest {
  body: string;
  headers: Record<string, string>;
}

/** The request for one target; `delivery` is the message's id, the same on every retry (receivers can drop repeats). */
export function requestFor(target: NotifyTarget, entry: QueuedEntry, summary: string, delivery: string, secret: string | undefined): OutgoingRequest {
  switch (target.kind) {
    case 'slack':
      return { body: JSON.stringify({ text: `${failing.has(entry.event) ? ':x: ' : ''}${slackEscaped(summary)}` }), headers: { 'content-type': 'application/json' } };
    case 'ntfy':
      return {
        body: summary,
        headers: {
          'content-type': 'text/plain; charset=utf-8',
          title: `repo-deploy: ${entry.event}`,
          priority: failing.has(entry.event) ? '4' : '3',
          tags: failing.has(entry.event) ? 'warning' : 'white_check_mark',
        },
      };
    case 'json': {
      const body = JSON.stringify({ event: entry.event, summary, delivery, entry });
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-repo-deploy-event': entry.event, 'x-repo-deploy-delivery': delivery };
      if (secret) headers['x-hub-signature-256'] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
      return { body, headers };
    }
  }
}
