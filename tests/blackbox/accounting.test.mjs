// Request accounting (docs/limits.md "What is charged"): the backend is sent
// exactly what was reserved; bodies the backend would read otherwise than the gateway are
// refused; the reservation counts everything the model reads and the fallback everything it
// writes; a backend's usage is trusted only when sane; usage a client did not ask for never
// reaches it; and, against adversarial clients on both stores, the backend serves no more than
// the budget allows and the usage API records exactly what was charged.
//
// Budgets are {tokens: N, per: 3650d}: they refill far less than a token during a test, so
// levels and x-ratelimit-remaining-tokens are exact. Expected counts are computed here, with the
// harness's port of the gateway's approx counter (approxTokens) and the counting rule of
// docs/limits.md.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import {
  approxTokens, cleanup, errorOf, metricSum, mockText, pollUntil, readSse, startGateway, startMock,
  startRedis, streamText, waitReady,
} from './lib/harness.mjs';

after(cleanup);

// ---------------------------------------------------------------------------------------------
// What the gateway charges, computed independently
// ---------------------------------------------------------------------------------------------

const MAX_OUT = 64;  // models[].max_output_tokens of every model here
const MEDIA = { image: 700, audio: 1024, video: 4096, file: 1024 };
const KNOWN_ROLES = new Set(['system', 'user', 'assistant', 'tool', 'function', 'developer']);
// Top-level fields with a meaning of their own, and those the model never reads.
const NOT_READ = new Set(['model', 'stream', 'stream_options', 'max_tokens',
                          'max_completion_tokens', 'n', 'best_of', 'user', 'stop', 'seed',
                          'metadata', 'service_tier', 'logit_bias']);
const MEDIA_PARTS = { image_url: 'image', image: 'image', input_image: 'image',
                      input_audio: 'audio', audio_url: 'audio', video_url: 'video',
                      file: 'file', input_file: 'file' };
const TEXT_PARTS = new Set(['text', 'refusal', 'input_text', 'output_text']);

// A value the model reads: a string as it is, an object or an array by its JSON text (bodies
// here are JSON.stringify'd, so that text is the bytes sent).
const valueTokens = (v) => (typeof v === 'string' ? approxTokens(v)
  : v !== null && typeof v === 'object' ? approxTokens(JSON.stringify(v)) : 0);

function contentTokens(content) {
  if (typeof content === 'string') return approxTokens(content);
  if (!Array.isArray(content)) return 0;
  let t = 0;
  for (const part of content) {
    if (typeof part === 'string') {
      t += approxTokens(part);
    } else if (TEXT_PARTS.has(part.type)) {
      for (const k of ['text', 'refusal']) {
        if (typeof part[k] === 'string') t += approxTokens(part[k]);
      }
    } else if (MEDIA_PARTS[part.type]) {
      t += MEDIA[MEDIA_PARTS[part.type]];
    } else {
      t += approxTokens(JSON.stringify(part));
    }
  }
  return t;
}

// completions' prompt / embeddings' input: [tokens, prompts].
function promptLike(v) {
  if (typeof v === 'string') return [approxTokens(v), 1];
  let tokens = 0;
  let prompts = 0;
  let flatIds = false;
  for (const item of v) {
    if (typeof item === 'string') { tokens += approxTokens(item); prompts++; }
    else if (typeof item === 'number') { tokens++; flatIds = true; }
    else { tokens += item.length; prompts++; }
  }
  return [tokens, prompts + (flatIds ? 1 : 0)];
}

// The prompt estimate: 3 per request, 4 per chat message, and the tokens of what the model reads.
function promptEstimate(route, body) {
  let t = 3;
  for (const [k, v] of Object.entries(body)) {
    if (route === 'embeddings') {
      if (k === 'input') t += promptLike(v)[0];
    } else if (NOT_READ.has(k)) {
      continue;
    } else if (route === 'chat/completions' && k === 'messages') {
      for (const message of v) {
        t += 4;
        for (const [mk, mv] of Object.entries(message)) {
          if (mk === 'content') t += contentTokens(mv);
          else if (mk === 'role') t += KNOWN_ROLES.has(mv) ? 0 : approxTokens(mv);
          else t += valueTokens(mv);
        }
      }
    } else if (route === 'completions' && k === 'prompt') {
      t += promptLike(v)[0];
    } else {
      t += valueTokens(v);
    }
  }
  return t;
}

// The reservation: the prompt estimate + the cap (clamped to max_output_tokens) × the choices.
function reservationOf(route, body) {
  if (route === 'embeddings') return promptEstimate(route, body);
  const cap = Math.min(body.max_completion_tokens ?? body.max_tokens ?? MAX_OUT, MAX_OUT);
  const prompts = route === 'completions' ? promptLike(body.prompt)[1] : 1;
  return promptEstimate(route, body) + cap * Math.max(body.n ?? 1, body.best_of ?? 1) * prompts;
}

