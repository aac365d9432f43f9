// A zip object in S3 or an S3-compatible store, on the AWS SDK v3 (this module, and so the SDK,
// is loaded only when an s3:// remote is configured). One conditional GetObject per check
// (IfNoneMatch with the last ETag): "not modified" downloads nothing. The body is streamed to a
// temp file in the cache, never held in memory, then extracted like any zip.
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, S3Client, S3ServiceException, type GetObjectCommandInput, type GetObjectCommandOutput, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { S3ZipSettings } from '../core/settings.js';
import { DeployError, fetchError, messageOf, systemErrorCode, usageError } from '../base/errors.js';
import { registerSecret } from '../base/redact.js';
import { readSmallRegularFile } from '../base/small-file.js';
import type { S3ZipRemote } from '../core/remote.js';
import { newDownloadFile } from '../core/cache-layout.js';
import { withDeadline, type Deadline } from '../base/deadline.js';
import type { CheckContext, CheckResult, Fetcher, RemoteState } from '../core/remote-contract.js';
import { downloadLimitsFor, downloadToFile, zipCheckResult, type ZipOnDisk } from './zip-release.js';
import { attemptDelta, deltaChance, endOfArchiveBytes, receiveEndOfArchive } from './zip-delta/attempt.js';
import { DeltaAbandoned } from './zip-delta/delta-plan.js';
import { discardPartial, isTheRest, partialFilesFor, prepareResume, receiveKeepingPartial } from './partial-download.js';

export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Where they came from, for the log (never the keys themselves). */
  source: string;
}

/** The original tool's credential file: accessKey=... and secretKey=... lines. */
export function accountKeyPath(): string {
  return join(homedir(), '.amazon', 'account-key');
}

async function readAccountKeyFile(path: string): Promise<StaticCredentials | undefined> {
  let text: string;
  try {
    // A regular file of a bounded size only: a FIFO at that name hung the check.
    text = readSmallRegularFile(path, 64 << 10);
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return undefined;
    throw usageError(`cannot read the S3 credentials file ${path}: ${systemErrorCode(error) ?? (error as Error).message}`);
  }
  const values = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const equals = trimmed.indexOf('=');
    if (equals <= 0) throw usageError(`the S3 credentials file ${path} is malformed`, 'it must hold accessKey=... and secretKey=... lines');
    values.set(trimmed.slice(0, equals).trim(), trimmed.slice(equals + 1).trim());
  }
  const accessKeyId = values.get('accessKey');
  const secretAccessKey = values.get('secretKey');
  if (!accessKeyId || !secretAccessKey) {
    throw usageError(`the S3 credentials file ${path} is malformed`, 'it must hold both an accessKey=... and a secretKey=... line');
  }
  registerSecret(secretAccessKey);
  return { accessKeyId, secretAccessKey, source: path };
}

/** Config keys, else ~/.amazon/account-key, else undefined: the AWS default chain (environment, shared files, roles). */
export async function resolveCredentials(settings: S3ZipSettings): Promise<StaticCredentials | undefined> {
  if (settings.awsAccessKey && settings.awsSecretKey) {
    return { accessKeyId: settings.awsAccessKey, secretAccessKey: settings.awsSecretKey, source: 'the config (aws-access-key)' };
  }
  return readAccountKeyFile(accountKeyPath());
}

function createClient(settings: S3ZipSettings, credentials: StaticCredentials | undefined): S3Client {
  const config: S3ClientConfig = {
    region: settings.awsRegion ?? (settings.s3Endpoint ? 'us-east-1' : undefined),
    maxAttempts: 5, // throttling and 5xx are retried with the SDK's backoff, within download-timeout
    requestHandler: { connectionTimeout: settings.httpTimeoutMs, requestTimeout: settings.httpTimeoutMs },
  };
  if (settings.s3Endpoint) {
    config.endpoint = settings.s3Endpoint;
    config.forcePathStyle = true;
  }
  if (credentials) config.credentials = { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey };
  return new S3Client(config);
}

