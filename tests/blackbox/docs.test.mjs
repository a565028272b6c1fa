// The examples in docs/**/*.md, run verbatim against a live gateway, so that the docs and the
// gateway cannot drift apart. An example is a ```sh block right after the line
// `<!-- example -->`; the ```json block that follows it (blank lines between allowed), if any,
// is its output. Each doc runs on a gateway of its own started as scripts/demo.sh starts it
// (configs/demo.yaml, mock-llm behind it), with TRL, TRL_ADMIN and ADMIN_TOKEN set as the docs
// tell readers to set them; the doc's examples run in order with bash -euo pipefail, and share
// that gateway (a key made by one is there for the next).
//
// Output matching: the output must parse as JSON and equal the documented JSON, except that the
// string "…" stands for any value, and an array whose last element is "…" is matched as a prefix.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { REPO_ROOT, cleanup, startGateway, startMock, waitReady } from './lib/harness.mjs';

after(cleanup);

const DOCS = path.join(REPO_ROOT, 'docs');
const ANY = '…';

// [{ line, script, output? }] of one markdown text.
function examplesOf(text) {
  const lines = text.split('\n');
  const examples = [];
  const fence = (i, lang) => lines[i]?.trim() === '```' + lang;
  const block = (start) => {  // lines after the opening fence up to the closing one
    const body = [];
    let i = start + 1;
    for (; i < lines.length && lines[i].trim() !== '```'; i++) body.push(lines[i]);
    return { body: body.join('\n'), end: i };
  };
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '<!-- example -->') continue;
    if (!fence(i + 1, 'sh')) throw new Error(`line ${i + 1}: <!-- example --> without a sh block`);
    const script = block(i + 1);
    let j = script.end + 1;
    while (j < lines.length && lines[j].trim() === '') j++;
    const output = fence(j, 'json') ? block(j).body : undefined;
    examples.push({ line: i + 2, script: script.body, output });
  }
  return examples;
}

// Whether `actual` is what `expected` documents (see the top of this file).
function matches(expected, actual, where = '$') {
  if (expected === ANY) return;
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${where}: expected an array, got ${JSON.stringify(actual)}`);
    const prefix = expected.at(-1) === ANY;
    const want = prefix ? expected.slice(0, -1) : expected;
    if (prefix) assert.ok(actual.length >= want.length, `${where}: fewer than ${want.length} items`);
    else assert.equal(actual.length, want.length, `${where}: length`);
    want.forEach((e, i) => matches(e, actual[i], `${where}[${i}]`));
    return;
  }
  if (expected && typeof expected === 'object') {
    assert.ok(actual && typeof actual === 'object' && !Array.isArray(actual),
              `${where}: expected an object, got ${JSON.stringify(actual)}`);
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), `${where}: fields`);
    for (const k of Object.keys(expected)) matches(expected[k], actual[k], `${where}.${k}`);
    return;
  }
  assert.deepEqual(actual, expected, where);
}

// Every .md under docs/, subfolders too (docs/architecture/, docs/deployment/, ...).
const docs = readdirSync(DOCS, { recursive: true }).filter((f) => f.endsWith('.md')).sort()
  .map((f) => ({ file: f, examples: examplesOf(readFileSync(path.join(DOCS, f), 'utf8')) }))
  .filter((d) => d.examples.length > 0);

test('the docs have examples to run', () => {
  assert.ok(docs.length > 0);
});

for (const { file, examples } of docs) {
  describe(`docs/${file}`, () => {
    let gw;
    test('the demo gateway starts', async () => {
      const mock = await startMock({ models: ['llama2-7b', 'meta-llama/Llama-2-7b-chat-hf'],
                                     maxOutput: 16 });
      const env = { TRL_LISTEN: '127.0.0.1:0', TRL_ADMIN_LISTEN: '127.0.0.1:0', MOCK_URL: mock.url,
                    ADMIN_TOKEN: 'demo-admin-token' };
      gw = await startGateway(readFileSync(path.join(REPO_ROOT, 'configs/demo.yaml'), 'utf8'),
                              { env, name: `docs-${file}` });
      await waitReady(gw);
    });
    for (const ex of examples) {
      test(`example at line ${ex.line}`, () => {
        assert.ok(gw, 'the gateway did not start');
        const r = spawnSync('bash', ['-euo', 'pipefail', '-c', ex.script], {
          encoding: 'utf8', timeout: 20000,
          env: { ...process.env, TRL: gw.url, TRL_ADMIN: gw.adminUrl, ADMIN_TOKEN: 'demo-admin-token' },
        });
        assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
        if (ex.output === undefined) return;
        let actual;
        try {
          actual = JSON.parse(r.stdout);
        } catch {
          assert.fail(`the output is not JSON:\n${r.stdout}\n${r.stderr}`);
        }
        matches(JSON.parse(ex.output), actual);
      });
    }
  });
}
