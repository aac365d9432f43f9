// What fleet-redis names, parsed once: a standalone Redis (redis:// or rediss://, as ioredis reads
// it) or a set of Sentinels that name the primary (redis-sentinel://[user:password@]host:port
// [,host:port…]/PRIMARY-NAME[/db]), or a Redis Cluster reached through any of its nodes
// (redis-cluster://[user:password@]host:port[,host:port…]). With Sentinels, every check asks
// them where the primary is now, so a failover is followed at the next check; the credentials
// are the primary's. In a Cluster the fleet's keys share one hash slot ({fleet-name}).
export type RedisAddress =
  | { kind: 'standalone'; url: string }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; username?: string; password?: string }
  | { kind: 'sentinel'; sentinels: Array<{ host: string; port: number }>; name: string; username?: string; password?: string; db: number };

const sentinelForm = /^redis-sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/@]+)\/([^/]+)(?:\/(\d+))?$/i;
const clusterForm = /^redis-cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/@]+)\/?$/i;

/** host:port[,host:port…] (IPv6 in brackets), or undefined when one is malformed. */
function hostList(text: string, defaultPort: number): Array<{ host: string; port: number }> | undefined {
  const hosts: Array<{ host: string; port: number }> = [];
  for (const part of text.split(',')) {
    const hostPort = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(part.trim());
    const port = Number(hostPort?.[2] ?? defaultPort);
    if (!hostPort || port < 1 || port > 65535) return undefined;
    hosts.push({ host: hostPort[1]!.replace(/^\[|\]$/g, ''), port });
  }
  return hosts;
}

const decode = (value: string | undefined) => (value ? decodeURIComponent(value) : undefined);

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
  const cluster = clusterForm.exec(url);
  if (cluster) {
    const nodes = hostList(cluster[3]!, 6379);
    return nodes ? { kind: 'cluster', nodes, username: decode(cluster[1]), password: decode(cluster[2]) } : undefined;
  }
  const match = sentinelForm.exec(url);
  if (!match) return undefined;
  const sentinels = hostList(match[3]!, 26379);
  if (!sentinels) return undefined;
  return { kind: 'sentinel', sentinels, name: decodeURIComponent(match[4]!), username: decode(match[1]), password: decode(match[2]), db: Number(match[5] ?? 0) };
}
