// docs/api/postman-collection.json, proven: newman (its Node API) runs the whole collection
// against a real gateway and mock-llm, twice on the same gateway (the collection cleans up after
// itself), with zero failures and the exact number of requests and assertions (a folder skipped
// or a test dropped changes them); a planted wrong expectation and a gateway that differs fail by
// the test's name; and every route the source declares has a request with a 2xx example.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import newman from 'newman';

import { ADMIN_TOKEN, REPO_ROOT, cleanup, startGateway, startMock } from '../blackbox/lib/harness.mjs';
import {
  collectionRequests, missingFromCollection, readSources, sourceInventory,
} from './lib/postman_routes.mjs';

after(cleanup);

const COLLECTION_PATH = path.join(REPO_ROOT, 'docs/api/postman-collection.json');
const COLLECTION = JSON.parse(readFileSync(COLLECTION_PATH, 'utf8'));

// What one run executes: 48 requests, 203 assertions (each request's own tests, plus the
// collection's checks of x-request-id, error shapes and x-ratelimit-* headers). A change to the
// collection changes these on purpose.
const EXPECTED_REQUESTS = 55;
const EXPECTED_ASSERTIONS = 232;

const API_KEY = 'sk-postman-collection-test-key';
const MODEL = 'mock-model';

// The collection's assumptions about its gateway: api_key has a token and a request limit (both
// x-ratelimit-* kinds are sent) and may use `model`; a tenant exists; api_key is a config key
// (the 409 key_managed_by_config request needs one). Its 429 comes from the key it makes itself.
const gatewayConfig = (mock, keyLimits) => ({
  models: [{ name: MODEL, aliases: ['mock-alias'], backends: [mock.url], max_output_tokens: 16 }],
  tenants: [{ name: 'acme', limits: [{ tokens: 1000000, per: '1m' }] }],
  api_keys: [{ name: 'postman', key: API_KEY, tenant: 'acme', limits: keyLimits }],
});
const KEY_LIMITS = [{ tokens: 100000, per: '1m' }, { requests: 1000, per: '1m' }];

// Runs `collection` with newman against `gw`, as `newman run --env-var ...` would: resolves with
// the summary's figures and each failure as {item, test, message}.
function runCollection(collection, gw) {
  const envVar = Object.entries({
    base_url: gw.url, admin_url: gw.adminUrl, api_key: API_KEY, admin_token: ADMIN_TOKEN, model: MODEL,
  }).map(([key, value]) => ({ key, value }));
  return new Promise((resolve, reject) => {
    // workingDir: where the form's files are (docs/api/sample.wav), as `--working-dir` sets it.
    newman.run({ collection, envVar, workingDir: path.join(REPO_ROOT, 'docs/api'), reporters: [],
                 timeoutRequest: 10000, timeout: 60000 }, (err, summary) => {
      if (err) { reject(err); return; }
      const { stats } = summary.run;
      resolve({
        requests: stats.requests.total,
        assertions: stats.assertions.total,
        assertionsFailed: stats.assertions.failed,
        executed: summary.run.executions.map((e) => e.item.name),
        failures: summary.run.failures.map((f) => ({
          item: f.source?.name, test: f.error?.test, message: f.error?.message,
        })),
      });
    });
  });
}

const requestNames = (collection) => collectionRequests(collection).map((r) => r.name);

// A copy of the collection with `edit` applied to the test script of the request named `name`.
function withTestScript(collection, name, edit) {
  const copy = structuredClone(collection);
  const find = (items) => items.flatMap((i) => (i.item ? find(i.item) : [i])).find((i) => i.name === name);
  const item = find(copy.item);
  assert.ok(item, `no request named ${name}`);
  const script = item.event.find((e) => e.listen === 'test').script;
  const before = script.exec.join('\n');
  script.exec = edit(before).split('\n');
  assert.notEqual(script.exec.join('\n'), before, `the edit of ${name} changed nothing`);
  return copy;
}

