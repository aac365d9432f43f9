// Notifications from the deploy history, to real HTTP receivers on loopback: a JSON receiver
// that checks the HMAC signature, Slack- and ntfy-shaped targets, one that answers 500 then 200,
// one that always fails, one that hangs, one that is down while the agent is killed with -9.
// Delivery goes through the on-disk outbox: at least once, later runs deliver what waited, a
// deploy is never held up or failed, and the outbox is bounded.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { appendFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { makeSandbox, runCli } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { createRepository } from './helpers/git-repos.js';
import { startHttpServer } from './helpers/http-server.js';
import { startRedis } from './helpers/redis-server.js';
import { zipTree } from './helpers/zips.js';
import { clockAhead } from './helpers/fleet-rig.js';
import { listenOnLoopback } from './helpers/listen.js';
import { temporaryDirectory } from './helpers/temp.js';
import { setup } from './helpers/zip-agent.js';
import { drainOutbox } from '../src/notify/deliver.js';
import { enqueue, messageNames, mostMessages } from '../src/notify/outbox.js';
import { parseTargets } from '../src/notify/targets.js';

type Mode = 'ok' | 'fail' | 'fail-once' | 'hang';

interface Receiver {
  url: string;
  mode: Mode;
  received: Array<{ path: string; headers: IncomingMessage['headers']; body: string }>;
  server: Server;
}

async function startReceiver(t: TestContext, mode: Mode): Promise<Receiver> {
  const receiver: Receiver = { url: '', mode, received: [], server: undefined as unknown as Server };
  let failed = false;
  receiver.server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      receiver.received.push({ path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (receiver.mode === 'hang') return; // never answers
      if (receiver.mode === 'fail' || (receiver.mode === 'fail-once' && !failed)) {
        failed = true;
        response.writeHead(500).end('down for maintenance');
        return;
      }
      response.writeHead(200).end('ok');
    });
  });
  const port = await listenOnLoopback(t, receiver.server);
  t.after(() => receiver.server.closeAllConnections());
  receiver.url = `http://127.0.0.1:${port}`;
  return receiver;
}

const secret = 'notify-secret-0123456789';
const outboxOf = (cache: string) => join(cache, 'outbox');

