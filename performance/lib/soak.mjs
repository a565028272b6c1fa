// The soak under faults (issue 26; docs/performance.md, "Soak under faults"), behind
// performance/soak.sh. Not a speed test: a bounded, modest mix of traffic for --minutes through
// two gateway instances sharing one redis-server, while Redis is paused, killed and restarted,
// has its scripts flushed and its clients killed, and the backends reset and hang requests.
// Afterwards, with Redis healthy, it checks:
//
//  1 settled     every instance's trl_reservations_unsettled comes back to 0 (bounded poll)
//  2 usage       the usage rows (GET /admin/v1/usage) of the keys whose requests all complete
//                equal the usage in the answers the clients received, exactly; the other keys'
//                (aborted streams, backend faults) are settled at the gateway's own count of
//                what it relayed, which no backend reported: their figures are printed beside
//                the mocks' counters, not checked
//  3 connections no client connection left open on either listener after idle, no socket in
//                CLOSE_WAIT, upstream connections matching the mocks' open ones, Redis
//                connections as many as at the start, trl_inflight_requests 0
//  4 memory      each gateway's RSS every 10 s; the slope after warm-up (the first 20% of the
//                samples) by least squares, in KiB per minute
//
// Prints the curve and a table, writes performance/results/soak-<date>.json. Exit code 1 when a
// check fails. Every process listens on 127.0.0.1; every request has a deadline and the whole
// run a watchdog.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { Proc, freePort, gitInfo, installCleanup, log, machine, memoryKb, run } from './common.mjs';
import { approxTokens } from '../../tests/blackbox/lib/approx_tokens.mjs';
import { makeSystems } from './systems.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PERF = path.resolve(HERE, '..');
const REPO = path.resolve(PERF, '..');

const opt = {
  minutes: 10, seed: Date.now() % 1_000_000, buildDir: path.join(REPO, 'build/release'),
  onStoreError: 'allow', persistence: 'aof', threads: 2, out: null, maxSeconds: null,
  faultGapS: [4, 15], keyLabel: true,
};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = () => process.argv[++i];
  switch (a) {
    case '--quick': opt.minutes = 2; break;
    case '--minutes': opt.minutes = Number(v()); break;
    case '--seed': opt.seed = Number(v()); break;
    case '--on-store-error': opt.onStoreError = v(); break;
    case '--redis-persistence': opt.persistence = v(); break;  // aof | off
    case '--threads': opt.threads = Number(v()); break;
    case '--no-key-label': opt.keyLabel = false; break;  // metrics.key_label: false
    case '--build-dir': opt.buildDir = path.resolve(v()); break;
    case '--max-seconds': opt.maxSeconds = Number(v()); break;
    case '--out': opt.out = path.resolve(v()); break;
    default: throw new Error(`unknown option ${a}`);
  }
}
if (!['allow', 'deny'].includes(opt.onStoreError)) throw new Error('--on-store-error allow|deny');
if (!['aof', 'off'].includes(opt.persistence)) throw new Error('--redis-persistence aof|off');
opt.maxSeconds ??= Math.round(opt.minutes * 60 + 420);
installCleanup(opt.maxSeconds);

