// Reloads that say what they do: POST /admin/v1/reload?dry_run=true checks the config file and
// answers what a reload would change, applying nothing; a real reload answers the same list;
// `--check-config NEW --diff RUNNING` prints it before the file is even deployed.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';

import {
  chatBody, cleanup, errorOf, runGateway, startGateway, startMock, tempDir, toYaml,
} from './lib/harness.mjs';

const KEY_A = 'sk-reload-team-a';
const KEY_B = 'sk-reload-team-b';

after(cleanup);

describe('reload dry run and the changes a reload lists', () => {
  let mock;
  let gw;
  const running = () => ({
    models: [{ name: 'm', backends: [mock.url] }, { name: 'old', backends: [mock.url] }],
    tenants: [{ name: 'acme', limits: [{ tokens: 5000, per: '1m' }] }],
    api_keys: [{ name: 'team-a', key: KEY_A, tenant: 'acme' }],
    default_limits: [{ tokens: 1000, per: '1m' }],
  });
  const next = () => ({
    models: [{ name: 'm', aliases: ['m-alias'], backends: [mock.url] },
             { name: 'new', backends: [mock.url] }],
    tenants: [{ name: 'acme', limits: [{ tokens: 6000, per: '1m' }] }],
    api_keys: [{ name: 'team-a', key: KEY_A, tenant: 'acme', limits: [{ requests: 50, per: '1h' }] },
               { name: 'team-b', key: KEY_B }],
    default_limits: [{ tokens: 1000, per: '1m' }],
    server: { idle_timeout: '5s' },
  });
  const changes = {
    models: { added: ['new'], removed: ['old'],
              changed: [{ name: 'm', fields: ['aliases'] }] },
    api_keys: { added: ['team-b'], removed: [],
                changed: [{ name: 'team-a', fields: ['limits'] }] },
    tenants: { added: [], removed: [], changed: [{ name: 'acme', fields: ['limits'] }] },
    default_limits: false,
    settings: [],
  };
  // ConfigWarnings of next(): a reload applies the file and says what it probably gets wrong.
  const warnings = [
    'admin.token: shorter than 20 characters: easy to guess',
    ...[0, 1].map((i) => `api_keys[${i}].key: 16 characters; use 20 or more ` +
                         '(e.g. openssl rand -hex 24)'),
    ...[[0, 'm'], [1, 'new']].map(([i, name]) =>
      `models[${i}].max_output_tokens: 1024 is more than the 1000 tokens of default_limits[0]: ` +
      `a request to ${name} without max_tokens would be refused (400); lower it or raise the limit`),
  ];
  const ask = (model, key = KEY_A) =>
    gw.post('chat/completions', chatBody(model, 'ping', { max_tokens: 2 }), { key });

  before(async () => {
    mock = await startMock({ name: 'mock-reload', models: ['m', 'm-alias', 'old', 'new'] });
  });
  beforeEach(async () => {
    gw = await startGateway(running());
  });
  afterEach(async () => {
    await gw.stop();
  });

  test('a dry run answers what would change and applies nothing', async () => {
    gw.writeConfig(next());
    const dry = await gw.adminFetch('/admin/v1/reload?dry_run=true', { method: 'POST' });
    assert.equal(dry.status, 200, dry.text);
    assert.deepEqual(dry.json, { status: 'dry_run', changes, warnings,
                                 restart_required: ['server.idle_timeout'] });
    // Nothing was applied, nor counted as a reload.
    assert.equal((await ask('m-alias')).status, 404);
    assert.equal((await ask('old')).status, 200);
    assert.equal((await ask('m', KEY_B)).status, 401);
    assert.equal(await gw.metric('trl_config_reloads_total'), 0);
    assert.equal(await gw.metric('trl_config_last_reload_successful'), 1);
    await gw.proc.waitForLine(/reload dry run: the config file is valid; nothing was applied/);
    assert.ok(!gw.proc.stdout.some((line) => /config reloaded from/.test(line)));

    // The real reload answers the same changes and applies them.
    const real = await gw.reload();
    assert.equal(real.status, 200, real.text);
    assert.deepEqual(real.json, { status: 'reloaded', changes, warnings,
                                  restart_required: ['server.idle_timeout'] });
    await gw.proc.waitForLine(/config: api_keys\[1\]\.key: 16 characters/);
    assert.equal((await ask('m-alias')).status, 200);
    assert.equal((await ask('old')).status, 404);
    assert.equal((await ask('m', KEY_B)).status, 200);
    assert.equal(await gw.metric('trl_config_reloads_total', { outcome: 'ok' }), 1);

    // Against the config now in force, nothing changes; the restart still waits.
    const again = await gw.adminFetch('/admin/v1/reload?dry_run=true', { method: 'POST' });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json.changes.models, { added: [], removed: [], changed: [] });
    assert.deepEqual(again.json.restart_required, ['server.idle_timeout']);
  });

  test('dry_run=false reloads; another value is 400 naming dry_run', async () => {
    gw.writeConfig(next());
    const bad = await gw.adminFetch('/admin/v1/reload?dry_run=yes', { method: 'POST' });
    assert.equal(bad.status, 400, bad.text);
    const e = errorOf(bad.json, { type: 'invalid_request_error', code: 'invalid_request',
                                  param: 'dry_run' });
    assert.equal(e.message, "dry_run must be 'true' or 'false'.");
    assert.equal((await ask('m-alias')).status, 404);
    const real = await gw.adminFetch('/admin/v1/reload?dry_run=false', { method: 'POST' });
    assert.equal(real.status, 200, real.text);
    assert.equal(real.json.status, 'reloaded');
    assert.equal((await ask('m-alias')).status, 200);
  });
});

