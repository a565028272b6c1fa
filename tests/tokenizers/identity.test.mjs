// count-tokens of the build under test against the reference implementations (lib/references.mjs)
// on the generated corpus (lib/corpus.mjs): identical ids for every string, counts equal to the
// ids' lengths, invalid UTF-8 decoded as the WHATWG decoder does, unsupported tokenizer.json
// features refused by name. Planted mistakes show that each comparison can fail.
import { test, describe, before } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { corpus, countByCategory, invalidUtf8, newerThanUnicode14, SPECIAL_TEXTS } from "./lib/corpus.mjs";
import { LLAMA3_JSON, readJson, scratchDir, tokenizerSpecs } from "./lib/files.mjs";
import { reference, rawLlama3, tiktokenPair, TOKENIZERS, JS_WHITESPACE_DIFFERENCES } from "./lib/references.mjs";
import { runJsonl, runRaw, mapLimit } from "./lib/cli.mjs";
import { compareIds } from "./lib/compare.mjs";

const entries = corpus();
const texts = entries.map((e) => e.text);
const specs = tokenizerSpecs();

test("the corpus has at least 10,000 strings in every named category", () => {
  const counts = countByCategory(entries);
  assert.ok(entries.length >= 10000, `${entries.length} strings`);
  for (const category of ["prose", "code", "numbers", "whitespace", "cjk", "korean", "emoji", "combining",
    "mixed_scripts", "special_lookalikes", "random_unicode"]) {
    assert.ok(counts[category] >= 500, `${category}: ${counts[category]}`);
  }
  assert.equal(counts.empty, 1);
  assert.ok(counts.long >= 10 && counts.single_chars >= 200, JSON.stringify(counts));
  const longBytes = entries.filter((e) => e.category === "long").map((e) => Buffer.byteLength(e.text));
  assert.ok(longBytes.every((n) => n >= 2000 && n <= 20480), JSON.stringify(longBytes));
  assert.ok(texts.every((t) => t.isWellFormed()), "no lone surrogates");
  assert.ok(invalidUtf8().every(({ bytes }) => !Buffer.from(new TextDecoder().decode(bytes)).equals(bytes)));
});

describe("the references, as measured", () => {
  test("a lone surrogate: U+FFFD for tiktoken and Llama 3, its byte-fallback bytes on Llama 2", () => {
    for (const name of ["llama3", "cl100k_base", "o200k_base"]) {
      const ref = reference(name);
      assert.deepEqual(ref.encode("\ud800x"), ref.encode("\ufffdx"), name);
      assert.deepEqual(ref.encode("x\udc00"), ref.encode("x\ufffd"), name);
    }
    assert.deepEqual(reference("cl100k_base").encode("\ud800x"), [5809, 87]);
    // Llama 2 has a token for U+FFFD (29137) but looks the surrogate up as is, misses, and falls
    // back to the bytes TextEncoder gives it: <0xEF> <0xBF> <0xBD>.
    assert.deepEqual(reference("llama2").encode("\ufffdx"), [28705, 29137, 28744]);
    assert.deepEqual(reference("llama2").encode("\ud800x"), [28705, 242, 194, 192, 28744]);
  });

  test("special-token text is a token for Hugging Face files and plain text for tiktoken", () => {
    assert.deepEqual(reference("llama2").encode("a<s>b"), [264, 1, 287]);
    assert.deepEqual(reference("llama3").encode("<|eot_id|>x"), [128009, 87]);
    assert.deepEqual(reference("llama3").encode("<s>"), reference("cl100k_base").encode("<s>"));
    assert.deepEqual(reference("cl100k_base").encode("<|endoftext|>"), [27, 91, 8862, 728, 428, 91, 29]);
    assert.ok(reference("o200k_base").encode("<|endoftext|>").length > 1);
  });

  for (const encoding of ["cl100k_base", "o200k_base"]) {
    test(`${encoding}: js-tiktoken agrees with npm tiktoken on every string but the long ones`, () => {
      // js-tiktoken's merge loop is quadratic: 1-7 s per long string, so those are left out.
      const pair = tiktokenPair(encoding);
      const some = entries.filter((e) => e.category !== "long");
      const npm = some.map((e) => pair.npm(e.text));
      const fixed = compareIds(`js-tiktoken (White_Space regex) vs tiktoken, ${encoding}`, some, npm, some.map((e) => pair.js(e.text)));
      assert.equal(fixed.count, 0, fixed.report);
      // As shipped, js-tiktoken differs exactly on the strings holding U+0085 or U+FEFF.
      const raw = some.map((e) => pair.jsRaw(e.text));
      const differing = some.filter((e, i) => JSON.stringify(raw[i]) !== JSON.stringify(npm[i]));
      assert.ok(differing.length > 0, "the corpus holds U+0085/U+FEFF around whitespace");
      assert.deepEqual(differing.filter((e) => !JS_WHITESPACE_DIFFERENCES.test(e.text)), []);
      console.log(`${encoding}: js-tiktoken as shipped differs from tiktoken on ${differing.length} strings (U+0085/U+FEFF)`);
    });
  }

  test("@lenml/tokenizers as shipped differs from the Llama 3 reference only on U+0085/U+FEFF", () => {
    const ref = reference("llama3");
    const raw = rawLlama3();
    assert.deepEqual(raw.encode("a  \u0085\t\nb"), [64, 220, 2188, 227, 1602, 65]); // JS: NEL is not space
    assert.deepEqual(ref.encode("a  \u0085\t\nb"), [64, 256, 116360, 1602, 65]); // one piece, as in Rust
    const some = entries.filter((e) => JS_WHITESPACE_DIFFERENCES.test(e.text) === false).slice(0, 2000);
    const cmp = compareIds("lenml raw vs White_Space", some, some.map((e) => ref.encode(e.text)), some.map((e) => raw.encode(e.text)));
    assert.equal(cmp.count, 0, cmp.report);
  });
});

