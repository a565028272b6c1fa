// A model's `passthrough` paths (configs/example.yaml, docs/limits.md): paths the gateway does
// not serve itself, forwarded to that model's backends with their method, query and body as they
// came; authenticated, held to the request limits (shared by the instances on Redis), never
// charged a token. A path no model lists stays 404.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { STORES, cleanup, keyLimits, startFleet, startMock, usageTotal } from './lib/harness.mjs';

after(cleanup);

const BUDGET = 1000;

async function call(gw, method, p, { key, body } = {}) {
  const headers = {};
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(`${gw.url}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: Object.fromEntries(r.headers), text, json };
}

for (const store of STORES) {
  describe(`passthrough paths (${store})`, () => {
    let fleet;
    let mock;
    before(async () => {
      mock = await startMock({ name: `mock-pass-${store}`, models: ['m'] });
      fleet = await startFleet(store, {
        models: [{ name: 'm', aliases: ['m-alias'], backends: [mock.url], passthrough: ['/health', '/mock/*'] }],
        api_keys: [{ name: 'k', key: 'sk-k', limits: [{ tokens: BUDGET, per: '3650d' }, { requests: 3, per: '1h' }] }],
      }, { name: `gw-pass-${store}` });
    });

    test('forwarded as they came, request-limited across instances, never charged a token',
         async () => {
      const health = await call(fleet.at(0), 'GET', '/health', { key: 'sk-k' });
      assert.equal(health.status, 200, health.text);
      assert.equal(health.text, (await (await fetch(`${mock.url}/health`)).text()));
      assert.equal(health.headers['x-ratelimit-remaining-requests'], '2');
      assert.equal(health.headers['x-ratelimit-limit-tokens'], undefined);
      const stats = await call(fleet.at(1), 'GET', '/mock/stats?format=json', { key: 'sk-k' });
      assert.equal(stats.status, 200, stats.text);
      assert.equal(typeof stats.json.requests_total, 'number', stats.text);
      const reset = await call(fleet.at(0), 'POST', '/mock/reset-stats', { key: 'sk-k', body: { model: 'm-alias' } });
      assert.equal(reset.status, 200, reset.text);
      const refused = await call(fleet.at(1), 'GET', '/health', { key: 'sk-k' });
      assert.equal(refused.status, 429);
      assert.equal(refused.json.error.type, 'requests');
      assert.ok(await fleet.settled({ key: 'k', requests: 4 }));
      for (const gw of fleet.gws) {
        assert.equal((await keyLimits(gw, 'k')).find((l) => l.tokens !== undefined).level, BUDGET);
      }
      const usage = await fleet.usage({ key: 'k' });
      assert.equal(usage.requests, 3);
      assert.equal(usage.prompt_tokens + usage.completion_tokens, 0);
      assert.equal(usage.rejected, 1);
    });

    test('no key is 401, a model that does not list the path 404, a path no model lists 404',
         async () => {
      const gw = fleet.at(0);
      assert.equal((await call(gw, 'GET', '/health')).status, 401);
      const other = await call(gw, 'POST', '/mock/reset-stats', { key: 'sk-k', body: { model: 'nope' } });
      assert.equal(other.status, 404);
      assert.equal(other.json.error.code, 'model_not_found');
      const unknown = await call(gw, 'GET', '/v1/responses/resp_1', { key: 'sk-k' });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.json.error.code, 'not_found');
      assert.equal((await usageTotal(gw, { key: 'k' })).rejected, 1);
    });
  });
}
