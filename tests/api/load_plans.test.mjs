// The load-test plans a user can run (performance/jmeter, performance/k6, scripts/load-test.sh),
// smoke-run against a real gateway and mock-llm. Each plan runs with a fixed number of loops, so
// its number of samples is exact, against its own key whose only limit is a request budget per
// day: the first N requests are admitted and every later one is refused, whatever the timing. The
// .jtl must then hold exactly N 200s and the rest 429s, and the gateway's trl_requests_total must
// have counted exactly the same. JMeter is Debian's 2.13 (jmeter + jmeter-http), started by
// performance/jmeter/jmeter.sh; k6 is not packaged, so its scripts are syntax-checked and their
// options and request logic read under Node with stand-ins for k6's modules.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { cleanup, REPO_ROOT, startGateway, startMock, tempDir } from '../blackbox/lib/harness.mjs';
import { parseJtl, summarizeJtl } from '../../scripts/load-test-summary.mjs';
import { importK6 } from './lib/load_k6.mjs';

const JMETER = path.join(REPO_ROOT, 'performance/jmeter/jmeter.sh');
const PLANS = path.join(REPO_ROOT, 'performance/jmeter');
const K6 = path.join(REPO_ROOT, 'performance/k6');
const MODEL = 'mock-model';
const REQUESTS_PER_LOOP = 3;  // every plan's threads loop over chat, chat token-heavy, chat stream

// Each run: the plan, its -J properties (threads x loops), and its key's request budget.
const RUNS = {
  load: { plan: 'load-test.jmx', props: { threads: 2, loops: 2, rate: 600000 }, samples: 12,
          budget: 8 },
  stress: { plan: 'stress-test.jmx', props: { threads: 2, loops: 1 }, samples: 6, budget: 4 },
  spike: { plan: 'spike-test.jmx',
           props: { base_threads: 1, spike_threads: 2, spike_delay: 0, loops: 2,
                    base_rate: 600000 },
           samples: 18, budget: 11 },
};
const HARNESS = { key: 'lt-harness', rate: 20, seconds: 1, budget: 5 };

let mock;
let gw;
let dir;

before(async () => {
  mock = await startMock({ models: [MODEL], maxOutput: 8 });
  const keys = Object.entries(RUNS).map(([name, r]) => ({
    name: `jm-${name}`, key: `sk-jm-${name}`, limits: [{ requests: r.budget, per: '1d' }],
  }));
  keys.push({ name: HARNESS.key, key: `sk-${HARNESS.key}`,
              limits: [{ requests: HARNESS.budget, per: '1d' }] });
  gw = await startGateway({
    models: [{ name: MODEL, backends: [mock.url], max_output_tokens: 4096 }],
    api_keys: keys,
  });
  dir = tempDir('trl-load-');
});
after(cleanup);