const statusOf = (error: unknown): number | undefined =>
  (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

/** S3's error codes, in the words an operator needs. */
function describeS3Error(error: unknown, display: string, settings: S3ZipSettings, timedOut: boolean): DeployError {
  if (error instanceof DeployError) return error;
  const name = error instanceof Error ? error.name : '';
  const status = statusOf(error);
  const unchanged = 'the live release is unchanged';
  const failure = (reason: string, hint: string) =>
    fetchError(`cannot download ${display}: ${reason}`, { hint: `${unchanged}; ${hint}`, cause: error });
  switch (name) {
    case 'NoSuchBucket':
      return failure('the bucket does not exist', 'check the bucket name, aws-region and s3-endpoint');
    case 'NoSuchKey':
      return failure('the object does not exist', 'check the key, or whether the build that uploads it ran');
    case 'AccessDenied':
    case 'AllAccessDisabled':
      return failure('access denied', 'the credentials need s3:GetObject on this object');
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
    case 'ExpiredToken':
    case 'InvalidToken':
      return failure(`the credentials were refused (${name})`, 'check aws-access-key/aws-secret-key, ~/.amazon/account-key or the AWS environment');
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return failure(`the bucket is not in this region or behind this endpoint (${name})`, 'set aws-region to the bucket\'s region, or fix s3-endpoint');
    case 'CredentialsProviderError':
      return failure('no S3 credentials were found', 'set aws-access-key and aws-secret-key, write ~/.amazon/account-key, or give the AWS environment credentials');
  }
  if (/Region is missing/i.test(messageOf(error))) {
    return failure('no region is known', 'set aws-region (or AWS_REGION)');
  }
  if (timedOut) return failure(`it took longer than download-timeout (${settings.downloadTimeoutMs / 1000} seconds)`, 'the next check tries again');
  if (name === 'SlowDown' || status === 429 || (status !== undefined && status >= 500)) {
    return failure(`the store kept answering ${name || `HTTP ${status}`} after retries`, 'the next check tries again');
  }
  if (error instanceof S3ServiceException) {
    return failure(`${name} (HTTP ${status ?? '?'})`, 'the next check tries again');
  }
  const code = systemErrorCode(error);
  return failure(`the endpoint could not be reached (${code ?? messageOf(error)})`, 'check s3-endpoint and the network; the next check tries again');
}

export const s3ZipFetcher = (location: S3ZipRemote): Fetcher<S3ZipSettings> => ({
  check: (context) => withDeadline(context.signal, context.settings.downloadTimeoutMs, (deadline) => checkWithin(location, context, deadline)),
});

async function checkWithin(location: S3ZipRemote, context: CheckContext<S3ZipSettings>, deadline: Deadline): Promise<CheckResult> {
  const { settings } = context;
  const { display } = location;
  const credentials = await resolveCredentials(settings);
  context.log.debug(`S3 credentials from ${credentials?.source ?? 'the AWS default chain'}`);
  const client = createClient(settings, credentials);
  const { signal } = deadline;
  const remembered = context.deployed?.remoteState ?? {};
  const partial = await partialFilesFor(context.cache, `s3://${location.bucket}/${location.key}@${settings.s3Endpoint ?? ''}`);
  let resumable = await prepareResume(partial);
  // A delta needs the last archive; the check's one request then asks for the object's end only.
  const delta = await deltaChance(context, partial.identity, resumable !== undefined);
  const path = await newDownloadFile(context.cache, 'download');
  const get = (input: Omit<GetObjectCommandInput, 'Bucket' | 'Key'>) => client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key, ...input }), { abortSignal: signal });
  const common = {
    display,
    temporary: true,
    keepForNextDelta: delta.keepForNextDelta,
    fetchSignature: async (destination: string) => {
      try {
        const signature = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: `${location.key}.sig` }), { abortSignal: signal });
        await downloadToFile(signature.Body as Readable, destination, signal, downloadLimitsFor(context, `${display}.sig`));
        return true;
      } catch (error) {
        if (error instanceof Error && error.name === 'NoSuchKey') return false;
        throw describeS3Error(error, `${display}.sig`, settings, deadline.timedOut());
      }
    },
  };
  const onDisk = (response: GetObjectCommandOutput, sha256: string): ZipOnDisk => {
    const remoteState: RemoteState = {};
    if (response.ETag) remoteState.etag = response.ETag;
    if (response.VersionId && response.VersionId !== 'null') remoteState.versionId = response.VersionId;
    return { ...common, path, sha256, remoteState, revisionSuffix: remoteState.versionId ? `@${remoteState.versionId}` : undefined };
  };
  const receiveWhole = async (response: GetObjectCommandOutput): Promise<ZipOnDisk> => {
    const download = await receiveKeepingPartial(
      context,
      partial,
      {
        body: response.Body as Readable,
        announcedBytes: response.ContentLength,
        signal,
        display,
        notAZip: { reason: 'the object is not a zip archive', hint: 'check the key: it must name the archive itself' },
        describeError: (error) => describeS3Error(error, display, settings, deadline.timedOut()),
      },
      resumable,
      response.ETag,
      path,
    );
    return onDisk(response, download.sha256);
  };
  /** A new GET of the whole object, for when a delta was abandoned. */
  const downloadWhole = async (): Promise<ZipOnDisk> => {
    await rm(path, { force: true });
    resumable = undefined;
    try {
      return await receiveWhole(await get({}));
    } catch (error) {
      throw describeS3Error(error, display, settings, deadline.timedOut());
    }
  };
  try {
    let response;
    for (;;) {
      try {
        response = await get({
          IfNoneMatch: context.deployed?.sameRemote ? remembered.etag : undefined,
          // The rest of an interrupted download, only of the same object (else 412); or for a
          // delta, the object's end (its end record).
          ...(resumable ? { Range: `bytes=${resumable.bytes}-`, IfMatch: resumable.validator } : delta.base ? { Range: `bytes=-${endOfArchiveBytes}` } : {}),
        });
      } catch (error) {
        if (statusOf(error) === 304) {
          context.log.debug(`${display}: not modified`);
          return { changed: false };
        }
        if (resumable && (statusOf(error) === 412 || statusOf(error) === 416)) {
          context.log.info(`${display} changed since the download cut short at ${resumable.bytes} of ${resumable.total} bytes: downloading it whole`);
          await discardPartial(partial);
          resumable = undefined;
          continue;
        }
        // An empty object answers a suffix range with 416: nothing to rebuild.
        if (!resumable && delta.base && statusOf(error) === 416) return await zipCheckResult(context, await downloadWhole());
        throw describeS3Error(error, display, settings, deadline.timedOut());
      }
      if (!resumable || (isTheRest(response.ContentRange, resumable) && response.ETag === resumable.validator)) break;
      (response.Body as Readable | undefined)?.destroy();
      context.log.warn(`${display} answered the request for the rest of a cut-short download (bytes ${resumable.bytes}-) with ${response.ContentRange ?? 'the whole object'}${response.ETag !== resumable.validator ? ` of ETag ${response.ETag}` : ''}, not the rest of the same object: downloading it whole`);
      await discardPartial(partial);
      resumable = undefined;
    }
    let zip: ZipOnDisk;
    if (!resumable && delta.base && response.ContentRange !== undefined) {
      const first = response;
      // Loaded only for a delta: the zip reader is not needed by an idle check.
      const [{ rebuildFromDelta }, { s3RangeSource }] = await Promise.all([import('./zip-delta/rebuild.js'), import('./zip-delta/s3-ranges.js')]);
      const rebuilt = await attemptDelta(context, { destination: path, display, signal }, async () => {
        const { size, first: firstBytes } = await receiveEndOfArchive(context, first.Body as Readable, first.ContentRange, display);
        if (!first.ETag) throw new DeltaAbandoned('the store names no version of the object (no ETag)');
        const source = s3RangeSource({ client, bucket: location.bucket, key: location.key, signal, size, etag: first.ETag });
        // A single-part upload's ETag is its MD5 (not with SSE-KMS, where the check then fails and the object is downloaded whole).
        const md5 = /^"([0-9a-f]{32})"$/.exec(first.ETag)?.[1];
        return rebuildFromDelta({ destination: path, size, first: firstBytes, source, base: delta.base!, maxEntries: settings.maxEntries, wholeDigest: md5 ? { algorithm: 'md5', hex: md5, from: 'its ETag' } : undefined });
      });
      zip = rebuilt ? { ...onDisk(first, rebuilt.sha256), downloadWhole } : await downloadWhole();
    } else {
      zip = await receiveWhole(response);
    }
    return await zipCheckResult(context, zip);
  } catch (error) {
    await rm(path, { force: true });
    throw error;
  } finally {
    client.destroy();
  }
}