// What a model wrote, as the fallback counts it: each string of each choice's text, message or
// delta (content, reasoning, refusal, tool calls' and function_call's name and arguments), each
// counted on its own, as relayed.
function writtenTokens(chunks) {
  let t = 0;
  const count = (s) => { if (typeof s === 'string') t += approxTokens(s); };
  const fn = (f) => { if (f) { count(f.name); count(f.arguments); } };
  for (const chunk of chunks) {
    for (const choice of chunk.choices ?? []) {
      count(choice.text);
      const m = choice.message ?? choice.delta;
      if (!m) continue;
      for (const k of ['content', 'reasoning_content', 'reasoning', 'refusal']) count(m[k]);
      for (const call of m.tool_calls ?? []) fn(call.function);
      fn(m.function_call);
    }
  }
  return t;
}

// mock-llm's usage rule for a chat prompt: the words of the messages' strings, 3 per message.
const mockChatPrompt = (messages) => messages.reduce(
  (t, m) => t + 3 + m.content.split(/\s+/).filter(Boolean).length, 0);

const jsonChunks = (events) => events.filter((e) => e !== '[DONE]');

// A tools list whose one function has a `description` of `chars` characters.
function toolsOf(chars) {
  const description = 'Look up a record in the archive and return what it says. '
      .repeat(Math.ceil(chars / 58)).slice(0, chars);
  return [{ type: 'function', function: {
    name: 'lookup_archive_record', description,
    parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];
}

// ---------------------------------------------------------------------------------------------
// What the gateway and the budget say
// ---------------------------------------------------------------------------------------------

// The level of `key`'s token limit (whole tokens, negative in debt), from the admin API.
async function tokensLevel(gw, key) {
  const r = await gw.adminFetch(`/admin/v1/keys/${key}/limits`);
  assert.equal(r.status, 200, r.text);
  const limit = r.json.limits.find((l) => l.tokens !== undefined);
  return limit.level;
}

// Bounded poll until `gws` together answered `n` requests of `key` (any status) and hold no
// unsettled reservation: a request is counted once its settlement was handed to the limiter.
async function allSettled(gws, key, n) {
  let seen;
  const ok = await pollUntil(async () => {
    seen = { answered: 0, unsettled: 0 };
    for (const gw of gws) {
      const s = await gw.metrics();
      seen.answered += metricSum(s, 'trl_requests_total', { key });
      seen.unsettled += metricSum(s, 'trl_reservations_unsettled');
    }
    return seen.answered === n && seen.unsettled === 0;
  });
  assert.ok(ok, `${key}: want ${n} answered and none unsettled, have ${JSON.stringify(seen)}`);
}

const HOUR = 3_600_000;
async function usageTotal(gw, key) {
  const from = new Date(Math.floor(Date.now() / HOUR) * HOUR - HOUR).toISOString();
  const to = new Date(Date.now() + 2 * HOUR).toISOString();
  const r = await gw.adminFetch(`/admin/v1/usage?key=${key}&from=${encodeURIComponent(from)}` +
                                `&to=${encodeURIComponent(to)}`);
  assert.equal(r.status, 200, r.text);
  return r.json.total;
}

// ---------------------------------------------------------------------------------------------
// One gateway, one mock: what is sent, refused, reserved and settled, one request at a time
// ---------------------------------------------------------------------------------------------

const LIMIT = 10_000_000;

describe('request accounting', () => {
  let mock;
  let gw;
  const answered = {};  // requests sent per key

  before(async () => {
    // Capped answers up to 100 words; an uncapped one fills 500, as vLLM fills the context.
    mock = await startMock({ name: 'mock-acct', models: ['m'], maxOutput: 100,
                                 defaultMaxOutput: 500 });
    gw = await startGateway({
      models: [{ name: 'm', aliases: ['m-alias'], backends: [mock.url], max_output_tokens: MAX_OUT,
                 media_tokens: { image: MEDIA.image } }],
      api_keys: ['fwd', 'esc', 'est', 'bad', 'strip'].map((name) => ({
        name, key: `sk-${name}`, limits: [{ tokens: LIMIT, per: '3650d' }] })),
    });
  });

  const tokenMetrics = async (key) => ({
    prompt: await gw.metric('trl_tokens_total', { key, kind: 'prompt' }),
    completion: await gw.metric('trl_tokens_total', { key, kind: 'completion' }),
  });

  // Sends one request and waits for its settlement. Returns what the client got, the
  // reservation (the level before less x-ratelimit-remaining-tokens), what was charged (the
  // level before less the level after), what trl_tokens_total added, and the body the mock
  // received (undefined when nothing reached it).
  async function exchange(key, route, body, { headers = {}, fault } = {}) {
    const levelBefore = await tokensLevel(gw, key);
    const tokensBefore = await tokenMetrics(key);
    const mockBefore = (await mock.stats()).requests_total;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const r = await gw.send(route, text, {
      key: `sk-${key}`, headers: { ...(fault ? { 'x-mock-fault': fault } : {}), ...headers } });
    const out = { status: r.status, headers: r.headers, sent: text };
    if (r.headers.get('content-type')?.startsWith('text/event-stream')) {
      out.events = await readSse(r);
      assert.equal(out.events.at(-1), '[DONE]');
      out.chunks = jsonChunks(out.events);
    } else {
      out.text = await r.text();
      try { out.json = JSON.parse(out.text); } catch { /* not JSON */ }
    }
    answered[key] = (answered[key] ?? 0) + 1;
    await allSettled([gw], key, answered[key]);
    const remaining = r.headers.get('x-ratelimit-remaining-tokens');
    if (remaining !== null) out.reservation = levelBefore - Number(remaining);
    out.charged = levelBefore - await tokensLevel(gw, key);
    const tokensAfter = await tokenMetrics(key);
    out.settled = { prompt: tokensAfter.prompt - tokensBefore.prompt,
                    completion: tokensAfter.completion - tokensBefore.completion };
    const reached = (await mock.stats()).requests_total - mockBefore;
    assert.ok(reached <= 1, `${reached} requests reached the mock`);
    if (reached === 1) out.forwarded = (await mock.requests()).at(-1);
    return out;
  }

  test('the backend is sent the reserved cap, the canonical model and include_usage; every ' +
       'other byte as the client sent it', async () => {
    // The openai client without a cap: max_tokens: 64 (max_output_tokens) is added, and the
    // mock, which writes 500 words to an uncapped request, writes 64.
    let sdkBody;
    const client = gw.client('sk-fwd', {
      fetch: (url, init) => { sdkBody = init.body; return gw.fetch(url, init); } });
    const params = { model: 'm',
                     messages: [{ role: 'user', content: 'write as much as you can' }] };
    const level0 = await tokensLevel(gw, 'fwd');
    const { data, response } = await client.chat.completions.create(params).withResponse();
    answered.fwd = 1;
    assert.equal(data.choices[0].message.content, mockText(MAX_OUT));
    assert.equal(data.choices[0].finish_reason, 'length');
    assert.equal(data.usage.completion_tokens, MAX_OUT);
    assert.equal(level0 - Number(response.headers.get('x-ratelimit-remaining-tokens')),
                 promptEstimate('chat/completions', params) + MAX_OUT);
    const sdkForwarded = (await mock.requests()).at(-1);
    assert.equal(typeof sdkBody, 'string');
    assert.equal(sdkForwarded.body, `{"max_tokens":${MAX_OUT},${sdkBody.slice(1)}`);
    await allSettled([gw], 'fwd', 1);
    assert.equal(level0 - await tokensLevel(gw, 'fwd'), data.usage.total_tokens);

    // An alias, a cap above max_output_tokens, a stream whose stream_options has another
    // member, odd spacing, escapes and number forms, and a client that accepts gzip.
    const kept = '"messages":[{"role":"user","content":"caf\\u00e9 ol\\u00e9 \\ud83d\\ude00 ' +
        'tell me more"}], "temperature": 0.50, "top_p": 1.0E0, "stop": ["\\u0041"],';
    const odd = `{"model":"m-alias", ${kept} "max_tokens": 1000 , "stream":true, ` +
        '"stream_options":{"continuous_usage_stats":false}}';
    const oddSent = `{"model":"m", ${kept} "max_tokens": 64 , "stream":true, ` +
        '"stream_options":{"include_usage":true,"continuous_usage_stats":false}}';
    const x = await exchange('fwd', 'chat/completions', odd,
                             { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(x.status, 200);
    assert.equal(x.forwarded.body, oddSent);
    assert.equal(x.forwarded.headers['accept-encoding'], 'identity');
    assert.equal(x.forwarded.headers['content-length'], String(Buffer.byteLength(oddSent)));
    assert.equal(streamText(x.chunks), mockText(MAX_OUT));
    assert.ok(x.chunks.every((c) => c.choices.length === 1 && !('usage' in c)),
              'the usage the gateway asked for reached a client that did not');
    assert.equal(x.reservation, promptEstimate('chat/completions', JSON.parse(odd)) + MAX_OUT);
    assert.equal(x.charged, mockChatPrompt(JSON.parse(odd).messages) + MAX_OUT);

    // Both cap fields, one null, above the ceiling: both carry the reserved cap.
    const both = '{"model":"m","messages":[{"role":"user","content":"go on"}],' +
        '"max_completion_tokens":500,"max_tokens":null}';
    const y = await exchange('fwd', 'chat/completions', both);
    assert.equal(y.forwarded.body, '{"model":"m","messages":[{"role":"user","content":"go on"}],' +
                                   '"max_completion_tokens":64,"max_tokens":64}');
    assert.equal(y.json.choices[0].message.content, mockText(MAX_OUT));
    assert.equal(y.reservation, promptEstimate('chat/completions', JSON.parse(both)) + MAX_OUT);

    // Completions read max_tokens only: it is added beside the client's max_completion_tokens.
    const completion = '{"model":"m","prompt":"once upon a time","max_completion_tokens":1000}';
    const z = await exchange('fwd', 'completions', completion);
    assert.equal(z.forwarded.body, '{"max_tokens":64,"model":"m","prompt":"once upon a time",' +
                                   '"max_completion_tokens":64}');
    assert.equal(z.json.choices[0].text, mockText(MAX_OUT));
    assert.equal(z.reservation, promptEstimate('completions', JSON.parse(completion)) + MAX_OUT);

    // Nothing to edit: forwarded exactly as it came, and its usage chunk reaches the client.
    const plain = '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":7,' +
        '"stream":true,"stream_options":{"include_usage":true}}';
    const p = await exchange('fwd', 'chat/completions', plain);
    assert.equal(p.forwarded.body, plain);
    assert.deepEqual(p.chunks.at(-1).usage,
                     { prompt_tokens: 4, completion_tokens: 7, total_tokens: 11 });
    assert.equal(p.reservation, promptEstimate('chat/completions', JSON.parse(plain)) + 7);
    assert.equal(p.charged, 11);
  });

  test('a body the backend would read otherwise is refused: 400 naming the field, nothing ' +
       'charged, nothing forwarded', async () => {
    const hi = '"messages":[{"role":"user","content":"hi"}]';
    const tools = JSON.stringify(toolsOf(20_000));
    const cases = [
      // The escape: the backend keeps the last stream_options, without include_usage,
      // and its 20 000-character tools were not counted.
      [`{"model":"m","max_tokens":50,"stream":true,"stream_options":{"include_usage":true},` +
       `"stream_options":{},"tools":${tools},${hi}}`, 'stream_options', /more than once/],
      [`{"model":"m","max_completion_tokens":0,${hi}}`, 'max_completion_tokens', /at least 1/],
      [`{"model":"m","max_tokens":0,${hi}}`, 'max_tokens', /at least 1/],
      [`{"model":"m","max_tokens":1,"max_tokens":null,${hi}}`, 'max_tokens', /more than once/],
      [`{"model":"m","max_tokens":5,${hi},"max\\u005ftokens":100000}`, 'max_tokens',
       /more than once/],
      [`{"model":"m",${hi},"stream":true,"stream_options":{"include_usage":false,` +
       `"include_usage":true}}`, 'stream_options.include_usage', /more than once/],
    ];
    for (const [body, param, message] of cases) {
      const x = await exchange('esc', 'chat/completions', body);
      assert.equal(x.status, 400, `${body.slice(0, 120)}: ${x.text}`);
      const e = errorOf(x.json, { type: 'invalid_request_error', code: 'invalid_request', param });
      assert.match(e.message, message);
      assert.equal(x.charged, 0, `${param}: charged`);
      assert.equal(x.forwarded, undefined, `${param}: reached the backend`);
      assert.deepEqual(x.settled, { prompt: 0, completion: 0 });
    }
    assert.equal(await tokensLevel(gw, 'esc'), LIMIT);
    assert.equal(await gw.metric('trl_requests_total', { key: 'esc', status: '400' }),
                 cases.length);
  });

  test('the reservation counts what the model reads (tools, media, n, prompts); the fallback ' +
       'what it writes (tool calls)', async () => {
    const TOOLS = toolsOf(20_000);
    const body = { model: 'm', max_tokens: 50, tools: TOOLS,
                   messages: [{ role: 'user', content: 'hi' }] };
    const estimate = promptEstimate('chat/completions', body);
    assert.ok(estimate > 20_000 / 4, `estimate ${estimate}`);

    // No usage from the backend, which answered with a tool call: the prompt estimate plus
    // the call's name and arguments, counted.
    const x = await exchange('est', 'chat/completions', body, { fault: 'no-usage' });
    assert.equal(x.status, 200, x.text);
    assert.equal(x.reservation, estimate + 50);
    assert.equal(x.json.usage, undefined);
    const call = x.json.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'lookup_archive_record');
    assert.equal(call.function.arguments, JSON.stringify({ text: mockText(50) }));
    const written = approxTokens(call.function.name) + approxTokens(call.function.arguments);
    assert.deepEqual(x.settled, { prompt: estimate, completion: written });
    assert.equal(x.charged, estimate + written);

    // Streamed: the name in the head chunk, then one arguments fragment per chunk.
    const s = await exchange('est', 'chat/completions', { ...body, stream: true },
                             { fault: 'no-usage' });
    assert.equal(s.reservation, estimate + 50);
    const fragments = s.chunks.map(
      (c) => c.choices[0].delta.tool_calls?.[0]?.function?.arguments ?? '');
    assert.equal(fragments.join(''), call.function.arguments);
    const streamed = writtenTokens(s.chunks);
    assert.deepEqual(s.settled, { prompt: estimate, completion: streamed });
    assert.equal(s.charged, estimate + streamed);

    // An image part costs models[].media_tokens.image, whatever the size of its data.
    const image = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: [
      { type: 'text', text: 'what is in this picture?' },
      { type: 'image_url',
        image_url: { url: `data:image/png;base64,${'iVBORw0KGgo'.repeat(3000)}` } },
    ] }] };
    const i = await exchange('est', 'chat/completions', image);
    assert.equal(i.reservation, 3 + 4 + approxTokens('what is in this picture?') + MEDIA.image + 5);
    assert.equal(i.charged, i.json.usage.total_tokens);

    // n: 3 may generate three answers: three caps, and the body goes as it came.
    const n = { model: 'm', n: 3, max_tokens: 20,
                messages: [{ role: 'user', content: 'three ways' }] };
    const nx = await exchange('est', 'chat/completions', n);
    assert.equal(nx.reservation, promptEstimate('chat/completions', n) + 3 * 20);
    assert.equal(nx.forwarded.body, nx.sent);
    assert.equal(nx.charged, nx.json.usage.total_tokens);

    // A completions prompt of two prompts: two answers.
    const two = { model: 'm', prompt: ['the first prompt', 'and a second one'], max_tokens: 10 };
    const tx = await exchange('est', 'completions', two);
    assert.equal(tx.reservation,
                 3 + approxTokens('the first prompt') + approxTokens('and a second one') + 2 * 10);
    assert.equal(tx.charged, tx.json.usage.total_tokens);
  });

  test('a backend usage that is negative, huge, fractional or incomplete is not trusted: the ' +
       'gateway\'s own count is charged and recorded', async () => {
    const messages = [{ role: 'user', content: 'tell me a story' }];
    const prompt = mockChatPrompt(messages);  // 7, as mock-llm counts it
    const wrong = {
      'usage-negative': { prompt_tokens: -1_000_000, completion_tokens: 6, total_tokens: -999_994 },
      'usage-huge': { prompt_tokens: 1_000_000_001, completion_tokens: 6,
                      total_tokens: 1_000_000_007 },
      'usage-float': { prompt_tokens: prompt + 0.5, completion_tokens: 6,
                       total_tokens: prompt + 6.5 },
      'usage-no-completion': { prompt_tokens: prompt, total_tokens: prompt + 6 },
    };
    const invalid = () => gw.metric('trl_backend_usage_invalid_total', { model: 'm' });
    const invalid0 = await invalid();
    const recorded = { requests: 0, prompt_tokens: 0, completion_tokens: 0 };
    const record = (x) => {
      recorded.requests++;
      recorded.prompt_tokens += x.settled.prompt;
      recorded.completion_tokens += x.settled.completion;
    };
    for (const [fault, usage] of Object.entries(wrong)) {
      for (const stream of [false, true]) {
        const body = { model: 'm', messages, max_tokens: 6 };
        if (stream) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
        const before = await invalid();
        const x = await exchange('bad', 'chat/completions', body, { fault });
        const what = `${fault}${stream ? ', streamed' : ''}`;
        assert.equal(x.status, 200, what);
        // The mock did report it (and the client, which asked for usage, got it as it was).
        assert.deepEqual(stream ? x.chunks.at(-1).usage : x.json.usage, usage, what);
        const estimate = promptEstimate('chat/completions', body);
        const written = writtenTokens(stream ? x.chunks : [x.json]);
        assert.equal(written, 2 * 6);  // "w1" .. "w6": a letter and a digit each
        assert.deepEqual(x.settled, { prompt: estimate, completion: written }, what);
        assert.equal(x.charged, estimate + written, what);
        assert.equal(await invalid(), before + 1, `${what}: trl_backend_usage_invalid_total`);
        record(x);
      }
    }
    // Embeddings: a negative usage is not trusted (the estimate stands); one without
    // completion_tokens is valid there, and trusted.
    const embed = { model: 'm', input: 'embed these three' };
    const e1 = await exchange('bad', 'embeddings', embed, { fault: 'usage-negative' });
    assert.equal(e1.json.usage.prompt_tokens, -1_000_000);
    assert.equal(e1.reservation, promptEstimate('embeddings', embed));
    assert.deepEqual(e1.settled, { prompt: e1.reservation, completion: 0 });
    assert.equal(e1.charged, e1.reservation);
    record(e1);
    const e2 = await exchange('bad', 'embeddings', embed, { fault: 'usage-no-completion' });
    assert.deepEqual(e2.json.usage, { prompt_tokens: 3, total_tokens: 3 });
    assert.deepEqual(e2.settled, { prompt: 3, completion: 0 });
    assert.equal(e2.charged, 3);
    record(e2);
    assert.equal(await invalid(), invalid0 + 2 * 4 + 1);

    // The usage API recorded what was charged: sane sums, nothing negative, nothing huge.
    let total;
    const ok = await pollUntil(async () => {
      total = await usageTotal(gw, 'bad');
      return total.requests === recorded.requests;
    });
    assert.ok(ok, `usage API: ${JSON.stringify(total)}`);
    assert.deepEqual({ requests: total.requests, prompt_tokens: total.prompt_tokens,
                       completion_tokens: total.completion_tokens }, recorded);
    assert.equal(LIMIT - await tokensLevel(gw, 'bad'),
                 recorded.prompt_tokens + recorded.completion_tokens);
  });

  test('usage the client did not ask for is stripped from every chunk (continuous usage ' +
       'stats); a client that asked gets all of it; settled exactly either way', async () => {
    const messages = [{ role: 'user', content: 'count to five' }];
    const prompt = mockChatPrompt(messages);
    // The backend puts usage on every chunk; the client asked for none of it.
    for (const [options, sent] of [
      [{ continuous_usage_stats: true }, '{"include_usage":true,"continuous_usage_stats":true}'],
      [{ include_usage: false, continuous_usage_stats: true },
       '{"include_usage":true,"continuous_usage_stats":true}'],
    ]) {
      const body = { model: 'm', messages, max_tokens: 5, stream: true, stream_options: options };
      const x = await exchange('strip', 'chat/completions', body);
      const what = JSON.stringify(options);
      assert.equal(x.status, 200);
      assert.ok(x.forwarded.body.endsWith(`"stream_options":${sent}}`), x.forwarded.body);
      assert.equal(streamText(x.chunks), mockText(5));
      // Five words and the finish: each arrived with its usage nulled; no usage-only chunk.
      assert.equal(x.chunks.length, 6, what);
      for (const c of x.chunks) {
        assert.equal(c.choices.length, 1, `${what}: a usage-only chunk reached the client`);
        assert.equal(c.usage, null, `${what}: ${JSON.stringify(c)}`);
      }
      assert.deepEqual(x.settled, { prompt, completion: 5 }, what);
      assert.equal(x.charged, prompt + 5, what);
    }
    // Completions too.
    const c = await exchange('strip', 'completions', {
      model: 'm', prompt: 'one two three', max_tokens: 4, stream: true,
      stream_options: { continuous_usage_stats: true } });
    assert.equal(streamText(c.chunks), mockText(4));
    assert.ok(c.chunks.every((k) => k.choices.length === 1 && k.usage === null));
    assert.equal(c.charged, 3 + 4);

    // The openai client asks for it: every chunk's usage so far, then the whole.
    const client = gw.client('sk-strip');
    const level0 = await tokensLevel(gw, 'strip');
    const stream = await client.chat.completions.create({
      model: 'm', messages, max_tokens: 5, stream: true,
      stream_options: { include_usage: true, continuous_usage_stats: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    answered.strip += 1;
    assert.deepEqual(chunks.map((k) => k.usage.completion_tokens), [1, 2, 3, 4, 5, 5, 5]);
    assert.deepEqual(chunks.map((k) => k.choices.length), [1, 1, 1, 1, 1, 1, 0]);
    assert.deepEqual(chunks.at(-1).usage,
                     { prompt_tokens: prompt, completion_tokens: 5, total_tokens: prompt + 5 });
    await allSettled([gw], 'strip', answered.strip);
    assert.equal(level0 - await tokensLevel(gw, 'strip'), prompt + 5);
  });
});

// ---------------------------------------------------------------------------------------------
// The invariant, against adversarial clients
// ---------------------------------------------------------------------------------------------

const INV_LIMIT = 15000;
const RUN_MS = 5000;
const MAX_REQUESTS = 400;
const CLIENTS = 8;
const SMALL_TOOLS = toolsOf(2000);

// One adversarial request of `kind`: route, body text, headers, what its reservation is, and
// how the client behaves.
function adversarial(kind, i) {
  const messages = [{ role: 'user', content: `request ${i}: please answer at length` }];
  const chat = (extra, headers = {}, how = {}) => {
    const body = { model: 'm', messages, ...extra };
    return { route: 'chat/completions', text: JSON.stringify(body), headers,
             reservation: reservationOf('chat/completions', body), ...how };
  };
  switch (kind) {
    case 'duplicate':  // refused: the mock would keep the last max_tokens
      return { route: 'chat/completions', headers: {}, refused: true,
               text: `{"model":"m","max_tokens":5,"messages":${JSON.stringify(messages)},` +
                     '"max\\u005ftokens":100000}' };
    case 'duplicate-options':  // refused: the mock would read stream_options {}
      return { route: 'chat/completions', headers: {}, refused: true,
               text: `{"model":"m","stream":true,"stream_options":{"include_usage":true},` +
                     `"stream_options":{},"tools":${JSON.stringify(SMALL_TOOLS)},` +
                     `"messages":${JSON.stringify(messages)}}` };
    case 'no-cap': return chat({});
    case 'huge-cap': return chat({ max_tokens: 1_000_000 });
    case 'n': return chat({ n: 3, max_completion_tokens: 40 });
    case 'tools': return chat({ tools: SMALL_TOOLS });
    case 'tools-no-usage':
      return chat({ tools: SMALL_TOOLS, stream: true }, { 'x-mock-fault': 'no-usage' });
    case 'no-usage': return chat({ stream: true }, { 'x-mock-fault': 'no-usage' });
    case 'bad-usage': return chat({ max_tokens: 1_000_000 }, { 'x-mock-fault': 'usage-negative' });
    case 'abort':
      return chat({ stream: true, stream_options: { include_usage: true } }, {}, { abort: true });
    case 'gzip': return chat({ stream: true }, { 'accept-encoding': 'gzip' });
    case 'continuous':
      return chat({ stream: true, stream_options: { continuous_usage_stats: true } });
    default: {  // two prompts, no cap
      const body = { model: 'm', prompt: [`prompt ${i}`, `and prompt ${i} again`] };
      return { route: 'completions', text: JSON.stringify(body), headers: {},
               reservation: reservationOf('completions', body) };
    }
  }
}
const KINDS = ['duplicate', 'duplicate-options', 'no-cap', 'huge-cap', 'n', 'tools',
               'tools-no-usage', 'no-usage', 'bad-usage', 'abort', 'gzip', 'continuous',
               'completions'];

// `CLIENTS` clients send a deterministic mix of KINDS to `gateways` in turn, each retrying a 429
// after its retry-after-ms, and giving up when that is past the run's end (the budget hardly
// refills: the run ends once it is spent), at most MAX_REQUESTS requests and RUN_MS in all.
async function adversarialRun(gateways, key) {
  const out = { sent: 0, admitted: 0, refused400: 0, refused429: 0, aborted: 0,
                maxReservation: 0, unexpected: [] };
  const end = performance.now() + RUN_MS;
  async function client(c) {
    let attempt = 0;
    while (performance.now() < end && out.sent < MAX_REQUESTS) {
      const i = out.sent++;
      const req = adversarial(KINDS[(c * 5 + attempt++) % KINDS.length], i);
      const gw = gateways[i % gateways.length];
      const ac = new AbortController();
      for (;;) {
        const r = await gw.send(req.route, req.text,
                                { key: `sk-${key}`, headers: req.headers, signal: ac.signal });
        if (r.status === 429) {
          await r.arrayBuffer();
          out.refused429++;
          const wait = Number(r.headers.get('retry-after-ms'));
          if (!(wait >= 1) || performance.now() + wait >= end) return;
          await delay(wait);
          out.sent++;
          continue;
        }
        if (r.status === 400 && req.refused) {
          const e = (await r.json()).error;
          if (e?.code === 'invalid_request') out.refused400++;
          else out.unexpected.push(`${req.text.slice(0, 80)}: 400 ${JSON.stringify(e)}`);
        } else if (r.status === 200 && !req.refused) {
          out.admitted++;
          out.maxReservation = Math.max(out.maxReservation, req.reservation);
          if (req.abort) {
            const reader = r.body.getReader();
            await reader.read();  // the first bytes, then hang up
            ac.abort();
            await reader.cancel().catch(() => {});
            out.aborted++;
          } else {
            await r.arrayBuffer();
          }
        } else {
          out.unexpected.push(`${req.route} ${req.text.slice(0, 80)}: ${r.status} ` +
                              `${await r.text()}`);
        }
        break;
      }
    }
  }
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
  return out;
}

async function invariant(t, gateways, mock) {
  const key = 'inv';
  const run = await adversarialRun(gateways, key);
  await allSettled(gateways, key, run.sent);
  const stats = await mock.stats();
  const served = stats.served_prompt_tokens_total + stats.served_completion_tokens_total;
  const charged = INV_LIMIT - await tokensLevel(gateways[0], key);
  // Each instance writes its usage at least every second: poll until all of it is in.
  let usage;
  const ok = await pollUntil(async () => {
    usage = await usageTotal(gateways[0], key);
    return usage.requests === run.admitted && usage.rejected === run.refused429;
  });
  const recorded = usage.prompt_tokens + usage.completion_tokens;
  let metricTokens = 0;
  for (const gw of gateways) metricTokens += await gw.metric('trl_tokens_total', { key });
  t.diagnostic(`${run.sent} requests: ${run.admitted} admitted (${run.aborted} aborted by the ` +
               `client), ${run.refused400} refused 400, ${run.refused429} refused 429`);
  t.diagnostic(`limit ${INV_LIMIT}, largest reservation ${run.maxReservation}; mock served ` +
               `${served} (prompt ${stats.served_prompt_tokens_total} + completion ` +
               `${stats.served_completion_tokens_total}); charged ${charged}; usage API ` +
               `${recorded} (prompt ${usage.prompt_tokens} + completion ` +
               `${usage.completion_tokens}); ` +
               `trl_tokens_total ${metricTokens}`);
  assert.ok(served <= INV_LIMIT + run.maxReservation,
            `the mock served ${served} > ${INV_LIMIT} + ${run.maxReservation}`);
  assert.ok(ok, `usage API: ${JSON.stringify(usage)}, ${run.admitted} admitted`);
  assert.equal(recorded, charged, 'the usage API differs from what was charged');
  assert.deepEqual(run.unexpected, []);
  assert.ok(run.refused429 > 0, 'the run never spent the budget');
  assert.ok(run.refused400 > 0 && run.aborted > 0, JSON.stringify(run));
  assert.equal(stats.requests_total, run.admitted,
               'every admitted request, and no other, reached the mock');
  assert.equal(usage.rejected, run.refused429);
  assert.equal(metricTokens, charged);
  // What reached the mock asked for no more than was reserved (the last 64 requests).
  for (const rec of await mock.requests()) {
    const body = JSON.parse(rec.body);  // the last of repeated keys wins, as in the backend
    const cap = body.max_completion_tokens || body.max_tokens;
    assert.ok(cap >= 1 && cap <= MAX_OUT, `forwarded with cap ${cap}: ${rec.body.slice(0, 200)}`);
    if (body.stream) assert.equal(body.stream_options?.include_usage, true, rec.body.slice(0, 200));
  }
}

function invariantConfig(mock, store) {
  return {
    server: { threads: 2 },
    ...(store ? { store } : {}),
    models: [{ name: 'm', backends: [mock.url], max_output_tokens: MAX_OUT }],
    api_keys: [{ name: 'inv', key: 'sk-inv', limits: [{ tokens: INV_LIMIT, per: '3650d' }] }],
  };
}

// A mock pacing streams at 400 words a second, so that a client can hang up midway.
const invariantMock = (name) => startMock({
  name, models: ['m'], maxOutput: 100, defaultMaxOutput: 500, tokensPerSecond: 400, threads: 2 });

describe('the invariant against adversarial clients', () => {
  test('embedded store: served <= limit + the largest reservation; usage API = charged',
       async (t) => {
    const mock = await invariantMock('mock-inv-embedded');
    const gw = await startGateway(invariantConfig(mock), { name: 'gw-inv' });
    await invariant(t, [gw], mock);
    await gw.stop();
    await mock.stop();
  });

  test('Redis shared by two instances: served <= limit + the largest reservation; usage API = ' +
       'charged', async (t) => {
    const mock = await invariantMock('mock-inv-redis');
    const redis = await startRedis({ name: 'redis-inv' });
    const cfg = invariantConfig(mock, { backend: 'redis', redis: { url: redis.url, timeout: '1s' },
                                        on_store_error: 'deny' });
    const gws = [await startGateway(cfg, { name: 'gw-inv-a' }),
                 await startGateway(cfg, { name: 'gw-inv-b' })];
    for (const gw of gws) await waitReady(gw);
    await invariant(t, gws, mock);
    for (const gw of gws) await gw.stop();
    await mock.stop();
  });
});
