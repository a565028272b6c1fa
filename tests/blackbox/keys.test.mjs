// Keys through the admin API (docs/keys.md): create -> use -> limits replaced (the next request
// sees them in its headers) -> budgets read and reset -> revoke (401), on the embedded store and
// on Redis shared by two instances (the other instance syncs every 250 ms, which a loaded
// machine can stretch: the tests poll until the change shows). Admin
// security: every /admin/v1 route refuses a missing or wrong token and a data-plane key with the
// same 401; names that could be path tricks are 400 before anything
// reaches the store; no response, log line or metric ever holds a key's secret.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';

import {
  ADMIN_TOKEN, chatBody, cleanup, errorOf, pollUntil, rawHttp, startGateway, startMock,
  startRedis, waitReady,
} from './lib/harness.mjs';

after(cleanup);

const CONFIG_KEY = 'sk-keys-config-key';
const BODY = chatBody('m', 'hello there', { max_tokens: 4 });

// Every /admin/v1 route, with a body where it takes one.
const ROUTES = [
  ['GET', '/admin/v1/keys'],
  ['POST', '/admin/v1/keys', { name: 'x' }],
  ['GET', '/admin/v1/keys/team-a'],
  ['DELETE', '/admin/v1/keys/team-a'],
  ['GET', '/admin/v1/keys/team-a/limits'],
  ['PUT', '/admin/v1/keys/team-a/limits', { limits: [] }],
  ['POST', '/admin/v1/keys/team-a/reset'],
  ['PATCH', '/admin/v1/keys/team-a', { tenant: null }],
  ['POST', '/admin/v1/keys/team-a/rotate'],
  ['GET', '/admin/v1/usage'],
  ['GET', '/admin/v1/models'],
  ['POST', '/admin/v1/reload'],
];

const baseConfig = (mock) => ({
  models: [{ name: 'm', aliases: ['m-alias'], backends: [mock.url] }, { name: 'other', backends: [mock.url] }],
  tenants: [{ name: 'acme', limits: [{ requests: 1000, per: '1m' }] }],
  api_keys: [{ name: 'team-a', key: CONFIG_KEY, limits: [{ tokens: 100000, per: '1m' }] }],
  default_limits: [{ tokens: 50000, per: '1m' }],
});

// Everything a secret could leak through: the processes' output and the metrics.
async function assertNoSecret(gateways, secret) {
  for (const gw of gateways) {
    const text = [...gw.proc.stdout, ...gw.proc.stderr].join('\n');
    assert.ok(!text.includes(secret), `${gw.proc.name}'s output holds the secret`);
    const metrics = await (await gw.fetch(`${gw.adminUrl}/metrics`)).text();
    assert.ok(!metrics.includes(secret), `${gw.proc.name}'s /metrics holds the secret`);
  }
}

