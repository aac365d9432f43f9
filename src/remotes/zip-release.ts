// What every zip remote (HTTP, S3, local file) shares once the archive is on disk: its revision
// is the sha256 of its bytes, so the same archive served again is never deployed twice, and it
// is staged by the one safe extractor.
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createNewFileFlags } from '../base/atomic-file.js';
import { writeWhole } from '../base/write-whole.js';
import { newDownloadFile } from '../core/cache-layout.js';
import { DeployError, fetchError, systemErrorCode, retryHint } from '../base/errors.js';
import { VerificationError } from '../verify/refusal.js';
import { verifySshSignature } from '../verify/ssh-signature.js';
import type { ProgressSink } from '../base/progress.js';
import type { CheckContext, PendingRevision, RemoteState, Unchanged } from '../core/remote-contract.js';
import type { ZipSettings } from '../core/settings.js';
import { counted } from '../base/counted.js';

/**
 * Read through one buffer: a read stream's fresh 1 MiB chunk per read left the whole archive to
 * the garbage collector, and the process's resident memory grew by 50 MB before it ran.
 */
export async function sha256OfFile(path: string): Promise<string> {
  const file = await open(path, 'r');
  try {
    const [sha256] = await digestsOfFile(file, ['sha256']);
    return sha256!;
  } finally {
    await file.close();
  }
}

/** The hex digests of an open file's whole content, one per algorithm, in one pass through one buffer. */
export async function digestsOfFile(file: FileHandle, algorithms: readonly string[]): Promise<string[]> {
  const hashes = algorithms.map((algorithm) => createHash(algorithm));
  const buffer = Buffer.allocUnsafe(1 << 20);
  for (let position = 0, read = 1; read > 0; position += read) {
    ({ bytesRead: read } = await file.read(buffer, 0, buffer.length, position));
    for (const hash of hashes) hash.update(buffer.subarray(0, read));
  }
  return hashes.map((hash) => hash.digest('hex'));
}

export const zipRevision = (sha256: string) => `sha256:${sha256}`;

export interface Download {
  path: string;
  sha256: string;
  bytes: number;
  /** Whether the first bytes are a zip's local header or an empty zip's end record. */
  looksLikeZip: boolean;
}

const zipMagic = [Buffer.from('PK\x03\x04', 'latin1'), Buffer.from('PK\x05\x06', 'latin1')];

export interface DownloadLimits {
  /** More bytes than this fail the download (max-download-size): an endless body must not fill the disk. */
  maxBytes: number;
  /** Spans of this length (http-timeout) with nothing, or twice in a row under minimumProgressBytes, fail the download. */
  progressWindowMs: number;
  /** The remote, redacted, for messages. */
  display: string;
}

// A download slower than this per http-timeout is treated as stalled (1 byte every 10 s held the
// lock for minutes when only the gap between two chunks was bounded).
export const minimumProgressBytes = 1024;

/** What an earlier, interrupted download of the same object left in the file: appended to, hashed on from its end. */
export interface ResumedPrefix {
  bytes: number;
  hash: Hash;
  /** Its first four bytes (or fewer), for the zip magic. */
  head: Buffer;
}

/**
 * Writes chunks in order while the next ones arrive: what arrives during a write is gathered
 * into the next one (as a write stream's writev does), and the reader pauses only when 4 MiB are
 * queued. `settle` returns once everything given is written, or throws the write's error.
 */
class FileAppender {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private writing: Promise<void> | undefined;
  /** A write's failure (a full disk), thrown by settle. */
  private failure: unknown;

  /** `onFailure` is told of a failed write at once (the download is then stopped). */
  constructor(
    private readonly file: FileHandle,
    private readonly onFailure: (error: Error) => void,
  ) {}

  /** Queues a chunk; false when 4 MiB wait to be written (the reader should pause until `written`). */
  push(chunk: Buffer): boolean {
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    this.startWriting();
    return this.queuedBytes <= 4 << 20;
  }

  /** Resolves when the write under way is done (never rejects: a failure is kept for settle). */
  async written(): Promise<void> {
    await this.writing;
  }

  async settle(): Promise<void> {
    while (this.writing || (this.queue.length > 0 && !this.failure)) {
      this.startWriting();
      await this.writing;
    }
    if (this.failure) throw this.failure;
  }

