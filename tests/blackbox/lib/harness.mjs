// Black-box harness: starts the real binaries (mock-llm, token-rate-limiter) on loopback with
// port 0, learns their ports from the "listening on HOST:PORT" lines they print, and stops
// everything it started. No sleeps are used to synchronise: every wait is on a line, a process
// exit, a response, or a bounded poll of an observable value.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import OpenAI from 'openai';

import { approxTokens } from './approx_tokens.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '../../..');

// Bounded waits. Sanitizer builds start slower; the numbers are ceilings, not delays.
export const START_TIMEOUT_MS = Number(process.env.TRL_BB_START_TIMEOUT_MS ?? 20000);
// The longest any poll (pollUntil) waits for the state it watches: a ceiling for a failure to
// be reported, never a measure of how fast the gateway is (a loaded CI machine is slow).
export const POLL_TIMEOUT_MS = Number(process.env.TRL_BB_POLL_TIMEOUT_MS ?? 10000);
export const ADMIN_TOKEN = 'bb-admin-token';

// ---------------------------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------------------------

// Newest build of `rel` under build/*/ (release first on ties), for runs outside ctest.
function newestBuilt(rel) {
  const buildDir = path.join(REPO_ROOT, 'build');
  if (!existsSync(buildDir)) return null;
  const preferred = ['release', 'debug', 'asan', 'tsan'];
  const dirs = readdirSync(buildDir).sort(
    (a, b) => (preferred.indexOf(a) + 1 || 99) - (preferred.indexOf(b) + 1 || 99));
  let best = null;
  for (const d of dirs) {
    const p = path.join(buildDir, d, rel);
    if (!existsSync(p)) continue;
    const mtime = statSync(p).mtimeMs;
    if (!best || mtime > best.mtime) best = { p, mtime };
  }
  return best?.p ?? null;
}

export function gatewayBin() {
  if (process.env.TRL_BIN_DIR) return path.join(process.env.TRL_BIN_DIR, 'token-rate-limiter');
  return newestBuilt('src/app/token-rate-limiter') ??
      path.join(REPO_ROOT, 'build/release/src/app/token-rate-limiter');
}

export function mockBin() {
  return process.env.MOCK_LLM_BIN ?? newestBuilt('src/mock/mock-llm') ??
      path.join(REPO_ROOT, 'build/release/src/mock/mock-llm');
}

