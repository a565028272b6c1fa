#!/usr/bin/env node
// The Redis store's batch script on its own: redis-server's time per call (INFO commandstats),
// for the calls the gateway makes at one connection per shard, alternating: an admission (one
// key's three limits of the benchmark, three charges) and then its settlement (a refund on the
// two token budgets), sent back to back through `redis-cli --pipe`. See performance/results/HISTORY.md,
// "The Redis store at one connection".
//
//   node performance/redis-script.mjs [--calls N] [--rounds R] [--cut TEXT]...
//
// Each round measures, in turn: an empty script with the same keys and arguments (what any
// EVALSHA costs), the script's shared prelude alone, the script cut before the first line that
// holds each TEXT (its part up to there), and the whole script. The script is read from
// src/redis/lua_scripts.cc, so this measures the tree's script. Starts its own redis-server on
// 127.0.0.1 (no persistence), bounded in time.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Proc, freePort, installCleanup, median, stopAll } from './lib/common.mjs';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const opt = { calls: 10000, rounds: 3, cuts: [] };
for (let i = 2; i < process.argv.length; i++) {
  const [name, value] = [process.argv[i], process.argv[i + 1]];
  if (name === '--calls') opt.calls = Number(value);
  else if (name === '--rounds') opt.rounds = Number(value);
  else if (name === '--cut') opt.cuts.push(value);
  else throw new Error(`unknown argument ${name}`);
  i++;
}
installCleanup(600);

const source = readFileSync(path.join(ROOT, 'src/redis/lua_scripts.cc'), 'utf8');
const [prelude, batch] = [...source.matchAll(/R"lua\(([\s\S]*?)\)lua"/g)].map((m) => m[1]);
const cutBefore = (text) => {
  const at = batch.indexOf(text);
  if (at < 0) throw new Error(`--cut: no "${text}" in the batch script`);
  return `${prelude}${batch.slice(0, batch.lastIndexOf('\n', at) + 1)}return 'x'\n`;
};
const variants = [['empty script', "return 'x'\n"], ['prelude only', `${prelude}return 'x'\n`],
                  ...opt.cuts.map((c) => [`up to "${c}"`, cutBefore(c)]),
                  ['whole script', prelude + batch]];

// The packed arguments (lua_scripts.h).
const i64 = (v) => { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(v)); return b; };
const u16 = (v) => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };
const spec = (kind, calendar, cap, period) =>
  Buffer.concat([Buffer.from(kind), Buffer.from([calendar]), i64(cap), i64(period)]);
const minute = 60e6;
const day = 86400e6;
const tokensMinute = spec('t', 0, 1e9, minute);
const tokensDay = spec('t', 1, 1e12, day);
// A head '<c8i8BH': the reservation id (the record's name), lease TTL, flags, entries.
const u8 = (v) => Buffer.from([v]);
const head = (id, flag, n) => Buffer.concat([i64(id), i64(minute * 10), u8(flag), u16(n)]);
const admission = (id) => Buffer.concat([head(id, 1, 3), u16(2), i64(30), u16(3), i64(1), u16(4),
                                         i64(30)]);
const settlement = (id) => Buffer.concat([head(id, 0, 2), u16(2), i64(-6), u16(3), i64(-6)]);
const buckets = ['trl:{b}:k:tokens-minute', 'trl:{b}:k:requests-minute', 'trl:{b}:k:tokens-day'];

// Commands in Redis's wire format, for `redis-cli --pipe`, which sends them and reads the replies.
function command(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

const port = await freePort();
const redis = new Proc('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1',
                       '--save', '', '--appendonly', 'no', '--protected-mode', 'no']);
await redis.waitForLine(/Ready to accept connections/, 10000);
const cli = (args, input) => {
  const r = spawnSync('redis-cli', ['-p', String(port), ...args], { input, timeout: 120000 });
  if (r.status !== 0) throw new Error(`redis-cli ${args[0]}: ${r.stderr}${r.stdout}`);
  return r.stdout.toString();
};
let op = 0;

function measure(script) {
  const sha = cli(['SCRIPT', 'LOAD', script]).trim();
  if (!/^[0-9a-f]{40}$/.test(sha)) throw new Error(`SCRIPT LOAD: ${sha}`);
  // An admission, then its settlement (the same reservation id): each its own call.
  const pair = () => {
    const id = ++op;
    return [
      command(['EVALSHA', sha, '4', 'trl:{b}:r:', ...buckets, '0', '1000', '1000',
               Buffer.concat([tokensMinute, spec('r', 0, 1e9, minute), tokensDay]), '',
               admission(id), '']),
      command(['EVALSHA', sha, '3', 'trl:{b}:r:', buckets[0], buckets[2], '0', '1000', '1000',
               Buffer.concat([tokensMinute, tokensDay]), settlement(id), '', '']),
    ];
  };
  const calls = [];
  for (let i = 0; i < 200; i++) calls.push(...pair());  // warm, and the keys exist
  calls.push(command(['CONFIG', 'RESETSTAT']));
  for (let i = 0; i < opt.calls / 2; i++) calls.push(...pair());
  const piped = cli(['--pipe'], Buffer.concat(calls));
  if (!/errors: 0,/.test(piped)) throw new Error(`EVALSHA failed: ${piped}`);
  const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(cli(['INFO', 'commandstats']));
  return Number(m[2]) / Number(m[1]);
}

const results = variants.map(() => []);
try {
  for (let r = 0; r < opt.rounds; r++) {
    for (const [i, [, script]] of variants.entries()) results[i].push(measure(script));
  }
} finally {
  await stopAll();
}
console.log(`µs of redis-server time per call (median of ${opt.rounds} rounds of ${opt.calls} calls, ` +
            'admissions and settlements alternating):');
for (const [i, [name]] of variants.entries()) {
  console.log(`  ${median(results[i]).toFixed(2).padStart(6)}  ${name}  ` +
              `(${results[i].map((x) => x.toFixed(2)).join(', ')})`);
}