test('a deploy and a revert are sent: to a JSON receiver signed with notify-secret, to Slack and to ntfy in their shapes; a pause (not chosen by default) is not', async (t) => {
  const [json, slack, ntfy] = [await startReceiver(t, 'ok'), await startReceiver(t, 'ok'), await startReceiver(t, 'ok')];
  const agent = await setup(t, `notify = ${json.url}/hooks/deploy, slack+${slack.url}/services/T000/B000/XXXX, ntfy+${ntfy.url}/deploys-topic\nnotify-secret = ${secret}\n`);
  await agent.publish('1');
  const first = await agent.once();
  assert.equal(first.code, 0, first.stderr);
  assert.equal(json.received.length, 1);
  const delivered = json.received[0]!;
  assert.equal(delivered.headers['x-hub-signature-256'], `sha256=${createHmac('sha256', secret).update(delivered.body).digest('hex')}`);
  assert.equal(delivered.headers['x-repo-deploy-event'], 'update-committed');
  const payload = JSON.parse(delivered.body) as { event: string; summary: string; delivery: string; entry: { revisionTo: string; files: { added: number }; by: string } };
  assert.equal(payload.event, 'update-committed');
  assert.equal(payload.entry.files.added, 1);
  assert.match(payload.entry.by, /^operator /);
  assert.match(payload.summary, /: deployed [0-9a-f]{12} \(files \+1 ~0 -0; [\d.]+ s; by operator /);
  assert.equal(delivered.headers['x-repo-deploy-delivery'], payload.delivery);
  assert.deepEqual(JSON.parse(slack.received[0]!.body), { text: payload.summary });
  assert.equal(slack.received[0]!.path, '/services/T000/B000/XXXX');
  assert.equal(ntfy.received[0]!.body, payload.summary);
  assert.equal(ntfy.received[0]!.headers.title, 'repo-deploy: update-committed');
  // The target's path is a secret (Slack's is one): never in a log line.
  assert.doesNotMatch(first.stdout + first.stderr, /B000\/XXXX|deploys-topic|notify-secret-0123/);

  await runCli(['pause', '-c', agent.sandbox.config, '--cache', agent.sandbox.cache, '-l', agent.sandbox.live]);
  await runCli(['resume', '-c', agent.sandbox.config, '--cache', agent.sandbox.cache, '-l', agent.sandbox.live]);
  assert.equal(json.received.length, 1, 'pause and resume are not among the default events');

  await agent.publish('2');
  await writePostExit(agent.root, 1);
  const reverted = await agent.once();
  assert.equal(reverted.code, 5, reverted.stderr);
  const events = json.received.map((request) => (JSON.parse(request.body) as { event: string }).event);
  assert.deepEqual(events, ['update-committed', 'update-reverted']);
  assert.match(JSON.parse(slack.received[1]!.body).text, /^:x: .*: reverted /);
  assert.equal(ntfy.received[1]!.headers.priority, '4');
  assert.deepEqual(await messageNames(outboxOf(agent.sandbox.cache)), [], 'nothing left in the outbox');
});

test('a receiver that answers 500, then 200: the deploy exits 0, the message waits in the outbox with backoff, and a later run delivers it once, with the same delivery id', async (t) => {
  const receiver = await startReceiver(t, 'fail-once');
  const agent = await setup(t, `notify = ${receiver.url}/hook\n`);
  await agent.publish('1');
  const first = await agent.once();
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /notification of update-committed \(entry \d+\) to json http:\/\/127\.0\.0\.1:\d+ not delivered: it answered 500; try 2 in 30 s/);
  assert.equal((await messageNames(outboxOf(agent.sandbox.cache))).length, 1);
  // The outbox is the agent's own: the user nobody can neither list nor add to it.
  assert.equal((await stat(outboxOf(agent.sandbox.cache))).mode & 0o777, 0o700);
  assert.notEqual(spawnSync('runuser', ['-u', 'nobody', '--', 'ls', outboxOf(agent.sandbox.cache)]).status, 0);
  assert.notEqual(spawnSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', `echo '{}' > ${outboxOf(agent.sandbox.cache)}/000000000000000-000000000001-0000000000000000.json`]).status, 0);
  // Not due yet: an idle run right after leaves it.
  assert.equal((await agent.once()).code, 0);
  assert.equal(receiver.received.length, 1);
  // Due a minute later (the run's clock moved ahead with libfaketime).
  const later = await agent.once([], clockAhead('+2m'));
  assert.equal(later.code, 0, later.stderr);
  assert.equal(receiver.received.length, 2);
  const ids = receiver.received.map((request) => request.headers['x-repo-deploy-delivery']);
  assert.equal(ids[0], ids[1], 'the retry is the same delivery');
  assert.deepEqual(await messageNames(outboxOf(agent.sandbox.cache)), []);
});

test('a receiver that hangs and one that always fails never hold up or fail a deploy; the good target gets its message; a hanging one costs one notify-timeout per run', async (t) => {
  const [hanging, failing, good] = [await startReceiver(t, 'hang'), await startReceiver(t, 'fail'), await startReceiver(t, 'ok')];
  const agent = await setup(t, `notify = ${hanging.url}/a, ${failing.url}/b, ${good.url}/c\nnotify-timeout = 2\nnotify-on = commits, pause\n`);
  await agent.publish('1');
  const result = await agent.once();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await agent.sandbox.liveFile('index.html'), 'version 1\n');
  assert.equal(good.received.length, 1);
  assert.equal(hanging.received.length, 1);
  assert.equal(failing.received.length, 1);
  assert.match(result.stderr, /to json http:\/\/127\.0\.0\.1:\d+ not delivered: .*(timeout|Timeout|aborted)/);
  assert.match(result.stderr, /2 notifications wait in the outbox/);
  // Two more events queue behind the hanging target; one run tries it once, not once per message.
  const common = ['-c', agent.sandbox.config, '--cache', agent.sandbox.cache, '-l', agent.sandbox.live];
  assert.equal((await runCli(['pause', ...common], clockAhead('+5m'))).code, 0);
  assert.equal(hanging.received.length, 2, 'one try of the hanging target per run');
  assert.equal(good.received.length, 2);
});

test('a notification queued while its receiver is down survives kill -9 of the daemon, and the next run delivers it', async (t) => {
  const receiver = await startReceiver(t, 'ok');
  const port = new URL(receiver.url).port;
  await new Promise((resolveClose) => receiver.server.close(resolveClose)); // down
  const agent = await setup(t, `notify = http://127.0.0.1:${port}/hook\nschedule = * * * * * *\n`);
  await agent.publish('1');
  const daemon = agent.agent();
  await daemon.waitFor(/notification of update-committed .* not delivered/, 60_000);
  daemon.child.kill('SIGKILL');
  await daemon.done;
  assert.equal((await messageNames(outboxOf(agent.sandbox.cache))).length, 1);
  receiver.server.listen(Number(port), '127.0.0.1');
  await new Promise((resolveListen) => receiver.server.once('listening', resolveListen));
  const later = await agent.once([], clockAhead('+2m'));
  assert.equal(later.code, 0, later.stderr);
  assert.equal(receiver.received.length, 1);
  assert.equal((JSON.parse(receiver.received[0]!.body) as { event: string }).event, 'update-committed');
});

