// Debian's nginx on a free loopback port, serving one directory with its own ETag, Range and
// multi-range (multipart/byteranges) handling, and an access log of each request's status, body
// bytes and Range header. One process (master_process off), stopped by its pid when the test ends.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort, waitForPort } from './git-servers.js';

export const nginxBinary = '/usr/sbin/nginx';

export interface TestNginx {
  url(path: string): string;
  /** The access log so far: one entry per request. */
  requests(): Promise<Array<{ status: number; bodyBytes: number; range: string }>>;
}

/** Serves `root` (and writes its own files in `workDirectory`). */
export async function startNginx(t: TestContext, root: string, workDirectory: string): Promise<TestNginx> {
  const port = await freePort();
  const accessLog = join(workDirectory, 'nginx-access.log');
  const config = join(workDirectory, 'nginx.conf');
  await writeFile(
    config,
    `master_process off;
daemon off;
pid ${join(workDirectory, 'nginx.pid')};
error_log ${join(workDirectory, 'nginx-error.log')} warn;
events { worker_connections 64; }
http {
  default_type application/zip;
  log_format counted '$status $body_bytes_sent "$http_range"';
  access_log ${accessLog} counted;
  client_body_temp_path ${workDirectory}/nginx-body;
  proxy_temp_path ${workDirectory}/nginx-proxy;
  fastcgi_temp_path ${workDirectory}/nginx-fastcgi;
  uwsgi_temp_path ${workDirectory}/nginx-uwsgi;
  scgi_temp_path ${workDirectory}/nginx-scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`,
  );
  const child = spawn(nginxBinary, ['-p', workDirectory, '-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  t.after(async () => {
    if (child.exitCode === null && child.pid) {
      process.kill(child.pid, 'SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
  await waitForPort(port, '127.0.0.1', child, `nginx (${stderr})`);
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    async requests() {
      const text = await readFile(accessLog, 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const match = /^(\d+) (\d+) "(.*)"$/.exec(line)!;
          return { status: Number(match[1]), bodyBytes: Number(match[2]), range: match[3] === '-' ? '' : match[3]! };
        });
    },
  };
}
