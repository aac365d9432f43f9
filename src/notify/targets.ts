// Where notifications go (`notify`): a generic JSON webhook (`https://…`, signed with
// notify-secret like GitHub's X-Hub-Signature-256), a Slack incoming webhook
// (`slack+https://hooks.slack.com/services/…`) or an ntfy topic (`ntfy+https://ntfy.sh/TOPIC`).
// A target's URL can hold a secret (Slack's path is one, an ntfy topic is a password of sorts),
// so it is registered with the redactor and only its kind and origin are ever logged.
import { usageError } from '../base/errors.js';
import { registerSecret } from '../base/redact.js';

export type TargetKind = 'json' | 'slack' | 'ntfy';

export interface NotifyTarget {
  kind: TargetKind;
  url: URL;
  /** For logs and status: kind and origin, never the path. */
  display: string;
}

const prefixes: Record<string, TargetKind> = { 'slack+': 'slack', 'ntfy+': 'ntfy' };

/** The targets of the notify setting; a URL that is not one is a usage error naming it (redacted). */
export function parseTargets(values: readonly string[]): NotifyTarget[] {
  return values.map((value, index) => {
    const prefix = Object.keys(prefixes).find((candidate) => value.startsWith(candidate));
    const kind = prefix ? prefixes[prefix]! : 'json';
    let url: URL;
    try {
      url = new URL(prefix ? value.slice(prefix.length) : value);
    } catch {
      throw usageError(`notify: target ${index + 1} is not a URL`, 'write https://…, slack+https://hooks.slack.com/services/… or ntfy+https://ntfy.sh/TOPIC');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isPrivateHost(url.hostname))) {
      throw usageError(`notify: target ${index + 1} (${kind} ${url.protocol}//${url.host}) is not https://`, 'plain http:// is taken only for loopback and private-network hosts');
    }
    if (url.username || url.password) registerSecret(decodeURIComponent(url.password || url.username));
    registerSecret(`${url.pathname}${url.search}`.length >= 8 ? `${url.pathname}${url.search}` : undefined);
    return { kind, url, display: `${kind} ${url.origin}` };
  });
}

function isPrivateHost(host: string): boolean {
  return host === 'localhost' || /^127\./.test(host) || host === '[::1]' || /^10\./.test(host) || /^192\.168\./.test(host) || /^172\.(1[6-9]|2\d|3[01])\./.test(host);
}