for (const name of TOKENIZERS) {
  describe(`count-tokens --tokenizer ${name}`, () => {
    let expected;
    before(() => {
      const ref = reference(name);
      expected = texts.map((t) => ref.encode(t));
    });

    test("ids identical to the reference on every corpus string", async () => {
      const run = await runJsonl(specs[name], texts, { ids: true });
      assert.equal(run.code, 0, run.stderr);
      const cmp = compareIds(name, entries, expected, run.results);
      assert.equal(cmp.count, 0, cmp.report);
    });

    test("counts equal the reference's lengths", async () => {
      const run = await runJsonl(specs[name], texts, { ids: false });
      assert.equal(run.code, 0, run.stderr);
      const cmp = compareIds(`${name} counts`, entries, expected.map((ids) => ids.length), run.results);
      assert.equal(cmp.count, 0, cmp.report);
    });

    test("invalid UTF-8 on raw stdin: the reference on TextDecoder's decoding", async () => {
      // One process per case, each loading the file (0.2-0.5 s): Llama 3 gets every case, the
      // others the first three (the decoding is the same code for every tokenizer; its unit test,
      // src/tokenizer/utf8_test.cc, has Unicode's examples).
      const ref = reference(name);
      const cases = invalidUtf8().filter((c, i) => name === "llama3" || i < 3);
      const runs = await mapLimit(cases, 4, ({ bytes }) => runRaw(specs[name], bytes, { ids: true }));
      const failed = runs.map((r, i) => [cases[i].name, r]).filter(([, r]) => r.code !== 0);
      assert.deepEqual(failed.map(([n, r]) => `${n}: exit ${r.code} ${r.stderr}`), []);
      const asEntries = cases.map((c) => ({ category: c.name, text: new TextDecoder().decode(c.bytes) }));
      const cmp = compareIds(`${name} raw bytes`, asEntries, asEntries.map((e) => ref.encode(e.text)), runs.map((r) => r.value));
      assert.equal(cmp.count, 0, cmp.report);
    });
  });
}

