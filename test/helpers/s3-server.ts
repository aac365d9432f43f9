// An S3-compatible server on loopback (s3rver) behind a small proxy that counts requests and
// body bytes, and can answer with S3's own error responses (AccessDenied, PermanentRedirect,
// SlowDown) that s3rver does not produce, or tag responses with a version id.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
// @ts-expect-error s3rver ships no type declarations
import S3rver from 's3rver';
import { listenOnLoopback } from './listen.js';

export interface S3Fault {
  status: number;
  code: string;
  /** How many requests get it; Infinity for all. */
  times: number;
}

export interface TestS3 {
  /** The proxy's endpoint, for s3-endpoint. */
  endpoint: string;
  bucket: string;
  requests: number;
  bodyBytes: number;
  resetCounters(): void;
  fault(fault: S3Fault | undefined): void;
  versionId: string | undefined;
  upload(key: string, body: Buffer): Promise<void>;
  /** The next GET's body is cut (the connection destroyed) once this many bytes have been sent. */
  cutAfter(bytes: number): void;
  /** The headers of the last GET the agent sent. */
  lastGet: IncomingMessage['headers'] | undefined;
}

export const s3AccessKey = 'S3RVER';

export async function startS3(t: TestContext): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), 's3rver-'));
  const bucket = 'deploys';
  const s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port: s3rverPort } = (await s3rver.run()) as AddressInfo;
  let pendingFault: S3Fault | undefined;
  let pendingCut: number | undefined;
  let lastGet: IncomingMessage['headers'] | undefined;

  const state = {
    requests: 0,
    bodyBytes: 0,
    versionId: undefined as string | undefined,
  };
  const proxy = createServer((incoming: IncomingMessage, outgoing: ServerResponse) => {
    state.requests++;
    if (pendingFault && pendingFault.times > 0) {
      pendingFault.times--;
      const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${pendingFault.code}</Code><Message>${pendingFault.code} injected by the test</Message><RequestId>test</RequestId></Error>`;
      outgoing.writeHead(pendingFault.status, { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(body)) });
      outgoing.end(body);
      return;
    }
    if (incoming.method === 'GET') lastGet = incoming.headers;
    const cut = incoming.method === 'GET' ? pendingCut : undefined;
    pendingCut = undefined;
    const forward = httpRequest(
      { host: '127.0.0.1', port: s3rverPort, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (response) => {
        const headers = { ...response.headers };
        if (state.versionId && incoming.method === 'GET') headers['x-amz-version-id'] = state.versionId;
        outgoing.writeHead(response.statusCode ?? 500, headers);
        if (cut !== undefined) {
          // The first `cut` bytes, then the connection is destroyed once they reached the socket.
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const body = Buffer.concat(chunks).subarray(0, cut);
            state.bodyBytes += body.length;
            outgoing.write(body, () => outgoing.socket?.destroy());
          });
          return;
        }
        response.on('data', (chunk: Buffer) => {
          state.bodyBytes += chunk.length;
        });
        response.pipe(outgoing);
      },
    );
    incoming.pipe(forward);
  });
  const endpoint = `http://127.0.0.1:${await listenOnLoopback(t, proxy)}`;

  // Uploads go straight to s3rver, so the counters see only the agent's requests.
  const uploader = new S3Client({
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${s3rverPort}`,
    forcePathStyle: true,
    credentials: { accessKeyId: s3AccessKey, secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED', // else s3rver stores the chunk framing in the object
  });

  t.after(async () => {
    uploader.destroy();
    await s3rver.close();
    await rm(directory, { recursive: true, force: true });
  });

  return {
    endpoint,
    bucket,
    get requests() {
      return state.requests;
    },
    get bodyBytes() {
      return state.bodyBytes;
    },
    resetCounters() {
      state.requests = 0;
      state.bodyBytes = 0;
    },
    fault(fault) {
      pendingFault = fault;
    },
    get versionId() {
      return state.versionId;
    },
    set versionId(value) {
      state.versionId = value;
    },
    cutAfter(bytes) {
      pendingCut = bytes;
    },
    get lastGet() {
      return lastGet;
    },
    async upload(key, body) {
      await uploader.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
  };
}