  private startWriting(): void {
    this.writing ??= this.drain()
      .catch((error: unknown) => {
        this.failure ??= error;
        this.onFailure(error instanceof Error ? error : new Error(String(error)));
      })
      .finally(() => (this.writing = undefined));
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const data = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue);
      this.queue = [];
      this.queuedBytes = 0;
      await writeWhole(this.file, data);
    }
  }
}

/** Streams a body to a file (never whole into memory), hashing and counting on the way. */
export async function downloadToFile(
  body: Readable,
  path: string,
  signal: AbortSignal,
  limits: DownloadLimits,
  progress?: { sink: ProgressSink | undefined; total: number },
  resumed?: ResumedPrefix,
): Promise<Download> {
  const hash = resumed?.hash ?? createHash('sha256');
  let bytes = resumed?.bytes ?? 0;
  let head = resumed?.head ?? Buffer.alloc(0);
  let bytesAtLastTick = bytes;
  let slowSpans = 0;
  // A stall, a trickle or a stop destroys the body with its reason, which ends the wait for the next chunk.
  let stoppedBy: Error | undefined;
  const stop = (reason: Error) => {
    stoppedBy ??= reason;
    body.destroy(reason);
  };
  const onAbort = () => stop(signal.reason instanceof Error ? signal.reason : new Error('the download was stopped'));
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  progress?.sink?.start('Downloading', progress.total);
  progress?.sink?.advance(bytes);
  const watchdog = setInterval(() => {
    const arrived = bytes - bytesAtLastTick;
    // A slow span can be a download's first or last: a trickle is two slow spans in a row.
    slowSpans = arrived < minimumProgressBytes ? slowSpans + 1 : 0;
    if (arrived === 0 || slowSpans >= 2) {
      const seconds = `${limits.progressWindowMs / 1000} seconds`;
      const what = arrived === 0 ? `the download stalled for longer than http-timeout (${seconds})` : `the download slowed to a trickle (under ${minimumProgressBytes} bytes in http-timeout, ${seconds})`;
      stop(fetchError(`cannot download ${limits.display}: ${what}`, { hint: retryHint }));
    }
    bytesAtLastTick = bytes;
  }, limits.progressWindowMs);
  try {
    // A resumed file is appended to (it is ours, in our own directory: no link is followed).
    const file: FileHandle = await open(path, resumed ? constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW : createNewFileFlags, 0o600);
    // Every chunk the body gives is written, even when it then fails: a write stream's buffer (up
    // to a megabyte) was dropped with a failed pipeline, and a body's async iterator drops what it
    // buffered when its connection fails; 'data' events give every chunk that arrived, in order.
    const appender = new FileAppender(file, stop);
    try {
      body.on('data', (chunk: Buffer) => {
        if (stoppedBy) return;
        if (bytes + chunk.length > limits.maxBytes) return stop(tooLarge(limits));
        hash.update(chunk);
        bytes += chunk.length;
        if (head.length < 4) head = Buffer.concat([head, chunk.subarray(0, 4 - head.length)]);
        progress?.sink?.advance(chunk.length);
        if (!appender.push(chunk)) {
          body.pause();
          void appender.written().then(() => body.resume());
        }
      });
      await finished(body).catch((error: unknown) => {
        throw stoppedBy ?? error;
      });
    } finally {
      try {
        await appender.settle();
      } finally {
        await file.close();
      }
    }
  } catch (error) {
    // The body is not read further: its connection is let go.
    body.destroy();
    throw error;
  } finally {
    clearInterval(watchdog);
    signal.removeEventListener('abort', onAbort);
    progress?.sink?.stop();
  }
  return { path, sha256: hash.digest('hex'), bytes, looksLikeZip: zipMagic.some((magic) => head.equals(magic)) };
}

/** The download limits a remote's settings give. */
export const downloadLimitsFor = (context: CheckContext<ZipSettings>, display: string): DownloadLimits => ({
  maxBytes: context.settings.maxDownloadBytes,
  progressWindowMs: context.settings.httpTimeoutMs,
  display,
});

export function tooLarge(limits: DownloadLimits, declared?: number): DeployError {
  return fetchError(`cannot download ${limits.display}: it is larger than max-download-size (${limits.maxBytes} bytes)${declared !== undefined ? `: the server announced ${declared}` : ''}`, {
    hint: 'raise max-download-size (and max-unpacked-size) if the archive is genuine; the live release is unchanged',
  });
}

