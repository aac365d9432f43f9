// A fleet of real daemons on one redis-server deploying an oci:// artifact: at each check only the
// scout asks the registry (each member logs in as a user of its own, so the registry's front can
// tell who asked), and every member ends on the new revision; with cosign, every member checks
// the signature itself, followers included.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { makeSandbox, type Sandbox } from './helpers/cli.js';
import { startAgent, type RunningAgent } from './helpers/daemon.js';
import { startRegistryFront } from './helpers/oci-fronts.js';
import { fluxLayerType, pushArtifact, registryBinary, startRegistry, tarGzOf } from './helpers/oci-registry.js';
import { startRedis } from './helpers/redis-server.js';
import { cosignBundle, pushBundleReferrer } from './helpers/sigstore-fakes.js';
import { temporaryDirectory } from './helpers/temp.js';

const skip = existsSync(registryBinary) ? false : `needs Debian's docker-registry (${registryBinary}); .ci/run installs it`;


test('a fleet of three daemons on an oci:// artifact: at each check only the scout asks the registry, and all end on each new revision', { skip }, async (t) => {
  // Each server logs in as a user of its own, so that the registry's front can tell who asked.
  const logins = [0, 1, 2].map((index) => ({ user: `server-${index}`, password: `registry-pass-${index}` }));
  const registry = await startRegistry(t, { login: { user: 'publisher', password: 'publisher-pass' }, moreLogins: logins });
  const redis = await startRedis(t);
  const root = await temporaryDirectory(t);
  const publish = async (version: string) => pushArtifact(registry, 'apps/site', 'stable', [{ mediaType: fluxLayerType, data: tarGzOf({ 'index.html': `version ${version}\n` }) }]);
  await publish('1');
  const front = await startRegistryFront(t, registry, 'pass');
  const members: Array<{ sandbox: Sandbox; user: string; agent: RunningAgent }> = [];
  for (const [index, login] of logins.entries()) {
    const sandbox = await makeSandbox(join(root, `server-${index}`), `oci-insecure = yes\nfleet-redis = ${redis.url}\nfleet-name = web\nhost-id = server-${index}\nschedule = * * * * * *\noci-credentials = ${join(root, `server-${index}`, 'registry.json')}\n`);
    await writeFile(join(sandbox.root, 'registry.json'), JSON.stringify({ auths: { [front.host]: { username: login.user, password: login.password } } }), { mode: 0o600 });
    const agent = startAgent(t, [...sandbox.args(`oci://${front.host}/apps/site:stable`).filter((argument) => argument !== '-f'), '-v'], { HOME: sandbox.root });
    members.push({ sandbox, user: login.user, agent });
  }
  const waitForVersion = async (version: string) => {
    for (;;) {
      const live = await Promise.all(members.map((member) => member.sandbox.liveFile('index.html').catch(() => '')));
      if (live.every((text) => text === `version ${version}\n`)) return;
      const exited = members.find((member) => member.agent.child.exitCode !== null);
      if (exited) throw new Error(`a member exited:\n${exited.agent.lines.join('\n')}`);
      await sleep(100);
    }
  };
  await waitForVersion('1');
  await publish('2');
  await waitForVersion('2');
  // Idle checks: a member that takes the scout role asks the registry (one HEAD, nothing else);
  // the others learn from Redis that another member is asking, and ask nothing. The role is
  // released at the end of each check, so under load two members can be scouts in one second;
  // what must hold is that only scouts ask, one HEAD each, and that the others stay quiet.
  // Counted up to the members' stop, when every line is read and every request made.
  const heads = () => front.requests.filter((request) => request.startsWith('HEAD ')).length;
  const linesLike = (pattern: RegExp) => members.reduce((total, member) => total + member.agent.lines.filter((line) => pattern.test(line)).length, 0);
  const scouted = () => linesLike(/DEBUG checking oci:\/\//);
  const skipped = () => linesLike(/another member of the fleet is asking the remote/);
  const [headsBefore, scoutedBefore, skippedBefore] = [heads(), scouted(), skipped()];
  while (scouted() - scoutedBefore + skipped() - skippedBefore < 18) await sleep(100);
  for (const member of members) {
    const result = await member.agent.stop();
    assert.doesNotMatch(result.stderr, new RegExp(redis.password));
  }
  const [asked, scouts, quiet] = [heads() - headsBefore, scouted() - scoutedBefore, skipped() - skippedBefore];
  t.diagnostic(`idle checks of the fleet: ${scouts} as the scout (${asked} HEADs), ${quiet} left the registry alone`);
  assert.equal(asked, scouts, 'every request to the registry is one scout check\'s one HEAD');
  assert.ok(quiet > 0, 'members that are not the scout ask nothing');
});

test('a fleet on a cosign-signed oci:// artifact: every member checks the signature itself, so a member whose key does not match never deploys what the others do', { skip }, async (t) => {
  const registry = await startRegistry(t);
  const redis = await startRedis(t);
  const root = await temporaryDirectory(t);
  const [trusted, other] = [generateKeyPairSync('ec', { namedCurve: 'prime256v1' }), generateKeyPairSync('ec', { namedCurve: 'prime256v1' })];
  const digest = await pushArtifact(registry, 'apps/site', 'stable', [{ mediaType: fluxLayerType, data: tarGzOf({ 'index.html': 'version 1\n' }) }]);
  await pushBundleReferrer(registry, 'apps/site', digest, cosignBundle(digest, trusted, undefined));
  const members: Array<{ sandbox: Sandbox; agent: RunningAgent }> = [];
  for (const [index, key] of [trusted, trusted, other].entries()) {
    const directory = join(root, `server-${index}`);
    const sandbox = await makeSandbox(directory, `oci-insecure = yes\nfleet-redis = ${redis.url}\nfleet-name = web\nhost-id = server-${index}\nschedule = * * * * * *\ncosign-public-key = ${join(directory, 'cosign.pub')}\n`);
    await writeFile(join(directory, 'cosign.pub'), key.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    members.push({ sandbox, agent: startAgent(t, [...sandbox.args(`oci://${registry.host}/apps/site:stable`).filter((argument) => argument !== '-f'), '-v'], { HOME: sandbox.root }) });
  }
  const [first, second, odd] = members as [typeof members[0], typeof members[0], typeof members[0]];
  for (;;) {
    const live = await Promise.all([first, second].map((member) => member.sandbox.liveFile('index.html').catch(() => '')));
    // As a follower: told by the fleet to deploy the revision, it checks the signature and refuses.
    const admitted = odd.agent.lines.findIndex((line) => /the fleet lets this server deploy/.test(line));
    const refusedByOdd = admitted >= 0 && odd.agent.lines.slice(admitted).some((line) => /refused .*a signature is by none of the keys of cosign-public-key/.test(line));
    if (live.every((text) => text === 'version 1\n') && refusedByOdd) break;
    const exited = members.find((member) => member.agent.child.exitCode !== null);
    if (exited) throw new Error(`a member exited:\n${exited.agent.lines.join('\n')}`);
    await sleep(100);
  }
  assert.equal(existsSync(odd.sandbox.live), false, 'the member with another key deployed nothing');
  for (const member of members) await member.agent.stop();
});
