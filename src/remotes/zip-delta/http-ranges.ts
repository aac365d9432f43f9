// Ranges of an archive over HTTP: many per request where the server answers multipart/byteranges
// (nginx, Apache), else one per request, at most 8 at a time (servers and CDNs that refuse or
// ignore multi-range requests answer 200, 416 or 501). Every request carries If-Range with the
// version the first answer named, so a server whose archive changed answers 200, which abandons
// the delta.
import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { getMultipartBoundary, parseMultipartStream } from '@remix-run/multipart-parser';
import { request, type Dispatcher } from '../../base/http-client.js';
import { DeltaAbandoned, type ByteRange } from './delta-plan.js';
import { askedRange, letGo, writeRangeBody } from './ranges-answered.js';
import { inParallel } from '../../base/in-parallel.js';
import { rebuildFromDelta, type DeltaRequest, type DeltaResult, type RangeSource } from './rebuild.js';
import type { CheckContext } from '../../core/remote-contract.js';
import type { ZipSettings } from '../../core/settings.js';
import { attemptDelta, receiveEndOfArchive } from './attempt.js';
import type { DeltaBase } from './delta-base.js';

export interface HttpRangeTarget {
  url: string;
  /** The check's own headers (credentials, user agent), without its conditional ones. */
  headers: Record<string, string>;
  dispatcher: Dispatcher;
  signal: AbortSignal;
  size: number;
  /** A strong ETag or Last-Modified of the version being rebuilt (If-Range); its ETag, if any, must come back on every answer. */
  validator: string | undefined;
  etag: string | undefined;
}

// One multi-range request names at most this many ranges: its Range header stays under about
// 6 KiB, within servers' usual 8 KiB header limit.
const rangesPerRequest = 250;
const multiRangeRequestsAtOnce = 2;
const singleRangeRequestsAtOnce = 8;

export function httpRangeSource(target: HttpRangeTarget): RangeSource {
  let requests = 0;
  let multiple: boolean | undefined;
  const ask = async (ranges: readonly ByteRange[]): Promise<Dispatcher.ResponseData> => {
    requests += 1;
    const spec = ranges.map((range) => `${range.start}-${range.end - 1}`).join(',');
    const response = await request(target.url, {
      method: 'GET',
      headers: { ...target.headers, range: `bytes=${spec}`, ...(target.validator ? { 'if-range': target.validator } : {}) },
      dispatcher: target.dispatcher,
      signal: target.signal,
    });
    const etag = response.headers.etag;
    if (response.statusCode === 206 && target.etag !== undefined && etag !== target.etag) {
      await response.body.dump().catch(() => undefined);
      throw new DeltaAbandoned(`the archive changed while its delta was fetched (ETag ${String(etag)})`);
    }
    return response;
  };
  const refuse = async (response: Dispatcher.ResponseData): Promise<never> => {
    await response.body.dump().catch(() => undefined);
    throw new DeltaAbandoned(
      response.statusCode === 200
        ? 'the server answered a range request with the whole archive (it changed since, or does not honour ranges)'
        : `the server answered a range request with HTTP ${response.statusCode}`,
    );
  };

  const fetchOne = async (range: ByteRange, write: (position: number, bytes: Buffer) => Promise<void>) => {
    const response = await ask([range]);
    if (response.statusCode !== 206) return refuse(response);
    const asked = askedRange(String(response.headers['content-range'] ?? ''), new Map([[range.start, range]]), target.size);
    await writeRangeBody(response.body, asked, write).finally(() => letGo(response.body));
  };

  const fetchMany = async (ranges: readonly ByteRange[], write: (position: number, bytes: Buffer) => Promise<void>) => {
    if (ranges.length === 1) return fetchOne(ranges[0]!, write);
    const response = await ask(ranges);
    if (response.statusCode !== 206) return refuse(response);
    const boundary = getMultipartBoundary(String(response.headers['content-type'] ?? ''));
    if (!boundary) return refuse(response);
    const waiting = new Map(ranges.map((range) => [range.start, range]));
    const longest = Math.max(...ranges.map((range) => range.end - range.start));
    try {
      const web = Readable.toWeb(Readable.from(withoutPreamble(response.body, boundary))) as unknown as ReadableStream<Uint8Array>;
      for await (const part of parseMultipartStream(web as never, { boundary, maxParts: ranges.length, maxFileSize: longest, maxTotalSize: longest * ranges.length })) {
        const range = askedRange(part.headers['content-range'], waiting, target.size);
        waiting.delete(range.start);
        await writeRangeBody([part.bytes], range, write);
      }
    } catch (error) {
      if (error instanceof DeltaAbandoned || target.signal.aborted) throw error;
      throw new DeltaAbandoned(`the server's multipart answer cannot be read (${(error as Error).message})`);
    } finally {
      letGo(response.body);
    }
    if (waiting.size > 0) throw new DeltaAbandoned(`the server's multipart answer lacks ${waiting.size} of the ${ranges.length} ranges asked for`);
  };

  return {
    get requests() {
      return requests;
    },
    async multipleRangesPerRequest() {
      if (multiple === undefined) {
        multiple = false;
        if (target.size >= 4) {
          const response = await ask([
            { start: 0, end: 1 },
            { start: 2, end: 3 },
          ]);
          multiple = response.statusCode === 206 && /^multipart\/byteranges/i.test(String(response.headers['content-type'] ?? ''));
          await response.body.dump().catch(() => undefined);
        }
      }
      return multiple;
    },
    async fetch(ranges, write) {
      if (await this.multipleRangesPerRequest()) {
        const batches: ByteRange[][] = [];
        for (let index = 0; index < ranges.length; index += rangesPerRequest) batches.push(ranges.slice(index, index + rangesPerRequest));
        await inParallel(batches, multiRangeRequestsAtOnce, (batch) => fetchMany(batch, write));
      } else {
        await inParallel(ranges, singleRangeRequestsAtOnce, (range) => fetchOne(range, write));
      }
    },
  };
}

