// The scale runs behind performance/scale.sh (see docs/performance.md), gateway next to nginx:
//
//  streams  --streams (2000) concurrent slow streams (the backend paces 10 tokens/s), back to
//           back on each connection for --window seconds: RSS per stream (RSS with the streams
//           open minus RSS before, over the streams), CPU per token relayed, token lateness.
//  idle     --idle (10000) keep-alive connections that made one request and then sit idle
//           (--settle seconds, 2, before RSS is sampled: a proxy may give back what an idle
//           connection holds once it has been idle a while): RSS per connection, and the
//           open-loop latency of normal requests (--rate/s) next to them, against the same
//           load without them (measured before and after, alternating).
// Prints a table and writes performance/results/scale-<date>.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  gitInfo, processTree, installCleanup, loadAverage, loadgen, log, machine, median, run, stopAll,
} from './common.mjs';
import { makeSystems } from './systems.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PERF = path.resolve(HERE, '..');
const REPO = path.resolve(PERF, '..');

const opt = {
  streams: 2000, tokensPerSecond: 10, window: 10, idle: 10000, settle: 2, rate: 1000,
  rateSeconds: 5,
  threads: os.cpus().length, mockThreads: os.cpus().length, buildDir: path.join(REPO, 'build/release'),
  loadgenBin: path.join(REPO, 'build/perf-loadgen/trl-loadgen'), maxSeconds: 900, out: null,
  only: ['streams', 'idle'], targets: ['direct', 'nginx', 'gateway-memory'],
};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = () => process.argv[++i];
  switch (a) {
    case '--quick': opt.streams = 500; opt.idle = 2000; opt.window = 4; opt.rateSeconds = 3; break;
    case '--streams': opt.streams = Number(v()); break;
    case '--window': opt.window = Number(v()); break;
    case '--idle': opt.idle = Number(v()); break;
    case '--settle': opt.settle = Number(v()); break;
    case '--rate': opt.rate = Number(v()); break;
    case '--threads': opt.threads = Number(v()); break;
    case '--only': opt.only = v().split(','); break;
    case '--targets': opt.targets = v().split(','); break;
    case '--build-dir': opt.buildDir = path.resolve(v()); break;
    case '--out': opt.out = path.resolve(v()); break;
    case '--max-seconds': opt.maxSeconds = Number(v()); break;
    default: throw new Error(`unknown option ${a}`);
  }
}
installCleanup(opt.maxSeconds);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'trl-scale-'));
const sys = makeSystems({ tmp, buildDir: opt.buildDir, threads: opt.threads, mockThreads: opt.mockThreads });
const KEY = 'sk-bench-0123456789';
const STREAM_TOKENS = opt.tokensPerSecond * (opt.window + 10);  // outlasts the window
const files = {
  chat: path.join(tmp, 'chat.json'),
  stream: path.join(tmp, 'stream.json'),
};
writeFileSync(files.chat, '{"model":"m","messages":[{"role":"user","content":"Say hello to the benchmark!"}],"max_tokens":16}');
writeFileSync(files.stream, '{"model":"m-paced","messages":[{"role":"user","content":"Say hello to the benchmark!"}],' +
                            `"max_tokens":${STREAM_TOKENS},"stream":true}`);

const result = { date: new Date().toISOString(), git: gitInfo(REPO), machine: machine(),
                 settings: opt, load_before: loadAverage(), nice: os.getPriority(), streams: {},
                 idle: {} };

// Every process of the system (nginx's workers as well as its master), summed by total().
function watch(pid) { return pid === null ? [] : processTree(pid).flatMap((p) => ['--watch-pid', String(p)]); }
function total(samples) {
  return samples.reduce((a, s) => ({ rss_kb: a.rss_kb + Math.max(0, s.rss_kb),
                                     cpu_s: a.cpu_s + Math.max(0, s.cpu_s) }), { rss_kb: 0, cpu_s: 0 });
}

function auth(t) { return t.key ? ['--header', `Authorization: Bearer ${t.key}`] : []; }

