// The gateway's command line: --version, --check-config (every error named by its field path),
// and the shipped configs validate.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { cleanup, REPO_ROOT, runGateway, startGateway, tempDir } from './lib/harness.mjs';

after(cleanup);

test('--version prints a version and exits 0', () => {
  const r = runGateway(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\d+\.\d+\.\d+/);
});

for (const flag of ['--help', '-h']) {
  test(`${flag} prints the usage on stdout and exits 0`, () => {
    const r = runGateway([flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^usage: token-rate-limiter --config FILE/);
    assert.match(r.stdout, /--check-config FILE/);
  });
}

test('an unknown argument prints the usage on stderr and exits 2', () => {
  const r = runGateway(['--colour']);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^usage: token-rate-limiter --config FILE/);
});

test('--check-config exits 0 for a good config', () => {
  const dir = tempDir();
  const file = path.join(dir, 'good.yaml');
  writeFileSync(file, `
listen: 127.0.0.1:0
models:
  - name: m
    aliases: [mm]
    backends: [http://127.0.0.1:9]
    timeout: 2s
api_keys:
  - name: team-a
    key: \${BB_TEAM_A_KEY:-sk-default}
    limits:
      - {tokens: 1000, per: 1m}
      - {requests: 10, per: 1m}
      - {concurrent: 2}
`);
  const r = runGateway(['--check-config', file]);
  assert.equal(r.code, 0, r.stderr);
});

test('--check-config exits 1 naming every bad field by its path', () => {
  const dir = tempDir();
  const file = path.join(dir, 'bad.yaml');
  writeFileSync(file, `
listen: 127.0.0.1:0
models:
  - name: m
    backends: [http://127.0.0.1:9]
  - name: n
    backends: [not-a-url]
    colour: blue
api_keys:
  - name: team-a
    key: sk-a
    limits:
      - {tokens: 1000, per: fortnight}
`);
  const r = runGateway(['--check-config', file]);
  assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stderr, /models\[1\]\.backends\[0\]/);
  assert.match(r.stderr, /models\[1\]\.colour/);
  assert.match(r.stderr, /api_keys\[0\]\.limits\[0\]\.per/);
  assert.doesNotMatch(r.stderr, /sk-a/, 'secrets are never echoed');
});

test('--check-config exits 1 when admin.listen takes the port of listen', () => {
  const dir = tempDir();
  for (const [data, admin] of [['127.0.0.1:18080', '127.0.0.1:18080'],
                               ['0.0.0.0:18080', '127.0.0.1:18080']]) {
    const file = path.join(dir, 'same-port.yaml');
    writeFileSync(file, `
listen: ${data}
admin: {listen: ${admin}, token: a-long-enough-admin-token}
models:
  - name: m
    backends: [http://127.0.0.1:9]
`);
    const r = runGateway(['--check-config', file]);
    assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.equal(r.stderr, `admin.listen: ${admin} takes the port of listen (${data}): ` +
                           'the admin API needs a port of its own\n');
  }
});

test('--check-config prints warnings on stderr and still exits 0', () => {
  const dir = tempDir();
  const file = path.join(dir, 'warned.yaml');
  writeFileSync(file, `
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0, token: change-me}
models:
  - name: m
    max_output_tokens: 2048
    backends: [http://127.0.0.1:9/v1]
api_keys:
  - name: team-a
    key: sk-short
    limits: [{tokens: 1000, per: 1m}]
`);
  const r = runGateway(['--check-config', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${file}: OK\n`);
  assert.equal(r.stderr, [
    'warning: admin.token: an example value: set a secret of your own',
    'warning: api_keys[0].key: 8 characters; use 20 or more (e.g. openssl rand -hex 24)',
    'warning: models[0].backends[0]: ends in /v1, which the gateway adds itself (requests would ' +
        'go to .../v1/v1/chat/completions, health checks to .../v1/health): leave it out',
    'warning: models[0].max_output_tokens: 2048 is more than the 1000 tokens of ' +
        'api_keys[0].limits[0]: a request to m without max_tokens would be refused (400); lower ' +
        'it or raise the limit',
    '',
  ].join('\n'));
  assert.doesNotMatch(r.stderr, /sk-short/, 'secrets are never echoed');
});

test('the warnings of --check-config are logged at start', async () => {
  const gw = await startGateway({ models: [{ name: 'm', backends: ['http://127.0.0.1:9/v1'] }] });
  await gw.proc.waitForLine(new RegExp(
      '^\\[[^\\]]+\\] \\[warning\\] config: models\\[0\\]\\.backends\\[0\\]: ends in /v1, '));
});

test('--check-config exits 1 for a missing file', () => {
  const r = runGateway(['--check-config', path.join(tempDir(), 'nope.yaml')]);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.length > 0);
});

for (const name of ['demo.yaml', 'example.yaml']) {
  test(`configs/${name} is valid`, () => {
    const r = runGateway(['--check-config', path.join(REPO_ROOT, 'configs', name)], {
      env: { MOCK_URL: 'http://127.0.0.1:8000', ADMIN_TOKEN: 'x' },
    });
    assert.equal(r.code, 0, r.stderr);
  });
}
