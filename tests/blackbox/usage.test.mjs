// Usage accounting (docs/usage.md): requests of random sizes
// through the gateway — chat and completions, streaming (with and without include_usage) and
// not, several keys and models, some refused by a requests limit and some by a tokens limit —
// and the usage API's totals equal, to the token, what mock-llm reported for the admitted
// requests, and its rejected counts equal the 429s seen, per key, per model and in total; in JSON
// and CSV. No model has prices and no request asks the mock for cached tokens: every cost is
// "0.00" (in the config's currency, USD by default) and no token is cached. The same totals after
// a SIGTERM and restart, and after backup -> wipe -> restore (scripts/backup.sh). On the embedded
// store and on Redis shared by two instances.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  REPO_ROOT, STORES, cleanup, errorOf, pollUntil, startFleet, startMock, startRedis, tempDir,
} from './lib/harness.mjs';

after(cleanup);

const KEYS = {
  'k-open': { key: 'sk-usage-open', tenant: 'acme', limits: [{ tokens: 10000000, per: '1h' }] },
  'k-requests': { key: 'sk-usage-requests', limits: [{ requests: 6, per: '1h' }] },
  'k-tokens': { key: 'sk-usage-tokens', limits: [{ tokens: 400, per: '1h' }] },
};
const HOUR = 3600 * 1000;

function config(mockM, mockN) {
  return {
    models: [{ name: 'm', aliases: ['m-alias'], backends: [mockM.url] },
             { name: 'n', backends: [mockN.url] }],
    tenants: [{ name: 'acme', limits: [{ requests: 100000, per: '1m' }] }],
    api_keys: Object.entries(KEYS).map(([name, k]) => ({ name, ...k })),
  };
}

