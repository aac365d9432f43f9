// A zip over HTTP(S) on undici. One conditional GET per check (If-None-Match/If-Modified-Since):
// a 304 downloads nothing. Anything but a 200 carrying a zip is a failed check that changes
// nothing: the original emptied the live directory on a 404.
import { rm } from 'node:fs/promises';
import { EnvHttpProxyAgent, redirectInterceptor, request, type Dispatcher } from '../base/http-client.js';
import { DeployError, fetchError, messageOf, systemErrorCode, retryHint } from '../base/errors.js';
import { registerSecret } from '../base/redact.js';
import type { HttpZipRemote } from '../core/remote.js';
import { agentVersion } from '../base/version.js';
import { newDownloadFile } from '../core/cache-layout.js';
import { withDeadline, type Deadline } from '../base/deadline.js';
import type { CheckContext, CheckResult, Fetcher } from '../core/remote-contract.js';
import type { HttpZipSettings } from '../core/settings.js';
import { downloadLimitsFor, downloadToFile, zipCheckResult, type ZipOnDisk } from './zip-release.js';
import { discardPartial, isTheRest, partialFilesFor, prepareResume, receiveKeepingPartial } from './partial-download.js';
import { deltaChance, endOfArchiveBytes } from './zip-delta/attempt.js';

interface PreparedRequest {
  url: string;
  headers: Record<string, string>;
}

/** The URL's credentials become a Basic Authorization header (undici refuses them in URLs). */
function prepareRequest(remote: HttpZipRemote): PreparedRequest {
  const headers: Record<string, string> = {};
  if (remote.credentials) {
    const token = Buffer.from(`${remote.credentials.user}:${remote.credentials.password}`).toString('base64');
    registerSecret(token);
    headers.authorization = `Basic ${token}`;
  }
  return { url: remote.url, headers };
}

const untrustedCertificateCodes = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']);

/** OpenSSL's "80EC…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:file.c:350:" said as its reason. */
function openSslReason(message: string): string {
  const fields = message.trim().split(':');
  const routines = fields.findIndex((field) => field.endsWith(' routines'));
  return routines >= 0 && fields[routines + 2] ? fields[routines + 2]! : message.trim();
}

function describeNetworkError(error: unknown, displayUrl: string, context: CheckContext<HttpZipSettings>, deadline: Deadline): DeployError {
  if (error instanceof DeployError) return error;
  const code = systemErrorCode(error) ?? systemErrorCode((error as { cause?: unknown })?.cause);
  const seconds = (ms: number) => `${ms / 1000} seconds`;
  let reason: string;
  if (deadline.timedOut()) {
    reason = `the download took longer than download-timeout (${seconds(context.settings.downloadTimeoutMs)})`;
  } else if (context.signal.aborted) {
    reason = 'the check was stopped';
  } else if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    reason = `no connection within http-timeout (${seconds(context.settings.httpTimeoutMs)})`;
  } else if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    reason = `no response within http-timeout (${seconds(context.settings.httpTimeoutMs)})`;
  } else if (code === 'UND_ERR_SOCKET' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'ECONNRESET') {
    // undici's words for it ("other side closed") and codes mean nothing to an operator.
    reason = 'the server closed the connection before the whole archive arrived';
  } else if (code === 'UND_ERR_BODY_TIMEOUT') {
    reason = `the download stalled for longer than http-timeout (${seconds(context.settings.httpTimeoutMs)})`;
  } else if (code?.startsWith('ERR_SSL_')) {
    reason = `the TLS handshake failed: ${openSslReason(messageOf(error))} (${code})${code === 'ERR_SSL_WRONG_VERSION_NUMBER' ? '; the server may not speak TLS on this port (plain http://?)' : ''}`;
  } else if (code && untrustedCertificateCodes.has(code)) {
    reason = `the server's certificate is not trusted: ${messageOf(error)} (${code}); if it is signed by your own CA, give the agent its certificate with NODE_EXTRA_CA_CERTS=/path/ca.pem in its environment`;
  } else {
    reason = `${messageOf(error)}${code ? ` (${code})` : ''}`;
  }
  return fetchError(`cannot download ${displayUrl}: ${reason}`, {
    hint: retryHint,
    cause: error,
  });
}