// mulberry32: the run's randomness (fault times and kinds, abort points), from --seed.
let seedState = opt.seed >>> 0;
function rand() {
  seedState = (seedState + 0x6d2b79f5) >>> 0;
  let t = seedState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const between = (lo, hi) => lo + rand() * (hi - lo);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

const tmp = mkdtempSync(path.join(os.tmpdir(), 'trl-soak-'));
const TOKEN = 'soak-admin-token';
const sys = makeSystems({ tmp, buildDir: opt.buildDir, threads: opt.threads, mockThreads: 1 });
const startedAt = Date.now();
const fromIso = new Date(startedAt - 3600e3).toISOString().slice(0, 19) + 'Z';

// --- Redis: a fixed port, so that a restart comes back where the gateways look -----------------

const redisPort = await freePort();
const redisDir = path.join(tmp, 'redis');
mkdirSync(redisDir, { recursive: true });
let redis = null;
async function startRedis() {
  // aof: appendfsync always, so a SIGKILL loses nothing Redis answered (budgets, usage rows, API
  // keys survive a restart). off: a restart is a flush (see docs/performance.md).
  const persist = opt.persistence === 'aof'
    ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const p = new Proc('redis-server', 'redis-server', [
    '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', ...persist, '--dir', redisDir,
    '--daemonize', 'no', '--protected-mode', 'no', '--enable-debug-command', 'yes']);
  await p.waitForLine(/Ready to accept connections/, 15000);
  redis = p;
}
const cli = (...args) => run('redis-cli', ['-h', '127.0.0.1', '-p', String(redisPort), ...args],
                             { timeoutMs: 15000 });

// --- backends and gateways ---------------------------------------------------------------------

// Paced so that streams last long enough to be abandoned midway: 20 ms to the first token, then
// 60 tokens a second, up to 24 words an answer. --faults: x-mock-fault resets and hangs requests.
const mockArgs = ['--ttft', '20ms', '--tokens-per-second', '60', '--max-output', '24', '--faults'];
const mocks = [await sys.startMock('mock-a', mockArgs), await sys.startMock('mock-b', mockArgs)];
await startRedis();

const KEYS = {
  clean: 'sk-soak-clean-0123456789',    // non-streaming and streams read to the end
  small: 'sk-soak-small-0123456789',    // a small budget: 429s
  abort: 'sk-soak-abort-0123456789',    // streams the client abandons midway
  faulty: 'sk-soak-faulty-0123456789',  // backend resets, hangs, 500s, truncated streams
};
function gatewayConfig(name) {
  return {
    listen: '127.0.0.1:0',
    server: { threads: opt.threads, idle_timeout: '5s', shutdown_grace: '5s' },
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    store: {
      backend: 'redis', data_dir: path.join(tmp, name, 'data'), journal: 'everysec',
      redis: { url: `redis://127.0.0.1:${redisPort}/0`, timeout: '50ms' },
      on_store_error: opt.onStoreError, concurrency_lease_ttl: '10s',
    },
    usage: { flush_interval: '1s' },
    metrics: { key_label: opt.keyLabel },
    access_log: { output: path.join(tmp, name, 'access.log') },
    models: [{ name: 'm', backends: mocks.map((m) => `http://127.0.0.1:${m.port}`),
               max_output_tokens: 24, timeout: '2s', request_timeout: '20s' }],
    api_keys: [
      { name: 'clean', key: KEYS.clean, limits: [{ tokens: 1e9, per: '1m' }, { concurrent: 64 }] },
      { name: 'small', key: KEYS.small, limits: [{ tokens: 400, per: '10s' }, { concurrent: 2 }] },
      { name: 'abort', key: KEYS.abort, limits: [{ tokens: 1e9, per: '1m' }, { concurrent: 64 }] },
      { name: 'faulty', key: KEYS.faulty, limits: [{ tokens: 1e9, per: '1m' }, { concurrent: 64 }] },
    ],
  };
}
const gateways = [];
for (const name of ['gateway-1', 'gateway-2']) {
  mkdirSync(path.join(tmp, name, 'data'), { recursive: true });
  const gw = await sys.startGateway(name, gatewayConfig(name));
  gw.adminPort = Number((await gw.waitForLine(/admin listening on (\S+):(\d+)\s*$/))[2]);
  gateways.push(gw);
}
log(`seed ${opt.seed}; redis :${redisPort} (${opt.persistence}); mocks :${mocks.map((m) => m.port)}; ` +
    `gateways :${gateways.map((g) => `${g.port}/${g.adminPort}`)}; on_store_error ${opt.onStoreError}`);

async function admin(gw, route, { method = 'GET', body } = {}) {
  const r = await fetch(`http://127.0.0.1:${gw.adminPort}${route}`, {
    method, signal: AbortSignal.timeout(10000),
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, text, json };
}

async function metrics(gw) {
  const r = await fetch(`http://127.0.0.1:${gw.adminPort}/metrics`, { signal: AbortSignal.timeout(5000) });
  const out = {};
  for (const line of (await r.text()).split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    out[m[1] + (m[2] ?? '')] = Number(m[3]);
  }
  return out;
}
const metricSum = (ms, name, filter = '') => Object.entries(ms)
  .filter(([k]) => (k === name || k.startsWith(`${name}{`)) && k.includes(filter))
  .reduce((s, [, v]) => s + v, 0);

async function mockStats() {
  const all = await Promise.all(mocks.map(async (m) => (await fetch(`http://127.0.0.1:${m.port}/mock/stats`)).json()));
  const sum = {};
  for (const s of all) for (const [k, v] of Object.entries(s)) sum[k] = (sum[k] ?? 0) + v;
  return sum;
}

// The gateway's sockets by kind, from ss: clients of its listeners, upstream (to the mocks),
// Redis, and any in CLOSE_WAIT (the peer closed, the gateway never did: a leak).
async function sockets(gw) {
  const r = await run('ss', ['-tanpH'], { timeoutMs: 10000 });
  const out = { listen: 0, clients: 0, upstream: 0, redis: 0, other: 0, close_wait: 0 };
  const mine = r.stdout.split('\n').filter((l) => l.includes(`pid=${gw.pid},`));
  const port = (hp) => Number(hp.slice(hp.lastIndexOf(':') + 1));
  for (const l of mine) {
    const f = l.trim().split(/\s+/);
    const [state, , , local, peer] = f;
    if (state === 'CLOSE-WAIT') out.close_wait++;
    if (state === 'LISTEN') out.listen++;
    else if ([gw.port, gw.adminPort].includes(port(local))) out.clients++;
    else if (mocks.some((m) => m.port === port(peer))) out.upstream++;
    else if (port(peer) === redisPort) out.redis++;
    else out.other++;
  }
  let fds = 0;
  try { fds = (await run('ls', [`/proc/${gw.pid}/fd`])).stdout.trim().split('\n').length; } catch { /* gone */ }
  out.fds = fds;
  return out;
}

// --- traffic ------------------------------------------------------------------------------------

const PROMPTS = ['Say hello to the soak test!', 'Count the sheep, slowly please.',
                 'What is a token bucket? Answer briefly.', 'Repeat after me: settled, settled.'];
// The gateway's prompt estimate with the approx counter (as chatEstimate in
// tests/blackbox/lib/harness.mjs): an admitted request answered 502 or 504 before any token
// reached the client (a backend that failed or timed out) is settled at it.
const promptEstimate = (content) => 3 + 4 + approxTokens(content);

const tally = {};
function t(cls) {
  tally[cls] ??= { sent: 0, status: {}, ok: 0, prompt_tokens: 0, completion_tokens: 0, aborted: 0,
                   errors: 0, no_usage: 0 };
  return tally[cls];
}
let stopping = false;
let rr = 0;
const nextGw = () => gateways[rr++ % gateways.length];

// One chat request; resolves what the client saw. abortAfter: abandon the stream after that many
// events (a client disconnect mid-stream).
async function chat({ key, stream, maxTokens, fault, abortAfter, gw = nextGw() }) {
  const prompt = pick(PROMPTS);
  const body = { model: 'm', messages: [{ role: 'user', content: prompt }], max_tokens: maxTokens };
  if (stream) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 25000);
  const res = { status: 0, usage: null, aborted: false, error: null, code: null, message: '', prompt };
  try {
    const r = await fetch(`http://127.0.0.1:${gw.port}/v1/chat/completions`, {
      method: 'POST', signal: ctl.signal, body: JSON.stringify(body),
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json',
                 ...(fault ? { 'x-mock-fault': fault } : {}) },
    });
    res.status = r.status;
    if (!stream || r.status !== 200) {
      const text = await r.text();
      if (r.status === 200) {
        res.usage = JSON.parse(text).usage ?? null;
      } else {
        try {
          const e = JSON.parse(text).error;
          res.code = e.code ?? e.type;
          res.message = e.message;
        } catch { res.code = 'no-json'; }
      }
      return res;
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let events = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const data = ev.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
        if (!data || data === '[DONE]') continue;
        events++;
        try {
          const j = JSON.parse(data);
          if (j.usage) res.usage = j.usage;
        } catch { /* a cut event */ }
        if (abortAfter !== undefined && events >= abortAfter) {
          res.aborted = true;
          ctl.abort();
          return res;
        }
      }
    }
    return res;
  } catch (e) {
    if (!res.aborted) res.error = e.cause?.code ?? e.name;
    return res;
  } finally {
    clearTimeout(timer);
  }
}

