// What an operator meets first: installing the package, --help, and watching a deploy.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cliPath, makeSandbox, runCli } from './helpers/cli.js';
import { startHttpServer } from './helpers/http-server.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

const run = promisify(execFile);
const repository = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

test('every command has --help with examples', async () => {
  for (const command of [[], ['status'], ['releases'], ['rollback'], ['retry'], ['check-config'], ['verify']]) {
    const result = await runCli([...command, '--help']);
    assert.equal(result.code, 0, `${command.join(' ')}: ${result.stderr}`);
    assert.match(result.stdout, /Examples:/, `${command.join(' ') || 'repo-deploy'} --help shows examples`);
  }
});

test('-f on a terminal shows download and extraction progress; not on a pipe', async (t) => {
  const root = await temporaryDirectory(t);
  const server = await startHttpServer(t);
  const archive = join(root, 'app.zip');
  await run('sh', ['-c', `mkdir -p ${root}/src && head -c 8M /dev/urandom > ${root}/src/blob.bin && cd ${root}/src && zip -q0r ${archive} .`]);
  server.route('/app.zip', { kind: 'file', path: archive });
  const terminal = await makeSandbox(join(root, 'terminal'));
  const command = [process.execPath, cliPath, ...terminal.args(server.url('/app.zip'))].map(shellQuote).join(' ');
  // `script` runs the command on a pseudo-terminal, as an operator's shell would.
  const { stdout } = await run('script', ['-qec', command, '/dev/null'], { env: { PATH: process.env.PATH, HOME: root, TERM: 'xterm' } });
  assert.match(stdout, /Downloading +\[.*\] 100% \| 8\.0\/8\.0 MB \| [\d.]+ MB\/s/);
  assert.match(stdout, /Extracting +\[.*\] 100%/);

  const piped = await makeSandbox(join(root, 'piped'));
  const quiet = await runCli(piped.args(server.url('/app.zip')));
  assert.equal(quiet.code, 0);
  assert.doesNotMatch(quiet.stderr + quiet.stdout, /Downloading|Extracting|MB\/s/);
});

test('Ctrl-C during a download on a terminal: the stop is said on a line of its own, below the bar, as INFO; the check counts as stopped, not failed', async (t) => {
  const root = await temporaryDirectory(t);
  const server = await startHttpServer(t);
  const started = join(root, 'download-started');
  server.route('/app.zip', {
    kind: 'custom',
    respond: (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(8 * 1024 * 1024) });
      response.write(Buffer.alloc(256 * 1024, 'PK\x03\x04'), () => void writeFile(started, '')); // and then nothing
    },
  });
  const sandbox = await makeSandbox(join(root, 'terminal'));
  const agent = [process.execPath, cliPath, ...sandbox.args(server.url('/app.zip'))].map(shellQuote).join(' ');
  // On the pseudo-terminal `script` makes: start the run, wait until bytes flowed, press Ctrl-C (SIGINT).
  const session = `${agent} & pid=$!; while [ ! -e ${shellQuote(started)} ]; do sleep 0.05; done; sleep 0.3; kill -INT $pid; wait $pid; echo "exit status $?"`;
  const { stdout } = await run('script', ['-qec', session, '/dev/null'], { env: { PATH: process.env.PATH, HOME: root, TERM: 'xterm' } });
  assert.match(stdout, /exit status 0/);
  assert.match(stdout, /Downloading +\[/);
  const lines = stdout.split(/\r?\n/);
  const stopLine = lines.find((line) => line.includes('SIGINT received')) ?? '';
  assert.match(stopLine.replace(/^(\r|\x1b\[[0-9;?]*[A-Za-z])*/, ''), /^\S+Z INFO  SIGINT received: stopping the check safely$/, JSON.stringify(stopLine));
  assert.doesNotMatch(stdout, / ERROR /);
  const status = JSON.parse((await runCli(['status', '--json', ...sandbox.args(server.url('/app.zip')).filter((argument) => argument !== '-f')])).stdout);
  assert.equal(status.lastCheck.result, 'stopped');
  assert.equal(status.consecutiveFailedChecks, 0);
});

test('npm pack gives a tarball that installs globally and runs --help without dev dependencies', async (t) => {
  const root = await temporaryDirectory(t);
  // dist/ is already built (npm test builds first); --ignore-scripts keeps pack from rebuilding it under running tests.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', root, '--silent'], { cwd: repository, maxBuffer: 16 << 20 });
  const tarball = join(root, stdout.trim().split('\n').pop() as string);
  const prefix = join(root, 'prefix');
  await run('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', '--silent', tarball], { maxBuffer: 16 << 20, timeout: 300_000 });
  const installed = join(prefix, 'lib', 'node_modules', 'repo-deploy');
  const help = await run(join(prefix, 'bin', 'repo-deploy'), ['--help'], { env: { PATH: process.env.PATH } });
  assert.match(help.stdout, /Polls one remote, stages each new version as a release/);
  const dependencies = await readdir(join(installed, 'node_modules'));
  for (const devOnly of ['typescript', 'tsx', 's3rver', 'yazl']) assert.ok(!dependencies.includes(devOnly), `${devOnly} is not installed`);
  await access(join(installed, 'etc', 'repo-deploy.cfg'));
  await access(join(installed, 'etc', 'repo-deploy.logrotate'));
  await access(join(installed, 'LICENSE'));
  assert.ok(!dependencies.includes('unzipper'), 'unzipper (measured losing entries) is not a dependency of the agent');
  await access(join(installed, 'hooks.d-examples', 'available', 'wait-for-health'));
});
