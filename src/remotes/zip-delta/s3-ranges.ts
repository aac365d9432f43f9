// Ranges of an S3 object: one range per GetObject (S3 takes no more), at most 8 at a time, each
// with IfMatch on the ETag the first answer gave, so an object replaced meanwhile answers 412,
// which abandons the delta.
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DeltaAbandoned, type ByteRange } from './delta-plan.js';
import { askedRange, letGo, writeRangeBody } from './ranges-answered.js';
import { inParallel } from '../../base/in-parallel.js';
import type { RangeSource } from './rebuild.js';

export interface S3RangeTarget {
  client: S3Client;
  bucket: string;
  key: string;
  signal: AbortSignal;
  size: number;
  etag: string;
}

const requestsAtOnce = 8;

export function s3RangeSource(target: S3RangeTarget): RangeSource {
  let requests = 0;
  const fetchOne = async (range: ByteRange, write: (position: number, bytes: Buffer) => Promise<void>) => {
    requests += 1;
    let response;
    try {
      response = await target.client.send(
        new GetObjectCommand({ Bucket: target.bucket, Key: target.key, Range: `bytes=${range.start}-${range.end - 1}`, IfMatch: target.etag }),
        { abortSignal: target.signal },
      );
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
      if (status === 412) throw new DeltaAbandoned('the object was replaced while its delta was fetched');
      throw error;
    }
    const body = response.Body as Readable;
    try {
      // Some S3-compatible stores ignore IfMatch: the ETag is checked on every answer too.
      if (response.ETag !== target.etag) throw new DeltaAbandoned(`the object was replaced while its delta was fetched (ETag ${response.ETag})`);
      await writeRangeBody(body, askedRange(response.ContentRange, new Map([[range.start, range]]), target.size), write);
    } finally {
      letGo(body);
    }
  };
  return {
    get requests() {
      return requests;
    },
    multipleRangesPerRequest: async () => false,
    fetch: (ranges, write) => inParallel(ranges, requestsAtOnce, (range) => fetchOne(range, write)),
  };
}
