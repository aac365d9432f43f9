// A real HTTP server on 127.0.0.1, port 0, serving files with ETag and Last-Modified and
// answering the faults an operator meets: 304, 404, 500, redirects, an HTML page, a truncated
// body, a stalled body. It counts requests and body bytes so tests can prove a check was cheap.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { listenOnLoopback } from './listen.js';

export type Route =
  /**
   * Ranges as RFC 9110 says (`N-`, `N-M`, `-S`, several as multipart/byteranges, as nginx does).
   * `ranges: false` answers a Range request with the whole file (200), as a server that does not
   * resume; `multipleRanges: 501` answers a request for several ranges with 501, as some CDNs do.
   */
  | { kind: 'file'; path: string; lastModified?: Date; etag?: boolean; contentType?: string; ranges?: boolean; multipleRanges?: 501 }
  | { kind: 'status'; status: number; body?: string; contentType?: string }
  | { kind: 'redirect'; location: string; status?: number }
  | { kind: 'truncated'; path: string }
  | { kind: 'stalled'; path: string }
  | { kind: 'basic-auth'; user: string; password: string; route: Route }
  /** A misbehaving server written by the test; the request is counted, the response is the test's. */
  | { kind: 'custom'; respond(request: IncomingMessage, response: ServerResponse): void };

export interface TestHttpServer {
  url(path: string): string;
  route(path: string, route: Route): void;
  requests: Array<{ method: string; path: string; headers: IncomingMessage['headers']; status: number }>;
  bodyBytesSent: number;
  resetCounters(): void;
}

/**
 * A Range header's byte ranges within `size`, as [start, end); an empty list when none can be
 * satisfied (416); undefined when there is no Range header or it is not a bytes range (ignored).
 */
export function parseRanges(header: string, size: number): Array<{ start: number; end: number }> | undefined {
  const spec = /^bytes=(.+)$/.exec(header.trim());
  if (!spec) return undefined;
  const ranges: Array<{ start: number; end: number }> = [];
  for (const item of spec[1]!.split(',')) {
    const match = /^\s*(\d*)-(\d*)\s*$/.exec(item);
    if (!match || (match[1] === '' && match[2] === '')) return undefined;
    if (match[1] === '') {
      const suffix = Number(match[2]);
      if (suffix > 0 && size > 0) ranges.push({ start: Math.max(0, size - suffix), end: size });
      continue;
    }
    const start = Number(match[1]);
    const end = match[2] === '' ? size : Math.min(size, Number(match[2]) + 1);
    if (start < size && start < end) ranges.push({ start, end });
  }
  return ranges;
}

