// The tokenizer speed comparison of issue 32 (docs/performance.md, "Tokenizers"): in one run,
// on one fixed corpus (corpus.mjs: ~4 MB of English prose and Python source, as ~4 KB documents),
// single-threaded each:
//   1. the reference implementations, in this process: npm `tiktoken` (Rust compiled to WASM)
//      cl100k_base encode_ordinary, `js-tiktoken` cl100k_base encode(text, [], []), and
//      `@lenml/tokenizers` with the Llama 3 tokenizer.json (encode, add_special_tokens false):
//      a warm-up pass over the documents, then timed passes until at least --min-passes passes
//      and --min-seconds seconds (at most --max-seconds);
//   2. the gateway's tokenizers (trl_tokenizer_bench, Google Benchmark) over the same documents
//      and over the corpus as one text, and the approx estimate;
//   3. the CLI's load time per tokenizer file: `token-rate-limiter count-tokens --tokenizer SPEC`
//      on empty stdin, wall time, median of --cli-runs runs (`approx` = the process alone).
// Prints one table (MB = 10^6 bytes of UTF-8; ± the coefficient of variation of the passes or
// repetitions, which another process taking the CPU raises) and writes
// performance/results/tokenizers-<date>.json.
// Token counts per pass are compared too: implementations of the same tokenizer over the same
// documents must agree, or the speed comparison is between different work.
//
//   node performance/tokenizers/bench.mjs [--min-seconds 5] [--min-passes 3] [--max-seconds 30]
//       [--bench-min-time 1] [--cli-runs 5] [--build-dir build/release] [--only-references]
//       [--more] (also npm tiktoken o200k_base and @lenml with the Llama 2 file) [--nice=N]
//       [--out FILE]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { gitInfo, loadAverage, log, machine, median } from '../lib/common.mjs';
import { splitDocuments, writeCorpus } from './corpus.mjs';
// The tokenizer files of the tokenizer tests: Hugging Face files in place, .tiktoken files
// converted from tiktoken's encoders/*.json into a temporary directory.
import {
  LLAMA2_CONFIG, LLAMA2_JSON, LLAMA3_CONFIG, LLAMA3_JSON, readJson, tokenizerSpecs,
} from '../../tests/tokenizers/lib/files.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// The references as shipped, pinned by tests/tokenizers/package-lock.json.
const requireReference = createRequire(path.join(REPO, 'tests/tokenizers/package.json'));

const { values: opt } = parseArgs({
  options: {
    'min-seconds': { type: 'string', default: '5' },
    'min-passes': { type: 'string', default: '3' },
    'max-seconds': { type: 'string', default: '30' },
    'bench-min-time': { type: 'string', default: '1' },
    'cli-runs': { type: 'string', default: '5' },
    'build-dir': { type: 'string', default: path.join(REPO, 'build/release') },
    'only-references': { type: 'boolean', default: false },
    more: { type: 'boolean', default: false },
    nice: { type: 'string' },
    'no-build': { type: 'boolean', default: false },  // read by performance/tokenizers.sh
    out: { type: 'string' },
  },
});
// On a machine shared with builds: this process and the benchmark it starts get the CPU first.
if (opt.nice !== undefined) os.setPriority(Number(opt.nice));
const MIN_SECONDS = Number(opt['min-seconds']);
const MIN_PASSES = Number(opt['min-passes']);
const MAX_SECONDS = Number(opt['max-seconds']);
const BUILD = path.resolve(opt['build-dir']);
const GATEWAY = path.join(BUILD, 'src/app/token-rate-limiter');
const BENCH = path.join(BUILD, 'performance/micro/trl_tokenizer_bench');

const { buf: corpusBytes, ...corpus } = writeCorpus(path.join(REPO, 'build/tokenizer-corpus.txt'));
const docs = splitDocuments(corpusBytes).map((b) => b.toString('utf8'));
log(`corpus ${corpus.path}: ${corpus.bytes} bytes, ${docs.length} documents, sha256 ${corpus.sha256}`);

const SPECS = tokenizerSpecs();

// --- the references, in this process ---------------------------------------------------------

function lenml(json, config) {
  const { TokenizerLoader } = requireReference('@lenml/tokenizers');
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: readJson(json), tokenizerConfig: readJson(config),
  });
  return { count: (text) => tok.encode(text, { add_special_tokens: false }).length };
}

function npmTiktoken(encoding) {
  const enc = requireReference('tiktoken').get_encoding(encoding);
  return { count: (text) => enc.encode_ordinary(text).length, free: () => enc.free() };
}

function jsTiktoken(encoding) {
  const enc = requireReference('js-tiktoken').getEncoding(encoding);
  return { count: (text) => enc.encode(text, [], []).length };
}

const REFERENCES = [
  { implementation: 'npm tiktoken', tokenizer: 'cl100k_base', load: () => npmTiktoken('cl100k_base') },
  { implementation: 'js-tiktoken', tokenizer: 'cl100k_base', load: () => jsTiktoken('cl100k_base') },
  { implementation: '@lenml/tokenizers', tokenizer: 'llama3', load: () => lenml(LLAMA3_JSON, LLAMA3_CONFIG) },
  ...(opt.more ? [
    { implementation: 'npm tiktoken', tokenizer: 'o200k_base', load: () => npmTiktoken('o200k_base') },
    { implementation: '@lenml/tokenizers', tokenizer: 'llama2', load: () => lenml(LLAMA2_JSON, LLAMA2_CONFIG) },
  ] : []),
];

