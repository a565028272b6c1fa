// docs/api/openapi.yaml is the truth about the API, in both directions:
// - lint: @redocly/cli's recommended rules pass with no warning;
// - inventory: every route and error code the source serves (src/proxy/gateway.cc, errors.cc,
//   src/admin/*.cc) is in the spec;
// - live: real gateways (embedded store; a header-identity one; one on Redis for the store's
//   503s) and mock-llm are driven through every documented route and every status they can be
//   made to answer, and each response (status, headers, content type, body, each SSE event,
//   error code) is checked against the spec (tests/api/lib/openapi.mjs);
// - coverage: every documented operation/status and error code was seen live, but the few
//   listed in UNPROVOKABLE with the reason;
// - planted mismatches: copies of the spec missing a header, an error code, a route or a status
//   make the checks name what is missing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  ADMIN_TOKEN, cleanup, freePort, pollUntil, rawHttp, startGateway, startMock, startRedis, waitReady,
} from '../blackbox/lib/harness.mjs';
import {
  REPO_ROOT, SPEC_PATH, SpecChecker, loadSpec, missingFromSpec, operations, sourceInventory,
} from './lib/openapi.mjs';

const KEY = 'sk-openapi-full-0123456789';
const LIMITED = 'sk-openapi-limited-012345';
const TINY = 'sk-openapi-tiny-0123456789';
const ONCE = 'sk-openapi-once-0123456789';
const SPENDER = 'sk-openapi-spender-0123456789';
const SINGLE = 'sk-openapi-single-01234567';
const MAX_BODY = 8192;
const MAX_HEADER = 2048;
// The admin listener's fixed bounds (http::ServerOptions' defaults; server.* is the data plane's).
const ADMIN_MAX_BODY = 4 * 1024 * 1024;
const ADMIN_MAX_HEADER = 16 * 1024;

// Documented answers no test can provoke in bounded time, each with the reason.
const UNPROVOKABLE_STATUSES = {
  500: 'internal_error: only an exception escaping an admin handler (a store library, an allocation)',
};
const UNPROVOKABLE_CODES = {
  internal_error: UNPROVOKABLE_STATUSES[500],
  key_changed: '409 key_changed: another change of the key must land between its read and its write, three times running',
};
const unprovokableStatuses = () => operations(spec).flatMap(
    (o) => o.statuses.filter((s) => s in UNPROVOKABLE_STATUSES).map((s) => `${o.key} ${s}`));

const spec = loadSpec();
const checker = new SpecChecker(spec);
const seen = [];  // every checked response, for the planted-mismatch tests

after(cleanup);