test('the outbox is bounded: past its size the oldest messages are dropped, and the next message delivered says how many', async (t) => {
  const receiver = await startReceiver(t, 'ok');
  const directory = join(await temporaryDirectory(t), 'outbox');
  const targets = parseTargets([`${receiver.url}/hook`]);
  const now = new Date('2026-12-04T03:00:00Z');
  for (let seq = 1; seq <= mostMessages + 5; seq++) await enqueue(directory, targets, { seq, event: 'update-committed', time: now.toISOString() }, `entry ${seq}`, undefined, now);
  const names = await messageNames(directory);
  assert.equal(names.length, mostMessages);
  assert.match(names[0]!, /-000000000006-/, 'the five oldest went');
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as unknown as Parameters<typeof drainOutbox>[0]['log'];
  const result = await drainOutbox({ directory, targets, secret: undefined, log, now: () => now, timeoutMs: 5000, deadline: Date.now() + 60_000 });
  assert.equal(result.delivered, mostMessages);
  assert.match((JSON.parse(receiver.received[0]!.body) as { summary: string }).summary, /^entry 6 \(5 older notifications were dropped: the outbox was full\)$/);
  assert.doesNotMatch((JSON.parse(receiver.received[1]!.body) as { summary: string }).summary, /dropped/);
  assert.deepEqual((await readdir(directory)).filter((name) => name.endsWith('.json')), []);
});

test('absurd notify settings are usage errors (exit 2) before anything runs: not a URL, plain http to a public host, an unknown event, a timeout of a day or of nothing', async (t) => {
  const agent = await setup(t);
  for (const [config, expected] of [
    ['notify = not a url\n', /notify: target 1 is not a URL/],
    ['notify = http://example.com/hook\n', /notify: target 1 \(json http:\/\/example\.com\) is not https:\/\//],
    ['notify = https://example.com/hook\nnotify-on = commits, deploys\n', /notify-on: "deploys" is neither an event nor a group of them/],
    // A day's timeout would hold every run of -f that long at its end for a silent receiver.
    ['notify = https://example.com/hook\nnotify-timeout = 86400\n', /notify-timeout.*at most 300 seconds/],
    ['notify = https://example.com/hook\nnotify-timeout = 0\n', /notify-timeout.*at least 1/],
  ] as const) {
    await writeFile(agent.sandbox.config, config);
    const result = await runCli(agent.sandbox.args(agent.remote));
    assert.equal(result.code, 2, `${config}: ${result.stderr}`);
    assert.match(result.stderr, expected);
  }
});

const writePostExit = (root: string, code: number) => writeFile(join(root, 'post-exit'), String(code));

test('a fleet of three daemons: the rollout\'s progress (a revision deployed) is notified once for the fleet, not once per server', async (t) => {
  const receiver = await startReceiver(t, 'ok');
  const redis = await startRedis(t);
  const root = await temporaryDirectory(t);
  const server = await startHttpServer(t);
  const archive = join(root, 'app.zip');
  server.route('/app.zip', { kind: 'file', path: archive });
  await zipTree({ 'index.html': 'version 1\n' }, archive, root);
  const members = [];
  for (let index = 0; index < 3; index++) {
    const sandbox = await makeSandbox(join(root, `server-${index}`), `fleet-redis = ${redis.url}\nfleet-name = web\nhost-id = server-${index}\nschedule = * * * * * *\nnotify = ${receiver.url}/hook\nnotify-on = commits\n`);
    members.push({ sandbox, agent: startAgent(t, sandbox.args(server.url('/app.zip')).filter((argument) => argument !== '-f'), { HOME: sandbox.root }) });
  }
  // Deployed everywhere: the state is saved after the check has told (and queued) its outcome.
  for (const member of members) {
    while (!(await readFile(join(member.sandbox.cache, 'state.json'), 'utf8').then((text) => Boolean((JSON.parse(text) as { current?: unknown }).current), () => false))) await sleep(50);
  }
  for (const member of members) await member.agent.stop();
  // Sent, or still queued: either way, once for the fleet.
  let told = receiver.received.filter((request) => (JSON.parse(request.body) as { event: string }).event === 'update-committed').length;
  for (const member of members) told += (await messageNames(outboxOf(member.sandbox.cache))).length;
  assert.equal(told, 1, receiver.received.map((request) => request.body).join('\n'));
  for (const member of members) {
    const history = (await readFile(join(member.sandbox.cache, 'history', 'history.jsonl'), 'utf8')).split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { event: string }).event);
    assert.ok(history.includes('update-committed'), 'every member records its own deploy');
  }
});

