// The Redis store as clients see it (docs/redis.md): gateway instances sharing one Redis
// share one budget exactly; when Redis fails, store.on_store_error decides (allow: through and
// counted; deny: 503 model_unavailable) and no other 5xx ever reaches a client; when Redis comes
// back (empty: nothing persisted) decisions resume by themselves; scripts flushed and
// connections killed under load fail no decision; the concurrency slots of a SIGKILLed instance
// come back once their request deadline plus store.concurrency_lease_ttl has passed. (A budget
// shared by three instances under 30 s of saturating load: limits.test.mjs, "saturation".)
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import {
  chatBody, cleanup, errorOf, pollUntil, startGateway, startMock, startRedis, startRedisCluster,
  waitReady,
} from './lib/harness.mjs';

after(cleanup);

const BODY = chatBody('m', 'hello there', { max_tokens: 2 });

function tally(statuses) {
  const counts = {};
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
}

// /readyz goes through the real script path.
const ready = waitReady;

// `workers` clients each sending requests one after another until stop() is called; keeps
// every status (and the body of every 5xx).
function load(targets, key, workers) {
  let stopped = false;
  const statuses = [];
  const errors = [];
  let sent = 0;
  const runs = Array.from({ length: workers }, async (_, w) => {
    while (!stopped) {
      const gw = targets[(w + sent++) % targets.length];
      const r = await gw.post('chat/completions', BODY, { key });
      statuses.push({ gw: gw.proc.name, status: r.status });
      if (r.status >= 500) errors.push({ gw: gw.proc.name, status: r.status, body: r.json });
    }
  });
  return {
    statuses,
    errors,
    // Resolves once `n` more responses have arrived (an observable, not a delay).
    async responses(n) {
      const target = statuses.length + n;
      await pollUntil(() => statuses.length >= target, { timeoutMs: 20_000, intervalMs: 5 });
      assert.ok(statuses.length >= target, `load stalled at ${statuses.length} responses`);
    },
    async stop() {
      stopped = true;
      await Promise.all(runs);
    },
  };
}

