// The Redis client for the fleet's address, in its one of three shapes (a server, a primary found
// through Sentinels, a Cluster), failing fast: a short connect and command timeout, no offline
// queue, no retries. And what a failed connection or a reply says, in an operator's words.
import { Cluster, Redis } from 'ioredis';
import type { Settings } from '../core/settings.js';
import { systemErrorCode, usageError, messageOf } from '../base/errors.js';
import { parseRedisAddress } from '../settings/redis-address.js';
import { NotASmallFile, readSmallRegularFile } from '../base/small-file.js';

export function createRedisClient(url: string, settings: Settings): Redis | Cluster {
  const failFast = {
    connectTimeout: 3000,
    commandTimeout: 3000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false, // an INFO per connection, and so per check, for nothing: connect() resolves once connected
    retryStrategy: () => null,
  };
  const address = parseRedisAddress(url);
  if (address?.kind === 'sentinel') {
    // Each check asks the Sentinels (in turn, once) where the primary is now, and connects there.
    return new Redis({ ...failFast, lazyConnect: true, sentinels: address.sentinels, name: address.name, ...credentials(address), db: address.db, role: 'master', sentinelRetryStrategy: () => null });
  }
  if (address?.kind === 'cluster') {
    // The fleet's keys share one hash slot: every script runs on the primary that owns it.
    return new Cluster(address.nodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableReadyCheck: true, // connect() resolves once the slot map is known
      clusterRetryStrategy: () => null,
      maxRedirections: 3,
      // No lazyConnect for the nodes (the Cluster connects them): with it set, false or true,
      // connect() never settled in about half the runs (ioredis 5.11, 3-node cluster, measured).
      redisOptions: { ...failFast, ...credentials(address) },
    });
  }
  return new Redis(url, { ...(url.startsWith('rediss://') ? { tls: tlsFiles(settings) } : {}), ...failFast, lazyConnect: true });
}

/** The user and password an address gives, as ioredis options: only those set. */
function credentials(address: { username?: string; password?: string }): { username?: string; password?: string } {
  return { ...(address.username ? { username: address.username } : {}), ...(address.password ? { password: address.password } : {}) };
}

/** The fleet-tls-* files as TLS options (a private CA, a client certificate); each read whole, bounded. */
function tlsFiles(settings: Settings): { ca?: string; cert?: string; key?: string } {
  const read = (key: string, path: string | undefined) => {
    if (!path) return undefined;
    try {
      return readSmallRegularFile(path, 1 << 20);
    } catch (error) {
      throw usageError(`cannot read the ${key} file ${path}: ${error instanceof NotASmallFile ? error.message : messageOf(error)}`, 'give the path of a PEM file the agent may read');
    }
  };
  const options = { ca: read('fleet-tls-ca', settings.fleetTlsCa), cert: read('fleet-tls-cert', settings.fleetTlsCert), key: read('fleet-tls-key', settings.fleetTlsKey) };
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

/** What a reply error says of the server: a Cluster node, or a read-only replica; undefined for anything else. */
export function wrongKindOfServer(message: string): string | undefined {
  if (/^(MOVED|ASK|CLUSTERDOWN|CROSSSLOT)\b/.test(message)) return 'is a Redis Cluster node';
  if (/^READONLY\b/.test(message)) return 'is a read-only replica, not the primary';
  return undefined;
}

/** ioredis's and OpenSSL's words for a failed connection, as an operator reads them. */
export function describeConnectionError(error: Error): string {
  const code = systemErrorCode(error);
  if (/WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(error.message)) return `the password or user was refused: ${error.message}; check fleet-redis`;
  if (code?.startsWith('ERR_SSL_') || code?.startsWith('ERR_TLS_') || /certificate|SSL routines/i.test(error.message)) return `TLS failed: ${error.message}${code ? ` (${code})` : ''}`;
  return `${error.message}${code && !error.message.includes(code) ? ` (${code})` : ''}`;
}