// A small deterministic generator: the same workload on every run.
function rng(seed) {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

async function drain(r) {
  if (r.headers.get('content-type')?.startsWith('text/event-stream')) {
    const text = await r.text();
    assert.match(text, /data: \[DONE\]/);
  } else {
    await r.arrayBuffer();
  }
}

// `count` requests spread over `gateways`; returns what the clients saw, per key.
async function workload(gateways, count, seed) {
  const next = rng(seed);
  const names = Object.keys(KEYS);
  const seen = {};
  for (const n of names) seen[n] = { ok: 0, refused: 0 };
  const one = async (i) => {
    const name = names[next(names.length)];
    const gw = gateways[i % gateways.length];
    const model = ['m', 'm-alias', 'n'][next(3)];
    const words = Array.from({ length: 1 + next(40) }, (_, j) => `t${j}`).join(' ');
    const stream = next(2) === 1;
    const chat = next(3) !== 0;
    const body = chat ? { model, messages: [{ role: 'user', content: words }] } : { model, prompt: words };
    body.max_tokens = 1 + next(16);
    if (stream) {
      body.stream = true;
      if (next(2) === 1) body.stream_options = { include_usage: true };
    }
    const r = await gw.send(chat ? 'chat/completions' : 'completions', body,
                            { key: KEYS[name].key });
    await drain(r);
    if (r.status === 200) seen[name].ok++;
    else if (r.status === 429) seen[name].refused++;
    else assert.fail(`unexpected ${r.status} for ${name}`);
  };
  // Four clients at a time.
  for (let i = 0; i < count; i += 4) {
    await Promise.all([0, 1, 2, 3].filter((j) => i + j < count).map((j) => one(i + j)));
  }
  return seen;
}

function range() {
  const from = new Date(Math.floor(Date.now() / HOUR) * HOUR - HOUR).toISOString();
  const to = new Date(Date.now() + 2 * HOUR).toISOString();
  return `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
}

async function usage(gw, params = '') {
  const r = await gw.adminFetch(`/admin/v1/usage?${range()}${params}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

// What the usage API must say: mock-llm's own totals, and the clients' counts.
async function expected(mocks, seen) {
  const [sm, sn] = [await mocks[0].stats(), await mocks[1].stats()];
  const ok = Object.values(seen).reduce((a, s) => a + s.ok, 0);
  const refused = Object.values(seen).reduce((a, s) => a + s.refused, 0);
  return {
    total: { requests: ok, prompt_tokens: sm.prompt_tokens_total + sn.prompt_tokens_total,
             completion_tokens: sm.completion_tokens_total + sn.completion_tokens_total,
             cached_tokens: 0, rejected: refused },
    m: { prompt_tokens: sm.prompt_tokens_total, completion_tokens: sm.completion_tokens_total },
    n: { prompt_tokens: sn.prompt_tokens_total, completion_tokens: sn.completion_tokens_total },
  };
}

const pick = (t) => ({ requests: t.requests, prompt_tokens: t.prompt_tokens,
                       completion_tokens: t.completion_tokens, cached_tokens: t.cached_tokens,
                       rejected: t.rejected });

// Every figure of the usage API against `want` and `seen`.
async function assertUsage(gw, want, seen) {
  const all = await usage(gw);
  assert.deepEqual(pick(all.total), want.total);
  assert.equal(all.total.cost, '0.00');
  assert.equal(all.currency, 'USD');
  // The rows add up to the total; every row is an hour of one key/tenant/model.
  const sum = { requests: 0, prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, rejected: 0 };
  for (const row of all.data) for (const k of Object.keys(sum)) sum[k] += row[k];
  assert.deepEqual(sum, want.total);
  for (const row of all.data) {
    assert.match(row.start, /^\d{4}-\d\d-\d\dT\d\d:00:00Z$/);
    assert.ok(['m', 'n'].includes(row.model), `model ${row.model}: canonical names only`);
    assert.equal(row.tenant, row.key === 'k-open' ? 'acme' : '');
    assert.equal(row.cost, '0.00');
    const by = row.rejected_by;
    assert.equal(by.spend, 0, 'no spend limit');
    assert.equal(row.rejected, by.tokens + by.requests + by.concurrency + by.spend);
  }
  for (const model of ['m', 'n']) {
    const r = await usage(gw, `&model=${model}`);
    assert.equal(r.total.prompt_tokens, want[model].prompt_tokens, `model ${model}`);
    assert.equal(r.total.completion_tokens, want[model].completion_tokens, `model ${model}`);
  }
  for (const [name, s] of Object.entries(seen)) {
    const r = await usage(gw, `&key=${name}&granularity=day`);
    assert.equal(r.total.requests, s.ok, `${name}: admitted`);
    assert.equal(r.total.rejected, s.refused, `${name}: 429s`);
    for (const row of r.data) assert.match(row.start, /T00:00:00Z$/);
  }
  // The refusals by reason: k-requests only by its requests limit, k-tokens by its tokens limit.
  const byReq = await usage(gw, '&key=k-requests');
  assert.equal(byReq.total.rejected_by.requests, seen['k-requests'].refused);
  const byTok = await usage(gw, '&key=k-tokens');
  assert.equal(byTok.total.rejected_by.tokens, seen['k-tokens'].refused);
  const tenant = await usage(gw, '&tenant=acme');
  assert.equal(tenant.total.requests, seen['k-open'].ok);
  // group_by=tenant: rows of a tenant and a day, keys and models summed over; the same total.
  const byTenant = await usage(gw, '&group_by=tenant&granularity=day');
  assert.deepEqual(byTenant.group_by, ['tenant']);
  const requestsOf = (rows, t) => rows.filter((r) => r.tenant === t).reduce((n, r) => n + r.requests, 0);
  for (const row of byTenant.data) assert.deepEqual(Object.keys(row).slice(0, 2), ['tenant', 'start']);
  assert.equal(requestsOf(byTenant.data, 'acme'), seen['k-open'].ok);
  assert.equal(requestsOf(byTenant.data, ''), seen['k-requests'].ok + seen['k-tokens'].ok);
  for (const k of Object.keys(sum)) assert.equal(byTenant.total[k], want.total[k], k);
  // A model's alias asks for the model's rows (they are kept under its canonical name).
  const byAlias = await usage(gw, '&model=m-alias');
  assert.equal(byAlias.total.prompt_tokens, want.m.prompt_tokens);
  // CSV: a header, the rows, and the same total.
  const csv = await gw.adminFetch(`/admin/v1/usage?${range()}&format=csv`);
  assert.equal(csv.status, 200);
  assert.match(csv.headers.get('content-type'), /^text\/csv/);
  const lines = csv.text.trim().split('\n');
  assert.equal(lines[0], 'key,tenant,model,start,requests,prompt_tokens,completion_tokens,' +
                         'rejected,rejected_tokens,rejected_requests,rejected_concurrency,' +
                         'cached_tokens,cost,rejected_spend');
  const total = lines.at(-1).split(',');
  assert.deepEqual(total.slice(0, 4), ['total', '', '', '']);
  assert.deepEqual(total.slice(4), [
    all.total.requests, all.total.prompt_tokens, all.total.completion_tokens, all.total.rejected,
    all.total.rejected_by.tokens, all.total.rejected_by.requests,
    all.total.rejected_by.concurrency, all.total.cached_tokens, all.total.cost,
    all.total.rejected_by.spend,
  ].map(String));
  assert.equal(lines.length, all.data.length + 2);
}

function backup(args) {
  const r = spawnSync('bash', [path.join(REPO_ROOT, 'scripts/backup.sh'), ...args],
                      { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, `backup.sh ${args.join(' ')}: ${r.stdout}${r.stderr}`);
}

const SETUPS = { memory: 'embedded store', redis: 'Redis shared by two instances' };
const SEEDS = { memory: 7, redis: 11 };  // workloads that include refusals of both kinds

for (const store of STORES) describe(`usage, ${SETUPS[store]}`, () => {
  let mocks;
  before(async () => {
    mocks = [await startMock({ name: `mock-usage-m-${store}`, models: ['m'] }),
             await startMock({ name: `mock-usage-n-${store}`, models: ['n'] })];
  });

  // What each test starts from, its own: the store setup's instances (a fresh store) and the
  // workload through them, recorded. Returns the fleet, what the clients saw and what the usage
  // API must say.
  async function recorded() {
    for (const mock of mocks) await mock.resetStats();
    const fleet = await startFleet(store, config(...mocks), { name: `gw-usage-${store}` });
    const seen = await workload(fleet.gws, 72, SEEDS[store]);
    assert.ok(seen['k-requests'].refused > 0 && seen['k-tokens'].refused > 0,
              `the workload must include refusals: ${JSON.stringify(seen)}`);
    // A request is recorded after its answer is written, and counted after it is recorded.
    assert.ok(await fleet.settled({ requests: 72 }), 'not every request was recorded');
    const want = await expected(mocks, seen);
    assert.ok(want.total.prompt_tokens > 0);
    // Each instance writes its own usage at least every second (and its pending usage before it
    // answers): polled until every instance's is in.
    for (const gw of fleet.gws) {
      const ok = await pollUntil(
          async () => (await usage(gw)).total.requests === want.total.requests);
      assert.ok(ok, `${gw.proc.name}: the other instance's usage never arrived`);
    }
    return { fleet, seen, want };
  }

  test('totals equal mock-llm\'s usage; rejected equals the 429s', async () => {
    const { fleet, seen, want } = await recorded();
    for (const gw of fleet.gws) await assertUsage(gw, want, seen);
    await fleet.stop();
  });

  test('invalid parameters are 400 naming the parameter', async () => {
    const fleet = await startFleet(store, config(...mocks), { name: `gw-usage-params-${store}` });
    const cases = [
      ['from=yesterday', 'from'], ['to=2026-13-01T00:00:00Z', 'to'],
      ['from=2026-11-28T10:00:00Z&to=2026-11-28T09:00:00Z', 'to'],
      ['granularity=week', 'granularity'], ['format=xml', 'format'], ['bogus=1', 'bogus'],
      ['key=a&key=b', 'key'], ['group_by=hour', 'group_by'], ['group_by=user,user', 'group_by'],
    ];
    for (const [q, param] of cases) {
      const r = await fleet.at(0).adminFetch(`/admin/v1/usage?${q}`);
      assert.equal(r.status, 400, q);
      errorOf(r.json, { param });
    }
    await fleet.stop();
  });

  test('usage per end user: group_by=user splits a key\'s usage, the default sums it', async () => {
    const fleet = await startFleet(store, config(...mocks), { name: `gw-usage-users-${store}` });
    const counts = () => ({ requests: 0, prompt_tokens: 0, completion_tokens: 0 });
    const want = { alice: counts(), bob: counts(), '': counts() };
    const sends = [['alice', 3], ['bob', 7], ['alice', 12], [undefined, 2], ['bob', 1], ['alice', 5]];
    for (const [i, [user, words]] of sends.entries()) {
      const content = Array.from({ length: words }, (_, j) => `w${j}`).join(' ');
      const body = { model: 'm', max_tokens: 2 + words, messages: [{ role: 'user', content }],
                     ...(user === undefined ? {} : { user }) };
      const r = await fleet.at(i).post('chat/completions', body, { key: KEYS['k-open'].key });
      assert.equal(r.status, 200, r.text);
      const w = want[user ?? ''];
      w.requests++;
      w.prompt_tokens += r.json.usage.prompt_tokens;
      w.completion_tokens += r.json.usage.completion_tokens;
    }
    assert.ok(await fleet.settled({ requests: sends.length }), 'not every request was recorded');
    const sum = counts();
    for (const w of Object.values(want)) for (const k of Object.keys(sum)) sum[k] += w[k];
    const figures = (t) => ({ requests: t.requests, prompt_tokens: t.prompt_tokens,
                              completion_tokens: t.completion_tokens });
    for (const gw of fleet.gws) {
      assert.ok(await pollUntil(async () => (await usage(gw)).total.requests === sum.requests),
                `${gw.proc.name}: the other instance's usage never arrived`);
      // By default the users of a key are summed: rows of key, tenant and model, no user.
      const plain = await usage(gw, '&key=k-open');
      assert.deepEqual(plain.group_by, ['key', 'tenant', 'model']);
      assert.deepEqual(figures(plain.total), sum);
      for (const row of plain.data) assert.equal('user' in row, false);
      // group_by=user: a row per user (and hour), each user's exact tokens; "" for no user.
      const byUser = await usage(gw, '&key=k-open&group_by=user');
      assert.deepEqual(byUser.group_by, ['user']);
      const got = {};
      for (const row of byUser.data) {
        assert.deepEqual(Object.keys(row).slice(0, 2), ['user', 'start']);
        const g = (got[row.user] ??= counts());
        for (const k of Object.keys(g)) g[k] += row[k];
      }
      assert.deepEqual(got, want);
      assert.deepEqual(figures(byUser.total), sum);
      // user= picks one user; an empty user= the requests without one.
      assert.deepEqual(figures((await usage(gw, '&user=alice')).total), want.alice);
      assert.deepEqual(figures((await usage(gw, '&user=')).total), want['']);
      // CSV: the user column in the identity columns' place.
      const csv = await gw.adminFetch(`/admin/v1/usage?${range()}&group_by=key,user&format=csv`);
      assert.equal(csv.status, 200);
      const lines = csv.text.trim().split('\n');
      assert.ok(lines[0].startsWith('key,user,start,requests,prompt_tokens,'), lines[0]);
      const bob = lines.filter((l) => l.startsWith('k-open,bob,'))
          .reduce((n, l) => n + Number(l.split(',')[4]), 0);
      assert.equal(bob, want.bob.prompt_tokens);
    }
    await fleet.stop();
  });

  test('the same totals after SIGTERM and restart of every instance', async () => {
    const { fleet, seen, want } = await recorded();
    for (const gw of fleet.gws) assert.deepEqual(await gw.stop(), { code: 0, signal: null });
    for (let i = 0; i < fleet.size; i++) await fleet.restart(i);
    await assertUsage(fleet.at(0), want, seen);
    await fleet.stop();
  });

  test(`the same totals after backup${store === 'redis' ? ' (BGSAVE)' : ''} -> wipe -> restore`,
       async () => {
    const { fleet, seen, want } = await recorded();
    const saved = path.join(tempDir(), 'backup');
    if (store === 'memory') {
      const dataDir = fleet.config.store.data_dir;
      // Online, while it runs: what the usage API answered (it writes pending usage first).
      await assertUsage(fleet.at(0), want, seen);
      backup(['backup', '--data-dir', dataDir, '--out', saved]);
      assert.deepEqual(await fleet.at(0).stop(), { code: 0, signal: null });
      rmSync(dataDir, { recursive: true, force: true });
      backup(['restore', '--from', saved, '--data-dir', dataDir]);
    } else {
      backup(['backup', '--redis-url', fleet.redis.url, '--out', saved]);
      for (const gw of fleet.gws) assert.deepEqual(await gw.stop(), { code: 0, signal: null });
      const { port } = fleet.redis;
      await fleet.redis.kill();
      const dir = tempDir('trl-redis-restored-');
      backup(['restore', '--from', saved, '--redis-rdb', path.join(dir, 'dump.rdb')]);
      fleet.redis = await startRedis({ port, name: 'redis-usage-restored',
                                       args: ['--dir', dir, '--dbfilename', 'dump.rdb'] });
    }
    for (let i = 0; i < fleet.size; i++) await fleet.restart(i);
    await assertUsage(fleet.at(fleet.size - 1), want, seen);
    if (store === 'memory') {
      // The scheduled tasks show in the metrics.
      const gw = fleet.at(0);
      const samples = await gw.metrics();
      for (const task of ['usage_flush', 'key_sync', 'budget_flush', 'usage_retention']) {
        assert.ok(samples.some((x) => x.name === 'trl_scheduled_task_runs_total' &&
                                      x.labels.task === task), task);
      }
      const flushes = await pollUntil(async () => (await gw.metric(
          'trl_scheduled_task_runs_total', { task: 'usage_flush', outcome: 'ok' })) > 0);
      assert.ok(flushes);
    }
    await fleet.stop();
  });
});
