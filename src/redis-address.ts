// What fleet-redis names, parsed once: a standalone Redis (redis:// or rediss://, as ioredis reads
// it) or a set of Sentinels that name the primary (redis-sentinel://[user:password@]host:port
// [,host:port…]/PRIMARY-NAME[/db]). With Sentinels, every check asks them where the primary is
// now, so a failover is followed at the next check; the credentials are the primary's.
export type RedisAddress =
  | { kind: 'standalone'; url: string }
  | { kind: 'sentinel'; sentinels: Array<{ host: string; port: number }>; name: string; username?: string; password?: string; db: number };

const sentinelForm = /^redis-sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/@]+)\/([^/]+)(?:\/(\d+))?$/i;

/** The parsed address, or undefined when `url` is neither form. */
export function parseRedisAddress(url: string): RedisAddress | undefined {
  if (/^rediss?:\/\/[^/]/i.test(url)) {
    try {
      new URL(url);
      return { kind: 'standalone', url };
    } catch {
      return undefined;
    }
  }
  const match = sentinelForm.exec(url);
  if (!match) return undefined;
  const sentinels: Array<{ host: string; port: number }> = [];
  for (const part of match[3]!.split(',')) {
    const hostPort = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(part.trim());
    const port = Number(hostPort?.[2] ?? 26379);
    if (!hostPort || port < 1 || port > 65535) return undefined;
    sentinels.push({ host: hostPort[1]!.replace(/^\[|\]$/g, ''), port });
  }
  const decode = (value: string | undefined) => (value ? decodeURIComponent(value) : undefined);
  return { kind: 'sentinel', sentinels, name: decodeURIComponent(match[4]!), username: decode(match[1]), password: decode(match[2]), db: Number(match[5] ?? 0) };
}
