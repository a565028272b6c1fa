// POST /v1/audio/transcriptions through the gateway (issue 31): the official openai client's
// upload (multipart/form-data) is forwarded with its own Content-Type and the model's canonical
// name; it is charged at admission its audio (a WAV header's duration, else its size at 2000
// bytes a second) at the model's media_tokens.audio_second, plus the model's output cap; it is
// settled on the seconds the backend reports (usage {"type": "duration"}) and the transcript's
// tokens, or without usage on the estimate and the transcript. 429s and 400s as for chat; on
// both stores.
//
// mock-llm (src/mock/README.md): the text is "transcript of N bytes" (N the file's size), the
// usage {"type": "duration", "seconds": ceil(WAV seconds)}, 0 seconds for a file that is not WAV.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import OpenAI, { toFile } from 'openai';

import {
  STORES, approxTokens, cleanup, keyLimits, startFleet, startMock, usageTotal,
} from './lib/harness.mjs';

after(cleanup);

const MODEL = 'whisper';
const MAX_OUT = 20;  // models[].max_output_tokens: what a transcription may write, reserved
const PER_SECOND = 50;  // models[].media_tokens.audio_second (the default)
const BUDGET = 100_000;
const OVERHEAD = 3;  // the approx counter's per-request tokens

// A PCM WAV file of `seconds` at 16000 bytes a second (silence).
function wav(seconds) {
  const data = 16000 * seconds;
  const b = Buffer.alloc(44 + data);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + data, 4);
  b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);  // PCM
  b.writeUInt16LE(1, 22);  // mono
  b.writeUInt32LE(8000, 24);  // samples a second
  b.writeUInt32LE(16000, 28);  // bytes a second
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36);
  b.writeUInt32LE(data, 40);
  return b;
}

const transcript = (bytes) => `transcript of ${bytes} bytes`;

// A form of `fields` ({name: string | Buffer}); Buffers are sent as files.
function form(fields) {
  const f = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (Buffer.isBuffer(value)) f.append(name, new Blob([value], { type: 'audio/wav' }), 'a.wav');
    else f.append(name, value);
  }
  return f;
}

async function post(gw, key, body, headers = {}) {
  const r = await fetch(`${gw.url}/v1/audio/transcriptions`, {
    method: 'POST', headers: { Authorization: `Bearer ${key}`, ...headers }, body });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: Object.fromEntries(r.headers), text, json };
}

const tokensLevel = async (gw, key) =>
  (await keyLimits(gw, key)).find((l) => l.tokens !== undefined).level;

const config = (mock) => ({
  models: [{ name: MODEL, aliases: ['whisper-alias'], backends: [mock.url], max_output_tokens: MAX_OUT }],
  api_keys: [
    { name: 'full', key: 'sk-full', limits: [{ tokens: BUDGET, per: '3650d' }, { requests: 1000, per: '1h' }] },
    { name: 'once', key: 'sk-once', limits: [{ requests: 1, per: '1h' }] },
    { name: 'tiny', key: 'sk-tiny', limits: [{ tokens: 200, per: '3650d' }] },
    { name: 'bad', key: 'sk-bad', limits: [{ tokens: BUDGET, per: '3650d' }] },
  ],
});

