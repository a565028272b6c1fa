// The admin listener: health, readiness, Prometheus metrics, and config reload (admin API and
// SIGHUP) that swaps the config atomically and keeps the old one when the new one is bad. (That
// every /admin/v1 route, reload included, wants the admin token: keys.test.mjs.)
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';

import {
  chatBody, cleanup, completeConfig, errorOf, mockText, startGateway, startMock, toYaml,
} from './lib/harness.mjs';

const KEY = 'sk-admin-team-a';

after(cleanup);

describe('admin', () => {
  let mock;
  let gw;
  const config = (aliases = []) => ({
    models: [{ name: 'm', aliases, backends: [mock.url] }],
    api_keys: [{ name: 'team-a', key: KEY }],
  });
  const ask = (model) => gw.post('chat/completions', chatBody(model, 'ping', { max_tokens: 2 }),
                                 { key: KEY });

  before(async () => {
    // mock-llm answers to the aliases too, whichever name the gateway forwards.
    mock = await startMock({ name: 'mock-admin', models: ['m', 'new-alias', 'hup-alias'] });
  });

  // A gateway of its own for each test, on a config file of its own: what one test reloads (or
  // leaves broken on disk) is never what the next one starts from.
  beforeEach(async () => {
    gw = await startGateway(config());
  });
  afterEach(async () => {
    await gw.stop();
  });

  test('/healthz and /readyz answer 200 without a token', async () => {
    for (const route of ['/healthz', '/readyz']) {
      const r = await gw.fetch(`${gw.adminUrl}${route}`);
      await r.arrayBuffer();
      assert.equal(r.status, 200, route);
    }
  });

  test('/metrics counts trl_requests_total exactly', async () => {
    const N = 5;
    for (let i = 0; i < N; i++) {
      const r = await ask('m');
      assert.equal(r.status, 200);
    }
    const labels = { model: 'm', key: 'team-a', status: '200' };
    assert.equal(await gw.waitMetric('trl_requests_total', labels, N), N);

    const raw = await (await gw.fetch(`${gw.adminUrl}/metrics`)).text();
    assert.match(raw, /^# TYPE trl_requests_total counter$/m);
    assert.match(raw, /^# TYPE trl_request_duration_seconds histogram$/m);
    // The duration is observed after the count: polled too.
    assert.equal(await gw.waitMetric('trl_request_duration_seconds_count', { model: 'm' }, N), N);
    // Still exactly N: nothing counted twice.
    assert.equal(await gw.metric('trl_requests_total', labels), N);
  });

  test('a bad config on reload is refused and the old config stays', async () => {
    const bad = completeConfig(config(['new-alias']), gw.dir);
    bad.models[0].bogus_field = 1;
    gw.writeConfig(toYaml(bad));
    const r = await gw.reload();
    assert.equal(r.status, 400, r.text);
    const e = errorOf(r.json, { type: 'invalid_request_error', code: 'invalid_config' });
    assert.match(e.message, /models\[0\]\.bogus_field/);
    // The old config still serves; the half-new one did not leak in.
    const ok = await ask('m');
    assert.equal(ok.status, 200);
    assert.equal(ok.json.choices[0].message.content, mockText(2));
    assert.equal((await ask('new-alias')).status, 404);
    const ready = await gw.fetch(`${gw.adminUrl}/readyz`);
    await ready.arrayBuffer();
    assert.equal(ready.status, 200);
  });

  test('a reload that names a config key like an API-made key is refused', async () => {
    const made = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body: { name: 'made' } });
    assert.equal(made.status, 201, made.text);
    const clash = config();
    clash.api_keys.push({ name: 'made', key: 'sk-admin-config-made' });
    gw.writeConfig(clash);
    const r = await gw.reload();
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /api_keys: 'made' is the name of a key made through the admin API/);
    // The old config still serves: the config key did not come in.
    assert.equal((await ask('m')).status, 200);
    const asConfigKey = await gw.post('chat/completions', chatBody('m', 'ping', { max_tokens: 2 }),
                                      { key: 'sk-admin-config-made' });
    assert.equal(asConfigKey.status, 401);
  });

  test('a good reload takes effect (a new alias)', async () => {
    assert.equal((await ask('new-alias')).status, 404);
    gw.writeConfig(config(['new-alias']));
    const r = await gw.reload();
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { status: 'reloaded', restart_required: [] });
    const via = await ask('new-alias');
    assert.equal(via.status, 200, via.text);
    assert.equal(via.json.choices[0].message.content, mockText(2));
    assert.equal((await ask('m')).status, 200);
  });

  test('a reload applies what it can and names the changed settings that wait for a restart',
       async () => {
    const changed = config(['new-alias']);
    changed.server = { idle_timeout: '5s' };
    changed.metrics = { key_label: false };
    changed.api_keys.push({ name: 'team-b', key: 'sk-admin-team-b' });
    gw.writeConfig(changed);
    const r = await gw.reload();
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { status: 'reloaded',
                               restart_required: ['server.idle_timeout', 'metrics.key_label'] });
    // The new key works at once; the metrics keep their `key` label until a restart.
    const b = await gw.post('chat/completions', chatBody('m', 'ping', { max_tokens: 2 }),
                            { key: 'sk-admin-team-b' });
    assert.equal(b.status, 200, b.text);
    assert.equal(await gw.waitMetric('trl_requests_total', { key: 'team-b', status: '200' }, 1), 1);
  });

  test('SIGHUP reloads the config file', async () => {
    assert.equal((await ask('hup-alias')).status, 404);
    gw.writeConfig(config(['new-alias', 'hup-alias']));
    gw.proc.signal('SIGHUP');
    // The gateway says so once the new config is in force (this gateway's first reload).
    await gw.proc.waitForLine(/config reloaded from /);
    const via = await ask('hup-alias');
    assert.equal(via.status, 200, via.text);
    assert.equal(via.json.choices[0].message.content, mockText(2));
    assert.equal(gw.proc.exitInfo, null, 'SIGHUP must not stop the gateway');
  });
});

describe('metrics.key_label: false', () => {
  let mock;
  let gw;
  before(async () => {
    mock = await startMock({ name: 'mock-key-label', models: ['m'] });
    gw = await startGateway({
      models: [{ name: 'm', backends: [mock.url] }],
      api_keys: [{ name: 'team-a', key: KEY }, { name: 'team-b', key: 'sk-admin-team-b' },
                 { name: 'tiny', key: 'sk-admin-tiny', limits: [{ requests: 1, per: '1h' }] }],
      metrics: { key_label: false },
    });
  });

  test('the per-key series are one series per model, with no key label', async () => {
    const keys = [KEY, 'sk-admin-team-b', 'sk-admin-team-b', 'sk-admin-tiny', 'sk-admin-tiny'];
    for (const key of keys) {
      await gw.post('chat/completions', chatBody('m', 'one two', { max_tokens: 2 }), { key });
    }
    assert.equal(await gw.waitMetric('trl_requests_total', { model: 'm', status: '200' }, 4), 4);
    assert.equal(await gw.metric('trl_requests_total', { model: 'm', status: '429' }), 1);
    assert.equal(
      await gw.metric('trl_ratelimit_rejections_total', { model: 'm', limit: 'requests' }), 1);
    // Four answers of 2 words each (mock-llm's usage).
    assert.equal(await gw.metric('trl_tokens_total', { model: 'm', kind: 'completion' }), 8);
    const raw = await (await gw.fetch(`${gw.adminUrl}/metrics`)).text();
    assert.doesNotMatch(raw, /key="/);
    assert.doesNotMatch(raw, /team-a|team-b|tiny/);
  });
});