function requireBin(p, target) {
  if (!existsSync(p)) {
    throw new Error(`binary not found: ${p} (build the CMake target '${target}', ` +
                    `e.g. scripts/build.sh, or set TRL_BIN_DIR / MOCK_LLM_BIN)`);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

const live = new Set();  // every Proc not yet exited
const relays = new Set();  // every startRelay not yet closed
const started = new Set();  // every Proc, for the post-mortem in cleanup()
const tempDirs = new Set();

// Safety net: a test file that crashes must not leave servers behind.
process.on('exit', () => {
  for (const p of live) {
    try { p.child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

const TAIL_LINES = 200;

export class Proc {
  constructor(name, bin, args, { env = {}, cwd } = {}) {
    this.name = name;
    this.bin = bin;
    this.args = args;
    this.stdout = [];  // last TAIL_LINES lines
    this.stderr = [];
    this.waiters = [];
    this.exitInfo = null;
    this.child = spawn(bin, args, {
      cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this);
    started.add(this);
    this.signalled = false;  // true once the harness sent it a signal: its exit is expected
    this.exited = new Promise((resolve) => {
      const done = (info) => {
        if (this.exitInfo) return;
        this.exitInfo = info;
        live.delete(this);
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`${this.name} exited (${describeExit(info)}) before printing ` +
                             `${w.re}\n${this.diagnostics()}`));
        }
        resolve(info);
      };
      this.child.on('error', (err) => done({ code: null, signal: null, error: err }));
      this.child.on('exit', (code, signal) => {
        // Let the pipes drain so diagnostics hold the last lines.
        setImmediate(() => done({ code, signal }));
      });
    });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      push(this.stdout, line);
      for (const w of [...this.waiters]) {
        const m = w.re.exec(line);
        if (m) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          clearTimeout(w.timer);
          w.resolve(m);
        }
      }
    });
    readline.createInterface({ input: this.child.stderr }).on('line', (line) => {
      push(this.stderr, line);
    });
  }

  get pid() { return this.child.pid; }

  // Resolves with the match of the first stdout line matching `re` (already printed or not);
  // rejects if the process exits first or nothing matches within `timeoutMs`.
  waitForLine(re, timeoutMs = START_TIMEOUT_MS) {
    for (const line of this.stdout) {
      const m = re.exec(line);
      if (m) return Promise.resolve(m);
    }
    if (this.exitInfo) {
      return Promise.reject(new Error(`${this.name} already exited (${describeExit(this.exitInfo)})` +
                                      `\n${this.diagnostics()}`));
    }
    return new Promise((resolve, reject) => {
      const w = { re, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name} did not print ${re} within ${timeoutMs} ms` +
                         `\n${this.diagnostics()}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  signal(sig) {
    if (this.exitInfo) return;
    if (sig !== 'SIGHUP') {
      this.signalled = true;
      this.firstSignal ??= sig;
    }
    this.child.kill(sig);
  }

  // Waits for the exit, at most `timeoutMs`; rejects (leaving the process running) on timeout.
  async waitExit(timeoutMs) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(
          `${this.name} did not exit within ${timeoutMs} ms\n${this.diagnostics()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  // SIGTERM, then SIGKILL if it has not exited within `graceMs`. Never throws.
  async stop(graceMs = 5000) {
    if (this.exitInfo) return this.exitInfo;
    this.signal('SIGTERM');
    try {
      return await this.waitExit(graceMs);
    } catch {
      this.signal('SIGKILL');
      return this.exited;
    }
  }

  diagnostics() {
    return `--- ${this.name} (${this.bin} ${this.args.join(' ')}) stdout tail ---\n` +
        `${this.stdout.slice(-40).join('\n')}\n--- ${this.name} stderr tail ---\n` +
        `${this.stderr.slice(-80).join('\n')}`;
  }
}

function push(buf, line) {
  buf.push(line);
  if (buf.length > TAIL_LINES) buf.shift();
}

function describeExit(info) {
  if (info.error) return `spawn error: ${info.error.message}`;
  return info.signal ? `signal ${info.signal}` : `code ${info.code}`;
}

function hostPort(m) {
  let host = m[1];
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(m[2]);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return { host, port, base: `http://${urlHost}:${port}` };
}

// Stops every process this harness started and removes its temp dirs. Call from `after`.
export async function cleanup() {
  const all = [...started];
  started.clear();
  await Promise.all([...live].map((p) => p.stop(3000)));
  await Promise.all([...relays].map((r) => r.close()));
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
  // Every server must end as the contract says: SIGTERM -> exit 0 (a sanitizer report, a leak
  // found at exit, a crash while draining, or a hang past the grace all show here), and none may
  // die on its own. Processes a test killed on purpose (SIGKILL) are left out.
  const bad = [];
  for (const p of all) {
    const info = p.exitInfo;
    if (!p.signalled) {
      bad.push(`${p.name} exited unexpectedly (${describeExit(info)})\n${p.diagnostics()}`);
    } else if (p.firstSignal === 'SIGTERM' && (info.code !== 0 || info.signal)) {
      bad.push(`${p.name} did not exit 0 on SIGTERM (${describeExit(info)})\n${p.diagnostics()}`);
    }
  }
  if (bad.length) throw new Error(bad.join('\n\n'));
}

export function tempDir(prefix = 'trl-bb-') {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

// ---------------------------------------------------------------------------------------------
// mock-llm
// ---------------------------------------------------------------------------------------------

export class Mock {
  constructor(proc, hp, options) {
    this.proc = proc;
    this.host = hp.host;
    this.port = hp.port;
    this.url = hp.base;  // what a gateway config lists as a backend
    this.options = options;
  }

  async stats() {
    const r = await fetch(`${this.url}/mock/stats`);
    if (r.status !== 200) throw new Error(`mock stats: HTTP ${r.status}`);
    return r.json();
  }

  async resetStats() {
    const r = await fetch(`${this.url}/mock/reset-stats`, { method: 'POST' });
    await r.arrayBuffer();
    if (r.status !== 200 && r.status !== 204) throw new Error(`mock reset-stats: HTTP ${r.status}`);
  }

  // The last 64 requests as mock-llm received them, oldest first: {method, target, headers
  // (lower-case names), body}.
  async requests() {
    const r = await fetch(`${this.url}/mock/requests`);
    if (r.status !== 200) throw new Error(`mock requests: HTTP ${r.status}`);
    return r.json();
  }

  // An OpenAI client talking to this mock directly (the reference answers).
  client(opts = {}) {
    return new OpenAI({ baseURL: `${this.url}/v1`, apiKey: 'direct', maxRetries: 0, ...opts });
  }

  kill(sig = 'SIGKILL') { this.proc.signal(sig); return this.proc.exited; }
  stop() { return this.proc.stop(); }
}

// Options: models (array), maxOutput, ttft ('0ms'), tokensPerSecond (0 = unpaced), threads, and
// defaultMaxOutput (--default-max-output: the words of an answer to a request that sent no cap,
// where vLLM would fill the context).
export async function startMock({ models = ['mock-model'], maxOutput = 16, defaultMaxOutput,
                                  ttft = '0ms', tokensPerSecond = 0, threads = 1,
                                  name = 'mock-llm' } = {}) {
  const args = ['--listen', '127.0.0.1:0', '--models', models.join(','), '--max-output',
                String(maxOutput), '--ttft', ttft, '--tokens-per-second', String(tokensPerSecond),
                '--threads', String(threads), '--faults'];
  if (defaultMaxOutput !== undefined) args.push('--default-max-output', String(defaultMaxOutput));
  const proc = new Proc(name, requireBin(mockBin(), 'mock-llm'), args);
  const m = await proc.waitForLine(/mock-llm listening on (\S+):(\d+)\s*$/);
  return new Mock(proc, hostPort(m),
                  { models, maxOutput, defaultMaxOutput, ttft, tokensPerSecond });
}

// ---------------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------------

// JSON is YAML (1.2 flow style), so a config object is written as indented JSON: no emitter to
// get wrong, and the gateway's YAML parser reads it like any other file.
export function toYaml(config) {
  return `${JSON.stringify(config, null, 2)}\n`;
}

// Fills in what every test gateway needs: loopback port 0 for both listeners, an admin token,
// an embedded store in the test's temp dir, the access log in a file there (stderr keeps the
// gateway's own messages, which a failure prints). Pass admin: null for no admin listener.
export function completeConfig(config, dir) {
  const c = structuredClone(config);
  c.listen ??= '127.0.0.1:0';
  if (c.admin === undefined) c.admin = { listen: '127.0.0.1:0', token: ADMIN_TOKEN };
  if (c.admin === null) delete c.admin;
  c.store ??= { backend: 'memory', data_dir: path.join(dir, 'data') };
  c.access_log ??= { output: path.join(dir, 'access.log') };
  return c;
}

export class Gateway {
  constructor(proc, dir, configPath, data, admin) {
    this.proc = proc;
    this.dir = dir;
    this.configPath = configPath;
    this.port = data.port;
    this.url = data.base;
    this.baseURL = `${data.base}/v1`;
    this.adminUrl = admin?.base ?? null;
  }

  // fetch, but a connection failure caused by a dead gateway says so, with its last output.
  async fetch(url, init) {
    try {
      return await fetch(url, init);
    } catch (err) {
      if (!this.proc.exitInfo) await Promise.race([this.proc.exited, delay(300)]);
      if (this.proc.exitInfo && !this.proc.signalled) {
        throw new Error(`${this.proc.name} died (${describeExit(this.proc.exitInfo)}); ` +
                        `${init?.method ?? 'GET'} ${url} failed: ${err.cause?.code ?? err.message}` +
                        `\n${this.proc.diagnostics()}`);
      }
      throw err;
    }
  }

  // An OpenAI client through the gateway. Retries are off unless asked for, so every refusal
  // shows; pass { maxRetries: undefined } to get the SDK's default.
  client(apiKey, opts = {}) {
    const o = { baseURL: this.baseURL, apiKey, maxRetries: 0,
                fetch: (url, init) => this.fetch(url, init), ...opts };
    if ('maxRetries' in opts && opts.maxRetries === undefined) delete o.maxRetries;
    return new OpenAI(o);
  }

  // POST a JSON body (or a raw string) to /v1/<route> and return the fetch Response unread: for
  // a stream read as it comes (readSse), or a request a test abandons (`signal`).
  send(route, body, { key, headers = {}, signal } = {}) {
    const h = { 'content-type': 'application/json', ...headers };
    if (key !== undefined && key !== null) h.authorization = `Bearer ${key}`;
    return this.fetch(`${this.url}/v1/${route}`, {
      method: 'POST', headers: h, signal,
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  // send(), the answer read: status, headers, text and parsed body.
  async post(route, body, options) {
    return readResponse(await this.send(route, body, options));
  }

  async adminFetch(route, { method = 'GET', token = ADMIN_TOKEN, body } = {}) {
    const headers = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await this.fetch(`${this.adminUrl}${route}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    return readResponse(r);
  }

  async metrics() {
    const r = await this.fetch(`${this.adminUrl}/metrics`);
    const text = await r.text();
    if (r.status !== 200) throw new Error(`GET /metrics: HTTP ${r.status}: ${text}`);
    return parseMetrics(text);
  }

  // Sum of the samples of `name` whose labels include `labels`.
  async metric(name, labels = {}) {
    return metricSum(await this.metrics(), name, labels);
  }

  // Polls a metric until it reaches `want` (bounded: pollUntil); returns the last value read,
  // for the caller to compare (a counter past `want` ends the wait too).
  async waitMetric(name, labels, want) {
    let v;
    await pollUntil(async () => {
      v = await this.metric(name, labels);
      return v >= want;
    });
    return v;
  }

  writeConfig(config) {
    writeFileSync(this.configPath, typeof config === 'string' ? config
                                                              : toYaml(completeConfig(config, this.dir)));
  }

  reload(token = ADMIN_TOKEN) {
    return this.adminFetch('/admin/v1/reload', { method: 'POST', token });
  }

  stop(graceMs) { return this.proc.stop(graceMs); }
}

// Starts the gateway on `config` (an object, completed by completeConfig, or raw YAML text).
export async function startGateway(config, { env = {}, name = 'gateway' } = {}) {
  const bin = requireBin(gatewayBin(), 'token-rate-limiter');
  const dir = tempDir();
  const configPath = path.join(dir, 'config.yaml');
  const full = typeof config === 'string' ? null : completeConfig(config, dir);
  writeFileSync(configPath, full ? toYaml(full) : config);
  const proc = new Proc(name, bin, ['--config', configPath], { env, cwd: dir });
  const data = hostPort(await proc.waitForLine(/data plane listening on (\S+):(\d+)\s*$/));
  let admin = null;
  if (full ? full.admin?.listen : /^admin:/m.test(config)) {
    admin = hostPort(await proc.waitForLine(/admin listening on (\S+):(\d+)\s*$/));
  }
  return new Gateway(proc, dir, configPath, data, admin);
}

// Runs the gateway binary to completion with `args` (e.g. --check-config FILE).
export function runGateway(args, { env = {}, timeoutMs = 20000 } = {}) {
  const r = spawnSync(requireBin(gatewayBin(), 'token-rate-limiter'), args, {
    env: { ...process.env, ...env }, encoding: 'utf8', timeout: timeoutMs,
  });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

// ---------------------------------------------------------------------------------------------
// Redis (the shared store): a real redis-server on loopback, no persistence
// ---------------------------------------------------------------------------------------------

// A loopback TCP port free at the time of asking (redis-server cannot bind port 0).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export class Redis {
  constructor(proc, port) {
    this.proc = proc;
    this.port = port;
    this.url = `redis://127.0.0.1:${port}/0`;  // what a gateway config lists as store.redis.url
  }

  // Runs redis-cli against this server; returns its trimmed output (throws if it fails).
  cli(...args) {
    const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...args],
                        { encoding: 'utf8', timeout: 10000 });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  }

  kill(sig = 'SIGKILL') { this.proc.signal(sig); return this.proc.exited; }
  stop() { return this.proc.stop(); }

  // A fresh server (nothing persisted) on the same port, after this one has exited.
  async restart() {
    await this.kill();
    return startRedis({ port: this.port, name: this.proc.name });
  }
}

// Starts redis-server (scripts/setup.sh installs it); resolves once it accepts connections.
export async function startRedis({ port, name = 'redis', args = [] } = {}) {
  // The port may be taken between asking and binding, or (restart) still be closing: retry.
  for (let attempt = 0; ; attempt++) {
    const p = port ?? await freePort();
    const proc = new Proc(name, 'redis-server', [
      '--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', tempDir('trl-redis-'), ...args]);
    try {
      await proc.waitForLine(/Ready to accept connections/);
      return new Redis(proc, p);
    } catch (err) {
      proc.signal('SIGKILL');
      await proc.exited;
      if (attempt >= 20) throw err;
    }
  }
}

// A loopback port free together with port + 10000 (a Redis Cluster node's bus port).
async function freeClusterPort() {
  for (;;) {
    const p = await freePort();
    if (p + 10000 > 65535) continue;
    const bus = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.on('error', () => resolve(false));
      srv.listen(p + 10000, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (bus) return p;
  }
}

// Three masters, no replicas, every slot assigned (`redis-cli --cluster create`). Resolves
// once every node reports cluster_state:ok; `urls` is what store.redis.url lists.
export async function startRedisCluster({ name = 'redis-cluster' } = {}) {
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    nodes.push(await startRedis({
      port: await freeClusterPort(), name: `${name}-${i}`,
      args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
             '--cluster-node-timeout', '5000'],
    }));
  }
  const create = spawnSync('redis-cli', [
    '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0',
    '--cluster-yes'], { encoding: 'utf8', timeout: 60000 });
  if (create.status !== 0) throw new Error(`redis-cli --cluster create: ${create.stdout}${create.stderr}`);
  const ok = await pollUntil(() => nodes.every((n) => /cluster_state:ok/.test(n.cli('CLUSTER', 'INFO')) &&
                                                  n.cli('CLUSTER', 'SLOTS').split('\n').length > 1));
  if (!ok) throw new Error('the Redis Cluster did not reach cluster_state:ok');
  return { nodes, urls: nodes.map((n) => n.url.replace(/\/0$/, '')) };
}

// ---------------------------------------------------------------------------------------------
// A TCP relay in front of Redis, to inject the network faults a store must live through
// ---------------------------------------------------------------------------------------------

// A TCP proxy on a loopback port in front of `targetPort` (a redis-server); gateways list
// `relay.url` as store.redis.url. Every client connection gets its own upstream connection. Modes:
// - pass(): bytes flow both ways (the default). Bytes a blackhole() held are delivered first,
//   and connections a replyBlackhole() damaged are reset (see there).
// - blackhole(): a partition. Connections stay open and new ones are accepted, but nothing
//   moves either way; what is sent meanwhile is held, as TCP would retransmit it, and delivered
//   on pass() (unless resetAll() kills the connection first).
// - replyBlackhole(): client->Redis bytes are delivered, Redis->client bytes are dropped: Redis
//   applies every call and the gateway never hears back. A connection that lost bytes can never
//   carry a reply again (replies are matched to calls in order), so pass() resets it, as a
//   connection that lost its replies ends in reality.
// - resetAll(): every connection open now is destroyed with a TCP RST to the client (a failover,
//   a proxy restart); the mode stays as it was.
// close() stops listening and destroys every connection.
export async function startRelay(targetPort, { host = '127.0.0.1' } = {}) {
  let mode = 'pass';
  const conns = new Set();
  const stats = { accepted: 0, reset: 0, droppedReplyBytes: 0 };

  const server = net.createServer({ allowHalfOpen: false }, (client) => {
    stats.accepted++;
    const upstream = net.connect({ port: targetPort, host });
    const c = { client, upstream, heldUp: [], heldDown: [], damaged: false, closed: false };
    conns.add(c);
    const close = () => {
      if (c.closed) return;
      c.closed = true;
      conns.delete(c);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d) => {
      if (mode === 'blackhole') c.heldUp.push(d);
      else upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (mode === 'pass') {
        client.write(d);
      } else if (mode === 'blackhole') {
        c.heldDown.push(d);
      } else {  // replyBlackhole
        c.damaged = true;
        stats.droppedReplyBytes += d.length;
      }
    });
    for (const s of [client, upstream]) {
      s.on('error', close);
      s.on('close', close);
    }
  });
  await new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address();

  const resetConn = (c) => {
    if (c.closed) return;
    c.closed = true;
    conns.delete(c);
    stats.reset++;
    try {
      c.client.resetAndDestroy();
    } catch {
      c.client.destroy();  // already closing: nothing left to reset
    }
    c.upstream.destroy();
  };

  const relay = {
    port,
    url: `redis://${host}:${port}/0`,
    stats,
    connections: () => conns.size,
    blackhole() { mode = 'blackhole'; },
    replyBlackhole() { mode = 'replyBlackhole'; },
    pass() {
      mode = 'pass';
      for (const c of [...conns]) {
        if (c.damaged) {
          resetConn(c);
          continue;
        }
        for (const d of c.heldUp.splice(0)) c.upstream.write(d);
        for (const d of c.heldDown.splice(0)) c.client.write(d);
      }
    },
    resetAll() {
      for (const c of [...conns]) resetConn(c);
    },
    async close() {
      if (!relays.delete(relay)) return;
      for (const c of [...conns]) resetConn(c);
      await new Promise((resolve) => server.close(resolve));
    },
  };
  relays.add(relay);
  return relay;
}

// ---------------------------------------------------------------------------------------------
// Fleets: the gateway instances of one store setup
// ---------------------------------------------------------------------------------------------

// The store setups a budget test runs on: the embedded store (one instance) and Redis shared by
// two instances (requests alternate between them, so each reads what the other charged).
export const STORES = ['memory', 'redis'];

// A store setup's gateways. `at(i)` is the instance the i-th request of a test goes to.
export class Fleet {
  constructor(store, config, options) {
    this.store = store;
    this.config = config;  // as the gateways run it (store filled in)
    this.options = options;
    this.gws = [];
    this.redis = null;
    this.relay = null;
  }

  get size() { return this.gws.length; }
  at(i) { return this.gws[i % this.gws.length]; }

  // Sum of a metric over every instance.
  async metric(name, labels = {}) {
    let total = 0;
    for (const gw of this.gws) total += await gw.metric(name, labels);
    return total;
  }

  // True once every request the instances have finished is settled and recorded: no instance
  // has a reservation still unsettled (a Redis settlement goes out after the answer), and,
  // when given, the instances have counted `requests` finished requests (of `key`, with
  // `status`, when given). Settlement comes before recording, and recording before the count.
  // A bounded poll; returns whether it came true.
  async settled({ key, requests, status } = {}) {
    return Boolean(await pollUntil(async () => {
      if (requests !== undefined) {
        const labels = {};
        if (key !== undefined) labels.key = key;
        if (status !== undefined) labels.status = String(status);
        if (await this.metric('trl_requests_total', labels) !== requests) return false;
      }
      for (const gw of this.gws) {
        if (await gw.metric('trl_reservations_unsettled') !== 0) return false;
      }
      return true;
    }));
  }

  // GET /admin/v1/usage's total for `params` (usageTotal), asked of every instance in turn: each
  // writes its own pending usage before it answers, so the last answer holds every instance's.
  async usage(params) {
    let total;
    for (const gw of this.gws) total = await usageTotal(gw, params);
    return total;
  }

  // An instance, started again on the same config and store (same data_dir, same Redis) after
  // it stopped. With Redis each instance has a data_dir of its own (its usage journal).
  async restart(i) {
    const gw = await startGateway(this.configOf(i), { name: `${this.options.name}-${i}` });
    if (this.store !== 'memory') await waitReady(gw);
    this.gws[i] = gw;
    return gw;
  }

  configOf(i) {
    if (this.store === 'memory') return this.config;
    this.dataRoot ??= tempDir();
    const store = { ...this.config.store, data_dir: path.join(this.dataRoot, `${i}`) };
    return { ...this.config, store };
  }

  // Instances that died in an earlier test are replaced (cleanup() reports the death).
  async revive() {
    for (let i = 0; i < this.gws.length; i++) {
      if (this.gws[i].proc.exitInfo) await this.restart(i);
    }
  }

  // Rewrites every instance's config file with `config` (the fleet's store kept) and reloads
  // each through the admin API; resolves once each has said it reloaded.
  async reload(config) {
    this.config = { ...config, store: this.config.store };
    for (const [i, gw] of this.gws.entries()) {
      gw.writeConfig(this.configOf(i));
      const r = await gw.reload();
      if (r.status !== 200) throw new Error(`${gw.proc.name}: reload: HTTP ${r.status} ${r.text}`);
    }
  }

  async stop() {
    for (const gw of this.gws) await gw.stop();
    await this.relay?.close();
  }
}

// Starts a store setup's gateways on `config` (config.store may carry on_store_error,
// concurrency_lease_ttl...; the backend, data_dir and Redis URL are filled in here).
// memory: one instance, its data_dir kept for restarts. redis: a fresh redis-server and
// `instances` instances on it, through a relay (startRelay) when `relay` is set. redis-cluster:
// the same on a fresh three-master Redis Cluster. Resolves once each instance is ready.
export async function startFleet(store, config, { name = `gw-${store}`, instances = 2,
                                                  relay = false, redisTimeout = '1s' } = {}) {
  const fleet = new Fleet(store, null, { name });
  const full = structuredClone(config);
  if (store === 'memory') {
    full.store = { ...full.store, backend: 'memory', data_dir: path.join(tempDir(), 'data') };
    instances = 1;
  } else {
    let url;
    if (store === 'redis-cluster') {
      url = (await startRedisCluster({ name: `redis-${name}` })).urls;
    } else {
      fleet.redis = await startRedis({ name: `redis-${name}` });
      if (relay) fleet.relay = await startRelay(fleet.redis.port);
      url = (fleet.relay ?? fleet.redis).url;
    }
    full.store = { on_store_error: 'deny', ...full.store, backend: 'redis',
                   redis: { url, timeout: redisTimeout } };
  }
  fleet.config = full;
  for (let i = 0; i < instances; i++) fleet.gws.push(null);
  await Promise.all(fleet.gws.map((_, i) => fleet.restart(i)));
  return fleet;
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------------

export async function readResponse(r) {
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json };
}

// Reads an SSE body to its end: the parsed `data:` payloads ('[DONE]' kept as a string).
export async function readSse(response) {
  const events = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of response.body) {
    buf += decoder.decode(chunk, { stream: true });
    let idx;
    while ((idx = buf.search(/\r?\n\r?\n/)) >= 0) {
      const block = buf.slice(0, idx);
      buf = buf.slice(idx).replace(/^\r?\n\r?\n/, '');
      const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:'))
                       .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (data === '') continue;
      events.push(data === '[DONE]' ? data : JSON.parse(data));
    }
  }
  if (buf.trim() !== '') events.push({ trailing_garbage: buf });
  return events;
}

// One HTTP/1.1 exchange on a fresh TCP connection, bytes exactly as given: for requests fetch
// will not send (oversized headers, a body announced but never sent). Resolves once a complete
// response is read or the server closes the connection.
export function rawHttp(port, head, { body = '', timeoutMs = 10000, host = '127.0.0.1' } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host });
    let data = Buffer.alloc(0);
    let settled = false;
    const finish = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      const parsed = parseHttpResponse(data);
      if (parsed) resolve(parsed);
      else reject(err ?? new Error(`no complete HTTP response (got ${JSON.stringify(data.toString())})`));
    };
    const timer = setTimeout(() => finish(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    sock.on('connect', () => {
      sock.write(head);
      if (body) sock.write(body);
    });
    sock.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      if (parseHttpResponse(data, { requireComplete: true })) finish();
    });
    sock.on('end', () => finish());
    sock.on('close', () => finish());
    // The server may reset after answering (it refused to read the rest): keep what arrived.
    sock.on('error', (err) => finish(err));
  });
}