// The answers the gateway counts as requests in usage: every admitted one, whatever happened
// upstream (a 502, 503 no healthy backend, 504 as well as a 200). Not admitted: 429, 401, and
// the 503 of a store error under on_store_error: deny (its message names the store).
const admitted = (res) => res.status !== 0 && res.status !== 429 && res.status !== 401 &&
  res.status !== 400 && !(res.status === 503 && /store|rate limit/i.test(res.message));

function count(cls, res) {
  const c = t(cls);
  c.sent++;
  const label = res.status ? `${res.status}${res.code ? `:${res.code}` : ''}` : res.error;
  c.status[label] = (c.status[label] ?? 0) + 1;
  if (admitted(res) && !res.aborted) c.admitted = (c.admitted ?? 0) + 1;
  if (res.status === 503) c.last_503 = res.message;
  if (res.status === 429) c.rejected = (c.rejected ?? 0) + 1;
  if (res.status === 502 || res.status === 504) {  // forwarded, failed: charged the prompt estimate
    c.failed_upstream = (c.failed_upstream ?? 0) + 1;
    c.estimated_prompt_tokens = (c.estimated_prompt_tokens ?? 0) + promptEstimate(res.prompt);
  }
  if (res.aborted) c.aborted++;
  if (res.error) c.errors++;
  if (res.status === 200 && !res.aborted && !res.error) {
    c.ok++;
    if (res.usage) {
      c.prompt_tokens += res.usage.prompt_tokens;
      c.completion_tokens += res.usage.completion_tokens;
    } else {
      c.no_usage++;
    }
  }
}

