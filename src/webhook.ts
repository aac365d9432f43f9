// POST /check: deploy on push. A request must prove it knows webhook-secret in one of three
// ways: GitHub's X-Hub-Signature-256 (an HMAC-SHA256 of the body), GitLab's X-Gitlab-Token, or
// Authorization: Bearer. Every comparison takes the same time whatever the input. An accepted
// request only makes the daemon's next check come now; the scheduled checks go on regardless.
// Nothing from the request reaches a log line but its address and which proof it carried.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from './log.js';

export const maxWebhookBodyBytes = 1024 * 1024;

export interface WebhookOptions {
  secret: string;
  /** At most one accepted trigger per this many milliseconds; sooner ones get 429. */
  minIntervalMs: number;
  now: () => Date;
  /** Asks the daemon for a check now (coalesced: at most one more while one runs). */
  requestCheck: () => void;
  log: Logger;
}

type Proof = 'github-signature' | 'gitlab-token' | 'bearer-token';

/** Equal in constant time: both sides are hashed first, so their lengths say nothing. */
function sameSecret(given: string, secret: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(secret));
}

function provenBy(request: IncomingMessage, body: Buffer, secret: string): Proof | undefined {
  const header = (name: string) => {
    const value = request.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  const signature = header('x-hub-signature-256');
  if (signature !== undefined) {
    const expected = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    if (sameSecret(signature.trim().toLowerCase(), expected)) return 'github-signature';
  }
  const gitlab = header('x-gitlab-token');
  if (gitlab !== undefined && sameSecret(gitlab, secret)) return 'gitlab-token';
  const bearer = /^Bearer\s+(.+)$/i.exec(header('authorization') ?? '');
  if (bearer && sameSecret((bearer[1] as string).trim(), secret)) return 'bearer-token';
  return undefined;
}

/** Reads the body up to the limit; undefined when it is larger (the connection is then closed). */
function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > maxWebhookBodyBytes) return resolve(undefined);
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > maxWebhookBodyBytes) {
        request.removeAllListeners('data');
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

const answer = (response: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) =>
  response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body) + '\n');

export function webhookHandler(options: WebhookOptions): (request: IncomingMessage, response: ServerResponse) => void {
  let lastAcceptedAt = Number.NEGATIVE_INFINITY;
  return (request, response) => {
    const from = request.socket.remoteAddress ?? 'unknown';
    if (request.method !== 'POST') return answer(response, 405, { error: 'use POST' }, { allow: 'POST' });
    readBody(request).then(
      (body) => {
        if (body === undefined) {
          options.log.warn(`POST /check from ${from} refused: the body is larger than ${maxWebhookBodyBytes} bytes`);
          response.setHeader('connection', 'close');
          return answer(response, 413, { error: 'body too large' });
        }
        const proof = provenBy(request, body, options.secret);
        if (!proof) {
          options.log.warn(`POST /check from ${from} refused: no valid X-Hub-Signature-256, X-Gitlab-Token or bearer token`);
          return answer(response, 401, { error: 'missing or wrong signature or token' });
        }
        const now = options.now().getTime();
        const waitMs = lastAcceptedAt + options.minIntervalMs - now;
        if (waitMs > 0) {
          const retryAfter = Math.ceil(waitMs / 1000);
          options.log.info(`POST /check from ${from} (${proof}) not taken: the last one was accepted less than webhook-min-interval ago; retry after ${retryAfter} s`);
          return answer(response, 429, { error: 'too many triggers', retryAfterSeconds: retryAfter }, { 'retry-after': String(retryAfter) });
        }
        lastAcceptedAt = now;
        options.log.info(`POST /check from ${from} (${proof}): checking now`);
        options.requestCheck();
        return answer(response, 202, { status: 'accepted', check: 'requested' });
      },
      () => answer(response, 400, { error: 'the request could not be read' }),
    );
  };
}
