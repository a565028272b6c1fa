// The admin listener: health, readiness, Prometheus metrics, and config reload (admin API and
// SIGHUP) that swaps the config atomically and keeps the old one when the new one is bad. (That
// every /admin/v1 route, reload included, wants the admin token: keys.test.mjs.)
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';

import {
  chatBody, cleanup, completeConfig, errorOf, metricSum as metricSumOf, mockText, rawStream,
  startGateway, startMock, toYaml,
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
    bad.api_keys[0].tenant = 'nobody';
    gw.writeConfig(toYaml(bad));
    // The request was fine: the config is not. Every error is listed, in the message too.
    for (const route of ['/admin/v1/reload', '/admin/v1/reload?dry_run=true']) {
      const r = await gw.adminFetch(route, { method: 'POST' });
      assert.equal(r.status, 422, r.text);
      const e = errorOf(r.json, { type: 'invalid_config', code: 'invalid_config', param: null });
      assert.deepEqual(e.errors, ['models[0].bogus_field: unknown key',
                                  'api_keys[0].tenant: unknown tenant "nobody"']);
      assert.equal(e.message, 'The config file has 2 errors; the config in force stays:\n' +
                              e.errors.join('\n'));
    }
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
    assert.equal(r.status, 422, r.text);
    const e = errorOf(r.json, { type: 'invalid_config', code: 'invalid_config' });
    assert.match(e.errors[0], /api_keys: 'made' is the name of a key made through the admin API/);
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
    assert.equal(r.json.status, 'reloaded');
    assert.deepEqual(r.json.restart_required, []);
    assert.deepEqual(r.json.changes.models,
                     { added: [], removed: [], changed: [{ name: 'm', fields: ['aliases'] }] });
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
    assert.equal(r.json.status, 'reloaded');
    assert.deepEqual(r.json.restart_required, ['server.idle_timeout', 'metrics.key_label']);
    assert.deepEqual(r.json.changes.api_keys, { added: ['team-b'], removed: [], changed: [] });
    // The new key works at once; the metrics keep their `key` label until a restart.
    const b = await gw.post('chat/completions', chatBody('m', 'ping', { max_tokens: 2 }),
                            { key: 'sk-admin-team-b' });
    assert.equal(b.status, 200, b.text);
    assert.equal(await gw.waitMetric('trl_requests_total', { key: 'team-b', status: '200' }, 1), 1);
  });

  test('an unknown query parameter is 400 on every admin route, naming what the route accepts',
       async () => {
    const cases = [
      ['POST', '/admin/v1/reload?dryrun=true', 'dryrun',
       "Unknown query parameter 'dryrun' on POST /admin/v1/reload; it accepts: dry_run."],
      ['GET', '/admin/v1/models?verbose=1', 'verbose',
       "Unknown query parameter 'verbose' on GET /admin/v1/models; it accepts none."],
      ['GET', '/admin/v1/keys?limit=10', 'limit',
       "Unknown query parameter 'limit' on GET /admin/v1/keys; it accepts none."],
      ['POST', '/admin/v1/keys?name=x', 'name',
       "Unknown query parameter 'name' on POST /admin/v1/keys; it accepts none."],
      ['GET', '/admin/v1/keys/team-a?x=1', 'x',
       "Unknown query parameter 'x' on GET /admin/v1/keys/team-a; it accepts none."],
      ['POST', '/admin/v1/keys/team-a/reset?all=1', 'all',
       "Unknown query parameter 'all' on POST /admin/v1/keys/team-a/reset; it accepts none."],
      ['GET', '/admin/v1/usage?keys=team-a', 'keys',
       "Unknown query parameter 'keys' on GET /admin/v1/usage; it accepts: key, tenant, model, " +
       'from, to, granularity, format, group_by, user.'],
    ];
    for (const [method, route, param, message] of cases) {
      const r = await gw.adminFetch(route, { method });
      assert.equal(r.status, 400, `${method} ${route}: ${r.text}`);
      const e = errorOf(r.json, { type: 'invalid_request_error', code: 'invalid_request', param });
      assert.equal(e.message, message);
    }
    // Nothing was done: the key made no request and still has its budget; no reload happened.
    assert.equal(await gw.metric('trl_config_reloads_total'), 0);
    // An unknown route stays 404 whatever its parameters.
    const unknown = await gw.adminFetch('/admin/v1/nothing?x=1');
    assert.equal(unknown.status, 404, unknown.text);
  });

  test('an unknown route under a key is 404 naming it; a bad name in a body says it is invalid',
       async () => {
    for (const [method, route] of [['POST', '/admin/v1/keys/rot/rename'],
                                   ['GET', '/admin/v1/keys/a/b'],
                                   ['GET', '/admin/v1/keys/team-a/limits/x'],
                                   ['DELETE', '/admin/v1/keys/team-a/']]) {
      const r = await gw.adminFetch(route, { method });
      assert.equal(r.status, 404, `${method} ${route}: ${r.text}`);
      const e = errorOf(r.json, { type: 'invalid_request_error', code: 'not_found' });
      assert.equal(e.message, `Unknown admin route ${method} ${route}.`);
    }
    const rule = 'names are 1-64 characters of A-Z a-z 0-9 _ - . and do not start with \'.\'.';
    for (const name of ['a/b', '.x', '']) {
      const r = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body: { name } });
      assert.equal(r.status, 400, r.text);
      const e = errorOf(r.json, { type: 'invalid_request_error', param: 'name' });
      assert.equal(e.message, `Invalid key name: ${rule}`);
    }
    for (const body of [{}, { name: null }]) {
      const r = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body });
      assert.equal(r.status, 400, r.text);
      assert.equal(errorOf(r.json, { param: 'name' }).message, `name is required: ${rule}`);
    }
    const r = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body: { name: 7 } });
    assert.equal(r.status, 400, r.text);
    assert.equal(errorOf(r.json, { param: 'name' }).message, `name must be a string: ${rule}`);
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

