// The key-scale run behind performance/keys.sh (issue 26 point 11; docs/performance.md): a
// gateway whose store already holds --keys keys made through the admin API (100,000), on the
// embedded store and on Redis. For each store it measures
//   start-up   spawn to /readyz 200, with the keys and with none (best of --starts), and the
//              gateway's own "loaded N keys ... in X ms" line when it prints one;
//   memory     RSS once ready with the keys minus RSS with none, per key;
//   creations  POST /admin/v1/keys one after another (as the issue measured), by wrk over one
//              connection for --seconds seconds: keys per second;
//   admission  Redis only: a second instance on the same Redis; after each 201 from instance
//              A, how long until instance B admits the new key (GET /v1/models, polled back
//              to back), over --probes keys.
// Prints a summary and writes performance/results/keys-<date>.json.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  gitInfo, installCleanup, loadAverage, log, machine, median, memoryKb, run,
} from './common.mjs';
import { makeSystems } from './systems.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');

const opt = {
  keys: 100000, seconds: 5, probes: 20, starts: 2,
  stores: ['memory', 'redis'], buildDir: path.join(REPO, 'build/release'), out: null,
  label: '', maxSeconds: 1800,
};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = () => process.argv[++i];
  switch (a) {
    case '--keys': opt.keys = Number(v()); break;
    case '--seconds': opt.seconds = Number(v()); break;
    case '--probes': opt.probes = Number(v()); break;
    case '--starts': opt.starts = Number(v()); break;
    case '--stores': opt.stores = v().split(','); break;
    case '--build-dir': opt.buildDir = path.resolve(v()); break;
    case '--label': opt.label = v(); break;
    case '--out': opt.out = path.resolve(v()); break;
    case '--max-seconds': opt.maxSeconds = Number(v()); break;
    default: throw new Error(`unknown option ${a}`);
  }
}
installCleanup(opt.maxSeconds);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'trl-keys-'));
const sys = makeSystems({ tmp, buildDir: opt.buildDir, threads: 2, mockThreads: 1 });
const ADMIN_TOKEN = 'bench-admin-token';
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function request(port, method, urlPath, { body, token } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({
      host: '127.0.0.1', port, method, path: urlPath, agent,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}),
                 ...(data ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.setTimeout(30000, () => req.destroy(new Error(`${method} ${urlPath}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

// A record as the gateway stores it (src/keys/key_record.cc), for the secret `sk-seed-<i>`.
function record(i) {
  const name = `user-${String(i).padStart(6, '0')}`;
  const sha256 = createHash('sha256').update(`sk-seed-${i}`).digest('hex');
  return { name, json: JSON.stringify({
    name, sha256, tenant: '', models: [],
    limits: [{ tokens: 100000, per: '1m' }, { requests: 600, per: '1m' }],
    created: 1700000000, updated: 1700000000 }) };
}

// keys.db in the first release's layout (every later release opens it), in one transaction.
function seedSqlite(dir, count) {
  mkdirSync(dir, { recursive: true });
  const lines = ['PRAGMA journal_mode=WAL;', 'BEGIN;',
    'CREATE TABLE keys(name TEXT PRIMARY KEY, record TEXT NOT NULL);',
    'CREATE TABLE meta(version INTEGER NOT NULL);', `INSERT INTO meta(version) VALUES(${count});`];
  for (let i = 0; i < count; i++) {
    const r = record(i);
    lines.push(`INSERT INTO keys(name, record) VALUES('${r.name}', '${r.json}');`);
  }
  lines.push('COMMIT;');
  execFileSync('sqlite3', [path.join(dir, 'keys.db')], { input: lines.join('\n'), stdio: ['pipe', 'ignore', 'inherit'] });
}

function seedRedis(port, count) {
  const cmds = ['FLUSHALL'];
  for (let i = 0; i < count; i += 1000) {
    const fields = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) {
      const r = record(j);
      fields.push(r.name, `'${r.json}'`);
    }
    cmds.push(`HSET trl:keys:{keys}:records ${fields.join(' ')}`);
  }
  cmds.push(`SET trl:keys:{keys}:version ${count}`);
  execFileSync('redis-cli', ['-p', String(port)], { input: cmds.join('\n'), stdio: ['pipe', 'ignore', 'inherit'] });
}

function gatewayConfig(store, mock) {
  return {
    listen: '127.0.0.1:0',
    server: { threads: 1 },
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    store,
    models: [{ name: 'm', backends: [`http://127.0.0.1:${mock.port}`] }],
    default_limits: [{ tokens: 1e9, per: '1m' }],
    access_log: { output: '/dev/null' },
  };
}

// Spawn to /readyz 200: { ms, rssKb, proc, adminPort, loadLine }.
async function start(name, config) {
  const t0 = performance.now();
  const proc = await sys.startGateway(name, config);
  const m = await proc.waitForLine(/admin listening on (\S+):(\d+)\s*$/, 60000);
  const adminPort = Number(m[2]);
  for (;;) {
    const r = await request(adminPort, 'GET', '/readyz').catch(() => ({ status: 0 }));
    if (r.status === 200) break;
    if (performance.now() - t0 > 120000) throw new Error(`${name}: not ready in 120 s`);
    await new Promise((res) => setTimeout(res, 5));
  }
  const ms = performance.now() - t0;
  const loadLine = proc.output.find((l) => /keys: loaded \d+ keys/.test(l)) ?? null;
  return { ms, rssKb: memoryKb(proc.pid).rss, proc, adminPort, loadLine };
}

// `opt.starts` starts, one after another (the first also migrates an older keys.db): the
// last one, still running, with the quickest start's time.
async function bestStart(name, config) {
  let ms = Infinity;
  let last = null;
  for (let i = 0; i < opt.starts; i++) {
    if (last) await last.proc.stop();
    last = await start(`${name}-${i}`, config);
    ms = Math.min(ms, last.ms);
  }
  return { ...last, ms };
}

async function createKey(adminPort, name) {
  const r = await request(adminPort, 'POST', '/admin/v1/keys', { body: { name }, token: ADMIN_TOKEN });
  if (r.status !== 201) throw new Error(`POST /admin/v1/keys ${name}: ${r.status} ${r.body}`);
  return JSON.parse(r.body).key;
}

// wrk (performance/wrk/create-keys.lua), one connection: a client whose own cost per request
// is a few microseconds, so the figure is the gateway's (a Node client spent more CPU per key
// than the gateway in its first thousand requests, before its JIT warmed up).
async function creations(adminPort, prefix) {
  const r = await run('wrk', ['-t1', '-c1', `-d${opt.seconds}s`, '--timeout', '30s', '-s',
                              path.join(REPO, 'performance/wrk/create-keys.lua'),
                              `http://127.0.0.1:${adminPort}`], {
    env: { KEY_PREFIX: prefix, ADMIN_TOKEN },
    timeoutMs: (opt.seconds + 30) * 1000,
  });
  const m = /WRKJSON (\{.*\})/.exec(r.stdout);
  if (!m) throw new Error(`wrk gave no summary (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  const j = JSON.parse(m[1]);
  if (j.other || j.socket_errors) throw new Error(`POST /admin/v1/keys failed: ${m[1]}`);
  const s = j.duration_us / 1e6;
  return { made: j.made, seconds: Math.round(s * 1000) / 1000,
           per_second: Math.round((j.made / s) * 100) / 100 };
}

// After each 201 from A: ms until B answers GET /v1/models with the new key (not 401).
async function admissionDelays(a, b) {
  const delays = [];
  for (let i = 0; i < opt.probes; i++) {
    const secret = await createKey(a.adminPort, `probe-${i}`);
    const t0 = performance.now();
    for (;;) {
      const r = await request(b.proc.port, 'GET', '/v1/models', { token: secret });
      if (r.status === 200) break;
      if (r.status !== 401) throw new Error(`B answered ${r.status}: ${r.body}`);
      if (performance.now() - t0 > 30000) throw new Error('B did not admit the key in 30 s');
    }
    delays.push(performance.now() - t0);
  }
  delays.sort((x, y) => x - y);
  const round = (x) => Math.round(x * 10) / 10;
  return { probes: delays.length, p50_ms: round(median(delays)), max_ms: round(delays.at(-1)) };
}

async function measureStore(kind, mock) {
  log(`${kind}: seeding ${opt.keys} keys`);
  let store;
  let redis = null;
  const dataDir = path.join(tmp, `data-${kind}`);
  if (kind === 'redis') {
    redis = await sys.startRedis();
    store = { backend: 'redis', redis: { url: `redis://127.0.0.1:${redis.port}/0` } };
  } else {
    store = { backend: 'memory', data_dir: dataDir };
  }
  const empty = kind === 'redis' ? (seedRedis(redis.port, 0), store)
                                 : { ...store, data_dir: `${dataDir}-empty` };
  const none = await bestStart(`${kind}-empty`, gatewayConfig(empty, mock));
  await none.proc.stop();
  if (kind === 'redis') seedRedis(redis.port, opt.keys); else seedSqlite(dataDir, opt.keys);
  log(`${kind}: starting with ${opt.keys} keys`);
  const a = await bestStart(`${kind}-keys`, gatewayConfig(store, mock));
  const out = {
    startup_ms: { with_keys: Math.round(a.ms), without: Math.round(none.ms) },
    gateway_load_line: a.loadLine,
    rss_kb: { with_keys: a.rssKb, without: none.rssKb },
    rss_bytes_per_key: Math.round(((a.rssKb - none.rssKb) * 1024) / opt.keys),
  };
  log(`${kind}: creations`);
  out.creations = await creations(a.adminPort, `made-${kind}`);
  if (kind === 'redis') {
    const b = await start('redis-b', gatewayConfig(store, mock));
    log('redis: admission delay on a second instance');
    out.admission_on_other_instance = await admissionDelays(a, b);
    await b.proc.stop();
  }
  await a.proc.stop();
  if (redis) await redis.stop();
  return out;
}

const result = {
  when: new Date().toISOString(), label: opt.label, git: gitInfo(REPO), build_dir: opt.buildDir,
  machine: machine(), load_before: loadAverage(), keys: opt.keys, stores: {},
};
try {
  const mock = await sys.startMock('mock', ['--max-output', '4']);
  for (const kind of opt.stores) result.stores[kind] = await measureStore(kind, mock);
  await mock.stop();
} finally {
  agent.destroy();
}
result.load_after = loadAverage();
const stamp = result.when.replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
const out = opt.out ?? path.join(REPO, 'performance/results', `keys-${stamp}${opt.label ? `-${opt.label}` : ''}.json`);
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result.stores, null, 2)}\n`);
log('wrote', out);
rmSync(tmp, { recursive: true, force: true });
process.exit(0);
