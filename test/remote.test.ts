// The remote is parsed once, where the settings are read: every accepted form becomes the typed
// remote of its kind, with a display form that never carries a credential.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redact } from '../src/base/redact.js';
import { parseRemote } from '../src/core/remote.js';

test('each accepted remote form parses into its kind, with a credential-free display and its parts', () => {
  const http = parseRemote('https://deployer:pa55-word-http@downloads.example/builds/app.zip#ignored');
  assert.equal(http.kind, 'http-zip');
  assert.ok(http.kind === 'http-zip');
  assert.equal(http.url, 'https://downloads.example/builds/app.zip');
  assert.deepEqual(http.credentials, { user: 'deployer', password: 'pa55-word-http' });
  assert.equal(http.display, 'https://deployer:***@downloads.example/builds/app.zip#ignored');

  const s3 = parseRemote('s3://releases/builds/my%20app.zip');
  assert.ok(s3.kind === 's3-zip');
  assert.deepEqual([s3.bucket, s3.key], ['releases', 'builds/my app.zip']);

  const local = parseRemote('./builds/app.zip', '/srv');
  assert.ok(local.kind === 'local-zip');
  assert.equal(local.path, '/srv/builds/app.zip');
  const localUrl = parseRemote('file:///srv/builds/app.zip');
  assert.ok(localUrl.kind === 'local-zip');
  assert.equal(localUrl.path, '/srv/builds/app.zip');

  const git = parseRemote('https://ci:git-token-0042@git.example/org/app.git/web#main');
  assert.ok(git.kind === 'git');
  assert.deepEqual([git.repository, git.subdirectory, git.ref], ['https://git.example/org/app.git', 'web', 'main']);
  assert.doesNotMatch(git.display, /git-token-0042/);
  assert.equal(parseRemote('git@host:org/app.git').kind, 'git');
  assert.equal(parseRemote('/srv/git/app.git#main').kind, 'git');
});

test('a password found in a remote is masked wherever it appears later, even outside a URL', () => {
  parseRemote('https://deployer:later-leak-7731@downloads.example/app.zip');
  assert.equal(redact('the server said: bad password later-leak-7731'), 'the server said: bad password ***');
});

test('a remote of no accepted form, or a malformed one of a known kind, is a usage error naming it without its secret', () => {
  assert.throws(() => parseRemote('ftp://user:ftp-secret-99@host/app'), (error: Error) => /fits none of the accepted forms/.test(error.message) && !error.message.includes('ftp-secret-99'));
  assert.throws(() => parseRemote('s3://bucket-only'), /is not of the form s3:\/\/bucket\/path\/app\.zip/);
  assert.throws(() => parseRemote('/srv/app.git/../etc'), /has "\.\." in its subdirectory/);
});
