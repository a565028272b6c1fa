// Waiting for budget instead of a 429 (issue 33): a key or tenant with `queue: {max_wait,
// max_queued}` holds a request its limits refuse until the budget has room. Queued requests of
// a tenant's keys are admitted in round robin as budget comes back (a key with three waiting does
// not go three times before a key with one), time out with the usual 429, are refused at once
// past max_queued, leave the queue when their client does, and are never admitted past a limit:
// on the embedded store and on Redis shared by two instances. Keys of the admin API may queue too.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import {
  chatBody, chatEstimate, cleanup, errorOf, pollUntil, rawStream, startFleet, startMock,
} from './lib/harness.mjs';

after(cleanup);

const KEYS = { a: 'sk-queue-a-0123456789abcdef', b: 'sk-queue-b-0123456789abcdef',
               c: 'sk-queue-c-0123456789abcdef', d: 'sk-queue-d-0123456789abcdef',
               solo: 'sk-queue-solo-0123456789ab' };
const auth = (name) => ({ authorization: `Bearer ${KEYS[name]}` });
const body = (text) => chatBody('m', text, { max_tokens: 4 });
const SOLO_BUDGET = chatEstimate(body('s0')) + 4;  // one request's reservation

const config = (mock) => ({
  models: [{ name: 'm', backends: [mock.url] }],
  tenants: [{ name: 't', limits: [{ concurrent: 1 }], queue: { max_wait: '60s', max_queued: 10 } }],
  api_keys: [
    { name: 'a', key: KEYS.a, tenant: 't', limits: [] },
    { name: 'b', key: KEYS.b, tenant: 't', limits: [] },
    { name: 'solo', key: KEYS.solo, limits: [{ tokens: SOLO_BUDGET, per: '1h' }],
      queue: { max_wait: '2s', max_queued: 2 } },
  ],
  access_log: { output: 'access.log' },
});

// What the mock received, by the prompt each request carried, in order.
const received = async (mock) => (await mock.requests())
  .filter((r) => r.target === '/v1/chat/completions')
  .map((r) => JSON.parse(r.body).messages[0].content);

// A request of tenant t that holds its one concurrency slot until the test lets it go: the mock
// never answers it, and the gateway frees the slot when the client hangs up.
async function holdTheSlot(gw, name) {
  const s = rawStream(gw.port, '/v1/chat/completions', body('holder'),
                      { headers: { ...auth(name), 'x-mock-fault': 'hang' } });
  assert.ok(await pollUntil(async () => (await gw.metric('trl_inflight_requests')) === 1));
  return s;
}

// Sends one request and resolves, once the instance counts `waiting` waiters, to [its answer]
// (a promise in an array: an async function's promise result would be awaited).
async function enqueue(gw, name, text, waiting) {
  const answer = gw.post('chat/completions', body(text), { key: KEYS[name] });
  assert.ok(await pollUntil(async () => (await gw.metric('trl_queue_waiting')) === waiting),
            `${text} is not waiting`);
  return [answer];
}

for (const [store, instances] of [['memory', 1], ['redis', 2]]) {
  describe(`queue, ${store}, ${instances} instance(s)`, () => {
    test('queued requests are admitted in round robin across keys as budget comes back, and ' +
         'never past the limit', async () => {
      const mock = await startMock({ models: ['m'] });
      const fleet = await startFleet(store, config(mock), { name: `gw-queue-${store}`, instances });
      const gw = fleet.at(0);
      const holder = await holdTheSlot(gw, 'a');
      const answers = [];
      for (const [name, text] of [['a', 'a1'], ['a', 'a2'], ['a', 'a3'], ['b', 'b1']]) {
        answers.push(...await enqueue(gw, name, text, answers.length + 1));
      }
      // The other instance's waiters try through the store (every second: a concurrency
      // limit's retry time), the slot held on the first instance.
      const other = fleet.size > 1
        ? [...await enqueue(fleet.at(1), 'b', 'b2', 1), ...await enqueue(fleet.at(1), 'a', 'a4', 2)]
        : [];
      assert.deepEqual(await received(mock), ['holder'], 'admitted past the concurrency limit');

      holder.destroy();
      const done = await Promise.all([...answers, ...other]);
      for (const r of done) assert.equal(r.status, 200, r.text);
      const order = (await received(mock)).slice(1);
      assert.equal(order.length, done.length, 'each admitted once');
      // This instance's own waiters in round robin: a, b, a, a (not a, a, a, b).
      assert.deepEqual(order.filter((t) => ['a1', 'a2', 'a3', 'b1'].includes(t)),
                       ['a1', 'b1', 'a2', 'a3']);
      assert.equal(await fleet.metric('trl_queue_requests_total', { outcome: 'admitted' }),
                   done.length);
      assert.equal(await fleet.metric('trl_queue_requests_total', { key: 'a', outcome: 'admitted' }),
                   fleet.size > 1 ? 4 : 3);
      assert.equal(await fleet.metric('trl_queue_waiting'), 0);
      assert.equal(await fleet.metric('trl_ratelimit_rejections_total'), 0);
      await fleet.stop();
      await mock.stop();
    });
  });
}

