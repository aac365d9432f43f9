// POST /check: deploy on push. A request must prove it knows webhook-secret in one of three
// ways: GitHub's X-Hub-Signature-256 (an HMAC-SHA256 of the body), GitLab's X-Gitlab-Token, or
// Authorization: Bearer. Every comparison takes the same time whatever the input. An accepted
// request only makes the daemon's next check come now; the scheduled checks go on regardless.
// Nothing from the request reaches a log line but its address and which proof it carried.
//
// A caller without the secret costs the daemon next to nothing: a request with no credential
// header is refused before its body is read, tokens (GitLab, bearer) are checked before it too
// (their body is never read), and only a request carrying a GitHub signature has its body read,
// within a budget of bytes being read at once across all requests (503 when it is spent).
// Refusals are logged as one line per interval with a count (src/refusal-summary.ts).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../base/log.js';
import { RefusalSummary } from './refusal-summary.js';

export const maxWebhookBodyBytes = 1024 * 1024;
/** Body bytes being read at once, over every POST /check: four bodies of the largest size. */
export const maxWebhookBytesInFlight = 4 * maxWebhookBodyBytes;

export interface WebhookOptions {
  secret: string;
  /** At most one accepted trigger per this many milliseconds; sooner ones get 429. */
  minIntervalMs: number;
  now: () => Date;
  /** Asks the daemon for a check now (coalesced: at most one more while one runs). */
  requestCheck: (by: string) => void;
  log: Logger;
  /** Overrides maxWebhookBytesInFlight (tests). */
  maxBytesInFlight?: number;
}

export interface WebhookHandler {
  (request: IncomingMessage, response: ServerResponse): void;
  /** Logs the refusals counted in an interval that is over (all of them when `final`); the daemon calls it after each check and at its stop. */
  flushRefusals(final?: boolean): void;
}

type Proof = 'github-signature' | 'gitlab-token' | 'bearer-token';

/** Equal in constant time: both sides are hashed first, so their lengths say nothing. */
function sameSecret(given: string, secret: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(secret));
}

const headerOf = (request: IncomingMessage, name: string) => {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
};

/** A proof that needs no body (a GitLab or bearer token): checked before anything is read. */
function tokenProof(request: IncomingMessage, secret: string): Proof | 'wrong' | undefined {
  const gitlab = headerOf(request, 'x-gitlab-token');
  const bearer = /^Bearer\s+(.+)$/i.exec(headerOf(request, 'authorization') ?? '');
  if (gitlab === undefined && !bearer) return undefined;
  if (gitlab !== undefined && sameSecret(gitlab, secret)) return 'gitlab-token';
  if (bearer && sameSecret((bearer[1] as string).trim(), secret)) return 'bearer-token';
  return 'wrong';
}

function signatureMatches(signature: string, body: Buffer, secret: string): boolean {
  const expected = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  return sameSecret(signature.trim().toLowerCase(), expected);
}

/** Reads the body up to `limit` bytes; undefined when it is larger (the connection is then closed). */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limit) {
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

/** Body bytes being read at once, shared by every POST /check route of one server. */
export interface BodyBudget {
  inFlight: number;
  readonly limit: number;
}

export const newBodyBudget = (limit = maxWebhookBytesInFlight): BodyBudget => ({ inFlight: 0, limit });

export function webhookHandler(options: WebhookOptions, bodies: BodyBudget = newBodyBudget(options.maxBytesInFlight)): WebhookHandler {
  let lastAcceptedAt = Number.NEGATIVE_INFINITY;
  const refusals = new RefusalSummary(options.log, options.now, 'POST /check');
  // A refusal closes the connection without reading what the caller still sends.
  const refuse = (request: IncomingMessage, response: ServerResponse, from: string, status: number, reason: string, headers: Record<string, string> = {}) => {
    refusals.refused(from, reason);
    response.setHeader('connection', 'close');
    response.on('finish', () => request.destroy());
    answer(response, status, { error: reason }, headers);
  };
  const accept = (response: ServerResponse, from: string, proof: Proof) => {
    const now = options.now().getTime();
    const waitMs = lastAcceptedAt + options.minIntervalMs - now;
    if (waitMs > 0) {
      const retryAfter = Math.ceil(waitMs / 1000);
      options.log.info(`POST /check from ${from} (${proof}) not taken: the last one was accepted less than webhook-min-interval ago; retry after ${retryAfter} s`);
      return answer(response, 429, { error: 'too many triggers', retryAfterSeconds: retryAfter }, { 'retry-after': String(retryAfter) });
    }
    lastAcceptedAt = now;
    options.log.info(`POST /check from ${from} (${proof}): checking now`);
    options.requestCheck(`webhook ${proof}`);
    return answer(response, 202, { status: 'accepted', check: 'requested' });
  };
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    const from = request.socket.remoteAddress ?? 'unknown';
    if (request.method !== 'POST') return answer(response, 405, { error: 'use POST' }, { allow: 'POST' });
    const token = tokenProof(request, options.secret);
    if (token === 'wrong') return refuse(request, response, from, 401, 'wrong token');
    if (token) {
      // The body of a token request says nothing we use: it is not read.
      response.setHeader('connection', 'close');
      response.on('finish', () => request.destroy());
      return accept(response, from, token);
    }
    const signature = headerOf(request, 'x-hub-signature-256');
    if (signature === undefined) return refuse(request, response, from, 401, 'no X-Hub-Signature-256, X-Gitlab-Token or bearer token');
    const declared = Number(request.headers['content-length'] ?? maxWebhookBodyBytes);
    if (!(declared >= 0) || declared > maxWebhookBodyBytes) return refuse(request, response, from, 413, `body larger than ${maxWebhookBodyBytes} bytes`);
    // A chunked body is reserved at the largest size: it may grow up to it.
    const reserved = request.headers['content-length'] === undefined ? maxWebhookBodyBytes : declared;
    if (bodies.inFlight + reserved > bodies.limit) return refuse(request, response, from, 503, 'too many request bodies being read at once', { 'retry-after': '1' });
    bodies.inFlight += reserved;
    let returned = false;
    const giveBack = () => {
      if (returned) return;
      returned = true;
      bodies.inFlight -= reserved;
    };
    request.once('close', giveBack);
    readBody(request, reserved).then(
      (body) => {
        giveBack();
        if (body === undefined) return refuse(request, response, from, 413, `body larger than ${maxWebhookBodyBytes} bytes`);
        if (!signatureMatches(signature, body, options.secret)) return refuse(request, response, from, 401, 'wrong signature');
        return accept(response, from, 'github-signature');
      },
      () => {
        giveBack();
        answer(response, 400, { error: 'the request could not be read' });
      },
    );
  };
  return Object.assign(handler, { flushRefusals: (final = false) => (final ? refusals.flush() : refusals.flushIfDue()) });
}