async function streamsRun(t, procPid) {
  const args = ['--port', String(t.portSlow), ...auth(t), '--mode', 'hold', '--streams',
                String(opt.streams), '--duration', String(opt.window), '--ramp', '30',
                '--body-file', files.stream, '--interval-us', String(1e6 / opt.tokensPerSecond),
                ...watch(procPid)];
  const r = await loadgen(opt.loadgenBin, args, (opt.window + 90) * 1000);
  const before = total(r.before);
  const during = total(r.during);
  const end = total(r.end);
  const tokensInWindow = r.streams_started * opt.tokensPerSecond * r.window_s;
  return {
    streams_open: r.streams_open, streams_started: r.streams_started,
    errors: r.errors + r.non2xx, first_error: r.first_error,
    rss_before_kb: before.rss_kb, rss_during_kb: during.rss_kb,
    rss_per_stream_kb: (during.rss_kb - before.rss_kb) / Math.max(1, r.streams_started),
    cpu_s: end.cpu_s - during.cpu_s, window_s: r.window_s,
    cpu_core_fraction: (end.cpu_s - during.cpu_s) / r.window_s,
    cpu_us_per_token: ((end.cpu_s - during.cpu_s) / tokensInWindow) * 1e6,
    token_lateness: r.token_lateness, token_gap: r.token_gap, ttft: r.ttft,
  };
}

async function rateRun(t, procPid, idle) {
  const args = ['--port', String(t.port), ...auth(t), '--mode', idle ? 'idle' : 'rate',
                '--rate', String(opt.rate), '--duration', String(opt.rateSeconds),
                '--connections', '32', '--body-file', files.chat, ...watch(procPid)];
  if (idle) args.push('--idle', String(idle), '--settle', String(opt.settle));
  return loadgen(opt.loadgenBin, args, (opt.rateSeconds + 120) * 1000);
}

// Polls mock-llm's /mock/stats until it has no open stream and at most a few connections
// (bounded); returns the streams still open.
async function waitMockIdle(port, timeoutMs) {
  const until = Date.now() + timeoutMs;
  let streams = -1;
  while (Date.now() < until) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/mock/stats`);
      const j = await r.json();
      streams = j.open_streams;
      if (streams === 0) return 0;
    } catch { /* retry */ }
    await new Promise((res) => setTimeout(res, 200));
  }
  return streams;
}

async function main() {
  const mockFast = await sys.startMock('mock-fast', ['--tokens-per-second', '0', '--max-output', '16']);
  const mockSlow = await sys.startMock('mock-slow', ['--tokens-per-second', String(opt.tokensPerSecond),
                                                     '--max-output', String(STREAM_TOKENS)]);
  const targets = [];
  // Direct to the backend: the floor of token lateness (the mock's own pacing under this load).
  if (opt.targets.includes('direct')) {
    targets.push({ name: 'direct', port: mockFast.port, portSlow: mockSlow.port, key: '', proc: null });
  }
  // Each proxy can be started again: the idle run measures a fresh process (warmed up), since
  // one that has just served 2000 streams keeps some of their memory, which 10,000 idle
  // connections then reuse, and the figure per connection would come out too low.
  const addProxy = async (name, key, start) => {
    const t = { name, key, start };
    await start(t);
    targets.push(t);
  };
  if (opt.targets.includes('nginx')) {
    await addProxy('nginx', '', async (t) => {
      const ngx = await sys.startNginx([mockFast, mockSlow]);
      Object.assign(t, { port: ngx.ports[0], portSlow: ngx.ports[1], proc: ngx.proc });
    });
  }
  if (opt.targets.includes('gateway-memory')) {
    let runs = 0;
    await addProxy('gateway-memory', KEY, async (t) => {
      const run = runs++;
      const gw = await sys.startGateway(`gateway-memory-${run}`, sys.gatewayConfig(
        { m: mockFast, 'm-paced': mockSlow },
        { backend: 'memory', data_dir: path.join(tmp, `data-${run}`) }, KEY, STREAM_TOKENS));
      Object.assign(t, { port: gw.port, portSlow: gw.port, proc: gw });
    });
  }
  log(`load average ${result.load_before.join(' ')}; ${opt.threads} gateway threads / nginx workers`);
  for (const t of targets) {
    // Warm-up, so that "before" is a process that has served requests, not a fresh one.
    await rateRun(t, t.proc?.pid ?? null, 0);
  }
  if (opt.only.includes('streams')) {
    for (const t of targets) {
      // The previous system's streams must be gone from the backend first: a mock still busy
      // with 2000 abandoned streams delays the next system's tokens by seconds.
      const left = await waitMockIdle(mockSlow.port, 30000);
      if (left) log(`warning: mock-slow still has ${left} open streams`);
      log(`${t.name}: ${opt.streams} streams at ${opt.tokensPerSecond} tokens/s for ${opt.window} s`);
      result.streams[t.name] = await streamsRun(t, t.proc?.pid ?? null);
    }
  }
  if (opt.only.includes('idle')) {
    for (const t of targets.filter((x) => x.proc)) {
      if (opt.only.includes('streams')) {
        await t.proc.stop();
        await t.start(t);
        await rateRun(t, t.proc.pid, 0);  // warm-up, as above
      }
      log(`${t.name}: ${opt.rate} req/s open loop, alone / next to ${opt.idle} idle connections / alone`);
      const base1 = await rateRun(t, t.proc.pid, 0);
      const withIdle = await rateRun(t, t.proc.pid, opt.idle);
      // Closing 10,000 connections at once keeps a proxy busy for a moment (the gateway: up to
      // half a second); the baseline after it is measured once that is over.
      await new Promise((res) => setTimeout(res, 3000));
      const base2 = await rateRun(t, t.proc.pid, 0);
      const b = total(withIdle.before_idle);
      const w = total(withIdle.with_idle);
      result.idle[t.name] = {
        idle_open: withIdle.idle_open, idle_errors: withIdle.idle_errors,
        rss_before_kb: b.rss_kb, rss_with_idle_kb: w.rss_kb,
        rss_per_connection_kb: (w.rss_kb - b.rss_kb) / Math.max(1, withIdle.idle_open),
        baseline_p50_us: median([base1.latency.p50_us, base2.latency.p50_us]),
        baseline_p99_us: median([base1.latency.p99_us, base2.latency.p99_us]),
        baseline_p99_runs_us: [base1.latency.p99_us, base2.latency.p99_us],
        with_idle_p50_us: withIdle.latency.p50_us, with_idle_p99_us: withIdle.latency.p99_us,
        errors: base1.errors + base2.errors + withIdle.errors + withIdle.non2xx,
      };
      const x = result.idle[t.name];
      x.p99_change = x.with_idle_p99_us / x.baseline_p99_us - 1;
    }
  }
  // What the proxies said about themselves (backend ejections, errors): explains odd figures.
  result.logs = {};
  for (const t of targets.filter((x) => x.proc)) {
    result.logs[t.name] = t.proc.output.filter((l) => /warn|error|crit/i.test(l)).slice(0, 20);
  }
  result.load_after = loadAverage();
  print();
  const dir = path.join(PERF, 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = result.date.replace(/:/g, '').replace(/\..*/, '').replace('T', '-');
  const out = opt.out ?? path.join(dir, `scale-${stamp}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
  log(`wrote ${path.relative(process.cwd(), out)}`);
  await stopAll();
}