describe('metrics an operator ranks and alerts on', () => {
  let mock;
  let gw;
  const ACME = 'sk-admin-acme';
  const SOLO = 'sk-admin-solo';
  before(async () => {
    mock = await startMock({ name: 'mock-operator', models: ['m', 'slow'] });
    gw = await startGateway({
      models: [{ name: 'm', backends: [mock.url] }],
      tenants: [{ name: 'acme', limits: [{ requests: 3, per: '1h' }] }],
      api_keys: [
        { name: 'team-a', key: ACME, tenant: 'acme',
          limits: [{ tokens: 1000, per: '1d', reset: 'calendar' },
                   { model: 'm', requests: 100, per: '1m' }] },
        { name: 'solo', key: SOLO, limits: [{ requests: 1, per: '1h' }] },
      ],
    });
  });
  const ask = (key, extra = {}) =>
    gw.post('chat/completions', chatBody('m', 'ping', { max_tokens: 2, ...extra }), { key });

  test('tenants, whose limit refused, budgets left, reloads, readiness and the version',
       async () => {
    for (let i = 0; i < 3; i++) assert.equal((await ask(ACME)).status, 200);
    // Counted after the settlement: once three are counted, the key's budget holds them.
    assert.equal(await gw.waitMetric('trl_tokens_total', { key: 'team-a', kind: 'completion' }, 6),
                 6);
    assert.equal((await ask(ACME)).status, 429);  // the tenant's 3 requests per hour
    assert.equal((await ask(SOLO)).status, 200);
    assert.equal((await ask(SOLO)).status, 429);  // the key's 1 request per hour

    const m = await gw.metrics();
    const sum = (name, labels) => metricSumOf(m, name, labels);
    assert.equal(sum('trl_requests_total', { tenant: 'acme', status: '200' }), 3);
    assert.equal(sum('trl_requests_total', { key: 'team-a', tenant: 'acme', status: '429' }), 1);
    assert.equal(sum('trl_requests_total', { key: 'solo', tenant: '', status: '200' }), 1);
    assert.equal(sum('trl_tokens_total', { tenant: 'acme', kind: 'completion' }), 6);
    assert.equal(sum('trl_ratelimit_rejections_total',
                     { key: 'team-a', tenant: 'acme', limit: 'requests', scope: 'tenant' }), 1);
    assert.equal(sum('trl_ratelimit_rejections_total',
                     { key: 'solo', tenant: '', limit: 'requests', scope: 'key' }), 1);
    assert.equal(sum('trl_ratelimit_rejections_total', {}), 2);

    // Budgets as the last request judged them: the tenant's 3 requests are spent (one comes
    // back every 20 minutes); the key's daily tokens are down by exactly what was charged.
    const tenantRequests = { scope: 'tenant', name: 'acme', model: '', kind: 'requests',
                             period: '1h', calendar: 'false' };
    assert.equal(sum('trl_budget_limit', tenantRequests), 3);
    assert.equal(sum('trl_budget_remaining', tenantRequests), 0);
    const daily = { scope: 'key', name: 'team-a', model: '', kind: 'tokens', period: '1d',
                    calendar: 'true' };
    const charged = sum('trl_tokens_total', { key: 'team-a' });
    assert.equal(sum('trl_budget_limit', daily), 1000);
    assert.equal(sum('trl_budget_remaining', daily), 1000 - charged);
    const perModel = { scope: 'key', name: 'team-a', model: 'm', kind: 'requests', period: '1m' };
    assert.equal(sum('trl_budget_limit', perModel), 100);
    // Three admitted; the fourth, refused by the tenant's limit, charged nothing.
    assert.equal(sum('trl_budget_remaining', perModel), 97);

    assert.equal(sum('trl_build_info', {}), 1);
    assert.ok(m.some((s) => s.name === 'trl_build_info' && /^\d+\.\d+\.\d+$/.test(s.labels.version)));
    assert.equal(sum('trl_config_last_reload_successful', {}), 1);
    assert.equal(sum('trl_store_error_decisions_total', {}), 0);
    // The probe runs every 5 s: polled, not waited for.
    assert.equal(await gw.waitMetric('trl_ready', {}, 1), 1);
    assert.ok(await gw.waitMetric('trl_scheduled_task_last_success_timestamp_seconds',
                                  { task: 'usage_flush' }, 1) > 1.7e9);

    // A refused reload is counted and flagged until a good one.
    gw.writeConfig('models: [');
    assert.equal((await gw.reload()).status, 422);
    assert.equal(await gw.metric('trl_config_reloads_total', { outcome: 'error' }), 1);
    assert.equal(await gw.metric('trl_config_last_reload_successful'), 0);
    gw.writeConfig({
      models: [{ name: 'm', backends: [mock.url] }],
      tenants: [{ name: 'acme', limits: [{ requests: 3, per: '1h' }] }],
      api_keys: [{ name: 'team-a', key: ACME, tenant: 'acme' }],
    });
    assert.equal((await gw.reload()).status, 200);
    assert.equal(await gw.metric('trl_config_reloads_total', { outcome: 'ok' }), 1);
    assert.equal(await gw.metric('trl_config_last_reload_successful'), 1);
  });
});

