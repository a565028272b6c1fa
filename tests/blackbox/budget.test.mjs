// Budgets through the hard cases (docs/limits.md, docs/redis.md "Exactly once" and "When Redis
// fails"), on the embedded store and on Redis shared by two instances (requests alternate between
// them): a hang-up mid-stream, a 502, a stream longer than the lease TTL, models[].request_timeout,
// a client asking for gzip, a shutdown that cuts streams, calendar windows that carry debt, a limit
// changed by reload or by the admin API, a key made again under its name; and, on Redis through a
// TCP relay, settlements through a partition and a reset, and admissions whose replies were lost
// under on_store_error deny and allow.
//
// Every figure is exact. Token budgets measured here are {tokens: 100000, per: 3650d} (refilling
// 0.0003 tokens a second: no whole token during a test), calendar windows, or daily calendar
// quotas (skipped near 00:00 UTC). Where the gateway charges its own count (no usage came), the
// expectation is computed with the approx counter's rule (harness approxTokens, chatEstimate)
// from what the client received: the gateway counts each event it relays, and the raw-socket
// client (rawStream) sees every one of them.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import {
  STORES, approxTokens, chatBody, chatEstimate, cleanup, errorOf, keyLimits, mockText, pollUntil,
  rawStream, relayedTokens, startFleet, startMock, startRedis, streamText,
} from './lib/harness.mjs';

after(cleanup);

const DAY_MS = 86_400_000;
const BIG = 100000;
const EXACT = { tokens: BIG, per: '3650d' };  // refills 0.0003 tokens/s: exact over a test

const num = (headers, name) => {
  const v = typeof headers.get === 'function' ? headers.get(name) : headers[name];
  return v === null || v === undefined ? undefined : Number(v);
};
const remainingTokens = (headers) => num(headers, 'x-ratelimit-remaining-tokens');
const auth = (key) => ({ authorization: `Bearer ${key}` });
const contentEvents = (e) => typeof e?.choices?.[0]?.delta?.content === 'string';

// The limit of `kind` ('tokens', 'requests', 'concurrent') among a key's live limits.
async function limitOf(gw, name, kind) {
  const l = (await keyLimits(gw, name)).find((x) => x[kind] !== undefined);
  assert.ok(l, `${name} has no ${kind} limit`);
  return l;
}

function skipNearMidnight(t) {
  if (DAY_MS - (Date.now() % DAY_MS) < 60_000) {
    t.skip('too close to 00:00 UTC, when daily windows turn');
    return true;
  }
  return false;
}

let fast;  // unpaced answers, up to 64 words
let slow;  // 4 words a second after 125 ms; models 'slow' (request_timeout 30s) and 'cut' (1s)

before(async () => {
  [fast, slow] = await Promise.all([
    startMock({ name: 'mock-fast', models: ['m'], maxOutput: 64, threads: 2 }),
    startMock({ name: 'mock-slow', models: ['slow', 'cut'], maxOutput: 64, ttft: '125ms',
                tokensPerSecond: 4, threads: 2 }),
  ]);
});

// Priced, so that spend is settled beside tokens: per token 1000 nanos of input, 2000 of output.
const PRICES = { input: 1, output: 2 };
const spendOf = (prompt, completion) => prompt * 1000 + completion * 2000;
// A spend budget whose window (3650 days from the epoch) does not end during a test: exact.
const SPEND = { spend: '1', per: '3650d', reset: 'calendar' };
const spendLevel = async (gw, name) =>
  Math.round(Number((await limitOf(gw, name, 'spend')).level) * 1e9);  // nanos

const models = () => [
  { name: 'm', backends: [fast.url], prices: PRICES },
  { name: 'slow', backends: [slow.url], request_timeout: '30s', prices: PRICES },
  { name: 'cut', backends: [slow.url], request_timeout: '1s' },
];

