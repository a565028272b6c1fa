// What load-test.js and stress-test.js share: the gateway's address and key from the
// environment, the three kinds of request, and the metrics and thresholds they are judged by.
// k6's documented API only (k6, k6/http, k6/metrics); run with `k6 run -e NAME=value ...`.
import { check } from 'k6';
import http from 'k6/http';
import { Counter, Rate } from 'k6/metrics';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const API_KEY = __ENV.API_KEY || 'sk-demo-key';
export const MODEL = __ENV.MODEL || 'llama2-7b';

// A number from the environment, or `fallback`; a value that is no number stops the run early
// rather than testing something nobody asked for.
export function num(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${raw}: not a non-negative number`);
  return n;
}

// A duration such as "30s" or "5m" from the environment (k6's own format), or `fallback`.
export function duration(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+(ms|s|m|h)$/.test(raw)) throw new Error(`${name}=${raw}: not a duration like 30s`);
  return raw;
}

// A 429 is the gateway doing its job, not a failure: http_req_failed counts everything else
// that is not 2xx (5xx, 401, ...), and the share of 429s has a metric and a threshold of its own.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 429));
export const rateLimited = new Rate('rate_limited');
export const status2xx = new Counter('status_2xx');
export const status429 = new Counter('status_429');
export const statusOther = new Counter('status_other');

// The end-of-test summary (and --summary-export) with p(99) as well.
export const summaryTrendStats = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

// Latency (all requests, and streams apart: a stream's duration is its whole answer), errors
// other than 429, and the share of 429s. Each bound can be set from the environment.
export function thresholds({ p95Ms, streamP95Ms, max429Share }) {
  return {
    http_req_duration: [`p(95)<${num('P95_MS', p95Ms)}`],
    'http_req_duration{kind:stream}': [`p(95)<${num('STREAM_P95_MS', streamP95Ms)}`],
    http_req_failed: [`rate<${num('MAX_ERROR_SHARE', 0.01)}`],
    rate_limited: [`rate<${num('MAX_429_SHARE', max429Share)}`],
    checks: ['rate>0.99'],
  };
}

const SHORT_PROMPT = 'Write one sentence about rate limits.';
// About 1,000 tokens: the gateway counts every prompt token before forwarding, so these
// requests spend a key's token budget far faster than short ones.
const LONG_PROMPT = `Summarise this document. ${
  'The gateway counts every prompt token before it forwards a request and reserves the ' +
  'completion cap, so a long prompt costs more of the key\'s budget than a short one. '}`.repeat(30);

// The body of one request of `kind`: chat (short), heavy (long prompt, large max_tokens) or
// stream (short, streamed, with the usage chunk the gateway settles on).
export function body(kind) {
  const maxTokens = num('MAX_TOKENS', 64);
  switch (kind) {
    case 'heavy':
      return { model: MODEL, max_tokens: num('HEAVY_MAX_TOKENS', 1024),
               messages: [{ role: 'user', content: LONG_PROMPT }] };
    case 'stream':
      return { model: MODEL, max_tokens: maxTokens, stream: true,
               stream_options: { include_usage: true },
               messages: [{ role: 'user', content: 'Stream a short paragraph about budgets.' }] };
    default:
      return { model: MODEL, max_tokens: maxTokens,
               messages: [{ role: 'user', content: SHORT_PROMPT }] };
  }
}

// Picks a kind with the shares MIX_HEAVY and MIX_STREAM (the rest are short chats).
export function pickKind(defaults) {
  const heavy = num('MIX_HEAVY', defaults.heavy);
  const stream = num('MIX_STREAM', defaults.stream);
  const r = Math.random();
  if (r < heavy) return 'heavy';
  if (r < heavy + stream) return 'stream';
  return 'chat';
}

// Sends one request of `kind` and records what came back.
export function send(kind) {
  const res = http.post(`${BASE_URL}/v1/chat/completions`, JSON.stringify(body(kind)), {
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    tags: { kind },
    timeout: duration('TIMEOUT', '120s'),
  });
  rateLimited.add(res.status === 429, { kind });
  if (res.status >= 200 && res.status < 300) status2xx.add(1, { kind });
  else if (res.status === 429) status429.add(1, { kind });
  else statusOther.add(1, { kind, status: String(res.status) });
  check(res, {
    'status is 200 or 429': (r) => r.status === 200 || r.status === 429,
    'a 429 says when to retry': (r) => r.status !== 429 || r.headers['Retry-After'] !== undefined,
    'a streamed 200 ends with [DONE]': (r) =>
      kind !== 'stream' || r.status !== 200 || String(r.body).includes('data: [DONE]'),
  });
  return res;
}