// A streaming POST on a raw TCP connection, read as it arrives (HTTP/1.1 chunked or
// close-delimited, SSE events parsed), for tests that must know exactly what the gateway sent.
// `halfClose()` hangs up the way the gateway watches for (the client's FIN: it sees the client
// gone) while the test keeps reading, so every byte the gateway wrote before it noticed is
// still seen. Returns {head (a promise of {status, headers}), events (parsed data payloads so
// far, '[DONE]' kept as a string), waitEvents(n, pred), halfClose(), destroy(), done (a promise
// of {complete: the body's end was seen, events})}.
export function rawStream(port, route, body, { headers = {}, host = '127.0.0.1' } = {}) {
  const sock = net.connect({ port, host, allowHalfOpen: true });
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  const head = [`POST ${route} HTTP/1.1`, `Host: ${host}:${port}`, 'Content-Type: application/json',
                `Content-Length: ${Buffer.byteLength(payload)}`,
                ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  sock.on('connect', () => sock.write(head + payload));

  const s = { events: [], waiters: [] };
  let buf = Buffer.alloc(0);
  let parsedHead = null;
  let chunked = false;
  let complete = false;
  let sse = '';
  const decoder = new TextDecoder();
  let resolveHead, rejectHead, resolveDone;
  s.head = new Promise((resolve, reject) => { resolveHead = resolve; rejectHead = reject; });
  s.head.catch(() => {});
  s.done = new Promise((resolve) => { resolveDone = resolve; });

  const wake = () => {
    for (const w of [...s.waiters]) {
      if (w.test()) {
        s.waiters.splice(s.waiters.indexOf(w), 1);
        w.resolve(true);
      }
    }
  };
  const body_ = (bytes) => {
    sse += decoder.decode(bytes, { stream: true });
    let idx;
    while ((idx = sse.search(/\r?\n\r?\n/)) >= 0) {
      const block = sse.slice(0, idx);
      sse = sse.slice(idx).replace(/^\r?\n\r?\n/, '');
      const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:'))
                       .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (data === '') continue;
      s.events.push(data === '[DONE]' ? data : JSON.parse(data));
    }
    wake();
  };
  const parse = () => {
    if (!parsedHead) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
      const hs = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) hs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      parsedHead = { status: m ? Number(m[1]) : 0, headers: hs };
      chunked = /chunked/i.test(hs['transfer-encoding'] ?? '');
      buf = buf.subarray(end + 4);
      resolveHead(parsedHead);
    }
    if (!chunked) {
      if (buf.length) body_(buf);
      buf = Buffer.alloc(0);
      return;
    }
    for (;;) {
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const size = parseInt(buf.subarray(0, nl).toString('latin1'), 16);
      if (Number.isNaN(size)) return;
      if (size === 0) {
        complete = true;
        buf = Buffer.alloc(0);
        finish();
        return;
      }
      if (buf.length < nl + 2 + size + 2) return;
      body_(buf.subarray(nl + 2, nl + 2 + size));
      buf = buf.subarray(nl + 2 + size + 2);
    }
  };
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    if (!parsedHead) rejectHead(new Error('the connection ended before a response head'));
    for (const w of s.waiters.splice(0)) w.resolve(w.test());
    resolveDone({ complete, events: s.events });
    sock.destroy();
  };
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    parse();
  });
  sock.on('end', finish);
  sock.on('close', finish);
  sock.on('error', finish);

  // Resolves true once `n` events satisfying `pred` (default: any) have arrived; false if the
  // stream ended first.
  s.waitEvents = (n, pred = () => true) => {
    const test = () => s.events.filter(pred).length >= n;
    if (test() || finished) return Promise.resolve(test());
    return new Promise((resolve) => s.waiters.push({ test, resolve }));
  };
  s.halfClose = () => sock.end();
  s.destroy = () => sock.destroy();
  return s;
}

