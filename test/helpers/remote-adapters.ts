// One adapter per kind of remote, for the fetcher contract suite: each knows how to publish a
// version on a real server of its kind (git over file:// and git daemon, HTTP on port 0, S3 on
// s3rver, a local zip), where the same content lives at another remote, what an unreachable and
// a never-answering remote look like, and what it can count of the bytes it sent. The next kind
// of remote only needs an adapter here.
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Settings } from '../../src/core/settings.js';
import { createRepository, git, type TestRepository } from './git-repos.js';
import { startGitDaemon, startGitHttpServer, startStalledServer } from './git-servers.js';
import { startHttpServer } from './http-server.js';
import { s3AccessKey, startS3 } from './s3-server.js';
import { zipTree, type TreeSpec } from './zips.js';

export interface RemoteAdapter {
  /** The remote as an operator writes it, credentials included where the kind has them. */
  remote: string;
  /** Makes `tree` the remote's current version. */
  publish(tree: TreeSpec): Promise<void>;
  /** The content last published, at another remote of the same kind; returns that remote. */
  sameContentElsewhere(): Promise<string>;
  /** A remote of this kind that nothing answers (a closed port, a missing path). */
  unreachable: Elsewhere;
  /** A remote that accepts the request and then never answers; undefined where none can be made. */
  neverAnswers?(): Promise<Elsewhere>;
  /** Bytes of content (or packs) the server has sent so far; undefined where it cannot count. */
  transferred?(): number;
  /** The secret in `remote`, which must never appear in a description or an error. */
  secret?: string;
  /** Settings this kind needs (an endpoint, keys). */
  settings: Partial<Settings>;
}

/** Another remote, with the settings that reach it where they differ. */
export interface Elsewhere {
  remote: string;
  settings?: Partial<Settings>;
}

export type AdapterFactory = (t: TestContext, root: string) => Promise<RemoteAdapter>;

async function zipAdapterBase(root: string) {
  let archive = '';
  let version = 0;
  return {
    async build(tree: TreeSpec): Promise<Buffer> {
      archive = join(root, `published-${++version}.zip`);
      await zipTree(tree, archive, root);
      return readFile(archive);
    },
    lastArchive: () => archive,
  };
}

const localZip: AdapterFactory = async (_t, root) => {
  const base = await zipAdapterBase(root);
  const path = join(root, 'remote', 'app.zip');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(root, 'remote'), { recursive: true });
  return {
    remote: path,
    settings: {},
    unreachable: { remote: join(root, 'no-such-directory', 'app.zip') },
    async publish(tree) {
      await base.build(tree);
      await copyFile(base.lastArchive(), `${path}.next`);
      const { rename } = await import('node:fs/promises');
      await rename(`${path}.next`, path);
    },
    async sameContentElsewhere() {
      const other = join(root, 'remote', 'elsewhere.zip');
      await copyFile(base.lastArchive(), other);
      return `file://${other}`;
    },
  };
};

const httpZip: AdapterFactory = async (t, root) => {
  const base = await zipAdapterBase(root);
  const server = await startHttpServer(t);
  const secret = 'http-token-5e1d9c';
  const served = join(root, 'served.zip');
  server.route('/app.zip', { kind: 'basic-auth', user: 'deployer', password: secret, route: { kind: 'file', path: served } });
  const authorised = server.url('/app.zip').replace('http://', `http://deployer:${secret}@`);
  return {
    remote: authorised,
    secret,
    settings: {},
    unreachable: { remote: 'http://127.0.0.1:1/app.zip' },
    async publish(tree) {
      await base.build(tree);
      await copyFile(base.lastArchive(), served);
    },
    async sameContentElsewhere() {
      server.route('/mirror/app.zip', { kind: 'file', path: base.lastArchive() });
      return server.url('/mirror/app.zip');
    },
    async neverAnswers() {
      server.route('/stalled.zip', { kind: 'stalled', path: base.lastArchive() });
      return { remote: server.url('/stalled.zip') };
    },
    transferred: () => server.bodyBytesSent,
  };
};

