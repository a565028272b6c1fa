// count-tokens --chat FAMILY against the official chat templates (lib/templates.mjs) rendered by
// @huggingface/jinja and counted by the reference tokenizer: for generated conversations, the
// prompt the gateway reserves must be the template's rendering, id for id.
import { test, describe, before } from "node:test";
import assert from "node:assert/strict";
import { corpus, prng } from "./lib/corpus.mjs";
import { tokenizerSpecs } from "./lib/files.mjs";
import { reference, chatTokens } from "./lib/references.mjs";
import { render } from "./lib/templates.mjs";
import { runJsonl } from "./lib/cli.mjs";
import { compareIds } from "./lib/compare.mjs";

// Python's str.strip() (Jinja2's trim, what vLLM runs) and JS's trim() (@huggingface/jinja's)
// disagree on U+001C-U+001F and U+0085 (Python strips them) and U+FEFF (JS strips it). Contents
// that would be stripped differently are left out: on them the JS renderer is not the reference.
const PY_SPACE = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "gu");
const stripsAlike = (text) => text.replace(PY_STRIP, "") === text.trim();

const COUNT = 250;

// Conversations: an optional system message, then 1-6 turns alternating user/assistant, the
// contents drawn from the corpus (no long strings), padded with whitespace, empty, or holding
// special-token look-alikes; some contents are arrays of text parts.
function conversations(seed) {
  const r = prng(seed);
  const pool = corpus().filter((e) => e.category !== "long" && stripsAlike(e.text)).map((e) => e.text);
  const specials = corpus().filter((e) => e.category === "special_lookalikes").map((e) => e.text);
  const content = () => {
    switch (r.int(0, 9)) {
      case 0: return "";
      case 1: return `${r.pick(["  ", "\n", "\t", " \n "])}${r.pick(pool)}${r.pick(["  ", "\n\n", " ", "\t"])}`;
      case 2: return r.pick(specials);
      case 3: return r.times(r.int(1, 3), () => ({ type: "text", text: r.pick(pool) }));
      default: return r.pick(pool);
    }
  };
  return r.times(COUNT, () => {
    const messages = [];
    // Never a blank system message: Llama 2's template tests `system_message != false`, which
    // Python's Jinja2 (vLLM's) holds true of "" and "\n", and @huggingface/jinja false (it
    // compares with JavaScript's ==, and " " == false there).
    if (r.chance(0.4)) {
      let system = content();
      while (typeof system === "string" && system.trim() === "") system = r.pick(pool);
      messages.push({ role: "system", content: system });
    }
    const turns = r.int(1, 6);
    for (let i = 0; i < turns; ++i) messages.push({ role: i % 2 === 0 ? "user" : "assistant", content: content() });
    return messages;
  });
}

const specs = tokenizerSpecs();
const CASES = [
  { family: "llama2", tokenizer: "llama2", seed: 2 },
  { family: "llama3", tokenizer: "llama3", seed: 3 },
  { family: "chatml", tokenizer: "llama3", seed: 4 },
  { family: "chatml", tokenizer: "cl100k_base", seed: 5 },
];

test("the conversations cover the cases the framings differ on", () => {
  const all = conversations(2);
  assert.equal(all.length, COUNT);
  assert.ok(all.some((m) => m[0].role === "system") && all.some((m) => m[0].role === "user"));
  assert.ok(all.some((m) => m.some((x) => x.content === "")));
  assert.ok(all.some((m) => m.some((x) => Array.isArray(x.content))));
  assert.ok(all.some((m) => m.some((x) => typeof x.content === "string" && x.content !== x.content.trim())));
  assert.ok(all.some((m) => m.some((x) => typeof x.content === "string" && x.content.includes("<|eot_id|>"))));
  assert.ok(all.some((m) => m.length >= 6));
});

for (const { family, tokenizer, seed } of CASES) {
  describe(`--chat ${family} with ${tokenizer}`, () => {
    const convs = conversations(seed);
    const bodies = convs.map((messages) => ({ model: "m", messages }));
    const entries = convs.map((messages) => ({ category: `${family}/${messages.length} messages`, text: JSON.stringify(messages) }));
    let expected;
    before(() => {
      const tokens = tokenizer === "cl100k_base" ? {} : chatTokens(tokenizer);
      const ref = reference(tokenizer);
      expected = convs.map((messages) => ref.encode(render(family, tokens, messages)));
    });

    test("ids of the rendered template", async () => {
      const run = await runJsonl(specs[tokenizer], bodies, { ids: true, chat: family });
      assert.equal(run.code, 0, run.stderr);
      const cmp = compareIds(`--chat ${family} ${tokenizer}`, entries, expected, run.results);
      assert.equal(cmp.count, 0, cmp.report);
    });

    test("counts of the rendered template", async () => {
      const run = await runJsonl(specs[tokenizer], bodies, { ids: false, chat: family });
      assert.equal(run.code, 0, run.stderr);
      const cmp = compareIds(`--chat ${family} ${tokenizer} counts`, entries, expected.map((ids) => ids.length), run.results);
      assert.equal(cmp.count, 0, cmp.report);
    });
  });
}

describe("planted mistakes", () => {
  const messages = [{ role: "user", content: "Hello there" }];

  test("the references render what the model cards show", () => {
    assert.equal(render("llama2", chatTokens("llama2"), [{ role: "system", content: "Be brief." }, ...messages, { role: "assistant", content: " Hi! " }]),
      "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello there [/INST] Hi! </s>");
    assert.equal(render("llama3", chatTokens("llama3"), messages),
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    assert.equal(render("chatml", {}, messages), "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n");
    assert.equal(render("chatml", {}, [{ role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] }]),
      "<|im_start|>user\na\nb<|im_end|>\n<|im_start|>assistant\n");
    assert.throws(() => render("llama2", chatTokens("llama2"), [{ role: "assistant", content: "x" }]), /must alternate/);
  });

  test("a framing without the generation prompt is reported against the CLI", async () => {
    const ref = reference("cl100k_base");
    const run = await runJsonl(specs.cl100k_base, [{ model: "m", messages }], { ids: true, chat: "chatml" });
    assert.equal(run.code, 0, run.stderr);
    const entries = [{ category: "chatml/planted", text: JSON.stringify(messages) }];
    const cmp = compareIds("planted chatml", entries, [ref.encode(render("chatml", {}, messages, false))], run.results);
    assert.equal(cmp.count, 1);
    assert.match(cmp.report, /\[chatml\/planted\] .*Hello there/);
    console.log(cmp.report);
  });
});
