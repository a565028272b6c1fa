// The Responses API and vLLM's other endpoints through the gateway (issue 31): POST
// /v1/responses, /v1/rerank, /v1/score, /tokenize and /detokenize. The official openai client
// gets from the gateway what it gets from mock-llm directly, with the rate-limit headers; each
// endpoint answers a 200, its 429s and its 400s (a refused body changes nothing); and a key's
// budget and the usage API hold exactly the backend's reported usage, on both stores (a fleet of
// two instances on Redis, requests alternating between them), tokenize and detokenize costing a
// request and never a token.
//
// Budgets are {tokens: N, per: 3650d}: they refill far less than a token during a test, so levels
// and x-ratelimit-remaining-tokens are exact. Expected numbers come from mock-llm's usage rules
// (src/mock/README.md) and, for the gateway's own estimates, from its approx counter
// (approxTokens) and the counting rule of src/proxy/request_fields.h.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import {
  STORES, approxTokens, chatBody, cleanup, errorOf, keyLimits, mockText, parseResetDuration,
  readResponse, readSse, startFleet, startMock, usageTotal,
} from './lib/harness.mjs';

after(cleanup);

const MODEL = 'm';
const ALIAS = 'm-alias';
const MAX_OUT = 24;  // models[].max_output_tokens: the gateway's ceiling on an output cap
const MOCK_MAX = 40;  // mock-llm's --max-output, above MAX_OUT: only the gateway's cap binds
const BUDGET = 100_000;
const FOREVER = '3650d';

// ---------------------------------------------------------------------------------------------
// What mock-llm reports and what the gateway estimates, computed independently
// ---------------------------------------------------------------------------------------------

const words = (s) => s.split(/\s+/).filter(Boolean).length;

// The gateway's prompt estimate of a Responses request (request_fields.cc): 3 per request, 4 per
// input item; the strings of `instructions` and a string `input`; an item's members but its
// type, id, status and a known role (content parts: their text); `tools` and any other field the
// model reads by its JSON text. Ids and settings are not read; numbers and booleans never count.
const RESPONSES_UNREAD = new Set(['model', 'stream', 'max_output_tokens', 'previous_response_id',
                                  'store', 'user', 'metadata']);
function responsesEstimate(body) {
  let t = 3;
  const value = (v) => (typeof v === 'string' ? approxTokens(v)
    : v !== null && typeof v === 'object' ? approxTokens(JSON.stringify(v)) : 0);
  for (const [k, v] of Object.entries(body)) {
    if (RESPONSES_UNREAD.has(k)) continue;
    if (k !== 'input' || typeof v === 'string') {
      t += value(v);
      continue;
    }
    for (const item of v) {
      t += 4;
      for (const [ik, iv] of Object.entries(item)) {
        if (['type', 'id', 'status', 'role'].includes(ik)) continue;  // roles here are known
        if (ik === 'content' && Array.isArray(iv)) {
          for (const part of iv) t += approxTokens(part.text);
        } else {
          t += value(iv);
        }
      }
    }
  }
  return t;
}

// Rerank: 3, the query once per document, each document (a string, or an object's JSON text).
const documentText = (d) => (typeof d === 'string' ? d : JSON.stringify(d));
const rerankEstimate = ({ query, documents }) => 3 + documents.reduce(
  (t, d) => t + approxTokens(query) + approxTokens(documentText(d)), 0);

// Score: 3, every text of text_1 and text_2, a single text once per text of the other list.
function scoreEstimate({ text_1: a, text_2: b }) {
  const [l1, l2] = [[a].flat(), [b].flat()];
  const pairs = Math.max(l1.length, l2.length);
  const side = (l) => (l.length === pairs ? l : Array(pairs).fill(l[0]));
  return 3 + [...side(l1), ...side(l2)].reduce((t, s) => t + approxTokens(s), 0);
}

// mock-llm's usage: rerank Σ (words of query + words of the document); score Σ over pairs.
const mockRerankTokens = ({ query, documents }) => documents.reduce(
  (t, d) => t + words(query) + words(typeof d === 'string' ? d : d.text), 0);
function mockScoreTokens({ text_1: a, text_2: b }) {
  const [l1, l2] = [[a].flat(), [b].flat()];
  const pairs = Math.max(l1.length, l2.length);
  const at = (l, i) => l[l.length === 1 ? 0 : i];
  let t = 0;
  for (let i = 0; i < pairs; i++) t += words(at(l1, i)) + words(at(l2, i));
  return t;
}

// What the gateway counts when a Responses stream reports no usage: each delta, on its own.
const deltaTokens = (events) => events.filter((e) => e.type === 'response.output_text.delta')
  .reduce((t, e) => t + approxTokens(e.delta), 0);
const deltaText = (events) => events.filter((e) => e.type === 'response.output_text.delta')
  .map((e) => e.delta).join('');