/**
 * The body from its first boundary on. nginx, like many servers, starts a multipart answer with
 * an empty line (a preamble, which RFC 2046 says to ignore); the parser wants the boundary first.
 */
async function* withoutPreamble(body: AsyncIterable<Buffer>, boundary: string): AsyncGenerator<Buffer> {
  const delimiter = Buffer.from(`--${boundary}`);
  let head = Buffer.alloc(0);
  let found = false;
  for await (const chunk of body) {
    if (found) {
      yield chunk;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    const at = head.indexOf(delimiter);
    if (at >= 0) {
      found = true;
      yield head.subarray(at);
    } else if (head.length > 4096) {
      throw new DeltaAbandoned('the server\'s multipart answer does not start with its boundary');
    }
  }
}

export interface HttpDeltaTarget extends Omit<HttpRangeTarget, 'size' | 'validator' | 'etag'> {
  base: DeltaBase;
  destination: string;
  display: string;
}

/**
 * After the first answer (a 206 with the archive's end): the archive rebuilt into
 * `target.destination`, or undefined when a delta is not used (the log says why).
 */
export async function rebuildOverHttp(context: CheckContext<ZipSettings>, first: Dispatcher.ResponseData, target: HttpDeltaTarget): Promise<DeltaResult | undefined> {
  return attemptDelta(context, target, async () => {
    const { size, first: firstBytes } = await receiveEndOfArchive(context, first.body, String(first.headers['content-range'] ?? ''), target.display);
    const etag = typeof first.headers.etag === 'string' ? first.headers.etag : undefined;
    const lastModified = first.headers['last-modified'];
    const validator = etag?.startsWith('"') ? etag : typeof lastModified === 'string' && !Number.isNaN(Date.parse(lastModified)) ? lastModified : undefined;
    // Without a name for this version, a change between two requests could not be seen.
    if (!validator) throw new DeltaAbandoned('the server names no version of the archive (no strong ETag, no Last-Modified)');
    const source = httpRangeSource({ ...target, size, validator, etag });
    return rebuildFromDelta({ destination: target.destination, size, first: firstBytes, source, base: target.base, maxEntries: context.settings.maxEntries, wholeDigest: representationDigest(first.headers) });
  });
}

/** RFC 9530's `Repr-Digest: sha-256=:BASE64:` (or RFC 3230's `Digest: SHA-256=BASE64`) as hex; undefined when absent. */
function representationDigest(headers: Record<string, string | string[] | undefined>): DeltaRequest['wholeDigest'] {
  const repr = /(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]+):/.exec(String(headers['repr-digest'] ?? ''));
  if (repr) return { algorithm: 'sha256', hex: Buffer.from(repr[1]!, 'base64').toString('hex'), from: 'the server\'s Repr-Digest' };
  const legacy = /(?:^|,)\s*sha-256=([A-Za-z0-9+/=]+)/i.exec(String(headers.digest ?? ''));
  if (legacy) return { algorithm: 'sha256', hex: Buffer.from(legacy[1]!, 'base64').toString('hex'), from: 'the server\'s Digest' };
  return undefined;
}
