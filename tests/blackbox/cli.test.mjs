// The gateway's command line: --version, --check-config (every error named by its field path),
// and the shipped configs validate.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { cleanup, REPO_ROOT, runGateway, tempDir } from './lib/harness.mjs';

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