for (const store of STORES) {
  describe(`budgets (${store})`, () => {
    let fleet;
    let config;

    before(async () => {
      config = {
        server: { threads: 2 },
        // Leases shorter than any stream here: a slot must hold by request_timeout + this.
        store: { concurrency_lease_ttl: '1s' },
        models: models(),
        api_keys: [
          { name: 'hang', key: 'sk-hang', limits: [EXACT, { concurrent: 2 }, SPEND] },
          { name: 'lease', key: 'sk-lease', limits: [{ concurrent: 1 }] },
          { name: 'cut', key: 'sk-cut', limits: [EXACT, { concurrent: 2 }] },
          { name: 'enc', key: 'sk-enc', limits: [EXACT] },
          { name: 'cal', key: 'sk-cal', limits: [{ tokens: 100, per: '2s', reset: 'calendar' }] },
        ],
      };
      fleet = await startFleet(store, config, { name: `gw-budget-${store}` });
    });

    beforeEach(async () => { await fleet.revive(); });

    test('a client hanging up mid-stream is charged prompt estimate + relayed tokens, once, and ' +
         'frees its slot; a 502 costs nothing and frees its slot', async () => {
      const body = chatBody('slow', 'tell me a long story', { max_tokens: 16, stream: true });
      const estimate = chatEstimate(body);
      const s = rawStream(fleet.at(0).port, '/v1/chat/completions', body, { headers: auth('sk-hang') });
      const head = await s.head;
      assert.equal(head.status, 200);
      // A fresh budget: the header shows the reservation, which checks the estimate's arithmetic.
      assert.equal(remainingTokens(head.headers), BIG - (estimate + 16));
      assert.ok(await s.waitEvents(3, contentEvents), 'the stream ended before 3 tokens');
      // Held while it runs, seen from the other instance too.
      assert.equal((await limitOf(fleet.at(1), 'hang', 'concurrent')).in_use, 1);

      // The hang-up: the client's FIN, which the gateway watches for. The test keeps reading,
      // so it sees every event the gateway relayed before it noticed.
      s.halfClose();
      const { complete, events } = await s.done;
      assert.equal(complete, false, 'the gateway finished a stream whose client had left');
      const received = events.filter(contentEvents);
      assert.ok(received.length >= 3 && received.length < 16, `${received.length} events`);
      assert.ok(!events.includes('[DONE]'));
      assert.equal(streamText(received), mockText(received.length));
      const relayed = relayedTokens(received);
      assert.ok(await fleet.settled({ key: 'hang', requests: 1 }), 'not settled');

      const charge = estimate + relayed;
      assert.equal((await limitOf(fleet.at(1), 'hang', 'tokens')).level, BIG - charge);
      // Spend the same way: the price of the estimate and of what was relayed, once.
      assert.equal(await spendLevel(fleet.at(1), 'hang'), 1e9 - spendOf(estimate, relayed));
      assert.equal((await limitOf(fleet.at(0), 'hang', 'concurrent')).in_use, 0);
      const total = await fleet.usage({ key: 'hang' });
      assert.deepEqual([total.requests, total.prompt_tokens, total.completion_tokens],
                       [1, estimate, relayed]);
      assert.equal(await fleet.metric('trl_settlements_total', { source: 'estimate' }), 1);

      // A backend failing with HTTP 500 (the client gets a 502) served nothing: no charge.
      const failing = chatBody('slow', 'x', { max_tokens: 16 });
      const r = await fleet.at(1).post('chat/completions', failing,
                                       { key: 'sk-hang', headers: { 'x-mock-fault': 'http500' } });
      assert.equal(r.status, 502);
      errorOf(r.json, { type: 'api_error', code: 'backend_error' });
      assert.ok(await fleet.settled({ key: 'hang', requests: 2 }), 'not settled');
      assert.equal((await limitOf(fleet.at(0), 'hang', 'tokens')).level, BIG - charge);
      assert.equal((await limitOf(fleet.at(0), 'hang', 'concurrent')).in_use, 0);
      const after502 = await fleet.usage({ key: 'hang' });
      assert.deepEqual([after502.requests, after502.prompt_tokens, after502.completion_tokens],
                       [2, estimate, relayed]);
    });

    test('a stream running past store.concurrency_lease_ttl keeps its slot to its end', async () => {
      // {concurrent: 1}, lease TTL 1s, request_timeout 30s: the slot lasts 31 s from admission.
      const body = chatBody('slow', 'tell me a long story', { max_tokens: 16, stream: true });
      const s = rawStream(fleet.at(0).port, '/v1/chat/completions', body, { headers: auth('sk-lease') });
      assert.equal((await s.head).status, 200);
      // The 9th token leaves mock-llm 125 ms + 8 x 250 ms after the request reached it: past 2 s,
      // twice the lease TTL, the stream still holds the slot.
      assert.ok(await s.waitEvents(9, contentEvents), 'the stream ended early');
      const second = await fleet.at(1).post('chat/completions', chatBody('m', 'hi', { max_tokens: 2 }),
                                            { key: 'sk-lease' });
      assert.equal(second.status, 429, second.text);
      errorOf(second.json, { type: 'concurrency', code: 'rate_limit_exceeded' });
      assert.equal((await limitOf(fleet.at(1), 'lease', 'concurrent')).in_use, 1);
      assert.ok(s.events.filter(contentEvents).length < 16, 'the stream was over before the check');

      const { complete, events } = await s.done;
      assert.equal(complete, true);
      assert.equal(events.at(-1), '[DONE]');
      assert.equal(streamText(events.slice(0, -1)), mockText(16));
      assert.ok(await fleet.settled({ key: 'lease', requests: 2 }), 'not settled');
      assert.equal((await limitOf(fleet.at(0), 'lease', 'concurrent')).in_use, 0);
      const third = await fleet.at(1).post('chat/completions', chatBody('m', 'hi', { max_tokens: 2 }),
                                           { key: 'sk-lease' });
      assert.equal(third.status, 200, third.text);
    });

    test('models[].request_timeout cuts a stream with a backend_timeout event, charged prompt ' +
         'estimate + relayed; a plain answer not in by then is a 504', async () => {
      // 16 words at 4 a second would take ~4 s; the model's request_timeout is 1 s.
      const body = chatBody('cut', 'tell me a long story', { max_tokens: 16, stream: true });
      const estimate = chatEstimate(body);
      const byEstimate = await fleet.metric('trl_settlements_total', { source: 'estimate' });
      const s = rawStream(fleet.at(0).port, '/v1/chat/completions', body, { headers: auth('sk-cut') });
      const head = await s.head;
      assert.equal(head.status, 200);
      assert.equal(remainingTokens(head.headers), BIG - (estimate + 16));
      const { complete, events } = await s.done;
      assert.equal(complete, true, 'the cut stream did not end properly (last chunk)');
      const last = events.at(-1);
      errorOf(last, { type: 'api_error', code: 'backend_timeout' });
      assert.match(last.error.message, /request timeout \(1s\)/);
      assert.ok(!events.includes('[DONE]'));
      const received = events.filter(contentEvents);
      assert.ok(received.length >= 1 && received.length < 16, `${received.length} events`);
      assert.equal(streamText(received), mockText(received.length));
      const relayed = relayedTokens(received);
      assert.ok(await fleet.settled({ key: 'cut', requests: 1 }), 'not settled');
      // mock-llm's usage chunk never came: the gateway's own count.
      let charged = estimate + relayed;
      assert.equal((await limitOf(fleet.at(1), 'cut', 'tokens')).level, BIG - charged);
      assert.equal((await limitOf(fleet.at(1), 'cut', 'concurrent')).in_use, 0);
      assert.equal(await fleet.metric('trl_settlements_total', { source: 'estimate' }),
                   byEstimate + 1);

      // A plain answer mock-llm would send after ~4 s: 504 at 1 s, charged the prompt it read.
      const plain = chatBody('cut', 'tell me a long story', { max_tokens: 16 });
      const r = await fleet.at(1).post('chat/completions', plain, { key: 'sk-cut' });
      assert.equal(r.status, 504, r.text);
      const e = errorOf(r.json, { type: 'api_error', code: 'backend_timeout' });
      assert.match(e.message, /request timeout \(1s\)/);
      assert.ok(await fleet.settled({ key: 'cut', requests: 2 }), 'not settled');
      charged += chatEstimate(plain);
      assert.equal((await limitOf(fleet.at(0), 'cut', 'tokens')).level, BIG - charged);
      assert.equal((await limitOf(fleet.at(0), 'cut', 'concurrent')).in_use, 0);
      const total = await fleet.usage({ key: 'cut' });
      assert.deepEqual([total.requests, total.prompt_tokens, total.completion_tokens],
                       [2, 2 * estimate, relayed]);
    });

    test('a client asking for gzip: the backend is asked for identity, usage is exact',
         async () => {
      await fast.resetStats();
      const plain = chatBody('m', 'encoding check one', { max_tokens: 5 });
      const r = await fleet.at(0).post('chat/completions', plain,
                                       { key: 'sk-enc', headers: { 'accept-encoding': 'gzip' } });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.usage, { prompt_tokens: 6, completion_tokens: 5, total_tokens: 11 });
      const streamed = chatBody('m', 'encoding check two', { max_tokens: 7, stream: true });
      const s = rawStream(fleet.at(1).port, '/v1/chat/completions', streamed,
                          { headers: { ...auth('sk-enc'), 'Accept-Encoding': 'gzip' } });
      assert.equal((await s.head).status, 200);
      const { complete, events } = await s.done;
      assert.ok(complete);
      assert.equal(events.at(-1), '[DONE]');
      assert.equal(streamText(events.slice(0, -1)), mockText(7));

      const seen = (await fast.requests()).filter((q) => /encoding check/.test(q.body));
      assert.equal(seen.length, 2);
      for (const q of seen) assert.equal(q.headers['accept-encoding'], 'identity');
      const stats = await fast.stats();
      assert.deepEqual([stats.prompt_tokens_total, stats.completion_tokens_total], [12, 12]);
      assert.ok(await fleet.settled({ key: 'enc', requests: 2 }), 'not settled');
      const total = await fleet.usage({ key: 'enc' });
      assert.deepEqual([total.requests, total.prompt_tokens, total.completion_tokens], [2, 12, 12]);
      assert.equal((await limitOf(fleet.at(0), 'enc', 'tokens')).level, BIG - 24);
      assert.equal(await fleet.metric('trl_tokens_total', { key: 'enc', kind: 'completion' }), 12);
    });

    test('a calendar window that ends in debt: the next one starts at capacity minus the debt',
         async () => {
      // {tokens: 100, per: 2s, reset: calendar}. Usage larger than the reservation: an answer
      // without usage (x-mock-fault: no-usage) is charged the gateway's count of what it relayed,
      // and the approx counter makes each word "wN" 2-3 tokens ("w1".."w9": 2, "w10".."w40": 3,
      // the single spaces free): 40 words are 111 tokens, 71 more than max_tokens reserved.
      const PER = 2000;
      const body = chatBody('m', 'hi', { max_tokens: 40 });
      const estimate = chatEstimate(body);  // 8
      const charge = estimate + approxTokens(mockText(40));  // 119: 19 past the capacity
      assert.equal(charge, 119);
      // Start at the beginning of a window, so that the request and its settlement fall in it.
      const win = () => Math.floor(Date.now() / PER);
      assert.ok(await pollUntil(() => Date.now() % PER < 300, { intervalMs: 10 }));
      const w0 = win();
      const r1 = await fleet.at(0).post('chat/completions', body,
                                        { key: 'sk-cal', headers: { 'x-mock-fault': 'no-usage' } });
      assert.equal(r1.status, 200, r1.text);
      assert.equal(r1.json.usage, undefined);
      assert.equal(remainingTokens(r1.headers), 100 - (estimate + 40));
      assert.ok(await fleet.settled({ key: 'cal', requests: 1 }), 'not settled');
      const inDebt = await limitOf(fleet.at(1), 'cal', 'tokens');
      // In debt: even a 0-output request is refused until the window turns.
      const refused = await fleet.at(1).post('chat/completions', chatBody('m', 'hi', { max_tokens: 1 }),
                                             { key: 'sk-cal' });
      assert.equal(win(), w0, 'the 2 s window turned during the first steps: the machine is too slow');
      assert.equal(inDebt.level, 100 - charge);
      assert.equal(refused.status, 429, refused.text);
      errorOf(refused.json, { type: 'tokens', code: 'rate_limit_exceeded' });
      assert.equal(remainingTokens(refused.headers), 0);

      // The next window: polled (bounded) through the admin API until it has turned.
      const next = await pollUntil(async () => {
        const l = await limitOf(fleet.at(0), 'cal', 'tokens');
        return l.level !== 100 - charge ? { l, w: win() } : null;
      });
      assert.ok(next, 'the window never turned');
      assert.equal(next.w, w0 + 1);
      assert.equal(next.l.level, 100 - (charge - 100), 'the next window forgot the debt');
      const r2 = await fleet.at(1).post('chat/completions', chatBody('m', 'hi', { max_tokens: 5 }),
                                        { key: 'sk-cal' });
      assert.equal(r2.status, 200, r2.text);
      assert.equal(win(), w0 + 1, 'the window turned again meanwhile: the machine is too slow');
      assert.equal(remainingTokens(r2.headers), 100 - (charge - 100) - (estimate + 5));
    });
  });

  describe(`a changed limit keeps what was used (${store})`, () => {
    test('lowered and raised by reload (tenant quota) and by PUT (API-made key); a key made ' +
         'again under its name keeps its budgets', async (t) => {
      if (skipNearMidnight(t)) return;
      const DAILY = (tokens) => [{ tokens, per: '1d', reset: 'calendar' }];
      const cfg = (quota) => ({
        server: { threads: 2 },
        models: models(),
        tenants: [{ name: 'acme', limits: DAILY(quota) }],
        api_keys: [{ name: 'quota', key: 'sk-quota', tenant: 'acme',
                     limits: [{ requests: 1000, per: '1d' }] }],
      });
      const fleet = await startFleet(store, cfg(BIG), { name: `gw-change-${store}` });
      // 43 tokens: mock-llm counts 10 words + 3 for the message, then answers 30 words.
      const used = chatBody('m', 'a b c d e f g h i j', { max_tokens: 30 });
      // A 28-token reservation: estimate 8 ("hi": 3 + 4 + 1) + 20; mock-llm's usage: 4 + 20.
      const small = chatBody('m', 'hi', { max_tokens: 20 });
      assert.equal(chatEstimate(small) + 20, 28);

      const r1 = await fleet.at(0).post('chat/completions', used, { key: 'sk-quota' });
      assert.equal(r1.status, 200, r1.text);
      assert.equal(r1.json.usage.total_tokens, 43);
      assert.ok(await fleet.settled({ key: 'quota', requests: 1 }));

      await fleet.reload(cfg(100));  // 57 left
      const r2 = await fleet.at(1).post('chat/completions', small, { key: 'sk-quota' });
      assert.equal(r2.status, 200, r2.text);
      assert.equal(num(r2.headers, 'x-ratelimit-limit-tokens'), 100);
      assert.equal(remainingTokens(r2.headers), 29);
      assert.equal(r2.json.usage.total_tokens, 24);
      assert.ok(await fleet.settled({ key: 'quota', requests: 2 }));

      await fleet.reload(cfg(BIG));  // the same day: 100000 - 67 left, not a new day
      const r3 = await fleet.at(0).post('chat/completions', small, { key: 'sk-quota' });
      assert.equal(r3.status, 200, r3.text);
      assert.equal(num(r3.headers, 'x-ratelimit-limit-tokens'), BIG);
      assert.equal(remainingTokens(r3.headers), BIG - 67 - 28);
      assert.ok(await fleet.settled({ key: 'quota', requests: 3 }));

      // The same through PUT /admin/v1/keys/{name}/limits, for a key made through the API.
      const made = await fleet.at(0).adminFetch('/admin/v1/keys', {
        method: 'POST', body: { name: 'made', limits: DAILY(BIG) } });
      assert.equal(made.status, 201, made.text);
      const visible = async (gw, tokens, secret) => pollUntil(async () => {
        const l = await gw.adminFetch('/admin/v1/keys/made/limits');
        if (l.status !== 200 || l.json.limits[0].tokens !== tokens) return false;
        // The instance's key snapshot (what authenticates) holds this secret.
        const m = await gw.fetch(`${gw.baseURL}/models`, { headers: auth(secret) });
        await m.arrayBuffer();
        return m.status === 200;
      });
      let secret = made.json.key;
      for (const gw of fleet.gws) assert.ok(await visible(gw, BIG, secret));
      const m1 = await fleet.at(1).post('chat/completions', used, { key: secret });
      assert.equal(m1.status, 200, m1.text);
      assert.ok(await fleet.settled({ key: 'made', requests: 1 }));
      const put = async (tokens) => {
        const p = await fleet.at(0).adminFetch('/admin/v1/keys/made/limits', {
          method: 'PUT', body: { limits: DAILY(tokens) } });
        assert.equal(p.status, 200, p.text);
        for (const gw of fleet.gws) assert.ok(await visible(gw, tokens, secret));
      };
      await put(100);
      const m2 = await fleet.at(1).post('chat/completions', small, { key: secret });
      assert.equal(m2.status, 200, m2.text);
      assert.equal(remainingTokens(m2.headers), 29);
      assert.ok(await fleet.settled({ key: 'made', requests: 2 }));
      await put(BIG);
      const m3 = await fleet.at(0).post('chat/completions', small, { key: secret });
      assert.equal(remainingTokens(m3.headers), BIG - 67 - 28);
      assert.ok(await fleet.settled({ key: 'made', requests: 3 }));

      // Revoked and made again under the same name (a key rotation): the name's budget stays.
      const del = await fleet.at(1).adminFetch('/admin/v1/keys/made', { method: 'DELETE' });
      assert.equal(del.status, 200, del.text);
      const again = await fleet.at(1).adminFetch('/admin/v1/keys', {
        method: 'POST', body: { name: 'made', limits: DAILY(BIG) } });
      assert.equal(again.status, 201, again.text);
      secret = again.json.key;
      for (const gw of fleet.gws) assert.ok(await visible(gw, BIG, secret));
      const m4 = await fleet.at(0).post('chat/completions', small, { key: secret });
      assert.equal(m4.status, 200, m4.text);
      assert.equal(remainingTokens(m4.headers), BIG - 67 - 24 - 28);
      await fleet.stop();
    });
  });

  describe(`a crash (${store})`, () => {
    test('SIGKILL forgets no settled request: after a restart the usage rows and the budget ' +
         'hold every request the journal committed', async () => {
      const cfg = {
        server: { threads: 2 },
        // No usage flush before the kill: what comes back came from the journal.
        usage: { flush_interval: '1m' },
        models: models(),
        api_keys: [{ name: 'crash', key: 'sk-crash', limits: [EXACT] }],
      };
      const fleet = await startFleet(store, cfg, { name: `gw-crash-${store}` });
      const REQUESTS = 12;
      let prompt = 0;
      let completion = 0;
      for (let i = 0; i < REQUESTS; i++) {
        const r = await fleet.at(i).post('chat/completions',
                                         chatBody('m', `crash ${i}`, { max_tokens: 3 + i }),
                                         { key: 'sk-crash' });
        assert.equal(r.status, 200, r.text);
        prompt += r.json.usage.prompt_tokens;
        completion += r.json.usage.completion_tokens;
      }
      assert.ok(await fleet.settled({ key: 'crash', requests: REQUESTS }));
      // Every request is settled and recorded; the journal's next two commits include it.
      for (const gw of fleet.gws) {
        const runs = { task: 'journal', outcome: 'ok' };
        const seen = await gw.metric('trl_scheduled_task_runs_total', runs);
        await gw.waitMetric('trl_scheduled_task_runs_total', runs, seen + 2);
      }
      for (const gw of fleet.gws) {
        gw.proc.signal('SIGKILL');
        assert.equal((await gw.proc.waitExit(10000)).signal, 'SIGKILL');
      }
      for (let i = 0; i < fleet.size; i++) await fleet.restart(i);
      const total = await fleet.usage({ key: 'crash' });
      assert.deepEqual([total.requests, total.prompt_tokens, total.completion_tokens],
                       [REQUESTS, prompt, completion]);
      for (const gw of fleet.gws) {
        assert.equal((await limitOf(gw, 'crash', 'tokens')).level, BIG - prompt - completion);
      }
      await fleet.stop();
    });
  });

  if (store === 'redis') {
    describe('a clean stop with Redis down (redis)', () => {
      test('SIGTERM while Redis is gone exits 0 and keeps the usage rows in the journal; the ' +
           'next start writes them', async () => {
        const cfg = {
          server: { threads: 1 },
          usage: { flush_interval: '1m' },
          models: models(),
          api_keys: [{ name: 'kept', key: 'sk-kept', limits: [EXACT] }],
        };
        const fleet = await startFleet(store, cfg, { name: 'gw-kept', instances: 1 });
        const gw = fleet.at(0);
        let tokens = 0;
        for (let i = 0; i < 5; i++) {
          const r = await gw.post('chat/completions', chatBody('m', `kept ${i}`, { max_tokens: 4 }),
                                  { key: 'sk-kept' });
          assert.equal(r.status, 200, r.text);
          tokens += r.json.usage.total_tokens;
        }
        assert.ok(await fleet.settled({ key: 'kept', requests: 5 }));
        await fleet.redis.kill();
        gw.proc.signal('SIGTERM');
        const exit = await gw.proc.waitExit(20000);
        assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null });
        const log = [...gw.proc.stdout, ...gw.proc.stderr].join('\n');
        assert.match(log, /usage not written at shutdown: 1 rows kept in the journal/);

        // A new, empty Redis on the same port: the rows come from the journal alone.
        fleet.redis = await startRedis({ port: fleet.redis.port, name: 'redis-gw-kept' });
        await fleet.restart(0);
        const total = await fleet.usage({ key: 'kept' });
        assert.deepEqual([total.requests, total.prompt_tokens + total.completion_tokens],
                         [5, tokens]);
        await fleet.stop();
        await fleet.redis.stop();
      });
    });
  }

  describe(`shutdown with streams in flight (${store})`, () => {
    test('SIGTERM past server.shutdown_grace: streams are cut with an error event, settled and ' +
         'recorded for what they relayed; a restart finds every charge', async () => {
      const cfg = {
        server: { threads: 2, shutdown_grace: '1s' },
        models: models(),
        api_keys: [{ name: 'drain', key: 'sk-drain', limits: [EXACT] }],
      };
      const fleet = await startFleet(store, cfg, { name: `gw-drain-${store}` });
      const gw = fleet.at(0);
      // 64 words at 4 a second: ~16 s, far past the grace.
      const body = chatBody('slow', 'tell me a long story', { max_tokens: 64, stream: true });
      const estimate = chatEstimate(body);
      const STREAMS = 3;
      const streams = Array.from({ length: STREAMS }, () =>
        rawStream(gw.port, '/v1/chat/completions', body, { headers: auth('sk-drain') }));
      for (const s of streams) {
        assert.equal((await s.head).status, 200);
        assert.ok(await s.waitEvents(1, contentEvents));
      }
      gw.proc.signal('SIGTERM');
      const exit = await gw.proc.waitExit(20000);
      assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null });
      const log = [...gw.proc.stdout, ...gw.proc.stderr].join('\n');
      assert.match(log, new RegExp(`shutdown grace over: cutting ${STREAMS} requests in flight`));

      let relayed = 0;
      for (const s of streams) {
        const { complete, events } = await s.done;
        assert.equal(complete, true, 'a cut stream did not end properly');
        errorOf(events.at(-1), { type: 'api_error', code: 'model_unavailable' });
        const received = events.filter(contentEvents);
        assert.ok(received.length >= 1 && received.length < 64, `${received.length} events`);
        assert.equal(streamText(received), mockText(received.length));
        relayed += relayedTokens(received);
      }

      // The same data (embedded: data_dir; Redis: the same server).
      const again = await fleet.restart(0);
      const total = await fleet.usage({ key: 'drain' });
      assert.deepEqual([total.requests, total.prompt_tokens, total.completion_tokens],
                       [STREAMS, STREAMS * estimate, relayed]);
      const level = BIG - STREAMS * estimate - relayed;
      for (const g of fleet.gws) assert.equal((await limitOf(g, 'drain', 'tokens')).level, level);
      const r = await fleet.at(1).post('chat/completions', chatBody('m', 'hi', { max_tokens: 2 }),
                                       { key: 'sk-drain' });
      assert.equal(r.status, 200, r.text);
      assert.equal(remainingTokens(r.headers), level - (chatEstimate(chatBody('m', 'hi')) + 2));
      await fleet.stop();
    });
  });
}

