// Token rate limiting as a client sees it (docs/limits.md): reservation at admission, settlement
// on the backend's real usage, OpenAI's x-ratelimit-* headers and 429s, concurrency slots, and
// saturating runs (embedded store, Redis, Redis Cluster) whose admitted tokens must match the
// budget's arithmetic.
//
// The 'limits' tests run on each store setup (harness STORES): the embedded store, and Redis
// shared by two instances, the requests of a test alternating between them (fleet.at(i)), so each
// instance judges what the other charged and settled.
//
// Budgets measured exactly use `per: 1d`, so refill during a test (about 0.01 token a second for
// 1000/1d) never moves a whole-unit header value.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import path from 'node:path';

import {
  STORES, chatBody, chatEstimate, cleanup, errorOf, mockText, parseResetDuration, pollUntil,
  rawHttp, relayedTokens, saturate, readSse, startFleet, startGateway, startMock, streamText,
  tempDir,
} from './lib/harness.mjs';

const DAY_MS = 86_400_000;
const MAX_BODY = 65536;

after(cleanup);

// The x-ratelimit-* headers as numbers (undefined when absent).
function rl(headers) {
  const num = (k) => (headers.get(k) === null ? undefined : Number(headers.get(k)));
  const dur = (k) => (headers.get(k) === null ? undefined : parseResetDuration(headers.get(k)));
  return {
    limitTokens: num('x-ratelimit-limit-tokens'),
    remainingTokens: num('x-ratelimit-remaining-tokens'),
    resetTokensMs: dur('x-ratelimit-reset-tokens'),
    limitRequests: num('x-ratelimit-limit-requests'),
    remainingRequests: num('x-ratelimit-remaining-requests'),
    resetRequestsMs: dur('x-ratelimit-reset-requests'),
  };
}

// A reset header, given how far the budget is from full (`deficit` units of a `capacity`-per-day
// budget) when `sinceMs` ago it was last exactly that far: refill since then only shortens it.
function assertReset(actualMs, deficit, capacity, sinceMs, what) {
  const full = deficit * (DAY_MS / capacity);
  assert.ok(actualMs <= full + 1 && actualMs >= full - sinceMs - 1000,
            `${what}: ${actualMs} ms, expected ${full} ms (less up to ${sinceMs.toFixed(0)} ms)`);
}

const CONC_LIMIT = 4;

let mock;  // fast answers
let slow;  // streams of 16 words at 10 words/s

before(async () => {
  [mock, slow] = await Promise.all([
    startMock({ name: 'mock-fast', models: ['m', 'm2'], threads: 2 }),
    startMock({ name: 'mock-slow', models: ['slowm'], tokensPerSecond: 10, threads: 2 }),
  ]);
});