// ---------------------------------------------------------------------------------------------
// Comparing an answer through the gateway with mock-llm's own
// ---------------------------------------------------------------------------------------------

// A Responses answer (a response, or a stream's events) with what differs between two answers
// of the same request blanked: mock-llm's per-answer ids and the creation time.
function normalized(v) {
  return JSON.parse(JSON.stringify(v), (k, x) => {
    if (typeof x === 'string' && /^(resp|msg)_mock\d+$/.test(x)) return '<id>';
    if (k === 'created_at' && typeof x === 'number') return 0;
    return x;
  });
}

// The differences between two Responses answers of the same request, each named; [] = same.
function answerProblems(got, want) {
  const problems = [];
  const g = normalized(got);
  const w = normalized(want);
  const list = (x) => (Array.isArray(x) ? x : [x]);
  const [ge, we] = [list(g), list(w)];
  if (JSON.stringify(ge.map((e) => e.type)) !== JSON.stringify(we.map((e) => e.type))) {
    problems.push('event types');
  }
  const usage = (x) => JSON.stringify(x.at(-1)?.response?.usage ?? x.at(-1)?.usage);
  if (usage(ge) !== usage(we)) problems.push('usage');
  const text = (x) => x.map((e) => e.delta ?? '').join('') +
      x.map((e) => e.output_text ?? '').join('');
  if (text(ge) !== text(we)) problems.push('text');
  if (problems.length === 0 && JSON.stringify(g) !== JSON.stringify(w)) {
    problems.push('other fields');
  }
  return problems;
}

async function collect(stream) {
  const events = [];
  for await (const e of stream) events.push(e);
  return events;
}

// ---------------------------------------------------------------------------------------------
// Requests and what the gateway says about them
// ---------------------------------------------------------------------------------------------

// POST `body` to `path` (under the gateway's root: /tokenize is not under /v1) with `key`.
async function call(gw, path, body, { key, headers = {} } = {}) {
  const r = await gw.fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return readResponse(r);
}

// The level of `key`'s token limit (whole tokens, negative in debt).
async function tokensLevel(gw, key) {
  return (await keyLimits(gw, key)).find((l) => l.tokens !== undefined).level;
}

// What `key`'s usage rows add up to, as the usage API reports them.
const usageOf = (total) => ({ requests: total.requests, prompt_tokens: total.prompt_tokens,
                              completion_tokens: total.completion_tokens,
                              rejected: total.rejected });

const rateHeaders = (headers) => Object.fromEntries(
  [...headers].filter(([k]) => k.startsWith('x-ratelimit-') || k.startsWith('retry-after')));

const TOOL = { type: 'function', name: 'lookup_record', description: 'find a record by its name',
               parameters: { type: 'object', properties: { name: { type: 'string' } } } };

// The bodies each endpoint is tried with. `detokenize` is filled in from mock-llm's /tokenize.
const BODIES = {
  responses: { model: MODEL, instructions: 'answer briefly', input: 'name three colours',
               max_output_tokens: 5 },
  rerank: { model: MODEL, query: 'red apple', documents: ['an apple', 'a red apple pie', 'pears'] },
  score: { model: MODEL, text_1: 'red apple', text_2: ['an apple', 'red apple'] },
  tokenize: { model: MODEL, prompt: 'one two extraordinary' },
  detokenize: null,
};
const PATHS = { responses: '/v1/responses', rerank: '/v1/rerank', score: '/v1/score',
                tokenize: '/tokenize', detokenize: '/detokenize' };
const CHARGED = ['responses', 'rerank', 'score'];

// The usage the backend reports for BODIES[ep] (mock-llm's rules) as the usage API records it;
// none for tokenize and detokenize.
function reportedUsage(ep) {
  const b = BODIES[ep];
  if (ep === 'responses') {
    return { prompt: 3 + words(b.instructions) + 3 + words(b.input),
             completion: b.max_output_tokens };
  }
  if (ep === 'rerank') return { prompt: mockRerankTokens(b), completion: 0 };
  if (ep === 'score') return { prompt: mockScoreTokens(b), completion: 0 };
  return { prompt: 0, completion: 0 };
}
const reportedTokens = (ep) => reportedUsage(ep).prompt + reportedUsage(ep).completion;
// The reservation of BODIES[ep]: the prompt estimate plus the output cap.
function reservation(ep) {
  const b = BODIES[ep];
  if (ep === 'responses') return responsesEstimate(b) + b.max_output_tokens;
  if (ep === 'rerank') return rerankEstimate(b);
  return scoreEstimate(b);
}

let mock;
let tokenIds;  // mock-llm's ids of BODIES.tokenize.prompt

before(async () => {
  mock = await startMock({ name: 'mock-endpoints', models: [MODEL], maxOutput: MOCK_MAX });
  const r = await fetch(`${mock.url}/tokenize`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify(BODIES.tokenize) });
  tokenIds = (await r.json()).tokens;
  BODIES.detokenize = { model: MODEL, tokens: tokenIds };
});

