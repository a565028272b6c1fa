// The side-by-side benchmark behind performance/run.sh (see docs/performance.md).
//
// Starts two instant mock-llm backends (A: answers at once; B: paces streams at a fixed token
// interval, for per-token latency), nginx as a plain proxy_pass with upstream keep-alive, the
// gateway on the embedded store, the gateway on Redis (when this build has it) and optionally
// Portkey, then measures them in rounds, alternating the order, with the same loads:
//   saturation   wrk, 64 connections, the 98-byte chat request
//   1 conn       wrk -c1: latency with nothing queued
//   open loop    trl-loadgen at fixed rates, latency measured from the scheduled send time
//   stream       trl-loadgen, 200-token streams paced by backend B: lateness of every token
//                (from the request's scheduled send, so it includes forwarding the request)
//                and its relay time (from backend B's write, stamped in the event)
//   stream sat.  wrk, 64 connections, 200-token streams relayed as fast as possible (backend A)
// Prints one table and writes performance/results/<date>.json.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  cpuTimes, existsSync, gitInfo, installCleanup, loadAverage, loadgen, log,
  machine, median, memoryKb, run, stopAll, waitForQuiet, wrk,
} from './common.mjs';
import { makeSystems } from './systems.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PERF = path.resolve(HERE, '..');
const REPO = path.resolve(PERF, '..');

// --- options --------------------------------------------------------------------------------

function parseArgs(argv) {
  const o = {
    rounds: 3, satSeconds: 5, latSeconds: 3, rates: [1000, 5000], threads: os.cpus().length,
    mockThreads: os.cpus().length, streamRate: 20, tokenIntervalUs: 1000, redis: true,
    portkey: false, buildDir: path.join(REPO, 'build/release'),
    loadgenBin: path.join(REPO, 'build/perf-loadgen/trl-loadgen'), out: null, maxSeconds: 1200,
    quietLoad: null, quietWait: 0, keepTmp: false, only: null, baseline: null,
    accessLog: '/dev/null', spend: false,
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--quick': o.rounds = 1; o.satSeconds = 2; o.latSeconds = 2; o.rates = [1000]; break;
      case '--rounds': o.rounds = Number(v()); break;
      case '--seconds': o.satSeconds = Number(v()); break;
      case '--latency-seconds': o.latSeconds = Number(v()); break;
      case '--rates': o.rates = v().split(',').map(Number); break;
      case '--threads': o.threads = Number(v()); break;
      case '--mock-threads': o.mockThreads = Number(v()); break;
      case '--stream-rate': o.streamRate = Number(v()); break;
      case '--no-redis': o.redis = false; break;
      case '--portkey': o.portkey = true; break;
      case '--no-portkey': o.portkey = false; break;
      case '--build-dir': o.buildDir = path.resolve(v()); break;
      case '--baseline': o.baseline = path.resolve(v()); break;
      case '--access-log': o.accessLog = v(); break;
      case '--loadgen': o.loadgenBin = path.resolve(v()); break;
      case '--out': o.out = path.resolve(v()); break;
      case '--max-seconds': o.maxSeconds = Number(v()); break;
      case '--wait-quiet': o.quietLoad = Number(v()); o.quietWait = 300; break;
      case '--keep-tmp': o.keepTmp = true; break;
      case '--only': o.only = v().split(','); break;
      case '--spend': o.spend = true; break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  return o;
}

const opt = parseArgs(process.argv);
installCleanup(opt.maxSeconds);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'trl-perf-'));
const lua = path.join(PERF, 'wrk/chat.lua');
const KEY = 'sk-bench-0123456789';
const TOKENS = 200;

// The 98-byte chat request of issue 6, and the streaming ones.
const bodies = {
  chat: '{"model":"m","messages":[{"role":"user","content":"Say hello to the benchmark!"}],"max_tokens":16}',
  streamBurst: '{"model":"m","messages":[{"role":"user","content":"Say hello to the benchmark!"}],' +
               `"max_tokens":${TOKENS},"stream":true}`,
  streamPaced: '{"model":"m-paced","messages":[{"role":"user","content":"Say hello to the benchmark!"}],' +
               `"max_tokens":${TOKENS},"stream":true}`,
};
const bodyFile = {};
for (const [k, v] of Object.entries(bodies)) {
  bodyFile[k] = path.join(tmp, `${k}.json`);
  writeFileSync(bodyFile[k], v);
}
if (Buffer.byteLength(bodies.chat) !== 98) throw new Error('the chat body must be 98 bytes');