async function worker(cls, gapMs, fn) {
  while (!stopping) {
    count(cls, await fn());
    await delay(gapMs * between(0.5, 1.5));
  }
}

const workers = () => [
  worker('clean-json', 40, () => chat({ key: KEYS.clean, stream: false, maxTokens: Math.floor(between(1, 25)) })),
  worker('clean-json', 40, () => chat({ key: KEYS.clean, stream: false, maxTokens: Math.floor(between(1, 25)) })),
  worker('clean-stream', 40, () => chat({ key: KEYS.clean, stream: true, maxTokens: Math.floor(between(1, 25)) })),
  worker('clean-stream', 40, () => chat({ key: KEYS.clean, stream: true, maxTokens: Math.floor(between(1, 25)) })),
  worker('small-429', 30, () => chat({ key: KEYS.small, stream: pick([false, true]), maxTokens: 24 })),
  worker('abort-stream', 60, () => chat({ key: KEYS.abort, stream: true, maxTokens: 24,
                                          abortAfter: Math.floor(between(1, 12)) })),
  worker('backend-fault', 150, () => chat({ key: KEYS.faulty, stream: pick([false, true]), maxTokens: 24,
                                            fault: pick(['reset', 'reset', 'hang', 'http500', 'truncate-stream', '']) })),
  adminWorker(),
];

