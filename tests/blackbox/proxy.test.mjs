// The data plane as a client sees it: the official openai SDK talks to the gateway and gets what
// it would get from the model server directly; routing, balancing, ejection and graceful
// shutdown, all with real processes on loopback. (A client hanging up: errors.test.mjs.)
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import {
  cleanup, mockText, pollUntil, readSse, startGateway, startMock, streamText,
} from './lib/harness.mjs';

const KEY = 'sk-proxy-test';
const LIMITED_KEY = 'sk-proxy-limited';  // models: shared, slow (the latter by its alias)
const ALIAS = 'meta-llama/Llama-2-7b-chat-hf';
const messages = [{ role: 'user', content: 'say something nice about rate limits' }];

after(cleanup);

// Stream through the SDK and gather what a client would keep of it.
async function collectChat(stream) {
  const out = { content: '', usage: null, finish_reason: null, chunks: 0, model: null };
  for await (const chunk of stream) {
    out.chunks++;
    out.model = chunk.model;
    if (chunk.usage) out.usage = chunk.usage;
    for (const c of chunk.choices) {
      out.content += c.delta?.content ?? '';
      if (c.finish_reason) out.finish_reason = c.finish_reason;
    }
  }
  return out;
}

async function collectCompletion(stream) {
  const out = { text: '', usage: null, finish_reason: null, chunks: 0 };
  for await (const chunk of stream) {
    out.chunks++;
    if (chunk.usage) out.usage = chunk.usage;
    for (const c of chunk.choices) {
      out.text += c.text ?? '';
      if (c.finish_reason) out.finish_reason = c.finish_reason;
    }
  }
  return out;
}