for (const store of STORES) describe(`limits (${store})`, () => {
  let fleet;

  before(async () => {
    const config = {
      server: { max_body_bytes: MAX_BODY },
      models: [
        { name: 'm', backends: [mock.url] },
        { name: 'm2', backends: [mock.url] },
        { name: 'slowm', backends: [slow.url] },
      ],
      api_keys: [
        { name: 'hdr', key: 'sk-hdr', limits: [{ tokens: 1000, per: '1d' }, { requests: 10, per: '1d' }] },
        { name: 'retry', key: 'sk-retry', limits: [{ requests: 1, per: '2s' }] },
        // One concurrency key per test: slots one test leaves taken never fail the next.
        ...['conc', 'conc-hangup', 'conc-backend'].map((name) => (
          { name, key: `sk-${name}`, limits: [{ concurrent: CONC_LIMIT }] })),
        { name: 'usage', key: 'sk-usage', limits: [{ tokens: 100000, per: '1d' }] },
        { name: 'refuse', key: 'sk-refuse', models: ['m'],
          limits: [{ tokens: 1000, per: '1d' }, { requests: 100, per: '1d' }] },
      ],
    };
    fleet = await startFleet(store, config, { name: `gw-limits-${store}` });
  });

  // Each test measures from its own first request, so a gateway that crashed in an earlier test
  // is replaced rather than failing everything after it (cleanup() reports the crash).
  beforeEach(async () => {
    await fleet.revive();
  });

  // Settlement happens before the request is recorded (settle -> record), and a Redis settlement
  // goes out after the answer: once the instances show `n` finished requests of `key` with
  // `status` and none holds an unsettled reservation, they are all settled.
  async function settled(key, n, status = '200') {
    assert.ok(await fleet.settled({ key, requests: n, status }),
              `trl_requests_total{key="${key}",status="${status}"} never reached ${n} with ` +
              'every reservation settled');
  }

  test('headers on a success and on a 429 match the budget exactly', async () => {
    const body = chatBody('m', 'hello there world', { max_tokens: 5 });
    const cost = 6 + 5;  // mock-llm: 3 words + 3 for the message, then 5 words
    // The gateway's prompt estimate, by the approx counter's rule: 3 + 4 for the message + 5
    // (17 bytes: at least ceil(17 / 4)).
    const estimate = chatEstimate(body);
    const t0 = performance.now();

    const r1 = await fleet.at(0).post('chat/completions', body, { key: 'sk-hdr' });
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r1.json.usage.total_tokens, cost);
    const h1 = rl(r1.headers);
    assert.equal(h1.limitTokens, 1000);
    assert.equal(h1.remainingTokens, 1000 - (estimate + 5));
    assert.equal(h1.limitRequests, 10);
    assert.equal(h1.remainingRequests, 9);
    assertReset(h1.resetTokensMs, estimate + 5, 1000, performance.now() - t0, 'reset-tokens');
    assertReset(h1.resetRequestsMs, 1, 10, performance.now() - t0, 'reset-requests');
    await settled('hdr', 1);

    // Settled at the real cost: the next reservation starts from 1000 - 11.
    const t1 = performance.now();
    const r2 = await fleet.at(1).post('chat/completions', body, { key: 'sk-hdr' });
    assert.equal(r2.status, 200);
    const h2 = rl(r2.headers);
    assert.equal(h2.remainingTokens, 1000 - cost - (estimate + 5));
    assert.equal(h2.remainingRequests, 8);
    assertReset(h2.resetTokensMs, cost + estimate + 5, 1000, performance.now() - t1, 'reset-tokens');
    assertReset(h2.resetRequestsMs, 2, 10, performance.now() - t0, 'reset-requests');
    await settled('hdr', 2);

    // A reservation of exactly the capacity (1000) does not fit in the 978 left: 429.
    const t2 = performance.now();
    const big = chatBody('m', 'hello there world', { max_tokens: 1000 - estimate });
    const r3 = await fleet.at(2).post('chat/completions', big, { key: 'sk-hdr' });
    assert.equal(r3.status, 429, r3.text);
    const e = errorOf(r3.json, { type: 'tokens', code: 'rate_limit_exceeded' });
    assert.match(e.message, /978/, 'the message names the remaining amount');
    assert.match(e.message, /1000/, 'the message names the requested amount / the limit');
    const h3 = rl(r3.headers);
    assert.equal(h3.limitTokens, 1000);
    assert.equal(h3.remainingTokens, 1000 - 2 * cost);  // as it is now: nothing charged
    assert.equal(h3.limitRequests, 10);
    assert.equal(h3.remainingRequests, 8);               // all or nothing
    assertReset(h3.resetTokensMs, 2 * cost, 1000, performance.now() - t2, 'reset-tokens');
    const retryAfter = Number(r3.headers.get('retry-after'));
    const retryAfterMs = Number(r3.headers.get('retry-after-ms'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `retry-after ${retryAfter}`);
    // 22 tokens short at 1000 tokens/day.
    assertReset(retryAfterMs, 2 * cost, 1000, performance.now() - t2, 'retry-after-ms');
    assert.ok(retryAfter * 1000 >= retryAfterMs && retryAfter * 1000 - retryAfterMs < 1000,
              `retry-after ${retryAfter} s vs retry-after-ms ${retryAfterMs}`);
    await settled('hdr', 1, '429');
    assert.equal(await fleet.metric('trl_ratelimit_rejections_total', { key: 'hdr', limit: 'tokens' }),
                 1);

    // The refusal left no charge on either budget.
    const r4 = await fleet.at(3).post('chat/completions', body, { key: 'sk-hdr' });
    assert.equal(r4.status, 200);
    const h4 = rl(r4.headers);
    assert.equal(h4.remainingTokens, 1000 - 2 * cost - (estimate + 5));
    assert.equal(h4.remainingRequests, 7);
  });

  test('the openai client with default retries gets through a 429 by honouring retry-after',
       async () => {
    const gw = fleet.at(0);
    const client = gw.client('sk-retry', { maxRetries: undefined });  // the SDK's default: 2
    const first = await client.chat.completions.create(chatBody('m', 'first', { max_tokens: 2 }));
    assert.equal(first.choices[0].message.content, mockText(2));

    const raw = await fleet.at(1).post('chat/completions', chatBody('m', 'raw', { max_tokens: 2 }),
                                       { key: 'sk-retry' });
    const rawAt = performance.now();
    assert.equal(raw.status, 429);
    errorOf(raw.json, { type: 'requests', code: 'rate_limit_exceeded' });
    const waitMs = Number(raw.headers.get('retry-after-ms'));
    assert.ok(waitMs > 0 && waitMs <= 2000, `retry-after-ms ${waitMs}`);
    assert.ok(Number(raw.headers.get('retry-after')) >= 1);
    assert.equal(rl(raw.headers).remainingRequests, 0);
    assert.equal(rl(raw.headers).limitRequests, 1);

    const { data, response } = await client.chat.completions
        .create(chatBody('m', 'second', { max_tokens: 2 })).withResponse();
    const waited = performance.now() - rawAt;
    assert.equal(response.status, 200);
    assert.equal(data.choices[0].message.content, mockText(2));
    assert.ok(waited >= waitMs - 100, `the SDK retried after ${waited.toFixed(0)} ms`);
    await settled('retry', 2, '200');
    // Ours, and the SDK's first attempt; a retry that came back a hair early may add one more,
    // which the SDK's default of 2 retries absorbs.
    const refusals = await fleet.metric('trl_requests_total', { key: 'retry', status: '429' });
    assert.ok(refusals === 2 || refusals === 3, `${refusals} refusals`);
  });

  describe('concurrency', () => {
    let sent = 0;  // streams go to the instances in turn
    const body = chatBody('slowm', 'tell me a long story', { max_tokens: 16, stream: true });
    const stream = (key, { headers, signal } = {}) =>
      fleet.at(sent++).send('chat/completions', body, { key: `sk-${key}`, headers, signal });

    // True when none of the key's slots is in use: its live budget, from the admin API. (Probe
    // requests cannot tell: quick ones can all be admitted one after the other through a single
    // free slot.)
    async function slotsFree(key) {
      const r = await fleet.at(sent++).adminFetch(`/admin/v1/keys/${key}/limits`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.limits[0].concurrent, CONC_LIMIT);
      return r.json.limits[0].in_use === 0;
    }

    test(`{concurrent: ${CONC_LIMIT}}: 16 simultaneous streams -> exactly ${CONC_LIMIT} run, ` +
         '12 get 429 concurrency', async () => {
      const responses = await Promise.all(Array.from({ length: 16 }, () => stream('conc')));
      const admitted = responses.filter((r) => r.status === 200);
      const refused = responses.filter((r) => r.status === 429);
      assert.equal(admitted.length, CONC_LIMIT);
      assert.equal(refused.length, 16 - CONC_LIMIT);
      for (const r of refused) {
        const body = await r.json();
        errorOf(body, { type: 'concurrency', code: 'rate_limit_exceeded' });
        assert.ok(Number(r.headers.get('retry-after')) >= 1);
        assert.ok(Number(r.headers.get('retry-after-ms')) > 0);
        // Only a concurrency limit applies: no tokens/requests headers.
        assert.equal(r.headers.get('x-ratelimit-limit-tokens'), null);
        assert.equal(r.headers.get('x-ratelimit-limit-requests'), null);
      }
      // In flight at the backend (once the streams an earlier test hung up on are closed there).
      assert.ok(await pollUntil(async () => (await slow.stats()).open_streams === CONC_LIMIT),
                `open streams at the backend: ${(await slow.stats()).open_streams}`);
      const live = await fleet.at(0).adminFetch('/admin/v1/keys/conc/limits');
      assert.equal(live.json.limits[0].in_use, CONC_LIMIT);
      assert.equal(await slotsFree('conc'), false);
      assert.equal(await fleet.metric('trl_ratelimit_rejections_total',
                                      { key: 'conc', limit: 'concurrency' }), 16 - CONC_LIMIT);
      for (const events of await Promise.all(admitted.map((r) => readSse(r)))) {
        assert.equal(events.at(-1), '[DONE]');
        assert.equal(streamText(events), mockText(16));
      }
      await settled('conc', CONC_LIMIT);
      // Slots came back when the streams ended.
      assert.ok(await slotsFree('conc'), 'slots are free after the streams ended');
    });

    test('slots come back when the client hangs up', async () => {
      const ac = new AbortController();
      const rs = await Promise.all(Array.from({ length: CONC_LIMIT }, () =>
        stream('conc-hangup', { signal: ac.signal })));
      assert.deepEqual(rs.map((r) => r.status), Array(CONC_LIMIT).fill(200));
      const extra = await stream('conc-hangup');
      assert.equal(extra.status, 429);
      await extra.arrayBuffer();
      ac.abort();
      await Promise.allSettled(rs.map((r) => r.arrayBuffer()));
      assert.ok(await pollUntil(() => slotsFree('conc-hangup')),
                'slots still taken after the clients hung up');
    });

    test('slots come back when the backend dies mid-stream', async () => {
      const rs = await Promise.all(Array.from({ length: CONC_LIMIT }, () =>
        stream('conc-backend', { headers: { 'x-mock-fault': 'truncate-stream' } })));
      assert.deepEqual(rs.map((r) => r.status), Array(CONC_LIMIT).fill(200));
      for (const events of await Promise.all(rs.map((r) => readSse(r)))) {
        assert.ok(events.some((e) => e?.error?.code === 'backend_error'));
      }
      assert.ok(await pollUntil(() => slotsFree('conc-backend')),
                'slots still taken after the backend failed');
      // And after an HTTP 500 and a reset before any response (502 both; the reset takes the
      // backend out, so it comes last).
      for (const fault of ['http500', 'reset']) {
        const r = await fleet.at(sent++).post('chat/completions',
                                              chatBody('slowm', 'x', { max_tokens: 1 }),
                                              { key: 'sk-conc-backend',
                                                headers: { 'x-mock-fault': fault } });
        assert.equal(r.status, 502);
        assert.ok(await pollUntil(() => slotsFree('conc-backend')),
                  `slots still taken after a 502 (${fault})`);
      }
    });
  });

  test('streaming without include_usage: no usage chunk, settled at the backend\'s usage; ' +
       'no-usage is charged prompt + relayed tokens', async () => {
    const body = chatBody('m', 'count these four', { max_tokens: 8 });
    const cost = (3 + 3) + 8;
    const CAP = 100000;

    const estimate = chatEstimate(body);

    const r1 = await fleet.at(0).post('chat/completions', body, { key: 'sk-usage' });
    assert.equal(r1.status, 200);
    assert.equal(r1.json.usage.total_tokens, cost);
    assert.equal(rl(r1.headers).remainingTokens, CAP - (estimate + 8));
    await settled('usage', 1);

    const before = await mock.stats();
    const s = await fleet.at(1).send('chat/completions', { ...body, stream: true },
                                     { key: 'sk-usage' });
    assert.equal(s.status, 200);
    assert.equal(rl(s.headers).remainingTokens, CAP - cost - (estimate + 8));
    const events = await readSse(s);
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1);
    assert.ok(chunks.every((c) => !c.usage), 'a usage chunk reached a client that did not ask');
    assert.ok(chunks.every((c) => c.choices.length > 0), 'an empty-choices (usage) chunk leaked');
    assert.equal(streamText(chunks), mockText(8));
    await settled('usage', 2);
    // The gateway asked mock-llm for usage on the client's behalf.
    const afterStream = await mock.stats();
    assert.equal(afterStream.prompt_tokens_total - before.prompt_tokens_total, 6);
    assert.equal(afterStream.completion_tokens_total - before.completion_tokens_total, 8);

    // The stream was settled at mock-llm's usage, exactly.
    const r3 = await fleet.at(2).post('chat/completions', body, { key: 'sk-usage' });
    const rem3 = rl(r3.headers).remainingTokens;
    assert.equal(rem3, CAP - 2 * cost - (estimate + 8));
    await settled('usage', 3);

    // No usage from the backend: prompt estimate + the relayed output, never 0.
    const nu = await fleet.at(3).send('chat/completions', { ...body, stream: true },
                                      { key: 'sk-usage', headers: { 'x-mock-fault': 'no-usage' } });
    assert.equal(nu.status, 200);
    const remNu = rl(nu.headers).remainingTokens;
    assert.equal(remNu, CAP - 3 * cost - (estimate + 8));
    const nuEvents = await readSse(nu);
    assert.equal(streamText(nuEvents), mockText(8));
    await settled('usage', 4);
    const r5 = await fleet.at(4).post('chat/completions', body, { key: 'sk-usage' });
    // remNu = B - reservation and r5's remaining = B - charged - reservation.
    const charged = remNu - rl(r5.headers).remainingTokens;
    // The gateway's count of each relayed event ("w1", " w2"...: 2 tokens each by the approx
    // counter's rule, 16 for the 8 words).
    assert.equal(relayedTokens(nuEvents), 16);
    assert.equal(charged, estimate + relayedTokens(nuEvents),
                 `no-usage stream charged ${charged} (prompt estimate ${estimate}, 8 words relayed)`);
  });

  test('refused 400/401/403/404/413 requests leave every budget unchanged', async () => {
    const good = chatBody('m', 'hello there world', { max_tokens: 5 });
    const r1 = await fleet.at(0).post('chat/completions', good, { key: 'sk-refuse' });
    assert.equal(r1.status, 200);
    const cost = r1.json.usage.total_tokens;
    const h1 = rl(r1.headers);
    await settled('refuse', 1);
    const gw = fleet.at(1);

    const refusals = [
      [400, await gw.post('chat/completions', '{"model": "m", "messa', { key: 'sk-refuse' })],
      [400, await gw.post('chat/completions', { messages: good.messages }, { key: 'sk-refuse' })],
      [400, await gw.post('chat/completions', chatBody('m', 'hi', { max_tokens: 5000 }),
                          { key: 'sk-refuse' })],
      [401, await gw.post('chat/completions', good, { key: 'sk-refuse-wrong' })],
      [403, await gw.post('chat/completions', chatBody('m2'), { key: 'sk-refuse' })],
      [404, await gw.post('chat/completions', chatBody('nope'), { key: 'sk-refuse' })],
      // Only the head goes out: a gateway that waited for the body would never answer.
      [413, await rawHttp(gw.port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n' +
          `Authorization: Bearer sk-refuse\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${MAX_BODY + 10}\r\n\r\n`)],
    ];
    for (const [status, r] of refusals) {
      assert.equal(r.status, status, r.text);
      errorOf(r.json);
    }
    errorOf(refusals[2][1].json, { code: 'tokens_exceed_limit' });
    errorOf(refusals[6][1].json, { type: 'invalid_request_error', code: 'request_too_large' });

    const r2 = await fleet.at(2).post('chat/completions', good, { key: 'sk-refuse' });
    assert.equal(r2.status, 200);
    const h2 = rl(r2.headers);
    assert.equal(h2.remainingTokens, h1.remainingTokens - cost);
    assert.equal(h2.remainingRequests, h1.remainingRequests - 1);
  });
});