describe('--check-config NEW --diff RUNNING', () => {
  const dir = tempDir();
  const write = (name, config) => {
    const file = path.join(dir, name);
    writeFileSync(file, typeof config === 'string' ? config : toYaml(config));
    return file;
  };
  const model = (name, extra = {}) => ({ name, backends: ['http://127.0.0.1:9'], ...extra });
  const running = write('running.yaml', {
    listen: '127.0.0.1:0',
    models: [model('m'), model('old')],
    tenants: [{ name: 'acme', limits: [{ tokens: 5000, per: '1m' }] }],
    api_keys: [{ name: 'team-a', key: KEY_A, tenant: 'acme' }],
  });

  test('prints what the new file changes, one line per kind, and exits 0', () => {
    const next = write('next.yaml', {
      listen: '127.0.0.1:1',
      models: [model('m', { aliases: ['m-alias'] }), model('new')],
      tenants: [{ name: 'acme', limits: [{ tokens: 6000, per: '1m' }] }],
      api_keys: [{ name: 'team-a', key: 'sk-reload-team-a-rotated', tenant: 'acme' },
                 { name: 'team-b', key: KEY_B }],
      default_limits: [{ requests: 5, per: '1m' }],
    });
    const r = runGateway(['--check-config', next, '--diff', running]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${next}: OK\n` +
                           `changes from ${running}:\n` +
                           'models: added new; removed old; changed m (aliases)\n' +
                           'api_keys: added team-b; changed team-a (key)\n' +
                           'tenants: changed acme (limits)\n' +
                           'default_limits: changed\n' +
                           'restart required: listen\n');
    assert.doesNotMatch(r.stdout + r.stderr, /sk-reload/);
    const same = runGateway(['--check-config', running, '--diff', running]);
    assert.equal(same.code, 0, same.stderr);
    assert.equal(same.stdout, `${running}: OK\nchanges from ${running}:\nno changes\n`);
  });

  test('a bad new file exits 1 with its errors; a bad running file is named', () => {
    const bad = write('bad.yaml', 'listen: 127.0.0.1:0\nmodels: []\ncolour: blue\n');
    const r = runGateway(['--check-config', bad, '--diff', running]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /colour: unknown key/);
    assert.equal(r.stdout, '');
    const other = runGateway(['--check-config', running, '--diff', bad]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, new RegExp(`^${bad} \\(--diff\\): colour: unknown key$`, 'm'));
    const alone = runGateway(['--diff', running]);
    assert.equal(alone.code, 2);
  });
});
