// Stress test: the arrival rate climbs in STEPS steps of RATE requests per second (RATE, 2×RATE,
// ... STEPS×RATE), each held for STEP, well past what the key's limits allow, with more
// token-heavy and streamed requests than the load test. 429s are expected to take over; the run
// fails on anything else (5xx, timeouts) and on latency.
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e API_KEY=sk-demo-key -e RATE=50 -e STEPS=6 \
//     performance/k6/stress-test.js
// Environment: BASE_URL, API_KEY, MODEL; RATE (50), STEPS (6), STEP (1m), VUS (50),
// MAX_VUS (1000), MIX_HEAVY (0.4), MIX_STREAM (0.4), MAX_TOKENS (64), HEAVY_MAX_TOKENS (2048),
// TIMEOUT (120s); thresholds P95_MS (5000), STREAM_P95_MS (20000), MAX_429_SHARE (0.95),
// MAX_ERROR_SHARE (0.01). See docs/performance.md.
import { duration, num, pickKind, send, summaryTrendStats, thresholds } from './common.js';

const rate = num('RATE', 50);
const steps = num('STEPS', 6);
const step = duration('STEP', '1m');

const stages = [];
for (let i = 1; i <= steps; i++) {
  stages.push({ duration: '10s', target: rate * i });  // climb to the next step
  stages.push({ duration: step, target: rate * i });   // and hold it
}
stages.push({ duration: '10s', target: 0 });

export const options = {
  scenarios: {
    stress: {
      executor: 'ramping-arrival-rate',
      startRate: rate,
      timeUnit: '1s',
      preAllocatedVUs: num('VUS', 50),
      maxVUs: num('MAX_VUS', 1000),
      stages,
    },
  },
  // Past the limits most requests are refused by design: the bound is on everything else.
  thresholds: thresholds({ p95Ms: 5000, streamP95Ms: 20000, max429Share: 0.95 }),
  summaryTrendStats,
};

export default function () {
  send(pickKind({ heavy: 0.4, stream: 0.4 }));
}
