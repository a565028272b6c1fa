// Failures, as a client sees them: every backend fault and every kind of bad input gets the
// status and OpenAI-shaped body of docs/limits.md ("Headers and errors"), and the gateway goes on serving.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import net from 'node:net';

import OpenAI from 'openai';

import {
  chatBody, cleanup, errorOf, mockText, pollUntil, rawHttp, readSse, startGateway, startMock,
  streamText,
} from './lib/harness.mjs';

const KEY = 'sk-errors-full';
const LIMITED_KEY = 'sk-errors-limited';
const MAX_BODY = 65536;
const MAX_HEADER = 8192;

after(cleanup);

describe('errors', () => {
  let mock;
  let gw;
  let config;

  before(async () => {
    mock = await startMock({ name: 'mock-errors', models: ['m', 'other'] });
    config = {
      server: { max_body_bytes: MAX_BODY, max_header_bytes: MAX_HEADER },
      models: [
        { name: 'm', backends: [mock.url], timeout: '1s' },
        { name: 'other', backends: [mock.url], timeout: '1s' },
      ],
      api_keys: [
        { name: 'full', key: KEY },
        { name: 'limited', key: LIMITED_KEY, models: ['m'] },
      ],
    };
  });

  // After a failure, a good request on the same gateway succeeds. After a backend fault the
  // gateway may take the model's only backend out of rotation for a short backoff (then 503
  // model_unavailable), so there it is polled (bounded) until the backend is back.
  async function stillServes({ recover = false } = {}) {
    const good = () => gw.post('chat/completions',
                               chatBody('m', 'are you still there', { max_tokens: 3 }), { key: KEY });
    let r;
    await pollUntil(async () => {
      r = await good();
      return !recover || r.status !== 503;
    }, { intervalMs: 50 });
    assert.equal(r.status, 200, `good request after a failure: ${r.text}`);
    assert.equal(r.json.choices[0].message.content, mockText(3));
  }

  const fault = (name, extra = {}) => gw.post(
      'chat/completions', chatBody('m', 'hello there world', { max_tokens: 4, ...extra }),
      { key: KEY, headers: { 'x-mock-fault': name } });

  describe('backend faults', () => {
    // A fresh gateway for each fault: one fault's backoff never shows in the next test.
    beforeEach(async () => {
      await gw?.stop();
      gw = await startGateway(config);
    });

    test('http500 -> 502 backend_error', async () => {
      const r = await fault('http500');
      assert.equal(r.status, 502);
      errorOf(r.json, { type: 'api_error', code: 'backend_error' });
      assert.ok(r.headers.get('x-request-id'));
      await stillServes({ recover: true });
    });

    test('reset before any response -> 502 backend_error', async () => {
      const r = await fault('reset');
      assert.equal(r.status, 502);
      errorOf(r.json, { type: 'api_error', code: 'backend_error' });
      await stillServes({ recover: true });
    });

    test('hang -> 504 backend_timeout after the model timeout (1s)', async () => {
      const t0 = performance.now();
      const r = await fault('hang');
      const elapsed = performance.now() - t0;
      assert.equal(r.status, 504);
      errorOf(r.json, { type: 'api_error', code: 'backend_timeout' });
      // Not before the model's 1 s; and the model's, not the default of 120 s (a loaded machine
      // may answer late, never that late).
      assert.ok(elapsed >= 900 && elapsed < 60_000, `answered after ${elapsed.toFixed(0)} ms`);
      await stillServes({ recover: true });
    });

    test('truncate-stream -> the stream ends with an error event', async () => {
      const r = await gw.send('chat/completions',
                              chatBody('m', 'hello there world', { max_tokens: 10, stream: true }),
                              { key: KEY, headers: { 'x-mock-fault': 'truncate-stream' } });
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /^text\/event-stream/);
      const events = await readSse(r);
      const errAt = events.findIndex((e) => e !== '[DONE]' && e.error);
      assert.ok(errAt >= 0, `no error event in ${JSON.stringify(events)}`);
      errorOf(events[errAt], { code: 'backend_error' });
      // Only [DONE] may follow the error event; nothing before it claims a finished answer.
      assert.ok(events.slice(errAt + 1).every((e) => e === '[DONE]'), JSON.stringify(events));
      const before = events.slice(0, errAt);
      assert.ok(!before.includes('[DONE]'));
      assert.ok(before.every((e) => !e.choices?.some((c) => c.finish_reason)));
      const text = streamText(before);
      assert.ok(mockText(10).startsWith(text) && text.length < mockText(10).length,
                `relayed part: ${JSON.stringify(text)}`);

      // The SDK turns that event into an error too (once the backend is back in rotation).
      await stillServes({ recover: true });
      const client = gw.client(KEY);
      const stream = await client.chat.completions.create(
          chatBody('m', 'hello there world', { max_tokens: 10, stream: true }),
          { headers: { 'x-mock-fault': 'truncate-stream' } });
      await assert.rejects(async () => { for await (const _ of stream) { /* drain */ } },
                           (err) => err instanceof OpenAI.APIError);
      await stillServes({ recover: true });
    });

    test('after truncate-stream the same connection serves the next request', async () => {
      // The stream ended properly for the client (error event, last chunk), so its keep-alive
      // connection must not be closed under it: a client would send its next POST on it.
      const sock = net.connect({ port: gw.port, host: '127.0.0.1' });
      let data = '';
      let closed = false;
      sock.setEncoding('latin1');
      sock.on('data', (d) => { data += d; });
      sock.on('end', () => { closed = true; });
      sock.on('error', () => { closed = true; });
      const request = (body, fault) => {
        const text = JSON.stringify(body);
        return 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
            `Authorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n` +
            (fault ? `x-mock-fault: ${fault}\r\n` : '') +
            `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
      };
      await new Promise((resolve) => sock.once('connect', resolve));
      sock.write(request(chatBody('m', 'hello there world', { max_tokens: 10, stream: true }),
                         'truncate-stream'));
      assert.ok(await pollUntil(async () => data.endsWith('\r\n0\r\n\r\n') || closed));
      assert.match(data, /^HTTP\/1\.1 200 /);
      assert.match(data, /backend_error/);
      assert.doesNotMatch(data, /^connection: close/im);
      data = '';
      // Once the backend is back in rotation, the next request on the same connection.
      await stillServes({ recover: true });
      sock.write(request(chatBody('m', 'are you still there', { max_tokens: 3 })));
      assert.ok(await pollUntil(async () => /\r\n\r\n\{.*\}$/s.test(data) || closed));
      sock.destroy();
      assert.match(data, /^HTTP\/1\.1 200 /, `second answer: ${JSON.stringify(data)}`);
      assert.ok(data.includes(mockText(3)));
    });

    test('no-usage -> 200 with the normal content, plain and streamed', async () => {
      const r = await fault('no-usage', { max_tokens: 6 });
      assert.equal(r.status, 200);
      assert.equal(r.json.choices[0].message.content, mockText(6));

      const s = await gw.send('chat/completions',
                              chatBody('m', 'hello there world', { max_tokens: 6, stream: true }),
                              { key: KEY, headers: { 'x-mock-fault': 'no-usage' } });
      assert.equal(s.status, 200);
      const events = await readSse(s);
      assert.equal(events.at(-1), '[DONE]');
      assert.equal(streamText(events), mockText(6));
      await stillServes({ recover: true });
    });
  });

  describe('bad input', () => {
    before(async () => {
      await gw?.stop();
      gw = await startGateway(config);
    });

    // A gateway that crashed in one test is replaced, so the next test says something of its
    // own (cleanup() reports the crash with the gateway's last output).
    beforeEach(async () => {
      if (gw.proc.exitInfo) gw = await startGateway(config);
    });

    const cases = [
      { name: 'body is not JSON', body: '{"model": "m", "messages": [', status: 400,
        type: 'invalid_request_error', code: 'invalid_request' },
      { name: 'model missing', body: { messages: [{ role: 'user', content: 'hi' }] }, status: 400,
        type: 'invalid_request_error', code: 'invalid_request', param: 'model' },
      { name: 'model not a string', body: { model: 42, messages: [{ role: 'user', content: 'hi' }] },
        status: 400, type: 'invalid_request_error', code: 'invalid_request', param: 'model' },
      { name: 'negative max_tokens', body: chatBody('m', 'hi', { max_tokens: -5 }), status: 400,
        type: 'invalid_request_error', code: 'invalid_request', param: 'max_tokens' },
      { name: 'max_tokens of the wrong type', body: chatBody('m', 'hi', { max_tokens: 'ten' }),
        status: 400, type: 'invalid_request_error', code: 'invalid_request', param: 'max_tokens' },
      { name: 'unknown model', body: chatBody('no-such-model'), status: 404,
        type: 'invalid_request_error', code: 'model_not_found' },
      { name: 'missing key', body: chatBody('m'), key: null, status: 401,
        type: 'invalid_request_error', code: 'invalid_api_key' },
      { name: 'wrong key', body: chatBody('m'), key: 'sk-not-a-key', status: 401,
        type: 'invalid_request_error', code: 'invalid_api_key' },
      { name: 'model not allowed for the key', body: chatBody('other'), key: LIMITED_KEY,
        status: 403, type: 'permission_error', code: 'model_not_allowed' },
    ];
    for (const c of cases) {
      test(`${c.name} -> ${c.status} ${c.code}`, async () => {
        const r = await gw.post('chat/completions', c.body, { key: c.key === undefined ? KEY : c.key });
        assert.equal(r.status, c.status, r.text);
        errorOf(r.json, { type: c.type, code: c.code, param: c.param });
        assert.ok(r.headers.get('x-request-id'));
        await stillServes();
      });
    }

    test('missing and wrong keys get the same answer', async () => {
      const missing = await gw.post('chat/completions', chatBody('m'), { key: null });
      const wrong = await gw.post('chat/completions', chatBody('m'), { key: 'sk-nope' });
      assert.deepEqual(wrong.json, missing.json);
    });

    test('the same checks hold on completions and embeddings', async () => {
      const c = await gw.post('completions', { prompt: 'hi' }, { key: KEY });
      assert.equal(c.status, 400);
      errorOf(c.json, { code: 'invalid_request', param: 'model' });
      const e = await gw.post('embeddings', { model: 'no-such-model', input: 'hi' }, { key: KEY });
      assert.equal(e.status, 404);
      errorOf(e.json, { code: 'model_not_found' });
      const ok = await gw.post('embeddings', { model: 'm', input: 'one two' }, { key: KEY });
      assert.equal(ok.status, 200);
    });

    test('headers over max_header_bytes -> 431', async () => {
      const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
          `Authorization: Bearer ${KEY}\r\nX-Padding: ${'a'.repeat(MAX_HEADER + 100)}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}';
      const r = await rawHttp(gw.port, head);
      assert.equal(r.status, 431);
      errorOf(r.json);
      await stillServes();
    });

    test('a body just under the limit is accepted', async () => {
      const filler = 'y '.repeat((MAX_BODY - 200) / 2);
      const body = JSON.stringify(chatBody('m', filler, { max_tokens: 2 }));
      assert.ok(Buffer.byteLength(body) < MAX_BODY);
      const r = await gw.post('chat/completions', body, { key: KEY });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.choices[0].message.content, mockText(2));
    });
  });

  // The client's timeouts bound each read of a request and each write of an answer, not the
  // exchange with the backend in between.
  describe('slow clients', () => {
    let paced;
    let slowGw;

    before(async () => {
      paced = await startMock({ name: 'mock-paced', models: ['paced'], maxOutput: 1000,
                                tokensPerSecond: 10 });
      slowGw = await startGateway({
        server: { header_timeout: '1s' },
        models: [{ name: 'paced', backends: [paced.url] }],
        api_keys: [{ name: 'full', key: KEY }],
      }, { name: 'gateway-slow-clients' });
    });
    after(async () => { await slowGw?.stop(); });

    const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
        `Authorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n`;

    test('headers that stop coming -> 408 request_timeout', async () => {
      const r = await rawHttp(slowGw.port, head + 'Content-Len', { timeoutMs: 10000 });
      assert.equal(r.status, 408);
      errorOf(r.json, { type: 'invalid_request_error', code: 'request_timeout' });
    });

    test('a body that stops coming -> 408 request_timeout', async () => {
      const r = await rawHttp(slowGw.port, head + 'Content-Length: 100\r\n\r\n',
                              { body: '{"model":', timeoutMs: 10000 });
      assert.equal(r.status, 408);
      errorOf(r.json, { type: 'invalid_request_error', code: 'request_timeout' });
    });

    test('a stream that outlasts the header timeout is relayed whole', async () => {
      // 20 tokens at 10/s: about 2 s, twice the header timeout.
      const body = chatBody('paced', 'hello there world', { max_tokens: 20, stream: true });
      const r = await slowGw.send('chat/completions', body, { key: KEY });
      assert.equal(r.status, 200);
      const events = await readSse(r);
      assert.equal(events.at(-1), '[DONE]');
      assert.equal(streamText(events), mockText(20));
      // And the connection still serves a plain request after it.
      const ok = await slowGw.post('chat/completions', chatBody('paced', 'hi', { max_tokens: 2 }),
                                   { key: KEY });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.choices[0].message.content, mockText(2));
    });

    // (The one hang-up mid-stream test: one past the header timeout shows both that the timeout
    // no longer applies and that the gateway hangs up on the backend.)
    test('a client that hangs up mid-stream, after the header timeout, frees the backend; the ' +
         'gateway serves on', async () => {
      assert.equal((await paced.stats()).open_streams, 0);
      const ac = new AbortController();
      const stream = await slowGw.client(KEY).chat.completions.create(
          chatBody('paced', 'hello there world', { max_tokens: 1000, stream: true }),
          { signal: ac.signal });
      let words = 0;
      try {
        for await (const chunk of stream) {
          if (chunk.choices[0]?.delta?.content) words++;
          if (words === 15) ac.abort();  // 1.5 s in: past the 1 s header timeout
        }
      } catch (err) {
        if (!(err instanceof OpenAI.APIUserAbortError || err.name === 'AbortError')) throw err;
      }
      assert.equal(words, 15);
      // The other 985 words would take 98 s: only the gateway hanging up can end it now.
      const closed = await pollUntil(async () => (await paced.stats()).open_streams === 0);
      assert.ok(closed, 'the backend stream was not closed after the client left');
      const ok = await slowGw.post('chat/completions', chatBody('paced', 'hi', { max_tokens: 2 }),
                                   { key: KEY });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.choices[0].message.content, mockText(2));
    });

    test('a client that leaves before a plain answer frees the backend', async () => {
      const before = await paced.stats();
      const ac = new AbortController();
      // The backend never answers, until it is hung up on.
      const pending = slowGw.send(
          'chat/completions', chatBody('paced', 'hello there world', { max_tokens: 5 }),
          { key: KEY, headers: { 'x-mock-fault': 'hang' }, signal: ac.signal }).catch((err) => err);
      assert.ok(await pollUntil(async () =>
          (await paced.stats()).requests_total === before.requests_total + 1));
      const hung = (await paced.stats()).open_connections;
      ac.abort();
      assert.equal((await pending).name, 'AbortError');
      // The model's timeout is 2 minutes: only the gateway hanging up ends the backend's wait.
      const closed = await pollUntil(async () => (await paced.stats()).open_connections < hung);
      assert.ok(closed, 'the backend connection was not closed after the client left');
    });
  });
});
