// The summary scripts/load-test.sh prints, from one tool's raw results:
//   node scripts/load-test-summary.mjs jtl FILE.jtl          JMeter's CSV results (with header)
//   node scripts/load-test-summary.mjs k6 summary.json       k6's --summary-export
//   node scripts/load-test-summary.mjs loadgen A.json [B...] trl-loadgen's JSON, one per phase
// One line per phase (loadgen) and a total:
//   requests=N 2xx=N 429=N other=N p50_ms=X p95_ms=X p99_ms=X req_s=X
// followed by the count of every status seen. Also imported by tests/api/load_plans.test.mjs.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// JMeter's CSV results: one object per sample (field names from the header line). Fields are
// split on commas outside double quotes, as JMeter quotes a field that holds one.
export function parseJtl(text) {
  const lines = text.split('\n').filter((l) => l !== '');
  if (lines.length === 0 || !lines[0].startsWith('timeStamp,')) {
    throw new Error('not a JMeter CSV results file with a header line ' +
                    '(run with -Jjmeter.save.saveservice.print_field_names=true)');
  }
  const split = (line) => {
    const out = [];
    let field = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (quoted && c === '"' && line[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = !quoted;
      else if (c === ',' && !quoted) { out.push(field); field = ''; }
      else field += c;
    }
    out.push(field);
    return out;
  };
  const names = split(lines[0]);
  return lines.slice(1).map((l) => Object.fromEntries(split(l).map((v, i) => [names[i], v])));
}

// Nearest-rank percentile of sorted numbers.
function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1];
}

// Counts and latency of JMeter samples: {requests, statuses: {code: n}, p50_ms, ..., req_s}.
export function summarizeJtl(samples) {
  const statuses = {};
  for (const s of samples) statuses[s.responseCode] = (statuses[s.responseCode] ?? 0) + 1;
  const elapsed = samples.map((s) => Number(s.elapsed)).sort((a, b) => a - b);
  const start = Math.min(...samples.map((s) => Number(s.timeStamp)));
  const end = Math.max(...samples.map((s) => Number(s.timeStamp) + Number(s.elapsed)));
  const seconds = samples.length ? Math.max(end - start, 1) / 1000 : 0;
  return { requests: samples.length, statuses, p50_ms: percentile(elapsed, 50),
           p95_ms: percentile(elapsed, 95), p99_ms: percentile(elapsed, 99),
           req_s: seconds ? samples.length / seconds : 0 };
}

export function summarizeK6(summary) {
  const m = summary.metrics ?? {};
  const count = (name) => m[name]?.count ?? 0;
  const d = m.http_req_duration ?? {};
  const statuses = {};
  if (count('status_2xx')) statuses['2xx'] = count('status_2xx');
  if (count('status_429')) statuses['429'] = count('status_429');
  if (count('status_other')) statuses.other = count('status_other');
  return { requests: count('http_reqs'), statuses, p50_ms: d.med ?? 0, p95_ms: d['p(95)'] ?? 0,
           p99_ms: d['p(99)'] ?? 0, req_s: m.http_reqs?.rate ?? 0 };
}

// trl-loadgen's JSON. Requests that got no answer (connect failures, timeouts) count as other,
// under the status "error".
export function summarizeLoadgen(run) {
  if (!run.statuses) throw new Error('this trl-loadgen prints no "statuses": rebuild build/perf-loadgen');
  const statuses = { ...run.statuses };
  if (run.errors) statuses.error = run.errors;
  const us = (k) => (run.latency?.[k] ?? 0) / 1000;
  return { requests: run.scheduled, statuses, p50_ms: us('p50_us'), p95_ms: us('p95_us'),
           p99_ms: us('p99_us'), req_s: run.achieved_rps ?? 0 };
}

// {requests, 2xx, 429, other} of a summary's statuses.
export function classes(s) {
  let ok = 0;
  let limited = 0;
  let other = 0;
  for (const [code, n] of Object.entries(s.statuses)) {
    if (code === '2xx' || /^2\d\d$/.test(code)) ok += n;
    else if (code === '429') limited += n;
    else other += n;
  }
  return { requests: s.requests, '2xx': ok, 429: limited, other };
}

const fmt = (v) => (v === undefined ? '-' : Number.isInteger(v) ? String(v) : v.toFixed(1));

export function line(s) {
  const c = classes(s);
  const by = Object.entries(s.statuses).map(([k, n]) => `${k}:${n}`).join(' ');
  return `requests=${c.requests} 2xx=${c['2xx']} 429=${c[429]} other=${c.other} ` +
         `p50_ms=${fmt(s.p50_ms)} p95_ms=${fmt(s.p95_ms)} p99_ms=${fmt(s.p99_ms)} ` +
         `req_s=${fmt(s.req_s)}  (by status: ${by || 'none'})`;
}

function main([kind, ...files]) {
  const read = (f) => readFileSync(f, 'utf8');
  if (kind === 'jtl') {
    console.log(`total   ${line(summarizeJtl(parseJtl(read(files[0]))))}`);
  } else if (kind === 'k6') {
    console.log(`total   ${line(summarizeK6(JSON.parse(read(files[0]))))}`);
  } else if (kind === 'loadgen') {
    const phases = files.map((f) => summarizeLoadgen(JSON.parse(read(f))));
    phases.forEach((p, i) => phases.length > 1 && console.log(`phase ${i + 1} ${line(p)}`));
    const total = { requests: 0, statuses: {}, req_s: undefined };
    for (const p of phases) {
      total.requests += p.requests;
      for (const [k, n] of Object.entries(p.statuses)) total.statuses[k] = (total.statuses[k] ?? 0) + n;
    }
    if (phases.length === 1) Object.assign(total, phases[0]);
    console.log(`total   ${line(total)}`);
  } else {
    throw new Error(`unknown kind ${kind}: jtl, k6 or loadgen`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