/** Retry-After as seconds or an HTTP date, in milliseconds from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: Date): number | undefined {
  if (typeof value !== 'string') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}

function statusError(statusCode: number, displayUrl: string, maxRedirects: number, retryAfterMs?: number): DeployError {
  if (statusCode >= 300 && statusCode < 400) {
    return fetchError(`cannot download ${displayUrl}: more than max-redirects (${maxRedirects}) redirects`, {
      hint: 'point the remote at the final URL, or raise max-redirects',
    });
  }
  const hints: Record<number, string> = {
    401: 'the server wants credentials: put them in the URL (https://user:token@host/...)',
    403: 'the server refused access: check the credentials and the server\'s permissions',
    404: 'check the URL, or whether the build that publishes the archive ran',
  };
  return fetchError(`cannot download ${displayUrl}: the server answered HTTP ${statusCode}`, {
    hint: hints[statusCode] ?? retryHint,
    retryAfterMs: statusCode === 429 || statusCode === 503 ? retryAfterMs : undefined,
  });
}

/** The detached signature beside the archive, with the same credentials; false on a 404. */
async function downloadSignature(
  url: string,
  headers: Record<string, string>,
  dispatcher: Dispatcher,
  deadline: Deadline,
  destination: string,
  displayUrl: string,
  context: CheckContext<HttpZipSettings>,
): Promise<boolean> {
  const { ['if-none-match']: _etag, ['if-modified-since']: _since, ...plain } = headers;
  let response: Dispatcher.ResponseData;
  try {
    response = await request(url, { method: 'GET', headers: { ...plain, accept: '*/*' }, dispatcher, signal: deadline.signal });
  } catch (error) {
    throw describeNetworkError(error, displayUrl, context, deadline);
  }
  if (response.statusCode === 404) {
    await response.body.dump();
    return false;
  }
  if (response.statusCode !== 200) {
    await response.body.dump().catch(() => undefined);
    throw statusError(response.statusCode, displayUrl, context.settings.maxRedirects);
  }
  await downloadToFile(response.body, destination, deadline.signal, downloadLimitsFor(context, displayUrl));
  return true;
}

/**
 * Sits below undici's redirect interceptor, so it sees every hop: a redirect from https:// to
 * plain http:// (the archive then travels in clear, open to tampering) is refused unless
 * allow-insecure-redirects is set; any scheme but http(s) (file:, say) always is.
 */
function refuseUnsafeRedirects(context: CheckContext<HttpZipSettings>, display: string, firstProtocol: string): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    const protocol = new URL(String(options.origin)).protocol;
    let refusal: string | undefined;
    if (protocol !== 'http:' && protocol !== 'https:') refusal = `a redirect to ${protocol} is never followed`;
    else if (firstProtocol === 'https:' && protocol === 'http:' && !context.settings.allowInsecureRedirects) {
      refusal = `the server redirected from https:// to plain http://${new URL(String(options.origin)).host}, which is refused`;
    }
    if (refusal === undefined) return dispatch(options, handler);
    const error = fetchError(`cannot download ${display}: ${refusal}`, {
      hint: 'point the remote at the https:// URL that serves the archive, or set allow-insecure-redirects = yes',
    });
    if (handler.onResponseError) handler.onResponseError(null as never, error);
    else handler.onError?.(error);
    return true;
  };
}

function createDispatcher(context: CheckContext<HttpZipSettings>, display: string, firstProtocol: string): Dispatcher {
  const { httpTimeoutMs, maxRedirects } = context.settings;
  // EnvHttpProxyAgent follows HTTP_PROXY, HTTPS_PROXY and NO_PROXY.
  return new EnvHttpProxyAgent({
    connectTimeout: httpTimeoutMs,
    headersTimeout: httpTimeoutMs,
    bodyTimeout: httpTimeoutMs,
  }).compose(refuseUnsafeRedirects(context, display, firstProtocol), redirectInterceptor({ maxRedirections: maxRedirects }));
}