describe('proxy', () => {
  let main;    // llama2-7b (+ alias): the reference backend
  let other;   // a second model, to show the alias goes to the right place
  let s1, s2;  // model "shared": two backends
  let k1, k2;  // model "killme": one of them dies mid-run
  let slow;    // model "slow" (alias "slow-alias")
  let gw;
  let client;

  before(async () => {
    [main, other, s1, s2, k1, k2, slow] = await Promise.all([
      // Serves the alias as well, so the test holds whether the gateway forwards the name the
      // client used or the canonical one.
      startMock({ name: 'mock-main', models: ['llama2-7b', ALIAS] }),
      startMock({ name: 'mock-other', models: ['other-model'] }),
      startMock({ name: 'mock-s1', models: ['shared'], ttft: '40ms' }),
      startMock({ name: 'mock-s2', models: ['shared'], ttft: '40ms' }),
      startMock({ name: 'mock-k1', models: ['killme'], ttft: '5ms' }),
      startMock({ name: 'mock-k2', models: ['killme'], ttft: '5ms' }),
      startMock({ name: 'mock-slow', models: ['slow'], maxOutput: 1000, tokensPerSecond: 20 }),
    ]);
    gw = await startGateway({
      models: [
        { name: 'llama2-7b', aliases: [ALIAS], backends: [main.url], timeout: '10s' },
        { name: 'other-model', backends: [other.url] },
        { name: 'shared', backends: [s1.url, s2.url] },
        { name: 'killme', backends: [k1.url, k2.url], timeout: '5s' },
        { name: 'slow', aliases: ['slow-alias'], backends: [slow.url], max_output_tokens: 1000 },
      ],
      api_keys: [{ name: 'proxy-test', key: KEY },
                 { name: 'proxy-limited', key: LIMITED_KEY, models: ['shared', 'slow-alias'] }],
    });
    client = gw.client(KEY);
  });

  test('non-streaming chat completion: same content and usage as the backend directly', async () => {
    const req = { model: 'llama2-7b', messages, max_tokens: 7 };
    const direct = await main.client().chat.completions.create(req);
    const via = await client.chat.completions.create(req);
    assert.equal(via.object, 'chat.completion');
    assert.equal(via.model, 'llama2-7b');
    assert.equal(via.choices.length, 1);
    assert.equal(via.choices[0].message.role, 'assistant');
    assert.equal(via.choices[0].message.content, mockText(7));
    assert.equal(via.choices[0].message.content, direct.choices[0].message.content);
    assert.equal(via.choices[0].finish_reason, direct.choices[0].finish_reason);
    assert.deepEqual(via.usage, direct.usage);
    // mock-llm's rule: 6 words + 3 per message; 7 words generated.
    assert.deepEqual(via.usage, { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 });
  });

  test('streaming chat completion with include_usage: same deltas and usage', async () => {
    const req = {
      model: 'llama2-7b', messages, max_tokens: 12, stream: true,
      stream_options: { include_usage: true },
    };
    const direct = await collectChat(await main.client().chat.completions.create(req));
    const via = await collectChat(await client.chat.completions.create(req));
    assert.equal(via.content, mockText(12));
    assert.equal(via.content, direct.content);
    assert.equal(via.chunks, direct.chunks);
    assert.equal(via.finish_reason, direct.finish_reason);
    assert.deepEqual(via.usage, { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 });
    assert.deepEqual(via.usage, direct.usage);
  });

  test('completions, plain and streamed: same text and usage', async () => {
    const req = { model: 'llama2-7b', prompt: 'once upon a time', max_tokens: 5 };
    const direct = await main.client().completions.create(req);
    const via = await client.completions.create(req);
    assert.equal(via.object, 'text_completion');
    assert.equal(via.choices[0].text, mockText(5));
    assert.equal(via.choices[0].text, direct.choices[0].text);
    assert.deepEqual(via.usage, direct.usage);
    assert.deepEqual(via.usage, { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });

    const sreq = { ...req, stream: true, stream_options: { include_usage: true } };
    const sdirect = await collectCompletion(await main.client().completions.create(sreq));
    const svia = await collectCompletion(await client.completions.create(sreq));
    assert.equal(svia.text, mockText(5));
    assert.equal(svia.text, sdirect.text);
    assert.deepEqual(svia.usage, sdirect.usage);
  });

  test('embeddings: same vectors and usage', async () => {
    const req = { model: 'llama2-7b', input: ['the quick brown fox', 'jumps'] };
    const direct = await main.client().embeddings.create(req);
    const via = await client.embeddings.create(req);
    assert.equal(via.data.length, 2);
    assert.deepEqual(via.data.map((d) => d.embedding), direct.data.map((d) => d.embedding));
    assert.ok(via.data[0].embedding.length > 0);
    assert.deepEqual(via.usage, direct.usage);
    assert.equal(via.usage.prompt_tokens, 5);
    // The float format too, which the SDK does not ask for by default.
    const f = await client.embeddings.create({ ...req, encoding_format: 'float' });
    assert.deepEqual(f.data.map((d) => d.embedding), direct.data.map((d) => d.embedding));
  });

  const modelIds = async (c) => {
    const out = [];
    for await (const m of c.models.list()) out.push(m.id);
    return out;
  };

  test('GET /v1/models: a key with no `models` lists every model', async () => {
    assert.deepEqual(await modelIds(client),
                     ['llama2-7b', 'other-model', 'shared', 'killme', 'slow']);
  });

  test('GET /v1/models: a restricted key lists its models only, by their canonical names',
       async () => {
    assert.deepEqual(await modelIds(gw.client(LIMITED_KEY)), ['shared', 'slow']);
  });

  test('an alias routes to its model\'s backends', async () => {
    const before = [(await main.stats()).requests_total, (await other.stats()).requests_total];
    const r = await client.chat.completions.create({ model: ALIAS, messages, max_tokens: 3 });
    assert.equal(r.choices[0].message.content, mockText(3));
    assert.deepEqual(r.usage, { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 });
    const after = [(await main.stats()).requests_total, (await other.stats()).requests_total];
    assert.deepEqual(after, [before[0] + 1, before[1]]);

    const o = await client.chat.completions.create({ model: 'other-model', messages, max_tokens: 2 });
    assert.equal(o.choices[0].message.content, mockText(2));
    assert.equal((await other.stats()).requests_total, before[1] + 1);
    assert.equal((await main.stats()).requests_total, before[0] + 1);
  });

  test('two backends share the load', async () => {
    const N = 24;
    const results = await Promise.all(Array.from({ length: N }, () =>
      client.chat.completions.create({ model: 'shared', messages, max_tokens: 4 })));
    for (const r of results) assert.equal(r.choices[0].message.content, mockText(4));
    const a = (await s1.stats()).requests_total;
    const b = (await s2.stats()).requests_total;
    assert.equal(a + b, N);
    assert.ok(a > 0 && b > 0, `both backends must serve (got ${a} and ${b})`);
  });

  test('a backend killed mid-run is ejected; every later request succeeds via the other',
       async () => {
    // Warm both pools so the gateway holds keep-alive connections to the backend about to die.
    const warm = await Promise.all(Array.from({ length: 10 }, () =>
      client.chat.completions.create({ model: 'killme', messages, max_tokens: 2 })));
    for (const r of warm) assert.equal(r.choices[0].message.content, mockText(2));
    assert.ok((await k1.stats()).requests_total > 0, 'k1 served before it was killed');
    assert.equal(await gw.metric('trl_backend_up', { model: 'killme', backend: k1.url }), 1);
    const k2Before = (await k2.stats()).requests_total;

    const exit = await k1.kill('SIGKILL');
    assert.equal(exit.signal, 'SIGKILL');

    // Sequential, then concurrent: none may fail.
    for (let i = 0; i < 15; i++) {
      const r = await client.chat.completions.create({ model: 'killme', messages, max_tokens: 2 });
      assert.equal(r.choices[0].message.content, mockText(2), `request ${i} after the kill`);
    }
    const burst = await Promise.allSettled(Array.from({ length: 15 }, () =>
      client.chat.completions.create({ model: 'killme', messages, max_tokens: 2 })));
    const failed = burst.filter((b) => b.status === 'rejected').map((b) => String(b.reason));
    assert.deepEqual(failed, []);
    assert.equal((await k2.stats()).requests_total, k2Before + 30);
    // Out of rotation, as the metrics say (and k2 still in).
    const up = async (m) => gw.metric('trl_backend_up', { model: 'killme', backend: m.url });
    assert.ok(await pollUntil(async () => (await up(k1)) === 0),
              'trl_backend_up of the killed backend is still 1');
    assert.equal(await up(k2), 1);
  });

  test('x-request-id is echoed when sent and generated when not', async () => {
    const sent = await gw.post('chat/completions',
                               { model: 'llama2-7b', messages, max_tokens: 1 },
                               { key: KEY, headers: { 'x-request-id': 'bb-req-0001' } });
    assert.equal(sent.status, 200);
    assert.equal(sent.headers.get('x-request-id'), 'bb-req-0001');

    const generated = await gw.post('chat/completions',
                                    { model: 'llama2-7b', messages, max_tokens: 1 }, { key: KEY });
    assert.equal(generated.status, 200);
    const id = generated.headers.get('x-request-id');
    assert.ok(id && id.length >= 8, `generated x-request-id: ${id}`);

    const again = await gw.post('chat/completions',
                                { model: 'llama2-7b', messages, max_tokens: 1 }, { key: KEY });
    assert.notEqual(again.headers.get('x-request-id'), id, 'ids are unique');

    const err = await gw.post('chat/completions', { model: 'no-such-model', messages },
                              { key: KEY, headers: { 'x-request-id': 'bb-req-0002' } });
    assert.equal(err.status, 404);
    assert.equal(err.headers.get('x-request-id'), 'bb-req-0002');
  });

  test('a large body and a request pipelined behind it on one connection are both answered',
       async () => {
    // 60,000 words (~300 KB, read in large pieces), then a small request in the same write.
    const big = JSON.stringify({ model: 'llama2-7b', max_tokens: 2,
                                 messages: [{ role: 'user', content: 'word '.repeat(60000) }] });
    const small = JSON.stringify({ model: 'llama2-7b', messages, max_tokens: 3 });
    const request = (body) => `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n` +
        `Authorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const answers = await new Promise((resolve, reject) => {
      const socket = net.connect(gw.port, '127.0.0.1');
      let data = Buffer.alloc(0);
      const parsed = [];
      socket.on('data', (chunk) => {
        data = Buffer.concat([data, chunk]);
        for (;;) {  // every complete answer (each has a Content-Length)
          const end = data.indexOf('\r\n\r\n');
          if (end < 0) break;
          const head = data.subarray(0, end).toString();
          const length = Number(/content-length: *(\d+)/i.exec(head)[1]);
          if (data.length < end + 4 + length) break;
          parsed.push({ status: Number(head.split(' ')[1]),
                        body: JSON.parse(data.subarray(end + 4, end + 4 + length).toString()) });
          data = data.subarray(end + 4 + length);
        }
        if (parsed.length === 2) {
          socket.end();
          resolve(parsed);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => reject(new Error(`closed after ${parsed.length} answers`)));
      socket.write(request(big) + request(small));
    });
    assert.deepEqual(answers.map((a) => a.status), [200, 200]);
    // mock-llm's rule: the words plus 3 per message.
    assert.deepEqual(answers[0].body.usage,
                     { prompt_tokens: 60003, completion_tokens: 2, total_tokens: 60005 });
    assert.deepEqual(answers[1].body.usage,
                     { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 });
  });
});

describe('graceful shutdown', () => {
  test('SIGTERM during 20 open streams lets all 20 finish, then exits 0', async () => {
    const slow = await startMock({ name: 'mock-drain', models: ['slow'], maxOutput: 100,
                                   tokensPerSecond: 20 });
    const gw = await startGateway({
      server: { shutdown_grace: '20s' },
      models: [{ name: 'slow', backends: [slow.url] }],
      api_keys: [{ name: 'drain', key: KEY }],
    });
    const N = 20;
    // Two seconds per stream: every head has arrived (each stream is under way at the backend)
    // well before the first stream can end, however slow the machine is at starting 20.
    const WORDS = 40;
    const responses = await Promise.all(Array.from({ length: N }, () => gw.send(
        'chat/completions', { model: 'slow', messages, max_tokens: WORDS, stream: true,
                              stream_options: { include_usage: true } }, { key: KEY })));
    for (const r of responses) assert.equal(r.status, 200);
    const reading = responses.map((r) => readSse(r));
    const allOpen = await pollUntil(async () => (await slow.stats()).open_streams === N,
                                    { intervalMs: 10 });
    assert.ok(allOpen, 'all streams open at the backend before SIGTERM');

    gw.proc.signal('SIGTERM');
    const streams = await Promise.all(reading);
    for (const events of streams) {
      assert.equal(events.at(-1), '[DONE]');
      const chunks = events.slice(0, -1);
      assert.equal(streamText(chunks), mockText(WORDS));
      assert.ok(chunks.some((c) => c.choices?.[0]?.finish_reason === 'length'));
      assert.deepEqual(chunks.at(-1).usage,
                       { prompt_tokens: 9, completion_tokens: WORDS, total_tokens: 9 + WORDS });
    }
    const exit = await gw.proc.waitExit(15000);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null });
  });
});