// --- systems under test ---------------------------------------------------------------------

const sys = makeSystems({ tmp, buildDir: opt.buildDir, threads: opt.threads, mockThreads: opt.mockThreads });
const { startMock, startNginx, startGateway, startRedis, startPortkey } = sys;

function gatewayConfig(mockA, mockB, store, { baseline = false, spend = false } = {}) {
  const config = sys.gatewayConfig({ m: mockA, 'm-paced': mockB }, store, KEY, TOKENS, {},
                                   baseline ? null : opt.accessLog);
  if (spend) {  // --spend: the models priced, and a spend limit beside the key's three
    for (const m of config.models) m.prices = { input: 0.5, output: 1.5, cached_input: 0.25 };
    config.api_keys[0].limits.push({ spend: 1000000, per: '1m' });
  }
  return config;
}

// One sanity request (`body` to port A); returns an error string or null.
async function probe(t, body = 'chat') {
  const args = ['-s', '-o', path.join(tmp, 'probe.out'), '-w', '%{http_code}', '-X', 'POST',
                '--max-time', '10', '-H', 'content-type: application/json',
                '--data-binary', `@${bodyFile[body]}`];
  if (t.key) args.push('-H', `authorization: Bearer ${t.key}`);
  for (const h of t.headersA.split('\n').filter(Boolean)) args.push('-H', h);
  const r = await run('curl', [...args, `http://127.0.0.1:${t.portA}/v1/chat/completions`]);
  if (r.stdout === '200') return null;
  let answer = '';
  try { answer = readFileSync(path.join(tmp, 'probe.out'), 'utf8').slice(0, 160); } catch { /* none */ }
  return `${body} probe answered HTTP ${r.stdout || '(none)'} ${answer} ${r.stderr}`.trim();
}

// --- measurements ---------------------------------------------------------------------------

function cpuOf(pids) {
  return Object.fromEntries(pids.map(([n, pid]) => [n, cpuTimes(pid)]));
}

async function measureWrk(t, backend, { connections, threads, seconds, body }) {
  const pids = [...t.pids, ['backend', backend.pid]];
  const before = cpuOf(pids);
  const r = await wrk(lua, `http://127.0.0.1:${t.portA}`, {
    connections, threads, seconds, bodyFile: bodyFile[body], key: t.key, headers: t.headersA,
  });
  const after = cpuOf(pids);
  r.cpu_s_per_1k = {};
  r.kernel_cpu_s_per_1k = {};
  for (const [n] of pids) {
    const per1k = (what) => (r.requests ? ((after[n][what] - before[n][what]) / r.requests) * 1000 : null);
    r.cpu_s_per_1k[n] = per1k('total');
    r.kernel_cpu_s_per_1k[n] = per1k('kernel');
  }
  return r;
}

function loadgenArgs(t, port, headers) {
  const a = ['--port', String(port)];
  if (t.key) a.push('--header', `Authorization: Bearer ${t.key}`);
  for (const h of headers.split('\n').filter(Boolean)) a.push('--header', h);
  return a;
}

async function measureRate(t, rate) {
  const args = [...loadgenArgs(t, t.portA, t.headersA), '--mode', 'rate', '--rate', String(rate),
                '--duration', String(opt.latSeconds), '--connections', '32',
                '--body-file', bodyFile.chat, '--timeout', '5'];
  return loadgen(opt.loadgenBin, args, (opt.latSeconds + 30) * 1000);
}

async function measureStream(t) {
  const args = [...loadgenArgs(t, t.portB, t.headersB), '--mode', 'stream',
                '--rate', String(opt.streamRate), '--duration', String(opt.latSeconds),
                '--connections', '32', '--body-file', bodyFile.streamPaced,
                '--interval-us', String(opt.tokenIntervalUs), '--expect-tokens', String(TOKENS),
                '--timeout', '10'];
  return loadgen(opt.loadgenBin, args, (opt.latSeconds + 40) * 1000);
}