for (const store of STORES) {
  describe(`transcriptions (${store})`, () => {
    let fleet;
    before(async () => {
      const mock = await startMock({ name: `mock-audio-${store}`, models: [MODEL] });
      fleet = await startFleet(store, config(mock), { name: `gw-audio-${store}` });
    });

    test('the openai client transcribes a WAV file: charged its seconds and the model\'s cap, ' +
         'settled on the reported seconds and the transcript', async () => {
      const gw = fleet.at(0);
      const client = new OpenAI({ apiKey: 'sk-full', baseURL: `${gw.url}/v1`, maxRetries: 0 });
      const audio = wav(3);
      const { data, response } = await client.audio.transcriptions
        .create({ file: await toFile(audio, 'a.wav'), model: 'whisper-alias' }).withResponse();
      assert.equal(data.text, transcript(audio.length));
      assert.deepEqual(data.usage, { type: 'duration', seconds: 3 });
      const reserved = OVERHEAD + 3 * PER_SECOND + MAX_OUT;
      assert.equal(response.headers.get('x-ratelimit-remaining-tokens'), String(BUDGET - reserved));
      assert.equal(response.headers.get('x-ratelimit-limit-requests'), '1000');
      const prompt = OVERHEAD + 3 * PER_SECOND;
      const completion = approxTokens(transcript(audio.length));
      assert.ok(await fleet.settled({ key: 'full', requests: 1 }));
      const usage = await usageTotal(gw, { key: 'full' }, { requests: 1 });
      assert.equal(usage.prompt_tokens, prompt);
      assert.equal(usage.completion_tokens, completion);
      for (const g of fleet.gws) assert.equal(await tokensLevel(g, 'full'), BUDGET - prompt - completion);
    });

    test('a text answer without usage is charged the estimate and the transcript; a file that ' +
         'is not WAV, its size at 2000 bytes a second until the backend says', async () => {
      const gw = fleet.at(1);
      const before = await tokensLevel(gw, 'full');
      const audio = wav(2);
      const text = await post(gw, 'sk-full', form({ model: MODEL, file: audio, response_format: 'text' }));
      assert.equal(text.status, 200, text.text);
      assert.equal(text.text, transcript(audio.length));
      assert.match(text.headers['content-type'], /^text\/plain/);
      const plainCost = OVERHEAD + 2 * PER_SECOND + approxTokens(transcript(audio.length));
      // Not WAV: 5000 bytes reserve 3 s; mock-llm reports 0 s, which is what is charged.
      const noise = Buffer.alloc(5000, 7);
      const other = await post(gw, 'sk-full', form({ model: MODEL, file: noise, prompt: 'Names: Ada' }));
      assert.equal(other.status, 200, other.text);
      assert.equal(other.headers['x-ratelimit-remaining-tokens'],
                   String(before - plainCost - (OVERHEAD + approxTokens('Names: Ada') + 3 * PER_SECOND + MAX_OUT)));
      const otherCost = OVERHEAD + approxTokens('Names: Ada') + approxTokens(transcript(noise.length));
      assert.ok(await fleet.settled({ key: 'full', requests: 3 }));
      for (const g of fleet.gws) assert.equal(await tokensLevel(g, 'full'), before - plainCost - otherCost);
    });

    test('429s: the request limit, and a token budget the reservation does not fit', async () => {
      const gw = fleet.at(0);
      const first = await post(gw, 'sk-once', form({ model: MODEL, file: wav(1) }));
      assert.equal(first.status, 200, first.text);
      const second = await post(fleet.at(1), 'sk-once', form({ model: MODEL, file: wav(1) }));
      assert.equal(second.status, 429);
      assert.equal(second.json.error.type, 'requests');
      assert.ok(Number(second.headers['retry-after']) >= 1);
      // tiny (200): 3 s reserve 3 + 150 + 20 = 173 and cost 153 + the transcript; a second
      // upload of 3 s no longer fits.
      const ok = await post(gw, 'sk-tiny', form({ model: MODEL, file: wav(3) }));
      assert.equal(ok.status, 200, ok.text);
      const refused = await post(fleet.at(1), 'sk-tiny', form({ model: MODEL, file: wav(3) }));
      assert.equal(refused.status, 429, refused.text);
      assert.equal(refused.json.error.type, 'tokens');
    });

    test('bad input is a 400 naming the field, and changes nothing', async () => {
      const gw = fleet.at(0);
      const cases = [
        [JSON.stringify({ model: MODEL }), { 'Content-Type': 'application/json' }, null],
        [form({ model: MODEL }), {}, 'file'],
        [form({ file: wav(1) }), {}, 'model'],
        [form({ model: MODEL, file: wav(1), stream: 'true' }), {}, 'stream'],
        ['--B\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper\r\n--B\r\n' +
         'Content-Disposition: form-data; name="model"\r\n\r\nwhisper\r\n--B--\r\n',
         { 'Content-Type': 'multipart/form-data; boundary=B' }, null],
      ];
      for (const [body, headers, param] of cases) {
        const r = await post(gw, 'sk-bad', body, headers);
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.error.code, 'invalid_request');
        assert.equal(r.json.error.param, param, r.text);
      }
      const unknown = await post(gw, 'sk-bad', form({ model: 'nope', file: wav(1) }));
      assert.equal(unknown.status, 404);
      for (const g of fleet.gws) assert.equal(await tokensLevel(g, 'bad'), BUDGET);
      assert.equal((await usageTotal(gw, { key: 'bad' })).requests, 0);
    });
  });
}