// Sends one request and checks its response against the spec; returns {status, headers, text,
// json}. `want`: the exact status (and error code) the test expects.
async function call(gw, listener, method, p, { key, token, headers = {}, body, want } = {}) {
  const base = listener === 'data' ? gw.url : gw.adminUrl;
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  if (token) h.authorization = `Bearer ${token}`;
  // A FormData body sets its own multipart Content-Type.
  const form = body instanceof FormData;
  if (body !== undefined && !form) h['content-type'] = 'application/json';
  const r = await gw.fetch(`${base}${p}`, {
    method, headers: h,
    body: body === undefined || form || typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  const res = { status: r.status, headers: Object.fromEntries(r.headers.entries()), text };
  try { res.json = JSON.parse(text); } catch { res.json = undefined; }
  record(listener, method, p, res, want);
  return res;
}

function record(listener, method, p, res, want) {
  const x = { listener, method, path: p.split('?')[0], status: res.status, headers: res.headers,
              body: res.text };
  seen.push(x);
  assert.deepEqual(checker.check(x), [], `${method} ${p} -> ${res.status} ${res.text.slice(0, 300)}`);
  if (want) {
    const [status, code] = String(want).split(' ');
    assert.equal(res.status, Number(status), `${method} ${p}: ${res.text.slice(0, 300)}`);
    if (code) assert.equal(res.json?.error?.code, code, `${method} ${p}: ${res.text.slice(0, 300)}`);
  }
}

const admin = (gw, method, p, opts = {}) => call(gw, 'admin', method, p, { token: ADMIN_TOKEN, ...opts });
const chat = (model, extra = {}) => ({ model, messages: [{ role: 'user', content: 'hello there world' }], ...extra });
const completion = (model, extra = {}) => ({ model, prompt: 'hello there world', ...extra });
const embedding = (model) => ({ model, input: 'hello there world' });
// The Responses API names its cap max_output_tokens and has no stream_options.
const responses = (model, { max_tokens, stream_options, ...extra } = {}) =>
  ({ model, input: 'hello there world', ...(max_tokens ? { max_output_tokens: max_tokens } : {}), ...extra });
const rerank = (model) => ({ model, query: 'hello world', documents: ['hello there', 'other words'] });
const score = (model) => ({ model, text_1: 'hello world', text_2: ['hello there', 'other words'] });
const tokenize = (model) => ({ model, prompt: 'hello there world' });
const detokenize = (model) => ({ model, tokens: [] });
// A transcription: a form with a tenth of a second of WAV audio (16000 bytes a second, silence:
// charged as a second), small enough for MAX_BODY.
const wavSecond = () => {
  const b = Buffer.alloc(44 + 1600);
  b.write('RIFF', 0); b.writeUInt32LE(36 + 1600, 4); b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(8000, 24); b.writeUInt32LE(16000, 28); b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34); b.write('data', 36); b.writeUInt32LE(1600, 40);
  return b;
};
const transcription = (model, fields = {}) => {
  const f = new FormData();
  if (model !== undefined) f.append('model', model);
  f.append('file', new Blob([wavSecond()], { type: 'audio/wav' }), 'a.wav');
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
};
const bodies = {
  '/v1/chat/completions': chat, '/v1/completions': completion, '/v1/embeddings': embedding,
  '/v1/responses': responses, '/v1/rerank': rerank, '/v1/score': score, '/tokenize': tokenize,
  '/detokenize': detokenize, '/v1/audio/transcriptions': (model) => transcription(model),
};
// The routes that generate text (an output cap is reserved), and a short name of each route for
// the models its faults are sent to.
const GENERATING = ['/v1/chat/completions', '/v1/completions', '/v1/responses'];
const SHORT = { '/v1/chat/completions': 'chat', '/v1/completions': 'comp', '/v1/embeddings': 'emb',
                '/v1/responses': 'resp', '/v1/rerank': 'rerank', '/v1/score': 'score',
                '/tokenize': 'tok', '/detokenize': 'detok', '/v1/audio/transcriptions': 'audio' };

// A concrete path for a template ({name}: a key or a tenant that exists).
const concrete = (template) => template.replace('/keys/{name}', '/keys/full').replace('/tenants/{name}', '/tenants/t1');
const portOf = (url) => Number(new URL(url).port);

// A request head that is never finished: the gateway's header_timeout answers it.
function unfinishedHead(port, method, p) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let data = '';
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write(`${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: `));
    sock.on('data', (d) => { data += d; });
    sock.on('error', reject);
    sock.on('close', () => {
      const [head, ...rest] = data.split('\r\n\r\n');
      const lines = head.split('\r\n');
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
      const text = rest.join('\r\n\r\n');
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      resolve({ status: m ? Number(m[1]) : 0, headers, text, json });
    });
  });
}