export interface IncomingArchive {
  body: Readable;
  /** The size the server announced (Content-Length), if any: of the rest, when resumed. */
  announcedBytes: number | undefined;
  /** The prefix an interrupted download left, which the body goes on from. */
  resumed?: ResumedPrefix;
  /** Where to write it (from newDownloadFile). */
  path: string;
  signal: AbortSignal;
  /** The remote, redacted, for messages. */
  display: string;
  /** What to say when the bytes are not a zip (the words differ per kind of server). */
  notAZip: { reason: string; hint?: string };
  /** Turns a transfer failure into the remote kind's own plain words. */
  describeError(error: unknown): Error;
}

/**
 * The download skeleton HTTP and S3 share: refuse an announced size over max-download-size before
 * reading, stream to the file within the limits, then refuse a truncated body and one that is not
 * a zip. The caller removes the file if anything throws.
 */
export async function receiveArchive(context: CheckContext<ZipSettings>, incoming: IncomingArchive): Promise<Download> {
  const limits = downloadLimitsFor(context, incoming.display);
  const before = incoming.resumed?.bytes ?? 0;
  // The whole archive's size: what was kept plus the rest announced.
  const announced = incoming.announcedBytes === undefined ? undefined : before + incoming.announcedBytes;
  if (announced !== undefined && announced > limits.maxBytes) {
    incoming.body.destroy();
    throw tooLarge(limits, announced);
  }
  let download: Download;
  // Counted here too, so a body the origin cut short is said in our words whatever the client reported.
  let received = 0;
  const { progress } = context;
  const counting: ProgressSink = { start: (label, total) => progress?.start(label, total), advance: (bytes) => ((received += bytes), progress?.advance(bytes)), stop: () => progress?.stop() };
  try {
    download = await downloadToFile(incoming.body, incoming.path, incoming.signal, limits, { sink: counting, total: announced ?? 0 }, incoming.resumed);
  } catch (error) {
    const cutShort = closedEarly(error) && !incoming.signal.aborted && announced !== undefined && received < announced;
    throw cutShort ? truncated(incoming, received, announced) : incoming.describeError(error);
  }
  if (announced !== undefined && announced !== download.bytes) throw truncated(incoming, download.bytes, announced);
  if (!download.looksLikeZip) throw fetchError(`cannot deploy ${incoming.display}: ${incoming.notAZip.reason}`, { hint: incoming.notAZip.hint });
  return download;
}