// Admin writes: a key made on one instance, used on the other once synced, revoked. Its usage
// is exact too (its requests complete), so it joins the exact check under "api-keys".
let apiKeyNo = 0;
const adminTally = { create: {}, revoke: {}, use: {} };
async function adminWorker() {
  while (!stopping) {
    const [a, b] = pick([[gateways[0], gateways[1]], [gateways[1], gateways[0]]]);
    const name = `soak-api-${apiKeyNo++}`;
    let r;
    try {
      r = await admin(a, '/admin/v1/keys', { method: 'POST', body: { name, limits: [{ tokens: 100000, per: '1m' }] } });
    } catch (e) { r = { status: e.name }; }
    adminTally.create[r.status] = (adminTally.create[r.status] ?? 0) + 1;
    if (r.status === 201) {
      await delay(400);  // > the 250 ms key sync
      for (let i = 0; i < 3; i++) {
        const u = await chat({ key: r.json.key, stream: i === 1, maxTokens: 8, gw: b });
        count('api-keys', u);
        adminTally.use[u.status] = (adminTally.use[u.status] ?? 0) + 1;
      }
      let d;
      try { d = await admin(b, `/admin/v1/keys/${name}`, { method: 'DELETE' }); } catch (e) { d = { status: e.name }; }
      adminTally.revoke[d.status] = (adminTally.revoke[d.status] ?? 0) + 1;
    }
    await delay(between(1000, 2000));
  }
}

// --- faults -------------------------------------------------------------------------------------

const faults = { pause_sigstop: 0, debug_sleep: 0, kill_restart: 0, script_flush: 0, client_kill: 0 };
const faultLog = [];
let faultNow = Promise.resolve();
async function oneFault() {
  const kind = pick(['pause_sigstop', 'debug_sleep', 'kill_restart', 'script_flush', 'client_kill']);
  const at = ((Date.now() - trafficStart) / 1000).toFixed(1);
  let detail = '';
  switch (kind) {
    case 'pause_sigstop': {
      const ms = Math.round(between(500, 4000));
      process.kill(redis.pid, 'SIGSTOP');
      await delay(ms);
      process.kill(redis.pid, 'SIGCONT');
      detail = `${ms} ms`;
      break;
    }
    case 'debug_sleep': {
      const s = between(0.5, 3).toFixed(1);
      const r = await cli('DEBUG', 'SLEEP', s);
      detail = `${s} s ${r.stdout.trim()}`;
      break;
    }
    case 'kill_restart': {
      const ms = Math.round(between(200, 3000));
      await redis.stop(0, 'SIGKILL');
      await delay(ms);
      await startRedis();
      detail = `down ${ms} ms`;
      break;
    }
    case 'script_flush': detail = (await cli('SCRIPT', 'FLUSH')).stdout.trim(); break;
    case 'client_kill': detail = `${(await cli('CLIENT', 'KILL', 'TYPE', 'normal')).stdout.trim()} killed`; break;
  }
  faults[kind]++;
  faultLog.push({ at_s: Number(at), kind, detail });
  log(`fault at ${at} s: ${kind} ${detail}`);
}
async function faultLoop(untilMs) {
  while (!stopping && Date.now() + opt.faultGapS[1] * 1000 < untilMs) {
    await delay(between(...opt.faultGapS) * 1000);
    if (stopping) break;
    faultNow = oneFault();
    await faultNow;
  }
}

// --- memory -------------------------------------------------------------------------------------

const rss = [];
function sampleRss() {
  rss.push({ t_s: Math.round((Date.now() - trafficStart) / 1000),
             kb: gateways.map((g) => memoryKb(g.pid).rss), redis_kb: memoryKb(redis.pid).rss });
}
function slopeKbPerMin(points) {  // least squares over [t_s, kb]
  const n = points.length;
  if (n < 3) return null;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) { num += (x - mx) * (y - my); den += (x - mx) ** 2; }
  return (num / den) * 60;
}

// --- the run ------------------------------------------------------------------------------------

