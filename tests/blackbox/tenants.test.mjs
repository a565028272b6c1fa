// Tenants in the admin API (issue 28): each tenant of the config with how many keys it has (the
// config's and the API's) and what remains of its own budgets, which all its keys draw on (and
// which a key's own /limits shows beside its own); the refill of a tenant's budgets; 404/405 for
// what is not there. On the embedded store and on Redis. Calendar windows, so that the remaining
// budgets are exact.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import {
  chatBody, cleanup, errorOf, startGateway, startMock, startRedis, waitReady,
} from './lib/harness.mjs';

after(cleanup);

const ACME = [{ requests: 10, per: '1h', reset: 'calendar' },
              { tokens: 100000, per: '1d', reset: 'calendar' }];

const config = (mock, store) => ({
  models: [{ name: 'm', backends: [mock.url] }],
  tenants: [{ name: 'acme', limits: ACME }, { name: 'idle', limits: [{ concurrent: 2 }] }],
  api_keys: [{ name: 'config-key', key: 'sk-tenants-config-key', tenant: 'acme' }],
  default_limits: [{ tokens: 50000, per: '1m' }],
  store,
});

for (const store of ['memory', 'redis']) describe(`tenants, ${store}`, () => {
  test('list, show and reset a tenant\'s budgets', async () => {
    const mock = await startMock({ models: ['m'] });
    const redis = store === 'redis' ? await startRedis() : null;
    const gw = await startGateway(config(mock, redis ? { backend: 'redis', redis: { url: redis.url } }
                                                     : undefined));
    await waitReady(gw);
    const made = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body: { name: 'api-key', tenant: 'acme' } });
    assert.equal(made.status, 201);
    let tokens = 0;
    for (const key of ['sk-tenants-config-key', 'sk-tenants-config-key', made.json.key]) {
      const r = await gw.post('chat/completions', chatBody('m', 'hello', { max_tokens: 3 }), { key });
      assert.equal(r.status, 200);
      tokens += r.json.usage.total_tokens;
    }

    const list = await gw.adminFetch('/admin/v1/tenants');
    assert.equal(list.status, 200);
    const strip = (l) => { const { resets_in, resets_in_ms, ...rest } = l; return rest; };
    assert.deepEqual(list.json.data.map((t) => ({ ...t, limits: t.limits.map(strip) })), [
      { name: 'acme', keys: 2, limits: [
        { requests: 10, per: '1h', reset: 'calendar', remaining: 7, level: 7 },
        { tokens: 100000, per: '1d', reset: 'calendar', remaining: 100000 - tokens, level: 100000 - tokens }],
        queue: null },
      { name: 'idle', keys: 0, limits: [{ concurrent: 2, remaining: 2, level: 2, in_use: 0 }], queue: null },
    ]);
    const acme = await gw.adminFetch('/admin/v1/tenants/acme');
    const stripped = (t) => ({ ...t, limits: t.limits.map(strip) });
    assert.deepEqual(stripped(acme.json), stripped(list.json.data[0]));

    // A key's limits show its tenant's too: every limit its requests are judged against.
    for (const name of ['config-key', 'api-key']) {
      const key = await gw.adminFetch(`/admin/v1/keys/${name}/limits`);
      assert.equal(key.status, 200);
      assert.deepEqual(key.json.limits.map(strip), [
        { tokens: 50000, per: '1m', remaining: key.json.limits[0].remaining, level: key.json.limits[0].level }]);
      assert.deepEqual(stripped(key.json.tenant), stripped({ name: 'acme', limits: acme.json.limits }));
    }

    const reset = await gw.adminFetch('/admin/v1/tenants/acme/reset', { method: 'POST' });
    assert.deepEqual([reset.status, reset.json], [200, { name: 'acme', reset: true }]);
    const after = await gw.adminFetch('/admin/v1/tenants/acme');
    assert.deepEqual(after.json.limits.map((l) => l.remaining), [10, 100000]);

    const missing = await gw.adminFetch('/admin/v1/tenants/nobody');
    assert.equal(missing.status, 404);
    errorOf(missing.json, { code: 'tenant_not_found' });
    const wrongMethod = await gw.adminFetch('/admin/v1/tenants/acme', { method: 'DELETE' });
    assert.equal(wrongMethod.status, 405);
    const unknown = await gw.adminFetch('/admin/v1/tenants/acme/refill', { method: 'POST' });
    assert.equal(unknown.status, 404);
    errorOf(unknown.json, { code: 'not_found' });
    const noToken = await gw.adminFetch('/admin/v1/tenants', { token: null });
    assert.equal(noToken.status, 401);
  });
});
