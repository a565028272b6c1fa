// Spend limits (issue 33): money reserved at admission (the price of the prompt estimate and the
// output allowance) and settled at the real cost, exactly, in nanos of the currency; cached prompt
// tokens charged at their weight and price; free models never held back; concurrent requests on
// one instance and on three sharing Redis never spend past the limit plus one reservation.
// Calendar windows of 30 days, so that the levels read afterwards are exact.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import {
  chatBody, chatEstimate, cleanup, errorOf, keyLimits, readSse, startFleet, startMock,
} from './lib/harness.mjs';

after(cleanup);

// Per million tokens: input 1, output 2, cached input 0.5, so per token (in nanos) 1000, 2000, 500.
const PRICES = { input: 1, output: 2, cached_input: 0.5 };
const NANOS = { input: 1000, output: 2000, cached: 500 };
const WINDOW = { per: '30d', reset: 'calendar' };

// common/money.h FormatMoney: at least two decimals, at most nine, no trailing zeros beyond two.
function money(nanos) {
  const sign = nanos < 0 ? '-' : '';
  const abs = Math.abs(nanos);
  let fraction = String(abs % 1e9).padStart(9, '0').replace(/0+$/, '');
  if (fraction.length < 2) fraction = fraction.padEnd(2, '0');
  return `${sign}${Math.floor(abs / 1e9)}.${fraction}`;
}

// What a usage costs, and what token limits are charged for it (cached tokens at `weight`).
function costOf(usage, weight = 1) {
  const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
  return {
    nanos: (usage.prompt_tokens - cached) * NANOS.input + cached * NANOS.cached +
           usage.completion_tokens * NANOS.output,
    tokens: usage.prompt_tokens - cached + Math.ceil(cached * weight) + usage.completion_tokens,
  };
}

const config = (mock, keys) => ({
  models: [{ name: 'm', backends: [mock.url], prices: PRICES, cached_token_weight: 0.25 },
           { name: 'free', backends: [mock.url] }],
  api_keys: keys.map(([name, limits]) => ({ name, key: `sk-spend-${name}-0123456789`, limits })),
});
const key = (name) => `sk-spend-${name}-0123456789`;
const strip = ({ resets_in, resets_in_ms, ...rest }) => rest;

for (const [store, instances] of [['memory', 1], ['redis', 3]]) {
  describe(`spend, ${store}, ${instances} instance(s)`, () => {
    test('the reservation is the price of the estimate and the allowance; settlement the real cost',
         async () => {
      const mock = await startMock({ models: ['m', 'free'] });
      const fleet = await startFleet(store, config(mock, [['a', [{ spend: '0.01', ...WINDOW }]]]),
                                     { name: `gw-spend-a-${store}`, instances });
      const body = chatBody('m', 'hello there world', { max_tokens: 16 });
      const reserved = chatEstimate(body) * NANOS.input + 16 * NANOS.output;
      let spent = 0;
      for (let i = 0; i < instances; i++) {
        const r = await fleet.at(i).post('chat/completions', body, { key: key('a') });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get('x-ratelimit-limit-spend'), '0.01');
        assert.equal(r.headers.get('x-ratelimit-remaining-spend'), money(1e7 - spent - reserved));
        assert.match(r.headers.get('x-ratelimit-reset-spend'), /^\d/);
        assert.equal(r.headers.get('x-ratelimit-limit-tokens'), null, 'no token limit applies');
        assert.ok(await fleet.settled({ key: 'a', requests: i + 1, status: 200 }));
        spent += costOf(r.json.usage).nanos;
      }
      assert.ok(spent < instances * reserved, 'the real cost is below the reservation');
      assert.deepEqual((await keyLimits(fleet.at(0), 'a')).map(strip),
                       [{ spend: '0.01', ...WINDOW, remaining: money(1e7 - spent),
                          level: money(1e7 - spent) }]);
      const total = await fleet.usage({ key: 'a' });
      assert.equal(total.cost, money(spent));
      await fleet.stop();
      await mock.stop();
    });

    test('concurrent requests never spend past the limit plus one reservation', async () => {
      const mock = await startMock({ models: ['m'] });
      const body = chatBody('m', 'please write a short poem about buckets', { max_tokens: 16 });
      const reserved = chatEstimate(body) * NANOS.input + 16 * NANOS.output;
      const limit = 10 * reserved + reserved / 2;
      const fleet = await startFleet(store, config(mock, [['burst', [{ spend: money(limit), ...WINDOW }]]]),
                                     { name: `gw-spend-burst-${store}`, instances });
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) =>
        fleet.at(i).post('chat/completions', body, { key: key('burst') })));
      let spent = 0;
      let admitted = 0;
      for (const r of answers) {
        if (r.status === 200) {
          admitted++;
          spent += costOf(r.json.usage).nanos;
          continue;
        }
        assert.equal(r.status, 429, r.text);
        const e = errorOf(r.json, { type: 'spend', code: 'rate_limit_exceeded' });
        assert.match(e.message, /^Rate limit reached for key 'burst' 0\.\d+ spend per 30d \(calendar\): remaining 0\.\d+ USD, requested 0\.\d+ USD\. Retry in /);
        assert.ok(Number(r.headers.get('retry-after')) >= 1);
        assert.equal(r.headers.get('x-ratelimit-limit-spend'), money(limit));
      }
      assert.ok(admitted >= 10, `${admitted} admitted: each fits the limit ten times`);
      assert.ok(admitted < 40, 'the limit refused some');
      assert.ok(spent <= limit + reserved, `spent ${spent} > ${limit} + ${reserved}`);
      assert.ok(await fleet.settled({ key: 'burst', requests: admitted, status: 200 }));
      const level = (await keyLimits(fleet.at(0), 'burst'))[0].level;
      assert.equal(level, money(limit - spent), 'the ledger holds exactly what was served');
      assert.equal((await fleet.usage({ key: 'burst' })).cost, money(spent));
      assert.equal(await fleet.metric('trl_ratelimit_rejections_total', { key: 'burst', limit: 'spend' }),
                   40 - admitted);
      await fleet.stop();
      await mock.stop();
    });
  });
}