describe('queue, memory', () => {
  test('as a token budget refills, the tenant\'s waiting keys take turns', async () => {
    const mock = await startMock({ models: ['m'] });
    const reservation = chatEstimate(body('c0')) + 4;
    const fleet = await startFleet('memory', {
      models: [{ name: 'm', backends: [mock.url] }],
      // One reservation's worth, refilled in 3 s: each waiter goes when the budget has refilled
      // (the first some 2 s after c0, long after the three are queued).
      tenants: [{ name: 'r', limits: [{ tokens: reservation, per: '3s' }], queue: { max_wait: '60s' } }],
      api_keys: [{ name: 'c', key: KEYS.c, tenant: 'r' }, { name: 'd', key: KEYS.d, tenant: 'r' }],
    }, { name: 'gw-queue-refill' });
    const gw = fleet.at(0);
    assert.equal((await gw.post('chat/completions', body('c0'), { key: KEYS.c })).status, 200);
    const answers = [...await enqueue(gw, 'c', 'c1', 1), ...await enqueue(gw, 'c', 'c2', 2),
                     ...await enqueue(gw, 'd', 'd1', 3)];
    for (const r of await Promise.all(answers)) assert.equal(r.status, 200, r.text);
    assert.deepEqual(await received(mock), ['c0', 'c1', 'd1', 'c2']);
    assert.equal(await gw.metric('trl_queue_requests_total', { outcome: 'admitted' }), 3);
    await fleet.stop();
    await mock.stop();
  });

  test('a wait runs out with the usual 429, past max_queued a request is refused at once, and ' +
       'a client that leaves is out of the queue at once', async () => {
    const mock = await startMock({ models: ['m'] });
    const fleet = await startFleet('memory', config(mock), { name: 'gw-queue-bounds' });
    const gw = fleet.at(0);
    // The tenant's queue as the admin API shows it; a key made through it may have its own.
    const tenant = await gw.adminFetch('/admin/v1/tenants/t');
    assert.deepEqual(tenant.json.queue, { max_wait: '1m', max_queued: 10 });
    const made = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body: {
      name: 'made', limits: [{ tokens: SOLO_BUDGET, per: '1h' }],
      queue: { max_wait: '2s', max_queued: 1 } } });
    assert.equal(made.status, 201, made.text);
    assert.deepEqual(made.json.queue, { max_wait: '2s', max_queued: 1 });
    KEYS.made = made.json.key;

    // solo: a budget of one request per hour, two may wait; made: the same, one may wait.
    assert.equal((await gw.post('chat/completions', body('s0'), { key: KEYS.solo })).status, 200);
    assert.equal((await gw.post('chat/completions', body('m0'), { key: KEYS.made })).status, 200);
    assert.ok(await fleet.settled({ requests: 2 }));
    const waiting = [...await enqueue(gw, 'solo', 's1', 1), ...await enqueue(gw, 'solo', 's2', 2),
                     ...await enqueue(gw, 'made', 'm1', 3)];
    for (const [name, text] of [['solo', 's3'], ['made', 'm2']]) {
      const full = await gw.post('chat/completions', body(text), { key: KEYS[name] });
      assert.equal(full.status, 429);
      errorOf(full.json, { type: 'tokens', code: 'rate_limit_exceeded' });
    }
    for (const r of await Promise.all(waiting)) {
      assert.equal(r.status, 429, r.text);
      const e = errorOf(r.json, { type: 'tokens', code: 'rate_limit_exceeded' });
      assert.match(e.message, /^Rate limit reached for key '(solo|made)' \d+ tokens per 1h: remaining \d+, requested \d+\. Retry in /);
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
    assert.deepEqual(await received(mock), ['s0', 'm0'], 'admitted past the token limit');
    assert.equal(await gw.metric('trl_queue_requests_total', { key: 'solo', outcome: 'timeout' }), 2);
    assert.equal(await gw.metric('trl_queue_requests_total', { key: 'solo', outcome: 'full' }), 1);
    assert.equal(await gw.metric('trl_queue_requests_total', { key: 'made', outcome: 'timeout' }), 1);
    assert.equal(await gw.metric('trl_queue_requests_total', { key: 'made', outcome: 'full' }), 1);
    assert.equal(await gw.metric('trl_ratelimit_rejections_total', { key: 'solo' }), 3);

    // Tenant t: the slot held, a waiter whose client hangs up leaves the queue.
    const holder = await holdTheSlot(gw, 'b');
    const leaver = rawStream(gw.port, '/v1/chat/completions', body('gone'), { headers: auth('a') });
    assert.ok(await pollUntil(async () => (await gw.metric('trl_queue_waiting')) === 1));
    leaver.destroy();
    assert.ok(await pollUntil(async () => (await gw.metric('trl_queue_waiting')) === 0),
              'the waiter stayed after its client left');
    assert.equal(await gw.metric('trl_queue_requests_total', { key: 'a', outcome: 'left' }), 1);
    assert.ok(await pollUntil(async () =>
      (await gw.metric('trl_requests_total', { key: 'a', status: '499' })) === 1));
    assert.equal(await gw.metric('trl_ratelimit_rejections_total', { key: 'a' }), 0);
    holder.destroy();
    assert.deepEqual(await received(mock), ['s0', 'm0', 'holder']);
    await fleet.stop();

    // The access log says how each wait ended, and how long it took.
    const lines = readFileSync(path.join(gw.dir, 'access.log'), 'utf8').trimEnd().split('\n')
      .map((l) => JSON.parse(l));
    const waits = lines.filter((l) => l.wait !== null);
    assert.deepEqual(waits.map((l) => [l.key, l.status, l.wait]).sort(),
                     [['a', 499, 'left'], ['made', 429, 'full'], ['made', 429, 'timeout'],
                      ['solo', 429, 'full'], ['solo', 429, 'timeout'], ['solo', 429, 'timeout']]);
    for (const l of waits.filter((w) => w.wait === 'timeout')) {
      assert.ok(l.wait_us >= 2e6, JSON.stringify(l));  // max_wait 2s
    }
    await mock.stop();
  });
});
