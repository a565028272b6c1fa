// The access log: one JSON line per request, with who asked, what it was charged and how long it
// took, and never a key or a prompt; and W3C trace context passed to the backend when valid.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  chatBody, chatEstimate, cleanup, pollUntil, readSse, startGateway, startMock,
} from './lib/harness.mjs';

after(cleanup);

const KEY = 'sk-access-log-secret-key';
const TINY = 'sk-access-log-tiny';
const PROMPT = 'zebra-quartz prompt text';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('access log', () => {
  let mock;
  let gw;
  let file;
  const sent = {};  // what each request was, by its x-request-id
  let lines;        // the log's lines, by request_id

  before(async () => {
    mock = await startMock({ name: 'mock-access', models: ['m'] });
    gw = await startGateway({
      models: [{ name: 'm', backends: [mock.url] }],
      tenants: [{ name: 'acme', limits: [] }],
      api_keys: [{ name: 'team-a', key: KEY, tenant: 'acme' },
                 { name: 'tiny', key: TINY, limits: [{ requests: 1, per: '1h' }] }],
      access_log: { output: 'access.log' },  // relative: the gateway's working directory
    });
    file = path.join(gw.dir, 'access.log');

    const body = chatBody('m', PROMPT, { max_tokens: 4 });
    const ask = async (name, key, extra = {}, headers = {}) => {
      const r = await gw.post('chat/completions', { ...body, ...extra }, { key, headers });
      sent[name] = { id: r.headers.get('x-request-id'), r };
      return r;
    };
    await ask('traced', KEY, {}, { traceparent: TRACEPARENT, tracestate: 'vendor=1' });
    // Written while the gateway runs (a batch goes to the writer within 100 ms), not only at
    // the stop.
    assert.ok(await pollUntil(() => existsSync(file) &&
                              readFileSync(file, 'utf8').includes(sent.traced.id)),
              'the line did not reach the file while the gateway ran');
    await ask('bad-trace', KEY, {}, { traceparent: TRACEPARENT.toUpperCase(), tracestate: 'v=2' });
    await ask('no-key', 'sk-nobody');
    await ask('tiny', TINY);
    await ask('refused', TINY);
    await ask('failed', KEY, {}, { 'x-mock-fault': 'http500' });
    const s = await gw.send('chat/completions', { ...body, stream: true }, { key: KEY });
    sent.stream = { id: s.headers.get('x-request-id'), events: await readSse(s) };
    sent.estimate = body;
    // A clean stop writes every line still queued.
    await gw.stop();
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(KEY) && !text.includes(TINY), 'a key in the access log');
    assert.ok(!text.includes('zebra-quartz'), 'a prompt in the access log');
    lines = new Map(text.trimEnd().split('\n').map((l) => {
      const o = JSON.parse(l);
      return [o.request_id, o];
    }));
  });

  test('one line per request, in JSON, with the charge and the durations', () => {
    assert.equal(lines.size, 7);
    const traced = lines.get(sent.traced.id);
    const usage = sent.traced.r.json.usage;
    assert.deepEqual(
      { ...traced, time: undefined, client: undefined, backend: undefined, queue_us: undefined,
        ttft_us: undefined, total_us: undefined },
      { time: undefined, request_id: sent.traced.id, trace_id: TRACEPARENT.slice(3, 35),
        client: undefined, method: 'POST', path: '/v1/chat/completions', key: 'team-a',
        tenant: 'acme', model: 'm', backend: undefined, status: 200, error: null,
        backend_error: null, stream: false, reserved_tokens: chatEstimate(sent.estimate) + 4,
        prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens,
        cost_source: 'usage', wait: null, wait_us: null, queue_us: undefined, ttft_us: undefined,
        total_us: undefined });
    assert.match(traced.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(traced.client, '127.0.0.1');
    assert.equal(traced.backend, mock.url);
    assert.ok(traced.queue_us >= 0 && traced.queue_us <= traced.ttft_us &&
              traced.ttft_us <= traced.total_us, JSON.stringify(traced));

    const stream = lines.get(sent.stream.id);
    assert.equal(stream.stream, true);
    assert.equal(stream.status, 200);
    assert.equal(stream.completion_tokens, 4);
    assert.equal(stream.cost_source, 'usage');
  });

  test('refusals and failures say why', () => {
    const pick = (name) => {
      const l = lines.get(sent[name].id);
      return [l.status, l.error, l.key, l.backend_error, l.prompt_tokens];
    };
    assert.deepEqual(pick('no-key'), [401, 'invalid_api_key', null, null, null]);
    assert.deepEqual(pick('tiny'), [200, null, 'tiny', null, sent.tiny.r.json.usage.prompt_tokens]);
    assert.deepEqual(pick('refused'), [429, 'rate_limit_exceeded', 'tiny', null, null]);
    assert.deepEqual(pick('failed'), [502, 'backend_error', 'team-a', 'http500', 0]);
    for (const name of ['no-key', 'refused']) {
      assert.ok(lines.get(sent[name].id).total_us >= 0, name);
    }
  });

  test('a valid traceparent reaches the backend with its tracestate; an invalid one does not',
       async () => {
    const seen = await mock.requests();
    const byId = (id) => seen.find((r) => r.headers['x-request-id'] === id);
    const traced = byId(sent.traced.id);
    assert.equal(traced.headers.traceparent, TRACEPARENT);
    assert.equal(traced.headers.tracestate, 'vendor=1');
    const bad = byId(sent['bad-trace'].id);
    assert.ok(bad, 'the request did not reach the backend');
    assert.equal(bad.headers.traceparent, undefined);
    assert.equal(bad.headers.tracestate, undefined);
    assert.equal(lines.get(sent['bad-trace'].id).trace_id, null);
  });
});