describe('trl_streams_open', () => {
  let mock;
  let gw;
  before(async () => {
    // One token a second: the stream outlasts the test until the test hangs up.
    mock = await startMock({ name: 'mock-streams', models: ['slow'], tokensPerSecond: 1 });
    gw = await startGateway({ models: [{ name: 'slow', backends: [mock.url] }],
                              api_keys: [{ name: 'team-a', key: KEY }] });
  });

  test('counts the streams being relayed, and only those', async () => {
    const body = chatBody('slow', 'tell me a story', { max_tokens: 16, stream: true });
    const s = rawStream(gw.port, '/v1/chat/completions', body,
                        { headers: { Authorization: `Bearer ${KEY}` } });
    assert.equal((await s.head).status, 200);
    assert.equal(await gw.metric('trl_streams_open', { model: 'slow' }), 1);
    assert.equal(await gw.metric('trl_inflight_requests', { model: 'slow' }), 1);
    const plain = await gw.post('chat/completions', chatBody('slow', 'hi', { max_tokens: 1 }),
                                { key: KEY });
    assert.equal(plain.status, 200);
    assert.equal(await gw.metric('trl_streams_open', { model: 'slow' }), 1);
    s.halfClose();
    assert.equal((await s.done).complete, false);
    // Let go of once the gateway has seen the hang-up (the stream's 200 is counted then).
    assert.equal(await gw.waitMetric('trl_requests_total', { status: '200' }, 2), 2);
    assert.equal(await gw.metric('trl_streams_open', { model: 'slow' }), 0);
    assert.equal(await gw.metric('trl_inflight_requests', { model: 'slow' }), 0);
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