const modelConfig = () => ({ name: MODEL, aliases: [ALIAS], backends: [mock.url],
                             max_output_tokens: MAX_OUT });

// Waits until the fleet answered `n` requests of `key` and settled every reservation.
async function settled(fleet, key, n) {
  assert.ok(await fleet.settled({ key, requests: n }),
            `trl_requests_total{key="${key}"} never reached ${n} with every reservation settled`);
}

// ---------------------------------------------------------------------------------------------
// The checkers themselves: each planted mistake is named
// ---------------------------------------------------------------------------------------------

test('the answer comparison names each planted difference', () => {
  const ev = (type, extra = {}) => ({ type, ...extra });
  const stream = [ev('response.created', { response: { id: 'resp_mock1', created_at: 5 } }),
                  ev('response.output_text.delta', { delta: 'w1', item_id: 'msg_mock1' }),
                  ev('response.output_text.delta', { delta: ' w2', item_id: 'msg_mock1' }),
                  ev('response.completed', { response: { id: 'resp_mock1', usage: { a: 1 } } })];
  const other = normalized(stream).map(
    (e) => JSON.parse(JSON.stringify(e).replaceAll('<id>', 'resp_mock7')));
  assert.deepEqual(answerProblems(other, stream), []);  // other ids, same answer
  assert.deepEqual(answerProblems(stream.filter((_, i) => i !== 2), stream),
                   ['event types', 'text']);
  const delta = structuredClone(stream);
  delta[2].delta = ' w9';
  assert.deepEqual(answerProblems(delta, stream), ['text']);
  const usage = structuredClone(stream);
  usage[3].response.usage = null;
  assert.deepEqual(answerProblems(usage, stream), ['usage']);
  const field = structuredClone(stream);
  field[1].logprobs = [];
  assert.deepEqual(answerProblems(field, stream), ['other fields']);
  const plain = { id: 'resp_mock1', output_text: 'w1', usage: { a: 1 } };
  assert.deepEqual(answerProblems({ ...plain, output_text: 'w2' }, plain), ['text']);
});

