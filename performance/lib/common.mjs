// Shared by performance/lib/bench.mjs and performance/lib/scale.mjs: starting and stopping the
// processes under test, reading /proc, running wrk and trl-loadgen, bounded waits everywhere.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import readline from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';

export const CLK_TCK = 100;  // Linux USER_HZ on every architecture we run on
const PAGE_KB = 4;

export function log(...args) {
  process.stderr.write(`[perf ${new Date().toISOString().slice(11, 19)}] ${args.join(' ')}\n`);
}

// Every process started here, so that an exit for any reason (error, SIGINT, the watchdog) stops
// them all, by pid.
const started = new Set();

export class Proc {
  constructor(name, cmd, args, { env = {}, cwd, detached = false } = {}) {
    this.name = name;
    this.cmd = cmd;
    this.args = args;
    this.child = spawn(cmd, args, {
      env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached,
    });
    this.pid = this.child.pid;
    this.output = [];
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        started.delete(this);
        resolve(this.exitInfo);
      });
      this.child.on('error', (err) => {
        this.exitInfo = { code: -1, signal: null, error: err.message };
        started.delete(this);
        resolve(this.exitInfo);
      });
    });
    this.waiters = [];
    for (const s of [this.child.stdout, this.child.stderr]) {
      readline.createInterface({ input: s }).on('line', (line) => {
        if (this.output.length < 2000) this.output.push(line);
        for (const w of this.waiters) w(line);
      });
    }
    started.add(this);
  }

  // Resolves with the regex match of the first line (already printed or to come) matching `re`.
  waitForLine(re, timeoutMs = 20000) {
    for (const l of this.output) {
      const m = re.exec(l);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms\n` +
                         this.output.slice(-20).join('\n')));
      }, timeoutMs);
      const onLine = (line) => {
        const m = re.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        }
      };
      this.waiters.push(onLine);
      this.exited.then((info) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${JSON.stringify(info)}) before printing ${re}:\n` +
                         this.output.slice(-20).join('\n')));
      });
    });
  }

  async stop(graceMs = 3000, signal = 'SIGTERM') {
    if (this.exitInfo) return this.exitInfo;
    try { process.kill(this.pid, signal); } catch { /* already gone */ }
    const r = await Promise.race([this.exited, delay(graceMs).then(() => null)]);
    if (r) return r;
    try { process.kill(this.pid, 'SIGKILL'); } catch { /* already gone */ }
    return this.exited;
  }
}

export async function stopAll() {
  await Promise.all([...started].map((p) => p.stop(2000)));
}

let cleaningUp = false;
export function installCleanup(maxSeconds) {
  const bail = async (why, code) => {
    if (cleaningUp) return;
    cleaningUp = true;
    log(why);
    await stopAll();
    process.exit(code);
  };
  process.on('SIGINT', () => bail('interrupted: stopping everything started', 130));
  process.on('SIGTERM', () => bail('terminated: stopping everything started', 143));
  const watchdog = setTimeout(() => bail(`watchdog: over ${maxSeconds} s, giving up`, 3),
                              maxSeconds * 1000);
  watchdog.unref();
}

// Runs a command to completion with a hard timeout; resolves { code, stdout, stderr }.
export function run(cmd, args, { env = {}, timeoutMs = 60000, cwd } = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: timeoutMs, cwd,
                          maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' },
             (err, stdout, stderr) => {
               resolve({ code: err ? (err.code ?? -1) : 0, stdout, stderr,
                         killed: Boolean(err?.killed) });
             });
  });
}

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

// --- /proc ------------------------------------------------------------------------------------

// pid and all its descendants (nginx's master and workers, npx's node).
export function processTree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks = [];
    try { tasks = readdirSync(`/proc/${out[i]}/task`); } catch { continue; }
    for (const t of tasks) {
      try {
        const kids = readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      } catch { /* gone */ }
    }
  }
  return out;
}

// CPU seconds of a process and its descendants, as they are now: user space, kernel (system
// time), and their sum.
export function cpuTimes(pid) {
  let user = 0;
  let kernel = 0;
  for (const p of processTree(pid)) {
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      user += Number(f[11]);  // utime (field 14)
      kernel += Number(f[12]);  // stime (field 15)
    } catch { /* gone */ }
  }
  return { user: user / CLK_TCK, kernel: kernel / CLK_TCK, total: (user + kernel) / CLK_TCK };
}

// Resident memory of a process tree: current (VmRSS) and peak (VmHWM), in KiB, summed.
export function memoryKb(pid) {
  let rss = 0;
  let hwm = 0;
  for (const p of processTree(pid)) {
    try {
      const s = readFileSync(`/proc/${p}/status`, 'utf8');
      rss += Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
      hwm += Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0);
    } catch { /* gone */ }
  }
  return { rss, hwm };
}

export function loadAverage() {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

export function machine() {
  let model = '';
  try {
    model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch { /* not Linux */ }
  return { cpus: os.cpus().length, cpu_model: model, kernel: os.release(),
           mem_gb: Math.round(os.totalmem() / 2 ** 30 * 10) / 10 };
}

// Waits until the load average (1 min) is below `max`, at most `maxWaitS` seconds. Returns it.
export async function waitForQuiet(max, maxWaitS) {
  const until = Date.now() + maxWaitS * 1000;
  let l = os.loadavg()[0];
  while (l > max && Date.now() < until) {
    await delay(5000);
    l = os.loadavg()[0];
  }
  return l;
}

// --- load tools -------------------------------------------------------------------------------

// wrk with performance/wrk/chat.lua; resolves the WRKJSON summary plus requests/s.
export async function wrk(lua, url, { connections, threads, seconds, bodyFile, key = '',
                                      path = '/v1/chat/completions', headers = '' }) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '10s',
                '-s', lua, url];
  const r = await run('wrk', args, {
    env: { BODY_FILE: bodyFile, WRK_KEY: key, WRK_PATH: path, WRK_HEADERS: headers },
    timeoutMs: (seconds + 30) * 1000,
  });
  const m = /WRKJSON (\{.*\})/.exec(r.stdout);
  if (!m) throw new Error(`wrk gave no summary (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  const j = JSON.parse(m[1]);
  j.rps = j.requests / (j.duration_us / 1e6);
  j.errors = j.connect_errors + j.read_errors + j.write_errors + j.timeouts + j.non2xx;
  return j;
}

// trl-loadgen; resolves its JSON result.
export async function loadgen(bin, args, timeoutMs) {
  const r = await run(bin, args, { timeoutMs });
  const line = r.stdout.trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`trl-loadgen failed (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
}

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function gitInfo(repo) {
  const r = (args) => {
    try {
      return execFileSyncText('git', ['-C', repo, ...args]);
    } catch { return ''; }
  };
  return { commit: r(['rev-parse', 'HEAD']), short: r(['rev-parse', '--short', 'HEAD']),
           dirty_src: r(['status', '--porcelain', '--', 'src']) !== '' };
}

import { execFileSync } from 'node:child_process';
function execFileSyncText(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

export { existsSync };