// Warm-up: a few requests of each kind, so that pools and caches exist before the baseline.
let trafficStart = Date.now();
for (let i = 0; i < 4; i++) {
  for (const gw of gateways) {
    await chat({ key: KEYS.clean, stream: i % 2 === 1, maxTokens: 8, gw }).then((r) => count('clean-json', r));
  }
}
await delay(6000);  // past idle_timeout: the warm-up's client connections are closed
const before = await Promise.all(gateways.map(sockets));
// The metric series (one set per key name with metrics.key_label): the API keys add names all
// run long, which is growth by design, not a leak; counted to tell the two apart.
const seriesCount = async (g) => Object.keys(await metrics(g)).length;
const seriesBefore = await Promise.all(gateways.map(seriesCount));
log(`sockets before: ${JSON.stringify(before)}`);

trafficStart = Date.now();
const endAt = trafficStart + opt.minutes * 60e3;
sampleRss();
const rssTimer = setInterval(sampleRss, 10000);
const running = workers();
const faulting = faultLoop(endAt);
const progress = setInterval(() => {
  const sent = Object.values(tally).reduce((s, c) => s + c.sent, 0);
  log(`${((Date.now() - trafficStart) / 1000).toFixed(0)} s: ${sent} requests, faults ${JSON.stringify(faults)}, ` +
      `RSS ${rss.at(-1).kb.map((k) => `${(k / 1024).toFixed(1)} MiB`).join(' ')}`);
}, 60000);
await delay(Math.max(0, endAt - Date.now()));
stopping = true;
await faulting;
await faultNow;
await Promise.all(running);
clearInterval(progress);
clearInterval(rssTimer);
const trafficSeconds = (Date.now() - trafficStart) / 1000;
log(`traffic stopped after ${trafficSeconds.toFixed(0)} s; checking`);

// Redis healthy again (a restart may still be under way: faultNow was awaited).
const ping = await cli('PING');
if (ping.stdout.trim() !== 'PONG') throw new Error(`redis not healthy: ${ping.stdout}${ping.stderr}`);

// 1: every reservation settled (the retries back off to 1 s; records lapse after the request
// timeout plus the lease ttl, 30 s: poll up to 60 s).
const settleStart = Date.now();
let unsettled = [];
for (;;) {
  unsettled = await Promise.all(gateways.map(async (g) => metricSum(await metrics(g), 'trl_reservations_unsettled')));
  if (unsettled.every((u) => u === 0) || Date.now() - settleStart > 60000) break;
  await delay(250);
}
const settleMs = Date.now() - settleStart;
// ... and Redis agrees: no concurrency slot still held by any key of the config.
const inUse = {};
for (const name of Object.keys(KEYS)) {
  const r = await admin(gateways[0], `/admin/v1/keys/${name}/limits`);
  inUse[name] = r.status === 200
    ? r.json.limits.filter((l) => l.in_use !== undefined).reduce((s, l) => s + l.in_use, 0) : `HTTP ${r.status}`;
}

// 3: connections, after idle (client keep-alives closed by idle_timeout 5 s).
await delay(7000);
const after = await Promise.all(gateways.map(sockets));
const finalMetrics = await Promise.all(gateways.map(metrics));
const seriesAfter = finalMetrics.map((m) => Object.keys(m).length);
const inflight = finalMetrics.map((m) => metricSum(m, 'trl_inflight_requests'));
const mstats = await mockStats();
const trafficSamples = rss.length;  // the slope is over these; the next one is after the checks
sampleRss();