test('the estimates follow the gateway\'s counting rule', () => {
  // instructions and a string input count as their text, with no per-message overhead; an item
  // costs 4 and its text parts' text.
  assert.equal(responsesEstimate(BODIES.responses),
               3 + approxTokens('answer briefly') + approxTokens('name three colours'));
  assert.equal(responsesEstimate({ model: MODEL, input: [
    { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi there' }] }] }),
  3 + 4 + approxTokens('hi there'));
  assert.equal(rerankEstimate({ query: 'q', documents: ['a', { text: 'b' }] }),
               3 + 2 * approxTokens('q') + approxTokens('a') + approxTokens('{"text":"b"}'));
  assert.equal(scoreEstimate({ text_1: 'x y', text_2: ['a', 'b', 'c'] }),
               3 + 3 * approxTokens('x y') + 3 * approxTokens('a'));
  assert.equal(scoreEstimate({ text_1: ['a', 'bb'], text_2: ['c', 'dd'] }), 3 + 1 + 1 + 1 + 1);
  assert.equal(mockScoreTokens({ text_1: 'x y', text_2: ['a', 'b c'] }), (2 + 1) + (2 + 2));
  assert.equal(mockRerankTokens({ query: 'x y', documents: ['a', { text: 'b c' }] }), 3 + 4);
});

// ---------------------------------------------------------------------------------------------
// 1. The openai client on /v1/responses
// ---------------------------------------------------------------------------------------------

describe('the openai client drives /v1/responses through the gateway', () => {
  let fleet;
  let gw;
  let direct;
  const sent = {};  // requests per key

  before(async () => {
    fleet = await startFleet('memory', {
      models: [modelConfig()],
      api_keys: ['sdk-plain', 'sdk-stream', 'sdk-cap', 'sdk-nousage'].map((name) => ({
        name, key: `sk-${name}`, limits: [{ tokens: BUDGET, per: FOREVER },
                                          { requests: 1000, per: '1h' }] })),
    }, { name: 'gw-sdk' });
    gw = fleet.at(0);
    direct = mock.client();
  });

  // Sends through the openai client as `key`; resolves with what it got, the request's
  // reservation (the level before less x-ratelimit-remaining-tokens) and what it was charged.
  async function viaGateway(key, params, options = {}) {
    const level0 = await tokensLevel(gw, key);
    const { data, response } = await gw.client(`sk-${key}`).responses.create(params, options)
      .withResponse();
    const answer = params.stream ? await collect(data) : data;
    sent[key] = (sent[key] ?? 0) + 1;
    await settled(fleet, key, sent[key]);
    return { answer, headers: response.headers,
             reservation: level0 - Number(response.headers.get('x-ratelimit-remaining-tokens')),
             charged: level0 - await tokensLevel(gw, key) };
  }

  test('a plain response: the same output and usage as from mock-llm, the rate-limit ' +
       'headers, and exactly the reported usage charged', async () => {
    const params = {
      model: MODEL, instructions: 'answer in few words', max_output_tokens: 6, tools: [TOOL],
      previous_response_id: 'resp_earlier1', temperature: 0.5,
      input: [{ type: 'message', role: 'user',
                content: [{ type: 'input_text', text: 'what is the capital of France' }] },
              { role: 'assistant', content: 'Paris, I think' },
              { type: 'message', role: 'user', content: 'are you sure about that' }],
    };
    const want = await direct.responses.create(params);
    const x = await viaGateway('sdk-plain', params);
    assert.deepEqual(answerProblems(x.answer, want), []);
    assert.equal(x.answer.output_text, mockText(6));
    assert.equal(x.answer.status, 'incomplete');
    assert.equal(x.answer.previous_response_id, 'resp_earlier1', 'previous_response_id forwarded');
    // mock-llm: 3 + 3 instructions words, 3 per item + its words, the words of the tools' strings.
    const input = (3 + 4) + (3 + 6) + (3 + 3) + (3 + 5) + words('function lookup_record find a ' +
                                                                'record by its name object string');
    assert.deepEqual(x.answer.usage, {
      input_tokens: input, input_tokens_details: { cached_tokens: 0 }, output_tokens: 6,
      output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + 6 });
    // The rate-limit headers: both limits, this request's reservation counted as spent.
    assert.equal(x.reservation, responsesEstimate(params) + 6);
    assert.equal(x.headers.get('x-ratelimit-limit-tokens'), String(BUDGET));
    assert.equal(x.headers.get('x-ratelimit-limit-requests'), '1000');
    assert.equal(x.headers.get('x-ratelimit-remaining-requests'), '999');
    assert.ok(parseResetDuration(x.headers.get('x-ratelimit-reset-tokens')) > 0);
    assert.ok(parseResetDuration(x.headers.get('x-ratelimit-reset-requests')) > 0);
    assert.match(x.headers.get('x-request-id'), /^req-/);
    assert.equal(x.charged, input + 6);
    // Forwarded as the client sent it: nothing to rewrite (canonical model, cap under 24).
    const forwarded = (await mock.requests()).at(-1);
    assert.equal(forwarded.target, '/v1/responses');
    assert.deepEqual(JSON.parse(forwarded.body), params);
    const usage = usageOf(await usageTotal(gw, { key: 'sdk-plain' }, { requests: 1 }));
    assert.deepEqual(usage,
                     { requests: 1, prompt_tokens: input, completion_tokens: 6, rejected: 0 });
  });

  test('a streamed response: the same events, text and usage as from mock-llm, the rate-limit ' +
       'headers, and exactly the reported usage charged', async () => {
    const params = { model: MODEL, input: 'tell me a story about a fox', max_output_tokens: 9,
                     stream: true };
    const want = await collect(await direct.responses.create(params));
    const x = await viaGateway('sdk-stream', params);
    assert.deepEqual(answerProblems(x.answer, want), []);
    assert.equal(deltaText(x.answer), mockText(9));
    assert.equal(x.answer.at(-1).type, 'response.completed');
    const usage = x.answer.at(-1).response.usage;
    assert.deepEqual(usage, {
      input_tokens: 3 + 7, input_tokens_details: { cached_tokens: 0 }, output_tokens: 9,
      output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 19 });
    assert.equal(x.headers.get('content-type'), 'text/event-stream');
    assert.equal(x.headers.get('x-ratelimit-limit-tokens'), String(BUDGET));
    assert.equal(x.headers.get('x-ratelimit-remaining-requests'), '999');
    assert.equal(x.reservation, responsesEstimate(params) + 9);
    assert.equal(x.charged, 19);
    // Relayed byte for byte: the `event:` lines, no [DONE] added, the usage kept.
    const raw = async (url, headers = {}) => (await fetch(url, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(params) })).text();
    const idless = (t) => t.replace(/(resp|msg)_mock\d+/g, '<id>').replace(/"created_at":\d+/g, '');
    const relayed = await raw(`${gw.url}/v1/responses`, { authorization: 'Bearer sk-sdk-stream' });
    sent['sdk-stream']++;
    assert.equal(idless(relayed), idless(await raw(`${mock.url}/v1/responses`)));
    assert.match(relayed, /^event: response\.created\ndata: \{/);
    // The SDK's streaming helper reads the same relayed stream to its final response.
    const final = await gw.client('sk-sdk-stream').responses.stream(
      { model: MODEL, input: 'tell me a story about a fox', max_output_tokens: 9 }).finalResponse();
    sent['sdk-stream']++;
    assert.equal(final.output[0].content[0].text, mockText(9));
    assert.deepEqual(final.usage, usage);
    await settled(fleet, 'sdk-stream', 3);
    assert.equal(await tokensLevel(gw, 'sdk-stream'), BUDGET - 3 * 19);
    assert.deepEqual(usageOf(await usageTotal(gw, { key: 'sdk-stream' }, { requests: 3 })),
                     { requests: 3, prompt_tokens: 30, completion_tokens: 27, rejected: 0 });
  });

  test('max_output_tokens is clamped to the model\'s ceiling, or added when absent, and ' +
       'reserved as such', async () => {
    for (const [cap, streamed] of [[1000, false], [undefined, true]]) {
      const params = { model: ALIAS, input: 'write as much as you can',
                       ...(cap === undefined ? {} : { max_output_tokens: cap }),
                       ...(streamed ? { stream: true } : {}) };
      const x = await viaGateway('sdk-cap', params);
      const text = streamed ? deltaText(x.answer) : x.answer.output_text;
      assert.equal(text, mockText(MAX_OUT), `cap ${cap}`);
      assert.equal(x.reservation, responsesEstimate(params) + MAX_OUT);
      assert.equal(x.charged, 3 + 6 + MAX_OUT);
      const forwarded = JSON.parse((await mock.requests()).at(-1).body);
      assert.deepEqual(forwarded, { ...params, model: MODEL, max_output_tokens: MAX_OUT });
    }
  });

  test('without usage from the backend, a response is charged the prompt estimate plus the ' +
       'text it relayed, counted', async () => {
    const fault = { headers: { 'x-mock-fault': 'no-usage' } };
    const body = { model: MODEL, instructions: 'be terse', input: 'count to twelve',
                   max_output_tokens: 12 };
    const estimate = responsesEstimate(body);

    const s = await viaGateway('sdk-nousage', { ...body, stream: true }, fault);
    assert.equal(s.answer.at(-1).type, 'response.completed');
    assert.equal(s.answer.at(-1).response.usage, null);
    assert.equal(deltaText(s.answer), mockText(12));
    // "w1".."w9" cost 2 each and " w10".." w12" 3 each, counted delta by delta: 27.
    assert.equal(deltaTokens(s.answer), 9 * 2 + 3 * 3);
    assert.equal(s.charged, estimate + deltaTokens(s.answer));

    const p = await viaGateway('sdk-nousage', body, fault);
    assert.equal(p.answer.usage, null);
    assert.equal(p.charged, estimate + approxTokens(mockText(12)));

    // A stream cut after half its deltas: the estimate plus the deltas relayed.
    const level0 = await tokensLevel(gw, 'sdk-nousage');
    const r = await gw.send('responses', { ...body, stream: true }, {
      key: 'sk-sdk-nousage', headers: { 'x-mock-fault': 'truncate-stream' } });
    const events = await readSse(r);
    sent['sdk-nousage']++;
    assert.equal(deltaText(events), mockText(6));
    assert.ok(!events.some((e) => e.type === 'response.completed'));
    await settled(fleet, 'sdk-nousage', 3);
    assert.equal(level0 - await tokensLevel(gw, 'sdk-nousage'), estimate + deltaTokens(events));

    const usage = usageOf(await usageTotal(gw, { key: 'sdk-nousage' }, { requests: 3 }));
    const completion = deltaTokens(s.answer) + approxTokens(mockText(12)) + deltaTokens(events);
    assert.deepEqual(usage, { requests: 3, prompt_tokens: 3 * estimate,
                              completion_tokens: completion, rejected: 0 });
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Each endpoint: a 200, its 429s, its 400s
// ---------------------------------------------------------------------------------------------

// Bodies each endpoint refuses, with the field the gateway names.
const BAD = {
  responses: [[{ model: MODEL, input: 'x', background: true }, 'background'],
              [{ model: MODEL, instructions: 'x' }, 'input'],
              [{ model: MODEL, input: 'x', max_output_tokens: 0 }, 'max_output_tokens'],
              [{ model: MODEL, input: 42 }, 'input']],
  rerank: [[{ model: MODEL, query: 'q' }, 'documents'],
           [{ model: MODEL, query: 'q', documents: [] }, 'documents'],
           [{ model: MODEL, documents: ['a'] }, 'query']],
  score: [[{ model: MODEL, text_1: ['a', 'b'], text_2: ['a', 'b', 'c'] }, 'text_2'],
          [{ model: MODEL, text_2: 'a' }, 'text_1'],
          [{ model: MODEL, text_1: 7, text_2: 'a' }, 'text_1']],
  tokenize: [[{ prompt: 'one two' }, 'model']],
  detokenize: [[{ tokens: [1, 2] }, 'model']],
};

describe('each endpoint answers a 200, a 429 and a 400', () => {
  let fleet;
  let gw;

  before(async () => {
    const keys = [{ name: 'bad', key: 'sk-bad', limits: [{ tokens: BUDGET, per: FOREVER },
                                                        { requests: 1000, per: '1h' }] }];
    for (const ep of Object.keys(PATHS)) {
      keys.push({ name: `${ep}-req`, key: `sk-${ep}-req`, limits: [{ requests: 1, per: '1h' }] });
    }
    for (const ep of CHARGED) {
      keys.push({ name: `${ep}-tok`, key: `sk-${ep}-tok`,
                  limits: [{ tokens: reservation(ep), per: FOREVER }] });
    }
    fleet = await startFleet('memory', { models: [modelConfig()], api_keys: keys },
                             { name: 'gw-endpoints' });
    gw = fleet.at(0);
  });

  // What a 200 of each endpoint holds, as mock-llm answers BODIES[ep].
  const expect200 = {
    async responses(r) {
      const want = await mock.client().responses.create(BODIES.responses);
      delete want.output_text;  // the SDK's addition
      assert.deepEqual(answerProblems(r.json, want), []);
    },
    async rerank(r) {
      assert.match(r.json.id, /^rerank-mock\d+$/);
      assert.deepEqual({ ...r.json, id: undefined }, {
        id: undefined, model: MODEL, usage: { total_tokens: (2 + 2) + (2 + 4) + (2 + 1) },
        results: [{ index: 1, document: { text: 'a red apple pie' }, relevance_score: 1 },
                  { index: 0, document: { text: 'an apple' }, relevance_score: 0.5 },
                  { index: 2, document: { text: 'pears' }, relevance_score: 0 }] });
    },
    async score(r) {
      assert.match(r.json.id, /^score-mock\d+$/);
      assert.equal(typeof r.json.created, 'number');
      assert.deepEqual({ ...r.json, id: undefined, created: undefined }, {
        id: undefined, created: undefined, object: 'list', model: MODEL,
        data: [{ index: 0, object: 'score', score: 0.5 }, { index: 1, object: 'score', score: 1 }],
        usage: { prompt_tokens: 8, total_tokens: 8, completion_tokens: 0,
                 prompt_tokens_details: null } });
    },
    async tokenize(r) {
      assert.deepEqual(r.json,
                       { count: 3, max_model_len: 32768, tokens: tokenIds, token_strs: null });
    },
    async detokenize(r) {
      assert.deepEqual(r.json, { prompt: BODIES.tokenize.prompt });
    },
  };

  for (const ep of Object.keys(PATHS)) {
    test(`${PATHS[ep]}: 200 as mock-llm answers, then 429 past a requests limit of 1 per hour`,
         async () => {
      const key = `sk-${ep}-req`;
      // The alias is forwarded as the canonical name (mock-llm echoes the model it was sent).
      const ok = await call(gw, PATHS[ep], { ...BODIES[ep], model: ALIAS }, { key });
      assert.equal(ok.status, 200, ok.text);
      await expect200[ep](ok);
      assert.equal(JSON.parse((await mock.requests()).at(-1).body).model, MODEL);
      assert.equal(ok.headers.get('x-ratelimit-limit-requests'), '1');
      assert.equal(ok.headers.get('x-ratelimit-remaining-requests'), '0');

      const mock0 = (await mock.stats()).requests_total;
      const refused = await call(gw, PATHS[ep], BODIES[ep], { key });
      assert.equal(refused.status, 429, refused.text);
      errorOf(refused.json, { type: 'requests', code: 'rate_limit_exceeded' });
      const h = rateHeaders(refused.headers);
      assert.ok(Number.isInteger(Number(h['retry-after'])) && Number(h['retry-after']) >= 1,
                JSON.stringify(h));
      assert.ok(Number(h['retry-after-ms']) > 0 && Number(h['retry-after-ms']) <= 3_600_000);
      assert.equal(h['x-ratelimit-limit-requests'], '1');
      assert.equal(h['x-ratelimit-remaining-requests'], '0');
      assert.ok(parseResetDuration(h['x-ratelimit-reset-requests']) > 0);
      // A key without a token limit sends no token headers.
      assert.equal(h['x-ratelimit-limit-tokens'], undefined);
      assert.equal((await mock.stats()).requests_total, mock0, 'the 429 reached the backend');
      const usage = usageOf(await usageTotal(gw, { key: `${ep}-req` }, { requests: 1 }));
      assert.deepEqual(usage, { requests: 1, prompt_tokens: reportedUsage(ep).prompt,
                                completion_tokens: reportedUsage(ep).completion, rejected: 1 });
    });
  }

  for (const ep of CHARGED) {
    test(`${PATHS[ep]}: 429 tokens once the budget cannot hold another reservation`, async () => {
      const key = `${ep}-tok`;
      const R = reservation(ep);
      const first = await call(gw, PATHS[ep], BODIES[ep], { key: `sk-${key}` });
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers.get('x-ratelimit-limit-tokens'), String(R));
      assert.equal(first.headers.get('x-ratelimit-remaining-tokens'), '0', 'the reservation');
      await settled(fleet, key, 1);
      const C = reportedTokens(ep);
      assert.ok(C > 0 && C < R, `charged ${C} of ${R}`);
      assert.equal(await tokensLevel(gw, key), R - C);

      const mock0 = (await mock.stats()).requests_total;
      const refused = await call(gw, PATHS[ep], BODIES[ep], { key: `sk-${key}` });
      assert.equal(refused.status, 429, refused.text);
      const e = errorOf(refused.json, { type: 'tokens', code: 'rate_limit_exceeded' });
      assert.match(e.message, new RegExp(`\\b${R}\\b`), 'names the requested amount');
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      assert.ok(Number(refused.headers.get('retry-after-ms')) > 0);
      assert.equal(refused.headers.get('x-ratelimit-limit-tokens'), String(R));
      assert.equal(refused.headers.get('x-ratelimit-remaining-tokens'), String(R - C));
      assert.equal((await mock.stats()).requests_total, mock0, 'the 429 reached the backend');
      await settled(fleet, key, 2);
      assert.equal(await tokensLevel(gw, key), R - C, 'a 429 charged');
    });
  }

  test('bad input: 400 invalid_request naming the field; nothing charged, counted or forwarded',
       async () => {
    const level0 = await tokensLevel(gw, 'bad');
    const mock0 = (await mock.stats()).requests_total;
    let n = 0;
    for (const [ep, cases] of Object.entries(BAD)) {
      for (const [body, param] of cases) {
        const r = await call(gw, PATHS[ep], body, { key: 'sk-bad' });
        n++;
        assert.equal(r.status, 400, `${ep} ${JSON.stringify(body)}: ${r.text}`);
        errorOf(r.json, { type: 'invalid_request_error', code: 'invalid_request', param });
      }
    }
    // Without a key: 401 on each, tokenize and detokenize included.
    for (const path of Object.values(PATHS)) {
      const r = await gw.fetch(`${gw.url}${path}`, { method: 'POST',
        headers: { 'content-type': 'application/json' }, body: JSON.stringify(BODIES.tokenize) });
      assert.equal(r.status, 401, path);
      errorOf(await r.json(), { code: 'invalid_api_key' });
    }
    // An unknown model: 404, nothing forwarded either.
    const unknown = await call(gw, '/tokenize', { model: 'nope', prompt: 'x' }, { key: 'sk-bad' });
    assert.equal(unknown.status, 404);
    errorOf(unknown.json, { code: 'model_not_found' });
    assert.equal(await gw.metric('trl_requests_total', { key: 'bad', status: '400' }), n);
    await settled(fleet, 'bad', n + 1);
    assert.equal(await tokensLevel(gw, 'bad'), level0);
    assert.equal((await keyLimits(gw, 'bad')).find((l) => l.requests).level, 1000);
    assert.equal((await mock.stats()).requests_total, mock0);
    // Then a good request: the usage holds it alone.
    const ok = await call(gw, '/v1/rerank', BODIES.rerank, { key: 'sk-bad' });
    assert.equal(ok.status, 200);
    assert.deepEqual(usageOf(await usageTotal(gw, { key: 'bad' }, { requests: 1 })),
                     { requests: 1, prompt_tokens: reportedTokens('rerank'), completion_tokens: 0,
                       rejected: 0 });
  });
});

// ---------------------------------------------------------------------------------------------
// 3 and 4. Usage and budgets on both stores
// ---------------------------------------------------------------------------------------------

for (const store of STORES) describe(`usage and budgets per endpoint (${store})`, () => {
  let fleet;
  const sent = {};

  before(async () => {
    const keys = [];
    for (const ep of Object.keys(PATHS)) {
      keys.push({ name: `u-${ep}`, key: `sk-u-${ep}`, limits: [{ tokens: BUDGET, per: FOREVER }] });
    }
    keys.push({ name: 'mix', key: 'sk-mix', limits: [{ tokens: BUDGET, per: FOREVER }] });
    keys.push({ name: 'spent', key: 'sk-spent', limits: [{ tokens: 20, per: FOREVER },
                                                         { requests: 3, per: '1h' }] });
    fleet = await startFleet(store, { models: [modelConfig()], api_keys: keys },
                             { name: `gw-usage-${store}` });
  });

  beforeEach(() => fleet.revive());

  // Request number i of `key` goes to instance i (alternating on Redis); `ep` an endpoint of
  // PATHS (its BODIES body by default) or a path.
  function send(key, ep, body = BODIES[ep], headers = {}) {
    sent[key] = (sent[key] ?? 0) + 1;
    return call(fleet.at(sent[key] - 1), PATHS[ep] ?? ep, body, { key: `sk-${key}`, headers });
  }

  test('the usage API holds exactly the reported tokens: responses, rerank, score; a request ' +
       'and no token for tokenize and detokenize', async () => {
    for (const ep of Object.keys(PATHS)) {
      const key = `u-${ep}`;
      for (let i = 0; i < 2; i++) {
        const r = await send(key, ep);
        assert.equal(r.status, 200, `${ep}: ${r.text}`);
      }
      await settled(fleet, key, 2);
      const { prompt, completion } = reportedUsage(ep);
      assert.deepEqual(usageOf(await fleet.usage({ key })),
                       { requests: 2, prompt_tokens: 2 * prompt, completion_tokens: 2 * completion,
                         rejected: 0 }, ep);
      for (const gw of fleet.gws) {
        assert.equal(await tokensLevel(gw, key), BUDGET - 2 * (prompt + completion), ep);
      }
    }
  });

  test('tokenize and detokenize still answer a key whose token budget is spent, up to its ' +
       'requests limit', async () => {
    // A chat request admitted at 20 (its estimate 12 + 8) whose backend reports no usage: the
    // estimate plus the 8 words counted (16) are charged, 28 of a budget of 20.
    const chat = chatBody(MODEL, 'hello there world', { max_tokens: 8 });
    const first = await send('spent', '/v1/chat/completions', chat, { 'x-mock-fault': 'no-usage' });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('x-ratelimit-remaining-tokens'), '0', 'reserved 20 of 20');
    await settled(fleet, 'spent', 1);
    assert.equal(await tokensLevel(fleet.at(1), 'spent'), 20 - (12 + approxTokens(mockText(8))));
    const more = await send('spent', '/v1/chat/completions',
                            chatBody(MODEL, 'hi', { max_tokens: 1 }));
    assert.equal(more.status, 429, more.text);
    errorOf(more.json, { type: 'tokens', code: 'rate_limit_exceeded' });

    const tokens = await send('spent', 'tokenize');
    assert.equal(tokens.status, 200, tokens.text);
    assert.deepEqual(tokens.json.tokens, tokenIds);
    assert.equal(tokens.headers.get('x-ratelimit-remaining-requests'), '1');
    assert.equal(tokens.headers.get('x-ratelimit-limit-tokens'), null);
    const text = await send('spent', 'detokenize');
    assert.equal(text.status, 200, text.text);
    assert.deepEqual(text.json, { prompt: BODIES.tokenize.prompt });
    const refused = await send('spent', 'tokenize');
    assert.equal(refused.status, 429, refused.text);
    errorOf(refused.json, { type: 'requests', code: 'rate_limit_exceeded' });
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0');

    await settled(fleet, 'spent', 5);
    assert.deepEqual(usageOf(await fleet.usage({ key: 'spent' })),
                     { requests: 3, prompt_tokens: 12, completion_tokens: approxTokens(mockText(8)),
                       rejected: 2 });
    assert.equal(await tokensLevel(fleet.at(0), 'spent'), 20 - 28);
  });

  test('a key\'s budget is charged exactly the backend\'s usage across a mix of endpoints, ' +
       'sent at once', async () => {
    const client = (i) => fleet.at(i).client('sk-mix');
    const streamed = { model: MODEL, input: 'say something long', max_output_tokens: 7,
                       stream: true };
    const work = [
      client(0).responses.create(BODIES.responses).then((r) => r.usage.total_tokens),
      client(1).responses.create(streamed).then(collect)
        .then((events) => events.at(-1).response.usage.total_tokens),
      ...['rerank', 'score', 'tokenize', 'detokenize', 'rerank', 'score'].map(
        (ep, i) => call(fleet.at(i), PATHS[ep], BODIES[ep], { key: 'sk-mix' }).then((r) => {
          assert.equal(r.status, 200, `${ep}: ${r.text}`);
          return r.json.usage?.prompt_tokens ?? r.json.usage?.total_tokens ?? 0;
        })),
      call(fleet.at(1), '/v1/chat/completions', chatBody(MODEL, 'a b c', { max_tokens: 4 }),
           { key: 'sk-mix' }).then((r) => r.json.usage.total_tokens),
    ];
    const reported = await Promise.all(work);
    const [responses, rerank, score] = CHARGED.map(reportedTokens);
    const want = [responses, (3 + 3) + 7, rerank, score, 0, 0, rerank, score, (3 + 3) + 4];
    assert.deepEqual(reported, want);
    const total = want.reduce((a, b) => a + b, 0);
    await settled(fleet, 'mix', work.length);
    for (const gw of fleet.gws) assert.equal(await tokensLevel(gw, 'mix'), BUDGET - total);
    const usage = await fleet.usage({ key: 'mix' });
    assert.equal(usage.requests, work.length);
    assert.equal(usage.prompt_tokens + usage.completion_tokens, total);
    assert.equal(usage.completion_tokens, 5 + 7 + 4);
  });
});