export const httpZipFetcher = (remote: HttpZipRemote): Fetcher<HttpZipSettings> => ({
  check: (context) => withDeadline(context.signal, context.settings.downloadTimeoutMs, (deadline) => checkWithin(remote, context, deadline)),
});

async function checkWithin(remote: HttpZipRemote, context: CheckContext<HttpZipSettings>, deadline: Deadline): Promise<CheckResult> {
  const { url, headers } = prepareRequest(remote);
  const displayUrl = remote.display;
  const remembered = context.deployed?.remoteState ?? {};
  headers['user-agent'] = `repo-deploy/${agentVersion}`;
  headers.accept = 'application/zip, application/octet-stream;q=0.9, */*;q=0.1';
  const plainHeaders = { ...headers };
  // Conditional headers only for what is live from this same URL: after a lost state, or a
  // change of remote, the archive itself is needed.
  if (context.deployed?.sameRemote) {
    if (remembered.etag) headers['if-none-match'] = remembered.etag;
    if (remembered.lastModified) headers['if-modified-since'] = remembered.lastModified;
  }

  const partial = await partialFilesFor(context.cache, url);
  let resumable = await prepareResume(partial);
  // A delta needs the last archive; the check's one request then asks for the archive's end only.
  const delta = await deltaChance(context, partial.identity, resumable !== undefined);
  const downloadPath = await newDownloadFile(context.cache, 'download');
  const dispatcher = createDispatcher(context, displayUrl, new URL(url).protocol);
  const { signal } = deadline;
  const send = async (extra: Record<string, string>, conditional = true) => {
    try {
      return await request(url, { method: 'GET', headers: { ...(conditional ? headers : plainHeaders), ...extra }, dispatcher, signal });
    } catch (error) {
      throw describeNetworkError(error, displayUrl, context, deadline);
    }
  };
  const common = {
    display: displayUrl,
    temporary: true,
    keepForNextDelta: delta.keepForNextDelta,
    fetchSignature: (destination: string) => downloadSignature(`${url}.sig`, headers, dispatcher, deadline, destination, `${displayUrl}.sig`, context),
  };
  /** Receives a 200 (or the rest of a resumed download) into downloadPath. */
  const receiveWhole = async (response: Dispatcher.ResponseData): Promise<ZipOnDisk> => {
    await refuseHtml(response, displayUrl);
    const length = response.headers['content-length'];
    // Kept to be resumed when the server names this version of the archive (a strong ETag, or
    // Last-Modified) and says its size.
    const download = await receiveKeepingPartial(
      context,
      partial,
      {
        body: response.body,
        announcedBytes: length === undefined ? undefined : Number(length),
        signal,
        display: displayUrl,
        notAZip: { reason: 'what the server sent is not a zip archive', hint: 'check that the URL serves the archive itself' },
        describeError: (error) => describeNetworkError(error, displayUrl, context, deadline),
      },
      resumable,
      resumeValidator(response.headers),
      downloadPath,
    );
    return { ...common, path: downloadPath, sha256: download.sha256, remoteState: remoteStateOf(response.headers) };
  };
  /** A new GET of the whole archive, for when a delta was abandoned. */
  const downloadWhole = async (): Promise<ZipOnDisk> => {
    await rm(downloadPath, { force: true });
    resumable = undefined;
    const response = await send({}, false);
    if (response.statusCode !== 200) await refuseStatus(response, displayUrl, context);
    return receiveWhole(response);
  };
  try {
    let response: Dispatcher.ResponseData;
    for (;;) {
      // The rest of an interrupted download, if the archive is still the same one (If-Range); or
      // for a delta, the archive's end (its end record), which a server without ranges answers whole.
      const range: Record<string, string> = resumable ? { range: `bytes=${resumable.bytes}-`, 'if-range': resumable.validator } : delta.base ? { range: `bytes=-${endOfArchiveBytes}` } : {};
      response = await send(range);
      if (!resumable || response.statusCode === 304) break;
      if (response.statusCode === 200) {
        context.log.info(`${displayUrl} changed since the download cut short at ${resumable.bytes} of ${resumable.total} bytes (or the server does not resume): downloading it whole`);
        await discardPartial(partial);
        resumable = undefined;
        break;
      }
      // Another failure (a 503, a 404) is said as for any request; what was kept stays for later.
      if (response.statusCode !== 206 && response.statusCode !== 416) break;
      const etag = response.headers.etag;
      const sameObject = !resumable.validator.startsWith('"') || etag === undefined || etag === resumable.validator;
      if (response.statusCode === 206 && isTheRest(String(response.headers['content-range'] ?? ''), resumable) && sameObject) break;
      // A range not satisfiable, or answered with other bytes than asked: never spliced on.
      await response.body.dump().catch(() => undefined);
      context.log.warn(`${displayUrl} answered the request for the rest of a cut-short download (bytes ${resumable.bytes}-) with HTTP ${response.statusCode}${response.headers['content-range'] ? ` and ${String(response.headers['content-range'])}` : ''}, not the rest of the same archive: downloading it whole`);
      await discardPartial(partial);
      resumable = undefined;
    }
    const { statusCode } = response;
    if (statusCode === 304) {
      await response.body.dump();
      context.log.debug(`${displayUrl}: not modified`);
      return { changed: false };
    }
    let zip: ZipOnDisk;
    if (statusCode === 206 && !resumable && delta.base) {
      await refuseHtml(response, displayUrl);
      // Loaded only for a delta: it brings the zip reader and the multipart parser, which an idle check never needs.
      const { rebuildOverHttp } = await import('./zip-delta/http-ranges.js');
      const rebuilt = await rebuildOverHttp(context, response, {
        url,
        headers: plainHeaders,
        dispatcher,
        signal,
        base: delta.base,
        destination: downloadPath,
        display: displayUrl,
      });
      zip = rebuilt ? { ...common, path: downloadPath, sha256: rebuilt.sha256, remoteState: remoteStateOf(response.headers), downloadWhole } : await downloadWhole();
    } else if (statusCode === 416 && !resumable && delta.base) {
      // An empty file answers a suffix range with 416: nothing to rebuild.
      await response.body.dump().catch(() => undefined);
      zip = await downloadWhole();
    } else {
      if (statusCode !== 200 && !(statusCode === 206 && resumable)) await refuseStatus(response, displayUrl, context);
      zip = await receiveWhole(response);
    }
    // `return await`: the dispatcher (closed in finally) also fetches the signature.
    return await zipCheckResult(context, zip);
  } catch (error) {
    await rm(downloadPath, { force: true });
    throw error;
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

function remoteStateOf(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const remoteState: Record<string, string> = {};
  if (typeof headers.etag === 'string') remoteState.etag = headers.etag;
  if (typeof headers['last-modified'] === 'string') remoteState.lastModified = headers['last-modified'];
  return remoteState;
}

async function refuseHtml(response: Dispatcher.ResponseData, displayUrl: string): Promise<void> {
  if (!/text\/html/i.test(String(response.headers['content-type'] ?? ''))) return;
  await response.body.dump().catch(() => undefined);
  throw fetchError(`cannot deploy ${displayUrl}: the server sent an HTML page, not a zip`, {
    hint: 'a login page or an error page? check the URL and its credentials',
  });
}

async function refuseStatus(response: Dispatcher.ResponseData, displayUrl: string, context: CheckContext<HttpZipSettings>): Promise<never> {
  await response.body.dump().catch(() => undefined);
  throw statusError(response.statusCode, displayUrl, context.settings.maxRedirects, parseRetryAfter(response.headers['retry-after'], new Date()));
}

/** What names this version of the archive for If-Range: a strong ETag, else Last-Modified. */
function resumeValidator(headers: Record<string, string | string[] | undefined>): string | undefined {
  const { etag, 'last-modified': lastModified } = headers;
  if (typeof etag === 'string' && etag.startsWith('"')) return etag;
  return typeof lastModified === 'string' && !Number.isNaN(Date.parse(lastModified)) ? lastModified : undefined;
}