describe('spend, memory', () => {
  test('cached prompt tokens are charged at their weight (tokens) and their price (spend)',
       async () => {
    const mock = await startMock({ models: ['m', 'free'] });
    const limits = [{ tokens: 100000, ...WINDOW }, { spend: '0.01', ...WINDOW }];
    const fleet = await startFleet('memory', config(mock, [['c', limits]]), { name: 'gw-spend-cached' });
    const gw = fleet.at(0);
    const text = 'one two three four five six seven eight nine ten';
    const plain = await gw.post('chat/completions', chatBody('m', text, { max_tokens: 5 }),
                                { key: key('c'), headers: { 'x-mock-cached-tokens': '8' } });
    assert.equal(plain.status, 200, plain.text);
    assert.equal(plain.json.usage.prompt_tokens_details.cached_tokens, 8);
    // Streamed without include_usage: the gateway asks for the usage and reads its cached count.
    const streamed = await gw.send('chat/completions',
                                   chatBody('m', text, { max_tokens: 5, stream: true }),
                                   { key: key('c'), headers: { 'x-mock-cached-tokens': '6' } });
    assert.equal(streamed.status, 200);
    const events = await readSse(streamed);
    assert.ok(events.every((e) => e === '[DONE]' || !e.usage), 'the client did not ask for usage');
    const streamedUsage = { ...plain.json.usage, prompt_tokens_details: { cached_tokens: 6 } };
    assert.ok(await fleet.settled({ key: 'c', requests: 2, status: 200 }));
    const a = costOf(plain.json.usage, 0.25);
    const b = costOf(streamedUsage, 0.25);  // the same prompt and output, 6 of it cached
    assert.equal(a.tokens, plain.json.usage.total_tokens - 8 + 2);
    const levels = (await keyLimits(gw, 'c')).map((l) => l.level);
    assert.deepEqual(levels, [100000 - a.tokens - b.tokens, money(1e7 - a.nanos - b.nanos)]);
    const total = await fleet.usage({ key: 'c' });
    assert.equal(total.cached_tokens, 14);
    assert.equal(total.cost, money(a.nanos + b.nanos));
    await fleet.stop();
    await mock.stop();
  });

  test('a free model is never held back by a spend limit; a price above the limit is a 400',
       async () => {
    const mock = await startMock({ models: ['m', 'free'] });
    const body = chatBody('m', 'hello there world', { max_tokens: 16 });
    const reserved = chatEstimate(body) * NANOS.input + 16 * NANOS.output;
    const limit = reserved + reserved / 2;
    const fleet = await startFleet('memory', config(mock, [['f', [{ spend: money(limit), ...WINDOW }]]]),
                                   { name: 'gw-spend-free' });
    const gw = fleet.at(0);
    assert.equal((await gw.post('chat/completions', body, { key: key('f') })).status, 200);
    const refused = await gw.post('chat/completions', body, { key: key('f') });
    assert.equal(refused.status, 429);
    errorOf(refused.json, { type: 'spend', code: 'rate_limit_exceeded' });
    const huge = await gw.post('chat/completions', { ...body, max_tokens: 1000 }, { key: key('f') });
    assert.equal(huge.status, 400);
    const e = errorOf(huge.json, { type: 'invalid_request_error', code: 'spend_exceeds_limit',
                                   param: 'max_tokens' });
    assert.match(e.message, /^This request may cost 0\.\d+ USD \(prompt \d+ \+ output allowance 1000 tokens at m's prices\), more than the limit key 'f' /);
    for (let i = 0; i < 3; i++) {
      const free = await gw.post('chat/completions', { ...body, model: 'free' }, { key: key('f') });
      assert.equal(free.status, 200, free.text);
      assert.equal(free.headers.get('x-ratelimit-limit-spend'), null);
    }
    assert.ok(await fleet.settled({ key: 'f', requests: 4, status: 200 }));
    assert.equal((await fleet.usage({ key: 'f', model: 'free' })).cost, '0.00');
    await fleet.stop();
    await mock.stop();
  });

  test('the admin API sets and shows spend limits as exact decimal strings', async () => {
    const mock = await startMock({ models: ['m'] });
    const fleet = await startFleet('memory', config(mock, []), { name: 'gw-spend-admin' });
    const gw = fleet.at(0);
    const made = await gw.adminFetch('/admin/v1/keys', {
      method: 'POST', body: { name: 'api', limits: [{ spend: 12.5, per: '1d' }, { spend: '0.1', per: '1h' }] } });
    assert.equal(made.status, 201, made.text);
    assert.deepEqual(made.json.limits, [{ spend: '12.50', per: '1d' }, { spend: '0.10', per: '1h' }]);
    const bad = await gw.adminFetch('/admin/v1/keys/api/limits', {
      method: 'PUT', body: { limits: [{ spend: 0.0000000001, per: '1d' }] } });
    assert.equal(bad.status, 400);
    assert.match(errorOf(bad.json).message, /limits\[0\]\.spend: must be an amount of money above 0/);
    const limits = await keyLimits(gw, 'api');
    assert.deepEqual(limits.map(strip), [
      { spend: '12.50', per: '1d', remaining: '12.50', level: '12.50' },
      { spend: '0.10', per: '1h', remaining: '0.10', level: '0.10' }]);
    await fleet.stop();
    await mock.stop();
  });
});