async function createKey(gw, body) {
  const r = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

// The key lifecycle against `a`; `b` (maybe the same instance) must follow every change.
async function lifecycle(a, b) {
  const created = await createKey(a, {
    name: 'api-key-1', tenant: 'acme', models: ['m-alias'],
    limits: [{ tokens: 5000, per: '1m' }, { requests: 100, per: '1h' }],
  });
  assert.match(created.key, /^sk-[0-9A-Za-z]{43,}$/);
  assert.equal(created.name, 'api-key-1');
  assert.equal(created.source, 'api');
  assert.equal(created.tenant, 'acme');
  assert.deepEqual(created.models, ['m']);  // the alias is stored as the canonical name
  assert.deepEqual(created.limits, [{ tokens: 5000, per: '1m' }, { requests: 100, per: '1h' }]);
  const secret = created.key;

  // Shown and listed, never with the secret.
  for (const gw of [a, b]) {
    const shown = await pollUntil(async () => {
      const r = await gw.adminFetch('/admin/v1/keys/api-key-1');
      return r.status === 200 ? r : null;
    });
    assert.ok(shown, `${gw.proc.name} never saw the new key`);
    assert.equal(shown.json.name, 'api-key-1');
    assert.ok(!shown.text.includes(secret));
    assert.equal(shown.json.key, undefined);
    const list = await gw.adminFetch('/admin/v1/keys');
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.data.map((k) => [k.name, k.source]),
                     [['api-key-1', 'api'], ['team-a', 'config']]);
    assert.ok(!list.text.includes(secret));
  }

  // Used on both instances, with its limits in the headers; its model list holds.
  for (const gw of [a, b]) {
    const r = await gw.post('chat/completions', BODY, { key: secret });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-ratelimit-limit-tokens'), '5000');
    assert.equal(r.headers.get('x-ratelimit-limit-requests'), '100');
    const denied = await gw.post('chat/completions', chatBody('other', 'hi', { max_tokens: 2 }),
                                 { key: secret });
    assert.equal(denied.status, 403);
  }

  // The live budgets: two requests charged so far on the requests limit.
  const limits = await a.adminFetch('/admin/v1/keys/api-key-1/limits');
  assert.equal(limits.status, 200, limits.text);
  assert.equal(limits.json.limits.length, 2);
  assert.equal(limits.json.limits[1].requests, 100);
  assert.equal(limits.json.limits[1].remaining, 98);
  assert.ok(limits.json.limits[0].remaining < 5000);
  assert.match(limits.json.limits[0].resets_in, /^(\d+ms|[\d.]+s|\d+m[\d.]+s)$/);

  // Limits replaced: the next request on the other instance sees them in its headers.
  const put = await a.adminFetch('/admin/v1/keys/api-key-1/limits', {
    method: 'PUT', body: { limits: [{ tokens: 777, per: '1m' }] },
  });
  assert.equal(put.status, 200, put.text);
  assert.deepEqual(put.json.limits, [{ tokens: 777, per: '1m' }]);
  const seen = await pollUntil(async () => {
    const r = await b.post('chat/completions', BODY, { key: secret });
    return r.headers.get('x-ratelimit-limit-tokens') === '777' ? r : null;
  });
  assert.ok(seen, 'the new limit did not reach the other instance');
  assert.equal(seen.status, 200);
  // The key's requests limit is gone: the tenant's is the only one left.
  assert.equal(seen.headers.get('x-ratelimit-limit-requests'), '1000');

  // Reset refills the budgets.
  const reset = await a.adminFetch('/admin/v1/keys/api-key-1/reset', { method: 'POST' });
  assert.equal(reset.status, 200, reset.text);
  const full = await a.adminFetch('/admin/v1/keys/api-key-1/limits');
  assert.equal(full.json.limits[0].remaining, 777);
  assert.equal(full.json.limits[0].resets_in, '0s');

  // Revoked: 401 on both instances.
  const del = await a.adminFetch('/admin/v1/keys/api-key-1', { method: 'DELETE' });
  assert.equal(del.status, 200, del.text);
  for (const gw of [a, b]) {
    const status = await pollUntil(async () => {
      const r = await gw.post('chat/completions', BODY, { key: secret });
      return r.status === 401 ? 401 : 0;
    });
    assert.equal(status, 401, `${gw.proc.name} still accepts the revoked key`);
  }
  const gone = await b.adminFetch('/admin/v1/keys/api-key-1');
  assert.equal(gone.status, 404);
  errorOf(gone.json, { code: 'key_not_found' });
  assert.equal((await a.adminFetch('/admin/v1/keys/api-key-1', { method: 'DELETE' })).status, 404);

  await assertNoSecret([a, b], secret);
}