describe('docs/api/openapi.yaml', () => {
  test('passes @redocly/cli lint (recommended rules) with no warning', () => {
    const r = spawnSync(path.join(REPO_ROOT, 'tests/api/node_modules/.bin/redocly'),
                        ['lint', '--format', 'stylish', SPEC_PATH],
                        { encoding: 'utf8', timeout: 60000, env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } });
    const out = `${r.stdout}${r.stderr}`;
    assert.equal(r.status, 0, out);
    assert.match(out, /Your API description is valid/, out);
    // (Its Node.js deprecation banner says "warning" too: the count is what matters.)
    assert.doesNotMatch(out, /You have \d+ warnings?/, out);
  });

  test('holds every route and error code the source serves', () => {
    const inventory = sourceInventory();
    assert.equal(inventory.routes.length, 28, inventory.routes.join('\n'));
    assert.deepEqual(missingFromSpec(spec, inventory), []);
    // Nor does the spec invent operations the source does not serve.
    assert.deepEqual(operations(spec).map((o) => o.key).filter((k) => !inventory.routes.includes(k)), []);
  });

  describe('against live gateways', () => {
    let mock;
    let gw;
    let config;
    before(async () => {
      const faultModels = [...Object.values(SHORT).flatMap((r) => [`f500-${r}`, `hang-${r}`]), 'hold', 'trunc'];
      mock = await startMock({ name: 'mock-openapi', models: ['m', 'other', 'priced', ...faultModels] });
      const dead = await freePort();  // nothing listens there
      config = {
        server: { max_body_bytes: MAX_BODY, max_header_bytes: MAX_HEADER, header_timeout: '1s' },
        models: [
          { name: 'm', aliases: ['m-alias'], backends: [mock.url] },
          { name: 'other', backends: [mock.url] },
          { name: 'priced', backends: [mock.url], prices: { input: 1, output: 2 } },
          { name: 'dead', backends: [`http://127.0.0.1:${dead}`], timeout: '1s' },
          // One model per fault: a fault may take its backend out of rotation for a while.
          ...faultModels.map((name) => ({ name, backends: [mock.url], timeout: '1s' })),
        ],
        tenants: [{ name: 't1', limits: [{ tokens: 1000000, per: '1m' }] }],
        api_keys: [
          { name: 'full', key: KEY, tenant: 't1', limits: [{ tokens: 100000, per: '1m' }, { requests: 1000, per: '1m' }] },
          { name: 'limited', key: LIMITED, models: ['m'] },
          { name: 'tiny', key: TINY, limits: [{ tokens: 60, per: '1h' }] },
          { name: 'once', key: ONCE, limits: [{ requests: 1, per: '1h' }] },
          { name: 'single', key: SINGLE, limits: [{ concurrent: 1 }] },
          { name: 'spender', key: SPENDER, limits: [{ spend: '0.0001', per: '1h' }] },
        ],
      };
      gw = await startGateway(config, { name: 'gw-openapi' });
      // The admin listener's header timeout is 10 s: its 408s are waited for while the other
      // tests run.
      unfinished = probeTimeouts('admin');
    });

    let unfinished;
    const probeTimeouts = (listener) => operations(spec).filter((op) => op.listener === listener).map(async (op) => {
      const p = concrete(op.path);
      const port = listener === 'data' ? gw.port : portOf(gw.adminUrl);
      return [op, p, await unfinishedHead(port, op.method.toUpperCase(), p)];
    });

    test('inference: 200 plain and streamed, with the rate-limit headers', async () => {
      for (const [route, make] of Object.entries(bodies)) {
        const r = await call(gw, 'data', 'POST', route, { key: KEY, body: make('m-alias', GENERATING.includes(route) ? { max_tokens: 4 } : {}), want: 200 });
        // /tokenize and /detokenize cost no tokens: no token headers.
        assert.equal(r.headers['x-ratelimit-limit-tokens'], route.endsWith('tokenize') ? undefined : '100000');
        assert.equal(r.headers['x-ratelimit-limit-requests'], '1000');
      }
      for (const route of GENERATING) {
        const make = bodies[route];
        const r = await call(gw, 'data', 'POST', route, {
          key: KEY, body: make('m', { max_tokens: 4, stream: true, stream_options: { include_usage: true } }), want: 200 });
        assert.match(r.headers['content-type'], /^text\/event-stream/);
        assert.match(r.text, /"usage":\{/);
      }
      // A stream the backend breaks off ends with an error event (StreamError), then [DONE].
      const t = await call(gw, 'data', 'POST', '/v1/chat/completions', {
        key: KEY, headers: { 'x-mock-fault': 'truncate-stream' }, body: chat('trunc', { max_tokens: 8, stream: true }), want: 200 });
      assert.match(t.text, /"code":"backend_error"/);
      const models = await call(gw, 'data', 'GET', '/v1/models', { key: LIMITED, want: 200 });
      assert.deepEqual(models.json.data.map((d) => d.id), ['m']);
    });

    test('inference: every refusal before the backend', async () => {
      for (const route of Object.keys(bodies)) {
        const make = bodies[route];
        await call(gw, 'data', 'POST', route, { body: make('m'), want: '401 invalid_api_key' });
        const noModel = route === '/v1/audio/transcriptions' ? transcription(undefined)
          : { input: 'x', prompt: 'x', messages: [{ role: 'user', content: 'x' }] };
        const bad = await call(gw, 'data', 'POST', route, { key: KEY, body: noModel, want: '400 invalid_request' });
        assert.equal(bad.json.error.param, 'model');
        await call(gw, 'data', 'POST', route, { key: KEY, body: make('nope'), want: '404 model_not_found' });
        await call(gw, 'data', 'POST', route, { key: LIMITED, body: make('other'), want: '403 model_not_allowed' });
      }
      await call(gw, 'data', 'GET', '/v1/models', { key: 'sk-nobody', want: '401 invalid_api_key' });
      await call(gw, 'data', 'GET', '/v1/chat/completions', { key: KEY, want: '405 method_not_allowed' });
      await call(gw, 'data', 'DELETE', '/v1/models', { key: KEY, want: '405 method_not_allowed' });
      await call(gw, 'data', 'GET', '/v2/anything', { key: KEY, want: '404 not_found' });
      // Limits: a reservation larger than the limit can ever grant; tokens; requests.
      for (const route of GENERATING) {
        const r = await call(gw, 'data', 'POST', route, { key: TINY, body: bodies[route]('m', { max_tokens: 100 }), want: '400 tokens_exceed_limit' });
        assert.equal(r.headers['x-ratelimit-limit-tokens'], '60');
      }
      await call(gw, 'data', 'POST', '/v1/chat/completions', { key: TINY, body: chat('m', { max_tokens: 40 }), want: 200 });
      for (const route of GENERATING) {
        const r = await call(gw, 'data', 'POST', route, { key: TINY, body: bodies[route]('m', { max_tokens: 40 }), want: '429 rate_limit_exceeded' });
        assert.equal(r.json.error.type, 'tokens');
      }
      // Spend (priced per million tokens: input 1, output 2): a price above the limit, then the
      // limit spent.
      const tooDear = await call(gw, 'data', 'POST', '/v1/chat/completions', { key: SPENDER, body: chat('priced', { max_tokens: 100 }), want: '400 spend_exceeds_limit' });
      assert.equal(tooDear.headers['x-ratelimit-limit-spend'], '0.0001');
      const paid = await call(gw, 'data', 'POST', '/v1/chat/completions', { key: SPENDER, body: chat('priced', { max_tokens: 40 }), want: 200 });
      assert.match(paid.headers['x-ratelimit-remaining-spend'], /^0\.0000\d+$/);
      const broke = await call(gw, 'data', 'POST', '/v1/chat/completions', { key: SPENDER, body: chat('priced', { max_tokens: 40 }), want: '429 rate_limit_exceeded' });
      assert.equal(broke.json.error.type, 'spend');
      // What costs no tokens is not refused for want of them.
      await call(gw, 'data', 'POST', '/tokenize', { key: TINY, body: tokenize('m'), want: 200 });
      await call(gw, 'data', 'POST', '/v1/embeddings', { key: ONCE, body: embedding('m'), want: 200 });
      for (const route of Object.keys(bodies)) {
        const r = await call(gw, 'data', 'POST', route, { key: ONCE, body: bodies[route]('m'), want: '429 rate_limit_exceeded' });
        assert.equal(r.json.error.type, 'requests');
        assert.equal(r.headers['x-ratelimit-remaining-requests'], '0');
      }
    });

    test('inference: backend failures (502, 503, 504) and concurrency (429)', async () => {
      const routes = Object.entries(bodies).map(([route]) => [SHORT[route], route]);
      // The hung requests run together: one model timeout (1 s) for all, the concurrency
      // refusal made while `single`'s slot is held by one of them.
      const hung = routes.map(([short, route]) => call(gw, 'data', 'POST', route, {
        key: KEY, headers: { 'x-mock-fault': 'hang' }, body: bodies[route](`hang-${short}`), want: '504 backend_timeout' }));
      const held = call(gw, 'data', 'POST', '/v1/chat/completions', {
        key: SINGLE, headers: { 'x-mock-fault': 'hang' }, body: chat('hold'), want: '504 backend_timeout' });
      assert.ok(await pollUntil(async () => (await gw.metric('trl_inflight_requests', { model: 'hold' })) >= 1));
      for (const route of Object.values(Object.fromEntries(routes))) {
        const r = await call(gw, 'data', 'POST', route, { key: SINGLE, body: bodies[route]('m'), want: '429 rate_limit_exceeded' });
        assert.equal(r.json.error.type, 'concurrency');
      }
      for (const [short, route] of routes) {
        await call(gw, 'data', 'POST', route, { key: KEY, headers: { 'x-mock-fault': 'http500' }, body: bodies[route](`f500-${short}`), want: '502 backend_error' });
      }
      // A backend nobody listens on: refused connections take it out of rotation, then 503.
      for (const route of Object.values(Object.fromEntries(routes))) {
        const r = await pollUntil(async () => {
          const x = await call(gw, 'data', 'POST', route, { key: KEY, body: bodies[route]('dead') });
          return x.status === 503 ? x : null;
        });
        assert.equal(r?.json.error.code, 'model_unavailable');
      }
      await Promise.all([...hung, held]);
    });

    test('inference: key_expired', async () => {
      const made = await admin(gw, 'POST', '/admin/v1/keys', { body: { name: 'old', expires_at: '2000-01-01T00:00:00Z' }, want: 201 });
      for (const route of Object.keys(bodies)) {
        const r = await pollUntil(async () => {
          const x = await call(gw, 'data', 'POST', route, { key: made.json.key, body: bodies[route]('m') });
          return x.json?.error?.code === 'key_expired' ? x : null;
        });
        assert.equal(r?.status, 401);
      }
      await call(gw, 'data', 'GET', '/v1/models', { key: made.json.key, want: '401 key_expired' });
    });

    test('transport refusals on every operation: 431, 413, 408', async () => {
      const ports = { data: gw.port, admin: portOf(gw.adminUrl) };
      const bounds = { data: [MAX_HEADER, MAX_BODY], admin: [ADMIN_MAX_HEADER, ADMIN_MAX_BODY] };
      for (const op of operations(spec)) {
        const p = concrete(op.path);
        const m = op.method.toUpperCase();
        const [maxHeader, maxBody] = bounds[op.listener];
        const big = `x-big: ${'a'.repeat(maxHeader)}`;
        const r431 = await rawHttp(ports[op.listener], `${m} ${p} HTTP/1.1\r\nHost: x\r\n${big}\r\nContent-Length: 0\r\n\r\n`);
        record(op.listener, m, p, r431, '431 request_header_fields_too_large');
        if (op.statuses.includes('413')) {
          // Refused on its Content-Length, before any of the body is read (none is sent).
          const r413 = await rawHttp(ports[op.listener], `${m} ${p} HTTP/1.1\r\nHost: x\r\n` +
                                     `Content-Type: application/json\r\nContent-Length: ${maxBody + 1}\r\n\r\n`);
          record(op.listener, m, p, r413, '413 request_too_large');
        }
      }
      const timedOut = await Promise.all([...unfinished, ...probeTimeouts('data')]);
      for (const [op, p, r] of timedOut) record(op.listener, op.method.toUpperCase(), p, r, '408 request_timeout');
    });

    test('admin: health, readiness, metrics, models, reload', async () => {
      await call(gw, 'admin', 'GET', '/healthz', { want: 200 });
      await call(gw, 'admin', 'GET', '/readyz', { want: 200 });
      await call(gw, 'admin', 'GET', '/metrics', { want: 200 });
      await call(gw, 'admin', 'GET', '/nope', { want: '404 not_found' });
      await call(gw, 'admin', 'POST', '/healthz', { want: '405 method_not_allowed' });
      await call(gw, 'admin', 'DELETE', '/readyz', { want: '405 method_not_allowed' });
      await call(gw, 'admin', 'PUT', '/metrics', { want: '405 method_not_allowed' });
      const models = await admin(gw, 'GET', '/admin/v1/models', { want: 200 });
      assert.deepEqual(models.json.data[0].aliases, ['m-alias']);
      await admin(gw, 'POST', '/admin/v1/models', { want: '405 method_not_allowed' });
      await admin(gw, 'POST', '/admin/v1/reload?dry_run=true', { want: 200 });
      await admin(gw, 'POST', '/admin/v1/reload', { want: 200 });
      await admin(gw, 'GET', '/admin/v1/reload', { want: '405 method_not_allowed' });
      const dry = await admin(gw, 'POST', '/admin/v1/reload?dry_run=maybe', { want: '400 invalid_request' });
      assert.equal(dry.json.error.param, 'dry_run');
      gw.writeConfig({ ...config, bogus_field: 1 });
      const bad = await admin(gw, 'POST', '/admin/v1/reload', { want: 422 });
      assert.equal(bad.json.error.code, 'invalid_config');
      gw.writeConfig(config);
      await admin(gw, 'POST', '/admin/v1/reload', { want: 200 });
    });

    test('admin: every /admin/v1 operation refuses a missing token (401) and an unknown parameter (400)', async () => {
      for (const op of operations(spec).filter((o) => o.path.startsWith('/admin/v1'))) {
        const p = concrete(op.path);
        await call(gw, 'admin', op.method.toUpperCase(), p, { want: '401 invalid_admin_token' });
        await call(gw, 'admin', op.method.toUpperCase(), p, { key: KEY, want: '401 invalid_admin_token' });
        const r = await admin(gw, op.method.toUpperCase(), `${p}?bogus=1`, { want: '400 invalid_request' });
        assert.equal(r.json.error.param, 'bogus');
      }
    });

    test('admin: keys, every route and answer', async () => {
      await admin(gw, 'GET', '/admin/v1/keys', { want: 200 });
      await admin(gw, 'PUT', '/admin/v1/keys', { want: '405 method_not_allowed' });
      const made = await admin(gw, 'POST', '/admin/v1/keys', { body: { name: 'api1', models: ['m-alias'], limits: [{ tokens: 500, per: '1m' }] }, want: 201 });
      assert.deepEqual(made.json.models, ['m']);
      await admin(gw, 'POST', '/admin/v1/keys', { body: { name: 'api1' }, want: '409 key_exists' });
      await admin(gw, 'POST', '/admin/v1/keys', { body: { name: 'full' }, want: '409 key_exists' });
      await admin(gw, 'POST', '/admin/v1/keys', { body: { name: 'x', colour: 'red' }, want: '400 invalid_request' });
      await admin(gw, 'GET', '/admin/v1/keys/api1', { want: 200 });
      await admin(gw, 'GET', '/admin/v1/keys/full', { want: 200 });
      await admin(gw, 'GET', '/admin/v1/keys/nope', { want: '404 key_not_found' });
      const badName = await admin(gw, 'GET', '/admin/v1/keys/.hidden', { want: '400 invalid_request' });
      assert.equal(badName.json.error.param, 'name');
      await admin(gw, 'POST', '/admin/v1/keys/api1', { want: '405 method_not_allowed' });
      await admin(gw, 'GET', '/admin/v1/keys/api1/rename', { want: '404 not_found' });
      await admin(gw, 'PATCH', '/admin/v1/keys/api1', { body: { tenant: 't1', expires_at: '2099-01-01T00:00:00Z' }, want: 200 });
      await admin(gw, 'PATCH', '/admin/v1/keys/api1', { body: {}, want: '400 invalid_request' });
      await admin(gw, 'PATCH', '/admin/v1/keys/nope', { body: { tenant: null }, want: '404 key_not_found' });
      await admin(gw, 'PATCH', '/admin/v1/keys/full', { body: { tenant: null }, want: '409 key_managed_by_config' });
      const limits = await admin(gw, 'GET', '/admin/v1/keys/api1/limits', { want: 200 });
      assert.equal(limits.json.tenant.name, 't1');
      await admin(gw, 'GET', '/admin/v1/keys/single/limits', { want: 200 });
      await admin(gw, 'GET', '/admin/v1/keys/nope/limits', { want: '404 key_not_found' });
      await admin(gw, 'PUT', '/admin/v1/keys/api1/limits', { body: { limits: [{ requests: 5, per: '1m', reset: 'calendar' }, { concurrent: 2 }] }, want: 200 });
      await admin(gw, 'PUT', '/admin/v1/keys/api1/limits', { body: { limits: 5 }, want: '400 invalid_request' });
      await admin(gw, 'PUT', '/admin/v1/keys/nope/limits', { body: { limits: [] }, want: '404 key_not_found' });
      await admin(gw, 'PUT', '/admin/v1/keys/full/limits', { body: { limits: [] }, want: '409 key_managed_by_config' });
      await admin(gw, 'POST', '/admin/v1/keys/api1/reset', { want: 200 });
      await admin(gw, 'POST', '/admin/v1/keys/nope/reset', { want: '404 key_not_found' });
      const rotated = await admin(gw, 'POST', '/admin/v1/keys/api1/rotate', { body: { grace_period: '1h' }, want: 200 });
      assert.notEqual(rotated.json.key, made.json.key);
      assert.ok(rotated.json.previous_key_expires_at);
      await admin(gw, 'POST', '/admin/v1/keys/api1/rotate', { body: { grace_period: 'soon' }, want: '400 invalid_request' });
      await admin(gw, 'POST', '/admin/v1/keys/nope/rotate', { want: '404 key_not_found' });
      await admin(gw, 'POST', '/admin/v1/keys/full/rotate', { want: '409 key_managed_by_config' });
      await admin(gw, 'DELETE', '/admin/v1/keys/full', { want: '409 key_managed_by_config' });
      await admin(gw, 'DELETE', '/admin/v1/keys/api1', { want: 200 });
      await admin(gw, 'DELETE', '/admin/v1/keys/api1', { want: '404 key_not_found' });
    });

    test('admin: tenants and usage (JSON and CSV)', async () => {
      await admin(gw, 'GET', '/admin/v1/tenants', { want: 200 });
      await admin(gw, 'POST', '/admin/v1/tenants', { want: '405 method_not_allowed' });
      await admin(gw, 'GET', '/admin/v1/tenants/t1', { want: 200 });
      await admin(gw, 'GET', '/admin/v1/tenants/nope', { want: '404 tenant_not_found' });
      await admin(gw, 'DELETE', '/admin/v1/tenants/t1', { want: '405 method_not_allowed' });
      await admin(gw, 'POST', '/admin/v1/tenants/t1/reset', { want: 200 });
      await admin(gw, 'POST', '/admin/v1/tenants/nope/reset', { want: '404 tenant_not_found' });
      await admin(gw, 'GET', '/admin/v1/tenants/t1/keys', { want: '404 not_found' });
      const json = await admin(gw, 'GET', '/admin/v1/usage?group_by=key,model&granularity=day', { want: 200 });
      assert.ok(json.json.total.requests > 0, json.text);
      const csv = await admin(gw, 'GET', '/admin/v1/usage?format=csv&model=m-alias', { want: 200 });
      assert.match(csv.text, /\ntotal,/);
      const bad = await admin(gw, 'GET', '/admin/v1/usage?granularity=week', { want: '400 invalid_request' });
      assert.equal(bad.json.error.param, 'granularity');
      await admin(gw, 'DELETE', '/admin/v1/usage', { want: '405 method_not_allowed' });
    });

    test('identities named by a header: 401 invalid_identity, 503 identity_limit_reached', async () => {
      const hgw = await startGateway({
        identity: { source: 'header:x-user', max_identities: 1 },
        models: [{ name: 'm', backends: [mock.url] }],
        default_limits: [{ tokens: 100000, per: '1m' }],
      }, { name: 'gw-openapi-identity' });
      for (const route of Object.keys(bodies)) {
        await call(hgw, 'data', 'POST', route, { body: bodies[route]('m'), want: '401 invalid_identity' });
      }
      await call(hgw, 'data', 'GET', '/v1/models', { headers: { 'x-user': 'alice' }, want: 200 });
      for (const route of Object.keys(bodies)) {
        await call(hgw, 'data', 'POST', route, { headers: { 'x-user': 'bob' }, body: bodies[route]('m'), want: '503 identity_limit_reached' });
      }
      await call(hgw, 'data', 'GET', '/v1/models', { headers: { 'x-user': 'carol' }, want: '503 identity_limit_reached' });
      await hgw.stop();
    });

    test('a store that stops answering (Redis): every 503', async () => {
      const redis = await startRedis({ name: 'redis-openapi' });
      const rgw = await startGateway({
        ...config,
        store: { backend: 'redis', redis: { url: redis.url, timeout: '50ms' }, on_store_error: 'deny', key_sync_max_stale: '500ms' },
      }, { name: 'gw-openapi-redis' });
      const made = await admin(rgw, 'POST', '/admin/v1/keys', { body: { name: 'apikey', limits: [{ tokens: 1000, per: '1m' }] }, want: 201 });
      assert.ok(await pollUntil(async () => (await rgw.post('chat/completions', chat('m', { max_tokens: 4 }), { key: made.json.key })).status === 200));
      await redis.kill();
      for (const route of Object.keys(bodies)) {
        await call(rgw, 'data', 'POST', route, { key: KEY, body: bodies[route]('m'), want: '503 model_unavailable' });
      }
      const stale = await pollUntil(async () => {
        const x = await call(rgw, 'data', 'GET', '/v1/models', { key: made.json.key });
        return x.status === 503 ? x : null;
      });
      assert.equal(stale?.json.error.code, 'key_store_unavailable');
      for (const route of Object.keys(bodies)) {
        await call(rgw, 'data', 'POST', route, { key: made.json.key, body: bodies[route]('m'), want: '503 key_store_unavailable' });
      }
      const notReady = await pollUntil(async () => {
        const x = await call(rgw, 'admin', 'GET', '/readyz');
        return x.status === 503 ? x : null;
      });
      assert.equal(notReady?.json.status, 'not ready');
      const unavailable = [
        ['POST', '/admin/v1/keys', { name: 'another' }], ['PATCH', '/admin/v1/keys/apikey', { models: null }],
        ['DELETE', '/admin/v1/keys/apikey'], ['GET', '/admin/v1/keys/apikey/limits'],
        ['PUT', '/admin/v1/keys/apikey/limits', { limits: [] }], ['POST', '/admin/v1/keys/apikey/reset'],
        ['POST', '/admin/v1/keys/apikey/rotate'], ['GET', '/admin/v1/tenants'], ['GET', '/admin/v1/tenants/t1'],
        ['POST', '/admin/v1/tenants/t1/reset'], ['GET', '/admin/v1/usage'],
      ];
      for (const [method, p, body] of unavailable) {
        await admin(rgw, method, p, { body, want: '503 store_unavailable' });
      }
      // Redis back, so that the gateway's shutdown flush lands and it exits 0 (cleanup checks).
      await redis.restart();
      await waitReady(rgw);
      await rgw.stop(20000);
    });

    test('every documented status and error code was seen, but the unprovokable ones', () => {
      assert.deepEqual(checker.unexercised(unprovokableStatuses()), []);
      assert.deepEqual(checker.unexercisedCodes(Object.keys(UNPROVOKABLE_CODES)), []);
    });

    describe('planted mismatches are reported by name', () => {
      const recheck = (mutate, filter = () => true) => {
        const copy = structuredClone(spec);
        mutate(copy);
        const c = new SpecChecker(copy);
        return { copy, problems: [...new Set(seen.filter(filter).flatMap((x) => c.check(x)))] };
      };

      test('a header removed', () => {
        const { problems } = recheck((s) => { delete s.components.responses.RateLimited.headers['retry-after-ms']; },
                                     (x) => x.status === 429);
        assert.ok(problems.length > 0);
        assert.ok(problems.every((p) => / 429: header retry-after-ms is not documented$/.test(p)), problems.join('\n'));
        const req = recheck((s) => { s.components.headers.RequestId.schema.pattern = '^id-'; },
                            (x) => x.listener === 'admin' && x.status === 200);
        assert.ok(req.problems.some((p) => /header x-request-id must match pattern/.test(p)), req.problems.join('\n'));
      });

      test('an error code removed', () => {
        const { copy, problems } = recheck((s) => {
          s.components.responses.KeyNotFound.content['application/json']['x-codes'] = [];
          s.components.schemas.ErrorCode.enum = s.components.schemas.ErrorCode.enum.filter((c) => c !== 'key_not_found');
        });
        assert.ok(problems.includes('GET /admin/v1/keys/{name} 404: error code key_not_found is not documented (none)'), problems.join('\n'));
        assert.ok(problems.some((p) => /^DELETE \/admin\/v1\/keys\/\{name\} 404: body\/error\/code must be equal to one of the allowed values/.test(p)));
        assert.deepEqual(missingFromSpec(copy), ['error code key_not_found is in no response of the spec',
                                                 'error code key_not_found is not in ErrorCode']);
      });

      test('a route removed', () => {
        const { copy, problems } = recheck((s) => { delete s.paths['/admin/v1/tenants/{name}/reset']; },
                                           (x) => x.path === '/admin/v1/tenants/t1/reset');
        assert.deepEqual(missingFromSpec(copy), ['route POST /admin/v1/tenants/{name}/reset is not in the spec']);
        assert.ok(problems.includes('admin unknown path 200: no operation; the spec answers it 404 (UnknownPath)'), problems.join('\n'));
      });

      test('a status removed, and one the gateway never answers added', () => {
        const { problems } = recheck((s) => { delete s.paths['/v1/chat/completions'].post.responses['413']; });
        assert.deepEqual(problems, ['POST /v1/chat/completions: status 413 is not documented']);
        const copy = structuredClone(spec);
        copy.paths['/admin/v1/keys'].get.responses['418'] = { description: 'teapot' };
        const c = new SpecChecker(copy);
        for (const x of seen) c.check(x);
        assert.deepEqual(c.unexercised(unprovokableStatuses()), ['GET /admin/v1/keys 418']);
      });

      test('a body field of the wrong shape', () => {
        const { problems } = recheck((s) => { s.components.schemas.Reset.properties.reset = { type: 'string' }; },
                                     (x) => x.path.endsWith('/reset') && x.status === 200);
        assert.ok(problems.length > 0 && problems.every((p) => /200: body\/reset must be string$/.test(p)), problems.join('\n'));
      });
    });
  });
});
