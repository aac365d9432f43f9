// The parts of undici the agent uses, loaded from undici's own files instead of its index. The
// index loads all of undici at once: fetch, WebSocket, the mocks, the cache stores, HTTP/2 and,
// through its cookie helpers, Node's own copy of undici. Bundled, that was a 1 MiB chunk on every
// idle HTTP check; these parts alone are half of it, and an idle check 0.75x the time with yargs 17
// (docs/performance.md, "Start-up, memory and first deploys"). request() is what undici's index
// makes of the same function: the URL split into origin and path for a dispatcher's request API.
import requestOnDispatcher from 'undici/lib/api/api-request.js';
import { parseURL } from 'undici/lib/core/util.js';
import type { Dispatcher } from 'undici';

export { default as Agent } from 'undici/lib/dispatcher/agent.js';
export { default as EnvHttpProxyAgent } from 'undici/lib/dispatcher/env-http-proxy-agent.js';
export { default as redirectInterceptor } from 'undici/lib/interceptor/redirect.js';
export type { Dispatcher };

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  method?: Dispatcher.HttpMethod;
  /** Always given: no global dispatcher is kept, so every caller owns (and closes) its connections. */
  dispatcher: Dispatcher;
};

export function request(url: string | URL, options: RequestOptions): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  const parsed = parseURL(url);
  return requestOnDispatcher.call(dispatcher, {
    ...rest,
    origin: parsed.origin,
    path: parsed.search ? `${parsed.pathname}${parsed.search}` : parsed.pathname,
    method: rest.method ?? (rest.body ? 'PUT' : 'GET'),
  });
}