// 2: usage. Both instances flush every second; the query flushes the asking one.
await delay(2500);
async function usage(gw, key) {
  const r = await admin(gw, `/admin/v1/usage?granularity=day&from=${fromIso}${key ? `&key=${key}` : ''}`);
  if (r.status !== 200) throw new Error(`usage: HTTP ${r.status} ${r.text}`);
  return r.json.total;
}
const usageBy = {};
for (const k of ['clean', 'small', 'abort', 'faulty']) usageBy[k] = await usage(gateways[0], k);
usageBy.all = await usage(gateways[0]);
usageBy.all_other_instance = await usage(gateways[1]);
const api = { requests: 0, prompt_tokens: 0, completion_tokens: 0 };
for (const f of Object.keys(api)) {
  api[f] = usageBy.all[f] - ['clean', 'small', 'abort', 'faulty'].reduce((s, k) => s + usageBy[k][f], 0);
}
usageBy['api-keys'] = api;
const sumCls = (...cls) => {
  const o = { requests: 0, prompt_tokens: 0, completion_tokens: 0, rejected: 0 };
  for (const c of cls) {
    if (!tally[c]) continue;
    o.requests += tally[c].admitted ?? 0;
    o.prompt_tokens += tally[c].prompt_tokens + (tally[c].estimated_prompt_tokens ?? 0);
    o.completion_tokens += tally[c].completion_tokens;
    o.rejected += tally[c].rejected ?? 0;
  }
  return o;
};
const exact = [
  ['clean', sumCls('clean-json', 'clean-stream'), usageBy.clean],
  ['small', sumCls('small-429'), usageBy.small],
  ['api-keys', sumCls('api-keys'), usageBy['api-keys']],
].map(([key, client, gw]) => {
  const diff = {};
  for (const f of ['requests', 'prompt_tokens', 'completion_tokens']) diff[f] = gw[f] - client[f];
  if (key === 'small') diff.rejected = gw.rejected - client.rejected;
  return { key, client, gateway: gw, diff, ok: Object.values(diff).every((d) => d === 0) };
});

// 4: memory.
const warm = Math.max(1, Math.floor(trafficSamples * 0.2));
const mem = gateways.map((g, i) => {
  const kb = rss.map((s) => s.kb[i]);
  return { name: g.name, start_kb: kb[0], after_warmup_kb: kb[warm], end_kb: kb.at(-1), max_kb: Math.max(...kb),
           slope_kb_per_min: slopeKbPerMin(rss.slice(warm, trafficSamples).map((s) => [s.t_s, s.kb[i]])),
           second_half_slope_kb_per_min: slopeKbPerMin(rss.slice(Math.floor(trafficSamples / 2), trafficSamples)
             .map((s) => [s.t_s, s.kb[i]])) };
});

const conn = gateways.map((g, i) => ({
  name: g.name, before: before[i], after: after[i], inflight: inflight[i],
  ok: after[i].clients === 0 && after[i].close_wait === 0 && inflight[i] === 0 &&
      after[i].redis <= before[i].redis && after[i].other === 0,
}));
// The mocks count the connection of the stats query itself: one each.
const upstreamOk = conn.reduce((s, c) => s + c.after.upstream, 0) === mstats.open_connections - mocks.length &&
                   mstats.open_streams === 0;

const checks = {
  settled: { ok: unsettled.every((u) => u === 0) && Object.values(inUse).every((n) => n === 0),
             unsettled, ms: settleMs, concurrency_in_use: inUse },
  usage: { ok: exact.every((e) => e.ok), exact },
  connections: { ok: conn.every((c) => c.ok) && upstreamOk, per_instance: conn,
                 mock_open_connections: mstats.open_connections, mock_open_streams: mstats.open_streams },
  memory: { per_instance: mem, metric_series_before: seriesBefore, metric_series_after: seriesAfter },
};
const result = {
  kind: 'soak', when: new Date(startedAt).toISOString(), git: gitInfo(REPO), machine: machine(),
  options: opt, traffic_seconds: trafficSeconds, tally, admin: adminTally, faults, fault_log: faultLog,
  checks, usage: usageBy, mock_stats: mstats, rss,
  gateway_metrics: finalMetrics.map((m) => ({
    fail_open: metricSum(m, 'trl_store_error_decisions_total', { decision: 'allow' }),
    store_errors: metricSum(m, 'trl_store_errors_total'),
    settlements_applied: metricSum(m, 'trl_settlements_total', 'outcome="applied"'),
    settlements_retried: metricSum(m, 'trl_settlements_total', 'outcome="retried"'),
    settlements_lost: metricSum(m, 'trl_settlements_total', 'outcome="lost"'),
    upstream_errors: metricSum(m, 'trl_upstream_errors_total'),
  })),
};

