// The fixed corpus of the tokenizer speed comparison (issue 32; docs/performance.md): about
// 4 MB, half English prose, half source code, from files every Debian machine of this kind has,
// so two runs (or two machines) count the same bytes; its SHA-256 says whether they did.
//
//   prose: /usr/share/common-licenses/* (package base-files), regular files in sorted order
//          (the symlinks GPL, LGPL, GFDL only repeat a version). They hold ~265 KB, so the list
//          is taken again from the start until the half is full: a tokenizer's word cache gains
//          nothing from that which the warm-up pass over the same documents does not give it.
//   code:  /usr/lib/python3.11/*.py (package libpython3.11-stdlib), sorted, until the half is full.
// Each half is cut at a line end at or after HALF_BYTES. Files are joined as they are (each
// ending in "\n").
//
// Documents: requests are counted one at a time, so the benchmarks count the corpus as
// documents of about 4 KB: each document is the shortest run of whole lines ("\n" included)
// of at least DOC_BYTES bytes (the last one may be shorter). tokenizer_bench.cc cuts the same
// way; lines never split a UTF-8 sequence.
//
//   node performance/tokenizers/corpus.mjs [OUT]   writes it (default build/tokenizer-corpus.txt)
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROSE_DIR = '/usr/share/common-licenses';
export const CODE_DIR = '/usr/lib/python3.11';
export const HALF_BYTES = 2 * 1024 * 1024;
export const DOC_BYTES = 4096;
const NL = 0x0a;

function sortedFiles(dir, accept) {
  return readdirSync(dir).filter(accept).sort()
    .map((name) => path.join(dir, name))
    .filter((file) => lstatSync(file).isFile());
}

// Whole files from `files` (again from the start when they run out), cut at the first line end
// at or after `bytes`. Returns { buf, files: [names in order, repeats included] }.
function fill(files, bytes) {
  if (files.length === 0) throw new Error('no input files');
  const parts = [];
  const used = [];
  let size = 0;
  for (let i = 0; size < bytes; i = (i + 1) % files.length) {
    let b = readFileSync(files[i]);
    if (b.length === 0) continue;
    if (b[b.length - 1] !== NL) b = Buffer.concat([b, Buffer.from('\n')]);
    if (size + b.length > bytes) b = b.subarray(0, b.indexOf(NL, bytes - size - 1) + 1);
    parts.push(b);
    used.push(path.basename(files[i]));
    size += b.length;
  }
  return { buf: Buffer.concat(parts), files: used };
}

export function buildCorpus() {
  for (const dir of [PROSE_DIR, CODE_DIR]) {
    if (!existsSync(dir)) {
      throw new Error(`${dir} is missing (performance/tokenizers.sh installs libpython3.11-stdlib)`);
    }
  }
  const prose = fill(sortedFiles(PROSE_DIR, () => true), HALF_BYTES);
  const code = fill(sortedFiles(CODE_DIR, (n) => n.endsWith('.py')), HALF_BYTES);
  const buf = Buffer.concat([prose.buf, code.buf]);
  return {
    buf,
    info: {
      bytes: buf.length,
      sha256: createHash('sha256').update(buf).digest('hex'),
      prose: { dir: PROSE_DIR, bytes: prose.buf.length, files: prose.files.length,
               distinct_files: new Set(prose.files).size },
      code: { dir: CODE_DIR, bytes: code.buf.length, files: code.files.length,
              distinct_files: new Set(code.files).size },
      doc_bytes: DOC_BYTES,
    },
  };
}

// The corpus as documents (Buffers), cut as described above.
export function splitDocuments(buf, docBytes = DOC_BYTES) {
  const docs = [];
  let start = 0;
  while (start < buf.length) {
    const nl = buf.indexOf(NL, start + docBytes - 1);
    const end = nl < 0 ? buf.length : nl + 1;
    docs.push(buf.subarray(start, end));
    start = end;
  }
  return docs;
}

export function writeCorpus(out) {
  const { buf, info } = buildCorpus();
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, buf);
  return { path: out, buf, ...info };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const out = process.argv[2] ?? path.join(repo, 'build/tokenizer-corpus.txt');
  const info = writeCorpus(out);
  console.log(`${info.sha256}  ${out} (${info.bytes} bytes)`);
}