describe('restart', () => {
  test('a daily budget survives a restart (embedded store, same data_dir)', async (t) => {
    const msToMidnight = () => DAY_MS - (Date.now() % DAY_MS);
    if (msToMidnight() < 30_000) {
      t.skip('too close to 00:00 UTC, when the daily window resets');
      return;
    }
    const mock = await startMock({ name: 'mock-restart', models: ['m'] });
    const dataDir = path.join(tempDir(), 'data');
    const config = {
      store: { backend: 'memory', data_dir: dataDir },
      models: [{ name: 'm', backends: [mock.url] }],
      api_keys: [{ name: 'daily', key: 'sk-daily',
                   limits: [{ tokens: 1000, per: '1d', reset: 'calendar' }] }],
    };
    const body = chatBody('m', 'hello there world', { max_tokens: 5 });
    const cost = 6 + 5;
    const reservation = chatEstimate(body) + 5;

    const first = await startGateway(config, { name: 'gateway-1' });
    const before = msToMidnight();
    const r1 = await first.post('chat/completions', body, { key: 'sk-daily' });
    const after = msToMidnight();
    assert.equal(r1.status, 200);
    assert.equal(rl(r1.headers).remainingTokens, 1000 - reservation);
    // A calendar window is full again at the next 00:00 UTC, as seen at the moment the gateway
    // judged the request (whole milliseconds, rounded up).
    const reset = rl(r1.headers).resetTokensMs;
    assert.ok(reset >= after - 1 && reset <= before + 1,
              `reset-tokens ${reset} ms, midnight ${after}..${before} ms away`);
    assert.equal(
        await first.waitMetric('trl_requests_total', { key: 'daily', status: '200' }, 1), 1);
    const r2 = await first.post('chat/completions', body, { key: 'sk-daily' });
    assert.equal(rl(r2.headers).remainingTokens, 1000 - cost - reservation);
    assert.equal(
        await first.waitMetric('trl_requests_total', { key: 'daily', status: '200' }, 2), 2);
    const exit = await first.stop(15000);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null });

    const second = await startGateway(config, { name: 'gateway-2' });
    const r3 = await second.post('chat/completions', body, { key: 'sk-daily' });
    assert.equal(r3.status, 200);
    assert.equal(rl(r3.headers).remainingTokens, 1000 - 2 * cost - reservation,
                 'the restarted gateway forgot what was spent today');
    await second.stop();
  });
});