// Redis behind a TCP relay (harness startRelay), two instances with one I/O thread each (one
// Redis connection per instance for requests, made before the faults by a first request).
describe('store faults (redis, two instances through a relay)', () => {
  const cfg = (onError, limits) => ({
    server: { threads: 1 },
    store: { on_store_error: onError },
    models: models(),
    api_keys: [{ name: 'k', key: 'sk-k', limits }],
  });
  const hello = chatBody('m', 'hello there world', { max_tokens: 5 });  // mock-llm: 6 + 5

  // One request through each instance, settled: their Redis connections are up. Returns the
  // tokens they cost.
  async function warmUp(fleet) {
    for (const gw of fleet.gws) {
      const r = await gw.post('chat/completions', hello, { key: 'sk-k' });
      assert.equal(r.status, 200, r.text);
    }
    assert.ok(await fleet.settled({ key: 'k', requests: fleet.size }));
    return 11 * fleet.size;
  }

  // Polls until every instance's metric is above what it was (bounded).
  async function risen(fleet, name, labels, before) {
    return pollUntil(async () => {
      for (let i = 0; i < fleet.size; i++) {
        if (await fleet.gws[i].metric(name, labels) <= before[i]) return false;
      }
      return true;
    });
  }
  const perGw = (fleet, name, labels) => Promise.all(fleet.gws.map((g) => g.metric(name, labels)));
  // Settlements of `source` confirmed by the store, at once or after being sent again.
  const settledBy = async (fleet, source) =>
    await fleet.metric('trl_settlements_total', { source, outcome: 'applied' }) +
    await fleet.metric('trl_settlements_total', { source, outcome: 'retried' });

  test('settlements sent through a partition and a reset land once the store is back: slots ' +
       'free, levels exact, counted as retried', async () => {
    const fleet = await startFleet('redis', cfg('deny', [EXACT, { concurrent: 8 }]),
                                   { name: 'gw-partition', relay: true, redisTimeout: '100ms' });
    const warm = await warmUp(fleet);
    // 4 streams of 4 words (~0.9 s each), 2 per instance, admitted before the partition.
    const body = chatBody('slow', 'tell me a long story', { max_tokens: 4, stream: true });
    const streams = Array.from({ length: 4 }, (_, i) =>
      rawStream(fleet.at(i).port, '/v1/chat/completions', body, { headers: auth('sk-k') }));
    for (const s of streams) {
      assert.equal((await s.head).status, 200);
      assert.ok(await s.waitEvents(1, contentEvents));
    }
    const errorsBefore = await perGw(fleet, 'trl_store_errors_total', { op: 'settle' });
    fleet.relay.blackhole();
    for (const s of streams) {
      const { complete, events } = await s.done;
      assert.ok(complete);
      assert.equal(streamText(events.slice(0, -1)), mockText(4));
    }
    // Each instance's settlements fail (time out) in the partition...
    assert.ok(await risen(fleet, 'trl_store_errors_total', { op: 'settle' }, errorsBefore),
              'no settlement failed in the partition');
    for (const gw of fleet.gws) assert.equal(await gw.metric('trl_reservations_unsettled'), 2);
    // ...and after every connection is reset, while still partitioned.
    const errorsAtReset = await perGw(fleet, 'trl_store_errors_total', { op: 'settle' });
    fleet.relay.resetAll();
    assert.ok(await risen(fleet, 'trl_store_errors_total', { op: 'settle' }, errorsAtReset),
              'no settlement was retried after the reset');
    fleet.relay.pass();

    assert.ok(await fleet.settled(), 'settlements still pending after the partition');
    // Each stream: mock-llm's usage, 8 (5 words + 3) + 4, charged once.
    const level = BIG - warm - 4 * 12;
    for (const gw of fleet.gws) {
      assert.equal((await limitOf(gw, 'k', 'tokens')).level, level);
      assert.equal((await limitOf(gw, 'k', 'concurrent')).in_use, 0);
    }
    assert.equal(await fleet.metric('trl_settlements_total', { outcome: 'retried' }), 4);
    assert.equal(await fleet.metric('trl_settlements_total', { outcome: 'lost' }), 0);
    assert.equal(await fleet.metric('trl_settlements_total', { outcome: 'applied' }), fleet.size);
    const total = await fleet.usage({ key: 'k' });
    assert.deepEqual([total.requests, total.prompt_tokens, total.completion_tokens],
                     [fleet.size + 4, 6 * fleet.size + 4 * 8, 5 * fleet.size + 4 * 4]);
    // And the budget is live: the next request sees that level.
    const r = await fleet.at(0).post('chat/completions', hello, { key: 'sk-k' });
    assert.equal(remainingTokens(r.headers), level - (chatEstimate(hello) + 5));
    await fleet.stop();
  });

  test('admissions whose replies were lost, on_store_error: deny -> 503, and what they took in ' +
       'Redis is given back once the store answers again', async () => {
    const fleet = await startFleet('redis', cfg('deny', [EXACT, { concurrent: 4 }, SPEND]),
                                   { name: 'gw-lost-deny', relay: true, redisTimeout: '100ms' });
    const warm = await warmUp(fleet);
    fleet.relay.replyBlackhole();
    const rs = await Promise.all(fleet.gws.map((gw) => gw.post('chat/completions', hello, { key: 'sk-k' })));
    for (const r of rs) {
      assert.equal(r.status, 503, r.text);
      errorOf(r.json, { type: 'api_error', code: 'model_unavailable' });
    }
    assert.ok(fleet.relay.stats.droppedReplyBytes > 0, 'Redis never answered through the relay');
    // Redis applied them (the calls went through); the instances wait to hear it confirmed.
    for (const gw of fleet.gws) assert.equal(await gw.metric('trl_reservations_unsettled'), 1);
    fleet.relay.pass();

    assert.ok(await fleet.settled(), 'the lost admissions were never settled');
    for (const gw of fleet.gws) {
      assert.equal((await limitOf(gw, 'k', 'tokens')).level, BIG - warm);
      assert.equal((await limitOf(gw, 'k', 'concurrent')).in_use, 0);
      assert.equal(await spendLevel(gw, 'k'), 1e9 - fleet.size * spendOf(6, 5));  // given back
    }
    // Sent again until confirmed, or held behind the lost call until its connection was
    // replaced: either way confirmed once, none given up.
    assert.equal(await settledBy(fleet, 'estimate'), fleet.size);
    assert.equal(await fleet.metric('trl_settlements_total', { outcome: 'lost' }), 0);
    // Every slot is usable again: {concurrent: 4}, 4 at once.
    const four = await Promise.all([0, 1, 2, 3].map((i) =>
      fleet.at(i).post('chat/completions', hello, { key: 'sk-k' })));
    assert.deepEqual(four.map((r) => r.status), [200, 200, 200, 200]);
    await fleet.stop();
  });

  test('admissions whose replies were lost, on_store_error: allow -> served, and charged their ' +
       'real cost once when the store answers again', async () => {
    const fleet = await startFleet('redis', cfg('allow', [EXACT, { concurrent: 4 }, SPEND]),
                                   { name: 'gw-lost-allow', relay: true, redisTimeout: '100ms' });
    const warm = await warmUp(fleet);
    fleet.relay.replyBlackhole();
    const rs = await Promise.all(fleet.gws.map((gw) => gw.post('chat/completions', hello, { key: 'sk-k' })));
    for (const r of rs) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.usage.total_tokens, 11);
    }
    assert.equal(await fleet.metric('trl_store_error_decisions_total', { decision: 'allow' }),
                 fleet.size);
    for (const gw of fleet.gws) assert.equal(await gw.metric('trl_reservations_unsettled'), 1);
    fleet.relay.pass();

    assert.ok(await fleet.settled(), 'the lost admissions were never settled');
    // Redis had charged each its reservation (17); each is now its real cost (11), once.
    for (const gw of fleet.gws) {
      assert.equal((await limitOf(gw, 'k', 'tokens')).level, BIG - warm - 11 * fleet.size);
      assert.equal((await limitOf(gw, 'k', 'concurrent')).in_use, 0);
      // Spend too: each charged its real price once (6 prompt and 5 completion tokens).
      assert.equal(await spendLevel(gw, 'k'), 1e9 - 2 * fleet.size * spendOf(6, 5));
    }
    // The warm-up's (applied) and these.
    assert.equal(await settledBy(fleet, 'usage'), 2 * fleet.size);
    assert.equal(await fleet.metric('trl_settlements_total', { outcome: 'lost' }), 0);
    const total = await fleet.usage({ key: 'k' });
    assert.deepEqual([total.requests, total.prompt_tokens, total.completion_tokens],
                     [2 * fleet.size, 12 * fleet.size, 10 * fleet.size]);
    await fleet.stop();
  });
});