/** The ETag the file routes send: the same bytes always get the same one. */
export const etagOf = (body: Buffer) => `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;

export async function startHttpServer(t: TestContext): Promise<TestHttpServer> {
  const routes = new Map<string, Route>();
  const state: TestHttpServer = {
    url: (path) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    route: (path, route) => void routes.set(path, route),
    requests: [],
    bodyBytesSent: 0,
    resetCounters() {
      state.requests.length = 0;
      state.bodyBytesSent = 0;
    },
  };

  const send = (request: IncomingMessage, response: ServerResponse, status: number, body?: Buffer, headers: Record<string, string> = {}) => {
    state.requests.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, status });
    response.writeHead(status, headers);
    if (body) state.bodyBytesSent += body.length;
    response.end(body);
  };

  const handle = async (route: Route, request: IncomingMessage, response: ServerResponse): Promise<void> => {
    switch (route.kind) {
      case 'file': {
        const body = await readFile(route.path);
        const etag = etagOf(body);
        const headers: Record<string, string> = { 'content-type': route.contentType ?? 'application/zip' };
        if (route.etag !== false) headers.etag = etag;
        if (route.lastModified) headers['last-modified'] = route.lastModified.toUTCString();
        const notModified =
          (route.etag !== false && request.headers['if-none-match'] === etag) ||
          (route.etag === false && route.lastModified && request.headers['if-modified-since'] === route.lastModified.toUTCString());
        if (notModified) return send(request, response, 304, undefined, headers);
        if (route.ranges === false) return send(request, response, 200, body, { ...headers, 'content-length': String(body.length) });
        headers['accept-ranges'] = 'bytes';
        // Honoured only while If-Range names this version.
        const ranges = parseRanges(String(request.headers.range ?? ''), body.length);
        const ifRange = request.headers['if-range'];
        const sameVersion = ifRange === undefined || ifRange === headers.etag || ifRange === headers['last-modified'];
        if (ranges && sameVersion) {
          if (ranges.length === 0) return send(request, response, 416, undefined, { 'content-range': `bytes */${body.length}` });
          if (ranges.length === 1) {
            const [{ start, end }] = ranges as [{ start: number; end: number }];
            return send(request, response, 206, body.subarray(start, end), { ...headers, 'content-length': String(end - start), 'content-range': `bytes ${start}-${end - 1}/${body.length}` });
          }
          if (route.multipleRanges === 501) return send(request, response, 501, Buffer.from('multiple ranges are not supported'), { 'content-type': 'text/plain' });
          const boundary = `test${Math.random().toString(36).slice(2)}`;
          const parts = ranges.flatMap(({ start, end }) => [
            Buffer.from(`\r\n--${boundary}\r\nContent-Type: ${headers['content-type']}\r\nContent-Range: bytes ${start}-${end - 1}/${body.length}\r\n\r\n`),
            body.subarray(start, end),
          ]);
          const multipart = Buffer.concat([...parts, Buffer.from(`\r\n--${boundary}--\r\n`)]);
          return send(request, response, 206, multipart, { ...headers, 'content-type': `multipart/byteranges; boundary=${boundary}`, 'content-length': String(multipart.length) });
        }
        return send(request, response, 200, body, { ...headers, 'content-length': String(body.length) });
      }
      case 'status':
        return send(request, response, route.status, Buffer.from(route.body ?? ''), { 'content-type': route.contentType ?? 'text/plain' });
      case 'redirect':
        return send(request, response, route.status ?? 302, undefined, { location: route.location });
      case 'truncated': {
        const body = await readFile(route.path);
        state.requests.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, status: 200 });
        // With the ETag the file route sends for the same bytes: a resumable download's first half.
        response.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(body.length), etag: etagOf(body), 'accept-ranges': 'bytes' });
        // The connection is cut once the first half has reached the socket: destroyed at once, the
        // half still queued was sometimes dropped (0 bytes arrived, 1 run in about 300 under load).
        state.bodyBytesSent += Math.floor(body.length / 2);
        response.write(body.subarray(0, Math.floor(body.length / 2)), () => response.socket?.destroy());
        return;
      }
      case 'stalled': {
        const body = await readFile(route.path);
        state.requests.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, status: 200 });
        response.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(body.length) });
        response.write(body.subarray(0, 10)); // and then nothing, until the client gives up
        return;
      }
      case 'custom':
        state.requests.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, status: 0 });
        route.respond(request, response);
        return;
      case 'basic-auth': {
        const expected = `Basic ${Buffer.from(`${route.user}:${route.password}`).toString('base64')}`;
        if (request.headers.authorization !== expected) {
          return send(request, response, 401, Buffer.from('unauthorised'), { 'www-authenticate': 'Basic realm="test"' });
        }
        return handle(route.route, request, response);
      }
    }
  };

  const server: Server = createServer((request, response) => {
    const route = routes.get((request.url ?? '').replace(/\?.*$/, ''));
    if (!route) return send(request, response, 404, Buffer.from('not found'));
    handle(route, request, response).catch((error) => {
      response.destroy(error as Error);
    });
  });
  await listenOnLoopback(t, server);
  return state;
}