// One saturating run per store setup, requests going to the setup's instances in turn: 8
// well-behaved clients (harness saturate: each backs off on a 429 as retry-after-ms says) for
// 10 s against {tokens: 2000, per: 3s}. Each admission is charged its reservation (prompt
// estimate + max_tokens), which here is not less than the real cost it is settled at, and is
// admitted only if the budget holds it: so what the admitted requests cost can never exceed the
// capacity plus the refill from the first request sent to the last answer received. That upper
// bound is exact (the wall clock, which the gateway and Redis use too). The one tolerance is the
// lower bound: the budget must not be under-used by more than 10% of that bound (the clients'
// back-off and the machine's scheduling leave some refill unused).
describe('saturation', () => {
  const CAP = 2000;
  const PER_S = 3;  // the run sees the budget refill three times over
  const RUN_MS = 10_000;
  const CLIENTS = 8;
  const SETUPS = [['memory', 1], ['redis', 3], ['redis-cluster', 3]];

  for (const [store, instances] of SETUPS) {
    test(`${store}, ${instances} instance(s): 8 clients for ${RUN_MS / 1000} s against {tokens: ${CAP}, ` +
         `per: ${PER_S}s} stay within the bound`, async (t) => {
      const satMock = await startMock({ name: `mock-sat-${store}`, models: ['m'], threads: 2 });
      const fleet = await startFleet(store, {
        server: { threads: 2 },
        models: [{ name: 'm', backends: [satMock.url] }],
        api_keys: [{ name: 'sat', key: 'sk-sat', limits: [{ tokens: CAP, per: `${PER_S}s` }] }],
      }, { name: `gw-sat-${store}`, instances });
      const request = chatBody('m', 'please write a short poem about buckets', { max_tokens: 16 });
      const reservation = chatEstimate(request) + 16;
      const started = Date.now();
      const { settledTokens, maxCost, admitted, refused, unexpected } = await saturate({
        gateways: fleet.gws, body: JSON.stringify(request), key: 'sk-sat', clients: CLIENTS,
        runMs: RUN_MS });
      const spanMs = Date.now() - started + 1;  // whole milliseconds, rounded out
      assert.deepEqual(unexpected, []);
      assert.ok(maxCost <= reservation, `a request cost ${maxCost}, more than its reservation`);

      const bound = CAP + CAP * (spanMs / 1000) / PER_S;
      const floor = 0.9 * (CAP + CAP * (RUN_MS / 1000) / PER_S);
      t.diagnostic(`${store}: admitted ${admitted} requests, ${settledTokens} tokens (bound ` +
                   `${bound.toFixed(0)}, floor ${floor}); ${refused} refused with 429`);
      assert.ok(refused > 0, 'the load saturated the budget');
      assert.ok(settledTokens <= bound,
                `admitted ${settledTokens} tokens > ${CAP} + the refill over ${spanMs} ms`);
      assert.ok(settledTokens >= floor,
                `admitted only ${settledTokens} tokens (< ${floor}); ${admitted} admitted, ` +
                `${refused} refused`);
      // What the clients got is what mock-llm reported and what the instances settled.
      const stats = await satMock.stats();
      assert.equal(stats.prompt_tokens_total + stats.completion_tokens_total, settledTokens);
      assert.equal(stats.requests_total, admitted);
      assert.ok(await fleet.settled({ key: 'sat', requests: admitted, status: 200 }),
                'the instances did not all count their admitted requests');
      assert.equal(await fleet.metric('trl_tokens_total', { key: 'sat', kind: 'prompt' }) +
                   await fleet.metric('trl_tokens_total', { key: 'sat', kind: 'completion' }),
                   settledTokens);
      for (const gw of fleet.gws) {
        assert.ok(await gw.metric('trl_requests_total', { key: 'sat', status: '200' }) > 0,
                  `${gw.proc.name} admitted nothing`);
        assert.equal(await gw.metric('trl_store_errors_total'), 0, `${gw.proc.name} store errors`);
      }
      await fleet.stop();
      await satMock.stop();
    });
  }
});