// --- main -----------------------------------------------------------------------------------

const result = {
  date: new Date().toISOString(), git: gitInfo(REPO), machine: machine(), settings: opt,
  load_before: loadAverage(), nice: os.getPriority(), skipped: {}, targets: {}, processes: {},
};

async function main() {
  for (const b of [sys.gatewayBin, sys.mockBin, opt.loadgenBin]) {
    if (!existsSync(b)) throw new Error(`missing ${b}: run performance/run.sh (it builds them)`);
  }
  if (opt.quietLoad !== null) {
    log(`waiting (at most ${opt.quietWait} s) for the 1-minute load average to drop below ${opt.quietLoad}`);
    await waitForQuiet(opt.quietLoad, opt.quietWait);
    result.load_before = loadAverage();
  }
  log(`load average ${result.load_before.join(' ')}; ${opt.threads} gateway threads / nginx workers`);

  const mockA = await startMock('mock-a', ['--tokens-per-second', '0', '--max-output', String(TOKENS)]);
  const mockB = await startMock('mock-b', ['--tokens-per-second', String(1e6 / opt.tokenIntervalUs),
                                           '--max-output', String(TOKENS), '--stamp-tokens']);
  const targets = [];
  targets.push({ name: 'direct', portA: mockA.port, portB: mockB.port, key: '', pids: [],
                 headersA: '', headersB: '' });

  const ngx = await startNginx([mockA, mockB]);
  targets.push({ name: 'nginx', portA: ngx.ports[0], portB: ngx.ports[1], key: '',
                 pids: [['proxy', ngx.proc.pid]], headersA: '', headersB: '', proc: ngx.proc });

  const gwm = await startGateway('gateway-memory', gatewayConfig(mockA, mockB, {
    backend: 'memory', data_dir: path.join(tmp, 'gateway-memory/data') }));
  targets.push({ name: 'gateway-memory', portA: gwm.port, portB: gwm.port, key: KEY,
                 pids: [['proxy', gwm.pid]], headersA: '', headersB: '', proc: gwm });

  // --spend: the same gateway with a spend limit (priced models): what spend costs.
  if (opt.spend) {
    const gws = await startGateway('gateway-spend', gatewayConfig(mockA, mockB, {
      backend: 'memory', data_dir: path.join(tmp, 'gateway-spend/data') }, { spend: true }));
    targets.push({ name: 'gateway-spend', portA: gws.port, portB: gws.port, key: KEY,
                   pids: [['proxy', gws.pid]], headersA: '', headersB: '', proc: gws });
  }

  // Another build of the gateway (e.g. the commit before a change), same store and load, in
  // the same rounds: a before/after comparison that the machine's drift cannot skew.
  if (opt.baseline) {
    const bin = path.join(opt.baseline, 'src/app/token-rate-limiter');
    const gwb = await startGateway('gateway-baseline', gatewayConfig(mockA, mockB, {
      backend: 'memory', data_dir: path.join(tmp, 'gateway-baseline/data') },
    { baseline: true }), bin);
    targets.push({ name: 'gateway-baseline', portA: gwb.port, portB: gwb.port, key: KEY,
                   pids: [['proxy', gwb.pid]], headersA: '', headersB: '', proc: gwb });
  }

  if (opt.redis) {
    try {
      const redis = await startRedis();
      const gwr = await startGateway('gateway-redis', gatewayConfig(mockA, mockB, {
        backend: 'redis', redis: { url: `redis://127.0.0.1:${redis.port}/0` } }));
      targets.push({ name: 'gateway-redis', portA: gwr.port, portB: gwr.port, key: KEY,
                     pids: [['proxy', gwr.pid], ['redis', redis.pid]], headersA: '',
                     headersB: '', proc: gwr, redis });
      if (opt.baseline) {  // the other build on Redis too, with a Redis of its own
        const redisB = await startRedis();
        const gwbr = await startGateway('gateway-baseline-redis', gatewayConfig(mockA, mockB, {
          backend: 'redis', redis: { url: `redis://127.0.0.1:${redisB.port}/0` } },
        { baseline: true }),
                                        path.join(opt.baseline, 'src/app/token-rate-limiter'));
        targets.push({ name: 'gateway-baseline-redis', portA: gwbr.port, portB: gwbr.port,
                       key: KEY, pids: [['proxy', gwbr.pid], ['redis', redisB.pid]],
                       headersA: '', headersB: '', proc: gwbr, redis: redisB });
      }
    } catch (err) {
      result.skipped['gateway-redis'] = err.message.split('\n').slice(0, 4).join(' | ');
      log('gateway-redis skipped:', result.skipped['gateway-redis']);
    }
  } else {
    result.skipped['gateway-redis'] = '--no-redis';
  }

  if (opt.portkey) {
    try {
      const pk = await startPortkey();
      const h = (m) => `x-portkey-provider: openai\nx-portkey-custom-host: http://127.0.0.1:${m.port}/v1\n` +
                       'authorization: Bearer sk-unused';
      targets.push({ name: 'portkey', portA: pk.port, portB: pk.port, key: '',
                     pids: [['proxy', pk.pid]], headersA: h(mockA), headersB: h(mockB), proc: pk });
    } catch (err) {
      result.skipped.portkey = err.message.split('\n').slice(0, 3).join(' | ');
      log('portkey skipped:', result.skipped.portkey);
    }
  }

  for (const t of [...targets]) {
    const err = await probe(t);
    if (err) {
      result.skipped[t.name] = err;
      log(`${t.name} skipped: ${err}`);
      targets.splice(targets.indexOf(t), 1);
      continue;
    }
    const streamErr = await probe(t, 'streamBurst');
    if (streamErr) {
      t.noStreams = streamErr;
      result.skipped[`${t.name} streaming`] = streamErr;
      log(`${t.name}: streaming loads skipped: ${streamErr}`);
    }
  }
  const active = opt.only ? targets.filter((t) => t.name === 'direct' || opt.only.includes(t.name))
                          : targets;
  for (const t of active) {
    result.targets[t.name] = { rounds: [] };
    // Warm-up: connections, pools, page faults, the first allocation of every buffer.
    await measureWrk(t, mockA, { connections: 64, threads: 2, seconds: 1, body: 'chat' });
  }

  const capacity = {};
  for (let round = 0; round < opt.rounds; round++) {
    // Alternate: each round starts with the next target, so drift in the machine's load does
    // not always favour the same one.
    const order = active.map((_, i) => active[(i + round) % active.length]);
    const rec = Object.fromEntries(order.map((t) => [t.name, { round }]));
    log(`round ${round + 1}/${opt.rounds}: ${order.map((t) => t.name).join(', ')} (load ${loadAverage()[0]})`);
    for (const t of order) {
      rec[t.name].saturation = await measureWrk(t, mockA, { connections: 64, threads: 2,
                                                            seconds: opt.satSeconds, body: 'chat' });
      capacity[t.name] = Math.max(capacity[t.name] ?? 0, rec[t.name].saturation.rps);
    }
    for (const t of order) {
      rec[t.name].one_connection = await measureWrk(t, mockA, { connections: 1, threads: 1,
                                                                seconds: opt.latSeconds, body: 'chat' });
    }
    for (const rate of opt.rates) {
      for (const t of order) {
        if (rate > 0.8 * capacity[t.name]) {
          rec[t.name][`rate_${rate}`] = { skipped: `over 80% of its saturation throughput` };
          continue;
        }
        rec[t.name][`rate_${rate}`] = await measureRate(t, rate);
      }
    }
    for (const t of order) {
      if (t.noStreams) {
        rec[t.name].stream = { skipped: t.noStreams };
        continue;
      }
      if (opt.streamRate * TOKENS > capacity[t.name] * 50) {
        rec[t.name].stream = { skipped: 'too slow for the stream load' };
        continue;
      }
      rec[t.name].stream = await measureStream(t);
    }
    for (const t of order) {
      if (t.noStreams) {
        rec[t.name].stream_saturation = { skipped: t.noStreams };
        continue;
      }
      rec[t.name].stream_saturation = await measureWrk(t, mockA, {
        connections: 64, threads: 2, seconds: opt.latSeconds, body: 'streamBurst' });
    }
    for (const t of order) result.targets[t.name].rounds.push(rec[t.name]);
  }

  for (const t of active) {
    const procs = { ...(t.proc ? { [t.proc.name]: t.proc.pid } : {}),
                    ...(t.redis ? { [`redis-server (${t.name})`]: t.redis.pid } : {}) };
    for (const [n, pid] of Object.entries(procs)) {
      result.processes[n] = { peak_rss_kb: memoryKb(pid).hwm, rss_kb: memoryKb(pid).rss };
    }
  }
  result.processes['mock-a (backend)'] = { peak_rss_kb: memoryKb(mockA.pid).hwm };
  result.load_after = loadAverage();
  summarise(active);
  await stopAll();
}