// Runs one plan with a fixed loop count (and a duration far past what it needs); returns the
// .jtl's samples.
function runPlan(plan, props, key) {
  const jtl = path.join(dir, `${path.basename(plan, '.jmx')}-${key}.jtl`);
  const all = { host: '127.0.0.1', port: gw.port, key, model: MODEL, rampup: 0, duration: 120,
                'jmeter.save.saveservice.output_format': 'csv',
                'jmeter.save.saveservice.print_field_names': 'true',
                'jmeterengine.nongui.port': 0, ...props };
  const args = ['-n', '-t', path.join(PLANS, plan), '-l', jtl, '-j', `${jtl}.log`,
                ...Object.entries(all).map(([k, v]) => `-J${k}=${v}`)];
  const r = spawnSync(JMETER, args, { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, `jmeter ${plan} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  assert.ok(existsSync(jtl), `jmeter wrote no ${jtl}:\n${r.stdout}\n${r.stderr}`);
  return parseJtl(readFileSync(jtl, 'utf8'));
}

// What a smoke run must show: exactly `samples` samples, `ok` 200s and the rest 429s, every
// label equally often, and JMeter's own verdict (the assertion) true for each. Returns the
// mismatches, each naming what is wrong (empty: the run is as expected).
function checkRun(samples, { samples: want, ok }) {
  const problems = [];
  const s = summarizeJtl(samples);
  if (s.requests !== want) problems.push(`samples: ${s.requests}, expected ${want}`);
  const expected = { 200: ok, 429: want - ok };
  for (const code of new Set([...Object.keys(s.statuses), '200', '429'])) {
    const got = s.statuses[code] ?? 0;
    const exp = expected[code] ?? 0;
    if (got !== exp) problems.push(`status ${code}: ${got} samples, expected ${exp}`);
  }
  const labels = {};
  for (const x of samples) labels[x.label] = (labels[x.label] ?? 0) + 1;
  const perLabel = want / REQUESTS_PER_LOOP;
  for (const label of ['chat', 'chat token-heavy', 'chat stream']) {
    if (labels[label] !== perLabel) {
      problems.push(`label "${label}": ${labels[label] ?? 0} samples, expected ${perLabel}`);
    }
  }
  const failed = samples.filter((x) => x.success !== 'true');
  if (failed.length) {
    problems.push(`assertion failed on ${failed.length} samples (${failed[0].label}: ` +
                  `${failed[0].responseCode})`);
  }
  return problems;
}

async function gatewayCounts(keyName) {
  const samples = await gw.metrics();
  const out = {};
  for (const s of samples) {
    if (s.name === 'trl_requests_total' && s.labels.key === keyName) {
      out[s.labels.status] = (out[s.labels.status] ?? 0) + s.value;
    }
  }
  return out;
}

describe('JMeter plans (performance/jmeter), smoke-run in non-GUI mode', () => {
  for (const [name, run] of Object.entries(RUNS)) {
    test(`${run.plan}: exactly ${run.samples} samples, ${run.budget} 200s and the rest 429s, ` +
         'as the gateway counted them', async () => {
      const samples = runPlan(run.plan, run.props, `sk-jm-${name}`);
      assert.deepEqual(checkRun(samples, { samples: run.samples, ok: run.budget }), []);
      assert.deepEqual(await gatewayCounts(`jm-${name}`),
                       { 200: run.budget, 429: run.samples - run.budget });
    });
  }

  test('a plan run with a wrong key: the checker reports the 401s by status', async () => {
    const samples = runPlan(RUNS.load.plan, { threads: 1, loops: 1, rate: 600000 }, 'sk-wrong');
    const problems = checkRun(samples, { samples: 3, ok: 3 });
    assert.deepEqual(problems, [
      'status 401: 3 samples, expected 0',
      'status 200: 0 samples, expected 3',
      'assertion failed on 3 samples (chat: 401)',
    ]);
    assert.equal(await gw.metric('trl_requests_total', { status: '401' }), 3);
  });

  test('the checker reports a missing sample and a miscounted 429 (planted in the .jtl)', () => {
    const jtl = readFileSync(path.join(dir, 'load-test-sk-jm-load.jtl'), 'utf8').trimEnd().split('\n');
    const planted = parseJtl(jtl.slice(0, -1).join('\n'));  // one sample (a 429) dropped
    assert.deepEqual(checkRun(planted, { samples: RUNS.load.samples, ok: RUNS.load.budget }).slice(0, 2), [
      'samples: 11, expected 12',
      'status 429: 3 samples, expected 4',
    ]);
  });
});

describe('k6 scripts (performance/k6)', () => {
  for (const file of ['load-test.js', 'stress-test.js', 'common.js']) {
    test(`node --check ${file}`, () => {
      const r = spawnSync(process.execPath, ['--check', path.join(K6, file)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    });
  }

  test('node --check rejects a planted syntax error', () => {
    const bad = path.join(K6, '.planted-syntax-error.js');
    writeFileSync(bad, `${readFileSync(path.join(K6, 'load-test.js'), 'utf8')}\nexport const = 1;\n`);
    try {
      const r = spawnSync(process.execPath, ['--check', bad], { encoding: 'utf8' });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /SyntaxError/);
    } finally {
      spawnSync('rm', ['-f', bad]);
    }
  });

  test('load-test.js: options from the environment, ramping arrival rate, thresholds', async () => {
    const { mod, k6 } = await importK6(path.join(K6, 'load-test.js'), {
      BASE_URL: 'http://127.0.0.1:9/', API_KEY: 'sk-k6', MODEL: 'm', RATE: '40', RAMP: '5s',
      DURATION: '1m', MAX_429_SHARE: '0.2',
    });
    assert.deepEqual(mod.options.scenarios, { load: {
      executor: 'ramping-arrival-rate', startRate: 10, timeUnit: '1s', preAllocatedVUs: 20,
      maxVUs: 200, stages: [{ duration: '5s', target: 40 }, { duration: '1m', target: 40 },
                            { duration: '5s', target: 0 }],
    } });
    assert.deepEqual(mod.options.thresholds, {
      http_req_duration: ['p(95)<2000'], 'http_req_duration{kind:stream}': ['p(95)<10000'],
      http_req_failed: ['rate<0.01'], rate_limited: ['rate<0.2'], checks: ['rate>0.99'],
    });
    assert.deepEqual(k6.responseCallback, { expectedStatuses: [{ min: 200, max: 299 }, 429] });

    // The default function against canned answers (every request a stream, MIX_STREAM=1): a 429
    // counts as rate_limited and status_429; a 200 stream without [DONE] fails its check.
    globalThis.__ENV = { ...globalThis.__ENV, MIX_HEAVY: '0', MIX_STREAM: '1' };
    const answers = [{ status: 429, headers: { 'Retry-After': '1' }, body: '{}' },
                     { status: 200, headers: {}, body: 'data: {}\n\n' }];
    k6.respond = () => answers.shift();
    mod.default();
    mod.default();
    assert.equal(k6.requests.length, 2);
    assert.equal(k6.requests[0].url, 'http://127.0.0.1:9/v1/chat/completions');
    assert.equal(k6.requests[0].params.headers.Authorization, 'Bearer sk-k6');
    assert.deepEqual(k6.requests.map((r) => [r.body.model, r.body.stream]), [['m', true], ['m', true]]);
    assert.deepEqual(k6.metrics.rate_limited.map((x) => x.value), [true, false]);
    assert.deepEqual([k6.metrics.status_429.length, k6.metrics.status_2xx.length], [1, 1]);
    assert.deepEqual(k6.checks, [
      { 'status is 200 or 429': true, 'a 429 says when to retry': true,
        'a streamed 200 ends with [DONE]': true },
      { 'status is 200 or 429': true, 'a 429 says when to retry': true,
        'a streamed 200 ends with [DONE]': false },
    ]);
  });

  test('stress-test.js: a staircase of STEPS arrival rates, 429s allowed up to 95%', async () => {
    const { mod } = await importK6(path.join(K6, 'stress-test.js'), { RATE: '5', STEPS: '3',
                                                                      STEP: '20s' });
    const s = mod.options.scenarios.stress;
    assert.equal(s.executor, 'ramping-arrival-rate');
    assert.deepEqual(s.stages.map((x) => x.target), [5, 5, 10, 10, 15, 15, 0]);
    assert.deepEqual(s.stages.filter((_, i) => i % 2 === 1 && i < 6).map((x) => x.duration),
                     ['20s', '20s', '20s']);
    assert.deepEqual(mod.options.thresholds.rate_limited, ['rate<0.95']);
  });
});

describe('scripts/load-test.sh', () => {
  test(`--tool harness: ${HARNESS.rate * HARNESS.seconds} requests, ${HARNESS.budget} 2xx, ` +
       'the rest 429, in its summary and in the gateway', async () => {
    const r = spawnSync(path.join(REPO_ROOT, 'scripts/load-test.sh'), [
      'load', '--tool', 'harness', '--url', gw.url, '--key', `sk-${HARNESS.key}`,
      '--model', MODEL, '--rate', String(HARNESS.rate), '--duration', String(HARNESS.seconds),
    ], { encoding: 'utf8', timeout: 240000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const total = HARNESS.rate * HARNESS.seconds;
    assert.match(r.stdout, new RegExp(`^total +requests=${total} 2xx=${HARNESS.budget} ` +
                                      `429=${total - HARNESS.budget} other=0 p50_ms=`, 'm'));
    assert.match(r.stdout, new RegExp(`\\(by status: 200:${HARNESS.budget} ` +
                                      `429:${total - HARNESS.budget}\\)`));
    assert.deepEqual(await gatewayCounts(HARNESS.key),
                     { 200: HARNESS.budget, 429: total - HARNESS.budget });
  });
});