function pass(t) {
  let tokens = 0;
  const start = process.hrtime.bigint();
  for (const d of docs) tokens += t.count(d);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, tokens };
}

function measureReference(ref) {
  const loadStart = process.hrtime.bigint();
  const t = ref.load();
  const loadSeconds = Number(process.hrtime.bigint() - loadStart) / 1e9;
  const warm = pass(t);
  const passes = [];
  let elapsed = 0;
  while (passes.length < MIN_PASSES || elapsed < MIN_SECONDS) {
    const p = pass(t);
    if (p.tokens !== warm.tokens) {
      throw new Error(`${ref.implementation}: counts differ between passes`);
    }
    passes.push(p.seconds);
    elapsed += p.seconds;
    if (elapsed >= MAX_SECONDS) break;
  }
  t.free?.();
  const seconds = median(passes);
  const mean = passes.reduce((a, b) => a + b, 0) / passes.length;
  const sd = Math.sqrt(passes.reduce((a, b) => a + (b - mean) ** 2, 0) / (passes.length - 1 || 1));
  return {
    implementation: ref.implementation, tokenizer: ref.tokenizer, input: 'documents',
    mb_per_s: corpus.bytes / seconds / 1e6, tokens_per_s: warm.tokens / seconds,
    best_mb_per_s: corpus.bytes / Math.min(...passes) / 1e6, cv: sd / mean,
    tokens: warm.tokens, passes: passes.length, pass_seconds: passes,
    warmup_seconds: warm.seconds, load_seconds: loadSeconds,
  };
}

// --- the gateway's tokenizers (Google Benchmark) ---------------------------------------------

function runCppBench() {
  if (!existsSync(BENCH)) return { skipped: `missing ${path.relative(REPO, BENCH)}` };
  const env = {
    ...process.env, TRL_TOKENIZER_CORPUS: corpus.path, TRL_TOKENIZER_LLAMA3: SPECS.llama3,
    TRL_TOKENIZER_LLAMA2: SPECS.llama2, TRL_TOKENIZER_CL100K: SPECS.cl100k_base,
    TRL_TOKENIZER_O200K: SPECS.o200k_base,
  };
  const args = ['--benchmark_format=json', `--benchmark_min_time=${opt['bench-min-time']}`,
                '--benchmark_repetitions=3', '--benchmark_report_aggregates_only=true'];
  const r = spawnSync(BENCH, args, { env, encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 26 });
  if (r.status !== 0) {
    return { skipped: `trl_tokenizer_bench exit ${r.status}: ${r.stderr.slice(0, 500)}` };
  }
  const json = JSON.parse(r.stdout);
  // Names are BM_Count/<tokenizer>/<input>[/real_time] (tokenizer_bench.cc). An errored
  // benchmark has no aggregates: its runs report the error.
  const byName = new Map();
  const cvs = new Map();
  for (const b of json.benchmarks) {
    const [, tokenizer, input] = b.run_name.split('/');
    const key = `${tokenizer}/${input}`;
    if (b.error_occurred) {
      byName.set(key, { implementation: 'trl', tokenizer, input, skipped: b.error_message });
      continue;
    }
    // The spread of the repetitions: another process taking the CPU shows up here.
    if (b.aggregate_name === 'cv') cvs.set(key, b.bytes_per_second);
    if (b.aggregate_name !== 'median') continue;
    const expected = input === 'documents' ? docs.length : 1;
    if (b.documents !== expected) {
      throw new Error(`${b.run_name}: ${b.documents} texts per pass, not ${expected}: ` +
                      'tokenizer_bench.cc counts other texts than the references ' +
                      '(another corpus, or another cut)');
    }
    byName.set(key, {
      implementation: tokenizer === 'approx' ? 'trl approx' : 'trl', tokenizer, input,
      mb_per_s: b.bytes_per_second / 1e6, tokens_per_s: b.tokens_per_second, tokens: b.tokens,
    });
  }
  const rows = [...byName.values()];
  for (const [key, cv] of cvs) if (byName.has(key)) byName.get(key).cv = cv;
  return { rows, context: json.context };
}

// --- the CLI's load time ---------------------------------------------------------------------