// --- summary, table, JSON -------------------------------------------------------------------

function summarise(active) {
  const S = {};
  for (const t of active) {
    const rounds = result.targets[t.name].rounds;
    const pick = (f) => median(rounds.map((r) => { try { return f(r); } catch { return null; } }));
    const sum = (f) => rounds.reduce((a, r) => { try { return a + (f(r) ?? 0); } catch { return a; } }, 0);
    const s = {
      saturation_rps: pick((r) => r.saturation.rps),
      saturation_p50_us: pick((r) => r.saturation.p50_us),
      saturation_p99_us: pick((r) => r.saturation.p99_us),
      saturation_errors: sum((r) => r.saturation.errors),
      c1_rps: pick((r) => r.one_connection.rps),
      c1_p50_us: pick((r) => r.one_connection.p50_us),
      c1_p99_us: pick((r) => r.one_connection.p99_us),
      c1_p999_us: pick((r) => r.one_connection.p999_us),
      c1_errors: sum((r) => r.one_connection.errors),
      proxy_cpu_s_per_1k: pick((r) => r.saturation.cpu_s_per_1k.proxy),
      proxy_kernel_cpu_s_per_1k: pick((r) => r.saturation.kernel_cpu_s_per_1k.proxy),
      redis_cpu_s_per_1k: pick((r) => r.saturation.cpu_s_per_1k.redis),
      backend_cpu_s_per_1k: pick((r) => r.saturation.cpu_s_per_1k.backend),
      stream_ttft_p50_us: pick((r) => r.stream.ttft.p50_us),
      stream_ttft_p99_us: pick((r) => r.stream.ttft.p99_us),
      token_p50_us: pick((r) => r.stream.token_lateness.p50_us),
      token_p99_us: pick((r) => r.stream.token_lateness.p99_us),
      token_p999_us: pick((r) => r.stream.token_lateness.p999_us),
      relay_p50_us: pick((r) => (r.stream.token_relay.count ? r.stream.token_relay.p50_us : null)),
      relay_p99_us: pick((r) => (r.stream.token_relay.count ? r.stream.token_relay.p99_us : null)),
      relay_p999_us: pick((r) => (r.stream.token_relay.count ? r.stream.token_relay.p999_us : null)),
      stream_errors: sum((r) => (r.stream.errors ?? 0) + (r.stream.non2xx ?? 0)),
      stream_sat_rps: pick((r) => r.stream_saturation.rps),
      stream_sat_errors: sum((r) => r.stream_saturation.errors),
      stream_sat_proxy_cpu_s_per_1k: pick((r) => r.stream_saturation.cpu_s_per_1k.proxy),
    };
    for (const rate of opt.rates) {
      s[`rate_${rate}_p50_us`] = pick((r) => r[`rate_${rate}`].latency.p50_us);
      s[`rate_${rate}_p99_us`] = pick((r) => r[`rate_${rate}`].latency.p99_us);
      s[`rate_${rate}_p999_us`] = pick((r) => r[`rate_${rate}`].latency.p999_us);
      s[`rate_${rate}_errors`] = sum((r) => (r[`rate_${rate}`].errors ?? 0) + (r[`rate_${rate}`].non2xx ?? 0));
    }
    S[t.name] = s;
  }
  const d = S.direct ?? {};
  const n = S.nginx ?? {};
  const num = (x) => typeof x === 'number' && Number.isFinite(x);
  const sub = (a, b) => (num(a) && num(b) ? a - b : null);
  const div = (a, b) => (num(a) && num(b) && b !== 0 ? a / b : null);
  for (const [name, s] of Object.entries(S)) {
    s.vs_direct_rps = div(s.saturation_rps, d.saturation_rps);
    s.vs_nginx_rps = div(s.saturation_rps, n.saturation_rps);
    s.c1_added_p50_us = sub(s.c1_p50_us, d.c1_p50_us);
    s.c1_added_p99_us = sub(s.c1_p99_us, d.c1_p99_us);
    for (const rate of opt.rates) {
      const k = `rate_${rate}`;
      s[`${k}_added_p50_us`] = sub(s[`${k}_p50_us`], d[`${k}_p50_us`]);
      s[`${k}_added_p99_us`] = sub(s[`${k}_p99_us`], d[`${k}_p99_us`]);
    }
    s.token_added_p50_us = sub(s.token_p50_us, d.token_p50_us);
    s.token_added_p99_us = sub(s.token_p99_us, d.token_p99_us);
    s.relay_added_p50_us = sub(s.relay_p50_us, d.relay_p50_us);
    s.relay_added_p99_us = sub(s.relay_p99_us, d.relay_p99_us);
    s.stream_sat_vs_nginx = div(s.stream_sat_rps, n.stream_sat_rps);
    if (name === 'gateway-redis') {
      s.vs_memory_rps = div(s.saturation_rps, S['gateway-memory']?.saturation_rps);
    }
    if (name === 'gateway-baseline-redis') {
      s.vs_memory_rps = div(s.saturation_rps, S['gateway-baseline']?.saturation_rps);
    }
    if (name === 'gateway-spend') {
      s.vs_memory_rps = div(s.saturation_rps, S['gateway-memory']?.saturation_rps);
    }
    const proc = { 'gateway-memory': 'gateway-memory', 'gateway-redis': 'gateway-redis',
                   'gateway-spend': 'gateway-spend',
                   'gateway-baseline': 'gateway-baseline',
                   'gateway-baseline-redis': 'gateway-baseline-redis', nginx: 'nginx',
                   portkey: 'portkey' }[name];
    s.peak_rss_mb = proc && result.processes[proc] ? result.processes[proc].peak_rss_kb / 1024 : null;
  }
  result.summary = S;
  printTable(S);
  const dir = path.join(PERF, 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = result.date.replace(/:/g, '').replace(/\..*/, '').replace('T', '-');
  const out = opt.out ?? path.join(dir, `${stamp}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
  log(`wrote ${path.relative(process.cwd(), out)}`);
}

function fmt(v, kind) {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  switch (kind) {
    case 'rps': return v >= 10000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0);
    case 'x': return `${v.toFixed(2)}x`;
    case 'us': return v >= 10000 ? `${(v / 1000).toFixed(1)}ms` : `${v.toFixed(0)}`;
    case '+us': return `${v >= 0 ? '+' : ''}${v >= 10000 || v <= -10000 ? `${(v / 1000).toFixed(1)}ms` : v.toFixed(0)}`;
    case 'ms': return (v * 1000).toFixed(3);
    case 'mb': return v.toFixed(1);
    default: return String(v);
  }
}

function printTable(S) {
  const names = Object.keys(S);
  const rows = [
    ['saturation req/s (64 conns)', 'saturation_rps', 'rps'],
    ['  x direct', 'vs_direct_rps', 'x'],
    ['  x nginx', 'vs_nginx_rps', 'x'],
    ['  x gateway-memory', 'vs_memory_rps', 'x'],
    ['  errors', 'saturation_errors', ''],
    ['  p50 / p99 µs', (s) => `${fmt(s.saturation_p50_us, 'us')} / ${fmt(s.saturation_p99_us, 'us')}`],
    ['1 conn p50 µs', 'c1_p50_us', 'us'],
    ['1 conn p99 µs', 'c1_p99_us', 'us'],
    ['1 conn p99.9 µs', 'c1_p999_us', 'us'],
    ['  added p50 / p99 µs', (s) => `${fmt(s.c1_added_p50_us, '+us')} / ${fmt(s.c1_added_p99_us, '+us')}`],
  ];
  for (const rate of opt.rates) {
    rows.push([`open loop ${rate}/s p50/p99/p99.9 µs`, (s) =>
      `${fmt(s[`rate_${rate}_p50_us`], 'us')}/${fmt(s[`rate_${rate}_p99_us`], 'us')}/${fmt(s[`rate_${rate}_p999_us`], 'us')}`]);
    rows.push(['  added p50 / p99 µs', (s) =>
      `${fmt(s[`rate_${rate}_added_p50_us`], '+us')} / ${fmt(s[`rate_${rate}_added_p99_us`], '+us')}`]);
    rows.push(['  errors', `rate_${rate}_errors`, '']);
  }
  rows.push(
    [`stream ttft p50 / p99 µs`, (s) => `${fmt(s.stream_ttft_p50_us, 'us')} / ${fmt(s.stream_ttft_p99_us, 'us')}`],
    [`stream token late p50/p99/p99.9 µs`, (s) => `${fmt(s.token_p50_us, 'us')}/${fmt(s.token_p99_us, 'us')}/${fmt(s.token_p999_us, 'us')}`],
    ['  token added p50 / p99 µs', (s) => `${fmt(s.token_added_p50_us, '+us')} / ${fmt(s.token_added_p99_us, '+us')}`],
    [`stream token relay p50/p99/p99.9 µs`, (s) => `${fmt(s.relay_p50_us, 'us')}/${fmt(s.relay_p99_us, 'us')}/${fmt(s.relay_p999_us, 'us')}`],
    ['  relay added p50 / p99 µs', (s) => `${fmt(s.relay_added_p50_us, '+us')} / ${fmt(s.relay_added_p99_us, '+us')}`],
    ['  errors', 'stream_errors', ''],
    [`stream saturation req/s (${TOKENS} tok)`, 'stream_sat_rps', 'rps'],
    ['  x nginx', 'stream_sat_vs_nginx', 'x'],
    ['  errors', 'stream_sat_errors', ''],
    ['CPU ms / 1k req: proxy', 'proxy_cpu_s_per_1k', 'ms'],
    ['  of which kernel', 'proxy_kernel_cpu_s_per_1k', 'ms'],
    ['CPU ms / 1k req: redis', 'redis_cpu_s_per_1k', 'ms'],
    ['CPU ms / 1k req: backend', 'backend_cpu_s_per_1k', 'ms'],
    ['CPU ms / 1k streams: proxy', 'stream_sat_proxy_cpu_s_per_1k', 'ms'],
    ['peak RSS MB', 'peak_rss_mb', 'mb'],
  );
  const cells = rows.map(([label, key, kind]) => [label, ...names.map((n) => {
    const s = S[n];
    return typeof key === 'function' ? key(s) : fmt(s[key], kind);
  })]);
  const header = ['', ...names];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => `| ${c.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join(' | ')} |`;
  const out = [line(header), `|${widths.map((w, i) => (i === 0 ? ':' : '') + '-'.repeat(w + 1) + (i === 0 ? '' : ':')).join('|')}|`,
               ...cells.map(line)];
  const g = result.git;
  const text = [
    '',
    `commit ${g.short}${g.dirty_src ? ' (src/ has uncommitted changes)' : ''}, ${result.machine.cpus} CPUs ` +
      `(${result.machine.cpu_model}), load average before ${result.load_before.join(' ')}, ` +
      `after ${result.load_after.join(' ')}; ${opt.threads} gateway threads = nginx workers, ` +
      `${opt.rounds} round(s), medians over rounds${result.nice ? `, at niceness ${result.nice}` : ''}`,
    ...out,
    ...Object.entries(result.skipped).map(([k, v]) => `skipped ${k}: ${v}`),
    '',
  ].join('\n');
  result.table = text;
  process.stdout.write(text);
}

main().then(() => {
  if (!opt.keepTmp) rmSync(tmp, { recursive: true, force: true });
  process.exit(0);
}).catch(async (err) => {
  log('failed:', err.stack ?? err.message);
  await stopAll();
  process.exit(1);
});
