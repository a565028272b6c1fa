// mock-llm's answers to the Responses API and vLLM's utility endpoints (src/mock/mock_responses.h,
// mock_score.h, mock_tokenize.h, mock_transcription.h), as the official openai client and plain
// fetch see them: the shapes and usage numbers the gateway's tests predict from the request.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { toFile } from 'openai';

import { cleanup, startMock } from './lib/harness.mjs';

after(cleanup);

// The event types of a Responses stream, in order, for an answer of `words` words.
function expectedTypes(words) {
  return ['response.created', 'response.in_progress', 'response.output_item.added',
    'response.content_part.added', ...Array(words).fill('response.output_text.delta'),
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
    'response.completed'];
}

// The problems of a Responses event stream (an array of parsed events), each named; [] = fine.
export function streamProblems(events, words) {
  const problems = [];
  const types = events.map((e) => e.type);
  if (JSON.stringify(types) !== JSON.stringify(expectedTypes(words))) problems.push('event order');
  events.forEach((e, i) => {
    if (e.sequence_number !== i) problems.push(`sequence_number of event ${i}`);
  });
  const text = events.filter((e) => e.type === 'response.output_text.delta')
    .map((e) => e.delta).join('');
  const done = events.find((e) => e.type === 'response.output_text.done');
  if (!done || done.text !== text) problems.push('deltas do not make the done text');
  const last = events.at(-1);
  if (!last?.response?.usage) problems.push('no usage on response.completed');
  return problems;
}

describe('mock-llm endpoints', () => {
  let mock;
  let client;

  before(async () => {
    mock = await startMock({ name: 'mock-endpoints', maxOutput: 4 });
    client = mock.client();
  });

  const post = async (route, body) => {
    const r = await fetch(`${mock.url}${route}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };

  test('responses.create gives output_text and usage', async () => {
    const response = await client.responses.create({
      model: 'mock-model', instructions: 'be brief', input: 'hello there', max_output_tokens: 3,
    });
    assert.equal(response.output_text, 'w1 w2 w3');
    assert.equal(response.status, 'incomplete');
    assert.deepEqual(response.incomplete_details, { reason: 'max_output_tokens' });
    // (3 + 2) for the instructions, (3 + 2) for the input.
    assert.deepEqual(response.usage, {
      input_tokens: 10, input_tokens_details: { cached_tokens: 0 }, output_tokens: 3,
      output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 13,
    });
    const done = await client.responses.create({
      model: 'mock-model', max_output_tokens: 50,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'a b c' }] }],
    });
    assert.equal(done.status, 'completed');
    assert.equal(done.output_text, 'w1 w2 w3 w4');
    assert.equal(done.usage.input_tokens, 6);
    assert.match(done.id, /^resp_mock\d+$/);
  });

  test('a streamed response parses event by event, usage on response.completed', async () => {
    const stream = await client.responses.create({
      model: 'mock-model', input: 'hi', max_output_tokens: 2, stream: true,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    assert.deepEqual(streamProblems(events, 2), []);
    assert.deepEqual(events.at(-1).response.usage, {
      input_tokens: 4, input_tokens_details: { cached_tokens: 0 }, output_tokens: 2,
      output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 6,
    });
    const helper = client.responses.stream({ model: 'mock-model', input: 'hi', max_output_tokens: 9 });
    const final = await helper.finalResponse();
    // The helper's final response has no output_text (the SDK adds it to parsed responses only).
    assert.equal(final.output[0].content[0].text, 'w1 w2 w3 w4');
    assert.equal(final.status, 'completed');
    assert.equal(final.usage.output_tokens, 4);
  });

  test('the stream checker names each planted mistake', async () => {
    const stream = await client.responses.create({
      model: 'mock-model', input: 'hi', max_output_tokens: 2, stream: true,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    const dropped = events.filter((e, i) => i !== 4);
    assert.ok(streamProblems(dropped, 2).includes('event order'));
    assert.ok(streamProblems(dropped, 2).includes('sequence_number of event 4'));
    const wrongDelta = structuredClone(events);
    wrongDelta[5].delta = ' w9';
    assert.deepEqual(streamProblems(wrongDelta, 2), ['deltas do not make the done text']);
    const noUsage = structuredClone(events);
    noUsage.at(-1).response.usage = null;
    assert.deepEqual(streamProblems(noUsage, 2), ['no usage on response.completed']);
  });

  test('no-usage leaves the usage null', async () => {
    const response = await client.responses.create(
      { model: 'mock-model', input: 'hi' }, { headers: { 'x-mock-fault': 'no-usage' } });
    assert.equal(response.usage, null);
    assert.equal(response.output_text, 'w1 w2 w3 w4');
  });

  test('rerank, score, tokenize and detokenize', async () => {
    const rerank = await post('/v1/rerank', {
      model: 'mock-model', query: 'red apple', documents: ['an apple', { text: 'red apple pie' }],
    });
    assert.equal(rerank.status, 200);
    assert.deepEqual(rerank.body.usage, { total_tokens: 4 + 5 });
    assert.deepEqual(rerank.body.results, [
      { index: 1, document: { text: 'red apple pie' }, relevance_score: 1 },
      { index: 0, document: { text: 'an apple' }, relevance_score: 0.5 },
    ]);
    const score = await post('/v1/score', { model: 'mock-model', text_1: 'a', text_2: ['a', 'b c'] });
    assert.deepEqual(score.body.data, [
      { index: 0, object: 'score', score: 1 }, { index: 1, object: 'score', score: 0 },
    ]);
    assert.deepEqual(score.body.usage,
      { prompt_tokens: 5, total_tokens: 5, completion_tokens: 0, prompt_tokens_details: null });
    const tokens = await post('/tokenize', { model: 'mock-model', prompt: 'one two extraordinary' });
    assert.equal(tokens.body.count, 3);
    assert.equal(tokens.body.max_model_len, 32768);
    const back = await post('/detokenize', { model: 'mock-model', tokens: tokens.body.tokens });
    assert.deepEqual(back.body, { prompt: 'one two extraordinary' });
    const unknown = await post('/v1/rerank', { model: 'nope', query: 'a', documents: ['a'] });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'model_not_found');
  });

  test('audio.transcriptions.create reads the upload', async () => {
    // 1 s of 16 kHz mono 16-bit PCM: byte rate 32000, 32000 data bytes.
    const header = Buffer.alloc(44);
    header.write('RIFF', 0); header.writeUInt32LE(36 + 32000, 4); header.write('WAVE', 8);
    header.write('fmt ', 12); header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20);
    header.writeUInt16LE(1, 22); header.writeUInt32LE(16000, 24); header.writeUInt32LE(32000, 28);
    header.writeUInt16LE(2, 32); header.writeUInt16LE(16, 34);
    header.write('data', 36); header.writeUInt32LE(32000, 40);
    const wav = Buffer.concat([header, Buffer.alloc(32000)]);
    const transcript = await client.audio.transcriptions.create({
      model: 'mock-model', file: await toFile(wav, 'a.wav', { type: 'audio/wav' }),
    });
    assert.deepEqual(transcript,
      { text: 'transcript of 32044 bytes', usage: { type: 'duration', seconds: 1 } });
    const bad = await fetch(`${mock.url}/v1/audio/transcriptions`, {
      method: 'POST', headers: { 'content-type': 'multipart/form-data' }, body: 'x',
    });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.type, 'invalid_request_error');
  });
});
