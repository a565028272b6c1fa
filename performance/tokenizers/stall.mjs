// Does counting a large prompt with a model's own tokenizer hold up other requests? (issue 32:
// "a prompt of 1 MB is counted without delaying other requests on the same thread by more than
// a few milliseconds".) One gateway with a single I/O thread (server.threads: 1) in front of an instant
// mock-llm, the model on the Llama 3 tokenizer.json with its chat framing. A small chat request
// is timed again and again, first alone, then while another client sends 1 MB chat prompts one
// after another; the small requests' latency is printed for both phases. With --tokenizer approx
// the same traffic is counted by the estimate, inline (a fraction of a millisecond a megabyte):
// what the large bodies cost the I/O thread and the machine without an exact count.
//
//   TRL_BIN_DIR=build/release/src/app MOCK_LLM_BIN=build/release/src/mock/mock-llm \
//     node performance/tokenizers/stall.mjs [--small 400] [--seconds 10] [--tokenizer approx]
// Everything on loopback; bounded by --seconds per phase.
import { parseArgs } from 'node:util';

import { cleanup, startGateway, startMock } from '../../tests/blackbox/lib/harness.mjs';
import { LLAMA3_JSON } from '../../tests/tokenizers/lib/files.mjs';

const { values: opts } = parseArgs({
  options: {
    small: { type: 'string', default: '400' },
    seconds: { type: 'string', default: '10' },
    tokenizer: { type: 'string', default: 'llama3' },  // or approx: the same traffic, counted inline
  },
});
const SMALL = Number(opts.small);
const LIMIT_MS = Number(opts.seconds) * 1000;

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function timeSmall(gw) {
  const body = { model: 'llama3', max_tokens: 4, messages: [{ role: 'user', content: 'Hello there' }] };
  const ms = [];
  const until = Date.now() + LIMIT_MS;
  for (let i = 0; i < 20; ++i) await (await gw.send('chat/completions', body, { key: 'sk-stall-small-0000000000' })).arrayBuffer();
  while (ms.length < SMALL && Date.now() < until) {
    const start = process.hrtime.bigint();
    const r = await gw.send('chat/completions', body, { key: 'sk-stall-small-0000000000' });
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`small request: HTTP ${r.status}`);
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { n: ms.length, p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms.at(-1) };
}

async function main() {
  // Two mock threads: the small requests need not wait behind the mock's reading of a large one.
  const mock = await startMock({ models: ['llama3'], ttft: '0ms', threads: 2 });
  const config = {
    models: [opts.tokenizer === 'approx'
      ? { name: 'llama3', backends: [mock.url] }
      : { name: 'llama3', backends: [mock.url], tokenizer: LLAMA3_JSON, chat_template: 'llama3' }],
    api_keys: [
      { name: 'small', key: 'sk-stall-small-0000000000' },
      { name: 'large', key: 'sk-stall-large-0000000000' },
    ],
    server: { threads: 1, max_body_bytes: 4 * 1024 * 1024 },
  };
  const one = await startGateway(config);
  const alone = await timeSmall(one);
  const prose = 'The quick brown fox jumps over the lazy dog. '.repeat(23_300);  // ~1 MB
  let large = 0;
  let stop = false;
  const background = (async () => {
    while (!stop) {
      const r = await one.send('chat/completions',
        { model: 'llama3', max_tokens: 4, messages: [{ role: 'user', content: prose }] },
        { key: 'sk-stall-large-0000000000' });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`large request: HTTP ${r.status}`);
      large += 1;
    }
  })();
  const busy = await timeSmall(one);
  stop = true;
  await background;
  const row = (name, s) => `${name.padEnd(28)} n=${s.n}  p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  max ${s.max.toFixed(2)} ms`;
  console.log(row('small requests alone', alone));
  console.log(row(`while ${large} prompts of 1 MB`, busy));
}

main().finally(cleanup).catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