test('a commit subject holding terminal escapes, a bidirectional override and a Slack mention: kept whole in the history, printed escaped by history and plan, sent escaped to Slack', async (t) => {
  const slack = await startReceiver(t, 'ok');
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root);
  await appendFile(sandbox.config, `notify = slack+${slack.url}/services/T000/B000/XXXX\n`);
  const repo = await createRepository(root);
  const hostile = 'fix \x1b[2J\x1b[1;1Hall clear <!channel> <https://evil.example|docs> \u202eexe.txt & more';
  await repo.commit({ 'site/index.html': 'v1\n' }, hostile);
  const remote = `file://${repo.bare}/site#main`;
  const run = await runCli(sandbox.args(remote));
  assert.equal(run.code, 0, run.stderr);
  assert.doesNotMatch(run.stdout + run.stderr, /[\x1b\u202e]/, 'no raw escape reaches the log');
  const common = ['-c', sandbox.config, '--cache', sandbox.cache, '-l', sandbox.live];

  const told = (await runCli(['history', '--json', ...common])).stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { event: string; commit?: { subject: string; author: string } });
  assert.deepEqual(told.map((entry) => entry.event), ['update-started', 'update-committed']);
  assert.deepEqual(told[1]!.commit, { subject: hostile, author: 'Test' }, 'the history keeps the words as they were pushed');
  const shown = await runCli(['history', ...common]);
  assert.doesNotMatch(shown.stdout, /[\x1b\u202e]/);
  assert.ok(shown.stdout.includes('"fix \\u001b[2J\\u001b[1;1Hall clear <!channel> <https://evil.example|docs> \\u202eexe.txt & more" (Test)'), shown.stdout);

  const text = (JSON.parse(slack.received[0]!.body) as { text: string }).text;
  assert.doesNotMatch(text, /[<>\x1b\u202e]/, 'no mention, link or escape reaches Slack');
  assert.ok(text.includes('&lt;!channel&gt; &lt;https://evil.example|docs&gt; \\u202eexe.txt &amp; more" by Test'), text);

  await repo.commit({ 'site/index.html': 'v2\n' }, `second \x1b]0;owned\x07 title`);
  const plan = await runCli(['plan', ...common, '-r', remote, '--pre-hooks', sandbox.preHooks, '--post-hooks', sandbox.postHooks]);
  assert.equal(plan.code, 0, plan.stderr);
  assert.doesNotMatch(plan.stdout, /[\x1b\x07]/);
  assert.match(plan.stdout, /second \\u001b\]0;owned\\u0007 title \(Test\)/);
});

test('a receiver that answers 200 and then streams without end: the agent reads at most 16 KiB of it, hangs up, exits 0 and counts the message delivered', async (t) => {
  let written = 0;
  let hangUp: () => void = () => {};
  const hungUp = new Promise<void>((resolveClose) => (hangUp = resolveClose));
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 << 10, 'x');
      // Written as fast as the agent reads, for ever: only the agent hanging up ends it.
      const pump = () => {
        do written += chunk.length;
        while (response.write(chunk));
      };
      response.on('drain', pump);
      response.on('close', () => hangUp());
      pump();
    });
  });
  const port = await listenOnLoopback(t, server);
  t.after(() => server.closeAllConnections());
  // The longest timeout allowed: without the cap on what is read, the run would last 300 s.
  const agent = await setup(t, `notify = http://127.0.0.1:${port}/endless\nnotify-timeout = 300\n`);
  await agent.publish('1');
  const run = await agent.once();
  assert.equal(run.code, 0, run.stderr);
  await hungUp;
  assert.ok(written < 64 << 20, `the server wrote ${written} bytes before the agent hung up (what the sockets' buffers hold, not more)`);
  assert.deepEqual(await messageNames(outboxOf(agent.sandbox.cache)), [], 'delivered: the receiver answered 200');
});