function parseHttpResponse(buf, { requireComplete = false } = {}) {
  const text = buf.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) return null;
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let rest = buf.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  let body;
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (rest.length < n) {
      if (requireComplete) return null;
    }
    body = rest.subarray(0, n);
  } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const out = [];
    let complete = false;
    for (;;) {
      const s = rest.toString('latin1');
      const nl = s.indexOf('\r\n');
      if (nl < 0) break;
      const size = parseInt(s.slice(0, nl), 16);
      if (Number.isNaN(size)) break;
      if (size === 0) { complete = true; break; }
      if (rest.length < nl + 2 + size + 2) break;
      out.push(rest.subarray(nl + 2, nl + 2 + size));
      rest = rest.subarray(nl + 2 + size + 2);
    }
    if (!complete && requireComplete) return null;
    body = Buffer.concat(out);
  } else {
    if (requireComplete) return null;  // body runs to the close
    body = rest;
  }
  const bodyText = body.toString('utf8');
  let json;
  try { json = JSON.parse(bodyText); } catch { json = undefined; }
  return { status: Number(m[1]), headers, text: bodyText, json };
}

// ---------------------------------------------------------------------------------------------
// Prometheus text format
// ---------------------------------------------------------------------------------------------

export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels = {};
    if (m[2]) {
      for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      }
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

