// The journal's costs and loss window (store.journal; docs/performance.md, "Journal"), behind
// performance/journal.sh, embedded store, against an instant mock-llm:
//
//  throughput  each policy (off, no, everysec, always) in alternating rounds: wrk's requests/s
//              with the 98-byte chat body, and the gateway's CPU per 1,000 requests.
//  loss        per policy, --kills times: wrk drives the gateway, which is SIGKILLed at a random
//              moment of the load, started again on the same data_dir, and asked for its usage:
//              requests answered 200 that the usage rows do not hold are what the crash lost
//              (also in milliseconds of traffic at the measured rate). A request settled but
//              whose answer wrk had not read yet counts the other way (negative).
// Prints a table and writes performance/results/journal-<date>.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { cpuTimes, gitInfo, installCleanup, log, machine, median, wrk } from './common.mjs';
import { makeSystems } from './systems.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PERF = path.resolve(HERE, '..');
const REPO = path.resolve(PERF, '..');

const opt = {
  rounds: 2, seconds: 8, kills: 5, threads: os.cpus().length, mockThreads: 1,
  buildDir: path.join(REPO, 'build/release'), policies: ['off', 'no', 'everysec', 'always'],
  maxSeconds: 900, out: null,
};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = () => process.argv[++i];
  switch (a) {
    case '--quick': opt.rounds = 1; opt.seconds = 3; opt.kills = 2; break;
    case '--rounds': opt.rounds = Number(v()); break;
    case '--seconds': opt.seconds = Number(v()); break;
    case '--kills': opt.kills = Number(v()); break;
    case '--policies': opt.policies = v().split(','); break;
    case '--build-dir': opt.buildDir = path.resolve(v()); break;
    case '--out': opt.out = path.resolve(v()); break;
    default: throw new Error(`unknown option ${a}`);
  }
}
installCleanup(opt.maxSeconds);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'trl-journal-'));
const KEY = 'sk-bench-0123456789';
const TOKEN = 'bench-admin-token';
const bodyFile = path.join(tmp, 'chat.json');
writeFileSync(bodyFile,
              '{"model":"m","messages":[{"role":"user","content":"Say hello to the benchmark!"}],"max_tokens":16}');
const lua = path.join(PERF, 'wrk/chat.lua');
const sys = makeSystems({ tmp, buildDir: opt.buildDir, threads: opt.threads, mockThreads: opt.mockThreads });

let runs = 0;
async function startGateway(mock, policy, dataDir) {
  const config = sys.gatewayConfig({ m: mock }, { backend: 'memory', data_dir: dataDir, journal: policy },
                                   KEY, 16);
  config.admin = { listen: '127.0.0.1:0', token: TOKEN };
  const gw = await sys.startGateway(`gateway-${policy}-${runs++}`, config);
  gw.adminPort = Number((await gw.waitForLine(/admin listening on (\S+):(\d+)\s*$/))[2]);
  return gw;
}

async function usageRequests(gw) {
  const r = await fetch(`http://127.0.0.1:${gw.adminPort}/admin/v1/usage?key=bench&from=${new Date(Date.now() - 86400e3).toISOString().slice(0, 19)}Z`,
                        { headers: { authorization: `Bearer ${TOKEN}` } });
  if (r.status !== 200) throw new Error(`usage: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()).total.requests;
}

const load = (gw, seconds) => wrk(lua, `http://127.0.0.1:${gw.port}`, {
  connections: 32, threads: 2, seconds, bodyFile, key: KEY });

async function throughput(mock, policy) {
  const gw = await startGateway(mock, policy, path.join(tmp, `data-${runs}`));
  await load(gw, 1);  // warm-up
  const before = cpuTimes(gw.pid).total;
  const r = await load(gw, opt.seconds);
  const cpu = cpuTimes(gw.pid).total - before;
  await gw.stop();
  return { rps: r.rps, errors: r.errors, cpu_ms_per_1k: (cpu * 1000) / (r.requests / 1000) };
}

async function lossOnce(mock, policy) {
  const dataDir = path.join(tmp, `data-${runs}`);
  const gw = await startGateway(mock, policy, dataDir);
  const killAfterMs = 1000 + Math.random() * 1000;
  const kill = new Promise((res) => setTimeout(() => { gw.stop(0, 'SIGKILL').then(res); }, killAfterMs));
  const r = await load(gw, 3);
  await kill;
  const served = r.requests - r.non2xx;
  const again = await startGateway(mock, policy, dataDir);
  const recorded = await usageRequests(again);
  await again.stop();
  rmSync(dataDir, { recursive: true, force: true });
  const rate = served / (killAfterMs / 1000);
  return { served, recorded, lost: served - recorded, lost_ms: ((served - recorded) / rate) * 1000 };
}

const mock = await sys.startMock('mock', ['--tokens-per-second', '0', '--max-output', '16']);
const result = { kind: 'journal', when: new Date().toISOString(), git: gitInfo(REPO), machine: machine(),
                 options: opt, throughput: {}, loss: {} };
for (const p of opt.policies) {
  result.throughput[p] = [];
  result.loss[p] = [];
}
for (let round = 0; round < opt.rounds; round++) {
  for (const p of opt.policies) {
    const t = await throughput(mock, p);
    log(`round ${round + 1} ${p}: ${t.rps.toFixed(0)} req/s (${t.errors} errors), ${t.cpu_ms_per_1k.toFixed(1)} CPU ms per 1k`);
    result.throughput[p].push(t);
  }
}
for (let k = 0; k < opt.kills; k++) {
  for (const p of opt.policies) {
    const l = await lossOnce(mock, p);
    log(`kill ${k + 1} ${p}: served ${l.served}, recorded ${l.recorded}, lost ${l.lost} (${l.lost_ms.toFixed(1)} ms)`);
    result.loss[p].push(l);
  }
}
await mock.stop();

console.log('\npolicy     req/s (median)  CPU ms/1k req  lost per SIGKILL (median, max)  as traffic (ms, median)');
for (const p of opt.policies) {
  const t = result.throughput[p];
  const l = result.loss[p];
  console.log(`${p.padEnd(10)} ${median(t.map((x) => x.rps)).toFixed(0).padStart(14)}  ` +
              `${median(t.map((x) => x.cpu_ms_per_1k)).toFixed(1).padStart(13)}  ` +
              `${String(median(l.map((x) => x.lost))).padStart(17)}, ${String(Math.max(...l.map((x) => x.lost))).padStart(6)}     ` +
              `${median(l.map((x) => x.lost_ms)).toFixed(1).padStart(10)}`);
}
const out = opt.out ?? path.join(PERF, 'results',
                                 `journal-${new Date().toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
console.log(`\nwritten to ${out}`);
rmSync(tmp, { recursive: true, force: true });
process.exit(0);
