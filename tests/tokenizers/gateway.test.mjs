// The gateway with a model's own tokenizer: the reservation's prompt is what the official chat
// template renders, counted by the reference tokenizer (a large body too, which is counted off
// the I/O thread), and a tokenizer file the gateway cannot read exactly is refused at startup,
// by --check-config and by a reload, which keeps the running config.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { cleanup, runGateway, startGateway, startMock, tempDir, toYaml, completeConfig } from "../blackbox/lib/harness.mjs";
import { LLAMA3_JSON, readJson } from "./lib/files.mjs";
import { chatTokens, reference } from "./lib/references.mjs";
import { render } from "./lib/templates.mjs";

after(cleanup);

const LIMIT = 10_000_000;
const MAX_TOKENS = 10;
const CONVERSATIONS = [
  [{ role: "user", content: "Hello there" }],
  [{ role: "system", content: "  Be brief.\n" }, { role: "user", content: "Wie geht's? 你好 😀" }],
  [
    { role: "user", content: [{ type: "text", text: "def f(x):" }, { type: "text", text: "    return x ** 2" }] },
    { role: "assistant", content: "It squares x. <|eot_id|> is text here?" },
    { role: "user", content: "And 12345678?" },
  ],
  [{ role: "user", content: `${"The quick brown fox jumps over the lazy dog. ".repeat(7000)}12345` }],
];

function config(mockUrl, tokenizer = LLAMA3_JSON) {
  return {
    models: [{ name: "llama3", backends: [mockUrl], tokenizer, chat_template: "llama3" }],
    api_keys: CONVERSATIONS.map((_, i) => ({ name: `k${i}`, key: `sk-${i}`, limits: [{ tokens: LIMIT, per: "3650d" }] })),
  };
}

// A copy of the Llama 3 file the gateway refuses: its pre-tokenizer gains a Digits step.
function unsupportedFile() {
  const json = readJson(LLAMA3_JSON);
  json.pre_tokenizer.pretokenizers.push({ type: "Digits", individual_digits: true });
  const file = path.join(tempDir("trl-tok-"), "tokenizer.json");
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

test("each chat's reservation is the template's rendering counted by the reference", async () => {
  const mock = await startMock({ models: ["llama3"] });
  const gw = await startGateway(config(mock.url));
  const ref = reference("llama3");
  const tokens = chatTokens("llama3");
  for (const [i, messages] of CONVERSATIONS.entries()) {
    const r = await gw.send("chat/completions", { model: "llama3", max_tokens: MAX_TOKENS, messages }, { key: `sk-${i}` });
    assert.equal(r.status, 200, await r.text());
    const prompt = ref.encode(render("llama3", tokens, messages)).length;
    assert.equal(Number(r.headers.get("x-ratelimit-remaining-tokens")), LIMIT - prompt - MAX_TOKENS, `conversation ${i}`);
  }
  const large = JSON.stringify(CONVERSATIONS[3]).length;
  assert.ok(large > 64 * 1024, `the last body (${large} bytes) is counted off the I/O thread`);
});

test("an unsupported tokenizer.json is refused at startup, by --check-config and by a reload", async () => {
  const bad = unsupportedFile();
  const mock = await startMock({ models: ["llama3"] });
  const dir = tempDir("trl-tok-");
  const file = path.join(dir, "config.yaml");
  fs.writeFileSync(file, toYaml(completeConfig(config(mock.url, bad), dir)));
  const want = `models[0].tokenizer: ${bad}: the pre-tokenizer Digits is not supported`;
  const check = runGateway(["--check-config", file]);
  assert.equal(check.code, 1);
  assert.ok(check.stderr.includes(want), check.stderr);
  const start = runGateway(["--config", file]);
  assert.notEqual(start.code, 0);
  assert.ok(start.stdout.includes(want), start.stdout); // the log is on stdout

  const gw = await startGateway(config(mock.url));
  gw.writeConfig(config(mock.url, bad));
  const reload = await gw.reload();
  assert.equal(reload.status, 422, reload.text);
  assert.ok(reload.text.includes("the pre-tokenizer Digits is not supported"), reload.text);
  const r = await gw.send("chat/completions", { model: "llama3", max_tokens: MAX_TOKENS, messages: CONVERSATIONS[0] }, { key: "sk-0" });
  assert.equal(r.status, 200);
  const prompt = reference("llama3").encode(render("llama3", chatTokens("llama3"), CONVERSATIONS[0])).length;
  assert.equal(Number(r.headers.get("x-ratelimit-remaining-tokens")), LIMIT - prompt - MAX_TOKENS);
});