export function metricSum(samples, name, labels = {}) {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// The gateway's token arithmetic, for exact expectations
// ---------------------------------------------------------------------------------------------

export { approxTokens };  // approx_tokens.mjs

// The gateway's prompt estimate of a chat body whose messages have string contents, with the
// approx counter (src/proxy/request_fields.cc CountPromptTokens): 3 per request, 4 per message,
// plus each content's count.
export function chatEstimate(body) {
  let total = 3;
  for (const m of body.messages) {
    if (typeof m.content !== 'string') throw new Error('chatEstimate: string contents only');
    total += 4 + approxTokens(m.content);
  }
  return total;
}

// What the gateway counts as relayed for a stream it could not finish: each relayed event's
// texts (chat delta.content, completions text), counted one event at a time.
export function relayedTokens(events) {
  let total = 0;
  for (const e of events) {
    for (const c of e?.choices ?? []) {
      const t = c.delta?.content ?? c.text;
      if (typeof t === 'string') total += approxTokens(t);
    }
  }
  return total;
}

// The text of a stream's events, concatenated: chat's content deltas, completions' text
// ('[DONE]' and events without text add nothing).
export const streamText = (events) =>
  events.map((e) => e?.choices?.[0]?.delta?.content ?? e?.choices?.[0]?.text ?? '').join('');

// GET /admin/v1/keys/{name}/limits: the key's limits with their live state.
export async function keyLimits(gw, name) {
  const r = await gw.adminFetch(`/admin/v1/keys/${encodeURIComponent(name)}/limits`);
  if (r.status !== 200) throw new Error(`${gw.proc.name}: limits of ${name}: HTTP ${r.status} ${r.text}`);
  return r.json.limits;
}

// GET /admin/v1/usage's total for `params` (key, tenant, model) over the last two hours, by day.
// With `requests`: asks until the total counts that many admitted requests. A request's usage is
// recorded just after its response is sent, so a client that asks at once can be ahead of it.
export async function usageTotal(gw, params, { requests } = {}) {
  const q = new URLSearchParams({ granularity: 'day',
                                  from: new Date(Date.now() - 2 * 3600_000).toISOString(),
                                  ...params });
  // 503: this instance's pending rows could not be written yet (its store is reconnecting after
  // a fault a test made); they are written by a later flush, which a later ask makes.
  let last;
  await pollUntil(async () => {
    last = await gw.adminFetch(`/admin/v1/usage?${q}`);
    if (last.status === 503) return false;
    return requests === undefined || last.json?.total?.requests >= requests;
  });
  const r = last;
  if (r?.status !== 200) {
    throw new Error(`${gw.proc.name}: usage: HTTP ${r?.status ?? 503} ${r?.text ?? ''}`);
  }
  return r.json.total;
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

// Saturating but well-behaved clients: `clients` loops POST `body` to /chat/completions for
// `runMs`, rotating over `gateways`, backing off on a 429 as retry-after-ms says (never past the
// run's end). Returns what the admitted responses carried and how many were refused.
export async function saturate({ gateways, body, key, clients, runMs }) {
  const out = { settledTokens: 0, maxCost: 0, admitted: 0, refused: 0, unexpected: [] };
  const end = performance.now() + runMs;
  let sent = 0;
  async function client() {
    while (performance.now() < end) {
      const gw = gateways[sent++ % gateways.length];
      const r = await gw.send('chat/completions', body, { key });
      if (r.status === 200) {
        const usage = (await r.json()).usage;
        out.settledTokens += usage.total_tokens;
        out.maxCost = Math.max(out.maxCost, usage.total_tokens);
        out.admitted++;
      } else if (r.status === 429) {
        await r.arrayBuffer();
        out.refused++;
        const wait = Number(r.headers.get('retry-after-ms'));
        await delay(Math.max(1, Math.min(wait, 1000, end - performance.now())));
      } else {
        out.unexpected.push(`${gw.proc.name}: ${r.status} ${await r.text()}`);
        if (out.unexpected.length > 5) return;
      }
    }
  }
  await Promise.all(Array.from({ length: clients }, client));
  return out;
}

// Bounded poll of a gateway's /readyz until it answers `want` (200: the store answers through
// the real limiter path and the keys are loaded).
export async function waitReady(gw, want = 200) {
  const status = await pollUntil(async () => {
    const r = await gw.adminFetch('/readyz');
    return r.status === want ? r.status : 0;
  });
  if (status !== want) throw new Error(`${gw.proc.name}: /readyz never answered ${want}`);
}

// Polls `fn` until it returns a truthy value, for at most `timeoutMs`; returns the last result.
// The wait for a state the test cannot be told of (a counter, a budget, a socket closed).
export async function pollUntil(fn, { timeoutMs = POLL_TIMEOUT_MS, intervalMs = 25 } = {}) {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || performance.now() >= end) return v;
    await delay(intervalMs);
  }
}

