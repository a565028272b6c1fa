// The monitoring set against the real thing: a real Prometheus scrapes a gateway (on Redis, so
// the store metrics have data) and mock-llm (vLLM's series) after a workload that touches every
// kind of outcome; then every query of every Grafana dashboard must return data, every alert
// rule must evaluate and load healthy, and promtool must find /metrics clean. The dashboards'
// shape (what Grafana needs to import them) is checked without running anything.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  chatBody, cleanup, freePort, pollUntil, Proc, REPO_ROOT, startGateway, startMock, startRedis,
  START_TIMEOUT_MS, tempDir,
} from './lib/harness.mjs';

const DASHBOARDS = path.join(REPO_ROOT, 'monitoring/grafana/dashboards');
const RULES = path.join(REPO_ROOT, 'monitoring/prometheus/alert-rules.yml');
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

after(cleanup);

function loadDashboards() {
  return readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json')).sort().map((file) => ({
    file, json: JSON.parse(readFileSync(path.join(DASHBOARDS, file), 'utf8')),
  }));
}

// Every panel, those inside collapsed rows included.
function panelsOf(dashboard) {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

// Every query of every panel: {where (dashboard file, panel title and id, refId), expr}.
function panelQueries(dashboards) {
  const out = [];
  for (const { file, json } of dashboards) {
    for (const panel of panelsOf(json)) {
      for (const t of panel.targets ?? []) {
        out.push({ where: `${file}: panel "${panel.title}" (id ${panel.id}) ${t.refId}`,
                   expr: t.expr });
      }
    }
  }
  return out;
}

// What Grafana substitutes: the variables (used with =~) match everything, the intervals are a
// minute.
function concrete(expr) {
  return expr.replace(/\$(model|tenant|key)\b/g, '.*')
      .replace(/\$__(rate_interval|interval|range)\b/g, '1m');
}

describe('dashboards', () => {
  const dashboards = loadDashboards();

  test('the three dashboards are there', () => {
    assert.deepEqual(dashboards.map((d) => d.file), [
      'error-monitoring-dashboard.json', 'system-overview-dashboard.json',
      'token-usage-dashboard.json']);
  });

  test('each has a unique uid, a schemaVersion and unique panel ids', () => {
    const uids = new Set();
    for (const { file, json } of dashboards) {
      assert.equal(typeof json.uid, 'string', `${file}: uid`);
      assert.ok(json.uid.length > 0 && json.uid.length <= 40, `${file}: uid ${json.uid}`);
      assert.ok(!uids.has(json.uid), `${file}: uid ${json.uid} is another dashboard's`);
      uids.add(json.uid);
      assert.ok(Number.isInteger(json.schemaVersion), `${file}: schemaVersion`);
      assert.equal(typeof json.title, 'string', `${file}: title`);
      const ids = new Set();
      for (const p of panelsOf(json)) {
        assert.ok(Number.isInteger(p.id), `${file}: panel "${p.title}" has no integer id`);
        assert.ok(!ids.has(p.id), `${file}: panel id ${p.id} ("${p.title}") is used twice`);
        ids.add(p.id);
        assert.ok(p.gridPos && ['h', 'w', 'x', 'y'].every((k) => Number.isInteger(p.gridPos[k])),
                  `${file}: panel "${p.title}" gridPos`);
      }
    }
  });

  test('every panel and every target takes its datasource from the variable', () => {
    for (const { file, json } of dashboards) {
      for (const p of panelsOf(json)) {
        assert.deepEqual(p.datasource, DATASOURCE, `${file}: panel "${p.title}" datasource`);
        if (p.type === 'row') continue;
        assert.ok(['timeseries', 'stat', 'bargauge', 'table'].includes(p.type),
                  `${file}: panel "${p.title}" type ${p.type}`);
        assert.ok(p.targets?.length > 0, `${file}: panel "${p.title}" has no query`);
        for (const t of p.targets) {
          assert.deepEqual(t.datasource, DATASOURCE, `${file}: "${p.title}" ${t.refId} datasource`);
          assert.equal(typeof t.expr, 'string', `${file}: "${p.title}" ${t.refId} expr`);
          assert.match(t.refId, /^[A-Z]$/, `${file}: "${p.title}" refId`);
        }
        assert.equal(new Set(p.targets.map((t) => t.refId)).size, p.targets.length,
                     `${file}: "${p.title}" repeats a refId`);
      }
    }
  });

  test('each has the datasource, model, tenant and key variables', () => {
    for (const { file, json } of dashboards) {
      const vars = Object.fromEntries(json.templating.list.map((v) => [v.name, v]));
      assert.equal(vars.datasource?.type, 'datasource', `${file}: $datasource`);
      assert.equal(vars.datasource.query, 'prometheus', `${file}: $datasource`);
      for (const name of ['model', 'tenant', 'key']) {
        const v = vars[name];
        assert.ok(v, `${file}: no $${name}`);
        assert.equal(v.type, 'query', `${file}: $${name} type`);
        assert.deepEqual(v.datasource, DATASOURCE, `${file}: $${name} datasource`);
        const want = new RegExp(`^label_values\\(trl_requests_total(\\{.*\\})?, ${name}\\)$`);
        assert.match(v.query, want, `${file}: $${name} query`);
        assert.equal(v.multi, true, `${file}: $${name} multi`);
        assert.equal(v.includeAll, true, `${file}: $${name} includeAll`);
        assert.equal(v.allValue, '.*', `${file}: $${name} allValue`);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// A real Prometheus
// ---------------------------------------------------------------------------------------------

class Prometheus {
  constructor(proc, port) {
    this.proc = proc;
    this.url = `http://127.0.0.1:${port}`;
  }

  async api(route, params) {
    const r = await fetch(`${this.url}/api/v1/${route}`, params && {
      method: 'POST', body: new URLSearchParams(params),
    });
    const body = await r.json();
    if (body.status !== 'success') {
      throw new Error(`Prometheus ${route} ${JSON.stringify(params ?? {})}: ${r.status} ` +
                      `${body.errorType}: ${body.error}`);
    }
    return body.data;
  }

  // The instant vector (or scalar) `expr` gives now; throws when Prometheus refuses it.
  async query(expr) {
    const data = await this.api('query', { query: expr });
    return data.resultType === 'scalar' ? [data.result] : data.result;
  }
}

// Prometheus on a free loopback port, scraping every second: `scrape` is {job: host:port}.
// It logs to stderr, so readiness is polled on /-/ready (bounded), not read from a line.
async function startPrometheus({ scrape, ruleFiles = [] }) {
  const dir = tempDir('trl-prometheus-');
  const config = path.join(dir, 'prometheus.yml');
  writeFileSync(config, JSON.stringify({
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: ruleFiles,
    scrape_configs: Object.entries(scrape).map(([job, target]) => ({
      job_name: job, metrics_path: '/metrics', static_configs: [{ targets: [target] }],
    })),
  }, null, 2));
  const port = await freePort();
  const proc = new Proc('prometheus', 'prometheus', [
    `--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`]);
  const ready = await pollUntil(async () => {
    if (proc.exitInfo) return 'exited';
    try {
      const r = await fetch(`http://127.0.0.1:${port}/-/ready`);
      await r.arrayBuffer();
      return r.status === 200 ? 'ready' : null;
    } catch {
      return null;
    }
  }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 50 });
  if (ready !== 'ready') {
    throw new Error(`prometheus did not become ready (${ready ?? 'timeout'})\n` +
                    proc.diagnostics());
  }
  return new Prometheus(proc, port);
}

describe('against a real Prometheus', () => {
  const KEY = 'sk-monitoring-team-a';
  const TINY = 'sk-monitoring-tiny';
  let gw;
  let prometheus;
  const rules = existsSync(RULES);

  before(async () => {
    const redis = await startRedis({ name: 'redis-monitoring' });
    const mock = await startMock({ name: 'mock-monitoring', models: ['m'], ttft: '5ms' });
    gw = await startGateway({
      store: { backend: 'redis', redis: { url: redis.url }, on_store_error: 'allow' },
      models: [{ name: 'm', backends: [mock.url] }],
      tenants: [{ name: 'acme', limits: [{ tokens: 1000000, per: '1m' }] }],
      api_keys: [
        { name: 'team-a', key: KEY, tenant: 'acme',
          limits: [{ tokens: 100000, per: '1m' },
                   { requests: 1000, per: '1d', reset: 'calendar' }] },
        { name: 'tiny', key: TINY, tenant: 'acme', limits: [{ requests: 1, per: '1h' }] },
      ],
    }, { name: 'gateway-monitoring' });
    prometheus = await startPrometheus({
      scrape: { 'token-rate-limiter': new URL(gw.adminUrl).host, vllm: new URL(mock.url).host },
      ruleFiles: rules ? [RULES] : [],
    });

    // A workload with every outcome the dashboards show.
    const chat = (key, { headers, stream = false, body } = {}) => gw.post(
        'chat/completions', body ?? chatBody('m', 'hello monitoring', { max_tokens: 4, stream }),
        { key, headers });
    const expect = async (what, status, r) => assert.equal((await r).status, status, what);
    await expect('plain chat', 200, chat(KEY));
    await expect('streamed chat', 200, chat(KEY, { stream: true }));
    await expect('tiny key, first', 200, chat(TINY));
    await expect('tiny key, over its limit', 429, chat(TINY));
    await expect('bad request', 400, chat(KEY, { body: '{"model": "m", "messages": ' }));
    await expect('no key', 401, chat(undefined));
    await expect('usage not to be trusted', 200,
                 chat(KEY, { headers: { 'x-mock-fault': 'usage-negative' } }));
    // A store error (Redis gone: on_store_error lets the request through), then a fresh Redis.
    await redis.kill();
    await expect('Redis down', 200, chat(KEY));
    await redis.restart();
    // Last: after a backend fault the model's only backend may be ejected for a while.
    await expect('backend fault', 502, chat(KEY, { headers: { 'x-mock-fault': 'http500' } }));
    const reload = await gw.reload();
    assert.equal(reload.status, 200, reload.text);

    // Both targets scraped twice since: every series the workload made has two samples, so
    // every rate() has what it needs.
    const scraped = await pollUntil(async () => {
      const r = await prometheus.query('count_over_time(up[1m]) >= 2 and up == 1');
      return r.length === 2;
    }, { timeoutMs: START_TIMEOUT_MS });
    assert.ok(scraped, `Prometheus did not scrape both targets twice: ` +
                       `${JSON.stringify(await prometheus.api('targets'))}`);
  });

  test('every dashboard query returns data', async () => {
    const pending = new Map(panelQueries(loadDashboards()).map((q) => [q.where, q]));
    const errors = new Map();
    // Polled (bounded) while series may still be on their way; what never comes is reported.
    await pollUntil(async () => {
      for (const [where, q] of pending) {
        try {
          const result = await prometheus.query(concrete(q.expr));
          errors.delete(where);
          if (result.length > 0) pending.delete(where);
        } catch (err) {
          errors.set(where, err.message);
        }
      }
      return pending.size === 0;
    }, { intervalMs: 500 });
    const report = [...pending.values()].map((q) => `${q.where}: ` +
        (errors.has(q.where) ? `error: ${errors.get(q.where)}` : 'no data') +
        `\n    ${concrete(q.expr)}`);
    assert.equal(pending.size, 0, `dashboard queries without data:\n${report.join('\n')}`);
  });

  test('every dashboard variable lists values', async () => {
    for (const { file, json } of loadDashboards()) {
      for (const v of json.templating.list.filter((x) => x.type === 'query')) {
        const m = /^label_values\((.+), (\w+)\)$/.exec(v.query);
        assert.ok(m, `${file}: $${v.name}: not label_values(selector, label): ${v.query}`);
        const r = await fetch(`${prometheus.url}/api/v1/label/${m[2]}/values?` +
                              new URLSearchParams({ 'match[]': concrete(m[1]) }));
        const body = await r.json();
        assert.equal(body.status, 'success', `${file}: $${v.name}: ${body.error}`);
        assert.ok(body.data.length > 0, `${file}: $${v.name} lists nothing: ${concrete(v.query)}`);
      }
    }
  });

  test('every alert and recording rule evaluates and loaded healthy',
       { skip: !rules && 'no monitoring/prometheus/alert-rules.yml' }, async () => {
    const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool check rules: ${check.stdout}${check.stderr}`);
    const found = Number(/SUCCESS: (\d+) rules found/.exec(check.stdout)?.[1]);
    // Health is "unknown" until a group's first evaluation (every second here).
    let groups;
    await pollUntil(async () => {
      groups = (await prometheus.api('rules')).groups;
      return groups.every((g) => g.rules.every((r) => r.health !== 'unknown'));
    });
    const loaded = groups.flatMap((g) => g.rules.map((r) => ({ group: g.name, ...r })));
    assert.equal(loaded.length, found, 'Prometheus loaded every rule promtool found');
    for (const r of loaded) {
      const where = `${r.group}: ${r.type} ${r.name}`;
      assert.equal(r.health, 'ok',
                   `${where}: health ${r.health} ${r.lastError ?? ''}\n    ${r.query}`);
      await assert.doesNotReject(prometheus.query(r.query), `${where}\n    ${r.query}`);
    }
  });

  test('promtool check metrics finds /metrics clean', async () => {
    const text = await (await gw.fetch(`${gw.adminUrl}/metrics`)).text();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
    assert.deepEqual(lines, [], 'promtool check metrics says');
    assert.equal(r.status, 0, `promtool check metrics exited ${r.status}`);
  });
});