function cliLoadTimes() {
  if (!existsSync(GATEWAY)) return { skipped: `missing ${path.relative(REPO, GATEWAY)}` };
  const out = {};
  for (const [name, spec] of [['approx', 'approx'], ...Object.entries(SPECS)]) {
    const times = [];
    for (let i = 0; i < Number(opt['cli-runs']); i++) {
      const start = process.hrtime.bigint();
      const r = spawnSync(GATEWAY, ['count-tokens', '--tokenizer', spec], {
        input: '', encoding: 'utf8', timeout: 60_000 });
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (r.status !== 0 || r.stdout !== '0\n') {
        const stdout = JSON.stringify(r.stdout.slice(0, 80));
        const stderr = JSON.stringify(r.stderr.split('\n')[0].slice(0, 200));
        out[name] = { skipped: `exit ${r.status}, stdout ${stdout}, stderr ${stderr}` };
        break;
      }
      times.push(seconds);
    }
    out[name] ??= { spec, median_ms: median(times) * 1000, runs_ms: times.map((s) => s * 1000) };
    // No count-tokens at all (a build before it): one line says so.
    if (name === 'approx' && out.approx.skipped) return { skipped: out.approx.skipped };
  }
  return out;
}

// --- report ----------------------------------------------------------------------------------

function fmt(v, digits) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '-';
}

function printTable(rows, base) {
  const head = ['implementation', 'tokenizer', 'input', 'MB/s', '±', 'Mtokens/s', 'vs npm tiktoken',
                'tokens'];
  const lines = rows.map((r) => [
    r.implementation, r.tokenizer, r.input, fmt(r.mb_per_s, 2),
    typeof r.cv === 'number' ? `${(r.cv * 100).toFixed(0)}%` : '-', fmt(r.tokens_per_s / 1e6, 3),
    r.mb_per_s && base ? `${(r.mb_per_s / base).toFixed(2)}x` : '-',
    r.skipped ? `skipped: ${r.skipped}` : `${r.tokens}${r.count_check ? ` (${r.count_check})` : ''}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => String(l[i]).length)));
  const line = (cols) => cols.map((c, i) => (i >= 3 && i <= 6 ? String(c).padStart(widths[i])
    : String(c).padEnd(widths[i]))).join('  ').trimEnd();
  console.log(line(head));
  for (const l of lines) console.log(line(l));
}

// Same tokenizer, same documents: every count must equal the first reference's.
function checkCounts(rows) {
  const first = {};
  for (const r of rows) {
    if (r.input !== 'documents' || r.tokens === undefined || r.tokenizer === 'approx') continue;
    const ref = first[r.tokenizer];
    if (!ref) {
      first[r.tokenizer] = r;
    } else {
      r.count_check = r.tokens === ref.tokens ? `= ${ref.implementation}`
        : `MISMATCH: ${ref.implementation} counts ${ref.tokens}`;
    }
  }
  return rows.filter((r) => r.count_check?.startsWith('MISMATCH'));
}

const result = {
  date: new Date().toISOString(), git: gitInfo(REPO), machine: machine(), load_before: loadAverage(),
  node: process.version, nice: os.getPriority(), settings: opt,
  corpus: { ...corpus, path: path.relative(REPO, corpus.path), documents: docs.length },
  files: Object.fromEntries(Object.entries(SPECS).map(([k, v]) => [k, v.startsWith('tiktoken:')
    ? `tiktoken:<tmp>/${path.basename(v)}` : path.relative(REPO, v)])),
};

const rows = [];
for (const ref of REFERENCES) {
  log(`${ref.implementation} ${ref.tokenizer}: warm-up and timed passes`);
  rows.push(measureReference(ref));
}
if (!opt['only-references']) {
  log('trl_tokenizer_bench');
  const cpp = runCppBench();
  if (cpp.skipped) log(`trl_tokenizer_bench skipped: ${cpp.skipped}`);
  result.cpp = cpp.skipped ? { skipped: cpp.skipped } : { context: cpp.context };
  rows.push(...(cpp.rows ?? []));
  log('count-tokens load times');
  result.cli_load = cliLoadTimes();
}
const mismatches = checkCounts(rows);
result.rows = rows;
result.load_after = loadAverage();

const base = rows.find((r) => r.implementation === 'npm tiktoken' &&
                              r.tokenizer === 'cl100k_base')?.mb_per_s;
console.log(`corpus: ${corpus.bytes} bytes (${corpus.prose.bytes} prose, ${corpus.code.bytes} code), ` +
            `${docs.length} documents of ~4 KB, sha256 ${corpus.sha256}`);
printTable(rows, base);
if (result.cli_load && !result.cli_load.skipped) {
  console.log('\ncount-tokens load time (empty stdin, wall, median):');
  for (const [name, c] of Object.entries(result.cli_load)) {
    const what = c.skipped ? `skipped: ${c.skipped}` : `${c.median_ms.toFixed(1)} ms`;
    console.log(`  ${name.padEnd(12)} ${what}`);
  }
} else if (result.cli_load) {
  console.log(`\ncount-tokens load time: skipped: ${result.cli_load.skipped}`);
}

const dir = path.join(REPO, 'performance/results');
mkdirSync(dir, { recursive: true });
const stamp = result.date.replace(/:/g, '').replace(/\..*/, '').replace('T', '-');
const out = opt.out ?? path.join(dir, `tokenizers-${stamp}.json`);
writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
log(`wrote ${path.relative(process.cwd(), out)} (load average ${loadAverage().join(' ')})`);
if (mismatches.length) {
  log(`token counts differ: ${mismatches.map((r) => `${r.implementation} ${r.tokenizer}`).join(', ')}`);
  process.exitCode = 1;
}