// "1h2m3.5s", "6m0s", "250ms", "0s" -> milliseconds (the x-ratelimit-reset-* format).
export function parseResetDuration(s) {
  if (typeof s !== 'string') throw new Error(`not a duration: ${s}`);
  let m = /^(\d+)ms$/.exec(s);
  if (m) return Number(m[1]);
  m = /^(?:(\d+)h)?(?:(\d+)m)?(\d+(?:\.\d{1,3})?)s$/.exec(s);
  if (!m) throw new Error(`not a reset duration: ${JSON.stringify(s)}`);
  return Math.round(((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3])) * 1000);
}

// Asserts `body` is an OpenAI-shaped error; returns body.error.
export function errorOf(body, { type, code, param } = {}) {
  if (!body || typeof body !== 'object' || !body.error || typeof body.error !== 'object') {
    throw new Error(`not an OpenAI-shaped error body: ${JSON.stringify(body)}`);
  }
  const e = body.error;
  for (const k of ['message', 'type', 'param', 'code']) {
    if (!(k in e)) throw new Error(`error body lacks "${k}": ${JSON.stringify(body)}`);
  }
  if (typeof e.message !== 'string' || e.message.length === 0) {
    throw new Error(`error.message must be a non-empty string: ${JSON.stringify(body)}`);
  }
  const check = (k, want) => {
    if (want !== undefined && e[k] !== want) {
      throw new Error(`error.${k}: want ${JSON.stringify(want)}, got ${JSON.stringify(e[k])} ` +
                      `in ${JSON.stringify(body)}`);
    }
  };
  check('type', type);
  check('code', code);
  check('param', param);
  return e;
}

export const chatBody = (model, text = 'hello there world', extra = {}) => ({
  model, messages: [{ role: 'user', content: text }], ...extra,
});

// mock-llm's answer of n words.
export const mockText = (n) => Array.from({ length: n }, (_, i) => `w${i + 1}`).join(' ');