// PCRE2 10.42 (Debian's, which runs the split expressions) has Unicode 14.0's tables; the
// references have Unicode 16's. A letter assigned since is no letter to the split, so a
// contraction after it splits differently: the corpus leaves such characters out
// (lib/corpus.mjs), and this shows the difference, which vanishes when PCRE2 catches up.
test("characters assigned after Unicode 14.0 are the one known difference", async () => {
  const text = "x\u{318EA}'s"; // U+318EA: CJK Extension H, Unicode 15.0
  assert.ok(newerThanUnicode14(0x318ea) && !newerThanUnicode14(0x4e2d));
  const run = await runJsonl(specs.cl100k_base, [text], { ids: true });
  assert.equal(run.code, 0, run.stderr);
  const ref = reference("cl100k_base").encode(text);
  assert.deepEqual(ref.slice(-1), [596]); // "'s", one token
  assert.deepEqual(run.results[0].slice(-2), [6, 82]); // "'", "s": U+318EA is no letter here
  assert.deepEqual(run.results[0].slice(0, -2), ref.slice(0, -1));
  assert.equal(texts.filter((t) => [...t].some((c) => newerThanUnicode14(c.codePointAt(0)))).length, 0);
});

describe("planted mistakes", () => {
  test("the comparison names a string whose ids differ (Llama 3 ids against cl100k_base's)", () => {
    const some = [{ category: "prose", text: "Hello world" }, { category: "special_lookalikes", text: "x<|eot_id|>" }];
    const cmp = compareIds("planted", some, some.map((e) => reference("cl100k_base").encode(e.text)),
      some.map((e) => reference("llama3").encode(e.text)));
    assert.equal(cmp.count, 1);
    assert.deepEqual(cmp.byCategory, { special_lookalikes: 1 });
    assert.match(cmp.report, /\[special_lookalikes\] "x<\|eot_id\|>"/);
    assert.match(cmp.report, /reference: \[87,27,91,68,354,851,91,29\]/);
    assert.match(cmp.report, /ours: {6}\[87,128009\]/);
    console.log(cmp.report);
  });

  test("the CLI's Llama 3 ids compared with the cl100k_base reference are reported", async () => {
    const some = entries.filter((e) => e.category === "special_lookalikes").slice(0, 50);
    const run = await runJsonl(specs.llama3, some.map((e) => e.text));
    assert.equal(run.code, 0, run.stderr);
    const ref = reference("cl100k_base");
    const cmp = compareIds("planted llama3 vs cl100k", some, some.map((e) => ref.encode(e.text)), run.results);
    const special = some.find((e) => SPECIAL_TEXTS.some((s) => s !== "<s>" && s !== "</s>" && s !== "<unk>" && e.text.includes(s)));
    assert.ok(cmp.count > 0);
    assert.ok(cmp.report.includes(JSON.stringify(some.find((e, i) => JSON.stringify(run.results[i]) !== JSON.stringify(ref.encode(e.text))).text)));
    assert.ok(special, "a string with a Llama 3 special token");
    console.log(cmp.report.split("\n").slice(0, 4).join("\n"));
  });

  // A copy of the Llama 3 file with one unsupported feature: the CLI must refuse it (exit 1) and
  // name the feature, never count with it silently.
  const UNSUPPORTED = {
    wordpiece_model: [(j) => { j.model = { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab: { "[UNK]": 0, a: 1 } }; }, /WordPiece/],
    nfkc_normalizer: [(j) => { j.normalizer = { type: "NFKC" }; }, /NFKC/],
    bpe_dropout: [(j) => { j.model.dropout = 0.1; }, /dropout/],
  };
  for (const [label, [edit, message]] of Object.entries(UNSUPPORTED)) {
    test(`a tokenizer.json with ${label} is refused by name`, async () => {
      const json = readJson(LLAMA3_JSON);
      edit(json);
      const file = path.join(scratchDir(), `${label}.json`);
      fs.writeFileSync(file, JSON.stringify(json));
      const run = await runJsonl(file, ["hello"]);
      assert.equal(run.code, 1, `exit ${run.code}, stderr: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.ok(run.stderr.includes(file), `stderr names the file: ${run.stderr}`);
    });
  }
});