// Rotation, changes and expiry against `a`; `b` (maybe the same instance) must follow each.
async function rotationAndExpiry(a, b) {
  const made = await createKey(a, { name: 'rotating', limits: [{ requests: 50, per: '1h' }] });
  const old = made.key;
  for (const gw of [a, b]) {
    const ok = await pollUntil(async () => {
      const r = await gw.post('chat/completions', BODY, { key: old });
      return r.status === 200 ? r : null;
    });
    assert.ok(ok, `${gw.proc.name} never accepted the new key`);
  }

  // Rotated with a grace period: both secrets work on both instances, on the same budget.
  const rotated = await a.adminFetch('/admin/v1/keys/rotating/rotate', {
    method: 'POST', body: { grace_period: '1h' },
  });
  assert.equal(rotated.status, 200, rotated.text);
  const fresh = rotated.json.key;
  assert.match(fresh, /^sk-[0-9A-Za-z]{43,}$/);
  assert.notEqual(fresh, old);
  const graceEnd = Date.parse(rotated.json.previous_key_expires_at);
  assert.ok(graceEnd > Date.now() + 59 * 60_000 && graceEnd <= Date.now() + 3_601_000,
            rotated.json.previous_key_expires_at);
  for (const gw of [a, b]) {
    const r = await pollUntil(async () => {
      const res = await gw.post('chat/completions', BODY, { key: fresh });
      return res.status === 200 ? res : null;
    });
    assert.ok(r, `${gw.proc.name} never accepted the rotated secret`);
    assert.equal((await gw.post('chat/completions', BODY, { key: old })).status, 200);
  }
  // One budget across both secrets: 2 (before) + 4 (after) requests of 50.
  const limits = await a.adminFetch('/admin/v1/keys/rotating/limits');
  assert.equal(limits.json.limits[0].remaining, 44, limits.text);

  // Rotated again without a grace period: the first two secrets stop at once.
  const again = await a.adminFetch('/admin/v1/keys/rotating/rotate', { method: 'POST' });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.previous_key_expires_at, null);
  for (const gw of [a, b]) {
    for (const secret of [old, fresh]) {
      const refused = await pollUntil(async () => {
        const r = await gw.post('chat/completions', BODY, { key: secret });
        return r.status === 401 ? r : null;
      });
      assert.ok(refused, `${gw.proc.name} still accepts a rotated-away secret`);
      errorOf(refused.json, { code: 'invalid_api_key' });
    }
  }
  const third = again.json.key;

  // PATCH: a tenant and an expiry in the past; the limits and the secret stay.
  const patched = await a.adminFetch('/admin/v1/keys/rotating', {
    method: 'PATCH', body: { tenant: 'acme', expires_at: '2020-01-01T00:00:00Z' },
  });
  assert.equal(patched.status, 200, patched.text);
  assert.equal(patched.json.tenant, 'acme');
  assert.equal(patched.json.expired, true);
  assert.deepEqual(patched.json.limits, [{ requests: 50, per: '1h' }]);
  for (const gw of [a, b]) {
    const expired = await pollUntil(async () => {
      const r = await gw.post('chat/completions', BODY, { key: third });
      return r.status === 401 ? r : null;
    });
    assert.ok(expired, `${gw.proc.name} still accepts an expired key`);
    errorOf(expired.json, { type: 'invalid_request_error', code: 'key_expired' });
  }
  // ...and let in again with no expiry, now in the tenant (its requests limit in the headers).
  const reopened = await a.adminFetch('/admin/v1/keys/rotating', {
    method: 'PATCH', body: { expires_at: null, limits: null },
  });
  assert.equal(reopened.status, 200, reopened.text);
  assert.equal(reopened.json.default_limits, true);
  for (const gw of [a, b]) {
    const r = await pollUntil(async () => {
      const res = await gw.post('chat/completions', BODY, { key: third });
      return res.status === 200 ? res : null;
    });
    assert.ok(r, `${gw.proc.name} never let the key in again`);
    assert.equal(r.headers.get('x-ratelimit-limit-tokens'), '50000');  // default_limits
    assert.equal(r.headers.get('x-ratelimit-limit-requests'), '1000');  // the tenant's
  }
  await assertNoSecret([a, b], old);
  await assertNoSecret([a, b], fresh);
  await assertNoSecret([a, b], third);
}