/** The connection ended under the body (not a timeout, a limit or a stop, which say so themselves). */
function closedEarly(error: unknown): boolean {
  const codes = [systemErrorCode(error), systemErrorCode((error as { cause?: unknown } | undefined)?.cause)];
  return codes.some((code) => code === 'UND_ERR_SOCKET' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE');
}

/** A body that ended before the size its server announced: the origin died or closed mid-download. */
function truncated(incoming: IncomingArchive, bytes: number, announced: number): DeployError {
  return fetchError(`cannot deploy ${incoming.display}: the download is truncated (${bytes} of ${announced} bytes)`, {
    hint: retryHint,
  });
}

export interface ZipOnDisk {
  path: string;
  /** The remote, redacted, for messages. */
  display: string;
  sha256: string;
  /** Appended to the revision, e.g. an S3 object's version. */
  revisionSuffix?: string;
  remoteState: RemoteState;
  /** Whether the file is a download of ours, to delete when done. */
  temporary: boolean;
  /** Throws if the archive changed since it was hashed; run before and after extraction. */
  verifyUnchanged?: () => Promise<void>;
  /** Writes `<remote>.sig` to `destination`; false when the remote has none. */
  fetchSignature?: (destination: string) => Promise<boolean>;
  /** Keeps the download (moved away) for the next delta; called instead of removing it once it proved a good archive. */
  keepForNextDelta?: (path: string, sha256: string) => Promise<void>;
  /** Set when the archive was rebuilt from a delta: downloads it whole, for when the rebuilt one fails its checks. */
  downloadWhole?: () => Promise<ZipOnDisk>;
}

/**
 * The operator's trust settings, applied to the archive's bytes before anything is extracted:
 * checksum pins one archive; allowed-signers requires a good detached SSH signature.
 */
async function verifyArchive(context: CheckContext<ZipSettings>, zip: ZipOnDisk, revision: string): Promise<void> {
  const { settings } = context;
  const { display } = zip;
  const refuse = (reason: string) => new VerificationError(`refused ${display} (sha256 ${zip.sha256.slice(0, 12)}): ${reason}`, revision, zip.remoteState);
  if (settings.checksum && settings.checksum !== zipRevision(zip.sha256)) {
    throw refuse(`its sha256 is not the one pinned by checksum (${settings.checksum.slice(0, 19)}...)`);
  }
  if (!settings.allowedSigners) return;
  if (!zip.fetchSignature) throw refuse('this remote cannot carry a signature');
  // In our downloads directory: beside a local archive is the operator's own signature file.
  const signaturePath = await newDownloadFile(context.cache, 'signature');
  try {
    if (!(await zip.fetchSignature(signaturePath))) throw refuse(`there is no signature ${display}.sig beside it`);
    const signer = await verifySshSignature(settings.allowedSigners, zip.path, signaturePath, context.env).catch((error: Error) => {
      throw refuse(error.message);
    });
    context.log.info(`archive ${display} is signed by ${signer}`, { revision });
  } finally {
    await rm(signaturePath, { force: true });
  }
}

export async function zipCheckResult(context: CheckContext<ZipSettings>, zip: ZipOnDisk): Promise<Unchanged | PendingRevision> {
  const revision = zipRevision(zip.sha256) + (zip.revisionSuffix ?? '');
  // An archive the extractor accepted, or the live one again, is a good base for the next delta.
  let goodArchive = false;
  const dispose = async () => {
    if (!zip.temporary) return;
    if (goodArchive && zip.keepForNextDelta) {
      const kept = await zip.keepForNextDelta(zip.path, zip.sha256).then(
        () => true,
        (error: unknown) => (context.log.warn(`the archive is not kept for the next delta: ${(error as Error).message}`), false),
      );
      if (kept) return;
    }
    await rm(zip.path, { force: true });
  };
  if (context.deployed?.revision === revision) {
    goodArchive = true;
    await dispose();
    const before = context.deployed.remoteState;
    if (before.etagUnstable || (before.etag && zip.remoteState.etag && before.etag !== zip.remoteState.etag)) {
      // Said once, then remembered: such a server makes every check download the whole archive.
      if (!before.etagUnstable) {
        context.log.info(`${zip.display} sent a new ETag for the same content (sha256 ${zip.sha256.slice(0, 12)}): the new validators are remembered, but a server whose ETag changes at every request makes each check download the whole archive; fix the server's ETag`);
      }
      zip.remoteState.etagUnstable = 'yes';
    }
    return { changed: false, remoteState: zip.remoteState };
  }
  try {
    await verifyArchive(context, zip, revision);
  } catch (error) {
    await dispose();
    // The rebuilt bytes are ours, not the publisher's: before refusing the archive, it is checked as downloaded whole.
    if (error instanceof VerificationError && zip.downloadWhole) {
      context.log.warn(`${zip.display}: the archive rebuilt from a delta failed its check (${error.message}): downloading it whole`);
      return zipCheckResult(context, await zip.downloadWhole());
    }
    throw error;
  }
  const { settings } = context;
  return {
    changed: true,
    revision,
    description: `archive ${zip.display} (sha256 ${zip.sha256.slice(0, 12)})`,
    remoteState: zip.remoteState,
    async stage(directory) {
      await zip.verifyUnchanged?.();
      // Loaded when a release is staged, not at every check (it brings the zip reader with it).
      const { extractZip } = await import('./extract.js');
      const summary = await extractZip(
        zip.path,
        directory,
        { maxUnpackedBytes: settings.maxUnpackedBytes, maxEntries: settings.maxEntries },
        zip.display,
        context.progress,
      );
      await zip.verifyUnchanged?.();
      goodArchive = true;
      context.log.info(`extracted ${counted(summary.files, 'file')}, ${counted(summary.directories, 'directory', 'directories')}, ${counted(summary.symlinks, 'symlink')} (${counted(summary.bytes, 'byte')})`);
      return { fileHashes: summary.fileHashes, entries: summary.entries };
    },
    dispose,
  };
}