// --- report -------------------------------------------------------------------------------------

const mib = (kb) => (kb / 1024).toFixed(1);
console.log(`\nsoak: ${trafficSeconds.toFixed(0)} s of traffic, seed ${opt.seed}, on_store_error ${opt.onStoreError}, redis ${opt.persistence}`);
console.log('\nclass           sent    200  aborted  errors  statuses');
for (const [cls, c] of Object.entries(tally)) {
  console.log(`${cls.padEnd(14)} ${String(c.sent).padStart(5)} ${String(c.ok).padStart(6)} ${String(c.aborted).padStart(8)} ` +
              `${String(c.errors).padStart(7)}  ${JSON.stringify(c.status)}`);
}
console.log(`admin writes: ${JSON.stringify(adminTally)}`);
console.log(`faults: ${JSON.stringify(faults)}`);
console.log(`gateway metrics: ${JSON.stringify(result.gateway_metrics)}`);
console.log('\nRSS every 10 s (MiB): t_s gateway-1 gateway-2 redis');
console.log(rss.map((s) => `${s.t_s}:${s.kb.map(mib).join('/')}/${mib(s.redis_kb)}`).join(' '));
console.log('\ncheck        result  figures');
console.log(`settled      ${checks.settled.ok ? 'pass' : 'FAIL'}    unsettled ${unsettled.join(', ')} after ${settleMs} ms; ` +
            `concurrency slots in use ${JSON.stringify(inUse)}`);
for (const e of exact) {
  console.log(`usage        ${e.ok ? 'pass' : 'FAIL'}    ${e.key}: gateway ${JSON.stringify(e.gateway)} vs clients ` +
              `${JSON.stringify(e.client)}; diff ${JSON.stringify(e.diff)}`);
}
console.log(`usage (info)         abort ${JSON.stringify(usageBy.abort)}, faulty ${JSON.stringify(usageBy.faulty)}; ` +
            `all ${JSON.stringify(usageBy.all)} (other instance: ${JSON.stringify(usageBy.all_other_instance)}); ` +
            `mocks reported ${mstats.prompt_tokens_total}+${mstats.completion_tokens_total}, served ` +
            `${mstats.served_prompt_tokens_total}+${mstats.served_completion_tokens_total}`);
for (const c of conn) {
  console.log(`connections  ${c.ok && upstreamOk ? 'pass' : 'FAIL'}    ${c.name}: before ${JSON.stringify(c.before)} ` +
              `after ${JSON.stringify(c.after)} inflight ${c.inflight}`);
}
console.log(`                     mocks: open connections ${mstats.open_connections}, open streams ${mstats.open_streams}`);
for (const m of mem) {
  console.log(`memory       ${m.name}: RSS start ${mib(m.start_kb)} MiB, after warm-up ${mib(m.after_warmup_kb)}, ` +
              `end ${mib(m.end_kb)}, max ${mib(m.max_kb)}; slope after warm-up ${m.slope_kb_per_min?.toFixed(1) ?? '-'} KiB/min ` +
              `(second half ${m.second_half_slope_kb_per_min?.toFixed(1) ?? '-'})`);
}
console.log(`             metric series per instance: ${seriesBefore.join(', ')} before, ${seriesAfter.join(', ')} after ` +
            `(${apiKeyNo} API keys made)`);
const out = opt.out ?? path.join(PERF, 'results',
                                 `soak-${new Date(startedAt).toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
console.log(`\nwritten to ${out}`);

for (const g of gateways) await g.stop();
for (const m of mocks) await m.stop();
await redis.stop();
rmSync(tmp, { recursive: true, force: true });
process.exit(checks.settled.ok && checks.usage.ok && checks.connections.ok ? 0 : 1);