describe('redis store', () => {
  let mock;

  before(async () => {
    mock = await startMock({ models: ['m'], threads: 2 });
  });

  function config(redis, { onError = 'deny', timeout = '1s', limits } = {}) {
    return {
      server: { threads: 2 },
      store: { backend: 'redis', redis: { url: redis.urls ?? redis.url, timeout },
               on_store_error: onError },
      models: [{ name: 'm', backends: [mock.url] }],
      api_keys: [
        { name: 'shared', key: 'sk-shared', limits: [{ requests: 10, per: '1m' }] },
        { name: 'load', key: 'sk-load', limits: limits ?? [{ requests: 1000000, per: '1m' }] },
        { name: 'fresh', key: 'sk-fresh', limits: [{ requests: 2, per: '1d' }] },
      ],
    };
  }

  test('three instances on one Redis admit exactly 10 of 500 simultaneous requests', async () => {
    const redis = await startRedis();
    // deny, and a timeout far above any queueing here: this test is about exactness, so a slow
    // decision must not turn into a fail-open admission.
    const cfg = config(redis);
    const gws = await Promise.all([0, 1, 2].map((i) => startGateway(cfg, { name: `gw-${i}` })));
    await Promise.all(gws.map((gw) => ready(gw)));

    const results = await Promise.all(Array.from({ length: 500 }, (_, i) =>
      gws[i % 3].post('chat/completions', BODY, { key: 'sk-shared' })));
    assert.deepEqual(tally(results.map((r) => r.status)), { 200: 10, 429: 490 });
    for (const r of results.filter((x) => x.status === 429)) {
      errorOf(r.json, { type: 'requests', code: 'rate_limit_exceeded' });
      assert.equal(r.headers.get('x-ratelimit-limit-requests'), '10');
      assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '0');
    }
    // Each instance judged its share against the same budget (a request is counted after its
    // answer is written: polled until all 500 are).
    const counts = () =>
      Promise.all(gws.map((gw) => gw.metric('trl_requests_total', { key: 'shared' })));
    assert.ok(await pollUntil(async () => (await counts()).reduce((a, n) => a + n) === 500),
              `counted ${await counts()}`);
    for (const [i, decided] of (await counts()).entries()) {
      assert.ok(decided >= 166, `${gws[i].proc.name} answered ${decided} of its 166-167 requests`);
    }
    // SIGTERM: a clean stop, Redis store included.
    for (const gw of gws) assert.equal((await gw.stop()).code, 0, `${gw.proc.name} exit code`);
  });

  // The settlement goes to Redis after the answer, without holding the connection; the
  // connection's next request is still judged after it: it finds the concurrency slot free and
  // the previous reservation (prompt + 200 tokens) replaced by the real cost (prompt + at most
  // 16). One connection, as an SDK client with one keep-alive connection has (fetch may open
  // another, and requests on different connections are judged in no set order).
  test('one connection\'s requests in a row: each is judged after the previous one settled',
    async () => {
      const redis = await startRedis();
      const cfg = config(redis);
      // A rolling budget so large that it refills ~0.003 tokens per second: exact over the test.
      cfg.api_keys.push({ name: 'seq', key: 'sk-seq',
                          limits: [{ concurrent: 1 }, { tokens: 1000000, per: '3650d' }] });
      const gw = await startGateway(cfg);
      await ready(gw);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const post = () => new Promise((resolve, reject) => {
        const req = http.request(`${gw.url}/v1/chat/completions`, {
          method: 'POST', agent,
          headers: { 'content-type': 'application/json', authorization: 'Bearer sk-seq' },
        }, (res) => {
          let text = '';
          res.on('data', (chunk) => { text += chunk; });
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
                                        json: JSON.parse(text), port: req.socket.localPort }));
        });
        req.on('error', reject);
        req.end(JSON.stringify(chatBody('m', 'hello there', { max_tokens: 200 })));
      });
      let previous = null;
      const ports = new Set();
      for (let i = 0; i < 20; i++) {
        const r = await post();
        ports.add(r.port);
        assert.equal(r.status, 200, `request ${i}: ${JSON.stringify(r.json)}`);
        const remaining = Number(r.headers['x-ratelimit-remaining-tokens']);
        const cost = r.json.usage.prompt_tokens + r.json.usage.completion_tokens;
        assert.ok(cost < 200, `cost ${cost}`);
        if (previous) assert.equal(previous.remaining - remaining, previous.cost, `request ${i}`);
        previous = { remaining, cost };
      }
      assert.equal(ports.size, 1, 'one connection');
      agent.destroy();
      assert.equal((await gw.stop()).code, 0);
    });

  test('three instances on a three-master Redis Cluster admit exactly 10 of 500', async () => {
    const cluster = await startRedisCluster();
    const cfg = config(cluster);
    // Budgets of several keys land on different masters; each key's buckets stay in one slot.
    cfg.api_keys.push(...['a', 'b', 'c', 'd', 'e', 'f'].map((n) => (
      { name: `spread-${n}`, key: `sk-spread-${n}`, limits: [{ requests: 3, per: '1m' },
                                                          { tokens: 100000, per: '1m' }] })));
    const gws = await Promise.all([0, 1, 2].map((i) => startGateway(cfg, { name: `gw-c${i}` })));
    await Promise.all(gws.map((gw) => ready(gw)));

    const shared = await Promise.all(Array.from({ length: 500 }, (_, i) =>
      gws[i % 3].post('chat/completions', BODY, { key: 'sk-shared' })));
    assert.deepEqual(tally(shared.map((r) => r.status)), { 200: 10, 429: 490 });

    const spread = await Promise.all(Array.from({ length: 60 }, (_, i) =>
      gws[i % 3].post('chat/completions', BODY, { key: `sk-spread-${'abcdef'[i % 6]}` })));
    assert.deepEqual(tally(spread.map((r) => r.status)), { 200: 18, 429: 42 });
    // The keys really are spread over the masters.
    const holding = cluster.nodes.filter((n) => Number(n.cli('DBSIZE')) > 0).length;
    assert.ok(holding >= 2, `budgets on ${holding} of 3 masters`);
    for (const gw of gws) assert.equal(await gw.metric('trl_store_errors_total'), 0);
  });

  // A killed Redis refuses connections at once: no store timeout is involved while it is down,
  // and the 1 s one keeps a slow reply on a loaded machine from failing a decision that must be
  // exact after the restart.
  test('Redis killed under load: allow passes, deny answers 503, nothing else; restart resumes',
       async () => {
    const redis = await startRedis();
    const allow = await startGateway(config(redis, { onError: 'allow' }), { name: 'gw-allow' });
    const deny = await startGateway(config(redis, { onError: 'deny' }), { name: 'gw-deny' });
    await Promise.all([ready(allow), ready(deny)]);

    const traffic = load([allow, deny], 'sk-load', 8);
    await traffic.responses(100);
    await redis.kill();
    await traffic.responses(200);  // all of them decided while Redis is gone
    await Promise.all([ready(allow, 503), ready(deny, 503)]);
    const redis2 = await redis.restart();
    await Promise.all([ready(allow), ready(deny)]);
    await traffic.responses(100);
    await traffic.stop();

    const byGw = (name) => traffic.statuses.filter((s) => s.gw === name).map((s) => s.status);
    const allowed = tally(byGw('gw-allow'));
    const denied = tally(byGw('gw-deny'));
    assert.deepEqual(Object.keys(allowed).filter((s) => s !== '200' && s !== '429'), [],
                     `allow: ${JSON.stringify(allowed)}`);
    assert.deepEqual(Object.keys(denied).filter((s) => !['200', '429', '503'].includes(s)), [],
                     `deny: ${JSON.stringify(denied)}`);
    assert.ok(denied[503] > 0, `deny answered no 503 while Redis was down: ${JSON.stringify(denied)}`);
    for (const e of traffic.errors) {
      assert.equal(e.gw, 'gw-deny');
      errorOf(e.body, { type: 'api_error', code: 'model_unavailable' });
    }
    const decisions = 'trl_store_error_decisions_total';
    assert.ok(await allow.metric(decisions, { decision: 'allow' }) > 0);
    assert.equal(await allow.metric(decisions, { decision: 'deny' }), 0);
    assert.ok(await allow.metric('trl_store_errors_total', { op: 'admit' }) > 0);
    assert.equal(await deny.metric(decisions, { decision: 'allow' }), 0);
    assert.equal(await deny.metric(decisions, { decision: 'deny' }), denied[503]);

    // Decisions are exact again, on the new (empty) Redis, from both instances.
    const after = [];
    for (const gw of [allow, deny, allow]) {
      after.push((await gw.post('chat/completions', BODY, { key: 'sk-fresh' })).status);
    }
    assert.deepEqual(after, [200, 200, 429]);
    assert.equal(redis2.cli('PING'), 'PONG');
    assert.equal((await allow.stop()).code, 0);
    assert.equal((await deny.stop()).code, 0);
  });

  test('with Redis down, a gateway serves (allow) and stops cleanly on SIGTERM', async () => {
    const redis = await startRedis();
    const gw = await startGateway(config(redis, { onError: 'allow' }), { name: 'gw-down' });
    await ready(gw);
    await redis.kill();
    await ready(gw, 503);
    assert.equal((await gw.post('chat/completions', BODY, { key: 'sk-load' })).status, 200);
    assert.equal((await gw.stop()).code, 0);
  });

  test('SCRIPT FLUSH and CLIENT KILL under load fail no decision', async () => {
    const redis = await startRedis();
    const gws = await Promise.all([0, 1].map((i) =>
      startGateway(config(redis, { onError: 'deny' }), { name: `gw-flush-${i}` })));
    await Promise.all(gws.map((gw) => ready(gw)));

    const traffic = load(gws, 'sk-load', 8);
    await traffic.responses(50);
    assert.equal(redis.cli('SCRIPT', 'FLUSH'), 'OK');
    await traffic.responses(50);
    assert.ok(Number(redis.cli('CLIENT', 'KILL', 'TYPE', 'normal')) >= 2);
    await traffic.responses(50);
    assert.equal(redis.cli('SCRIPT', 'FLUSH'), 'OK');
    redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    await traffic.responses(50);
    await traffic.stop();

    assert.deepEqual(tally(traffic.statuses.map((s) => s.status)),
                     { 200: traffic.statuses.length });
    for (const gw of gws) {
      assert.equal(await gw.metric('trl_store_errors_total'), 0, `${gw.proc.name} store errors`);
    }
  });

  test('a SIGKILLed instance\'s concurrency slots come back after the request deadline ' +
       '(models[].request_timeout) plus store.concurrency_lease_ttl', async () => {
    const redis = await startRedis();
    // 2 tokens a second of 16: a stream runs ~8 s, far past its 3 s lease (2 s + 1 s).
    const slow = await startMock({ name: 'mock-lease-slow', models: ['slowm'], tokensPerSecond: 2 });
    const cfg = {
      server: { threads: 2 },
      store: { backend: 'redis', redis: { url: redis.url, timeout: '1s' }, on_store_error: 'deny',
               concurrency_lease_ttl: '1s' },
      models: [{ name: 'm', backends: [mock.url] },
               { name: 'slowm', backends: [slow.url], request_timeout: '2s' }],
      api_keys: [{ name: 'conc', key: 'sk-conc', limits: [{ concurrent: 2 }] }],
    };
    // B shares the Redis. It is started (and ready) before A's streams are admitted, so that
    // nothing slow stands between their admission and B's first look at the slots.
    const [a, b] = await Promise.all(['gw-lease-a', 'gw-lease-b'].map(async (name) => {
      const gw = await startGateway(cfg, { name });
      await ready(gw);
      return gw;
    }));
    const long = chatBody('slowm', 'tell me a long story', { max_tokens: 16, stream: true });
    const streams = await Promise.all([0, 1].map(() =>
      a.send('chat/completions', long, { key: 'sk-conc' })));
    assert.deepEqual(streams.map((r) => r.status), [200, 200]);
    // Both slots are held: a third request through A is refused.
    const third = await a.post('chat/completions', BODY, { key: 'sk-conc' });
    assert.equal(third.status, 429);
    errorOf(third.json, { type: 'concurrency', code: 'rate_limit_exceeded' });

    // The streams' bodies break when A dies; that is expected.
    const drained = streams.map((r) => r.arrayBuffer().catch(() => null));
    a.proc.signal('SIGKILL');
    await a.proc.exited;
    await Promise.all(drained);

    // A's leases still hold both slots...
    const first = await b.post('chat/completions', BODY, { key: 'sk-conc' });
    assert.equal(first.status, 429, "A's slots were free right after the kill");
    errorOf(first.json, { type: 'concurrency', code: 'rate_limit_exceeded' });
    // ...until they lapse: B polled until it admits.
    const polls = [first.status];
    const admitted = await pollUntil(async () => {
      const r = await b.post('chat/completions', BODY, { key: 'sk-conc' });
      polls.push(r.status);
      if (r.status !== 200) errorOf(r.json, { type: 'concurrency', code: 'rate_limit_exceeded' });
      return r.status === 200;
    }, { intervalMs: 100 });
    assert.ok(admitted, `never admitted after the lease: ${JSON.stringify(tally(polls))}`);
    // Both slots come back (the two leases lapse within ms of each other; an admitted probe
    // releases its own slot at once).
    const both = await pollUntil(async () => {
      const rs = await Promise.all([0, 1].map(() =>
        b.post('chat/completions', BODY, { key: 'sk-conc' })));
      return rs.every((r) => r.status === 200);
    }, { intervalMs: 100 });
    assert.ok(both, 'two requests at once were not both admitted after the lease');
    assert.equal((await b.stop()).code, 0);
    await slow.stop();
  });
});