const s3Zip: AdapterFactory = async (t, root) => {
  const base = await zipAdapterBase(root);
  const s3 = await startS3(t);
  const secret = 'contract-secret-0b7c2e';
  const settings: Partial<Settings> = { s3Endpoint: s3.endpoint, awsRegion: 'us-east-1', awsAccessKey: s3AccessKey, awsSecretKey: secret };
  return {
    remote: `s3://${s3.bucket}/builds/app.zip`,
    secret,
    settings,
    unreachable: { remote: `s3://${s3.bucket}/builds/app.zip`, settings: { s3Endpoint: 'http://127.0.0.1:1' } },
    async publish(tree) {
      await s3.upload('builds/app.zip', await base.build(tree));
    },
    async sameContentElsewhere() {
      await s3.upload('mirror/app.zip', await readFile(base.lastArchive()));
      return `s3://${s3.bucket}/mirror/app.zip`;
    },
    async neverAnswers() {
      const port = await startStalledServer(t);
      return { remote: `s3://${s3.bucket}/builds/app.zip`, settings: { s3Endpoint: `http://127.0.0.1:${port}` } };
    },
    transferred: () => s3.bodyBytes,
  };
};

/** Git remotes deploy the repository's app/ subdirectory: the tree is committed there. */
async function commitUnderApp(repo: TestRepository, tree: TreeSpec): Promise<void> {
  await repo.commit(Object.fromEntries(Object.entries(tree).map(([path, spec]) => [`app/${path}`, spec])) as Parameters<TestRepository['commit']>[0]);
}

/** Git over file:// (a bare repository on disk). */
const gitFile: AdapterFactory = async (_t, root) => {
  const repo = await createRepository(root);
  return {
    remote: `file://${repo.bare}/app#main`,
    settings: {},
    unreachable: { remote: `file://${join(root, 'no-such.git')}#main` },
    publish: (tree) => commitUnderApp(repo, tree),
    async sameContentElsewhere() {
      const other = join(root, 'srv', 'elsewhere.git');
      await git(root, 'clone', '-q', '--bare', repo.bare, other);
      return `file://${other}/app#main`;
    },
  };
};

/** Git over git:// (git daemon on loopback). */
const gitDaemon: AdapterFactory = async (t, root) => {
  const repo = await createRepository(root);
  const daemon = await startGitDaemon(t, join(root, 'srv'));
  return {
    remote: `${daemon.url('app.git')}/app#main`,
    settings: {},
    unreachable: { remote: 'git://127.0.0.1:1/app.git#main' },
    publish: (tree) => commitUnderApp(repo, tree),
    async sameContentElsewhere() {
      await git(root, 'clone', '-q', '--bare', repo.bare, join(root, 'srv', 'elsewhere.git'));
      return `${daemon.url('elsewhere.git')}/app#main`;
    },
    async neverAnswers() {
      const port = await startStalledServer(t);
      return { remote: `git://127.0.0.1:${port}/app.git#main` };
    },
  };
};

/** Git over smart HTTP with a token: the server counts packs, and sees the credentials. */
const gitHttp: AdapterFactory = async (t, root) => {
  const repo = await createRepository(root);
  const secret = 'git-token-77aa31';
  const server = await startGitHttpServer(t, join(root, 'srv'), { auth: { user: 'deployer', password: secret } });
  return {
    remote: server.url('app.git/app#main', `deployer:${secret}`),
    secret,
    settings: {},
    unreachable: { remote: 'http://127.0.0.1:1/app.git#main' },
    publish: (tree) => commitUnderApp(repo, tree),
    async sameContentElsewhere() {
      await git(root, 'clone', '-q', '--bare', repo.bare, join(root, 'srv', 'elsewhere.git'));
      return server.url('elsewhere.git/app#main', `deployer:${secret}`);
    },
    async neverAnswers() {
      const port = await startStalledServer(t);
      return { remote: `http://deployer:${secret}@127.0.0.1:${port}/app.git/app#main` };
    },
    transferred: () => server.packRequests,
  };
};

export const remoteAdapters: Record<string, AdapterFactory> = {
  'local zip': localZip,
  'HTTP zip': httpZip,
  'S3 zip': s3Zip,
  'git over file://': gitFile,
  'git over git daemon': gitDaemon,
  'git over smart HTTP': gitHttp,
};