function print() {
  const f = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));
  const rows = [];
  for (const [n, s] of Object.entries(result.streams)) {
    rows.push(`| ${n} | ${s.streams_started} streams | RSS ${f(s.rss_before_kb / 1024)} -> ` +
              `${f(s.rss_during_kb / 1024)} MB: ${f(s.rss_per_stream_kb)} KiB/stream | CPU ` +
              `${f(s.cpu_core_fraction * 100)}% of a core, ${f(s.cpu_us_per_token, 2)} µs/token | ` +
              `ttft p50/p99 ${f(s.ttft.p50_us / 1000)}/${f(s.ttft.p99_us / 1000)} ms | token gap ` +
              `p50/p99 ${f(s.token_gap.p50_us, 0)}/${f(s.token_gap.p99_us, 0)} µs | errors ${s.errors} |`);
  }
  for (const [n, s] of Object.entries(result.idle)) {
    rows.push(`| ${n} | ${s.idle_open} idle conns | RSS ${f(s.rss_before_kb / 1024)} -> ` +
              `${f(s.rss_with_idle_kb / 1024)} MB: ${f(s.rss_per_connection_kb, 2)} KiB/conn | ` +
              `${opt.rate}/s p99 ${f(s.baseline_p99_us, 0)} µs alone, ${f(s.with_idle_p99_us, 0)} µs ` +
              `next to them (${s.p99_change >= 0 ? '+' : ''}${f(s.p99_change * 100)}%) | p50 ` +
              `${f(s.baseline_p50_us, 0)} / ${f(s.with_idle_p50_us, 0)} µs | errors ${s.errors} |`);
  }
  for (const [n, lines] of Object.entries(result.logs)) {
    if (lines.length) rows.push(`${n} logged:\n  ${lines.slice(0, 5).join('\n  ')}`);
  }
  const g = result.git;
  const text = `\ncommit ${g.short}${g.dirty_src ? ' (src/ has uncommitted changes)' : ''}, ` +
    `${result.machine.cpus} CPUs, load average before ${result.load_before.join(' ')}, after ` +
    `${result.load_after.join(' ')}; ${opt.threads} gateway threads = nginx workers` +
    `${result.nice ? `; at niceness ${result.nice}` : ''}\n${rows.join('\n')}\n`;
  result.table = text;
  process.stdout.write(text);
}

main().then(() => {
  rmSync(tmp, { recursive: true, force: true });
  process.exit(0);
}).catch(async (err) => {
  log('failed:', err.stack ?? err.message);
  await stopAll();
  process.exit(1);
});