describe('postman collection: the routes it covers', () => {
  const inventory = sourceInventory(readSources(REPO_ROOT));

  test('every route and query parameter of the source has a request with a 2xx example', () => {
    // The parse found the routes (22 today); none may be missing from the collection.
    assert.equal(inventory.routes.length, 28, inventory.routes.map((r) => `${r.method} ${r.path}`).join('\n'));
    assert.deepEqual(missingFromCollection(inventory, COLLECTION), []);
  });

  test('a request taken out, a parameter not sent, a route added to the source: each is named', () => {
    const copy = structuredClone(COLLECTION);
    const keys = copy.item.find((f) => f.name.startsWith('Admin API: keys'));
    keys.item = keys.item.filter((i) => i.name !== 'PATCH /admin/v1/keys/{name}');
    for (const f of copy.item) {
      for (const i of f.item) i.request.url.query = i.request.url.query?.filter((q) => q.key !== 'group_by');
    }
    const src = readSources(REPO_ROOT);
    src.adminKeys = src.adminKeys.replace(
      '} else if (action == "/reset"',
      '} else if (action == "/suspend" && method == bhttp::verb::post) {\n  } else if (action == "/reset"');
    assert.deepEqual(missingFromCollection(sourceInventory(src), copy), [
      'GET /admin/v1/usage?group_by: no request sends it',
      'PATCH /admin/v1/keys/{name}: no request with a 2xx example',
      'POST /admin/v1/keys/{name}/suspend: no request with a 2xx example',
    ]);
  });
});

describe('postman collection: newman against a live gateway', () => {
  let mock;
  let gw;

  before(async () => {
    mock = await startMock({ name: 'mock-postman', models: [MODEL] });
    gw = await startGateway(gatewayConfig(mock, KEY_LIMITS), { name: 'gw-postman' });
  });

  test('runs with every assertion passing, twice on the same gateway', async () => {
    for (const run of [1, 2]) {
      const r = await runCollection(COLLECTION, gw);
      assert.deepEqual(r.failures, [], `run ${run}`);
      assert.deepEqual(r.executed, requestNames(COLLECTION), `run ${run}: every request, once, in order`);
      assert.equal(r.requests, EXPECTED_REQUESTS, `run ${run}`);
      assert.equal(r.assertions, EXPECTED_ASSERTIONS, `run ${run}`);
      assert.equal(r.assertionsFailed, 0, `run ${run}`);
    }
    // Nothing left behind: the keys each run made are revoked.
    const keys = await gw.adminFetch('/admin/v1/keys');
    assert.deepEqual(keys.json.data.map((k) => k.name), ['postman']);
  });

  test('a planted wrong status and header fail, named by request and test', async () => {
    let planted = withTestScript(COLLECTION, 'GET /healthz', (s) => s.replaceAll('200', '201'));
    planted = withTestScript(planted, 'GET /metrics',
                             (s) => s.replaceAll('version=0.0.4', 'version=0.0.5'));
    const r = await runCollection(planted, gw);
    assert.deepEqual(r.failures.map(({ item, test: name }) => ({ item, test: name })), [
      { item: 'GET /healthz', test: 'status is 201' },
      { item: 'GET /metrics', test: 'content-type is text/plain; version=0.0.5' },
    ]);
    assert.equal(r.requests, EXPECTED_REQUESTS);
    assert.equal(r.assertions, EXPECTED_ASSERTIONS);
  });

  test('a gateway whose key has no request limit fails the x-ratelimit-* checks by name', async () => {
    const other = await startGateway(gatewayConfig(mock, [{ tokens: 100000, per: '1m' }]),
                                     { name: 'gw-postman-tokens-only' });
    const r = await runCollection(COLLECTION, other);
    await other.stop();
    // The inference requests made with api_key, and nothing else (the key the run makes has both).
    assert.deepEqual(r.failures.map(({ item, test: name }) => `${item}: ${name}`), [
      'POST /v1/chat/completions: x-ratelimit-* headers',
      'POST /v1/chat/completions (stream): x-ratelimit-* headers',
      'POST /v1/completions: x-ratelimit-* headers',
      'POST /v1/embeddings: x-ratelimit-* headers',
      'POST /v1/responses: x-ratelimit-* headers',
      'POST /v1/responses (stream): x-ratelimit-* headers',
      'POST /v1/rerank: x-ratelimit-* headers',
      'POST /v1/score: x-ratelimit-* headers',
      'POST /tokenize: a request limit, and no token limit: tokenizing costs no tokens',
      'POST /v1/audio/transcriptions: x-ratelimit-* headers',
    ]);
    assert.match(r.failures[0].message, /x-ratelimit-limit-requests/);
  });
});