describe('keys API, embedded store', () => {
  let mock;
  let gw;
  before(async () => {
    mock = await startMock({ name: 'mock-keys', models: ['m', 'other'] });
  });
  // A gateway and a data_dir of its own for each test: the keys one test makes are never in the
  // next one's lists.
  beforeEach(async () => {
    gw = await startGateway(baseConfig(mock), { name: 'gw-keys' });
  });
  afterEach(async () => {
    await gw.stop();
  });

  test('create, use, replace limits, read and reset budgets, revoke', async () => {
    await lifecycle(gw, gw);
  });

  test('rotate with and without a grace period, change fields, expire', async () => {
    await rotationAndExpiry(gw, gw);
  });

  test('every /admin/v1 route refuses a missing or wrong token and a data-plane key', async () => {
    const created = await createKey(gw, { name: 'data-plane-key' });
    let body401;
    for (const [method, route, body] of ROUTES) {
      for (const token of [null, 'wrong-token', CONFIG_KEY, created.key, `${ADMIN_TOKEN}x`]) {
        const r = await gw.adminFetch(route, { method, token, body });
        assert.equal(r.status, 401, `${method} ${route} with ${token === null ? 'no token' : 'a wrong token'}`);
        errorOf(r.json, { code: 'invalid_admin_token' });
        body401 ??= r.text;
        assert.equal(r.text, body401, 'the 401 must not tell a missing token from a wrong one');
      }
    }
    // Nothing changed: the key is still there and usable.
    assert.equal((await gw.post('chat/completions', BODY, { key: created.key })).status, 200);
    for (const route of ['/healthz', '/readyz', '/metrics']) {
      const r = await gw.fetch(`${gw.adminUrl}${route}`);
      await r.arrayBuffer();
      assert.equal(r.status, 200, route);
    }
    await assertNoSecret([gw], created.key);
  });

  test('names that are not one safe path segment are 400, as sent on the wire', async () => {
    // ('a/b' is key 'a' and an unknown route under it: 404, admin.test.mjs.)
    const bad = ['../x', '%2e%2e', '..%2fx', '.hidden', 'x'.repeat(65), 'sp%20ace'];
    for (const name of bad) {
      for (const [method, suffix] of [['GET', ''], ['DELETE', ''], ['GET', '/limits'],
                                      ['PUT', '/limits'], ['POST', '/reset']]) {
        const body = method === 'PUT' ? '{"limits":[]}' : '';
        const r = await rawHttp(Number(new URL(gw.adminUrl).port),
                                `${method} /admin/v1/keys/${name}${suffix} HTTP/1.1\r\n` +
                                `Host: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n` +
                                `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
                                { body });
        assert.equal(r.status, 400, `${method} /admin/v1/keys/${name}${suffix}: ${r.text}`);
        errorOf(r.json, { param: 'name' });
      }
    }
    for (const name of ['../x', 'a/b', '%2e%2e', 'x'.repeat(65), '', '.x', 7]) {
      const r = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body: { name } });
      assert.equal(r.status, 400, `POST name ${JSON.stringify(name)}`);
      errorOf(r.json, { param: 'name' });
    }
    const ok = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body: { name: 'x'.repeat(64) } });
    assert.equal(ok.status, 201);
    const list = await gw.adminFetch('/admin/v1/keys');
    assert.ok(!list.json.data.some((k) => /[/%]|^\./.test(k.name)));
  });

  test('bad bodies are 400 naming the field and change nothing', async () => {
    const before = (await gw.adminFetch('/admin/v1/keys')).json.data.length;
    const cases = [
      [{ name: 'b1', limits: [{ tokens: -5, per: '1m' }] }, 'limits'],
      [{ name: 'b2', limits: [{ tokens: 5 }] }, 'limits'],
      [{ name: 'b3', limits: { tokens: 5, per: '1m' } }, 'limits'],
      [{ name: 'b4', models: ['nope'] }, 'models'],
      [{ name: 'b5', models: [] }, 'models'],
      [{ name: 'b6', tenant: 'nobody' }, 'tenant'],
      [{ name: 'b7', secret: 'sk-mine' }, 'secret'],
      [{ name: 'team-a' }, null],  // a config key's name: 409
    ];
    for (const [body, param] of cases) {
      const r = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body });
      if (param === null) {
        assert.equal(r.status, 409);
        errorOf(r.json, { code: 'key_exists' });
      } else {
        assert.equal(r.status, 400, JSON.stringify(body));
        errorOf(r.json, { param });
      }
    }
    const notJson = await rawHttp(Number(new URL(gw.adminUrl).port),
                                  `POST /admin/v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n` +
                                  'Content-Length: 5\r\nConnection: close\r\n\r\n', { body: '{nope' });
    assert.equal(notJson.status, 400);
    assert.equal((await gw.adminFetch('/admin/v1/keys')).json.data.length, before);
    // A key made twice: 409, the first one untouched.
    const first = await createKey(gw, { name: 'twice' });
    const second = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body: { name: 'twice' } });
    assert.equal(second.status, 409);
    assert.equal((await gw.post('chat/completions', BODY, { key: first.key })).status, 200);
    // The config's keys are read-only here.
    const del = await gw.adminFetch('/admin/v1/keys/team-a', { method: 'DELETE' });
    assert.equal(del.status, 409);
    errorOf(del.json, { code: 'key_managed_by_config' });
    const put = await gw.adminFetch('/admin/v1/keys/team-a/limits', { method: 'PUT', body: { limits: [] } });
    assert.equal(put.status, 409);
    assert.equal((await gw.post('chat/completions', BODY, { key: CONFIG_KEY })).status, 200);
    // ...but their budgets can be read.
    const limits = await gw.adminFetch('/admin/v1/keys/team-a/limits');
    assert.equal(limits.status, 200);
    assert.equal(limits.json.limits[0].tokens, 100000);
  });

  test('API-made keys survive a restart (SIGTERM)', async () => {
    const kept = await createKey(gw, { name: 'kept', limits: [{ tokens: 900, per: '1m' }] });
    const dataDir = `${gw.dir}/data`;
    assert.deepEqual(await gw.stop(), { code: 0, signal: null });
    gw = await startGateway({ ...baseConfig(mock), store: { backend: 'memory', data_dir: dataDir } },
                            { name: 'gw-keys-2' });
    const r = await gw.post('chat/completions', BODY, { key: kept.key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-ratelimit-limit-tokens'), '900');
    await assertNoSecret([gw], kept.key);
  });
});

describe('keys API, Redis shared by two instances', () => {
  let mock;
  let redis;
  let a;
  let b;
  before(async () => {
    mock = await startMock({ name: 'mock-keys-redis', models: ['m', 'other'] });
    redis = await startRedis({ name: 'redis-keys' });
    const config = { ...baseConfig(mock), store: { backend: 'redis', redis: { url: redis.url } } };
    a = await startGateway(config, { name: 'gw-keys-a' });
    b = await startGateway(config, { name: 'gw-keys-b' });
    for (const gw of [a, b]) await waitReady(gw);
  });

  test('a change on one instance reaches the other; revoke is 401 on both', async () => {
    await lifecycle(a, b);
    await rotationAndExpiry(a, b);
    // Only hashes reach Redis.
    const made = await createKey(a, { name: 'hash-only' });
    const dump = redis.cli('HGETALL', 'trl:keys:{keys}:records');
    assert.ok(dump.includes('hash-only'));
    assert.ok(!dump.includes(made.key));
  });
});
